use typednet::network;

network! {
    pub struct Net: [1, 16, 16] -> conv(4, 3, dilation = (1, 0));
}

fn main() {}
