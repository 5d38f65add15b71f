use typednet::network;

network! {
    /// AlexNet's first layer on a 224×224 input: (224 − 11)/4 is not whole.
    #[exact_fit]
    pub struct AlexNetStem: [3, 224, 224] -> conv1: conv(96, 11, stride = 4) -> relu;
}

fn main() {}
