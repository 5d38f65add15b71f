use typednet::network;

network! {
    pub struct Net: [3, 32, 32] -> conv(16, 3, stride = 2, pad = same);
}

fn main() {}
