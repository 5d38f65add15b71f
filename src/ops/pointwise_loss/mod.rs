//! A loss that is a sum of one term per element, scaled: `L = s · Σ_i ℓ(y_i, t_i)`, as one op.
//! What [`crate::loss::l2_loss`], [`crate::loss::binary_cross_entropy_with_logits`] and the VAE's
//! Bernoulli negative log-likelihood lower to.
//!
//! | [`PointwiseLoss`] | `ℓ(y, t)` | `∂ℓ/∂y` | PyTorch (`reduction="sum"`) |
//! |---|---|---|---|
//! | `SquaredError` | `(y − t)²` | `2(y − t)` | `F.mse_loss` |
//! | `BinaryCrossEntropyWithLogits` | `max(y, 0) − y·t + log(1 + e^{−\|y\|})` | `σ(y) − t` | `F.binary_cross_entropy_with_logits` |
//!
//! Shapes: predictions `y` and targets `t` of the same shape `S` (the caller checks run-time
//! dimensions), a scalar out; the mean is the scale `s = 1/n`. Only `y` gets a gradient.
//!
//! - On [`Cpu`](dfdx::tensor::Cpu) in `f32`, `cpu_kernel.rs`: one pass computes the sum and the
//!   derivative of every term (the polynomial `exp` and `log` of `ops/activations.rs`, split
//!   between the threads for long inputs); the backward pass is `∂y += g·s·ℓ′`. dfdx's ops take
//!   three to four passes each way with an allocation per pass, and its `exp` and `ln_1p` are
//!   the C library's, one element at a time.
//! - Elsewhere (CUDA, `f64`) the reference, dfdx's ops: `(y − t)²` or `bce_with_logits`, summed
//!   and scaled. The tests hold the kernel to it.

mod cpu_kernel;

use dfdx::shapes::{Rank0, Shape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{SumTo, TryMul, TrySub};

use crate::network::Element;

/// The per-element term of [`try_pointwise_loss`]; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointwiseLoss {
    /// `(y − t)²`.
    SquaredError,
    /// Binary cross-entropy of the probability `σ(y)` against `t ∈ [0, 1]`, from the logit `y`,
    /// in the stable form.
    BinaryCrossEntropyWithLogits,
}

/// `scale · Σ_i ℓ(predictions_i, targets_i)`; see the [module docs](self).
///
/// ```
/// use dfdx::prelude::*;
/// use typednet::ops::{try_pointwise_loss, PointwiseLoss};
///
/// let dev = Cpu::default();
/// let y = dev.tensor([1.0f32, 2.0, 4.0]);
/// let t = dev.tensor([0.0f32, 2.0, 2.0]);
/// // The mean squared error: (1 + 0 + 4) / 3.
/// let loss = try_pointwise_loss(y, t, PointwiseLoss::SquaredError, 1.0 / 3.0).unwrap();
/// assert!((loss.array() - 5.0 / 3.0).abs() < 1e-6);
/// ```
pub fn try_pointwise_loss<S: Shape, E: Element, D: PointwiseLossKernel<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    loss: PointwiseLoss,
    scale: E,
) -> Result<Tensor<Rank0, E, D, T>, D::Err> {
    D::try_pointwise_loss_kernel(predictions, targets, loss, scale)
}

/// The device-specific implementation of [`try_pointwise_loss`].
pub trait PointwiseLossKernel<E: Element>: dfdx::tensor_ops::Device<E> {
    /// Computes the loss on this device, recording its backward pass on the tape.
    fn try_pointwise_loss_kernel<S: Shape, T: Tape<E, Self>>(
        predictions: Tensor<S, E, Self, T>,
        targets: Tensor<S, E, Self>,
        loss: PointwiseLoss,
        scale: E,
    ) -> Result<Tensor<Rank0, E, Self, T>, Self::Err>;
}

/// dfdx's ops: what every kernel is tested against, and the CUDA path.
fn reference<S: Shape, E: Element, D: dfdx::tensor_ops::Device<E>, T: Tape<E, D>>(
    predictions: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
    loss: PointwiseLoss,
    scale: E,
) -> Result<Tensor<Rank0, E, D, T>, D::Err> {
    let per_element = match loss {
        PointwiseLoss::SquaredError => predictions.try_sub(targets)?.try_square()?,
        PointwiseLoss::BinaryCrossEntropyWithLogits => predictions.try_bce_with_logits(targets)?,
    };
    per_element.try_sum::<Rank0, _>()?.try_mul(scale)
}

/// On the CPU, the fused kernel for `f32`; dfdx's ops for other types.
impl<E: Element> PointwiseLossKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: dfdx::tensor_ops::Device<E>,
{
    fn try_pointwise_loss_kernel<S: Shape, T: Tape<E, Self>>(
        predictions: Tensor<S, E, Self, T>,
        targets: Tensor<S, E, Self>,
        loss: PointwiseLoss,
        scale: E,
    ) -> Result<Tensor<Rank0, E, Self, T>, Self::Err> {
        if crate::ops::linear::cpu_kernel::is_f32::<E>() {
            cpu_kernel::try_pointwise_loss(predictions, targets, loss, scale)
        } else {
            reference(predictions, targets, loss, scale)
        }
    }
}

/// On CUDA, dfdx's ops, whose kernels run there.
#[cfg(feature = "cuda")]
impl<E: Element> PointwiseLossKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: dfdx::tensor_ops::Device<E>,
{
    fn try_pointwise_loss_kernel<S: Shape, T: Tape<E, Self>>(
        predictions: Tensor<S, E, Self, T>,
        targets: Tensor<S, E, Self>,
        loss: PointwiseLoss,
        scale: E,
    ) -> Result<Tensor<Rank0, E, Self, T>, Self::Err> {
        reference(predictions, targets, loss, scale)
    }
}

#[cfg(test)]
mod tests;
