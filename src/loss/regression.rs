//! Regression losses of predictions `y` against targets `t` of the same shape: L2, L1 and
//! pseudo-Huber, each with a mean or a sum over all elements.

use dfdx::shapes::{Dtype, HasShape, Rank0, Shape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, MeanTo, SumTo, TryAdd, TryDiv, TryMul, TrySub};

use super::multiclass::unwrap_loss;
use super::LossError;
use crate::network::Element;
use crate::ops::{try_pointwise_loss, PointwiseLoss};

/// How a loss turns its per-element values into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean over all elements (PyTorch's `reduction="mean"`, its default).
    #[default]
    Mean,
    /// The sum over all elements (`reduction="sum"`).
    Sum,
}

/// L2 (squared error) loss `Σ (y − t)²`, or its mean.
///
/// **PyTorch**: `F.mse_loss(y, t, reduction=…)`.
///
/// # Shapes
/// `predictions: S`, `targets: S` → a scalar.
///
/// # Panics
/// As [`try_l2_loss`] fails.
///
/// ```
/// use typednet::loss::{l2_loss, Reduction};
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let y = dev.tensor([1.0f32, 2.0]);
/// assert_eq!(l2_loss(y, dev.tensor([0.0, 4.0]), Reduction::Sum).array(), 5.0);
/// ```
pub fn l2_loss<S: Shape, E: Element, D: crate::Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    reduction: Reduction,
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_l2_loss(predictions, targets, reduction))
}

/// Fallible [`l2_loss`]: fails when the shapes differ (run-time dimensions) or the device
/// fails.
pub fn try_l2_loss<S: Shape, E: Element, D: crate::Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    reduction: Reduction,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    super::check_same_shape("l2_loss", predictions.shape(), targets.shape())?;
    let scale = scale_for(reduction, predictions.shape());
    // One fused op on the CPU (`ops::pointwise_loss`); dfdx's `(y − t)²` and sum elsewhere.
    try_pointwise_loss(predictions, targets, PointwiseLoss::SquaredError, scale)
        .map_err(LossError::Device)
}

/// L1 (absolute error) loss `Σ |y − t|`, or its mean.
///
/// **PyTorch**: `F.l1_loss(y, t, reduction=…)`. At `y = t` the subgradient 0 is taken, as in
/// PyTorch.
///
/// # Shapes
/// `predictions: S`, `targets: S` → a scalar.
///
/// # Panics
/// As [`try_l1_loss`] fails.
pub fn l1_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    reduction: Reduction,
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_l1_loss(predictions, targets, reduction))
}

/// Fallible [`l1_loss`]: fails when the shapes differ or the device fails.
pub fn try_l1_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    reduction: Reduction,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    let errors = residuals("l1_loss", predictions, targets)?;
    reduce(errors.try_abs().map_err(LossError::Device)?, reduction)
}

/// Pseudo-Huber loss `Σ δ²(√(1 + ((y − t)/δ)²) − 1)`, or its mean: quadratic (`(y − t)²/2`)
/// for errors well below `δ`, linear (`δ|y − t|`) well above, and smooth everywhere.
///
/// **PyTorch** has no pseudo-Huber loss. `F.huber_loss(y, t, delta=δ)` is the *piecewise*
/// Huber loss (exactly quadratic below `δ`, exactly linear above, with a kink in its second
/// derivative); the two agree only approximately. The tests check this one against the formula
/// evaluated in float64 by `tools/reference_losses.py`.
///
/// It is computed as `δ² r² / (√(1 + r²) + 1)` with `r = (y − t)/δ`, which equals the formula
/// but does not lose every digit to cancellation when `r` is small (`√(1 + r²) − 1` is 0 in
/// `f32` for `|r| < 3·10⁻⁴`).
///
/// # Shapes
/// `predictions: S`, `targets: S` → a scalar.
///
/// # Panics
/// As [`try_pseudo_huber_loss`] fails.
///
/// ```
/// use typednet::loss::{pseudo_huber_loss, Reduction};
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let y = dev.tensor([3.0f64, 4.0]);
/// let loss = pseudo_huber_loss(y, dev.tensor([0.0, 0.0]), 1.0, Reduction::Sum);
/// assert!((loss.array() - ((10f64.sqrt() - 1.0) + (17f64.sqrt() - 1.0))).abs() < 1e-12);
/// ```
pub fn pseudo_huber_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    delta: f64,
    reduction: Reduction,
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_pseudo_huber_loss(
        predictions,
        targets,
        delta,
        reduction,
    ))
}

/// Fallible [`pseudo_huber_loss`]: fails when `δ` is not positive and finite (it would give
/// NaN or a meaningless sign), when the shapes differ, or when the device fails.
pub fn try_pseudo_huber_loss<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    delta: f64,
    reduction: Reduction,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    let loss = "pseudo_huber_loss";
    if !(delta > 0.0 && delta.is_finite()) {
        return Err(LossError::NonPositiveDelta { loss, delta });
    }
    let errors = residuals(loss, predictions, targets)?;
    let per_element = pseudo_huber_elements(errors, delta).map_err(LossError::Device)?;
    reduce(per_element, reduction)
}

/// `δ² r² / (√(1 + r²) + 1)` element-wise, `r = errors/δ`.
fn pseudo_huber_elements<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    errors: Tensor<S, E, D, T>,
    delta: f64,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    let r_squared = errors.try_mul(to_dtype::<E>(1.0 / delta))?.try_square()?;
    // r² is used twice: the copy carries its own empty tape, merged back by the division.
    let denominator = r_squared
        .retaped::<T>()
        .try_add(E::ONE)?
        .try_sqrt()?
        .try_add(E::ONE)?;
    r_squared
        .try_mul(to_dtype::<E>(delta * delta))?
        .try_div(denominator)
}

/// `y − t`, after checking that the shapes agree.
fn residuals<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    loss: &'static str,
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Result<Tensor<S, E, D, T>, LossError<D::Err>> {
    super::check_same_shape(loss, predictions.shape(), targets.shape())?;
    predictions.try_sub(targets).map_err(LossError::Device)
}

fn reduce<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    per_element: Tensor<S, E, D, T>,
    reduction: Reduction,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    match reduction {
        Reduction::Mean => per_element.try_mean::<_, S::AllAxes>(),
        Reduction::Sum => per_element.try_sum::<_, S::AllAxes>(),
    }
    .map_err(LossError::Device)
}

/// The factor that turns a sum over the elements of `shape` into the requested reduction.
pub(super) fn scale_for<S: Shape, E: Element>(reduction: Reduction, shape: &S) -> E {
    match reduction {
        Reduction::Mean => to_dtype(1.0 / shape.num_elements().max(1) as f64),
        Reduction::Sum => E::one(),
    }
}

/// `value` in the loss's dtype; every float dtype holds any `f64` (rounded).
fn to_dtype<E: Dtype>(value: f64) -> E {
    E::from_f64(value).unwrap_or_default()
}
