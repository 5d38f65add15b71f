use typednet::network;

network! {
    pub struct Generator: [64] -> linear(784);
    pub struct Discriminator: [784] -> linear(1);
    // On a chain of layers, with three stages, and with `#[autoencoder]`.
    #[gan]
    pub struct NotAComposition: [64] -> linear(784);
    #[gan]
    pub struct ThreeStages = Generator -> Discriminator -> Discriminator;
    #[gan]
    #[autoencoder]
    pub struct Both = Generator -> Discriminator;
}

fn main() {}
