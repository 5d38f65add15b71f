//! Grouped convolution against PyTorch 2.15 (`tools/reference_grouped_conv.py` writes
//! `tests/fixtures/grouped_conv2d.txt`): forward values and the gradients of the input, the
//! weight and the bias through `try_grouped_conv2d`, and finite-difference checks of the input
//! and weight gradients.

use std::collections::HashMap;

use dfdx::nn::BuildModule;
use dfdx::prelude::*;
use typednet::assert_close;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::layers::GroupedConv2d;
use typednet::ops::grouped_conv2d::try_grouped_conv2d;
use typednet::ops::Conv2dGeometry;
use typednet::testing::TestDevice;

type Dev = TestDevice;

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/grouped_conv2d.txt"
    ))
}

fn sizes(f: &HashMap<String, Vec<f64>>, key: &str) -> Vec<usize> {
    f[key].iter().map(|&v| v as usize).collect()
}

/// Checks fixture case `name`, whose sizes the type parameters restate (and the fixture's
/// `.sizes` and `.out_shape` confirm).
fn check<
    const B: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const GROUPS: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
>(
    name: &str,
) {
    let f = fixture();
    let key = |field: &str| format!("{name}.{field}");
    assert_eq!(
        sizes(&f, &key("sizes")),
        [B, C_IN, H, W, C_OUT, GROUPS, K_H, K_W],
        "{name}: the fixture's sizes differ from the test's types"
    );
    assert_eq!(sizes(&f, &key("out_shape")), [B, C_OUT, O_H, O_W]);
    let stride = sizes(&f, &key("stride"));
    let padding = sizes(&f, &key("padding"));
    let geometry = Conv2dGeometry {
        stride: [stride[0], stride[1]],
        padding: [padding[0], padding[1]],
    };

    let dev = typednet::test_device!();
    let mut layer = GroupedConv2d::<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, f64, Dev>::build(&dev);
    layer.weight = dev.tensor(f[&key("weight")].clone());
    layer.bias = dev.tensor(f[&key("bias")].clone());
    let x: Tensor<Rank4<B, C_IN, H, W>, f64, Dev> = dev.tensor(f[&key("x")].clone());
    let g: Tensor<Rank4<B, C_OUT, O_H, O_W>, f64, Dev> = dev.tensor(f[&key("g")].clone());

    let y: Tensor<Rank4<B, C_OUT, O_H, O_W>, f64, Dev, _> =
        try_grouped_conv2d(x.leaky_trace(), &layer, geometry).unwrap();
    assert_close!(y.as_vec(), f[&key("y")], 1e-12);
    let grads = (y * g.clone()).sum().backward();
    assert_close!(grads.get(&x).as_vec(), f[&key("grad_x")], 1e-10);
    assert_close!(
        grads.get(&layer.weight).as_vec(),
        f[&key("grad_weight")],
        1e-10
    );
    assert_close!(grads.get(&layer.bias).as_vec(), f[&key("grad_bias")], 1e-10);

    let loss =
        |x: Tensor<Rank4<B, C_IN, H, W>, f64, Dev, OwnedTape<f64, Dev>>,
         layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, f64, Dev>| {
            let y: Tensor<Rank4<B, C_OUT, O_H, O_W>, f64, Dev, _> =
                try_grouped_conv2d(x, layer, geometry).unwrap();
            (y * g.clone()).sum()
        };
    check_gradient(&x, |x| loss(x, &layer)).assert_below(1e-6);
    check_parameter_gradient(
        &layer,
        |layer| &mut layer.weight,
        |layer, grads| loss(x.clone().traced(grads), layer),
    )
    .assert_below(1e-6);
}

#[test]
fn grouped_conv_two_groups_matches_pytorch() {
    // 4 → 6 channels in 2 groups, 3×3, padding 1: 5×6 kept.
    check::<2, 4, 5, 6, 2, 6, 2, 3, 3, 5, 6>("groups2");
}

#[test]
fn grouped_conv_depthwise_matches_pytorch() {
    // groups = C_IN = 3, 2 filters each, 3×2 kernel, stride 2, padding (1, 0): 7×5 → 4×2.
    check::<2, 3, 7, 5, 1, 6, 3, 3, 2, 4, 2>("depthwise");
}

#[test]
fn grouped_conv_three_groups_stride_2_matches_pytorch() {
    // 6 → 9 channels in 3 groups, 3×3 at stride 2 not tiling 8×10: 3×4.
    check::<2, 6, 8, 10, 2, 9, 3, 3, 3, 3, 4>("groups3_stride2");
}
