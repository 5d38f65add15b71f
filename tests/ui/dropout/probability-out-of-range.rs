use typednet::network;

network! {
    pub struct Net: [10] -> dropout(1.5) -> linear(2);
}

fn main() {}
