use typednet::prelude::*;

network! {
    pub struct Mlp: [784] -> linear(10);
}

fn main() {
    let dev = Cpu::default();
    let net = Mlp::<f32, Cpu>::new(&dev);
    let _ = net.forward(dev.zeros::<Rank2<64, 100>>());
}
