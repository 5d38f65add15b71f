use typednet::network;

network! {
    pub struct Generator: [64] -> linear(256) -> relu -> linear(784) -> sigmoid;
    // Takes the digit as a 1×28×28 image, not as the generator's 784-vector.
    pub struct Discriminator: [1, 28, 28] -> flatten -> linear(256) -> leaky_relu(0.2) -> linear(1);
    #[gan]
    pub struct Gan = Generator -> Discriminator;
}

fn main() {}
