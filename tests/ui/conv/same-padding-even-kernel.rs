use typednet::network;

network! {
    pub struct Net: [3, 32, 32] -> conv(16, 4, pad = same);
}

fn main() {}
