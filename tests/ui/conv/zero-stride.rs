use typednet::network;

network! {
    pub struct Net: [1, 28, 28] -> conv(6, 5, stride = 0) -> relu;
}

fn main() {}
