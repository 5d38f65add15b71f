use typednet::network;

network! {
    pub struct Tiny: [1, 3, 3] -> conv(4, 5) -> flatten -> linear(2);
}

fn main() {}
