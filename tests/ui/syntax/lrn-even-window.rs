use typednet::network;

network! {
    // A window of 4 channels has no centre channel.
    pub struct Net: [96, 55, 55] -> lrn(4) -> flatten -> linear(10);
}

fn main() {}
