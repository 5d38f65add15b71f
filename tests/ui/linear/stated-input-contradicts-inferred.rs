use typednet::network;

network! {
    pub struct Mlp: [784] -> linear(256) -> relu -> linear(128, 64);
}

fn main() {}
