use typednet::network;

network! {
    // A head's layers are checked like the main chain's: its 5×5 pool does not fit 4×4 maps.
    pub struct Net: [16, 4, 4]
        -> conv(16, 3, pad = 1) -> relu
        -> aux: head(avgpool(5, stride = 3) -> flatten -> linear(10))
        -> flatten -> linear(10);
}

fn main() {}
