use typednet::network;

network! {
    pub struct Net: [1, 8, 8] -> maxpool(2) -> maxpool(2) -> maxpool(2) -> maxpool(2);
}

fn main() {}
