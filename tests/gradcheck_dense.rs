//! Finite-difference gradient checks of the dense layers and activations, and of a whole random
//! multi-layer perceptron.
//!
//! Every loss is `Σ out ⊙ g` with `g` a fixed random tensor, so each output element is weighted
//! differently and a backward pass that mixes up elements cannot pass by symmetry. Inputs and
//! parameters are random normal, values of order 1, so the losses are of order 1 too and
//! central differences with `ε = 1e-6` are accurate to about `1e-10`; every check demands an
//! error below `1e-6` (relative, or absolute for gradients below 1: see `typednet::gradcheck`).

use dfdx::prelude::*;
use typednet::gradcheck::{check_gradient, check_parameter_gradient, GradCheck};
use typednet::layers::Linear;
use typednet::testing::TestDevice;

const TOLERANCE: f64 = 1e-6;

type Dev = TestDevice;

fn device(seed: u64) -> Option<Dev> {
    typednet::testing::test_device_seeded(seed)
}

/// A random normal tensor.
fn normal<S: ConstShape>(dev: &Dev) -> Tensor<S, f64, Dev> {
    dev.sample_normal()
}

/// A random normal tensor whose elements are all at least `gap` away from 0, for functions with
/// a kink there (a finite difference straddling the kink measures neither slope).
fn away_from_zero<S: ConstShape>(dev: &Dev, gap: f64) -> Tensor<S, f64, Dev> {
    let values = normal::<S>(dev)
        .as_vec()
        .into_iter()
        .map(|v| v.signum() * (v.abs() + gap))
        .collect();
    dev.tensor_from_vec(values, S::default())
}

#[test]
fn linear_gradient_with_respect_to_input() {
    let Some(dev) = device(1) else { return };
    let linear: Linear<5, 3, f64, Dev> = BuildModule::build(&dev);
    let x: Tensor<Rank2<4, 5>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 3>, f64, Dev> = normal(&dev);
    let report = check_gradient(&x, |x| (linear.forward(x) * g.clone()).sum());
    report.assert_below(TOLERANCE);
}

#[test]
fn linear_gradient_with_respect_to_weight_and_bias() {
    let Some(dev) = device(2) else { return };
    let linear: Linear<5, 3, f64, Dev> = BuildModule::build(&dev);
    let x: Tensor<Rank2<4, 5>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 3>, f64, Dev> = normal(&dev);
    let loss = |linear: &Linear<5, 3, f64, Dev>, gradients| {
        (linear.forward(x.trace(gradients)) * g.clone()).sum()
    };
    check_parameter_gradient(&linear, |linear| &mut linear.weight, loss).assert_below(TOLERANCE);
    check_parameter_gradient(&linear, |linear| &mut linear.bias, loss).assert_below(TOLERANCE);
}

#[test]
fn linear_gradient_for_a_single_example() {
    let Some(dev) = device(3) else { return };
    let linear: Linear<7, 2, f64, Dev> = BuildModule::build(&dev);
    let x: Tensor<Rank1<7>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank1<2>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (linear.forward(x) * g.clone()).sum()).assert_below(TOLERANCE);
    let loss = |linear: &Linear<7, 2, f64, Dev>, gradients| {
        (linear.forward(x.trace(gradients)) * g.clone()).sum()
    };
    check_parameter_gradient(&linear, |linear| &mut linear.weight, loss).assert_below(TOLERANCE);
}

#[test]
fn relu_gradient_away_from_zero() {
    let Some(dev) = device(4) else { return };
    // Every input at least 0.05 from the kink, far more than ε = 1e-6.
    let x: Tensor<Rank2<4, 6>, f64, Dev> = away_from_zero(&dev, 0.05);
    let g: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let report = check_gradient(&x, |x| (x.relu() * g.clone()).sum());
    report.assert_below(TOLERANCE);
    // Both sides of the kink were exercised.
    let values = x.as_vec();
    assert!(values.iter().any(|&v| v < 0.0) && values.iter().any(|&v| v > 0.0));
}

#[test]
fn sigmoid_gradient() {
    let Some(dev) = device(5) else { return };
    let x: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (x.sigmoid() * g.clone()).sum()).assert_below(TOLERANCE);
}

#[test]
fn tanh_gradient() {
    let Some(dev) = device(6) else { return };
    let x: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (x.tanh() * g.clone()).sum()).assert_below(TOLERANCE);
}

#[test]
fn softmax_gradient_over_the_last_axis() {
    let Some(dev) = device(7) else { return };
    let x: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (x.softmax::<Axis<1>>() * g.clone()).sum()).assert_below(TOLERANCE);
}

#[test]
fn log_softmax_gradient_over_the_last_axis() {
    let Some(dev) = device(8) else { return };
    let x: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (x.log_softmax::<Axis<1>>() * g.clone()).sum()).assert_below(TOLERANCE);
}

#[test]
fn softmax_gradient_of_large_logits() {
    // Logits of order 10 (a confident classifier): softmax saturates and the loss's gradients
    // span several orders of magnitude.
    let Some(dev) = device(9) else { return };
    let x: Tensor<Rank2<3, 5>, f64, Dev> = normal::<Rank2<3, 5>>(&dev) * 10.0;
    let g: Tensor<Rank2<3, 5>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (x.softmax::<Axis<1>>() * g.clone()).sum()).assert_below(TOLERANCE);
    check_gradient(&x, |x| (x.log_softmax::<Axis<1>>() * g.clone()).sum()).assert_below(TOLERANCE);
}

/// Linear → tanh → Linear → sigmoid → Linear, with random parameters.
type Mlp = (
    Linear<6, 8, f64, Dev>,
    Tanh,
    Linear<8, 5, f64, Dev>,
    Sigmoid,
    Linear<5, 3, f64, Dev>,
);

#[test]
fn random_mlp_gradient_with_respect_to_input() {
    let Some(dev) = device(10) else { return };
    let mlp: Mlp = BuildModule::build(&dev);
    let x: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 3>, f64, Dev> = normal(&dev);
    check_gradient(&x, |x| (mlp.forward(x) * g.clone()).sum()).assert_below(TOLERANCE);
}

#[test]
fn random_mlp_gradient_with_respect_to_every_parameter() {
    let Some(dev) = device(11) else { return };
    let mlp: Mlp = BuildModule::build(&dev);
    let x: Tensor<Rank2<4, 6>, f64, Dev> = normal(&dev);
    let g: Tensor<Rank2<4, 3>, f64, Dev> = normal(&dev);
    let loss = |mlp: &Mlp, gradients| (mlp.forward(x.trace(gradients)) * g.clone()).sum();
    let check = GradCheck::default();
    check
        .parameter(&mlp, |mlp| &mut mlp.0.weight, loss)
        .assert_below(TOLERANCE);
    check
        .parameter(&mlp, |mlp| &mut mlp.0.bias, loss)
        .assert_below(TOLERANCE);
    check
        .parameter(&mlp, |mlp| &mut mlp.2.weight, loss)
        .assert_below(TOLERANCE);
    check
        .parameter(&mlp, |mlp| &mut mlp.2.bias, loss)
        .assert_below(TOLERANCE);
    check
        .parameter(&mlp, |mlp| &mut mlp.4.weight, loss)
        .assert_below(TOLERANCE);
    check
        .parameter(&mlp, |mlp| &mut mlp.4.bias, loss)
        .assert_below(TOLERANCE);
}
