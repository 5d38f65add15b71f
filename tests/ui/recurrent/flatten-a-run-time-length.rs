use typednet::network;

// A sequence of run-time length has no fixed number of elements to flatten.
network! {
    pub struct Net: [_, 4] -> lstm(3) -> flatten -> linear(2);
}

fn main() {}
