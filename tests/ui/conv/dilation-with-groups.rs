use typednet::network;

network! {
    pub struct Net: [4, 16, 16] -> conv(8, 3, groups = 2, dilation = 2);
}

fn main() {}
