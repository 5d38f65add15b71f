use typednet::boltzmann::rbm::Rbm;
use typednet::dfdx::prelude::*;

fn main() {
    let dev = Cpu::default();
    let rbm = Rbm::<784, 500, f32, Cpu>::try_new(&dev, 0.01).unwrap();
    // Hidden states of another RBM, with 256 hidden units.
    let hidden: Tensor<Rank2<64, 256>, f32, Cpu> = dev.zeros();
    let _ = rbm.try_visible_probabilities(&hidden);
}
