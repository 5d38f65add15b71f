//! The locally-connected 2-d layer against a PyTorch 2.15 reference
//! (`tools/reference_locally_connected.py` writes `tests/fixtures/locally_connected2d.txt`):
//! forward values and the gradients of the input, weight and bias; finite differences; and the
//! two properties that define it: with the same filters at every position it is a convolution,
//! and otherwise each position's filters reach that position only.

use std::collections::HashMap;

use dfdx::prelude::*;
use typednet::assert_close;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::layers::{Conv2d, LocallyConnected2d};
use typednet::ops::{try_conv2d, try_locally_connected2d, Conv2dGeometry};
use typednet::testing::TestDevice;

type Dev = TestDevice;

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locally_connected2d.txt"
    ))
}

fn no_padding() -> Conv2dGeometry {
    Conv2dGeometry {
        stride: [1, 1],
        padding: [0, 0],
    }
}

fn strided_padded() -> Conv2dGeometry {
    Conv2dGeometry {
        stride: [2, 2],
        padding: [1, 0],
    }
}

/// Checks fixture case `name` (batch 2) against the sizes in the test's types, forward and
/// backward, then the input and weight gradients by finite differences.
fn check_case<
    const C_IN: usize,
    const C_OUT: usize,
    const H: usize,
    const W: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
>(
    name: &str,
    geometry: Conv2dGeometry,
) {
    let f = fixture();
    let get = |key: &str| f[&format!("{name}.{key}")].clone();
    let sizes: Vec<usize> = get("sizes").iter().map(|&v| v as usize).collect();
    #[rustfmt::skip]
    let expected = [
        2, C_IN, C_OUT, H, W, K_H, K_W,
        geometry.stride[0], geometry.stride[1], geometry.padding[0], geometry.padding[1], O_H, O_W,
    ];
    assert_eq!(
        sizes, expected,
        "fixture {name}: sizes differ from the test's types"
    );

    let dev = typednet::test_device!();
    let layer = LocallyConnected2d::<C_IN, C_OUT, K_H, K_W, O_H, O_W, f64, Dev> {
        weight: dev.tensor_from_vec(get("weight"), Default::default()),
        bias: dev.tensor_from_vec(get("bias"), Default::default()),
    };
    let x: Tensor<(Const<2>, Const<C_IN>, Const<H>, Const<W>), f64, Dev> =
        dev.tensor_from_vec(get("x"), Default::default());
    let g: Tensor<(Const<2>, Const<C_OUT>, Const<O_H>, Const<O_W>), f64, Dev> =
        dev.tensor_from_vec(get("g"), Default::default());

    let y = try_locally_connected2d(x.leaky_trace(), &layer, geometry).unwrap();
    assert_close!(y.as_vec(), get("y"), 1e-12);
    let grads = (y * g.clone()).sum().backward();
    assert_close!(grads.get(&x).as_vec(), get("grad_x"), 1e-10);
    assert_close!(grads.get(&layer.weight).as_vec(), get("grad_weight"), 1e-10);
    assert_close!(grads.get(&layer.bias).as_vec(), get("grad_bias"), 1e-10);

    check_gradient(&x, |x| {
        (try_locally_connected2d(x, &layer, geometry).unwrap() * g.clone()).sum()
    })
    .assert_below(1e-6);
    check_parameter_gradient(
        &layer,
        |layer| &mut layer.weight,
        |layer, gradients| {
            (try_locally_connected2d(x.trace(gradients), layer, geometry).unwrap() * g.clone())
                .sum()
        },
    )
    .assert_below(1e-6);
}

#[test]
fn locally_connected_3x3_matches_pytorch() {
    check_case::<2, 3, 5, 6, 3, 3, 3, 4>("a", no_padding());
}

#[test]
fn locally_connected_strided_padded_3x2_matches_pytorch() {
    check_case::<3, 2, 7, 5, 3, 2, 4, 2>("b", strided_padded());
}

/// Every position's filters and biases set to one convolution's: the outputs and the input
/// gradients are the convolution's, and the weight and bias gradients, summed over the
/// positions, are the convolution's.
fn shared_filters_give_the_convolution<
    const C_IN: usize,
    const C_OUT: usize,
    const H: usize,
    const W: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
>(
    geometry: Conv2dGeometry,
) {
    let dev = typednet::test_device!();
    let conv = Conv2d::<C_IN, C_OUT, K_H, K_W, f64, Dev>::build(&dev);
    let filters = conv.weight.as_vec();
    let biases = conv.bias.as_vec();
    let positions = O_H * O_W;
    let local = LocallyConnected2d::<C_IN, C_OUT, K_H, K_W, O_H, O_W, f64, Dev> {
        // `[O_H, O_W]` copies of the `[C_OUT, C_IN, K_H, K_W]` filters.
        weight: dev.tensor_from_vec(filters.repeat(positions), Default::default()),
        // `[C_OUT, O_H, O_W]`: each channel's bias at every position.
        bias: dev.tensor_from_vec(
            biases
                .iter()
                .flat_map(|&b| std::iter::repeat_n(b, positions))
                .collect(),
            Default::default(),
        ),
    };
    let x: Tensor<(Const<3>, Const<C_IN>, Const<H>, Const<W>), f64, Dev> = dev.sample_normal();
    let g: Tensor<(Const<3>, Const<C_OUT>, Const<O_H>, Const<O_W>), f64, Dev> = dev.sample_normal();

    let expected = try_conv2d(x.leaky_trace(), &conv, geometry).unwrap();
    let actual = try_locally_connected2d(x.leaky_trace(), &local, geometry).unwrap();
    let expected_values = expected.as_vec();
    assert_close!(actual.as_vec(), expected_values, 1e-12);
    // Not a vacuous comparison.
    assert!(expected_values.iter().any(|v| v.abs() > 0.1));

    let conv_grads = (expected * g.clone()).sum().backward();
    let local_grads = (actual * g).sum().backward();
    assert_close!(
        local_grads.get(&x).as_vec(),
        conv_grads.get(&x).as_vec(),
        1e-12
    );
    let per_position = local_grads.get(&local.weight).as_vec();
    let summed: Vec<f64> = (0..filters.len())
        .map(|k| per_position.iter().skip(k).step_by(filters.len()).sum())
        .collect();
    assert_close!(summed, conv_grads.get(&conv.weight).as_vec(), 1e-12);
    let summed: Vec<f64> = local_grads
        .get(&local.bias)
        .as_vec()
        .chunks(positions)
        .map(|channel| channel.iter().sum())
        .collect();
    assert_close!(summed, conv_grads.get(&conv.bias).as_vec(), 1e-12);
}

#[test]
fn locally_connected_with_shared_filters_is_a_convolution() {
    shared_filters_give_the_convolution::<2, 3, 5, 6, 3, 3, 3, 4>(no_padding());
    shared_filters_give_the_convolution::<3, 2, 7, 5, 3, 2, 4, 2>(strided_padded());
}

/// Changing the filter of output channel 1 at position (1, 2) changes `y[·, 1, 1, 2]` and no
/// other output: nothing is shared between positions or channels.
#[test]
fn locally_connected_positions_do_not_share_filters() {
    let dev = typednet::test_device!();
    let layer = LocallyConnected2d::<2, 3, 3, 3, 3, 4, f64, Dev>::build(&dev);
    let x: Tensor<Rank4<2, 2, 5, 6>, f64, Dev> = dev.sample_normal();
    let before = try_locally_connected2d(x.clone(), &layer, no_padding())
        .unwrap()
        .array();

    // `[O_H, O_W, C_OUT, C_IN·K_H·K_W]` in row-major order.
    let filter_len = 2 * 3 * 3;
    let start = ((4 + 2) * 3 + 1) * filter_len;
    let mut weight = layer.weight.as_vec();
    for w in &mut weight[start..start + filter_len] {
        *w += 0.5;
    }
    let mut changed = layer.clone();
    changed.weight = dev.tensor_from_vec(weight, Default::default());
    let after = try_locally_connected2d(x, &changed, no_padding())
        .unwrap()
        .array();

    for b in 0..2 {
        for o in 0..3 {
            for i in 0..3 {
                for j in 0..4 {
                    let (old, new) = (before[b][o][i][j], after[b][o][i][j]);
                    if (o, i, j) == (1, 1, 2) {
                        assert!((new - old).abs() > 1e-6, "[{b}, {o}, {i}, {j}] unchanged");
                    } else {
                        assert_eq!(new, old, "[{b}, {o}, {i}, {j}] changed");
                    }
                }
            }
        }
    }
}
