use typednet::network;

network! {
    /// Three mistakes, all reported at once; the shapes after each are recovered.
    #[exact_fit]
    pub struct Net: [3, 32, 32]
        -> conv(16, 5, stride = 2)
        -> maxpool(64)
        -> flatten
        -> linear(10) -> relu
        -> linear(20, 5);
}

fn main() {}
