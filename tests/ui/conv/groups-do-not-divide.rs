use typednet::network;

network! {
    // Two groups split the channels in halves: 3 input channels cannot be halved, and neither
    // can 5 filters.
    pub struct Net: [3, 32, 32] -> conv(5, 3, groups = 2) -> relu;
}

fn main() {}
