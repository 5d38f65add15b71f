use typednet::network;

// `rows` turns [3, 32, 32] into [32, 96]; a bidirectional LSTM(64) gives [32, 128] per step.
network! {
    pub struct Net: [3, 32, 32] -> rows -> lstm(64, bidirectional = true) -> linear(64, 10);
}

fn main() {}
