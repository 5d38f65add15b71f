use typednet::network;

network! {
    pub struct Net: [784] -> lienar(10);
}

fn main() {}
