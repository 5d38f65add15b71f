use typednet::network;

network! {
    block Basic(c, s) = conv(c, 3, stride = s, pad = 1) -> relu;

    pub struct Net: [3, 32, 32] -> Basic(64) -> flatten -> linear(10);
}

fn main() {}
