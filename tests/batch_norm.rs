//! Batch normalisation: the layer against PyTorch 2.15 in training and evaluation modes
//! (`tools/reference_batch_norm.py` writes `tests/fixtures/batch_norm.txt`), the three ways a
//! network runs it, and finite-difference gradients through it.

use std::collections::HashMap;

use dfdx::prelude::*;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::layers::{BatchNorm1d, BatchNorm2d};
use typednet::ops::{
    try_batch_norm1d, try_batch_norm1d_mut, try_batch_norm2d, try_batch_norm2d_mut,
};
use typednet::testing::TestDevice;
use typednet::{assert_close, network};

type Dev = TestDevice;

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/batch_norm.txt"
    ))
}

/// Runs a batch-norm layer (`$layer`, in element type `$elem`) on the fixture's arrays named
/// `$prefix.*`: training mode with the tape (output, the three gradients, the updated running
/// statistics) and evaluation mode with those statistics, each against PyTorch within
/// `$values` (outputs and parameter gradients), `$grad_x` and `$stats`.
macro_rules! assert_matches_pytorch {
    (
        $prefix:literal, $layer:ty, $shape:ty, $elem:ty, $train:path, $eval:path,
        tolerances: $values:expr, $grad_x:expr, $stats:expr $(,)?
    ) => {{
        let f = fixture();
        let get = |name: &str| -> Vec<$elem> {
            f[&format!("{}.{name}", $prefix)]
                .iter()
                .map(|&v| v as $elem)
                .collect()
        };
        let dev = typednet::test_device!();
        let mut layer: $layer = BuildModule::build(&dev);
        layer.scale.copy_from(&get("weight"));
        layer.bias.copy_from(&get("bias"));
        layer.running_mean.copy_from(&get("running_mean"));
        layer.running_var.copy_from(&get("running_var"));
        let x: Tensor<$shape, $elem, Dev> = dev.tensor(get("x"));
        let g: Tensor<$shape, $elem, Dev> = dev.tensor(get("g"));

        let y = $train(x.leaky_trace(), &mut layer).unwrap();
        assert_close!(y.as_vec(), get("train_out"), $values);
        let grads = (y * g).sum().backward();
        assert_close!(grads.get(&x).as_vec(), get("grad_x"), $grad_x);
        assert_close!(
            grads.get(&layer.scale).as_vec(),
            get("grad_weight"),
            $values
        );
        assert_close!(grads.get(&layer.bias).as_vec(), get("grad_bias"), $values);
        assert_close!(
            layer.running_mean.as_vec(),
            get("running_mean_after"),
            $stats
        );
        assert_close!(layer.running_var.as_vec(), get("running_var_after"), $stats);

        // Evaluation (no tape) normalises by the updated running statistics.
        let eval = $eval(x.clone(), &layer).unwrap();
        assert_close!(eval.as_vec(), get("eval_out"), $values);
    }};
}

#[test]
fn batch_norm2d_matches_pytorch_in_training_and_evaluation() {
    assert_matches_pytorch!(
        "bn2d", BatchNorm2d<3, f64, Dev>, Rank4<2, 3, 4, 5>, f64,
        try_batch_norm2d_mut, try_batch_norm2d,
        tolerances: 1e-10, 1e-9, 1e-12,
    );
}

#[test]
fn batch_norm1d_matches_pytorch_in_training_and_evaluation() {
    assert_matches_pytorch!(
        "bn1d", BatchNorm1d<4, f64, Dev>, Rank2<5, 4>, f64,
        try_batch_norm1d_mut, try_batch_norm1d,
        tolerances: 1e-10, 1e-9, 1e-12,
    );
}

/// The same fixtures in `f32`, which on the CPU runs typednet's fused training kernel (the
/// tests above, in `f64`, run the composition of dfdx ops).
#[test]
fn batch_norm_in_f32_matches_pytorch_in_training_and_evaluation() {
    assert_matches_pytorch!(
        "bn2d", BatchNorm2d<3, f32, Dev>, Rank4<2, 3, 4, 5>, f32,
        try_batch_norm2d_mut, try_batch_norm2d,
        tolerances: 1e-5, 1e-5, 1e-6,
    );
    assert_matches_pytorch!(
        "bn1d", BatchNorm1d<4, f32, Dev>, Rank2<5, 4>, f32,
        try_batch_norm1d_mut, try_batch_norm1d,
        tolerances: 1e-5, 1e-5, 1e-6,
    );
}

network! {
    /// Batch norm after a convolution and after a dense layer.
    pub struct Normalised: [3, 6, 6]
        -> conv(4, 3) -> batchnorm -> relu
        -> flatten -> linear(5) -> batchnorm -> linear(2);
}

#[test]
fn networks_train_batch_norm_with_forward_mut_and_evaluate_with_forward() {
    // γ and β count as parameters, the running statistics do not (PyTorch's count).
    assert_eq!(
        <Normalised>::PARAMETERS,
        (4 * 3 * 9 + 4) + 2 * 4 + (64 * 5 + 5) + 2 * 5 + (5 * 2 + 2)
    );
    let dev = typednet::test_device!(0);
    let mut net = Normalised::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<8, 3, 6, 6>, f64, Dev> = dev.sample_normal();
    let fresh = net.batchnorm1.running_mean.as_vec();
    assert_eq!(fresh, vec![0.0; 4]);

    // `forward` with a tape uses the batch's statistics but leaves the running ones alone.
    let _ = net.forward(x.leaky_trace());
    assert_eq!(net.batchnorm1.running_mean.as_vec(), fresh);
    // `forward_mut` with a tape updates them: running = 0.9·0 + 0.1·(batch mean).
    let trained = net.forward_mut(x.leaky_trace());
    let moved = net.batchnorm1.running_mean.as_vec();
    assert!(moved.iter().all(|&m| m != 0.0), "{moved:?}");
    // Without a tape, evaluation is deterministic and uses the running statistics: it differs
    // from the training output of the same batch.
    let eval_a = net.forward(x.clone()).as_vec();
    let eval_b = net.forward_mut(x.clone()).as_vec();
    assert_eq!(eval_a, eval_b);
    assert_eq!(net.batchnorm1.running_mean.as_vec(), moved);
    assert!(eval_a
        .iter()
        .zip(trained.as_vec())
        .any(|(a, t)| (a - t).abs() > 1e-6));
}

#[test]
fn gradients_through_batch_norm_in_training_mode() {
    let dev = typednet::test_device!(1);
    let net = Normalised::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<4, 3, 6, 6>, f64, Dev> = dev.sample_normal();
    let g: Tensor<Rank2<4, 2>, f64, Dev> = dev.sample_normal();
    check_gradient(&x, |x| (net.forward(x) * g.clone()).sum()).assert_below(1e-6);
    let loss = |net: &Normalised<f64, Dev>, grads| (net.forward(x.trace(grads)) * g.clone()).sum();
    check_parameter_gradient(&net, |n| &mut n.batchnorm1.scale, loss).assert_below(1e-6);
    check_parameter_gradient(&net, |n| &mut n.batchnorm2.bias, loss).assert_below(1e-6);
    check_parameter_gradient(&net, |n| &mut n.conv1.weight, loss).assert_below(1e-6);
}

network! {
    /// A small batch-normalised classifier for the digits.
    pub struct DigitsBn: [1, 28, 28]
        -> conv(8, 5, stride = 3, bias = false) -> batchnorm -> relu
        -> flatten -> linear(10);
}

#[test]
fn the_trainer_updates_running_statistics_and_evaluates_with_them() {
    use rand::{rngs::StdRng, SeedableRng};
    use typednet::dfdx::optim::{Adam, AdamConfig};
    use typednet::train::{Trainer, Verbosity};

    let (train, test) = typednet::data::Mnist::load_shipped()
        .unwrap()
        .split_at(1_000);
    let test = test.take(500);
    let dev = dfdx::tensor::Cpu::seed_from_u64(0);
    let mut net = DigitsBn::<f32, dfdx::tensor::Cpu>::new(&dev);
    let mut optimizer = Adam::new(&net, AdamConfig::default());
    let history = Trainer::new(&dev)
        .epochs(2)
        .batch_size(50)
        .verbosity(Verbosity::Silent)
        .fit_images::<1, 28, 28, 10, f32, _, _, _>(
            &mut net,
            &mut optimizer,
            &train,
            &test,
            &mut StdRng::seed_from_u64(1),
        )
        .unwrap();
    // Training ran `forward_mut`: the running mean left 0 and the variance left 1.
    assert!(net
        .batchnorm1
        .running_mean
        .as_vec()
        .iter()
        .all(|&m| m != 0.0));
    assert!(net
        .batchnorm1
        .running_var
        .as_vec()
        .iter()
        .all(|&v| v != 1.0));
    // Evaluation uses those statistics: the trained network with its running statistics reset
    // to PyTorch's initial ones (mean 0, variance 1) classifies far worse.
    let trained = history.last().unwrap().test_accuracy;
    let mut reset = net.clone();
    reset.batchnorm1.running_mean = dev.zeros();
    reset.batchnorm1.running_var = dev.ones();
    let trainer = Trainer::new(&dev).batch_size(50);
    let without = trainer
        .evaluate::<Rank3<1, 28, 28>, 10, f32, _>(&reset, &test)
        .unwrap()
        .accuracy;
    eprintln!("accuracy {trained} with the running statistics, {without} with reset ones");
    assert!(trained > 0.7, "test accuracy {trained}");
    assert!(trained > without + 0.05, "{trained} vs {without}");
}

network! {
    pub struct BnEncoder: [3, 6, 6] -> conv(4, 3) -> batchnorm -> relu -> flatten;
    pub struct BnHead: [64] -> linear(5) -> batchnorm -> linear(2);
    pub struct BnWhole = BnEncoder -> BnHead;
}

#[test]
fn a_composition_trains_the_batch_norm_of_its_stages() {
    let dev = typednet::test_device!(3);
    let mut net = BnWhole::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<8, 3, 6, 6>, f64, Dev> = dev.sample_normal();
    let _ = net.forward(x.leaky_trace());
    assert_eq!(
        net.bn_encoder.batchnorm1.running_mean.as_vec(),
        vec![0.0; 4]
    );
    let _ = net.forward_mut(x.leaky_trace());
    assert!(net
        .bn_encoder
        .batchnorm1
        .running_mean
        .as_vec()
        .iter()
        .all(|&m| m != 0.0));
    assert!(net
        .bn_head
        .batchnorm1
        .running_mean
        .as_vec()
        .iter()
        .all(|&m| m != 0.0));
}
