use typednet::network;

network! {
    pub struct Net: [10] -> fc: linear(20) -> relu -> fc: linear(5);
}

fn main() {}
