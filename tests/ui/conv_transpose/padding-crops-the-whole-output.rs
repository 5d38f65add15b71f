use typednet::network;

network! {
    pub struct Decoder: [16, 1, 1] -> conv_transpose(8, 3, stride = 2, pad = 2);
}

fn main() {}
