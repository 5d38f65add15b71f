use typednet::network;

network! {
    pub struct Net: [10] -> linear(0);
}

fn main() {}
