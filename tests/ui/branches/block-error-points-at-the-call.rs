use typednet::network;

network! {
    block Down(c) = conv(c, 3, stride = 2) -> relu;

    // Fine at 33×33 ((33 − 3)/2 + 1 = 16), but not at 16×16 ((16 − 3)/2 + 1 = 7.5): the error
    // is reported at the second call, naming the layer inside the block.
    #[exact_fit]
    pub struct Net: [3, 33, 33] -> Down(16) -> Down(32) -> flatten -> linear(10);
}

fn main() {}
