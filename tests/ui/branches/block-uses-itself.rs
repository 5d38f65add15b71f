use typednet::network;

network! {
    block Forever(c) = conv(c, 3, pad = 1) -> Forever(c);

    pub struct Net: [3, 32, 32] -> Forever(8) -> flatten -> linear(10);
}

fn main() {}
