use typednet::network;

network! {
    pub struct Net: [1, 28, 28] -> [conv(6, 3) -> relu] * 0 -> flatten -> linear(10);
}

fn main() {}
