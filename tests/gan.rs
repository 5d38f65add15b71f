//! GANs: the generator losses against their closed forms, and whole training runs on toy
//! distributions whose answer is known (a Gaussian; two Gaussians chosen by the condition).

use typednet::dfdx::optim::{Adam, AdamConfig};
use typednet::gan::{
    try_generator_loss, try_noise, try_one_hot, GanConfig, GanError, GanTrainer, GeneratorLoss,
};
use typednet::prelude::*;

network! {
    /// 4 noise features → one number.
    pub struct ToyGenerator: [4] -> linear(32) -> relu -> linear(32) -> relu -> linear(1);
    /// One number → the logit of "real".
    pub struct ToyDiscriminator: [1] -> linear(32) -> leaky_relu(0.2) -> linear(32) -> leaky_relu(0.2) -> linear(1);
    #[gan]
    pub struct ToyGan = ToyGenerator -> ToyDiscriminator;

    /// 4 noise features and a 2-way one-hot condition → one number.
    pub struct CondGenerator: [6] -> linear(32) -> relu -> linear(32) -> relu -> linear(1);
    /// The number and its condition → the logit of "real".
    pub struct CondDiscriminator: [3] -> linear(32) -> leaky_relu(0.2) -> linear(32) -> leaky_relu(0.2) -> linear(1);
    #[gan(condition = 2)]
    pub struct CondGan = CondGenerator -> CondDiscriminator;
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn generator_losses_and_their_gradients_match_the_closed_forms() {
    let dev = Cpu::default();
    let logits = [-6.0f64, -1.0, 0.0, 2.5];
    let n = logits.len() as f64;
    for loss in [GeneratorLoss::Minimax, GeneratorLoss::NonSaturating] {
        let x: Tensor<Rank1<4>, f64, Cpu> = dev.tensor(logits);
        let value = try_generator_loss(x.leaky_trace(), loss).unwrap();
        let expected = match loss {
            GeneratorLoss::Minimax => {
                logits.iter().map(|&l| (1.0 - sigmoid(l)).ln()).sum::<f64>() / n
            }
            GeneratorLoss::NonSaturating => {
                -logits.iter().map(|&l| sigmoid(l).ln()).sum::<f64>() / n
            }
        };
        assert!(
            (value.array() - expected).abs() < 1e-12,
            "{loss:?}: {} vs {expected}",
            value.array()
        );
        let gradient = value.backward().get(&x).array();
        for (g, &l) in gradient.iter().zip(&logits) {
            let expected = match loss {
                GeneratorLoss::Minimax => -sigmoid(l) / n,
                GeneratorLoss::NonSaturating => -(1.0 - sigmoid(l)) / n,
            };
            assert!(
                (g - expected).abs() < 1e-12,
                "{loss:?} at {l}: {g} vs {expected}"
            );
        }
    }
    // The saturation the non-saturating loss avoids: where D rejects a sample (logit −6),
    // the minimax gradient is 400 times smaller.
    let at = |loss| {
        let x: Tensor<Rank1<1>, f64, Cpu> = dev.tensor([-6.0]);
        try_generator_loss(x.leaky_trace(), loss)
            .unwrap()
            .backward()
            .get(&x)
            .array()[0]
    };
    assert!(at(GeneratorLoss::NonSaturating).abs() > 400.0 * at(GeneratorLoss::Minimax).abs());
}

fn adam(lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        betas: [0.5, 0.999],
        ..Default::default()
    }
}

/// Draws `count` values of N(mean, std²) on the device.
fn gaussian(dev: &Cpu, count: usize, mean: f32, std: f32) -> Tensor<(usize, Const<1>), f32, Cpu> {
    try_noise::<1, f32, Cpu>(dev, count).unwrap() * std + mean
}

fn mean_and_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, variance.sqrt())
}

#[test]
fn a_gan_learns_a_gaussian() {
    let dev = Cpu::seed_from_u64(0);
    let mut gan = ToyGan::<f32, Cpu>::new(&dev);
    let config = GanConfig {
        discriminator_steps: 2,
        generator_loss: GeneratorLoss::NonSaturating,
    };
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(&gan.toy_generator, adam(5e-4)),
        Adam::new(&gan.toy_discriminator, adam(5e-4)),
        config,
    )
    .unwrap();
    let before = mean_and_std(
        &gan.generate(try_noise::<4, f32, Cpu>(&dev, 4000).unwrap())
            .as_vec(),
    );
    let mut last = None;
    for _ in 0..3000 {
        let real = (0..2).map(|_| gaussian(&dev, 64, 3.0, 0.5)).collect();
        last = Some(trainer.try_step(&mut gan, real).unwrap());
    }
    let (mean, std) = mean_and_std(
        &gan.generate(try_noise::<4, f32, Cpu>(&dev, 4000).unwrap())
            .as_vec(),
    );
    let last = last.unwrap();
    println!(
        "before: mean {:.3} std {:.3}; after: mean {mean:.3} std {std:.3}; {last:?}",
        before.0, before.1
    );
    assert!((mean - 3.0).abs() < 0.25, "mean {mean}");
    assert!((std - 0.5).abs() < 0.2, "std {std}");
    // At the game's equilibrium D cannot tell: its scores approach 1/2.
    assert!(
        (last.discriminator.real_score - 0.5).abs() < 0.2,
        "{last:?}"
    );
    assert!(
        (last.discriminator.fake_score - 0.5).abs() < 0.2,
        "{last:?}"
    );
}

#[test]
fn a_round_takes_one_real_batch_per_discriminator_step() {
    let dev = Cpu::seed_from_u64(1);
    let mut gan = ToyGan::<f32, Cpu>::new(&dev);
    let config = GanConfig {
        discriminator_steps: 3,
        ..Default::default()
    };
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(&gan.toy_generator, adam(1e-3)),
        Adam::new(&gan.toy_discriminator, adam(1e-3)),
        config,
    )
    .unwrap();
    let two = (0..2).map(|_| gaussian(&dev, 8, 0.0, 1.0)).collect();
    assert!(matches!(
        trainer.try_step(&mut gan, two),
        Err(GanError::InvalidSetting(_))
    ));
    let three = (0..3).map(|_| gaussian(&dev, 8, 0.0, 1.0)).collect();
    let step = trainer.try_step(&mut gan, three).unwrap();
    assert!(step.discriminator.loss.is_finite() && step.generator_loss.is_finite());
    let zero_steps = GanConfig {
        discriminator_steps: 0,
        ..Default::default()
    };
    let refused = GanTrainer::<
        Adam<ToyGenerator, f32, Cpu>,
        Adam<ToyDiscriminator, f32, Cpu>,
        f32,
        Cpu,
    >::new(
        &dev,
        Adam::new(&gan.toy_generator, adam(1e-3)),
        Adam::new(&gan.toy_discriminator, adam(1e-3)),
        zero_steps,
    );
    assert!(matches!(refused, Err(GanError::InvalidSetting(_))));
}

#[test]
fn a_conditional_gan_draws_the_requested_mode() {
    let dev = Cpu::seed_from_u64(2);
    let mut gan = CondGan::<f32, Cpu>::new(&dev);
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(&gan.cond_generator, adam(1e-3)),
        Adam::new(&gan.cond_discriminator, adam(1e-3)),
        GanConfig::default(),
    )
    .unwrap();
    const MEANS: [f32; 2] = [-2.0, 2.0];
    let labels: Vec<usize> = (0..64).map(|i| i % 2).collect();
    for _ in 0..2000 {
        let mut real = Vec::with_capacity(labels.len());
        let noise = try_noise::<1, f32, Cpu>(&dev, labels.len())
            .unwrap()
            .as_vec();
        for (&label, z) in labels.iter().zip(noise) {
            real.push(MEANS[label] + 0.5 * z);
        }
        let real = dev.tensor_from_vec(real, (labels.len(), Const::<1>));
        let condition = try_one_hot::<2, f32, Cpu>(&dev, &labels).unwrap();
        let (generator, discriminator) = typednet::gan::Gan::parts_mut(&mut gan);
        trainer
            .try_conditional_discriminator_step(generator, discriminator, real, condition.clone())
            .unwrap();
        trainer
            .try_conditional_generator_step(generator, discriminator, condition)
            .unwrap();
    }
    for (label, &target) in MEANS.iter().enumerate() {
        let condition = try_one_hot::<2, f32, Cpu>(&dev, &[label; 2000]).unwrap();
        let noise = try_noise::<4, f32, Cpu>(&dev, 2000).unwrap();
        let input: Tensor<(usize, Const<6>), f32, Cpu> =
            typednet::ops::try_concat_features(noise, condition).unwrap();
        let (mean, std) = mean_and_std(&gan.generate(input).as_vec());
        println!("condition {label}: mean {mean:.3} std {std:.3} (target {target}, 0.5)");
        assert!(
            (mean - target as f64).abs() < 0.4,
            "condition {label}: mean {mean}"
        );
        assert!((std - 0.5).abs() < 0.3, "condition {label}: std {std}");
    }
}
