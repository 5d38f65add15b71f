//! Binary classification losses of real-valued scores `y` (one per example, or any shape)
//! against binary targets `t`, each the mean over all elements.
//!
//! The target conventions they accept are in the [`crate::loss`] documentation.

use dfdx::shapes::{Dtype, HasShape, Rank0, Shape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, MeanTo, TryAdd, TryMul};

use super::multiclass::unwrap_loss;
use super::LossError;
use crate::network::Element;
use crate::ops::{try_pointwise_loss, PointwiseLoss};

/// Mean binary hinge loss `(1/N) Σ max(0, 1 − y·t)` with `t = ±1` (see [binary
/// targets](crate::loss#binary-targets) for the accepted targets).
///
/// **PyTorch** has no binary hinge loss (`F.hinge_embedding_loss` is a different one); the
/// equivalent is `torch.clamp(1 - y * t, min=0).mean()`. Where `y·t = 1` exactly the
/// subgradient 0 is taken, as PyTorch's `clamp` does.
///
/// # Shapes
/// `scores: S`, `targets: S` (any shape, the same) → a scalar.
///
/// # Panics
/// As [`try_binary_hinge`] fails.
///
/// ```
/// use typednet::loss::binary_hinge;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let scores = dev.tensor([2.0f32, 0.5, -0.5]);
/// // Targets 1, 1, 0 (0 meaning −1 here): margins 0, 0.5, 0.5.
/// let loss = binary_hinge(scores, dev.tensor([1.0, 1.0, 0.0]));
/// assert!((loss.array() - 1.0 / 3.0).abs() < 1e-6);
/// ```
pub fn binary_hinge<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    scores: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_binary_hinge(scores, targets))
}

/// Fallible [`binary_hinge`]: fails when the shapes differ (run-time dimensions), a target is
/// not binary, or the device fails.
pub fn try_binary_hinge<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    scores: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    let signs = binary_targets("binary_hinge", &scores, targets, Negative::MinusOne)?;
    hinge_margins(scores, signs)
        .and_then(|m| m.try_mean::<_, S::AllAxes>())
        .map_err(LossError::Device)
}

/// Mean binary squared hinge loss `(1/N) Σ max(0, 1 − y·t)²` with `t = ±1` (either
/// convention accepted, see [binary targets](crate::loss#binary-targets)).
///
/// **PyTorch**: no built-in; `torch.clamp(1 - y * t, min=0).square().mean()`.
///
/// # Shapes
/// `scores: S`, `targets: S` → a scalar.
///
/// # Panics
/// As [`try_binary_squared_hinge`] fails.
pub fn binary_squared_hinge<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    scores: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_binary_squared_hinge(scores, targets))
}

/// Fallible [`binary_squared_hinge`]: fails when the shapes differ, a target is not binary,
/// or the device fails.
pub fn try_binary_squared_hinge<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    scores: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    let signs = binary_targets("binary_squared_hinge", &scores, targets, Negative::MinusOne)?;
    hinge_margins(scores, signs)
        .and_then(|m| m.try_square())
        .and_then(|m| m.try_mean::<_, S::AllAxes>())
        .map_err(LossError::Device)
}

/// Mean binary cross-entropy from logits, `−(1/N) Σ (t log σ(y) + (1 − t) log(1 − σ(y)))`
/// with `t ∈ {0, 1}` (`−1` accepted for 0, see [binary targets](crate::loss#binary-targets)).
///
/// Computed without forming `σ(y)`, as `max(y, 0) − y·t + log(1 + e^{−|y|})`, whose
/// exponential never overflows: logits of ±1000 give exact losses and gradients `σ(y) − t`
/// (tested). **PyTorch**: `F.binary_cross_entropy_with_logits(y, t)`.
///
/// # Shapes
/// `logits: S`, `targets: S` → a scalar.
///
/// # Panics
/// As [`try_binary_cross_entropy_with_logits`] fails.
///
/// ```
/// use typednet::loss::binary_cross_entropy_with_logits;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let logits = dev.tensor([0.0f64, 1000.0]);
/// // log 2 for the undecided example, 0 for the confident right one.
/// let loss = binary_cross_entropy_with_logits(logits, dev.tensor([1.0, 1.0]));
/// assert!((loss.array() - std::f64::consts::LN_2 / 2.0).abs() < 1e-12);
/// ```
pub fn binary_cross_entropy_with_logits<
    S: Shape,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    logits: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_binary_cross_entropy_with_logits(logits, targets))
}

/// Fallible [`binary_cross_entropy_with_logits`]: fails when the shapes differ, a target is
/// not binary, or the device fails.
pub fn try_binary_cross_entropy_with_logits<
    S: Shape,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    logits: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    let loss = "binary_cross_entropy_with_logits";
    let probabilities = binary_targets(loss, &logits, targets, Negative::Zero)?;
    let scale = super::regression::scale_for(super::Reduction::Mean, logits.shape());
    // The stable form above, as one fused op on the CPU (`ops::pointwise_loss`) and dfdx's
    // `bce_with_logits` elsewhere.
    try_pointwise_loss(
        logits,
        probabilities,
        PointwiseLoss::BinaryCrossEntropyWithLogits,
        scale,
    )
    .map_err(LossError::Device)
}

/// `max(0, 1 − y·t)` element-wise.
fn hinge_margins<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    scores: Tensor<S, E, D, T>,
    signs: Tensor<S, E, D>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    scores
        .try_mul(signs)?
        .try_negate()?
        .try_add(E::ONE)?
        .try_relu()
}

/// The value a loss wants for the negative class.
#[derive(Clone, Copy, PartialEq)]
enum Negative {
    Zero,
    MinusOne,
}

/// Checks `targets` against the predictions' shape and the binary conventions, and returns
/// them with the negative class written as `negative`.
fn binary_targets<S: Shape, E: Dtype, D: Device<E>, T>(
    loss: &'static str,
    predictions: &Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    negative: Negative,
) -> Result<Tensor<S, E, D>, LossError<D::Err>> {
    super::check_same_shape(loss, predictions.shape(), targets.shape())?;
    let values = targets.as_vec();
    let (mut zero_at, mut minus_one_at) = (None, None);
    for (index, value) in values.iter().enumerate() {
        let value = value.to_f64().unwrap_or(f64::NAN);
        if value == 0.0 {
            zero_at.get_or_insert(index);
        } else if value == -1.0 {
            minus_one_at.get_or_insert(index);
        } else if value != 1.0 {
            return Err(LossError::BinaryTarget { loss, index, value });
        }
    }
    let found = match (zero_at, minus_one_at) {
        (Some(zero_at), Some(minus_one_at)) => {
            return Err(LossError::MixedBinaryConventions {
                loss,
                zero_at,
                minus_one_at,
            })
        }
        (Some(_), None) => Some(Negative::Zero),
        (None, Some(_)) => Some(Negative::MinusOne),
        (None, None) => None,
    };
    if found.is_none() || found == Some(negative) {
        return Ok(targets);
    }
    let negative_value = match negative {
        Negative::Zero => E::default(),
        Negative::MinusOne => E::from_f64(-1.0).expect("a signed float dtype"),
    };
    let converted = values
        .into_iter()
        .map(|v| if v == E::ONE { v } else { negative_value })
        .collect();
    targets
        .device()
        .try_tensor_from_vec(converted, *targets.shape())
        .map_err(LossError::Device)
}
