use typednet::network;

network! {
    pub struct Net: [10] -> linear(10, 20, 30);
}

fn main() {}
