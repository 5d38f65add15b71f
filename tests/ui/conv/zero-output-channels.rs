use typednet::network;

network! {
    pub struct Net: [3, 32, 32] -> conv(0, 3);
}

fn main() {}
