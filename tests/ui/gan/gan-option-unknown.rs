use typednet::network;

network! {
    pub struct Generator: [74] -> linear(784);
    pub struct Discriminator: [794] -> linear(1);
    #[gan(classes = 10)]
    pub struct ConditionalGan = Generator -> Discriminator;
}

fn main() {}
