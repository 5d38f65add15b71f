use typednet::network;

// A recurrent layer reads a sequence [T, F]; an image must be read as one first (`rows`).
network! {
    pub struct Net: [1, 28, 28] -> lstm(128, output = last) -> linear(10);
}

fn main() {}
