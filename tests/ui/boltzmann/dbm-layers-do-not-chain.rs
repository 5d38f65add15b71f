use typednet::boltzmann::{dbm::Dbm, rbm::Rbm};
use typednet::dfdx::prelude::*;

fn main() {
    let dev = Cpu::default();
    let first = Rbm::<784, 256, f32, Cpu>::try_new(&dev, 0.01).unwrap();
    // The second RBM's visible layer must have 256 units, the first one's hidden layer.
    let second = Rbm::<128, 256, f32, Cpu>::try_new(&dev, 0.01).unwrap();
    let third = Rbm::<256, 64, f32, Cpu>::try_new(&dev, 0.01).unwrap();
    let _dbm = Dbm::from_rbms(first, second, third);
}
