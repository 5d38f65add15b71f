//! Padded pooling, as ResNet's stem and Inception's pool branch use it, against PyTorch 2.15
//! (`tools/reference_padded_pool.py` writes `tests/fixtures/padded_pool.txt`): forward values
//! and input gradients, through networks declared with `network!`.

use std::collections::HashMap;

use dfdx::prelude::*;
use typednet::testing::TestDevice;
use typednet::{assert_close, network};

type Dev = TestDevice;

network! {
    /// ResNet's stem pooling: 7×6 → 4×3.
    pub struct MaxStride2: [3, 7, 6] -> maxpool(3, stride = 2, pad = 1);
    /// Inception's pool branch keeps the size.
    pub struct MaxStride1: [3, 7, 6] -> maxpool(3, stride = 1, pad = 1);
    pub struct AvgStride1: [3, 7, 6] -> avgpool(3, stride = 1, pad = 1);
}

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/padded_pool.txt"
    ))
}

/// Runs `forward` on the fixture's input and checks its values and input gradient.
fn check<const O_H: usize, const O_W: usize>(
    name: &str,
    forward: impl Fn(
        Tensor<Rank4<2, 3, 7, 6>, f64, Dev, OwnedTape<f64, Dev>>,
    ) -> Tensor<Rank4<2, 3, O_H, O_W>, f64, Dev, OwnedTape<f64, Dev>>,
) {
    let f = fixture();
    let dev = typednet::test_device!();
    let x: Tensor<Rank4<2, 3, 7, 6>, f64, Dev> = dev.tensor(f["x"].clone());
    let g: Tensor<Rank4<2, 3, O_H, O_W>, f64, Dev> = dev.tensor(f[&format!("{name}.g")].clone());
    let y = forward(x.leaky_trace());
    assert_close!(y.as_vec(), f[&format!("{name}.y")], 1e-12);
    let grads = (y * g).sum().backward();
    assert_close!(grads.get(&x).as_vec(), f[&format!("{name}.grad_x")], 1e-12);
}

#[test]
fn max_pooling_with_padding_and_stride_two_matches_pytorch() {
    assert_eq!(MaxStride2::OUTPUT_SHAPE, &[3, 4, 3]);
    let dev = typednet::test_device!();
    let net = MaxStride2::<f64, Dev>::new(&dev);
    check::<4, 3>("max_s2", |x| net.forward(x));
}

#[test]
fn max_pooling_that_keeps_the_size_matches_pytorch() {
    assert_eq!(MaxStride1::OUTPUT_SHAPE, &[3, 7, 6]);
    let dev = typednet::test_device!();
    let net = MaxStride1::<f64, Dev>::new(&dev);
    check::<7, 6>("max_s1", |x| net.forward(x));
}

#[test]
fn average_pooling_counts_the_padding_like_pytorch() {
    let dev = typednet::test_device!();
    let net = AvgStride1::<f64, Dev>::new(&dev);
    check::<7, 6>("avg_s1", |x| net.forward(x));
}
