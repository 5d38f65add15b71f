//! Activation functions as plain functions, for code outside [`network!`](crate::network!)
//! (where they are the layers `relu`, `sigmoid`, `tanh`, `softmax`).
//!
//! Each is one dfdx op, element-wise except `softmax`, with or without a gradient tape; the
//! `try_` twin returns the device's error. The values and gradients are checked against
//! PyTorch in `tests/losses.rs` (script `tools/reference_losses.py`).
//!
//! | function | formula | derivative | PyTorch |
//! |---|---|---|---|
//! | [`relu`] | `max(0, x)` | 1 for `x > 0`, else 0 | `torch.relu` / `nn.ReLU` |
//! | [`sigmoid`] | `1 / (1 + e^{−x})` | `σ(x)(1 − σ(x))` ≤ 1/4 | `torch.sigmoid` / `nn.Sigmoid` |
//! | [`tanh`] | `(eˣ − e^{−x}) / (eˣ + e^{−x})` | `1 − tanh²(x)` ≤ 1 | `torch.tanh` / `nn.Tanh` |
//! | [`softmax`] | `e^{xᵢ} / Σⱼ e^{xⱼ}` over the last axis | `sᵢ(δᵢⱼ − sⱼ)` | `torch.softmax(x, dim=-1)` |
//!
//! The sigmoid's derivative is at most 1/4, so a gradient passing back through `n` sigmoid
//! layers shrinks by up to `4⁻ⁿ` (times the weights): the vanishing gradient that ReLU, whose
//! derivative is 1 where it is active, avoids. `examples/vanishing_gradients.rs` measures it.

use dfdx::shapes::{Dtype, Shape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;

/// `max(0, x)` element-wise; the derivative at 0 is taken as 0, as in PyTorch.
///
/// ```
/// use typednet::activation::relu;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let y: Tensor<Rank1<3>, f32, Cpu> = relu(dev.tensor([-1.0, 0.0, 2.0]));
/// assert_eq!(y.array(), [0.0, 0.0, 2.0]);
/// ```
pub fn relu<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.relu()
}

/// Fallible [`relu`].
pub fn try_relu<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    x.try_relu()
}

/// The logistic function `1 / (1 + e^{−x})` element-wise, in `(0, 1)`.
pub fn sigmoid<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.sigmoid()
}

/// Fallible [`sigmoid`].
pub fn try_sigmoid<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    x.try_sigmoid()
}

/// The hyperbolic tangent element-wise, in `(−1, 1)`; `tanh(x) = 2σ(2x) − 1`.
pub fn tanh<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.tanh()
}

/// Fallible [`tanh`].
pub fn try_tanh<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    x.try_tanh()
}

/// `e^{xᵢ} / Σⱼ e^{xⱼ}` over the last axis (the classes of a `[B, K]` batch), computed after
/// subtracting the maximum so that large inputs do not overflow.
///
/// ```
/// use typednet::activation::softmax;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let p: Tensor<Rank2<1, 2>, f64, Cpu> = softmax(dev.tensor([[1000.0, 1000.0]]));
/// assert_eq!(p.array(), [[0.5, 0.5]]);
/// ```
pub fn softmax<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.softmax::<S::LastAxis>()
}

/// Fallible [`softmax`].
pub fn try_softmax<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    x.try_softmax::<S::LastAxis>()
}
