//! A GAN and a conditional GAN on the shipped MNIST digits (issue #8, part 1).
//!
//! The GAN: G maps 64 standard-normal numbers through 256, 512 and 1024 leaky-ReLU units to 784
//! values in [−1, 1] (tanh; the pixels are scaled to match); D maps a digit through 512 and 256
//! leaky-ReLU units, each followed by dropout 0.3, to one logit. Adam 2e-4 (β₁ 0.5) for both,
//! batch 64, one discriminator step per generator step, the non-saturating generator loss, on
//! the first 8,000 digits. (With sigmoid outputs, pixels in [0, 1], G 256-512 and no dropout, D
//! won within five epochs — D(G(z)) 0.01 — and G collapsed to one speckled pattern, in PyTorch
//! as here.)
//!
//! The conditional GAN is the same with the one-hot digit class (times 5, see
//! `CONDITION_SCALE`) appended to G's noise and to D's input (`#[gan(condition = 10)]`), and a
//! matching-aware discriminator (`GanConfig::mismatched_conditions`: D also learns to reject
//! real digits paired with a wrong class). Plain concatenation learns the conditioning slowly:
//! after 30 epochs (seed 0) 74% of the samples were classified as the class asked for (68% in
//! PyTorch with the same recipe); with the one-hot at scale 1, 12% after 15 epochs; at scale 10
//! or 20, D won and G collapsed. With mismatched pairs, 90.3% (scale 1) and 92.5% (scale 5)
//! after 30 epochs.
//!
//! Judged by a LeNet-5 trained here with the main job's recipe:
//! - the classifier score exp E_x[KL(p(y|x) ‖ p(y))] (the Inception score with LeNet in place of
//!   Inception; between 1 and 10) of 2,000 real test digits, 2,000 GAN samples and 2,000
//!   images of uniform noise;
//! - for the conditional GAN, the share of its samples (100 per class) that LeNet classifies as
//!   the digit asked for.
//!
//! Writes `target/figures/gan_samples.png` (100 samples) and `target/figures/cgan_samples.png`
//! (row k: digits drawn for class k). `tools/pytorch_mnist_gan.py` is the same recipe in PyTorch.
//!
//! ```text
//! cargo run --release --example mnist_gan [epochs] [seed]
//! ```
//!
//! Seed 0, 40 epochs (2026-11-24, 2-core CPU, 4 min in all): LeNet-5 judge 96.95% on the real
//! test digits; classifier score 9.31 for real test digits, **5.22** for the GAN's samples, 1.21
//! for uniform noise; the conditional GAN drew the digit asked for **97.9%** of the time (per
//! class 83% for 5, 97% for 2, 99% for 6, 100% for the rest), classifier score 9.08. (The
//! 2026-11-23 run, before the deterministic sums: 5.40 and 93.2%. Re-run at 23:50 UTC, after the
//! judge's conv2 took the channel-lane weight gradient — other rounding in the judge only, the
//! GANs have no convolution: judge 96.90%, scores 9.28 / 5.19 / 1.20, conditional GAN 98.1%,
//! score 9.10.) PyTorch 2.15 with the same recipe
//! (`tools/pytorch_mnist_gan.py 40 0`, one thread): judge 96.95%, scores 9.22 / **4.95** / 1.36,
//! conditional GAN **97.7%** (score 8.89). One seed each: GAN training is noisy, and these are
//! single runs, not averages.

mod common;

use common::{Device, OrDeviceError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::data::Mnist;
use typednet::dfdx::optim::{Adam, AdamConfig};
use typednet::gan::{inception_score, try_noise, try_one_hot, Gan, GanConfig, GanTrainer};
use typednet::ops::try_concat_features;
use typednet::plot::digit_grid;
use typednet::prelude::*;
use typednet::train::{ProgressBar, Trainer, Verbosity};

network! {
    /// G: 64 noise numbers → a digit.
    pub struct Generator: [64]
        -> linear(256) -> leaky_relu(0.2)
        -> linear(512) -> leaky_relu(0.2)
        -> linear(1024) -> leaky_relu(0.2)
        -> linear(784) -> tanh;
    /// D: a digit → the logit of "real".
    pub struct Discriminator: [784]
        -> linear(512) -> leaky_relu(0.2) -> dropout(0.3)
        -> linear(256) -> leaky_relu(0.2) -> dropout(0.3)
        -> linear(1);
    #[gan]
    pub struct MnistGan = Generator -> Discriminator;

    /// G for p(x|y): 64 noise numbers and the one-hot class → a digit of that class.
    pub struct ConditionalGenerator: [74]
        -> linear(256) -> leaky_relu(0.2)
        -> linear(512) -> leaky_relu(0.2)
        -> linear(1024) -> leaky_relu(0.2)
        -> linear(784) -> tanh;
    /// D for p(x|y): a digit and its one-hot class → the logit of "a real digit of that class".
    pub struct ConditionalDiscriminator: [794]
        -> linear(512) -> leaky_relu(0.2) -> dropout(0.3)
        -> linear(256) -> leaky_relu(0.2) -> dropout(0.3)
        -> linear(1);
    #[gan(condition = 10)]
    pub struct ConditionalMnistGan = ConditionalGenerator -> ConditionalDiscriminator;

    /// The judge: the main job's classifier.
    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten -> linear(120) -> relu -> linear(84) -> relu -> linear(10);
}

type Error = Box<dyn std::error::Error>;
type Batch<const F: usize> = Tensor<(usize, Const<F>), f32, Device>;

const BATCH: usize = 64;
/// Samples scored per source (real, GAN, noise).
const SCORED: usize = 2000;
const SAMPLES_PER_CLASS: usize = 100;
/// The one-hot condition's scale. At 1 it is 10 of D's 794 inputs beside 784 pixels of magnitude
/// about 1, and D learns to use it slowly (see the module documentation).
const CONDITION_SCALE: f32 = 5.0;

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 2e-4,
        betas: [0.5, 0.999],
        ..Default::default()
    }
}

/// The condition fed to both networks: the one-hot class times [`CONDITION_SCALE`].
fn scaled(one_hot: Batch<10>) -> Result<Batch<10>, Error> {
    one_hot.try_mul(CONDITION_SCALE).dev()
}

/// Pixels in [0, 1] → [−1, 1], the range of G's tanh.
fn to_signed(pixels: Batch<784>) -> Result<Batch<784>, Error> {
    pixels.try_mul(2.0).and_then(|x| x.try_sub(1.0)).dev()
}

/// G's samples in [−1, 1] → pixels in [0, 1], as host values.
fn to_unit(samples: Batch<784>) -> Result<Vec<f32>, Error> {
    Ok(samples
        .try_add(1.0)
        .and_then(|x| x.try_mul(0.5))
        .dev()?
        .as_vec())
}

/// LeNet's p(y|x) for `digits` (`n × 784` pixels), as f64 rows of 10.
fn class_probabilities(
    lenet: &LeNet5<f32, Device>,
    digits: Vec<f32>,
    dev: &Device,
) -> Result<Vec<f64>, Error> {
    let n = digits.len() / 784;
    let images: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Device> = dev
        .try_tensor_from_vec(digits, (n, Const, Const, Const))
        .dev()?;
    let logits = lenet.try_forward(images).dev()?.as_vec();
    let mut probabilities = Vec::with_capacity(logits.len());
    for row in logits.chunks(10) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let exps: Vec<f64> = row.iter().map(|&l| (l as f64 - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        probabilities.extend(exps.iter().map(|e| e / total));
    }
    Ok(probabilities)
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap_or(0)
}

/// The first 100 digits of `pixels` (`n × 784`) as a 10 × 10 PNG grid.
fn write_grid(pixels: &[f32], path: &std::path::Path) -> Result<(), Error> {
    let rows: Vec<&[f32]> = pixels.chunks(10 * 784).take(10).collect();
    digit_grid(&rows, 28, 28, 2)?.write_png(path)?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().map_or(Ok(40), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    let (train_set, test_set) = Mnist::load_shipped_split()?;
    let dev = Device::seed_from_u64(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    println!(
        "{} training digits, {} test digits, {epochs} epochs, batch {BATCH}, seed {seed}",
        train_set.len(),
        test_set.len()
    );
    let figures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/figures");
    std::fs::create_dir_all(&figures)?;

    // The GAN.
    let mut gan = MnistGan::<f32, Device>::new(&dev);
    println!("{}", gan.summary());
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(gan.generator(), adam()),
        Adam::new(gan.discriminator(), adam()),
        GanConfig::default(),
    )?;
    let start = std::time::Instant::now();
    for epoch in 1..=epochs {
        let epoch_start = std::time::Instant::now();
        let (mut d_loss, mut g_loss, mut real_score, mut fake_score, mut rounds) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        let batches = train_set.shuffled_batches::<Rank1<784>, _>(BATCH, &mut rng)?;
        let mut bar = ProgressBar::stderr(format!("GAN epoch {epoch}/{epochs}"), batches.len());
        for (i, batch) in batches.enumerate() {
            let real = to_signed(batch.try_to_tensor(&dev).dev()?)?;
            let step = trainer.try_step(&mut gan, vec![real])?;
            d_loss += step.discriminator.loss;
            g_loss += step.generator_loss;
            real_score += step.discriminator.real_score;
            fake_score += step.discriminator.fake_score;
            rounds += 1.0;
            bar.set(i + 1, None);
        }
        bar.finish_and_clear();
        if epoch == 1 || epoch % 5 == 0 || epoch == epochs {
            println!(
                "GAN epoch {epoch:>3}/{epochs}: D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2} ({:.1} s)",
                d_loss / rounds,
                g_loss / rounds,
                real_score / rounds,
                fake_score / rounds,
                epoch_start.elapsed().as_secs_f64()
            );
        }
    }
    println!("GAN trained in {:.0} s", start.elapsed().as_secs_f64());
    let gan_samples = gan
        .try_generate(try_noise::<64, f32, Device>(&dev, SCORED).dev()?)
        .dev()?;
    let gan_samples = to_unit(gan_samples)?;
    write_grid(&gan_samples, &figures.join("gan_samples.png"))?;

    // The conditional GAN.
    let mut cgan = ConditionalMnistGan::<f32, Device>::new(&dev);
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(cgan.generator(), adam()),
        Adam::new(cgan.discriminator(), adam()),
        GanConfig {
            mismatched_conditions: true,
            ..Default::default()
        },
    )?;
    let start = std::time::Instant::now();
    for epoch in 1..=epochs {
        let epoch_start = std::time::Instant::now();
        let (mut d_loss, mut g_loss, mut rounds) = (0.0, 0.0, 0.0);
        let batches = train_set.shuffled_batches::<Rank1<784>, _>(BATCH, &mut rng)?;
        let mut bar = ProgressBar::stderr(
            format!("conditional GAN epoch {epoch}/{epochs}"),
            batches.len(),
        );
        for (i, batch) in batches.enumerate() {
            let real = to_signed(batch.try_to_tensor(&dev).dev()?)?;
            let condition = scaled(try_one_hot::<10, f32, Device>(&dev, &batch.labels()).dev()?)?;
            let (generator, discriminator) = cgan.parts_mut();
            let step = trainer.try_conditional_discriminator_step(
                generator,
                discriminator,
                real,
                condition.clone(),
            )?;
            g_loss +=
                trainer.try_conditional_generator_step(generator, discriminator, condition)?;
            d_loss += step.loss;
            rounds += 1.0;
            bar.set(i + 1, None);
        }
        bar.finish_and_clear();
        if epoch == 1 || epoch % 5 == 0 || epoch == epochs {
            println!(
                "conditional GAN epoch {epoch:>3}/{epochs}: D loss {:.3}, G loss {:.3} ({:.1} s)",
                d_loss / rounds,
                g_loss / rounds,
                epoch_start.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "conditional GAN trained in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    let requested: Vec<usize> = (0..10)
        .flat_map(|k| std::iter::repeat_n(k, SAMPLES_PER_CLASS))
        .collect();
    let noise = try_noise::<64, f32, Device>(&dev, requested.len()).dev()?;
    let condition = scaled(try_one_hot::<10, f32, Device>(&dev, &requested).dev()?)?;
    let input: Batch<74> = try_concat_features(noise, condition).dev()?;
    let cgan_samples = to_unit(cgan.try_generate(input).dev()?)?;
    let first_ten: Vec<f32> = (0..10)
        .flat_map(|k| cgan_samples[k * SAMPLES_PER_CLASS * 784..][..10 * 784].to_vec())
        .collect();
    write_grid(&first_ten, &figures.join("cgan_samples.png"))?;

    // The judge: LeNet-5 with the main job's recipe.
    let mut lenet = LeNet5::<f32, Device>::new(&dev);
    let mut optimizer = Adam::new(
        &lenet,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let history = Trainer::new(&dev)
        .epochs(10)
        .batch_size(64)
        .verbosity(Verbosity::Silent)
        .fit_images::<1, 28, 28, 10, f32, _, _, _>(
            &mut lenet,
            &mut optimizer,
            &train_set,
            &test_set,
            &mut StdRng::seed_from_u64(seed),
        )?;
    let accuracy = history.last().ok_or("no epochs")?.test_accuracy;
    println!(
        "LeNet-5 judge: {:.2}% on the real test digits",
        100.0 * accuracy
    );

    let real = test_set.features().to_vec();
    let noise: Vec<f32> = dev
        .try_sample_like(
            &(SCORED * 784,),
            rand::distributions::Uniform::new(0.0f32, 1.0),
        )
        .dev()?
        .as_vec();
    for (name, digits) in [
        ("real test digits", real),
        ("GAN samples", gan_samples),
        ("uniform noise", noise),
    ] {
        let probabilities = class_probabilities(&lenet, digits, &dev)?;
        let score = inception_score(&probabilities, 10).ok_or("no samples to score")?;
        println!("classifier score (LeNet-5 Inception score, 1 to 10) of {name}: {score:.2}");
    }

    let probabilities = class_probabilities(&lenet, cgan_samples, &dev)?;
    let mut right = [0usize; 10];
    for (row, &want) in probabilities.chunks(10).zip(&requested) {
        if argmax(row) == want {
            right[want] += 1;
        }
    }
    let per_class: Vec<String> = right
        .iter()
        .enumerate()
        .map(|(k, r)| format!("{k}: {:.0}%", 100.0 * *r as f64 / SAMPLES_PER_CLASS as f64))
        .collect();
    println!(
        "conditional GAN: {:.1}% of {} drawn digits classified as the digit asked for ({})",
        100.0 * right.iter().sum::<usize>() as f64 / requested.len() as f64,
        requested.len(),
        per_class.join(", ")
    );
    let cgan_score = inception_score(&probabilities, 10).ok_or("no samples to score")?;
    println!("classifier score of the conditional GAN's samples: {cgan_score:.2}");
    println!(
        "wrote gan_samples.png and cgan_samples.png (row k: class k) in {}",
        figures.display()
    );
    Ok(())
}
