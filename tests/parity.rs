//! Device parity (issue #10, part 3): every model family computes the same numbers on `Cuda` as
//! on `Cpu`.
//!
//! Each test builds its model on `Cpu` from a seed, copies the very same weights to `Cuda`
//! (`ToDevice::to_device`, which every `network!` struct has through dfdx's `TensorCollection`;
//! the Boltzmann machines by their public fields), runs the same input with a tape on both,
//! takes the loss `Σ y ⊙ w` with the same fixed random `w` (so that a backward pass that mixed up
//! output elements could not agree by symmetry), and compares the outputs, the input gradient
//! and the gradient of every parameter, by name ([`typednet::testing::named_gradients`]).
//!
//! **Tolerance**: `|cpu − cuda| ≤ 1e-4 · (1 + |cpu|)` per element, in `f32`. The two devices
//! run different kernels (typednet's direct SIMD convolution and pooling on `Cpu`; dfdx's
//! gather + cuBLAS matmul, and reductions in a different order, on `Cuda`), so results differ
//! by rounding: a sum of `n` products in `f32` carries an error of about `n · 2⁻²⁴ ≈ n · 6e-8`
//! relative to the sum of magnitudes, i.e. ≈ 1e-5 for the few hundred terms of the largest
//! reductions here (LeNet's first linear layer, 400 inputs; its weight gradients sum over the
//! batch and 28×28 positions), and backpropagation through a few layers compounds it. 1e-4
//! leaves that headroom, and is still far below any real error (a wrong index, a missing term,
//! a transposed weight), which moves values by their own order, ≈ 0.1–1 here. The absolute part
//! covers gradients near 0, where relative error means nothing.
//!
//! Stochastic steps (RBM CD-1, the GAN step's noise) agree too: dfdx's `Cuda` draws its random
//! numbers on the host from a `Cpu` generator with the device's seed, so a `Cpu` and a `Cuda`
//! device seeded alike draw the same numbers in the same order. A binary sample `u < p` could
//! still differ where a draw `u` falls within rounding of `p` (about 1e-7 per unit); with the
//! fixed seeds here it does not, and a failure of that kind shows as one unit that differs by
//! exactly 1.
//!
//! Compiled only with `--features cuda`; each test skips (returns, printing why) when no CUDA
//! device answers. Run on the GPU machine by `tools/gpu/run.sh`.

#![cfg(feature = "cuda")]

use dfdx::nn::ToDevice;
use num_traits::ToPrimitive;
use typednet::autoencoder::variational::{
    try_bernoulli_nll_with_logits, try_gaussian_sample_with_noise,
};
use typednet::boltzmann::dbm::{Dbm, MeanFieldConfig};
use typednet::boltzmann::rbm::Rbm;
use typednet::dfdx::optim::{Sgd, SgdConfig};
use typednet::gan::{GanConfig, GanTrainer};
use typednet::loss;
use typednet::prelude::*;
use typednet::testing::{named_gradients, named_tensors, test_device_seeded};

type Gpu = Cuda;

/// Per element: `|cpu − cuda| ≤ TOLERANCE · (1 + |cpu|)`; see the module documentation.
const TOLERANCE: f64 = 1e-4;

/// A `Cpu` and a `Cuda` device with the same seed, or `None` (the test skips) without a GPU.
fn devices(seed: u64) -> Option<(Cpu, Gpu)> {
    let gpu = test_device_seeded(seed)?;
    Some((Cpu::seed_from_u64(seed), gpu))
}

/// The same values on another device.
fn copy<S: Shape, D: dfdx::tensor_ops::Device<f32>>(
    t: &Tensor<S, f32, Cpu>,
    dev: &D,
) -> Tensor<S, f32, D> {
    dev.tensor_from_vec(t.as_vec(), *t.shape())
}

fn f64s<E: ToPrimitive>(v: Vec<E>) -> Vec<f64> {
    v.into_iter()
        .map(|x| x.to_f64().unwrap_or(f64::NAN))
        .collect()
}

/// Asserts `cpu` and `gpu` agree within [`TOLERANCE`], naming the worst element.
fn compare(what: &str, cpu: &[f64], gpu: &[f64]) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        let error = (c - g).abs() / (1.0 + c.abs());
        // NaN counts as the worst error.
        if error.is_nan() || worst.is_none_or(|(_, w)| error > w) {
            worst = Some((i, if error.is_nan() { f64::INFINITY } else { error }));
        }
    }
    if let Some((i, error)) = worst {
        assert!(
            error <= TOLERANCE,
            "{what}: index {i}: cpu {}, cuda {} (error {error:e} > {TOLERANCE:e})",
            cpu[i],
            gpu[i]
        );
    }
}

/// Compares two lists of named tensors (the same model on the two devices), name by name.
fn compare_named(what: &str, cpu: Vec<(String, Vec<f64>)>, gpu: Vec<(String, Vec<f64>)>) {
    let names = |list: &[(String, Vec<f64>)]| list.iter().map(|(n, _)| n.clone()).collect();
    let (cpu_names, gpu_names): (Vec<String>, Vec<String>) = (names(&cpu), names(&gpu));
    assert_eq!(cpu_names, gpu_names, "{what}: the devices' tensors differ");
    for ((name, c), (_, g)) in cpu.iter().zip(&gpu) {
        compare(&format!("{what} {name}"), c, g);
    }
}

/// One test per network: the output, the input's gradient and every parameter's gradient of
/// `Σ net(x) ⊙ w` agree on the two devices. `$input` is the batched input shape.
macro_rules! network_parity {
    ($($test:ident: $net:ident, $input:ty;)*) => {$(
        #[test]
        fn $test() {
            let Some((cpu, gpu)) = devices(0) else { return };
            let net_cpu = $net::<f32, Cpu>::new(&cpu);
            let net_gpu: $net<f32, Gpu> = net_cpu.to_device(&gpu);
            compare_named("weights", named_tensors(&net_cpu), named_tensors(&net_gpu));
            let x_cpu: Tensor<$input, f32, Cpu> = cpu.sample_normal();
            let x_gpu = copy(&x_cpu, &gpu);
            let y_cpu = net_cpu.forward(x_cpu.leaky_trace());
            let y_gpu = net_gpu.forward(x_gpu.leaky_trace());
            compare("output", &f64s(y_cpu.as_vec()), &f64s(y_gpu.as_vec()));
            let w_cpu = cpu.sample_normal_like(y_cpu.shape());
            let w_gpu = copy(&w_cpu, &gpu);
            let mut grads_cpu = (y_cpu * w_cpu).sum().backward();
            let mut grads_gpu = (y_gpu * w_gpu).sum().backward();
            compare(
                "input gradient",
                &f64s(grads_cpu.get(&x_cpu).as_vec()),
                &f64s(grads_gpu.get(&x_gpu).as_vec()),
            );
            compare_named(
                "gradient of",
                named_gradients(&net_cpu, &mut grads_cpu),
                named_gradients(&net_gpu, &mut grads_gpu),
            );
        }
    )*};
}

network! {
    /// A multi-layer perceptron with every vector activation.
    pub struct Mlp: [6] -> linear(8) -> tanh -> linear(8) -> leaky_relu(0.2) -> linear(5) -> relu
        -> linear(5) -> sigmoid -> linear(4) -> softmax;
    pub struct LogSoftmax: [6] -> linear(4) -> log_softmax;

    pub struct ConvStridePad: [3, 9, 8] -> conv(4, 3, stride = 2, pad = 1) -> relu;
    pub struct ConvRectangular: [2, 9, 7] -> conv(2, 4, (3, 2), stride = (2, 1)) -> conv(5, 1, pad = same);
    pub struct ConvGroups: [4, 7, 7] -> conv(6, 3, pad = 1, groups = 2);
    pub struct ConvDilated: [2, 9, 11] -> conv(3, 3, stride = 2, pad = 1, dilation = (2, 3));
    pub struct ConvNoBias: [2, 5, 5] -> conv(3, 3, pad = 1, bias = false);
    /// Transposed convolutions (DCGAN's 4/2/1 geometry, and one with an output padding).
    pub struct Upsampler: [4, 7, 7]
        -> conv_transpose(8, 4, stride = 2, pad = 1) -> relu
        -> conv_transpose(8, 1, 3, stride = 2, pad = 1, output_pad = 1) -> sigmoid;
    pub struct MaxPool: [3, 8, 6] -> maxpool(2);
    pub struct MaxPoolPadded: [3, 7, 6] -> maxpool(3, stride = 2, pad = 1);
    pub struct AvgPool: [3, 8, 6] -> avgpool((2, 3));
    pub struct AvgPoolPadded: [3, 7, 6] -> avgpool(3, stride = 1, pad = 1);
    pub struct GlobalPool: [3, 4, 5] -> conv(6, 3, pad = 1) -> global_avgpool -> linear(2);
    /// Batch norm on images and on vectors (with a tape: normalised by the batch).
    pub struct BnImages: [3, 6, 6] -> conv(4, 3) -> batchnorm -> relu -> flatten;
    pub struct BnVectors: [12] -> linear(5) -> batchnorm -> linear(2);
    pub struct Lrn: [7, 3, 4] -> lrn(5, alpha = 0.5, beta = 0.75, k = 2.0);
    pub struct LocallyConnected: [2, 6, 5] -> locally_connected(2, 3) -> flatten -> linear(2);
    pub struct Branches: [3, 5, 5] -> concat(conv(4, 1), conv(2, 3, pad = 1) -> relu) -> flatten -> linear(2);

    /// LeNet-5, as in the zoo.
    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten
        -> linear(120) -> relu
        -> linear(84) -> relu
        -> linear(10);

    block Plain(c) = residual(conv(c, 3, pad = 1) -> relu -> conv(c, 3, pad = 1)) -> relu;
    block Down(c, s) = residual(
        conv(c, 3, stride = s, pad = 1) -> relu -> conv(c, 3, pad = 1),
        shortcut = conv(c, 1, stride = s)
    ) -> relu;
    /// ResNet blocks: identity and projection shortcuts.
    pub struct TinyResNet: [1, 12, 12]
        -> conv(4, 3, pad = 1) -> relu
        -> Plain(4) -> Down(8, 2) -> Plain(8)
        -> avgpool(6) -> flatten -> linear(10);

    /// Every recurrent cell, over a sequence of 6 steps of 5 features.
    pub struct Rnn: [6, 5] -> rnn(4);
    pub struct Lstm: [6, 5] -> lstm(4);
    pub struct LstmLast: [6, 5] -> lstm(4, output = last) -> linear(2);
    pub struct LstmNoForget: [6, 5] -> lstm_no_forget(4);
    pub struct PeepholeLstm: [6, 5] -> peephole_lstm(4);
    pub struct Gru: [6, 5] -> gru(4);
    pub struct TorchGru: [6, 5] -> torch_gru(4);
    pub struct TorchGruLast: [6, 5] -> torch_gru(4, output = last);
    pub struct Mgu: [6, 5] -> mgu(4);
    pub struct BidirectionalLstm: [6, 5] -> lstm(4, bidirectional = true) -> linear(3) -> log_softmax;
    pub struct BidirectionalMgu: [6, 5] -> mgu(4, bidirectional = true, output = last);
    pub struct Stacked: [6, 5] -> lstm(4) -> gru(3) -> rnn(2, output = last) -> linear(3);
    /// Images read as sequences of rows.
    pub struct RowReader: [1, 8, 8] -> rows -> torch_gru(5, output = last) -> linear(3);

    /// An autoencoder, 10 → 4 → 10.
    pub struct Encoder: [10] -> linear(6) -> tanh -> linear(4) -> sigmoid;
    pub struct Decoder: [4] -> linear(6) -> relu -> linear(10);
    #[autoencoder]
    pub struct SmallAutoencoder = Encoder -> Decoder;

    /// The GAN of the GAN step test.
    pub struct Generator: [4] -> linear(8) -> leaky_relu(0.2) -> linear(6) -> sigmoid;
    pub struct Discriminator: [6] -> linear(8) -> leaky_relu(0.2) -> linear(1);
}

network_parity! {
    mlp: Mlp, Rank2<4, 6>;
    log_softmax: LogSoftmax, Rank2<4, 6>;
    conv_with_stride_and_padding: ConvStridePad, Rank4<2, 3, 9, 8>;
    conv_with_rectangular_kernels_and_same_padding: ConvRectangular, Rank4<2, 2, 9, 7>;
    grouped_conv: ConvGroups, Rank4<2, 4, 7, 7>;
    dilated_conv: ConvDilated, Rank4<2, 2, 9, 11>;
    conv_without_bias: ConvNoBias, Rank4<2, 2, 5, 5>;
    transposed_conv: Upsampler, Rank4<2, 4, 7, 7>;
    max_pool: MaxPool, Rank4<2, 3, 8, 6>;
    padded_max_pool: MaxPoolPadded, Rank4<2, 3, 7, 6>;
    avg_pool: AvgPool, Rank4<2, 3, 8, 6>;
    padded_avg_pool: AvgPoolPadded, Rank4<2, 3, 7, 6>;
    global_avg_pool: GlobalPool, Rank4<2, 3, 4, 5>;
    batch_norm_on_images: BnImages, Rank4<4, 3, 6, 6>;
    batch_norm_on_vectors: BnVectors, Rank2<6, 12>;
    local_response_normalisation: Lrn, Rank4<2, 7, 3, 4>;
    locally_connected: LocallyConnected, Rank4<2, 2, 6, 5>;
    concatenated_branches: Branches, Rank4<2, 3, 5, 5>;
    lenet5: LeNet5, Rank4<2, 1, 28, 28>;
    resnet_blocks: TinyResNet, Rank4<2, 1, 12, 12>;
    rnn: Rnn, Rank3<3, 6, 5>;
    lstm: Lstm, Rank3<3, 6, 5>;
    lstm_last: LstmLast, Rank3<3, 6, 5>;
    lstm_no_forget: LstmNoForget, Rank3<3, 6, 5>;
    peephole_lstm: PeepholeLstm, Rank3<3, 6, 5>;
    gru: Gru, Rank3<3, 6, 5>;
    torch_gru: TorchGru, Rank3<3, 6, 5>;
    torch_gru_last: TorchGruLast, Rank3<3, 6, 5>;
    mgu: Mgu, Rank3<3, 6, 5>;
    bidirectional_lstm: BidirectionalLstm, Rank3<3, 6, 5>;
    bidirectional_mgu: BidirectionalMgu, Rank3<3, 6, 5>;
    stacked_recurrent_layers: Stacked, Rank3<3, 6, 5>;
    rows_of_an_image: RowReader, Rank4<2, 1, 8, 8>;
    autoencoder: SmallAutoencoder, Rank2<4, 10>;
}

/// Training-mode batch norm (`forward_mut`) updates the running statistics alike.
#[test]
fn batch_norm_running_statistics() {
    let Some((cpu, gpu)) = devices(0) else { return };
    let mut net_cpu = BnImages::<f32, Cpu>::new(&cpu);
    let mut net_gpu: BnImages<f32, Gpu> = net_cpu.to_device(&gpu);
    for _ in 0..3 {
        let x_cpu: Tensor<Rank4<4, 3, 6, 6>, f32, Cpu> = cpu.sample_normal();
        let x_gpu = copy(&x_cpu, &gpu);
        let y_cpu = net_cpu.forward_mut(x_cpu.leaky_trace());
        let y_gpu = net_gpu.forward_mut(x_gpu.leaky_trace());
        compare("output", &f64s(y_cpu.as_vec()), &f64s(y_gpu.as_vec()));
    }
    compare_named(
        "after 3 training batches,",
        named_tensors(&net_cpu),
        named_tensors(&net_gpu),
    );
    // And inference by the running statistics.
    let x_cpu: Tensor<Rank4<2, 3, 6, 6>, f32, Cpu> = cpu.sample_normal();
    let x_gpu = copy(&x_cpu, &gpu);
    compare(
        "inference output",
        &f64s(net_cpu.forward(x_cpu).as_vec()),
        &f64s(net_gpu.forward(x_gpu).as_vec()),
    );
}

/// The VAE's terms: the reparameterised sample, the closed-form KL and the Bernoulli NLL, and
/// their gradients with respect to μ, log σ² and the logits.
#[test]
fn vae_terms() {
    let Some((cpu, gpu)) = devices(0) else { return };
    let mean: Tensor<Rank2<4, 3>, f32, Cpu> = cpu.sample_normal();
    let log_variance: Tensor<Rank2<4, 3>, f32, Cpu> = cpu.sample_normal();
    let noise: Tensor<Rank2<4, 3>, f32, Cpu> = cpu.sample_normal();
    let w: Tensor<Rank2<4, 3>, f32, Cpu> = cpu.sample_normal();
    let (mean_gpu, log_variance_gpu) = (copy(&mean, &gpu), copy(&log_variance, &gpu));
    let sample_cpu = try_gaussian_sample_with_noise(
        mean.leaky_trace(),
        log_variance.leaky_trace(),
        noise.clone(),
    )
    .unwrap();
    let sample_gpu = try_gaussian_sample_with_noise(
        mean_gpu.leaky_trace(),
        log_variance_gpu.leaky_trace(),
        copy(&noise, &gpu),
    )
    .unwrap();
    compare(
        "code",
        &f64s(sample_cpu.code.as_vec()),
        &f64s(sample_gpu.code.as_vec()),
    );
    compare(
        "KL",
        &f64s(sample_cpu.kl.as_vec()),
        &f64s(sample_gpu.kl.as_vec()),
    );
    let loss_cpu = (sample_cpu.code * w.clone()).sum() + sample_cpu.kl;
    let loss_gpu = (sample_gpu.code * copy(&w, &gpu)).sum() + sample_gpu.kl;
    let grads_cpu = loss_cpu.backward();
    let grads_gpu = loss_gpu.backward();
    compare(
        "gradient of the mean",
        &f64s(grads_cpu.get(&mean).as_vec()),
        &f64s(grads_gpu.get(&mean_gpu).as_vec()),
    );
    compare(
        "gradient of the log-variance",
        &f64s(grads_cpu.get(&log_variance).as_vec()),
        &f64s(grads_gpu.get(&log_variance_gpu).as_vec()),
    );

    let logits: Tensor<Rank2<4, 10>, f32, Cpu> = cpu.sample_normal();
    let targets: Tensor<Rank2<4, 10>, f32, Cpu> = cpu.sample_uniform();
    let logits_gpu = copy(&logits, &gpu);
    let nll_cpu = try_bernoulli_nll_with_logits(logits.leaky_trace(), targets.clone()).unwrap();
    let nll_gpu =
        try_bernoulli_nll_with_logits(logits_gpu.leaky_trace(), copy(&targets, &gpu)).unwrap();
    compare("NLL", &f64s(nll_cpu.as_vec()), &f64s(nll_gpu.as_vec()));
    compare(
        "gradient of the NLL",
        &f64s(nll_cpu.backward().get(&logits).as_vec()),
        &f64s(nll_gpu.backward().get(&logits_gpu).as_vec()),
    );
}

/// Every loss of `typednet::loss`: value and gradient with respect to the predictions.
#[test]
fn every_loss() {
    let Some((cpu, gpu)) = devices(0) else { return };
    let scores: Tensor<Rank2<4, 5>, f32, Cpu> = cpu.sample_normal();
    let scores_gpu = copy(&scores, &gpu);
    let binary01 = cpu.tensor_from_vec(
        (0..20).map(|i| ((i * 7) % 3 == 0) as u8 as f32).collect(),
        (Const::<4>, Const::<5>),
    );
    let binary_pm = cpu.tensor_from_vec(
        (0..20)
            .map(|i| if (i * 5) % 3 == 0 { 1.0 } else { -1.0 })
            .collect(),
        (Const::<4>, Const::<5>),
    );
    let real: Tensor<Rank2<4, 5>, f32, Cpu> = cpu.sample_normal();
    let labels = [3, 0, 4, 1];
    // Runs `$loss(y, t)` on both devices, with `y` the scores traced and `t` the targets.
    macro_rules! check {
        ($name:expr, $targets:expr, |$y:ident, $t:ident| $loss:expr) => {{
            let targets: &Tensor<Rank2<4, 5>, f32, Cpu> = $targets;
            let value_cpu = {
                let ($y, $t) = (scores.leaky_trace(), targets.clone());
                $loss
            };
            let value_gpu = {
                let ($y, $t) = (scores_gpu.leaky_trace(), copy(targets, &gpu));
                $loss
            };
            compare($name, &f64s(value_cpu.as_vec()), &f64s(value_gpu.as_vec()));
            compare(
                &format!("gradient of {}", $name),
                &f64s(value_cpu.backward().get(&scores).as_vec()),
                &f64s(value_gpu.backward().get(&scores_gpu).as_vec()),
            );
        }};
    }
    check!("binary_hinge, targets {0, 1}", &binary01, |y, t| {
        loss::binary_hinge(y, t)
    });
    check!("binary_hinge, targets {-1, 1}", &binary_pm, |y, t| {
        loss::binary_hinge(y, t)
    });
    check!("binary_squared_hinge", &binary_pm, |y, t| {
        loss::binary_squared_hinge(y, t)
    });
    check!("binary_cross_entropy_with_logits", &binary01, |y, t| {
        loss::binary_cross_entropy_with_logits(y, t)
    });
    check!("cross_entropy", &real, |y, _t| loss::cross_entropy(
        y, &labels
    ));
    check!("multiclass_hinge", &real, |y, _t| loss::multiclass_hinge(
        y, &labels
    ));
    check!("multiclass_squared_hinge", &real, |y, _t| {
        loss::multiclass_squared_hinge(y, &labels)
    });
    check!("l2_loss, mean", &real, |y, t| loss::l2_loss(
        y,
        t,
        loss::Reduction::Mean
    ));
    check!("l2_loss, sum", &real, |y, t| loss::l2_loss(
        y,
        t,
        loss::Reduction::Sum
    ));
    check!("l1_loss, mean", &real, |y, t| loss::l1_loss(
        y,
        t,
        loss::Reduction::Mean
    ));
    check!("l1_loss, sum", &real, |y, t| loss::l1_loss(
        y,
        t,
        loss::Reduction::Sum
    ));
    check!("pseudo_huber_loss", &real, |y, t| {
        loss::pseudo_huber_loss(y, t, 0.7, loss::Reduction::Mean)
    });
}

/// One GAN round (a discriminator step, then a generator step, plain SGD so that the update is
/// the gradient itself) from the same weights and noise: the same losses and the same weights.
#[test]
fn gan_step() {
    let Some((cpu, gpu)) = devices(0) else { return };
    // Weights and data drawn on other devices, so that the two devices' generators stay in step
    // should the trainer draw anything.
    let init = Cpu::seed_from_u64(1);
    let data = Cpu::seed_from_u64(2);
    let generator = Generator::<f32, Cpu>::new(&init);
    let discriminator = Discriminator::<f32, Cpu>::new(&init);
    let mut generator_cpu: Generator<f32, Cpu> = generator.to_device(&cpu);
    let mut discriminator_cpu: Discriminator<f32, Cpu> = discriminator.to_device(&cpu);
    let mut generator_gpu: Generator<f32, Gpu> = generator.to_device(&gpu);
    let mut discriminator_gpu: Discriminator<f32, Gpu> = discriminator.to_device(&gpu);
    let sgd = SgdConfig {
        lr: 0.1,
        momentum: None,
        weight_decay: None,
    };
    let mut trainer_cpu = GanTrainer::new(
        &cpu,
        Sgd::new(&generator_cpu, sgd),
        Sgd::new(&discriminator_cpu, sgd),
        GanConfig::default(),
    )
    .unwrap();
    let mut trainer_gpu = GanTrainer::new(
        &gpu,
        Sgd::new(&generator_gpu, sgd),
        Sgd::new(&discriminator_gpu, sgd),
        GanConfig::default(),
    )
    .unwrap();
    let batch = |features: usize| -> Vec<f32> {
        let t: Tensor<(usize, usize), f32, Cpu> = data.sample_uniform_like(&(5, features));
        t.as_vec()
    };
    for round in 0..3 {
        let real = cpu.tensor_from_vec(batch(6), (5usize, Const::<6>));
        let d_noise = cpu.tensor_from_vec(batch(4), (5usize, Const::<4>));
        let g_noise = cpu.tensor_from_vec(batch(4), (5usize, Const::<4>));
        let d_cpu = trainer_cpu
            .try_discriminator_step_with_noise(
                &generator_cpu,
                &mut discriminator_cpu,
                real.clone(),
                d_noise.clone(),
            )
            .unwrap();
        let d_gpu = trainer_gpu
            .try_discriminator_step_with_noise(
                &generator_gpu,
                &mut discriminator_gpu,
                copy(&real, &gpu),
                copy(&d_noise, &gpu),
            )
            .unwrap();
        compare(
            &format!("round {round}: discriminator loss and scores"),
            &[d_cpu.loss, d_cpu.real_score, d_cpu.fake_score],
            &[d_gpu.loss, d_gpu.real_score, d_gpu.fake_score],
        );
        let g_cpu = trainer_cpu
            .try_generator_step_with_noise(&mut generator_cpu, &discriminator_cpu, g_noise.clone())
            .unwrap();
        let g_gpu = trainer_gpu
            .try_generator_step_with_noise(
                &mut generator_gpu,
                &discriminator_gpu,
                copy(&g_noise, &gpu),
            )
            .unwrap();
        compare(
            &format!("round {round}: generator loss"),
            &[g_cpu],
            &[g_gpu],
        );
    }
    compare_named(
        "generator after 3 rounds:",
        named_tensors(&generator_cpu),
        named_tensors(&generator_gpu),
    );
    compare_named(
        "discriminator after 3 rounds:",
        named_tensors(&discriminator_cpu),
        named_tensors(&discriminator_gpu),
    );
}

/// The RBM's conditionals and free energy, then CD-1 steps: the devices draw the same numbers
/// (see the module documentation), so the sampled chains and the updated weights agree too.
#[test]
fn rbm_contrastive_divergence_step() {
    let Some((cpu, gpu)) = devices(7) else { return };
    // Weights drawn on a third device, so that the two devices' generators stay in step.
    let init = Cpu::seed_from_u64(1);
    let start = Rbm::<6, 4, f32, Cpu>::try_new(&init, 0.5).unwrap();
    let mut rbm_cpu = Rbm {
        weight: copy(&start.weight, &cpu),
        visible_bias: copy(&start.visible_bias, &cpu),
        hidden_bias: copy(&start.hidden_bias, &cpu),
    };
    let mut rbm_gpu = Rbm {
        weight: copy(&start.weight, &gpu),
        visible_bias: copy(&start.visible_bias, &gpu),
        hidden_bias: copy(&start.hidden_bias, &gpu),
    };
    let data_values: Vec<f32> = (0..8 * 6).map(|i| ((i * 5) % 7 < 3) as u8 as f32).collect();
    let data_cpu = cpu.tensor_from_vec(data_values.clone(), (Const::<8>, Const::<6>));
    let data_gpu = gpu.tensor_from_vec(data_values, (Const::<8>, Const::<6>));
    compare(
        "hidden probabilities",
        &f64s(
            rbm_cpu
                .try_hidden_probabilities(&data_cpu)
                .unwrap()
                .as_vec(),
        ),
        &f64s(
            rbm_gpu
                .try_hidden_probabilities(&data_gpu)
                .unwrap()
                .as_vec(),
        ),
    );
    compare(
        "free energy",
        &f64s(rbm_cpu.try_free_energy(&data_cpu).unwrap().as_vec()),
        &f64s(rbm_gpu.try_free_energy(&data_gpu).unwrap().as_vec()),
    );
    for step in 0..3 {
        let error_cpu = rbm_cpu
            .try_contrastive_divergence(&data_cpu, 1, 0.1)
            .unwrap();
        let error_gpu = rbm_gpu
            .try_contrastive_divergence(&data_gpu, 1, 0.1)
            .unwrap();
        compare(
            &format!("step {step}: reconstruction error"),
            &[error_cpu],
            &[error_gpu],
        );
        for (name, c, g) in [
            ("weight", rbm_cpu.weight.as_vec(), rbm_gpu.weight.as_vec()),
            (
                "visible bias",
                rbm_cpu.visible_bias.as_vec(),
                rbm_gpu.visible_bias.as_vec(),
            ),
            (
                "hidden bias",
                rbm_cpu.hidden_bias.as_vec(),
                rbm_gpu.hidden_bias.as_vec(),
            ),
        ] {
            compare(&format!("step {step}: {name}"), &f64s(c), &f64s(g));
        }
    }
}

/// The DBM's mean-field inference, ten sweeps (the tolerance 0 never stops it early, so both
/// devices run the same number).
#[test]
fn dbm_mean_field() {
    let Some((cpu, gpu)) = devices(0) else { return };
    let start = Dbm::<6, 5, 4, 3, f32, Cpu>::try_new(&cpu, 0.7).unwrap();
    let dbm_gpu = Dbm {
        weight1: copy(&start.weight1, &gpu),
        weight2: copy(&start.weight2, &gpu),
        weight3: copy(&start.weight3, &gpu),
        visible_bias: copy(&start.visible_bias, &gpu),
        hidden1_bias: copy(&start.hidden1_bias, &gpu),
        hidden2_bias: copy(&start.hidden2_bias, &gpu),
        hidden3_bias: copy(&start.hidden3_bias, &gpu),
    };
    let data_values: Vec<f32> = (0..5 * 6).map(|i| ((i * 3) % 5 < 2) as u8 as f32).collect();
    let data_cpu = cpu.tensor_from_vec(data_values.clone(), (Const::<5>, Const::<6>));
    let data_gpu = gpu.tensor_from_vec(data_values, (Const::<5>, Const::<6>));
    let config = MeanFieldConfig {
        max_iterations: 10,
        tolerance: 0.0,
    };
    let cpu_field = start.try_mean_field(&data_cpu, &config).unwrap();
    let gpu_field = dbm_gpu.try_mean_field(&data_gpu, &config).unwrap();
    assert_eq!(cpu_field.iterations, gpu_field.iterations);
    compare(
        "h1",
        &f64s(cpu_field.hidden1.as_vec()),
        &f64s(gpu_field.hidden1.as_vec()),
    );
    compare(
        "h2",
        &f64s(cpu_field.hidden2.as_vec()),
        &f64s(gpu_field.hidden2.as_vec()),
    );
    compare(
        "h3",
        &f64s(cpu_field.hidden3.as_vec()),
        &f64s(gpu_field.hidden3.as_vec()),
    );
}
