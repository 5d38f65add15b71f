//! Training steps of the autoencoders of issue #7, for the comparison with PyTorch
//! (`benches/compare/run.sh autoencoder`; twins of the same names in
//! `benches/compare/pytorch_benches.py`).
//!
//! - `train/autoencoder_784-256-64-256-784_b128`: a deep autoencoder (ReLU between, sigmoid
//!   output), mean squared error against its input (`typednet::loss::l2_loss`), backward, Adam;
//! - `train/vae_784-400-20-400-784_b128`: a VAE (log σ² a head of the encoder), one
//!   reparameterised sample, Bernoulli NLL from logits + closed-form KL, backward, Adam.
//!
//! The inputs are uniform in [0, 1] (pixel-like), drawn once.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use dfdx::nn::ZeroGrads;
use dfdx::optim::Optimizer;
use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::autoencoder::variational::{try_bernoulli_nll_with_logits, try_gaussian_sample};
use typednet::loss::{l2_loss, Reduction};
use typednet::optim::{Adam, AdamConfig};
use typednet::prelude::*;

network! {
    pub struct DeepEncoder: [784] -> linear(256) -> relu -> linear(64);
    pub struct DeepDecoder: [64] -> linear(256) -> relu -> linear(784) -> sigmoid;
    #[autoencoder]
    pub struct Deep = DeepEncoder -> DeepDecoder;

    pub struct VaeEncoder: [784] -> linear(400) -> relu -> log_variance: head(linear(20)) -> linear(20);
    pub struct VaeDecoder: [20] -> linear(400) -> relu -> linear(784);
    #[autoencoder]
    pub struct Vae = VaeEncoder -> VaeDecoder;
}

const BATCH: usize = 128;

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 1e-3,
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let x: Tensor<(usize, Const<784>), f32, Cpu> = dev.sample_uniform_like(&(BATCH, Const::<784>));
    let mut group = c.benchmark_group("train");
    group.sampling_mode(SamplingMode::Flat);

    let mut deep = Deep::<f32, Cpu>::new(&dev);
    let mut optimizer = Adam::new(&deep, adam());
    let mut grads = Some(deep.alloc_grads());
    group.bench_function("autoencoder_784-256-64-256-784_b128", |b| {
        b.iter(|| {
            let reconstruction = deep.forward(x.clone().traced_input(grads.take().unwrap()));
            let loss = l2_loss(reconstruction, x.clone(), Reduction::Mean);
            let mut g = loss.backward();
            optimizer.update(&mut deep, &g).unwrap();
            deep.zero_grads(&mut g);
            grads = Some(g);
        })
    });

    let mut vae = Vae::<f32, Cpu>::new(&dev);
    let mut optimizer = Adam::new(&vae, adam());
    let mut grads = Some(vae.alloc_grads());
    let mut rng = StdRng::seed_from_u64(0);
    group.bench_function("vae_784-400-20-400-784_b128", |b| {
        b.iter(|| {
            let (mean, (log_variance,)) = vae
                .vae_encoder
                .try_forward_with_heads(x.clone().traced_input(grads.take().unwrap()))
                .unwrap();
            let sample = try_gaussian_sample(mean, log_variance, &mut rng).unwrap();
            let logits = vae.vae_decoder.forward(sample.code);
            let loss = try_bernoulli_nll_with_logits(logits, x.clone()).unwrap() + sample.kl;
            let mut g = loss.backward();
            optimizer.update(&mut vae, &g).unwrap();
            vae.zero_grads(&mut g);
            grads = Some(g);
            black_box(());
        })
    });
    group.finish();
}

criterion_group! {
    name = autoencoder;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(autoencoder);
