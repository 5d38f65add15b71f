use typednet::network;

network! {
    pub struct Net: [1, 28, 28] -> flatten -> conv(6, 5);
}

fn main() {}
