//! Long-term dependencies: the adding problem with sequences of 100 steps (issue #6), learned by
//! an LSTM, a GRU and an MGU, and not by an Elman network.
//!
//! `cargo run --release --example adding_problem` (optional arguments: the most training steps
//! per cell, default 4000, and the seed, default 0).
//!
//! Each step of a sequence holds a value uniform in [0, 1] and a marker, 1 at one step of the
//! first half and one of the second; the target is the sum of the two marked values
//! ([`typednet::data::adding`]). Predicting the mean, 1, scores a mean squared error of
//! 1/6 ≈ 0.167; a network beats it only by carrying the first marked value across ≥ 50 steps.
//!
//! Each cell (hidden size 64) reads the whole sequence with [`try_run_last`], and dfdx's
//! `Linear<64, 1>` maps its last hidden state to the prediction. Recipe: MSE loss, Adam with
//! learning rate 3e-3, batch 64 fresh sequences per step, the gradient clipped to global norm 1
//! ([`try_clip_grad_norm`]) before every update; the test MSE on a fixed set of 1,000 sequences
//! is measured every 100 steps and training stops once it is below 0.01.
//!
//! Results (2026-11-23, shared 2-core CPU, release build, `Cpu` device,
//! `nice -n 10 cargo run --release --example adding_problem`, i.e. seed 0 and at most 4000
//! steps). Predicting 1 scores 0.1630 on this test set. Seconds include the test evaluations;
//! the machine was shared, and an earlier run of the same code took 289, 52, 81 and 112 s:
//!
//! | cell | parameters | test MSE at step 500 / 1000 / 1500 | final test MSE | steps | seconds |
//! |---|---|---|---|---|---|
//! | `LstmCell` | 17,473 | 0.1661 / 0.1655 / 0.1208 | **0.0060** | 1,700 | 327 |
//! | `TorchGruCell` | 13,121 | 0.0106 / — / — | **0.0047** | 600 | 84 |
//! | `MguCell` | 8,769 | 0.1659 / 0.0055 / — | **0.0055** | 1,000 | 72 |
//! | `ElmanCell` | 4,417 | 0.1647 / 0.1690 / 0.1634 | 0.1762 | 4,000 | 75 |
//!
//! 9 minutes 18 seconds in all. Re-run on 2026-11-24 after the fused kernels (the same
//! seed, different rounding): LSTM 0.0055 after 1,700 steps (22 s), GRU 0.0047 after 600
//! (11 s), MGU 0.0055 after 1,000 (60 s), Elman 0.1762 after 4,000 (94 s); 188 s in all.
//!
//! The gated cells sit at the baseline for a while (the LSTM for
//! 1,400 steps) and then drop below 0.01 within 200–300 steps. With seed 1 (run on another,
//! 16-core machine, so no times) the figures were LSTM 0.0057 after 1,800 steps, GRU 0.0056
//! after 600, MGU 0.0097 after 800, Elman 0.1619 after 4,000.
//!
//! The Elman network never gets below the baseline: its gradient through 50 or more tanh steps
//! vanishes, so it never learns to keep the first marked value, and it predicts the mean.

use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};
use typednet::data::adding::{AddingBatch, AddingProblem};
use typednet::dfdx::losses::mse_loss;
use typednet::dfdx::nn::modules::{Linear, TensorCollection};
use typednet::dfdx::nn::{BuildModule, Module, ZeroGrads};
use typednet::dfdx::optim::{Adam, AdamConfig, Optimizer};
use typednet::dfdx::prelude::*;
use typednet::recurrent::{
    try_run_last, ElmanCell, LstmCell, MguCell, RecurrentCell, TorchGruCell,
};
use typednet::regularize::try_clip_grad_norm;
use typednet::train::ProgressBar;

/// The device: the GPU with `--features cuda`, the CPU otherwise.
#[cfg(feature = "cuda")]
type Dev = typednet::dfdx::tensor::Cuda;
/// The device: the GPU with `--features cuda`, the CPU otherwise.
#[cfg(not(feature = "cuda"))]
type Dev = typednet::dfdx::tensor::Cpu;

/// Sequence length `T`.
const STEPS: usize = 100;
/// Features per step: the value and the marker.
const FEATURES: usize = 2;
/// Hidden size of every cell.
const HIDDEN: usize = 64;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 3e-3;
/// The global gradient norm is clipped to this.
const MAX_GRAD_NORM: f64 = 1.0;
const TEST_SEQUENCES: usize = 1000;
/// Training steps between test evaluations.
const EVALUATE_EVERY: usize = 100;
/// Training stops once the test MSE is below this.
const TARGET_MSE: f64 = 0.01;

/// The device's error type.
type DevError = <Dev as HasErr>::Err;

/// The device's error as a boxed error (dfdx's `CudaError` implements `Debug` only).
fn device_error(error: DevError) -> Box<dyn std::error::Error> {
    format!("device error: {error:?}").into()
}
/// `[B, 1]` predictions or targets.
type Predictions<T> = Tensor<(usize, Const<1>), f32, Dev, T>;

/// A cell and a linear head on its last hidden state.
type Model<C> = (C, Linear<HIDDEN, 1, f32, Dev>);

/// What one cell's training came to.
struct Outcome {
    name: &'static str,
    test_mse: f64,
    steps: usize,
    seconds: f64,
}

/// `[B, T, 2]` sequences to `[B, 1]` predictions.
fn predict<C, T>(
    model: &Model<C>,
    x: Tensor<(usize, usize, Const<FEATURES>), f32, Dev, T>,
) -> Result<Predictions<T>, DevError>
where
    C: RecurrentCell<FEATURES, HIDDEN, f32, Dev>,
    T: Tape<f32, Dev>,
{
    let last = try_run_last(&model.0, x, None)?;
    // The tape travels on the state; the head needs it on h.
    let (state, tape) = C::split_state_tape(last);
    let h = C::hidden(&state).clone().put_tape(tape);
    model.1.try_forward(h)
}

fn test_mse<C>(
    model: &Model<C>,
    test: &AddingBatch,
    dev: &Dev,
) -> Result<f64, Box<dyn std::error::Error>>
where
    C: RecurrentCell<FEATURES, HIDDEN, f32, Dev>,
{
    let prediction = predict(model, test.inputs::<f32, _>(dev)).map_err(device_error)?;
    let mse = mse_loss(prediction, test.targets(dev));
    Ok(f64::from(mse.as_vec()[0]))
}

fn train<C>(
    name: &'static str,
    dev: &Dev,
    max_steps: usize,
    seed: u64,
    test: &AddingBatch,
) -> Result<Outcome, Box<dyn std::error::Error>>
where
    C: RecurrentCell<FEATURES, HIDDEN, f32, Dev> + TensorCollection<f32, Dev, To<f32, Dev> = C>,
{
    let problem = AddingProblem::new(STEPS);
    let mut model = Model::<C>::build(dev);
    let mut optimizer = Adam::new(
        &model,
        AdamConfig {
            lr: LEARNING_RATE,
            ..Default::default()
        },
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut grads = model.alloc_grads();
    let start = Instant::now();
    let mut mse = test_mse(&model, test, dev)?;
    println!(
        "{name}: {} parameters, test MSE {mse:.4} before training",
        model.num_trainable_params()
    );
    let mut steps = 0;
    let mut recent_loss = 0.0;
    // One bar per stretch between two log lines, cleared before each line is printed.
    let stretch = |after: usize| {
        let last = (after + EVALUATE_EVERY).min(max_steps);
        ProgressBar::stderr(format!("{name}: steps {}-{last}", after + 1), last - after)
    };
    let mut bar = stretch(0);
    while steps < max_steps && mse >= TARGET_MSE {
        let batch = problem.batch(BATCH, &mut rng);
        let x = batch.inputs::<f32, _>(dev).traced(grads);
        let loss = mse_loss(
            predict(&model, x).map_err(device_error)?,
            batch.targets(dev),
        );
        recent_loss += f64::from(loss.as_vec()[0]);
        grads = loss.backward();
        let norm = try_clip_grad_norm(&model, &mut grads, MAX_GRAD_NORM)?;
        optimizer.update(&mut model, &grads)?;
        model.zero_grads(&mut grads);
        steps += 1;
        let in_stretch = (steps - 1) % EVALUATE_EVERY + 1;
        bar.set(in_stretch, Some(recent_loss / in_stretch as f64));
        if steps % EVALUATE_EVERY == 0 {
            bar.finish_and_clear();
            mse = test_mse(&model, test, dev)?;
            println!(
                "{name}: step {steps:>5}  train MSE {:.4}  test MSE {mse:.4}  grad norm {norm:.3}  {:.0} s",
                recent_loss / EVALUATE_EVERY as f64,
                start.elapsed().as_secs_f64()
            );
            recent_loss = 0.0;
            bar = stretch(steps);
        }
    }
    bar.finish_and_clear();
    if steps % EVALUATE_EVERY != 0 {
        mse = test_mse(&model, test, dev)?;
    }
    Ok(Outcome {
        name,
        test_mse: mse,
        steps,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let max_steps: usize = args.next().map_or(Ok(4000), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(0), |a| a.parse())?;

    // The same held-out sequences for every cell and every seed.
    let test = AddingProblem::new(STEPS).batch(TEST_SEQUENCES, &mut StdRng::seed_from_u64(2024));
    let baseline = test
        .sums
        .iter()
        .map(|&y| (f64::from(y) - 1.0).powi(2))
        .sum::<f64>()
        / TEST_SEQUENCES as f64;
    println!(
        "adding problem, T = {STEPS}: {TEST_SEQUENCES} test sequences, MSE of predicting 1: {baseline:.4}"
    );

    let dev = Dev::seed_from_u64(seed);
    let data_seed = seed ^ 0xadd5_add5;
    let outcomes = [
        train::<LstmCell<FEATURES, HIDDEN, f32, Dev>>("LSTM", &dev, max_steps, data_seed, &test)?,
        train::<TorchGruCell<FEATURES, HIDDEN, f32, Dev>>(
            "GRU", &dev, max_steps, data_seed, &test,
        )?,
        train::<MguCell<FEATURES, HIDDEN, f32, Dev>>("MGU", &dev, max_steps, data_seed, &test)?,
        train::<ElmanCell<FEATURES, HIDDEN, f32, Dev>>("Elman", &dev, max_steps, data_seed, &test)?,
    ];
    println!("\nseed {seed}, at most {max_steps} steps of batch {BATCH}:");
    for o in &outcomes {
        println!(
            "{:>6}: test MSE {:.4} after {} steps, {:.0} s{}",
            o.name,
            o.test_mse,
            o.steps,
            o.seconds,
            if o.test_mse < TARGET_MSE {
                ""
            } else {
                "  (target 0.01 not reached)"
            }
        );
    }
    Ok(())
}
