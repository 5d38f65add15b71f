use typednet::network;

network! {
    // 64 noise features + a 10-way one-hot condition.
    pub struct Generator: [74] -> linear(256) -> relu -> linear(784) -> sigmoid;
    // Should take 784 + 10 = 794: the sample followed by its condition.
    pub struct Discriminator: [784] -> linear(256) -> leaky_relu(0.2) -> linear(1);
    #[gan(condition = 10)]
    pub struct ConditionalGan = Generator -> Discriminator;
}

fn main() {}
