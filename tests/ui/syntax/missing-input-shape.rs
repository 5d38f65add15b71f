use typednet::network;

network! {
    pub struct Net -> linear(10);
}

fn main() {}
