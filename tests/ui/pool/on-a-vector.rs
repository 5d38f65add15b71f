use typednet::network;

network! {
    pub struct Net: [784] -> maxpool(2);
}

fn main() {}
