//! A variational autoencoder and a conditional one on MNIST (issue #7, part 6).
//!
//! The VAE: 784 → 400 (ReLU) → μ, log σ² (20 each; log σ² is a `head` of the encoder) → z by
//! reparameterisation → 400 (ReLU) → 784 Bernoulli logits, trained on −ELBO (nats per digit)
//! with Adam 1e-3, batch 128, on the first 8,000 shipped digits. Reports the test ELBO on the
//! last 2,000 (one z per digit) for comparison with `tools/pytorch_mnist_vae.py`, the same model
//! and recipe in PyTorch; writes `target/figures/vae_samples.png` (digits decoded from z ~ N(0, I))
//! and `target/figures/vae_chain.png` (the notes' chain: x̂ ~ p(x), ẑ ~ q(z|x̂), x′ ~ p(x|ẑ), one
//! row each).
//!
//! The conditional VAE learns p(x|y): the encoder sees the digit and its one-hot label, the
//! decoder z and the label. Asked for each class 0–9, it decodes 100 codes from the prior; a
//! LeNet-5 trained here with the main job's recipe classifies them, and the fraction classified
//! as the requested digit is reported (`target/figures/cvae_samples.png`: one row per class).
//!
//! ```text
//! cargo run --release --example mnist_vae [epochs] [seed]
//! ```
//!
//! Seed 0, 10 epochs (2026-11-23, 2-core CPU, 48 s in all): VAE test ELBO −123.08 nats per digit
//! (reconstruction −101.65, KL 21.43); PyTorch 2.15 with the same model and recipe
//! (`tools/pytorch_mnist_vae.py 10 0 1`): −122.85 and −123.29 for seeds 0 and 1 — within 0.3
//! nats. The conditional VAE (30 epochs, a 4-d code): 91.7% of 1,000 drawn digits classified as
//! the digit asked for by a LeNet-5 that scores 97.3% on real test digits (per class 81% for 5
//! to 99% for 8). With a 20-d code and 10 epochs it drew the asked digit only 31.5% of the time:
//! the code carried the class and the decoder ignored the label.
//!
//! Re-run on 2026-11-24 14:45 UTC after the fused ops and the deterministic sums (same seed,
//! different rounding; 17 s in all): test ELBO −123.28 nats per digit (reconstruction −101.84,
//! KL 21.44), still within PyTorch's −122.85 to −123.29; the conditional VAE drew the asked
//! digit 91.6% of the time, judged by a LeNet-5 scoring 97.00% on real test digits.
//! Re-run on 2026-11-24 23:45 UTC after the convolution's weight gradient moved to the channel
//! lanes (the judge's conv2: other rounding; the VAEs have no convolution): the same ELBO, a judge
//! scoring 97.10%, and the conditional VAE's digits classified as asked 91.2% of the time.

mod common;

use common::{Device, OrDeviceError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::autoencoder::variational::{try_bernoulli_nll_with_logits, try_gaussian_sample};
use typednet::data::{Dataset, Mnist};
use typednet::dfdx::optim::{Adam, AdamConfig, Optimizer};
use typednet::ops::try_concat_features;
use typednet::plot::digit_grid;
use typednet::prelude::*;
use typednet::train::{ProgressBar, Trainer, Verbosity};

network! {
    /// q(z|x): μ is the main output, log σ² a head on the same hidden layer.
    pub struct VaeEncoder: [784] -> linear(400) -> relu -> log_variance: head(linear(20)) -> linear(20);
    /// p(x|z) as Bernoulli logits.
    pub struct VaeDecoder: [20] -> linear(400) -> relu -> linear(784);
    /// `forward` decodes the mean code: the VAE's deterministic reconstruction (as logits).
    #[autoencoder]
    pub struct Vae = VaeEncoder -> VaeDecoder;

    /// q(z|x, y): the digit and its one-hot label. A 4-d code: small enough that the decoder
    /// must take the digit's class from `y` and leaves `z` the style.
    pub struct CvaeEncoder: [794] -> linear(400) -> relu -> log_variance: head(linear(4)) -> linear(4);
    /// p(x|z, y).
    pub struct CvaeDecoder: [14] -> linear(400) -> relu -> linear(784);

    /// The main job's classifier, to check what the conditional VAE draws.
    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten -> linear(120) -> relu -> linear(84) -> relu -> linear(10);
}

type Error = Box<dyn std::error::Error>;
type Taped = OwnedTape<f32, Device>;
/// A loss term on the gradient tape.
type Scalar = Tensor<Rank0, f32, Device, Taped>;
type Batch<const F: usize, T = NoneTape> = Tensor<(usize, Const<F>), f32, Device, T>;

const BATCH: usize = 128;
const SAMPLES_PER_CLASS: usize = 100;
/// The conditional VAE's epochs: it needs more than the VAE to learn to draw the class asked for.
const CVAE_EPOCHS: usize = 30;

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 1e-3,
        ..Default::default()
    }
}

/// Digits with their one-hot labels appended: `[n, 794]`.
fn with_labels(pixels: &[f32], labels: &[usize]) -> Vec<f32> {
    let mut joined = Vec::with_capacity(labels.len() * 794);
    for (digit, &label) in pixels.chunks(784).zip(labels) {
        joined.extend_from_slice(digit);
        joined.extend((0..10).map(|k| if k == label { 1.0 } else { 0.0 }));
    }
    joined
}

fn one_hot(labels: &[usize], dev: &Device) -> Result<Batch<10>, Error> {
    let mut values = vec![0.0; labels.len() * 10];
    for (row, &label) in labels.iter().enumerate() {
        values[row * 10 + label] = 1.0;
    }
    dev.try_tensor_from_vec(values, (labels.len(), Const)).dev()
}

/// −ELBO's two terms (nats per digit) for a batch: reconstruction NLL and KL.
fn vae_terms(
    vae: &Vae<f32, Device>,
    x: Batch<784, Taped>,
    clean: Batch<784>,
    rng: &mut StdRng,
) -> Result<(Scalar, Scalar), Error> {
    let (mean, (log_variance,)) = vae.vae_encoder.try_forward_with_heads(x).dev()?;
    let sample = try_gaussian_sample(mean, log_variance, rng).dev()?;
    let logits = vae.vae_decoder.try_forward(sample.code).dev()?;
    Ok((
        try_bernoulli_nll_with_logits(logits, clean).dev()?,
        sample.kl,
    ))
}

fn cvae_terms(
    model: &(CvaeEncoder<f32, Device>, CvaeDecoder<f32, Device>),
    x: Batch<794, Taped>,
    clean: Batch<784>,
    labels: Batch<10>,
    rng: &mut StdRng,
) -> Result<(Scalar, Scalar), Error> {
    let (mean, (log_variance,)) = model.0.try_forward_with_heads(x).dev()?;
    let sample = try_gaussian_sample(mean, log_variance, rng).dev()?;
    let joined: Batch<14, Taped> = try_concat_features(sample.code, labels).dev()?;
    let logits = model.1.try_forward(joined).dev()?;
    Ok((
        try_bernoulli_nll_with_logits(logits, clean).dev()?,
        sample.kl,
    ))
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().map_or(Ok(10), |a| a.parse())?;
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

    // The VAE.
    let mut vae = Vae::<f32, Device>::new(&dev);
    println!("{}", vae.summary());
    let mut optimizer = Adam::new(&vae, adam());
    let mut gradients = vae.try_alloc_grads().dev()?;
    for epoch in 1..=epochs {
        let start = std::time::Instant::now();
        let mut total = 0.0;
        let batches = train_set.shuffled_batches::<Rank1<784>, _>(BATCH, &mut rng)?;
        let mut bar = ProgressBar::stderr(format!("VAE epoch {epoch}/{epochs}"), batches.len());
        let mut seen = 0;
        for (i, batch) in batches.enumerate() {
            let x: Batch<784> = batch.try_to_tensor(&dev).dev()?;
            let (nll, kl) = vae_terms(&vae, x.clone().traced(gradients), x, &mut rng)?;
            let loss = nll + kl;
            total += loss.array() as f64 * batch.len() as f64;
            gradients = loss.backward();
            optimizer
                .update(&mut vae, &gradients)
                .map_err(|e| format!("{e:?}"))?;
            vae.zero_grads(&mut gradients);
            seen += batch.len();
            bar.set(i + 1, Some(total / seen as f64));
        }
        bar.finish_and_clear();
        println!(
            "VAE epoch {epoch:>2}/{epochs}: train −ELBO {:.2} nats ({:.1} s)",
            total / train_set.len() as f64,
            start.elapsed().as_secs_f64()
        );
    }
    let test: Batch<784> = dev
        .try_tensor_from_vec(test_set.features().to_vec(), (test_set.len(), Const))
        .dev()?;
    let (nll, kl) = vae_terms(
        &vae,
        test.clone().retaped::<Taped>(),
        test.clone(),
        &mut rng,
    )?;
    let (nll, kl) = (nll.array(), kl.array());
    println!(
        "VAE test ELBO {:.2} nats per digit (reconstruction {:.2}, KL {kl:.2}); PyTorch's with the same recipe: tools/pytorch_mnist_vae.py",
        -(nll + kl),
        -nll
    );

    // Digits from the prior, and the chain x̂ ~ p(x), ẑ ~ q(z|x̂), x′ ~ p(x|ẑ).
    let prior: Batch<20> = dev.sample_normal_like(&(100, Const));
    let drawn = vae.try_decode(prior).dev()?.try_sigmoid().dev()?;
    let rows: Vec<Vec<f32>> = drawn
        .as_vec()
        .chunks(10 * 784)
        .map(|r| r.to_vec())
        .collect();
    let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    digit_grid(&refs, 28, 28, 2)?.write_png(figures.join("vae_samples.png"))?;
    let first_row: Batch<784> = dev
        .try_tensor_from_vec(rows[0].clone(), (10, Const))
        .dev()?;
    let (mean, (log_variance,)) = vae.vae_encoder.try_forward_with_heads(first_row).dev()?;
    let code = try_gaussian_sample(mean, log_variance, &mut rng)
        .dev()?
        .code;
    let again = vae.try_decode(code).dev()?.try_sigmoid().dev()?.as_vec();
    digit_grid(&[&rows[0], &again], 28, 28, 2)?.write_png(figures.join("vae_chain.png"))?;
    println!("wrote vae_samples.png (100 digits from z ~ N(0, I)) and vae_chain.png (x̂ ~ p(x), then x′ ~ p(x|ẑ), ẑ ~ q(z|x̂)) in {}", figures.display());

    // The conditional VAE.
    let mut cvae = (
        CvaeEncoder::<f32, Device>::new(&dev),
        CvaeDecoder::<f32, Device>::new(&dev),
    );
    let mut optimizer = Adam::new(&cvae, adam());
    let mut gradients = cvae.try_alloc_grads().dev()?;
    for epoch in 1..=CVAE_EPOCHS {
        let start = std::time::Instant::now();
        let mut total = 0.0;
        let batches = train_set.shuffled_batches::<Rank1<784>, _>(BATCH, &mut rng)?;
        let mut bar =
            ProgressBar::stderr(format!("CVAE epoch {epoch}/{CVAE_EPOCHS}"), batches.len());
        let mut seen = 0;
        for (i, batch) in batches.enumerate() {
            let clean: Batch<784> = batch.try_to_tensor(&dev).dev()?;
            let labels = batch.labels();
            let joined: Batch<794> = dev
                .try_tensor_from_vec(
                    with_labels(&batch.features::<f32>(), &labels),
                    (labels.len(), Const),
                )
                .dev()?;
            let (nll, kl) = cvae_terms(
                &cvae,
                joined.traced(gradients),
                clean,
                one_hot(&labels, &dev)?,
                &mut rng,
            )?;
            let loss = nll + kl;
            total += loss.array() as f64 * batch.len() as f64;
            gradients = loss.backward();
            optimizer
                .update(&mut cvae, &gradients)
                .map_err(|e| format!("{e:?}"))?;
            cvae.zero_grads(&mut gradients);
            seen += batch.len();
            bar.set(i + 1, Some(total / seen as f64));
        }
        bar.finish_and_clear();
        println!(
            "conditional VAE epoch {epoch:>2}/{CVAE_EPOCHS}: train −ELBO {:.2} nats ({:.1} s)",
            total / train_set.len() as f64,
            start.elapsed().as_secs_f64()
        );
    }

    // The judge: LeNet-5 with the main job's recipe.
    let mut lenet = LeNet5::<f32, Device>::new(&dev);
    let mut optimizer = Adam::new(&lenet, adam());
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
    let judge_accuracy = history.last().ok_or("no epochs")?.test_accuracy;
    println!(
        "LeNet-5 judge: {:.2}% on the real test digits",
        100.0 * judge_accuracy
    );

    let requested: Vec<usize> = (0..10)
        .flat_map(|k| std::iter::repeat_n(k, SAMPLES_PER_CLASS))
        .collect();
    let prior: Batch<4> = dev.sample_normal_like(&(requested.len(), Const));
    let joined: Batch<14> = try_concat_features(prior, one_hot(&requested, &dev)?).dev()?;
    let drawn = cvae
        .1
        .try_forward(joined)
        .dev()?
        .try_sigmoid()
        .dev()?
        .as_vec();
    let drawn_set = Dataset::new(
        "conditional VAE samples",
        drawn.clone(),
        requested.clone(),
        vec![1, 28, 28],
        10,
    )?;
    let as_images: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Device> = dev
        .try_tensor_from_vec(drawn, (requested.len(), Const, Const, Const))
        .dev()?;
    let predicted = lenet.try_forward(as_images).dev()?;
    let predicted = predicted.as_vec();
    let mut right = [0usize; 10];
    for (row, &want) in predicted.chunks(10).zip(&requested) {
        let best = (0..10)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        if best == want {
            right[want] += 1;
        }
    }
    let per_class: Vec<String> = right
        .iter()
        .enumerate()
        .map(|(k, r)| format!("{k}: {r}%"))
        .collect();
    println!(
        "conditional VAE: {:.1}% of {} drawn digits classified as the digit asked for ({})",
        100.0 * right.iter().sum::<usize>() as f64 / requested.len() as f64,
        requested.len(),
        per_class.join(", ")
    );
    let rows: Vec<Vec<f32>> = (0..10)
        .map(|k| drawn_set.features()[k * SAMPLES_PER_CLASS * 784..][..10 * 784].to_vec())
        .collect();
    let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    digit_grid(&refs, 28, 28, 2)?.write_png(figures.join("cvae_samples.png"))?;
    println!("wrote cvae_samples.png (row k: digits drawn for class k)");
    Ok(())
}
