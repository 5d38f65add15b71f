//! Local response normalisation against PyTorch 2.15 (`tools/reference_lrn.py` writes
//! `tests/fixtures/lrn.txt`): forward values and input gradients through `network!` layers, and
//! a finite-difference check.

use std::collections::HashMap;

use dfdx::prelude::*;
use typednet::gradcheck::check_gradient;
use typednet::testing::TestDevice;
use typednet::{assert_close, network};

type Dev = TestDevice;

network! {
    pub struct Lrn5: [7, 3, 4] -> lrn(5, alpha = 0.5, beta = 0.75, k = 2.0);
    /// PyTorch's defaults: α = 1e-4, β = 0.75, k = 1.
    pub struct Lrn3: [7, 3, 4] -> lrn(3);
}

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lrn.txt"
    ))
}

fn check(
    name: &str,
    forward: impl Fn(
        Tensor<Rank4<2, 7, 3, 4>, f64, Dev, OwnedTape<f64, Dev>>,
    ) -> Tensor<Rank4<2, 7, 3, 4>, f64, Dev, OwnedTape<f64, Dev>>,
) {
    let f = fixture();
    let dev = typednet::test_device!();
    let x: Tensor<Rank4<2, 7, 3, 4>, f64, Dev> = dev.tensor(f["x"].clone());
    let g: Tensor<Rank4<2, 7, 3, 4>, f64, Dev> = dev.tensor(f[&format!("{name}.g")].clone());
    let y = forward(x.leaky_trace());
    assert_close!(y.as_vec(), f[&format!("{name}.y")], 1e-12);
    let grads = (y * g.clone()).sum().backward();
    assert_close!(grads.get(&x).as_vec(), f[&format!("{name}.grad_x")], 1e-10);
    check_gradient(&x, |x| (forward(x) * g.clone()).sum()).assert_below(1e-6);
}

#[test]
fn lrn_over_five_channels_matches_pytorch() {
    let net = Lrn5::<f64, Dev>::new(&typednet::test_device!());
    check("n5", |x| net.forward(x));
}

#[test]
fn lrn_with_pytorchs_defaults_matches_pytorch() {
    let net = Lrn3::<f64, Dev>::new(&typednet::test_device!());
    check("n3", |x| net.forward(x));
}
