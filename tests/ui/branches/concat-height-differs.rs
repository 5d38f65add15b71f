use typednet::network;

network! {
    // Inception's 3×3 branch needs `pad = 1` to keep 28×28 like the other branches.
    pub struct Inception: [192, 28, 28]
        -> concat(
            conv(64, 1),
            conv(96, 1) -> relu -> conv(128, 3) -> relu,
            conv(16, 1) -> relu -> conv(32, 5, pad = 2) -> relu
        );
}

fn main() {}
