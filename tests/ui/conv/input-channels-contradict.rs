use typednet::network;

network! {
    pub struct Net: [1, 28, 28] -> conv(3, 8, 3) -> relu;
}

fn main() {}
