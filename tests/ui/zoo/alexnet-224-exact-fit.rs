use typednet::network;

network! {
    // The famous mistake: AlexNet's paper says 224×224, but (224 − 11)/4 + 1 is not whole;
    // 227×227 fits. (In the default floor mode 224 gives 54×54, as PyTorch does.)
    #[exact_fit]
    pub struct AlexNet: [3, 224, 224]
        -> conv(96, 11, stride = 4) -> relu -> maxpool(3, stride = 2)
        -> flatten -> linear(10);
}

fn main() {}
