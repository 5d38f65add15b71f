use typednet::network;

network! {
    pub struct Generator: [64] -> linear(256) -> relu -> linear(784) -> sigmoid;
    pub struct Discriminator: [784] -> linear(256) -> leaky_relu(0.2) -> linear(2);
    #[gan]
    pub struct Gan = Generator -> Discriminator;
}

fn main() {}
