//! Training steps of the generative models of issue #8, for the comparison with PyTorch
//! (`benches/compare/run.sh generative`; twins of the same names in
//! `benches/compare/pytorch_benches.py`).
//!
//! - `train/rbm_cd1_784x256_b64`: one CD-1 update of a 784 × 256 RBM on a batch of 64 binary
//!   vectors: p(h|v₀), a hidden sample, a visible sample, p(h|v₁), the statistics and the update
//!   of W, b and c;
//! - `train/gan_g64-256-784_d784-256-1_b64`: one GAN round, a discriminator step (G's samples of
//!   64 noise vectors, D on them and on 64 real vectors, BCE with logits, backward, Adam) then a
//!   generator step (64 new noise vectors through G and D, the non-saturating loss, backward,
//!   Adam). Leaky ReLU 0.2 in both networks.
//!
//! The data are drawn once: binary with probability 0.5 for the RBM, uniform in [0, 1] for the
//! GAN.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use typednet::boltzmann::rbm::Rbm;
use typednet::boltzmann::try_sample_bernoulli;
use typednet::gan::{Gan, GanConfig, GanTrainer};
use typednet::optim::{Adam, AdamConfig};
use typednet::prelude::*;

network! {
    pub struct BenchGenerator: [64] -> linear(256) -> leaky_relu(0.2) -> linear(784) -> sigmoid;
    pub struct BenchDiscriminator: [784] -> linear(256) -> leaky_relu(0.2) -> linear(1);
    #[gan]
    pub struct BenchGan = BenchGenerator -> BenchDiscriminator;
}

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 2e-4,
        betas: [0.5, 0.999],
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let mut group = c.benchmark_group("train");
    group.sampling_mode(SamplingMode::Flat);

    let mut rbm = Rbm::<784, 256, f32, Cpu>::try_new(&dev, 0.01).unwrap();
    let half: Tensor<Rank2<64, 784>, f32, Cpu> = dev.ones() * 0.5;
    let data = try_sample_bernoulli(&half).unwrap();
    group.bench_function("rbm_cd1_784x256_b64", |b| {
        b.iter(|| {
            let gradient = rbm.try_contrastive_divergence_gradient(&data, 1).unwrap();
            rbm.try_ascend(&gradient, 0.05).unwrap();
            black_box(&rbm);
        })
    });

    let mut gan = BenchGan::<f32, Cpu>::new(&dev);
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(gan.generator(), adam()),
        Adam::new(gan.discriminator(), adam()),
        GanConfig::default(),
    )
    .unwrap();
    let real: Tensor<(usize, Const<784>), f32, Cpu> = dev.sample_uniform_like(&(64, Const::<784>));
    group.bench_function("gan_g64-256-784_d784-256-1_b64", |b| {
        b.iter(|| black_box(trainer.try_step(&mut gan, vec![real.clone()]).unwrap()))
    });
    group.finish();
}

criterion_group! {
    name = generative;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(10);
    targets = benches
}
criterion_main!(generative);
