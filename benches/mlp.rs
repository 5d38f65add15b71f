//! A full training step (forward, cross-entropy, backward, Adam update) of the MLP
//! 784-256-128-10 declared with `network!`, batch 128, on random data — the first row of the
//! speed anchors in `BENCHMARKS.md`. PyTorch's figure comes from `tools/bench_pytorch_mlp.py`,
//! run side by side by `tools/bench_mlp_side_by_side.sh`.
//!
//! `cargo bench --bench mlp`

use criterion::{criterion_group, criterion_main, Criterion};
use dfdx::losses::cross_entropy_with_logits_loss;
use dfdx::optim::{Adam, AdamConfig, Optimizer};
use typednet::prelude::*;

network! {
    /// The MLP of the main job.
    pub struct Mlp: [784] -> linear(256) -> relu -> linear(128) -> relu -> linear(10);
}

const BATCH: usize = 128;

fn training_step(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Mlp::<f32, Cpu>::new(&dev);
    // An Option so the closure can move the gradients into the tape and take them back.
    let mut grads = Some(net.alloc_grads());
    let mut opt = Adam::new(
        &net,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let x = dev.sample_normal::<Rank2<BATCH, 784>>();
    let targets = dev
        .sample_uniform::<Rank2<BATCH, 10>>()
        .softmax::<Axis<1>>();
    c.bench_function("mlp 784-256-128-10 training step, batch 128", |b| {
        b.iter(|| {
            let logits = net.forward(x.clone().traced(grads.take().unwrap()));
            let loss = cross_entropy_with_logits_loss(logits, targets.clone());
            let mut g = loss.backward();
            opt.update(&mut net, &g).unwrap();
            net.zero_grads(&mut g);
            grads = Some(g);
        })
    });
    c.bench_function("mlp 784-256-128-10 inference, batch 128", |b| {
        b.iter(|| net.forward(x.clone()))
    });
}

/// The same network written by hand with dfdx's own modules: what `network!` costs over dfdx.
fn dfdx_by_hand(c: &mut Criterion) {
    type ByHand = (
        dfdx::nn::builders::Linear<784, 256>,
        dfdx::nn::builders::ReLU,
        dfdx::nn::builders::Linear<256, 128>,
        dfdx::nn::builders::ReLU,
        dfdx::nn::builders::Linear<128, 10>,
    );
    let dev = Cpu::seed_from_u64(0);
    let mut net = dev.build_module::<ByHand, f32>();
    let mut grads = Some(net.alloc_grads());
    let mut opt = Adam::new(
        &net,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let x = dev.sample_normal::<Rank2<BATCH, 784>>();
    let targets = dev
        .sample_uniform::<Rank2<BATCH, 10>>()
        .softmax::<Axis<1>>();
    c.bench_function(
        "dfdx by hand 784-256-128-10 training step, batch 128",
        |b| {
            b.iter(|| {
                let logits = net.forward(x.clone().traced(grads.take().unwrap()));
                let loss = cross_entropy_with_logits_loss(logits, targets.clone());
                let mut g = loss.backward();
                opt.update(&mut net, &g).unwrap();
                net.zero_grads(&mut g);
                grads = Some(g);
            })
        },
    );
    c.bench_function("dfdx by hand 784-256-128-10 inference, batch 128", |b| {
        b.iter(|| net.forward(x.clone()))
    });
}

criterion_group!(benches, training_step, dfdx_by_hand);
criterion_main!(benches);
