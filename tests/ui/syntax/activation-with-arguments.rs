use typednet::network;

network! {
    pub struct Net: [10] -> relu(2) -> linear(1);
}

fn main() {}
