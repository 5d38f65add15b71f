//! Sequence classification: an LSTM reads each MNIST digit row by row (28 steps of 28 pixels)
//! and a linear layer classifies its last hidden state. Trained on the first 8,000 of the
//! shipped digits and tested on the last 2,000 (issue #6).
//!
//! `cargo run --release --example mnist_lstm` (optional arguments: epochs, seed).
//!
//! The `network!` DSL has no recurrent layers yet, so the model is a hand-written struct: an
//! [`LstmCell`] (PyTorch's `nn.LSTM`) run with [`try_run_last`], then dfdx's `Linear<128, 10>`.
//! It implements dfdx's `TensorCollection` (for `build`, `alloc_grads` and `Adam`) and `Module`
//! for a batch `[B, 784]` with or without a tape, so typednet's `Trainer` trains it. It is
//! generic over the device (element type and dfdx device), so it also builds for CUDA.
//!
//! Recipe: 10 epochs, batch 64 (shuffled), Adam with learning rate 1e-3, pixels in [0, 1],
//! PyTorch's default initialisation, cross-entropy. Its PyTorch twin is
//! `tools/pytorch_mnist_recipes.py lstm` (`nn.LSTM(28, 128, batch_first=True)` and
//! `nn.Linear(128, 10)` on the last hidden state).
//!
//! Results (2026-11-23, this 2-core shared machine, release build, `Cpu` device):
//!
//! - typednet, `cargo run --release --example mnist_lstm 10 <seed>`: test accuracy 95.60%
//!   (seed 0) and 94.85% (seed 1); 8.5–11.8 s per epoch, 9.9 s mean for seed 1 (the
//!   `Trainer`'s epoch time, which includes the pass over the test set).
//! - PyTorch 2.15 with 2 threads, `/tmp/ref/bin/python tools/pytorch_mnist_recipes.py lstm 0 1`:
//!   95.30% (seed 0) and 94.60% (seed 1); 1.7 s per epoch (seed 0, run alone; 2.8 s for seed 1,
//!   which shared the machine with the Rust run).
//!
//! Both seeds reach the required 94.5% test accuracy, level with PyTorch; typednet is about
//! five times slower per epoch here (28 sequential steps of small matmuls and many element-wise
//! ops, each a separate dfdx kernel, against PyTorch's fused LSTM).

mod common;

use rand::{rngs::StdRng, SeedableRng};
use typednet::data::Mnist;
use typednet::dfdx::nn::modules::{Linear, ModuleVisitor, TensorCollection};
use typednet::dfdx::nn::{BuildModule, Module, NonMutableModule};
use typednet::dfdx::optim::{Adam, AdamConfig};
use typednet::dfdx::prelude::*;
use typednet::recurrent::{try_run_last, LstmCell};
use typednet::train::Trainer;
use typednet::Element;

/// Pixels per row (the input of one step) and rows per digit (the number of steps).
const ROW: usize = 28;
/// The LSTM's hidden size.
const HIDDEN: usize = 128;
/// Digit classes.
const CLASSES: usize = 10;

/// An LSTM over the rows of a digit and a linear layer on its last hidden state.
#[derive(Debug, Clone)]
struct RowLstm<E: Dtype, D: Storage<E>> {
    lstm: LstmCell<ROW, HIDDEN, E, D>,
    head: Linear<HIDDEN, CLASSES, E, D>,
}

impl<E: Element, D: Device<E>> TensorCollection<E, D> for RowLstm<E, D> {
    type To<E2: Dtype, D2: Device<E2>> = RowLstm<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("lstm", |s| &s.lstm, |s| &mut s.lstm),
                Self::module("head", |s| &s.head, |s| &mut s.head),
            ),
            |(lstm, head)| RowLstm { lstm, head },
        )
    }
}

/// `[B, 784]` (a batch of flattened digits) to `[B, 10]` logits: reshaped to `[B, 28, 28]`, the
/// 28 rows are the time steps.
impl<E: Element, D: Device<E>, T: Tape<E, D>> Module<Tensor<(usize, Const<{ ROW * ROW }>), E, D, T>>
    for RowLstm<E, D>
{
    type Output = Tensor<(usize, Const<CLASSES>), E, D, T>;
    type Error = D::Err;

    fn try_forward(
        &self,
        x: Tensor<(usize, Const<{ ROW * ROW }>), E, D, T>,
    ) -> Result<Self::Output, D::Err> {
        let batch = x.shape().0;
        let rows = x.try_reshape_like(&(batch, Const::<ROW>, Const::<ROW>))?;
        let last = try_run_last(&self.lstm, rows, None)?;
        self.head.try_forward(last.h)
    }
}

/// No dropout or batch normalisation: training and evaluation run the same forward.
impl<E: Dtype, D: Storage<E>> NonMutableModule for RowLstm<E, D> {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (epochs, seed) = common::epochs_and_seed()?;

    let (train, test) = Mnist::load_shipped_split()?;
    println!(
        "MNIST: {} training and {} test digits (shipped in data/), {ROW} rows of {ROW} pixels",
        train.len(),
        test.len()
    );

    let dev = Cpu::seed_from_u64(seed);
    let mut model = RowLstm::<f32, Cpu>::build(&dev);
    println!(
        "LstmCell<{ROW}, {HIDDEN}> over {ROW} rows -> Linear<{HIDDEN}, {CLASSES}>: {} parameters",
        model.num_trainable_params()
    );

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
        .fit_vectors::<{ ROW * ROW }, CLASSES, f32, _, _, _>(
            &mut model,
            &mut optimizer,
            &train,
            &test,
            &mut StdRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed),
        )?;

    common::report(&history, test.len())
}
