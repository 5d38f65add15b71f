use typednet::network;

network! {
    // A ResNet stage's first block halves the size and doubles the channels, so the input
    // cannot be added back unchanged: it needs a projection shortcut.
    pub struct Stage: [64, 56, 56]
        -> residual(conv(128, 3, stride = 2, pad = 1) -> relu -> conv(128, 3, pad = 1))
        -> relu;
}

fn main() {}
