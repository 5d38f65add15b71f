use typednet::network;

network! {
    pub struct Encoder: [784] -> linear(32);
    pub struct Decoder: [32] -> linear(784);
    pub struct Head: [784] -> linear(10);
    // An autoencoder attribute on a chain of layers, and on three stages.
    #[autoencoder]
    pub struct NotAComposition: [784] -> linear(32) -> linear(784);
    #[autoencoder]
    pub struct ThreeStages = Encoder -> Decoder -> Head;
}

fn main() {}
