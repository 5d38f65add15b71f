use typednet::network;

network! {
    pub struct Net: [2, 1, 28, 28] -> flatten -> linear(10);
}

fn main() {}
