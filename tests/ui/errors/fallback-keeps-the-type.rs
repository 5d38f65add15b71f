use typednet::prelude::*;

network! {
    pub struct Broken: [1, 3, 3] -> conv(4, 5) -> flatten -> linear(2);
}

// Code that uses the network still type-checks, so only the layer at fault is reported.
fn main() {
    let dev = Cpu::default();
    let net = Broken::<f32, Cpu>::new(&dev);
    let _y: Tensor<Rank2<8, 2>, f32, Cpu> = net.forward(dev.zeros::<Rank4<8, 1, 3, 3>>());
    println!("{} {}", net.summary(), <Broken>::PARAMETERS);
}
