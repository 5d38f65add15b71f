use typednet::network;

network! {
    // A locally-connected layer slides over an image, like a convolution.
    pub struct Net: [784] -> locally_connected(8, 3) -> relu;
}

fn main() {}
