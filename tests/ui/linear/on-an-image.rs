use typednet::network;

network! {
    pub struct Net: [1, 28, 28] -> conv(6, 5) -> linear(10);
}

fn main() {}
