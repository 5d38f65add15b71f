//! Branches in `network!`: residual blocks (identity and projection shortcuts), concatenation
//! of parallel branches, and blocks declared once and used at several sizes.
//!
//! Forward values are compared with the same layers applied by hand through `typednet::ops`
//! (each op is itself checked against PyTorch in its own tests); gradients through every
//! branch are checked by finite differences.

use dfdx::prelude::*;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::ops::{try_concat_channels, try_conv2d, Conv2dGeometry};
use typednet::testing::TestDevice;
use typednet::{assert_close, network};

type Dev = TestDevice;

network! {
    /// An identity shortcut around two dense layers.
    pub struct DenseResidual: [4] -> residual(linear(4) -> relu -> linear(4)) -> linear(2);

    /// A downsampling residual block with a projection shortcut.
    pub struct Projection: [2, 6, 6]
        -> residual(
            conv(4, 3, stride = 2, pad = 1) -> relu -> conv(4, 3, pad = 1),
            shortcut = conv(4, 1, stride = 2)
        )
        -> flatten -> linear(3);

    /// Two parallel branches joined along channels (Inception's pattern).
    pub struct TwoBranches: [3, 5, 5]
        -> concat(conv(4, 1), conv(2, 3, pad = 1) -> relu)
        -> flatten -> linear(2);

    /// Features of two dense branches joined.
    pub struct VectorBranches: [3] -> concat(linear(2), linear(5) -> tanh) -> linear(1);

    block Plain(c) = residual(conv(c, 3, pad = 1) -> relu -> conv(c, 3, pad = 1)) -> relu;
    block Down(c, s) = residual(
        conv(c, 3, stride = s, pad = 1) -> relu -> conv(c, 3, pad = 1),
        shortcut = conv(c, 1, stride = s)
    ) -> relu;

    /// A tiny ResNet: the same two blocks at two widths.
    pub struct TinyResNet: [1, 12, 12]
        -> conv(4, 3, pad = 1) -> relu
        -> Plain(4) -> Down(8, 2) -> Plain(8)
        -> avgpool(6) -> flatten -> linear(10);
}

fn conv<const S: usize, const P: usize>() -> Conv2dGeometry {
    Conv2dGeometry {
        stride: [S, S],
        padding: [P, P],
    }
}

#[test]
fn identity_shortcut_adds_the_input_back() {
    let dev = typednet::test_device!(0);
    let net = DenseResidual::<f64, Dev>::new(&dev);
    let x: Tensor<Rank2<3, 4>, f64, Dev> = dev.sample_normal();
    let body = net.linear2.forward(net.linear1.forward(x.clone()).relu());
    let expected = net.linear3.forward(body + x.clone());
    assert_close!(net.forward(x).as_vec(), expected.as_vec(), 1e-12);
}

#[test]
fn projection_shortcut_is_added_to_the_body() {
    let dev = typednet::test_device!(1);
    let net = Projection::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<2, 2, 6, 6>, f64, Dev> = dev.sample_normal();
    let hidden: Tensor<Rank4<2, 4, 3, 3>, f64, Dev> =
        try_conv2d(x.clone(), &net.conv1, conv::<2, 1>()).unwrap();
    let body: Tensor<Rank4<2, 4, 3, 3>, f64, Dev> =
        try_conv2d(hidden.relu(), &net.conv2, conv::<1, 1>()).unwrap();
    let shortcut: Tensor<Rank4<2, 4, 3, 3>, f64, Dev> =
        try_conv2d(x.clone(), &net.conv3, conv::<2, 0>()).unwrap();
    let sum = (body + shortcut).reshape::<Rank2<2, 36>>();
    let expected = net.linear1.forward(sum);
    assert_close!(net.forward(x).as_vec(), expected.as_vec(), 1e-12);
    assert_eq!(
        <Projection>::PARAMETERS,
        (4 * 2 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 2 + 4) + (36 * 3 + 3)
    );
}

#[test]
fn concat_joins_branches_along_channels_in_order() {
    let dev = typednet::test_device!(2);
    let net = TwoBranches::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<2, 3, 5, 5>, f64, Dev> = dev.sample_normal();
    let first: Tensor<Rank4<2, 4, 5, 5>, f64, Dev> =
        try_conv2d(x.clone(), &net.conv1, conv::<1, 0>()).unwrap();
    let second: Tensor<Rank4<2, 2, 5, 5>, f64, Dev> =
        try_conv2d(x.clone(), &net.conv2, conv::<1, 1>()).unwrap();
    let joined: Tensor<Rank4<2, 6, 5, 5>, f64, Dev> =
        try_concat_channels(first.clone(), second.relu()).unwrap();
    // Channels 0..4 are the first branch's, in order.
    assert_eq!(joined.as_vec()[..2 * 5 * 5], first.as_vec()[..2 * 5 * 5]);
    let expected = net.linear1.forward(joined.reshape::<Rank2<2, 150>>());
    assert_close!(net.forward(x).as_vec(), expected.as_vec(), 1e-12);
    assert_eq!(TwoBranches::OUTPUT_SHAPE, &[2]);
    let concat = TwoBranches::LAYERS
        .iter()
        .find(|l| l.name == "concat1")
        .unwrap();
    assert_eq!(concat.output_shape, &[6, 5, 5]);
}

#[test]
fn concat_joins_vectors_along_features() {
    let dev = typednet::test_device!(3);
    let net = VectorBranches::<f64, Dev>::new(&dev);
    let x: Tensor<Rank2<4, 3>, f64, Dev> = dev.sample_normal();
    let first = net.linear1.forward(x.clone()).as_vec();
    let second = net.linear2.forward(x.clone()).tanh().as_vec();
    let joined: Vec<f64> = (0..4)
        .flat_map(|row| {
            let a = first[row * 2..row * 2 + 2].to_vec();
            let b = second[row * 5..row * 5 + 5].to_vec();
            a.into_iter().chain(b)
        })
        .collect();
    let joined: Tensor<Rank2<4, 7>, f64, Dev> = dev.tensor(joined);
    let expected = net.linear3.forward(joined);
    assert_close!(net.forward(x).as_vec(), expected.as_vec(), 1e-12);
}

#[test]
fn gradients_flow_through_both_sides_of_a_residual() {
    let dev = typednet::test_device!(4);
    let net = Projection::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<2, 2, 6, 6>, f64, Dev> = dev.sample_normal();
    let g: Tensor<Rank2<2, 3>, f64, Dev> = dev.sample_normal();
    check_gradient(&x, |x| (net.forward(x) * g.clone()).sum()).assert_below(1e-6);
    let loss = |net: &Projection<f64, Dev>, grads| (net.forward(x.trace(grads)) * g.clone()).sum();
    // The body's first conv, and the shortcut's projection.
    check_parameter_gradient(&net, |n| &mut n.conv1.weight, loss).assert_below(1e-6);
    check_parameter_gradient(&net, |n| &mut n.conv3.weight, loss).assert_below(1e-6);
    check_parameter_gradient(&net, |n| &mut n.conv3.bias, loss).assert_below(1e-6);

    let net = DenseResidual::<f64, Dev>::new(&dev);
    let x: Tensor<Rank2<3, 4>, f64, Dev> = dev.sample_normal();
    let g: Tensor<Rank2<3, 2>, f64, Dev> = dev.sample_normal();
    check_gradient(&x, |x| (net.forward(x) * g.clone()).sum()).assert_below(1e-6);
}

#[test]
fn gradients_flow_through_every_concatenated_branch() {
    let dev = typednet::test_device!(5);
    let net = TwoBranches::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<1, 3, 5, 5>, f64, Dev> = dev.sample_normal();
    let g: Tensor<Rank2<1, 2>, f64, Dev> = dev.sample_normal();
    check_gradient(&x, |x| (net.forward(x) * g.clone()).sum()).assert_below(1e-6);
    let loss = |net: &TwoBranches<f64, Dev>, grads| (net.forward(x.trace(grads)) * g.clone()).sum();
    check_parameter_gradient(&net, |n| &mut n.conv1.weight, loss).assert_below(1e-6);
    check_parameter_gradient(&net, |n| &mut n.conv2.weight, loss).assert_below(1e-6);

    let net = VectorBranches::<f64, Dev>::new(&dev);
    let x: Tensor<Rank2<2, 3>, f64, Dev> = dev.sample_normal();
    check_gradient(&x, |x| net.forward(x).sum()).assert_below(1e-6);
}

#[test]
fn a_block_used_twice_gets_its_own_layers_each_time() {
    let names: Vec<&str> = TinyResNet::LAYERS.iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        [
            "conv1",
            "relu1",
            "plain1_conv1",
            "plain1_relu1",
            "plain1_conv2",
            "plain1_add1",
            "plain1_relu2",
            "down1_conv1",
            "down1_relu1",
            "down1_conv2",
            "down1_conv3",
            "down1_add1",
            "down1_relu2",
            "plain2_conv1",
            "plain2_relu1",
            "plain2_conv2",
            "plain2_add1",
            "plain2_relu2",
            "avgpool1",
            "flatten1",
            "linear1",
        ]
    );
    let shape = |name: &str| {
        TinyResNet::LAYERS
            .iter()
            .find(|l| l.name == name)
            .unwrap()
            .output_shape
    };
    assert_eq!(shape("plain1_add1"), &[4, 12, 12]);
    assert_eq!(shape("down1_add1"), &[8, 6, 6]);
    assert_eq!(shape("plain2_add1"), &[8, 6, 6]);
    let conv = |c_in: usize, c_out: usize, k: usize| c_out * c_in * k * k + c_out;
    let expected = conv(1, 4, 3)
        + 2 * conv(4, 4, 3)
        + conv(4, 8, 3)
        + conv(8, 8, 3)
        + conv(4, 8, 1)
        + 2 * conv(8, 8, 3)
        + (8 * 10 + 10);
    assert_eq!(<TinyResNet>::PARAMETERS, expected);

    // It runs, with a tape, and every parameter gets a gradient.
    let dev = typednet::test_device!(6);
    let net = TinyResNet::<f32, Dev>::new(&dev);
    let x: Tensor<Rank4<2, 1, 12, 12>, f32, Dev> = dev.sample_normal();
    let grads = net.forward(x.leaky_trace()).sum().backward();
    let gradients = [
        grads.get(&net.plain1_conv1.weight).as_vec(),
        grads.get(&net.down1_conv3.weight).as_vec(),
        grads.get(&net.plain2_conv2.weight).as_vec(),
    ];
    for gradient in gradients {
        assert!(gradient.iter().any(|&v| v != 0.0));
    }
}
