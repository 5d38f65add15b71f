use typednet::network;

network! {
    pub struct Encoder: [784] -> linear(64) -> relu;
    pub struct Decoder: [32] -> linear(784) -> sigmoid;
    pub struct Autoencoder = Encoder -> Decoder;
}

fn main() {}
