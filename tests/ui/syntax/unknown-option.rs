use typednet::network;

network! {
    pub struct Net: [1, 28, 28] -> conv(6, 5, strde = 2);
}

fn main() {}
