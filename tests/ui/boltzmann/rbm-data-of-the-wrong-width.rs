use typednet::boltzmann::rbm::Rbm;
use typednet::dfdx::prelude::*;

fn main() {
    let dev = Cpu::default();
    let rbm = Rbm::<784, 500, f32, Cpu>::try_new(&dev, 0.01).unwrap();
    // 28×27 images flattened: 756 visible units where the RBM has 784.
    let digits: Tensor<Rank2<64, 756>, f32, Cpu> = dev.zeros();
    let _ = rbm.try_hidden_probabilities(&digits);
}
