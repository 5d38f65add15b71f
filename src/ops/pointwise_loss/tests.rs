//! The `f32` CPU kernel against the reference (dfdx's ops, themselves checked against PyTorch
//! in `tests/losses.rs`), and against finite differences of its own.

use dfdx::prelude::*;

use super::{reference, try_pointwise_loss, PointwiseLoss};

const LOSSES: [PointwiseLoss; 2] = [
    PointwiseLoss::SquaredError,
    PointwiseLoss::BinaryCrossEntropyWithLogits,
];

/// Logits over [−12, 12] (both tails of σ) and targets in [0, 1], without a pattern a transposed
/// index could hide behind.
fn inputs(len: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let y = (0..len).map(|_| 24.0 * next() - 12.0).collect();
    let t = (0..len).map(|_| next()).collect();
    (y, t)
}

/// The loss and `∂L/∂y`, by the kernel or the reference.
fn run(
    dev: &Cpu,
    y: &Tensor<(usize,), f32, Cpu>,
    t: &Tensor<(usize,), f32, Cpu>,
    loss: PointwiseLoss,
    scale: f32,
    fast: bool,
) -> (f32, Vec<f32>) {
    let traced = y.clone().leaky_trace();
    let value = if fast {
        try_pointwise_loss(traced, t.clone(), loss, scale).unwrap()
    } else {
        reference(traced, t.clone(), loss, scale).unwrap()
    };
    // Scaled by 3 on the way back, so that the incoming gradient is not 1.
    let value_array = value.array();
    let grads = (value * 3.0).backward();
    let _ = dev;
    (value_array, grads.get(y).as_vec())
}

#[test]
fn matches_dfdx_on_short_and_long_inputs() {
    let dev = Cpu::default();
    // 37: one ragged block; 70,001: split between threads, ragged at every level.
    for len in [1, 37, 70_001] {
        let (y, t) = inputs(len, len as u64);
        let (y, t) = (
            dev.tensor_from_vec(y, (len,)),
            dev.tensor_from_vec(t, (len,)),
        );
        for loss in LOSSES {
            for scale in [1.0, 1.0 / len as f32] {
                let (fast, fast_grad) = run(&dev, &y, &t, loss, scale, true);
                let (slow, slow_grad) = run(&dev, &y, &t, loss, scale, false);
                // The value against the sum in f64; dfdx's, summed in one f32 accumulator,
                // strays by up to about 1e-5 relative on the long input, the kernel's (f32 lanes
                // over blocks of 512, blocks in f64) much less.
                let exact = f64::from(scale) * exact_sum(loss, &y.as_vec(), &t.as_vec());
                for (who, value, tolerance) in [("kernel", fast, 2e-6), ("reference", slow, 3e-5)] {
                    assert!(
                        (f64::from(value) - exact).abs() <= tolerance * (1.0 + exact.abs()),
                        "{loss:?} n = {len} s = {scale}: {who} {value}, exactly {exact}"
                    );
                }
                for (i, (f, r)) in fast_grad.iter().zip(&slow_grad).enumerate() {
                    assert!(
                        (f - r).abs() <= 1e-6 * (1.0 + r.abs()),
                        "{loss:?} n = {len}: ∂y[{i}] kernel {f}, reference {r}"
                    );
                }
                assert!(fast_grad.iter().any(|&g| g != 0.0));
            }
        }
    }
}

fn exact_sum(loss: PointwiseLoss, y: &[f32], t: &[f32]) -> f64 {
    y.iter()
        .zip(t)
        .map(|(&y, &t)| {
            let (y, t) = (f64::from(y), f64::from(t));
            match loss {
                PointwiseLoss::SquaredError => (y - t) * (y - t),
                PointwiseLoss::BinaryCrossEntropyWithLogits => {
                    y.max(0.0) - y * t + (-y.abs()).exp().ln_1p()
                }
            }
        })
        .sum()
}

#[test]
fn reads_broadcast_targets_in_their_logical_order() {
    let dev = Cpu::default();
    let (y, t) = inputs(12, 3);
    let y: Tensor<Rank2<3, 4>, f32, Cpu> = dev.tensor_from_vec(y, (Const, Const));
    // One row of targets, broadcast over the three rows.
    let row: Tensor<Rank1<4>, f32, Cpu> = dev.tensor_from_vec(t[..4].to_vec(), (Const,));
    let broadcast: Tensor<Rank2<3, 4>, f32, Cpu> = row.clone().broadcast();
    let spelled_out = dev.tensor_from_vec(
        [&t[..4], &t[..4], &t[..4]].concat(),
        (Const::<3>, Const::<4>),
    );
    for loss in LOSSES {
        let a = try_pointwise_loss(y.clone(), broadcast.clone(), loss, 1.0).unwrap();
        let b = try_pointwise_loss(y.clone(), spelled_out.clone(), loss, 1.0).unwrap();
        assert_eq!(a.array(), b.array(), "{loss:?}");
    }
}

#[test]
fn gradients_match_finite_differences() {
    let dev = Cpu::default();
    let (y, t) = inputs(9, 11);
    for loss in LOSSES {
        let value = |y: &[f32]| -> f64 {
            let y = dev.tensor_from_vec(y.to_vec(), (y.len(),));
            let t = dev.tensor_from_vec(t.clone(), (t.len(),));
            f64::from(try_pointwise_loss(y, t, loss, 0.5).unwrap().array())
        };
        let traced = dev.tensor_from_vec(y.clone(), (y.len(),));
        let t_tensor = dev.tensor_from_vec(t.clone(), (t.len(),));
        let grads = try_pointwise_loss(traced.clone().leaky_trace(), t_tensor, loss, 0.5)
            .unwrap()
            .backward();
        let analytic = grads.get(&traced).as_vec();
        let step = 1e-2f32;
        for i in 0..y.len() {
            let (mut plus, mut minus) = (y.clone(), y.clone());
            plus[i] += step;
            minus[i] -= step;
            let numerical = (value(&plus) - value(&minus)) / (2.0 * f64::from(step));
            // Exact for the quadratic but for f32 rounding of values near 100 over 2·step.
            assert!(
                (f64::from(analytic[i]) - numerical).abs() < 1e-3 * (1.0 + numerical.abs()),
                "{loss:?} ∂y[{i}]: backward {}, finite difference {numerical}",
                analytic[i]
            );
        }
    }
}

/// Far in σ's tails the stable form neither overflows nor loses the small term.
#[test]
fn binary_cross_entropy_is_stable_at_extreme_logits() {
    for (y, t) in [
        (100.0f32, 1.0f32),
        (-100.0, 0.0),
        (100.0, 0.0),
        (-100.0, 1.0),
        (30.0, 1.0),
    ] {
        let (term, derivative) = super::cpu_kernel::bce_with_logits(y, t);
        let (y64, t64) = (f64::from(y), f64::from(t));
        let exact = y64.max(0.0) - y64 * t64 + (-y64.abs()).exp().ln_1p();
        let sigma = 1.0 / (1.0 + (-y64).exp());
        assert!(
            (f64::from(term) - exact).abs() <= 1e-6 * (1.0 + exact),
            "ℓ({y}, {t}) = {term}, exactly {exact}"
        );
        assert!((f64::from(derivative) - (sigma - t64)).abs() < 1e-6);
    }
}
