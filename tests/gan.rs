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

    /// The networks of `tools/reference_gan_steps.py`.
    pub struct SmallGenerator: [4] -> linear(8) -> leaky_relu(0.2) -> linear(6) -> sigmoid;
    pub struct SmallDiscriminator: [6] -> linear(8) -> leaky_relu(0.2) -> linear(1);
    #[gan]
    pub struct SmallGan = SmallGenerator -> SmallDiscriminator;
}

/// Knuth's MMIX LCG, as in `tools/reference_gan_steps.py`; `uniform` keeps 24 bits, exact in
/// `f32` and `f64`.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f64 / (1u64 << 24) as f64
    }

    /// `len` values uniform in `±1/√fan_in`, rounded to `f32`.
    fn parameter(&mut self, len: usize, fan_in: usize) -> Vec<f32> {
        let bound = 1.0 / (fan_in as f64).sqrt();
        (0..len)
            .map(|_| ((2.0 * self.uniform() - 1.0) * bound) as f32)
            .collect()
    }

    /// `n` rows of `F` values, uniform in [0, 1) or in [−1, 1).
    fn rows<const F: usize>(
        &mut self,
        n: usize,
        signed: bool,
    ) -> Tensor<(usize, Const<F>), f32, Cpu> {
        let values = (0..n * F)
            .map(|_| {
                let u = self.uniform();
                (if signed { 2.0 * u - 1.0 } else { u }) as f32
            })
            .collect();
        Cpu::default().tensor_from_vec(values, (n, Const))
    }
}

/// `(D's loss, G's loss)` of each round, from the reference's `round` lines.
type RoundLosses = Vec<(f64, f64)>;
/// `(name, Σw, Σ|w|)` of each parameter after the last round.
type ParameterSums = Vec<(String, f64, f64)>;

fn gan_reference() -> (RoundLosses, ParameterSums) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gan_steps.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut rounds, mut parameters) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [name, a, b] = fields[..] else {
            panic!("{path}: bad line {line:?}")
        };
        let (a, b) = (a.parse().unwrap(), b.parse().unwrap());
        if name == "round" {
            rounds.push((a, b));
        } else {
            parameters.push((name.to_string(), a, b));
        }
    }
    (rounds, parameters)
}

#[test]
fn ten_gan_rounds_match_pytorch() {
    let (rounds, parameters) = gan_reference();
    assert_eq!(rounds.len(), 10);
    let dev = Cpu::default();
    let mut gan = SmallGan::<f32, Cpu>::new(&dev);
    let mut rng = Lcg(2026);
    gan.small_generator
        .linear1
        .weight
        .copy_from(&rng.parameter(8 * 4, 4));
    gan.small_generator
        .linear1
        .bias
        .copy_from(&rng.parameter(8, 4));
    gan.small_generator
        .linear2
        .weight
        .copy_from(&rng.parameter(6 * 8, 8));
    gan.small_generator
        .linear2
        .bias
        .copy_from(&rng.parameter(6, 8));
    gan.small_discriminator
        .linear1
        .weight
        .copy_from(&rng.parameter(8 * 6, 6));
    gan.small_discriminator
        .linear1
        .bias
        .copy_from(&rng.parameter(8, 6));
    gan.small_discriminator
        .linear2
        .weight
        .copy_from(&rng.parameter(8, 8));
    gan.small_discriminator
        .linear2
        .bias
        .copy_from(&rng.parameter(1, 8));
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(&gan.small_generator, adam(1e-2)),
        Adam::new(&gan.small_discriminator, adam(1e-2)),
        GanConfig::default(),
    )
    .unwrap();
    for (round, &(d_expected, g_expected)) in rounds.iter().enumerate() {
        let real = rng.rows::<6>(5, false);
        let d_noise = rng.rows::<4>(5, true);
        let g_noise = rng.rows::<4>(5, true);
        let (generator, discriminator) = typednet::gan::Gan::parts_mut(&mut gan);
        let d_loss = trainer
            .try_discriminator_step_with_noise(generator, discriminator, real, d_noise)
            .unwrap()
            .loss;
        let g_loss = trainer
            .try_generator_step_with_noise(generator, discriminator, g_noise)
            .unwrap();
        for (what, got, expected) in [("D", d_loss, d_expected), ("G", g_loss, g_expected)] {
            assert!(
                (got - expected).abs() <= 1e-5 * expected.abs(),
                "round {round}: {what} loss {got}, PyTorch {expected}"
            );
        }
    }
    let ours = [
        gan.small_generator.linear1.weight.as_vec(),
        gan.small_generator.linear1.bias.as_vec(),
        gan.small_generator.linear2.weight.as_vec(),
        gan.small_generator.linear2.bias.as_vec(),
        gan.small_discriminator.linear1.weight.as_vec(),
        gan.small_discriminator.linear1.bias.as_vec(),
        gan.small_discriminator.linear2.weight.as_vec(),
        gan.small_discriminator.linear2.bias.as_vec(),
    ];
    assert_eq!(ours.len(), parameters.len());
    for (values, (name, sum, abs)) in ours.iter().zip(&parameters) {
        let got_sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let got_abs: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
        assert!(
            (got_abs - abs).abs() <= 1e-5 * abs,
            "{name}: Σ|w| {got_abs}, PyTorch {abs}"
        );
        assert!(
            (got_sum - sum).abs() <= 1e-4 * abs,
            "{name}: Σw {got_sum}, PyTorch {sum}"
        );
    }
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
        mismatched_conditions: false,
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
    conditional_gan_draws_the_requested_mode(false);
}

#[test]
fn a_conditional_gan_with_a_matching_aware_discriminator_draws_the_requested_mode() {
    conditional_gan_draws_the_requested_mode(true);
}

fn conditional_gan_draws_the_requested_mode(mismatched_conditions: bool) {
    let dev = Cpu::seed_from_u64(2);
    let mut gan = CondGan::<f32, Cpu>::new(&dev);
    let mut trainer = GanTrainer::new(
        &dev,
        Adam::new(&gan.cond_generator, adam(1e-3)),
        Adam::new(&gan.cond_discriminator, adam(1e-3)),
        GanConfig {
            mismatched_conditions,
            ..Default::default()
        },
    )
    .unwrap();
    let mut last = None;
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
        last = Some(
            trainer
                .try_conditional_discriminator_step(
                    generator,
                    discriminator,
                    real,
                    condition.clone(),
                )
                .unwrap(),
        );
        trainer
            .try_conditional_generator_step(generator, discriminator, condition)
            .unwrap();
    }
    let last = last.unwrap();
    println!("last discriminator step: {last:?}");
    match last.mismatched_score {
        // D has learnt to reject a real sample with the other condition.
        Some(score) => assert!(score < 0.2 && mismatched_conditions, "{last:?}"),
        None => assert!(!mismatched_conditions),
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
