use typednet::network;

network! {
    pub struct Net: [10];
}

fn main() {}
