use typednet::network;

network! {
    pub struct Encoder: [1, 28, 28] -> flatten -> linear(64) -> relu -> linear(16);
    pub struct Decoder: [16] -> linear(64) -> relu -> linear(784) -> sigmoid;
    // The decoder takes the code, but gives back [784], not the encoder's [1, 28, 28].
    #[autoencoder]
    pub struct Autoencoder = Encoder -> Decoder;
}

fn main() {}
