use typednet::network;

network! {
    pub struct Decoder: [16, 7, 7] -> conv_transpose(8, 4, stride = 2, pad = 1, output_pad = 2);
}

fn main() {}
