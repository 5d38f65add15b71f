//! Autoencoders: the typed composition (`#[autoencoder]`), and the sparse and contractive
//! penalties against PyTorch (`tools/reference_autoencoder.py`, which differentiates the
//! Jacobian torch.autograd computes, not the closed form used here), by finite differences, and
//! the stochastic contractive estimate against the exact Jacobian norm.

use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::assert_close;
use typednet::autoencoder::variational::{
    try_bernoulli_nll_with_logits, try_gaussian_sample, try_gaussian_sample_with_noise,
};
use typednet::autoencoder::{
    try_contractive_penalty, try_contractive_penalty_estimate, try_sparsity_penalty, Autoencoder,
    AutoencoderError, EncoderActivation,
};
use typednet::gradcheck::check_parameter_gradient;
use typednet::prelude::*;
use typednet::testing::{named_arrays, TestDevice};

network! {
    struct SigmoidEncoder: [4] -> linear(3) -> sigmoid;
    struct TanhEncoder: [4] -> linear(3) -> tanh;
    struct SmallDecoder: [3] -> linear(4);
    /// A one-layer autoencoder, 4 → 3 → 4.
    #[autoencoder]
    struct SmallAutoencoder = SigmoidEncoder -> SmallDecoder;

    /// Two layers, for the stochastic contractive estimate.
    struct DeepEncoder: [4] -> linear(6) -> tanh -> linear(3) -> sigmoid;
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/autoencoder.txt"
);

struct Reference {
    arrays: std::collections::HashMap<String, Vec<f64>>,
}

impl Reference {
    fn load() -> Self {
        Self {
            arrays: named_arrays(FIXTURE),
        }
    }
    fn get(&self, name: &str) -> &[f64] {
        self.arrays
            .get(name)
            .unwrap_or_else(|| panic!("{FIXTURE}: no array {name}"))
    }
    fn strength(&self) -> f64 {
        self.get("strength")[0]
    }
    fn x(&self, dev: &TestDevice) -> Tensor<Rank2<2, 4>, f64, TestDevice> {
        dev.tensor_from_vec(self.get("x").to_vec(), (Const, Const))
    }
}

/// The encoder with the fixture's weight and bias.
macro_rules! encoder_from_fixture {
    ($net:ident, $reference:expr, $dev:expr) => {{
        let mut net = $net::<f64, TestDevice>::new($dev);
        net.linear1.weight =
            $dev.tensor_from_vec($reference.get("weight").to_vec(), (Const, Const));
        net.linear1.bias = $dev.tensor_from_vec($reference.get("bias").to_vec(), (Const,));
        net
    }};
}

/// `penalty` on a tape that also holds the code's (the encoder's) operations, as adding it to a
/// reconstruction loss gives: here the code enters with weight 0.
fn with_code_tape<B: Dim, const K: usize>(
    penalty: Tensor<Rank0, f64, TestDevice, OwnedTape<f64, TestDevice>>,
    code: Tensor<(B, Const<K>), f64, TestDevice, OwnedTape<f64, TestDevice>>,
) -> Tensor<Rank0, f64, TestDevice, OwnedTape<f64, TestDevice>> {
    penalty + code.sum::<Rank0, _>() * 0.0
}

fn contractive_matches_pytorch(activation: EncoderActivation, name: &str) {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let x = reference.x(&dev);
    let (weight_grad, bias_grad, x_grad, value) = match activation {
        EncoderActivation::Sigmoid => {
            let net = encoder_from_fixture!(SigmoidEncoder, reference, &dev);
            let code = net.forward(x.leaky_trace());
            let penalty = try_contractive_penalty(
                &code,
                &net.linear1.weight,
                activation,
                reference.strength(),
            )
            .unwrap();
            let value = penalty.array();
            let grads = with_code_tape(penalty, code).backward();
            (
                grads.get(&net.linear1.weight).as_vec(),
                grads.get(&net.linear1.bias).as_vec(),
                grads.get(&x).as_vec(),
                value,
            )
        }
        EncoderActivation::Tanh => {
            let net = encoder_from_fixture!(TanhEncoder, reference, &dev);
            let code = net.forward(x.leaky_trace());
            let penalty = try_contractive_penalty(
                &code,
                &net.linear1.weight,
                activation,
                reference.strength(),
            )
            .unwrap();
            let value = penalty.array();
            let grads = with_code_tape(penalty, code).backward();
            (
                grads.get(&net.linear1.weight).as_vec(),
                grads.get(&net.linear1.bias).as_vec(),
                grads.get(&x).as_vec(),
                value,
            )
        }
    };
    assert_close!(
        &[value],
        reference.get(&format!("{name}_contractive")),
        1e-12
    );
    assert_close!(
        &weight_grad,
        reference.get(&format!("{name}_contractive_grad_weight")),
        1e-12
    );
    assert_close!(
        &bias_grad,
        reference.get(&format!("{name}_contractive_grad_bias")),
        1e-12
    );
    assert_close!(
        &x_grad,
        reference.get(&format!("{name}_contractive_grad_x")),
        1e-12
    );
}

#[test]
fn contractive_penalty_of_a_sigmoid_encoder_matches_pytorch_jacobian() {
    contractive_matches_pytorch(EncoderActivation::Sigmoid, "sigmoid");
}

#[test]
fn contractive_penalty_of_a_tanh_encoder_matches_pytorch_jacobian() {
    contractive_matches_pytorch(EncoderActivation::Tanh, "tanh");
}

/// `mean_b ‖∂f(x_b)/∂x‖²_F` by central differences of `f`, element by element.
fn jacobian_norm_by_differences<M>(encoder: &M, x: &[f64], dev: &TestDevice) -> f64
where
    M: Module<Tensor<Rank1<4>, f64, TestDevice>, Output = Tensor<Rank1<3>, f64, TestDevice>>,
{
    let rows = x.len() / 4;
    let step = 1e-5;
    let mut total = 0.0;
    for row in x.chunks(4) {
        for i in 0..4 {
            let mut ahead = row.to_vec();
            let mut behind = row.to_vec();
            ahead[i] += step;
            behind[i] -= step;
            let f = |v: Vec<f64>| encoder.forward(dev.tensor_from_vec(v, (Const,))).as_vec();
            let (a, b) = (f(ahead), f(behind));
            total += a
                .iter()
                .zip(&b)
                .map(|(a, b)| ((a - b) / (2.0 * step)).powi(2))
                .sum::<f64>();
        }
    }
    total / rows as f64
}

#[test]
fn contractive_penalty_equals_the_finite_difference_jacobian_norm() {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let x = reference.x(&dev);
    let net = encoder_from_fixture!(SigmoidEncoder, reference, &dev);
    let exact = try_contractive_penalty(
        &net.forward(x.clone()),
        &net.linear1.weight,
        EncoderActivation::Sigmoid,
        1.0,
    )
    .unwrap()
    .array();
    let by_differences = jacobian_norm_by_differences(&net, &x.as_vec(), &dev);
    assert_close!(&[exact], &[by_differences], 1e-8);
}

#[test]
fn contractive_estimate_of_a_deep_encoder_is_close_to_its_jacobian_norm() {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let x = reference.x(&dev);
    let net = DeepEncoder::<f64, TestDevice>::new(&dev);
    let exact = jacobian_norm_by_differences(&net, &x.as_vec(), &dev);
    let rng = &mut StdRng::seed_from_u64(11);
    let estimate = try_contractive_penalty_estimate(&net, &x, 4000, 1e-4, 1.0, rng)
        .unwrap()
        .array();
    // The estimate's relative standard deviation is at most √(2/4000) ≈ 2.2%.
    assert!(
        (estimate - exact).abs() < 0.1 * exact,
        "estimate {estimate}, exact {exact}"
    );
    // For a one-layer encoder it estimates the closed form.
    let shallow = encoder_from_fixture!(SigmoidEncoder, reference, &dev);
    let closed_form = try_contractive_penalty(
        &shallow.forward(x.clone()),
        &shallow.linear1.weight,
        EncoderActivation::Sigmoid,
        0.5,
    )
    .unwrap()
    .array();
    let estimate = try_contractive_penalty_estimate(&shallow, &x, 4000, 1e-4, 0.5, rng)
        .unwrap()
        .array();
    assert!(
        (estimate - closed_form).abs() < 0.1 * closed_form,
        "estimate {estimate}, closed form {closed_form}"
    );
}

#[test]
fn contractive_estimate_has_the_gradient_of_its_value() {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let x = reference.x(&dev);
    let net = DeepEncoder::<f64, TestDevice>::new(&dev);
    // The same directions at every evaluation: a deterministic function of the weights.
    let estimate = |n: &DeepEncoder<f64, TestDevice>| {
        try_contractive_penalty_estimate(n, &x, 3, 1e-3, 0.8, &mut StdRng::seed_from_u64(5))
            .unwrap()
    };
    check_parameter_gradient(&net, |n| &mut n.linear1.weight, |n, _| estimate(n))
        .assert_below(1e-6);
    check_parameter_gradient(&net, |n| &mut n.linear2.bias, |n, _| estimate(n)).assert_below(1e-6);
}

#[test]
fn sparsity_penalty_matches_pytorch() {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let x = reference.x(&dev);
    let net = encoder_from_fixture!(SigmoidEncoder, reference, &dev);
    let code = net.forward(x.leaky_trace());
    let penalty = try_sparsity_penalty(&code, reference.strength()).unwrap();
    assert_close!(&[penalty.array()], reference.get("sparsity"), 1e-12);
    let grads = with_code_tape(penalty, code).backward();
    assert_close!(
        &grads.get(&net.linear1.weight).as_vec(),
        reference.get("sparsity_grad_weight"),
        1e-12
    );
}

#[test]
fn penalties_refuse_invalid_settings() {
    let dev = typednet::test_device!();
    let code: Tensor<Rank2<2, 3>, f32, TestDevice> = dev.ones();
    let weight: Tensor<Rank2<3, 4>, f32, TestDevice> = dev.ones();
    let error = try_sparsity_penalty(&code, -1.0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the sparsity strength λ is -1; it must lie in [0, ∞)"
    );
    let error = try_contractive_penalty(&code, &weight, EncoderActivation::Tanh, f64::INFINITY)
        .unwrap_err();
    assert!(matches!(
        error,
        AutoencoderError::InvalidSetting {
            what: "the contraction strength λ",
            ..
        }
    ));
    let net = SigmoidEncoder::<f32, TestDevice>::new(&dev);
    let x: Tensor<Rank2<2, 4>, f32, TestDevice> = dev.ones();
    let rng = &mut StdRng::seed_from_u64(0);
    let error = try_contractive_penalty_estimate(&net, &x, 0, 1e-2, 1.0, rng).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the number of samples is 0; it must lie in [1, ∞)"
    );
    let error = try_contractive_penalty_estimate(&net, &x, 4, 0.0, 1.0, rng).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the finite-difference step ε is 0; it must lie in (0, ∞)"
    );
}

#[test]
fn an_autoencoder_encodes_decodes_and_reconstructs() {
    let dev = typednet::test_device!();
    let ae = SmallAutoencoder::<f64, TestDevice>::new(&dev);
    let x: Tensor<Rank2<5, 4>, f64, TestDevice> = dev.sample_normal();
    let code = ae.encode(x.clone());
    assert_eq!(code.as_vec(), ae.encoder().forward(x.clone()).as_vec());
    let back: Tensor<Rank2<5, 4>, f64, TestDevice> = ae.decode(code.clone());
    assert_eq!(back.as_vec(), ae.decoder().forward(code).as_vec());
    assert_eq!(ae.reconstruct(x.clone()).as_vec(), back.as_vec());
    assert_eq!(ae.forward(x).as_vec(), back.as_vec());
    // A single example works too, and the halves can be changed in place.
    let one: Tensor<Rank1<4>, f64, TestDevice> = dev.tensor([0.1, 0.2, 0.3, 0.4]);
    let mut ae = ae;
    ae.encoder_mut().linear1.bias = dev.zeros();
    ae.encoder_mut().linear1.weight = dev.zeros();
    assert_eq!(ae.encode(one).array(), [0.5; 3]); // σ(0)
    assert_eq!(
        SmallAutoencoder::<f32, Cpu>::PARAMETERS,
        4 * 3 + 3 + 3 * 4 + 4
    );
}

fn tensor_2d<const R: usize, const C: usize>(
    dev: &TestDevice,
    values: &[f64],
) -> Tensor<Rank2<R, C>, f64, TestDevice> {
    dev.tensor_from_vec(values.to_vec(), (Const, Const))
}

#[test]
fn gaussian_sample_and_kl_match_pytorch() {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let mean = tensor_2d::<3, 4>(&dev, reference.get("vae_mean"));
    let log_variance = tensor_2d::<3, 4>(&dev, reference.get("vae_log_variance"));
    let noise = tensor_2d::<3, 4>(&dev, reference.get("vae_noise"));
    let weights = tensor_2d::<3, 4>(&dev, reference.get("vae_code_weights"));
    let sample =
        try_gaussian_sample_with_noise(mean.leaky_trace(), log_variance.leaky_trace(), noise)
            .unwrap();
    assert_close!(&sample.code.as_vec(), reference.get("vae_code"), 1e-12);
    assert_close!(&[sample.kl.array()], reference.get("vae_kl"), 1e-12);
    let grads = ((sample.code * weights).sum::<Rank0, _>() + sample.kl).backward();
    assert_close!(
        &grads.get(&mean).as_vec(),
        reference.get("vae_grad_mean"),
        1e-12
    );
    assert_close!(
        &grads.get(&log_variance).as_vec(),
        reference.get("vae_grad_log_variance"),
        1e-12
    );
}

#[test]
fn gaussian_sample_draws_have_the_encoded_mean_and_deviation() {
    let dev = typednet::test_device!();
    // One code unit with μ = 1.5, σ = 0.5, drawn 20,000 times.
    let mean: Tensor<(usize, Const<1>), f64, TestDevice> =
        dev.tensor_from_vec(vec![1.5; 20_000], (20_000, Const));
    let log_variance = dev.tensor_from_vec(vec![(0.25f64).ln(); 20_000], (20_000, Const));
    let sample = try_gaussian_sample(mean, log_variance, &mut StdRng::seed_from_u64(9)).unwrap();
    let draws = sample.code.as_vec();
    let n = draws.len() as f64;
    let average = draws.iter().sum::<f64>() / n;
    let deviation = (draws.iter().map(|z| (z - average).powi(2)).sum::<f64>() / n).sqrt();
    assert!((average - 1.5).abs() < 0.015, "mean {average}"); // 0.5/√20000 ≈ 0.0035
    assert!((deviation - 0.5).abs() < 0.015, "std {deviation}");
    // KL(N(1.5, 0.25) ‖ N(0, 1)) = ½ (1.5² + 0.25 − ln 0.25 − 1).
    let expected = 0.5 * (2.25 + 0.25 - (0.25f64).ln() - 1.0);
    assert_close!(&[sample.kl.array()], &[expected], 1e-12);
}

#[test]
fn bernoulli_nll_matches_pytorch() {
    let dev = typednet::test_device!();
    let reference = Reference::load();
    let logits = tensor_2d::<3, 5>(&dev, reference.get("bernoulli_logits"));
    let targets = tensor_2d::<3, 5>(&dev, reference.get("bernoulli_targets"));
    let nll = try_bernoulli_nll_with_logits(logits.leaky_trace(), targets).unwrap();
    assert_close!(&[nll.array()], reference.get("bernoulli_nll"), 1e-12);
    let grads = nll.backward();
    assert_close!(
        &grads.get(&logits).as_vec(),
        reference.get("bernoulli_grad_logits"),
        1e-12
    );
}

network! {
    /// A linear autoencoder with a 6-d code, for the notes' claim that it learns PCA's subspace.
    struct LinearEncoder: [784] -> linear(6);
    struct LinearDecoder: [6] -> linear(784);
    #[autoencoder]
    struct LinearAutoencoder = LinearEncoder -> LinearDecoder;
}

/// The notes: an autoencoder with linear units and squared loss learns the subspace spanned by
/// the top-K principal components (Baldi & Hornik, 1989), though not the components themselves.
/// Trained on 2,000 real digits with K = 6 (λ₇/λ₆ = 0.73 there: a clear gap), the decoder's
/// columns span PCA's subspace to within 0.01 rad at every principal angle after 400 full-batch Adam steps (lr 0.01).
#[test]
fn a_linear_autoencoder_learns_the_principal_subspace() {
    use typednet::dfdx::losses::mse_loss;
    use typednet::dfdx::optim::{Adam, AdamConfig, Optimizer};
    use typednet::linalg::principal_angles;
    use typednet::pca::Pca;

    let digits = typednet::data::Mnist::load_shipped().unwrap().take(2_000);
    let n = digits.len();
    let pca = Pca::fit(digits.features(), n, 784, 6).unwrap();

    let dev = Cpu::seed_from_u64(0);
    let mut ae = LinearAutoencoder::<f32, Cpu>::new(&dev);
    // Centred, as PCA centres: then the biases have nothing to learn and the weights only the
    // subspace.
    let centred: Vec<f32> = digits
        .features()
        .chunks(784)
        .flat_map(|digit| digit.iter().zip(pca.mean()).map(|(v, m)| v - m))
        .collect();
    let x: Tensor<(usize, Const<784>), f32, Cpu> = dev.tensor_from_vec(centred, (n, Const));
    let mut adam = Adam::new(
        &ae,
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    );
    let mut grads = ae.alloc_grads();
    let angles_now = |ae: &LinearAutoencoder<f32, Cpu>| {
        // The decoder's weight is [784, 6]: its columns span the reconstructions.
        let w = ae.decoder().linear1.weight.as_vec();
        let columns: Vec<f64> = (0..6)
            .flat_map(|k| (0..784).map(move |i| (i, k)))
            .map(|(i, k)| f64::from(w[i * 6 + k]))
            .collect();
        let components: Vec<f64> = pca.components().iter().map(|&v| f64::from(v)).collect();
        principal_angles(&columns, &components, 6, 784)
    };
    let before = angles_now(&ae);
    for _ in 0..400 {
        let loss = mse_loss(ae.forward(x.clone().traced(grads)), x.clone());
        grads = loss.backward();
        adam.update(&mut ae, &grads).unwrap();
        ae.zero_grads(&mut grads);
    }
    let after = angles_now(&ae);
    let largest = after.iter().cloned().fold(0.0, f64::max);
    println!("principal angles before {before:?}, after {after:?}");
    assert!(
        before.iter().cloned().fold(0.0, f64::max) > 1.0,
        "{before:?}"
    );
    assert!(
        largest < 0.01,
        "largest principal angle {largest} rad: {after:?}"
    );
}
