//! Sequence classification: an LSTM reads each MNIST digit row by row (28 steps of 28 pixels)
//! and a linear layer classifies its last hidden state. Trained on the first 8,000 of the
//! shipped digits and tested on the last 2,000 (issue #6).
//!
//! `cargo run --release --example mnist_lstm` (optional arguments: epochs, seed).
//!
//! The model is declared with `network!`: `rows` reads the `[1, 28, 28]` image as 28 steps of
//! 28 pixels, `lstm(128, output = last)` is an [`LstmCell`](typednet::recurrent::LstmCell)
//! (PyTorch's `nn.LSTM`) run over them, keeping its last hidden state, and `linear(10)`
//! classifies that state. The macro checks every shape (`[28, 28]` → `[128]` → `[10]`) and
//! typednet's `Trainer` trains it like any other classifier of images. With `--features cuda`
//! it trains on the GPU.
//!
//! Recipe: 10 epochs, batch 64 (shuffled), Adam with learning rate 1e-3, PyTorch's default
//! initialisation, cross-entropy, and the pixels standardised with the training digits' mean
//! and standard deviation (torchvision's `Normalize`), as the LeNet main job does. Its PyTorch
//! twin is `STANDARDIZE=1 tools/pytorch_mnist_recipes.py lstm` (`nn.LSTM(28, 128,
//! batch_first=True)` and `nn.Linear(128, 10)` on the last hidden state).
//!
//! Results (2026-11-24, this 2-core machine, release build, `Cpu` device, seeds 0–5, test
//! accuracy on the last 2,000 digits after 10 epochs):
//!
//! | | standardised pixels | pixels in `[0, 1]` |
//! |---|---|---|
//! | typednet | 95.75–97.10%, mean 96.42% (seed 0: 95.75%) | 93.75–95.05%, mean 94.50% |
//! | PyTorch 2.15 | 96.05–96.70%, mean 96.24% | 94.40–95.30%, mean 94.72% |
//!
//! Issue #6 asks for 94.5%, which pixels in `[0, 1]` reach only on some seeds in either
//! library (seed 0: typednet 94.05%, PyTorch 95.30%; the two draw different weights from the
//! same seed, so only the spreads compare). Standardised, every seed of both clears it.
//! typednet takes about 1.25 s per epoch on an idle machine (the fused LSTM kernel, the
//! batch split between the two cores; the `Trainer`'s epoch time includes the pass over the
//! test set), PyTorch about 1.5 s.

mod common;

use rand::{rngs::StdRng, SeedableRng};
use typednet::data::Mnist;
use typednet::dfdx::optim::{Adam, AdamConfig};
use typednet::prelude::*;
use typednet::train::Trainer;

network! {
    /// An LSTM reading a digit row by row, its last hidden state classified.
    pub struct RowLstm: [1, 28, 28] -> rows -> lstm(128, output = last) -> linear(10);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (epochs, seed) = common::epochs_and_seed()?;

    let (train, test) = Mnist::load_shipped_split()?;
    println!(
        "MNIST: {} training and {} test digits (shipped in data/), read as 28 rows of 28 pixels",
        train.len(),
        test.len()
    );
    // Both sets with the training set's figures, so that nothing of the test set leaks in.
    let (mean, std) = train.feature_mean_and_std();
    let (train, test) = (
        train.standardized(mean, std)?,
        test.standardized(mean, std)?,
    );
    println!("pixels standardised with the training digits' mean {mean:.4} and deviation {std:.4}");

    let dev = common::Device::seed_from_u64(seed);
    let mut model = RowLstm::<f32, common::Device>::new(&dev);
    println!("{}", model.summary());

    let mut optimizer = Adam::new(
        &model,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let history = Trainer::new(&dev)
        .epochs(epochs)
        .batch_size(64)
        .fit_images::<1, 28, 28, 10, f32, _, _, _>(
            &mut model,
            &mut optimizer,
            &train,
            &test,
            &mut StdRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed),
        )?;

    common::report(&history, test.len())
}
