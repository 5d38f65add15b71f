use typednet::network;

network! {
    // A head's output is returned beside the network's, so it must sit on the main chain.
    pub struct Net: [16, 8, 8]
        -> residual(conv(16, 3, pad = 1) -> aux: head(flatten -> linear(10)) -> relu)
        -> flatten -> linear(10);
}

fn main() {}
