//! Losses and their metrics.
//!
//! | task | loss | function | PyTorch |
//! |---|---|---|---|
//! | binary, `t ∈ {0, 1}` or `{−1, +1}` | hinge `max(0, 1 − y·t)` | [`binary_hinge`] | `clamp(1 - y*t, min=0).mean()` |
//! | | squared hinge `max(0, 1 − y·t)²` | [`binary_squared_hinge`] | `clamp(1 - y*t, min=0).square().mean()` |
//! | | cross-entropy `−(t log σ(y) + (1 − t) log(1 − σ(y)))` | [`binary_cross_entropy_with_logits`] | `F.binary_cross_entropy_with_logits` |
//! | K classes, label `t` | hinge `Σ_{j≠t} max(0, 1 − (y_t − y_j))` | [`multiclass_hinge`] | `nn.MultiMarginLoss(p=1) · K` |
//! | | squared hinge `Σ_{j≠t} max(0, 1 − (y_t − y_j))²` | [`multiclass_squared_hinge`] | `nn.MultiMarginLoss(p=2) · K` |
//! | | cross-entropy `−log softmax(y)_t` | [`cross_entropy`] | `F.cross_entropy` |
//! | regression | L2 `(y − t)²` | [`l2_loss`] | `F.mse_loss` |
//! | | L1 `\|y − t\|` | [`l1_loss`] | `F.l1_loss` |
//! | | pseudo-Huber `δ²(√(1 + ((y − t)/δ)²) − 1)` | [`pseudo_huber_loss`] | none (`F.huber_loss` is the piecewise Huber) |
//!
//! Classification losses are means over the batch (binary: over all elements); regression
//! losses take a [`Reduction`]. Each loss is a `try_` function returning a [`LossError`] that
//! names the loss and what was wrong (label count or range, target shape or value, `δ`), and a
//! panicking twin. All are compositions of dfdx ops, so they run and differentiate on every
//! dfdx device; their values and gradients are checked against PyTorch (or, where PyTorch has
//! no such loss, against the formula in float64) in `tests/losses.rs`, with the script
//! `tools/reference_losses.py`.
//!
//! # Binary targets
//!
//! Cross-entropy is written with `t ∈ {0, 1}`, the hinge losses with `t ∈ {−1, +1}`. Every
//! binary loss accepts **either** convention: `+1` is the positive class in both, and `0` or
//! `−1` the negative one, so a target tensor means the same thing to all three losses. Any other
//! value is a [`LossError::BinaryTarget`], and a tensor holding both `0` and `−1` a
//! [`LossError::MixedBinaryConventions`] (one data set, two conventions: a bug). Targets are
//! hard labels; for soft probability targets use `dfdx::losses::binary_cross_entropy_with_logits_loss`.

use dfdx::shapes::{Const, Dim, Dtype, HasShape, Shape};
use dfdx::tensor::{Storage, Tensor};

mod binary;
mod error;
mod multiclass;
mod regression;

pub use binary::{
    binary_cross_entropy_with_logits, binary_hinge, binary_squared_hinge,
    try_binary_cross_entropy_with_logits, try_binary_hinge, try_binary_squared_hinge,
};
pub use error::LossError;
pub use multiclass::{
    cross_entropy, multiclass_hinge, multiclass_squared_hinge, try_cross_entropy,
    try_multiclass_hinge, try_multiclass_squared_hinge, ClassificationLoss,
};
pub use regression::{
    l1_loss, l2_loss, pseudo_huber_loss, try_l1_loss, try_l2_loss, try_pseudo_huber_loss, Reduction,
};

/// Fails, naming both shapes, when predictions and targets differ in a run-time dimension.
fn check_same_shape<S: Shape, E>(
    loss: &'static str,
    predictions: &S,
    targets: &S,
) -> Result<(), LossError<E>> {
    if predictions.concrete() != targets.concrete() {
        return Err(LossError::TargetShape {
            loss,
            predictions: predictions.concrete().into(),
            targets: targets.concrete().into(),
        });
    }
    Ok(())
}

/// The index of the largest value in each row, the first one on ties, as `torch.argmax(x, 1)`.
///
/// Unlike PyTorch, which returns the index of a NaN, a NaN is never the largest (a row of NaN
/// gives 0): one diverged logit should not count as a prediction.
pub fn argmax_rows<B: Dim, const K: usize, E: Dtype, D: Storage<E>, T>(
    logits: &Tensor<(B, Const<K>), E, D, T>,
) -> Vec<usize> {
    if K == 0 {
        return vec![0; logits.shape().0.size()];
    }
    logits
        .as_vec()
        .chunks(K)
        .map(|row| {
            let is_nan = |v: &E| v.partial_cmp(v).is_none();
            let mut best = 0;
            for (j, value) in row.iter().enumerate().skip(1) {
                // `>` is false against NaN, so a NaN is passed over, and replaced if it came first.
                if *value > row[best] || (is_nan(&row[best]) && !is_nan(value)) {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// The fraction of rows whose argmax is the label: `(argmax(logits, 1) == labels).mean()`.
///
/// NaN for an empty batch (no prediction to count, as in PyTorch).
///
/// # Panics
/// When `labels.len()` is not the batch size.
pub fn accuracy<B: Dim, const K: usize, E: Dtype, D: Storage<E>, T>(
    logits: &Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> f32 {
    let predicted = argmax_rows(logits);
    assert_eq!(
        predicted.len(),
        labels.len(),
        "accuracy: logits hold a batch of {} rows but {} labels were given",
        predicted.len(),
        labels.len()
    );
    correct_count(&predicted, labels) as f32 / labels.len() as f32
}

/// How many predictions equal their label.
pub fn correct_count(predicted: &[usize], labels: &[usize]) -> usize {
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count()
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::assert_close;
    use crate::testing::TestDevice;

    // Generated by tools/reference_cross_entropy.py with torch 2.15.0 (float64).
    /// `F.cross_entropy(logits, labels)` for the random case.
    const RANDOM_LOGITS: [[f64; 5]; 4] = [
        [-4.6208, -0.7465, -2.1216, 1.999, -0.0399],
        [0.4206, 0.3544, -1.661, 0.4774, 1.4671],
        [-2.6438, 2.6296, -1.374, 2.9761, -0.8968],
        [-1.782, 1.3497, 2.0937, 0.3086, -1.4998],
    ];
    const RANDOM_LABELS: [usize; 4] = [3, 0, 3, 1];
    const RANDOM_LOSS: f64 = 0.9510904446277615;
    const RANDOM_GRAD: [[f64; 5]; 4] = [
        [
            0.00027511253224834527,
            0.013246388419406068,
            0.0033488765894314244,
            -0.04372196501915088,
            0.026851587478065046,
        ],
        [
            -0.20810139005022432,
            0.039214738212911264,
            0.005226033884743083,
            0.04434733651651555,
            0.11931328143605445,
        ],
        [
            0.0005194941179816389,
            0.10134192638880143,
            0.0018494720297456844,
            -0.10669141977053812,
            0.0029805272340093568,
        ],
        [
            0.0030657863358935626,
            -0.1797539492330202,
            0.14782129674728722,
            0.024801498873532148,
            0.0040653672763072985,
        ],
    ];
    const RANDOM_ARGMAX: [usize; 4] = [3, 4, 3, 2];
    const RANDOM_ACCURACY: f64 = 0.5;

    /// `F.cross_entropy(logits, labels)` for logits far beyond `exp`'s range.
    const LARGE_LOGITS: [[f64; 3]; 3] = [
        [1000.0, -1000.0, 0.0],
        [-500.0, 500.0, 499.0],
        [88.5, 90.25, -3.0],
    ];
    const LARGE_LABELS: [usize; 3] = [0, 2, 0];
    const LARGE_LOSS: f64 = 1.0744952793187699;
    const LARGE_GRAD: [[f64; 3]; 3] = [
        [0.0, 0.0, 0.0],
        [0.0, 0.2436861928766683, -0.2436861928766683],
        [
            -0.28398426732277016,
            0.28398426732277016,
            9.022644443341428e-42,
        ],
    ];
    const LARGE_ARGMAX: [usize; 3] = [0, 1, 1];
    const LARGE_ACCURACY: f64 = 0.3333333333333333;

    fn flat<const B: usize, const K: usize>(rows: &[[f64; K]; B]) -> Vec<f64> {
        rows.iter().flatten().copied().collect()
    }

    /// Loss and gradient of `cross_entropy` in `E` on a run-time batch.
    fn loss_and_grad<E: Dtype + num_traits::Float, const B: usize, const K: usize>(
        logits: &[[f64; K]; B],
        labels: &[usize],
    ) -> Option<(f64, Vec<f64>)>
    where
        TestDevice: Device<E>,
    {
        let dev = crate::testing::test_device()?;
        let values = flat(logits)
            .into_iter()
            .map(|v| E::from(v).unwrap())
            .collect();
        let x = dev.tensor_from_vec(values, (B, Const::<K>));
        let loss = cross_entropy(x.leaky_trace(), labels);
        let value = loss.array().to_f64().unwrap();
        let grads = loss.backward();
        let grad = grads.get(&x).as_vec();
        Some((value, grad.iter().map(|g| g.to_f64().unwrap()).collect()))
    }

    #[test]
    fn matches_pytorch_in_f64() {
        let Some((loss, grad)) = loss_and_grad::<f64, 4, 5>(&RANDOM_LOGITS, &RANDOM_LABELS) else {
            return;
        };
        assert_close!([loss], [RANDOM_LOSS], 1e-12);
        assert_close!(grad, flat(&RANDOM_GRAD), 1e-12);
    }

    #[test]
    fn matches_pytorch_in_f32() {
        let Some((loss, grad)) = loss_and_grad::<f32, 4, 5>(&RANDOM_LOGITS, &RANDOM_LABELS) else {
            return;
        };
        assert_close!([loss], [RANDOM_LOSS], 1e-6);
        assert_close!(grad, flat(&RANDOM_GRAD), 1e-6);
    }

    #[test]
    fn is_stable_for_huge_logits() {
        let Some((loss, grad)) = loss_and_grad::<f64, 3, 3>(&LARGE_LOGITS, &LARGE_LABELS) else {
            return;
        };
        assert_close!([loss], [LARGE_LOSS], 1e-12);
        assert_close!(grad, flat(&LARGE_GRAD), 1e-12);
        let Some((loss, grad)) = loss_and_grad::<f32, 3, 3>(&LARGE_LOGITS, &LARGE_LABELS) else {
            return;
        };
        assert_close!([loss], [LARGE_LOSS], 1e-6);
        assert_close!(grad, flat(&LARGE_GRAD), 1e-6);
    }

    #[test]
    fn works_with_a_compile_time_batch() {
        let dev = crate::test_device!();
        let loss = cross_entropy(dev.tensor(RANDOM_LOGITS), &RANDOM_LABELS);
        assert_close!([loss.array()], [RANDOM_LOSS], 1e-12);
    }

    /// Central differences `(L(x + h·eⱼ) − L(x − h·eⱼ)) / 2h` against the tape's gradient.
    #[test]
    fn gradient_matches_finite_differences() {
        let dev = crate::test_device!();
        let base = flat(&RANDOM_LOGITS);
        let loss_at = |values: Vec<f64>| -> f64 {
            cross_entropy(dev.tensor_from_vec(values, (4, Const::<5>)), &RANDOM_LABELS).array()
        };
        let Some((_, analytic)) = loss_and_grad::<f64, 4, 5>(&RANDOM_LOGITS, &RANDOM_LABELS) else {
            return;
        };
        let h = 1e-5;
        let numeric: Vec<f64> = (0..base.len())
            .map(|j| {
                let mut plus = base.clone();
                plus[j] += h;
                let mut minus = base.clone();
                minus[j] -= h;
                (loss_at(plus) - loss_at(minus)) / (2.0 * h)
            })
            .collect();
        assert_close!(analytic, numeric, 1e-6);
    }

    #[test]
    fn argmax_and_accuracy_match_pytorch() {
        let dev = crate::test_device!();
        let random = dev.tensor(RANDOM_LOGITS);
        assert_eq!(argmax_rows(&random), RANDOM_ARGMAX);
        assert_close!([accuracy(&random, &RANDOM_LABELS)], [RANDOM_ACCURACY]);
        let large = dev.tensor(LARGE_LOGITS);
        assert_eq!(argmax_rows(&large), LARGE_ARGMAX);
        assert_close!([accuracy(&large, &LARGE_LABELS)], [LARGE_ACCURACY]);
    }

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        let dev = crate::test_device!();
        let x = dev.tensor([
            [1.0f32, 3.0, 3.0],
            [f32::NAN, 0.5, -1.0],
            [2.0, f32::NAN, 1.0],
        ]);
        assert_eq!(argmax_rows(&x), [1, 1, 0]);
    }

    #[test]
    fn wrong_labels_are_errors_that_name_both_sizes() {
        let dev = crate::test_device!();
        let logits = || dev.tensor_from_vec(flat(&RANDOM_LOGITS), (4, Const::<5>));
        let err = try_cross_entropy(logits(), &[0, 1, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cross_entropy: logits hold a batch of 4 rows but 3 labels were given"
        );
        let err = try_cross_entropy(logits(), &[0, 1, 5, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cross_entropy: label 5 at index 2 is out of range for logits with 5 classes"
        );
    }
}
