//! The sparse and contractive autoencoders' penalties, as loss terms on the gradient tape.

use dfdx::nn::Module;
use dfdx::shapes::{Axis, Const, Dim, HasShape, Rank0};
use dfdx::tensor::{OwnedTape, Tape, Tensor};
use dfdx::tensor_ops::{BroadcastTo, SumTo, TryAdd, TryMul, TrySub};
use rand::Rng;

use super::corruption::standard_normal;
use super::{check_setting, AutoencoderError};
use crate::network::Element;

/// The sparse autoencoder's penalty `λ · mean over the batch of Σ_j |z_j|` on a batch of codes
/// `z` (`[B, K]`), as a scalar on a gradient tape of its own: add it to the reconstruction
/// loss, and the code (so the encoder) gets the gradient `λ sign(z_j) / B`.
///
/// The L1 norm drives most code units to exactly zero for any one input, so each input is
/// described by a few active units. PyTorch: `lam * z.abs().sum(dim=1).mean()`.
///
/// Fails when `λ` is negative or not finite.
pub fn try_sparsity_penalty<B: Dim, const K: usize, E: Element, D: crate::Device<E>, T>(
    code: &Tensor<(B, Const<K>), E, D, T>,
    strength: f64,
) -> Result<Tensor<Rank0, E, D, OwnedTape<E, D>>, AutoencoderError<D::Err>>
where
    T: Tape<E, D>,
{
    check_setting("the sparsity strength λ", strength, 0.0, f64::MAX, "[0, ∞)")?;
    let batch = code.shape().0.size();
    let scale = strength / batch.max(1) as f64;
    let code = code.retaped::<OwnedTape<E, D>>();
    code.try_abs()
        .and_then(|a| a.try_sum::<Rank0, _>())
        .and_then(|s| s.try_mul(to_element::<E>(scale)))
        .map_err(AutoencoderError::Device)
}

/// The activation of a one-layer encoder `h = φ(W x + b)`, for [`try_contractive_penalty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderActivation {
    /// `φ = σ`, whose slope is `σ′ = h (1 − h)`.
    Sigmoid,
    /// `φ = tanh`, whose slope is `tanh′ = 1 − h²`.
    Tanh,
}

/// The contractive autoencoder's penalty `λ · mean over the batch of ‖∂h/∂x‖²_F`, exact and in
/// closed form for a one-layer encoder `h = φ(W x + b)` with `φ` sigmoid or tanh.
///
/// The Jacobian is `J = diag(φ′) W`, so `‖J‖²_F = Σ_j φ′_j² Σ_i W_ji²` (Rifai et al., 2011):
/// `code` is `h` (`[B, K]`, from the encoder's forward pass), `weight` is `W` (`[K, N]`,
/// PyTorch's layout, the encoder's `weight`). The result is a scalar on a gradient tape of its
/// own, with gradients for `h` (so for the encoder's parameters through it) and for `W`: add it
/// to the reconstruction loss. Penalising the Jacobian makes the code insensitive to small
/// moves of the input, except along the directions the data varies in.
///
/// PyTorch: `lam * ((h * (1 - h)) ** 2 @ (W ** 2).sum(dim=1)).mean()` for a sigmoid encoder.
///
/// Fails when `λ` is negative or not finite.
pub fn try_contractive_penalty<B, const N: usize, const K: usize, E, D, T>(
    code: &Tensor<(B, Const<K>), E, D, T>,
    weight: &Tensor<(Const<K>, Const<N>), E, D>,
    activation: EncoderActivation,
    strength: f64,
) -> Result<Tensor<Rank0, E, D, OwnedTape<E, D>>, AutoencoderError<D::Err>>
where
    B: Dim,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
{
    check_setting(
        "the contraction strength λ",
        strength,
        0.0,
        f64::MAX,
        "[0, ∞)",
    )?;
    let batch = *code.shape();
    let scale = strength / batch.0.size().max(1) as f64;
    let h = || code.retaped::<OwnedTape<E, D>>();
    let penalty = || -> Result<_, D::Err> {
        // φ′ from the activation's value: σ′ = h − h², tanh′ = 1 − h².
        let slope = match activation {
            EncoderActivation::Sigmoid => h().try_sub(h().try_square()?)?,
            EncoderActivation::Tanh => h().try_square()?.try_negate()?.try_add(E::one())?,
        };
        // Σ_i W_ji², one per code unit, broadcast over the batch.
        let row_norms = weight
            .retaped::<OwnedTape<E, D>>()
            .try_square()?
            .try_sum::<(Const<K>,), Axis<1>>()?
            .try_broadcast_like::<_, Axis<0>>(&batch)?;
        slope
            .try_square()?
            .try_mul(row_norms)?
            .try_sum::<Rank0, _>()?
            .try_mul(to_element::<E>(scale))
    };
    penalty().map_err(AutoencoderError::Device)
}

/// The contractive penalty `λ · mean over the batch of ‖∂f(x)/∂x‖²_F` for any encoder `f`, by
/// a stochastic estimate: for `v ~ N(0, I)`, `E‖J v‖² = ‖J‖²_F`, and `J v` is a central
/// difference `(f(x + εv) − f(x − εv)) / 2ε`. Each example of `x` is probed along `samples`
/// random directions; the estimate is unbiased up to the difference's `O(ε²)` error, with a
/// relative standard deviation of at most `√(2 / samples)`.
///
/// Exact Jacobians of deep encoders need one backward pass per code unit, and dfdx cannot
/// differentiate a backward pass; two forward passes through the encoder on a tape can, so the
/// estimate trains the encoder's parameters by ordinary backpropagation. (Rifai et al.'s CAE+H
/// uses the same stochastic finite differences for its higher-order term.) For a one-layer
/// sigmoid or tanh encoder use the exact [`try_contractive_penalty`].
///
/// `encoder` runs on batches `[samples · B, N]` (the input repeated along each direction); the
/// directions come from `rng`. In `f32` use `step` around `1e-2` for inputs of order 1 (round-off
/// grows as `ε` shrinks); in `f64`, `1e-4`. The result is a scalar on a gradient tape of its
/// own: add it to the reconstruction loss.
///
/// Fails when `samples` is 0, `step` is not positive, `λ` is negative or either is not finite.
pub fn try_contractive_penalty_estimate<M, B, const N: usize, const K: usize, E, D, R>(
    encoder: &M,
    x: &Tensor<(B, Const<N>), E, D>,
    samples: usize,
    step: f64,
    strength: f64,
    rng: &mut R,
) -> Result<Tensor<Rank0, E, D, OwnedTape<E, D>>, AutoencoderError<D::Err>>
where
    M: Module<
        Tensor<(usize, Const<N>), E, D, OwnedTape<E, D>>,
        Output = Tensor<(usize, Const<K>), E, D, OwnedTape<E, D>>,
        Error = D::Err,
    >,
    B: Dim,
    E: Element,
    D: crate::Device<E>,
    R: Rng,
{
    check_setting(
        "the number of samples",
        samples as f64,
        1.0,
        f64::MAX,
        "[1, ∞)",
    )?;
    check_setting(
        "the finite-difference step ε",
        step,
        f64::MIN_POSITIVE,
        f64::MAX,
        "(0, ∞)",
    )?;
    check_setting(
        "the contraction strength λ",
        strength,
        0.0,
        f64::MAX,
        "[0, ∞)",
    )?;
    let rows = x.shape().0.size();
    let values = x.as_vec();
    let total = samples * rows;
    let mut forward_point = Vec::with_capacity(total * N);
    let mut backward_point = Vec::with_capacity(total * N);
    for _ in 0..samples {
        for &value in &values {
            let nudge = to_element::<E>(step * standard_normal(rng));
            forward_point.push(value + nudge);
            backward_point.push(value - nudge);
        }
    }
    let scale = strength / (total as f64 * 4.0 * step * step);
    let device = x.device();
    let penalty = || -> Result<_, D::Err> {
        let ahead = device.try_tensor_from_vec(forward_point, (total, Const::<N>))?;
        let behind = device.try_tensor_from_vec(backward_point, (total, Const::<N>))?;
        let ahead = encoder.try_forward(ahead.retaped::<OwnedTape<E, D>>())?;
        let behind = encoder.try_forward(behind.retaped::<OwnedTape<E, D>>())?;
        ahead
            .try_sub(behind)?
            .try_square()?
            .try_sum::<Rank0, _>()?
            .try_mul(to_element::<E>(scale))
    };
    penalty().map_err(AutoencoderError::Device)
}

fn to_element<E: Element>(value: f64) -> E {
    E::from_f64(value).unwrap_or_else(E::zero)
}
