//! A restricted Boltzmann machine on binarised MNIST, its test log-likelihood by annealed
//! importance sampling (issue #8, part 4).
//!
//! The shipped digits binarised at 0.5 (a pixel is on when its grey level / 255 > 0.5), the first
//! 8,000 to train and the last 2,000 to test. An RBM 784 × 500: weights N(0, 0.01²), visible
//! biases log(p / (1 − p)) from the training pixels' means, hidden biases 0; CD-1 with learning
//! rate 0.1, batches of 100 in the data's order (no shuffling), no momentum or weight decay.
//! Then log Z by AIS from the base-rate model of the training pixels' means (100 runs, the
//! 15,000-step schedule of Salakhutdinov & Murray, 2008) and the test log-likelihood
//! mean(−F(v)) − log Ẑ in nats per digit, for comparison with `tools/pytorch_mnist_rbm.py`, the
//! same recipe in PyTorch. Writes `target/figures/rbm_reconstructions.png` (20 test digits above
//! their mean-field reconstructions p(v | p(h | v))) and `target/figures/rbm_samples.png` (10
//! Gibbs chains started at test digits, one column each; the rows after 0, 1, 10, 100 and 1,000
//! block Gibbs steps, drawn as the mean p(v | h) of one more half step).
//!
//! ```text
//! cargo run --release --example mnist_rbm [epochs] [seed] [ais_fraction]
//! ```
//!
//! `ais_fraction` scales the AIS schedule's step counts (1 = 15,000 steps; 0.2 = 3,000).
//!
//! Seed 0, 20 epochs, full schedule (2026-11-23, 2-core CPU shared with other jobs): the
//! reconstruction error falls from 58.60 to 13.86 per digit (14.67 on the test digits);
//! AIS log Z = 490.89 ± 0.22 (standard error; log(Ẑ ± 3σ) = [489.86, 491.39], effective sample
//! size 17.9 of 100); test log-likelihood −111.49 nats per digit (train −106.46). PyTorch 2.15
//! with the same recipe (`tools/pytorch_mnist_rbm.py 20 1.0 0`): log Z 490.19 ± 0.10, test
//! log-likelihood −110.30 — 1.2 nats apart. Time: 2.5 s per epoch and 182 s for AIS (13 ms per
//! step) on an idle machine, 3 min 51 s in all; 2 min 33 s of CPU time over 13 min 23 s when
//! shared. The reconstructions are close to the digits; the chains keep the digit for about 10
//! steps and then, as usual for a CD-1 machine, drift to stroke fragments rather than new digits.
//!
//! Re-run on 2026-11-24 14:45 UTC after the fused RBM kernels (same seed, different rounding):
//! reconstruction error 13.86 per digit (14.66 on the test digits), AIS log Z = 490.80 ± 0.14
//! (effective sample size 33.8), test log-likelihood −111.67 nats per digit (train −106.66);
//! 9.8 s of training and 63 s of AIS.

mod common;

use common::{Device, Error, OrDeviceError};
use std::time::Instant;
use typednet::boltzmann::ais::{try_base_rate_visible_bias, AisSchedule};
use typednet::boltzmann::rbm::Rbm;
use typednet::data::Mnist;
use typednet::dfdx::prelude::*;
use typednet::plot::digit_grid;
use typednet::train::ProgressBar;

const PIXELS: usize = 784;
const TRAIN: usize = 8_000;
const TEST: usize = 2_000;
const HIDDEN: usize = 500;
const BATCH: usize = 100;
const LEARNING_RATE: f64 = 0.1;
const INITIAL_WEIGHT_STD: f64 = 0.01;
/// Parallel AIS runs.
const AIS_RUNS: usize = 100;
/// Digits in the reconstruction figure, and Gibbs chains in the samples figure.
const SHOWN: usize = 20;
const CHAINS: usize = 10;

type Model = Rbm<PIXELS, HIDDEN, f32, Device>;

/// Grey levels in [0, 1] to binary pixels: on when above one half.
fn binarise(grey: &[f32]) -> Vec<f32> {
    grey.iter()
        .map(|&x| if x > 0.5 { 1.0 } else { 0.0 })
        .collect()
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    let ais_fraction: f64 = args.next().map_or(Ok(1.0), |a| a.parse())?;
    let (train_set, test_set) = Mnist::load_shipped_split()?;
    if train_set.len() != TRAIN || test_set.len() != TEST {
        return Err(format!(
            "expected {TRAIN} training and {TEST} test digits, found {} and {}",
            train_set.len(),
            test_set.len()
        )
        .into());
    }
    let train_pixels = binarise(train_set.features());
    let test_pixels = binarise(test_set.features());
    let dev = Device::seed_from_u64(seed);
    let train: Tensor<Rank2<TRAIN, PIXELS>, f32, Device> = dev
        .try_tensor_from_vec(train_pixels.clone(), (Const, Const))
        .dev()?;
    let test: Tensor<Rank2<TEST, PIXELS>, f32, Device> = dev
        .try_tensor_from_vec(test_pixels.clone(), (Const, Const))
        .dev()?;
    let batches = train_pixels
        .chunks(BATCH * PIXELS)
        .map(|chunk| dev.try_tensor_from_vec(chunk.to_vec(), (Const::<BATCH>, Const::<PIXELS>)))
        .collect::<Result<Vec<_>, _>>()
        .dev()?;
    println!(
        "RBM {PIXELS} × {HIDDEN} on binarised MNIST: {TRAIN} training digits, {TEST} test digits, \
         CD-1, learning rate {LEARNING_RATE}, batch {BATCH}, {epochs} epochs, seed {seed}"
    );

    let mut rbm = Model::try_with_visible_bias_from_data(&dev, INITIAL_WEIGHT_STD, &train).dev()?;
    let training = Instant::now();
    for epoch in 1..=epochs {
        let start = Instant::now();
        let mut error = 0.0;
        let mut bar = ProgressBar::stderr(format!("epoch {epoch}/{epochs}"), batches.len());
        for (i, batch) in batches.iter().enumerate() {
            error += rbm
                .try_contrastive_divergence(batch, 1, LEARNING_RATE)
                .dev()?;
            bar.set(i + 1, None);
        }
        bar.finish_and_clear();
        println!(
            "epoch {epoch:>2}/{epochs}: reconstruction error {:.2} per digit ({:.1} s)",
            error / batches.len() as f64,
            start.elapsed().as_secs_f64()
        );
    }
    let training_seconds = training.elapsed().as_secs_f64();
    println!(
        "test reconstruction error {:.2} per digit; training took {training_seconds:.1} s",
        rbm.try_reconstruction_error(&test).dev()?
    );

    let schedule = AisSchedule::scaled_salakhutdinov_murray(ais_fraction);
    let base = try_base_rate_visible_bias(&train).dev()?;
    let annealing = Instant::now();
    let mut bar = ProgressBar::stderr("AIS", schedule.steps());
    let estimate = rbm
        .try_ais_log_partition_with_progress::<AIS_RUNS>(&base, &schedule, |done, _| {
            bar.set(done, None)
        })
        .dev()?;
    bar.finish_and_clear();
    let (low, high) = estimate.log_partition_interval(3.0);
    println!(
        "AIS ({AIS_RUNS} runs, {} steps, {:.1} s): log Z = {:.2} ± {:.2} (standard error; \
         log(Ẑ ± 3σ) = [{low:.2}, {high:.2}]), effective sample size {:.1}",
        schedule.steps(),
        annealing.elapsed().as_secs_f64(),
        estimate.log_partition,
        estimate.standard_error(),
        estimate.effective_sample_size()
    );
    let test_log_likelihood = rbm.try_ais_log_likelihood(&test, &estimate).dev()?;
    let train_log_likelihood = rbm.try_ais_log_likelihood(&train, &estimate).dev()?;
    println!(
        "test log-likelihood {test_log_likelihood:.2} nats per digit (train {train_log_likelihood:.2}); \
         PyTorch's with the same recipe: tools/pytorch_mnist_rbm.py"
    );

    let figures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/figures");
    std::fs::create_dir_all(&figures)?;
    write_figures(&rbm, &dev, &test_pixels, &figures)?;
    println!(
        "wrote rbm_reconstructions.png and rbm_samples.png in {}",
        figures.display()
    );
    Ok(())
}

/// The reconstruction grid (test digits above p(v | p(h | v))) and the Gibbs chains' grid.
fn write_figures(
    rbm: &Model,
    dev: &Device,
    test_pixels: &[f32],
    figures: &std::path::Path,
) -> Result<(), Error> {
    let originals = test_pixels[..SHOWN * PIXELS].to_vec();
    let shown: Tensor<Rank2<SHOWN, PIXELS>, f32, Device> = dev
        .try_tensor_from_vec(originals.clone(), (Const, Const))
        .dev()?;
    let reconstructions = rbm
        .try_visible_probabilities(&rbm.try_hidden_probabilities(&shown).dev()?)
        .dev()?
        .as_vec();
    let (top, bottom) = (&originals[..10 * PIXELS], &originals[10 * PIXELS..]);
    let (top_again, bottom_again) = reconstructions.split_at(10 * PIXELS);
    digit_grid(&[top, top_again, bottom, bottom_again], 28, 28, 2)?
        .write_png(figures.join("rbm_reconstructions.png"))?;

    // Chains started at test digits further on, so the two figures show different digits.
    let start = &test_pixels[SHOWN * PIXELS..(SHOWN + CHAINS) * PIXELS];
    let mut visible: Tensor<Rank2<CHAINS, PIXELS>, f32, Device> = dev
        .try_tensor_from_vec(start.to_vec(), (Const, Const))
        .dev()?;
    let mut rows = vec![start.to_vec()];
    let mut done = 0;
    for target in [1, 10, 100, 1_000] {
        visible = rbm.try_gibbs_sample(visible, target - done).dev()?;
        done = target;
        let mean = rbm
            .try_visible_probabilities(&rbm.try_sample_hidden(&visible).dev()?)
            .dev()?;
        rows.push(mean.as_vec());
    }
    let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    digit_grid(&refs, 28, 28, 2)?.write_png(figures.join("rbm_samples.png"))?;
    Ok(())
}
