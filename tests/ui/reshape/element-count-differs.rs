use typednet::network;

network! {
    pub struct Net: [784] -> reshape(1, 28, 27) -> conv(4, 3);
}

fn main() {}
