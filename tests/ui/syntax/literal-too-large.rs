use typednet::network;

network! {
    pub struct Net: [10] -> linear(99999999999999999999999);
}

fn main() {}
