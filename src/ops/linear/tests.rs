//! The `f32` CPU kernel against the reference (dfdx's `Linear`, itself checked against PyTorch
//! in `tests/mlp_pytorch.rs` and by finite differences in `tests/gradcheck_dense.rs`), and against
//! finite differences of its own.

use dfdx::prelude::*;

use super::{try_linear_activation, LinearActivation, LinearShape};
use crate::layers::Linear;

type Dev = Cpu;

/// Values spread over [-1, 1) without repeats that could hide a transposed index.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn layer<const I: usize, const O: usize>(dev: &Dev, seed: u64) -> Linear<I, O, f32, Dev> {
    let mut layer: Linear<I, O, f32, Dev> =
        dev.build_module::<dfdx::nn::builders::Linear<I, O>, f32>();
    layer.weight.copy_from(&values(I * O, seed));
    layer.bias.copy_from(&values(O, seed + 1));
    layer
}

const ACTIVATIONS: [LinearActivation; 6] = [
    LinearActivation::Identity,
    LinearActivation::Relu,
    LinearActivation::LeakyRelu(0.2),
    // Outside [0, 1]: the layer, then the separate op.
    LinearActivation::LeakyRelu(-0.5),
    LinearActivation::Sigmoid,
    LinearActivation::Tanh,
];

/// Output and the gradients of `x`, `W` and `b` under the loss `Σ y ⊙ g`, by the kernel (`fast`)
/// or by dfdx's module followed by dfdx's activation op.
fn run<const I: usize, const O: usize, S: LinearShape<I, O>>(
    dev: &Dev,
    x: &Tensor<S, f32, Dev>,
    layer: &Linear<I, O, f32, Dev>,
    activation: LinearActivation,
    fast: bool,
) -> [Vec<f32>; 4] {
    let g = dev.tensor_from_vec(
        values(x.shape().num_elements() / I * O, 99),
        x.shape().output_shape(),
    );
    let x_traced = x.clone().leaky_trace();
    let y = if fast {
        try_linear_activation(x_traced, layer, activation).unwrap()
    } else {
        activation
            .reference(S::reference(x_traced, layer).unwrap())
            .unwrap()
    };
    let y_values = y.as_vec();
    let grads = (y * g).sum::<(), _>().backward();
    [
        y_values,
        grads.get(x).as_vec(),
        grads.get(&layer.weight).as_vec(),
        grads.get(&layer.bias).as_vec(),
    ]
}

fn assert_close(what: &str, fast: &[f32], reference: &[f32], tolerance: f32) {
    assert_eq!(fast.len(), reference.len(), "{what}: lengths");
    for (index, (f, r)) in fast.iter().zip(reference).enumerate() {
        assert!(
            (f - r).abs() <= tolerance * (1.0 + r.abs()),
            "{what}[{index}]: kernel {f}, reference {r}"
        );
    }
}

fn compare<const I: usize, const O: usize, S: LinearShape<I, O>>(
    dev: &Dev,
    x: Tensor<S, f32, Dev>,
    label: &str,
) {
    let layer = layer::<I, O>(dev, 7);
    for activation in ACTIVATIONS {
        let fast = run(dev, &x, &layer, activation, true);
        let reference = run(dev, &x, &layer, activation, false);
        // Sums of up to a few hundred products in another order: f32 rounding only (and the
        // polynomial `exp` of σ and tanh, within 1e-6).
        let tolerance = 1e-5 * (I.max(x.shape().num_elements() / I) as f32).sqrt();
        for (name, (f, r)) in ["y", "∂x", "∂W", "∂b"]
            .iter()
            .zip(fast.iter().zip(&reference))
        {
            assert_close(&format!("{label} {activation:?} {name}"), f, r, tolerance);
        }
        // Not all zeros (a kernel that did nothing would match an empty reference).
        assert!(
            fast.iter().all(|v| v.iter().any(|&x| x != 0.0)),
            "{label} {activation:?}: a zero result"
        );
    }
}

#[test]
fn matches_dfdx_on_every_input_shape() {
    let dev = Dev::default();
    compare::<5, 3, _>(
        &dev,
        dev.tensor_from_vec(values(5, 1), (Const::<5>,)),
        "[5]",
    );
    compare::<5, 3, _>(
        &dev,
        dev.tensor_from_vec(values(4 * 5, 2), (Const::<4>, Const::<5>)),
        "[4, 5]",
    );
    compare::<17, 33, _>(
        &dev,
        dev.tensor_from_vec(values(7 * 17, 3), (7usize, Const::<17>)),
        "[7, 17]",
    );
    compare::<9, 20, _>(
        &dev,
        dev.tensor_from_vec(values(3 * 6 * 9, 4), (Const::<3>, 6usize, Const::<9>)),
        "[3, 6, 9]",
    );
    // The MLP's first layer, with a batch that is no multiple of the 6-row tile.
    compare::<784, 256, _>(
        &dev,
        dev.tensor_from_vec(values(37 * 784, 5), (37usize, Const::<784>)),
        "[37, 784]",
    );
    // Past the parallel threshold and the 384-deep packing blocks.
    compare::<800, 70, _>(
        &dev,
        dev.tensor_from_vec(values(130 * 800, 6), (130usize, Const::<800>)),
        "[130, 800]",
    );
    // An output long enough for the activation to be split between threads.
    compare::<20, 784, _>(
        &dev,
        dev.tensor_from_vec(values(50 * 20, 9), (50usize, Const::<20>)),
        "[50, 20] → 784",
    );
}

#[test]
fn fused_activation_without_a_tape_gives_the_taped_values() {
    let dev = Dev::default();
    let layer = layer::<6, 5>(&dev, 2);
    let x = dev.tensor_from_vec(values(3 * 6, 3), (3usize, Const::<6>));
    for activation in ACTIVATIONS {
        let plain = try_linear_activation(x.clone(), &layer, activation).unwrap();
        let taped = try_linear_activation(x.clone().leaky_trace(), &layer, activation).unwrap();
        assert_eq!(plain.as_vec(), taped.as_vec(), "{activation:?}");
    }
}

/// The fused op leaves the gradient of its output as the caller's loss made it: the
/// activation's chain rule works on a copy.
#[test]
fn fused_activation_keeps_the_output_gradient() {
    let dev = Dev::default();
    let layer = layer::<4, 3>(&dev, 5);
    let x = dev.tensor_from_vec(values(2 * 4, 6), (2usize, Const::<4>));
    let g_values = values(2 * 3, 7);
    let g = dev.tensor_from_vec(g_values.clone(), (2usize, Const::<3>));
    let y = try_linear_activation(x.leaky_trace(), &layer, LinearActivation::Sigmoid).unwrap();
    let y_ghost = y.retaped::<NoneTape>();
    let grads = (y * g).sum::<(), _>().backward();
    assert_eq!(grads.get(&y_ghost).as_vec(), g_values);
}

#[test]
fn reads_a_permuted_input_in_its_logical_order() {
    let dev = Dev::default();
    let x: Tensor<Rank2<6, 4>, f32, Dev> = dev.tensor_from_vec(values(24, 8), (Const, Const));
    let x = x.permute::<Rank2<4, 6>, _>();
    compare::<6, 5, _>(&dev, x, "permuted [4, 6]");
}

#[test]
fn gradients_match_finite_differences() {
    // Without an activation `L = Σ y ⊙ g` is linear in each of x, W and b, so a central
    // difference with a large step is exact but for f32 rounding: a tight tolerance and no
    // truncation error. Through σ and tanh a small step leaves an O(step²) truncation error and
    // f32 rounding over 2·step. (ReLU is held to dfdx's op above: a difference across its kink
    // would measure nothing.)
    for (activation, step, tolerance) in [
        (LinearActivation::Identity, 0.5, 1e-5),
        (LinearActivation::Sigmoid, 1e-2, 1e-3),
        (LinearActivation::Tanh, 1e-2, 1e-3),
    ] {
        check_finite_differences(activation, step, tolerance);
    }
}

fn check_finite_differences(activation: LinearActivation, step: f32, tolerance: f64) {
    let dev = Dev::default();
    const I: usize = 7;
    const O: usize = 5;
    const R: usize = 4;
    let layer = layer::<I, O>(&dev, 3);
    let x_values = values(R * I, 4);
    let g_values = values(R * O, 5);
    let loss = |x: &[f32], weight: &[f32], bias: &[f32]| -> f64 {
        let mut layer = layer.clone();
        layer.weight.copy_from(weight);
        layer.bias.copy_from(bias);
        let x = dev.tensor_from_vec(x.to_vec(), (Const::<R>, Const::<I>));
        let y = try_linear_activation(x, &layer, activation)
            .unwrap()
            .as_vec();
        y.iter()
            .zip(&g_values)
            .map(|(y, g)| f64::from(*y) * f64::from(*g))
            .sum()
    };
    let x = dev.tensor_from_vec(x_values.clone(), (Const::<R>, Const::<I>));
    let [_, grad_x, grad_w, grad_b] = {
        let g = dev.tensor_from_vec(g_values.clone(), (Const::<R>, Const::<O>));
        let y = try_linear_activation(x.clone().leaky_trace(), &layer, activation).unwrap();
        let grads = (y * g).sum::<(), _>().backward();
        [
            Vec::new(),
            grads.get(&x).as_vec(),
            grads.get(&layer.weight).as_vec(),
            grads.get(&layer.bias).as_vec(),
        ]
    };
    let (weight, bias) = (layer.weight.as_vec(), layer.bias.as_vec());
    let numerical = |which: usize, index: usize| {
        let mut plus = [x_values.clone(), weight.clone(), bias.clone()];
        let mut minus = plus.clone();
        plus[which][index] += step;
        minus[which][index] -= step;
        (loss(&plus[0], &plus[1], &plus[2]) - loss(&minus[0], &minus[1], &minus[2]))
            / (2.0 * f64::from(step))
    };
    for (which, (name, analytic)) in [("∂x", &grad_x), ("∂W", &grad_w), ("∂b", &grad_b)]
        .into_iter()
        .enumerate()
    {
        for (index, &a) in analytic.iter().enumerate() {
            let n = numerical(which, index);
            assert!(
                (f64::from(a) - n).abs() < tolerance,
                "{activation:?} {name}[{index}]: backward {a}, finite difference {n}"
            );
        }
    }
}
