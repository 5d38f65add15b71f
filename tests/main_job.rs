//! The main jobs' promises, checked on the shipped digits (the first 8,000 to train, the last
//! 2,000 to test), each with its example's recipe (10 epochs, batch 64, Adam 1e-3):
//! - the MLP of `examples/mnist_mlp.rs` reaches at least 94.5% (PyTorch 2.15 with the same
//!   recipe: 94.7–95.2% over three seeds);
//! - the LeNet-5 of `examples/mnist_lenet.rs` (the README's main job) at least 96.5% (typednet
//!   over seeds 0–7: 96.70–97.95%, seed 0 97.30%; PyTorch 97.15–97.75%);
//! - the row-by-row LSTM of `examples/mnist_lstm.rs` at least 94.5%, issue #6's figure (typednet
//!   over seeds 0–5: 95.75–97.10%, seed 0 95.75%; PyTorch 96.05–96.70%).

use rand::{rngs::StdRng, SeedableRng};
use typednet::data::{Dataset, Mnist};
use typednet::dfdx::optim::{Adam, AdamConfig};
use typednet::prelude::*;
use typednet::train::{Trainer, Verbosity};

network! {
    pub struct Mlp: [784] -> linear(256) -> relu -> linear(128) -> relu -> linear(10);

    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten
        -> linear(120) -> relu
        -> linear(84) -> relu
        -> linear(10);

    pub struct RowLstm: [1, 28, 28] -> rows -> lstm(128, output = last) -> linear(10);
}

#[test]
fn mlp_reaches_the_promised_accuracy_on_mnist() {
    let (train, test) = Mnist::load_shipped_split().expect("shipped MNIST loads");
    let dev = Cpu::seed_from_u64(0);
    let mut model = Mlp::<f32, Cpu>::new(&dev);
    let mut optimizer = Adam::new(
        &model,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let history = Trainer::new(&dev)
        .epochs(10)
        .batch_size(64)
        .verbosity(Verbosity::Silent)
        .fit_vectors::<784, 10, f32, _, _, _>(
            &mut model,
            &mut optimizer,
            &train,
            &test,
            &mut StdRng::seed_from_u64(0),
        )
        .expect("training runs");
    let accuracy = history.last().unwrap().test_accuracy;
    assert!(accuracy >= 0.945, "test accuracy {accuracy}");
    // Learning happened over the epochs, not by accident.
    assert!(history[0].train_loss > 2.0 * history[9].train_loss);
}

/// The examples' split of the shipped digits, standardised with the training digits' mean and
/// deviation (torchvision's `Normalize`), as the LeNet and LSTM examples do.
fn standardized_split() -> (Dataset, Dataset) {
    let (train, test) = Mnist::load_shipped_split().expect("shipped MNIST loads");
    let (mean, std) = train.feature_mean_and_std();
    (
        train.standardized(mean, std).unwrap(),
        test.standardized(mean, std).unwrap(),
    )
}

/// Trains the network type `$model` on the standardised split with the image examples' recipe
/// (seed 0, the examples' shuffling seed) and returns its history. A macro rather than a
/// generic function: `fit_images` asks for a long list of bounds on the model.
macro_rules! train_on_digit_images {
    ($model:ident) => {{
        let (train, test) = standardized_split();
        let seed = 0;
        let dev = Cpu::seed_from_u64(seed);
        let mut model = $model::<f32, Cpu>::new(&dev);
        let mut optimizer = Adam::new(
            &model,
            AdamConfig {
                lr: 1e-3,
                ..Default::default()
            },
        );
        Trainer::new(&dev)
            .epochs(10)
            .batch_size(64)
            .verbosity(Verbosity::Silent)
            .fit_images::<1, 28, 28, 10, f32, _, _, _>(
                &mut model,
                &mut optimizer,
                &train,
                &test,
                &mut StdRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed),
            )
            .expect("training runs")
    }};
}

#[test]
fn lenet_reaches_the_promised_accuracy_on_mnist() {
    let history = train_on_digit_images!(LeNet5);
    let accuracy = history.last().unwrap().test_accuracy;
    assert!(accuracy >= 0.965, "test accuracy {accuracy}");
    assert!(history[0].train_loss > 2.0 * history[9].train_loss);
}

#[test]
fn lstm_reaches_the_promised_accuracy_on_mnist() {
    let history = train_on_digit_images!(RowLstm);
    let accuracy = history.last().unwrap().test_accuracy;
    assert!(accuracy >= 0.945, "test accuracy {accuracy}");
    assert!(history[0].train_loss > 2.0 * history[9].train_loss);
}
