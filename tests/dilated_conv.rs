//! Dilated convolution against PyTorch 2.15 (`tools/reference_dilated_conv.py` writes
//! `tests/fixtures/dilated_conv2d.txt`): forward values and the gradients of the input, the
//! weight and the bias through `try_dilated_conv2d`, finite-difference checks of the input and
//! weight gradients, and `network!`'s `conv(…, dilation = d)` against the op.

use std::collections::HashMap;

use dfdx::nn::BuildModule;
use dfdx::prelude::*;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::layers::Conv2d;
use typednet::network::Network;
use typednet::ops::{try_dilated_conv2d, Conv2dGeometry};
use typednet::testing::TestDevice;
use typednet::{assert_close, network};

type Dev = TestDevice;

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dilated_conv2d.txt"
    ))
}

fn sizes(f: &HashMap<String, Vec<f64>>, key: &str) -> Vec<usize> {
    f[key].iter().map(|&v| v as usize).collect()
}

/// Checks fixture case `name`, whose sizes the type parameters restate (and the fixture's
/// `.sizes` and `.out_shape` confirm); `KD_H`, `KD_W` are the dilated extents.
fn check<
    const B: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    const KD_H: usize,
    const KD_W: usize,
    const O_H: usize,
    const O_W: usize,
>(
    name: &str,
) {
    let f = fixture();
    let key = |field: &str| format!("{name}.{field}");
    assert_eq!(
        sizes(&f, &key("sizes")),
        [B, C_IN, H, W, C_OUT, K_H, K_W],
        "{name}: the fixture's sizes differ from the test's types"
    );
    assert_eq!(sizes(&f, &key("out_shape")), [B, C_OUT, O_H, O_W]);
    let stride = sizes(&f, &key("stride"));
    let padding = sizes(&f, &key("padding"));
    let dilation = sizes(&f, &key("dilation"));
    let dilation = [dilation[0], dilation[1]];
    let geometry = Conv2dGeometry {
        stride: [stride[0], stride[1]],
        padding: [padding[0], padding[1]],
    };

    let dev = typednet::test_device!();
    let mut layer = Conv2d::<C_IN, C_OUT, K_H, K_W, f64, Dev>::build(&dev);
    layer.weight = dev.tensor(f[&key("weight")].clone());
    layer.bias = dev.tensor(f[&key("bias")].clone());
    let x: Tensor<Rank4<B, C_IN, H, W>, f64, Dev> = dev.tensor(f[&key("x")].clone());
    let g: Tensor<Rank4<B, C_OUT, O_H, O_W>, f64, Dev> = dev.tensor(f[&key("g")].clone());

    let forward = |x: Tensor<Rank4<B, C_IN, H, W>, f64, Dev, OwnedTape<f64, Dev>>,
                   layer: &Conv2d<C_IN, C_OUT, K_H, K_W, f64, Dev>| {
        let y: Tensor<Rank4<B, C_OUT, O_H, O_W>, f64, Dev, _> =
            try_dilated_conv2d::<_, C_IN, H, W, C_OUT, K_H, K_W, KD_H, KD_W, O_H, O_W, _, _, _>(
                x, layer, geometry, dilation,
            )
            .unwrap();
        y
    };
    let y = forward(x.leaky_trace(), &layer);
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
        |x, layer: &Conv2d<C_IN, C_OUT, K_H, K_W, f64, Dev>| (forward(x, layer) * g.clone()).sum();
    check_gradient(&x, |x| loss(x, &layer)).assert_below(1e-6);
    check_parameter_gradient(
        &layer,
        |layer| &mut layer.weight,
        |layer, grads| loss(x.clone().traced(grads), layer),
    )
    .assert_below(1e-6);
}

#[test]
fn dilation_2_matches_pytorch() {
    // 3×3 taps 2 apart span 5×5: 7×7 → 3×3.
    check::<2, 2, 7, 7, 3, 3, 3, 5, 5, 3, 3>("dilation2");
}

#[test]
fn dilation_2_by_3_with_stride_and_padding_matches_pytorch() {
    // Dilation (2, 3) spans 5×7; stride 2, padding 1: 9×11 → 4×4.
    check::<2, 2, 9, 11, 3, 3, 3, 5, 7, 4, 4>("dilation2x3_stride2_pad1");
}

#[test]
fn dilation_2_with_same_padding_matches_pytorch() {
    // The 5×5 extent pads 2 each side: 6×5 kept.
    check::<2, 2, 6, 5, 3, 3, 3, 5, 5, 6, 5>("dilation2_same");
}

network! {
    pub struct Square: [2, 7, 7] -> conv(3, 3, dilation = 2);
    pub struct Strided: [2, 9, 11] -> conv(3, 3, stride = 2, pad = 1, dilation = (2, 3));
    pub struct Same: [2, 6, 5] -> conv(3, 3, pad = same, dilation = 2);
    pub struct Floor: [1, 10, 9] -> conv(4, (3, 2), stride = 3, dilation = (3, 4));
}

/// The macro's output shape is the op's, its forward pass is the op on its layer, and its
/// parameter count is a plain convolution's (k×k taps).
fn check_network<
    N,
    const C: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const O_H: usize,
    const O_W: usize,
    const K_H: usize,
    const K_W: usize,
    const KD_H: usize,
    const KD_W: usize,
>(
    net: &N,
    layer: &Conv2d<C, C_OUT, K_H, K_W, f64, Dev>,
    forward: impl Fn(
        &N,
        Tensor<Rank4<2, C, H, W>, f64, Dev>,
    ) -> Tensor<Rank4<2, C_OUT, O_H, O_W>, f64, Dev>,
    geometry: Conv2dGeometry,
    dilation: [usize; 2],
) where
    N: Network,
{
    assert_eq!(N::OUTPUT_SHAPE, &[C_OUT, O_H, O_W]);
    assert_eq!(N::PARAMETERS, C_OUT * C * K_H * K_W + C_OUT);
    let dev = typednet::test_device!();
    let x: Tensor<Rank4<2, C, H, W>, f64, Dev> = dev.sample_normal();
    let expected: Tensor<Rank4<2, C_OUT, O_H, O_W>, f64, Dev> =
        try_dilated_conv2d::<_, C, H, W, C_OUT, K_H, K_W, KD_H, KD_W, O_H, O_W, _, _, _>(
            x.clone(),
            layer,
            geometry,
            dilation,
        )
        .unwrap();
    assert_close!(forward(net, x).as_vec(), expected.as_vec(), 1e-12);
}

#[test]
fn the_macro_agrees_with_the_op() {
    let dev = typednet::test_device!();
    let geometry = |s: [usize; 2], p: [usize; 2]| Conv2dGeometry {
        stride: s,
        padding: p,
    };
    let net = Square::<f64, Dev>::new(&dev);
    check_network::<_, 2, 7, 7, 3, 3, 3, 3, 3, 5, 5>(
        &net,
        &net.conv1,
        |n, x| n.forward(x),
        geometry([1, 1], [0, 0]),
        [2, 2],
    );
    let net = Strided::<f64, Dev>::new(&dev);
    check_network::<_, 2, 9, 11, 3, 4, 4, 3, 3, 5, 7>(
        &net,
        &net.conv1,
        |n, x| n.forward(x),
        geometry([2, 2], [1, 1]),
        [2, 3],
    );
    let net = Same::<f64, Dev>::new(&dev);
    check_network::<_, 2, 6, 5, 3, 6, 5, 3, 3, 5, 5>(
        &net,
        &net.conv1,
        |n, x| n.forward(x),
        geometry([1, 1], [2, 2]),
        [2, 2],
    );
    // Extents 7×5 at stride 3 on 10×9, floor mode: ⌊3/3⌋ + 1 = 2, ⌊4/3⌋ + 1 = 2.
    let net = Floor::<f64, Dev>::new(&dev);
    check_network::<_, 1, 10, 9, 4, 2, 2, 3, 2, 7, 5>(
        &net,
        &net.conv1,
        |n, x| n.forward(x),
        geometry([3, 3], [0, 0]),
        [3, 4],
    );
}
