use typednet::network;

network! {
    // The projection forgot the stride: it keeps 56×56 while the body halves it.
    pub struct Stage: [64, 56, 56]
        -> residual(
            conv(128, 3, stride = 2, pad = 1) -> relu -> conv(128, 3, pad = 1),
            shortcut = conv(128, 1)
        )
        -> relu;
}

fn main() {}
