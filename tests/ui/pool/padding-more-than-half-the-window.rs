use typednet::network;

network! {
    // PyTorch refuses this too: a 3×3 window padded by 2 could lie wholly in the padding.
    pub struct Net: [16, 32, 32] -> maxpool(3, stride = 2, pad = 2) -> flatten -> linear(10);
}

fn main() {}
