//! The variational autoencoder's pieces: the reparameterised sample of a Gaussian code, its
//! closed-form KL divergence from the prior, and the Bernoulli decoder's negative log-likelihood.
//!
//! A VAE (Kingma & Welling, 2014) has a Gaussian encoder `q(z|x) = N(μ(x), diag σ²(x))`, a prior
//! `p(z) = N(0, I)` and a decoder `p(x|z)`, here Bernoulli per pixel with logits from the
//! decoder network. It maximises the evidence lower bound
//!
//! `ELBO(x) = E_{z~q(z|x)} log p(x|z) − KL(q(z|x) ‖ p(z)) ≤ log p(x)`,
//!
//! estimated with one sample `z = μ + σ ⊙ ε`, `ε ~ N(0, I)` (the reparameterisation, which
//! lets the gradient reach `μ` and `σ`). Train on `−ELBO` =
//! [`try_bernoulli_nll_with_logits`] + the KL of [`try_gaussian_sample`]; both are in nats per
//! example (summed over pixels and code units, averaged over the batch), as the VAE paper and
//! PyTorch's VAE example report them.

use dfdx::shapes::{Const, Dim, HasShape, Rank0, Shape};
use dfdx::tensor::{PutTape, SplitTape, Tape, Tensor};
use dfdx::tensor_ops::{SumTo, TryAdd, TryMul, TrySub};
use rand::Rng;

use super::corruption::standard_normal;
use crate::network::Element;

/// A sample of the code and its KL divergence from the prior, for a batch.
pub struct GaussianSample<B: Dim, const Z: usize, E: Element, D: crate::Device<E>, T> {
    /// `z = μ + exp(½ log σ²) ⊙ ε`, `[B, Z]`.
    pub code: Tensor<(B, Const<Z>), E, D, T>,
    /// `KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)`, averaged over the batch
    /// (nats per example).
    pub kl: Tensor<Rank0, E, D, T>,
}

/// Draws `z ~ N(μ, diag σ²)` by reparameterisation, with `ε ~ N(0, I)` from `rng` (on the host,
/// so that a seed gives the same draw on every device), and computes the KL term.
///
/// `mean` is `μ` and `log_variance` is `log σ²` (`[B, Z]` each), the encoder's two outputs —
/// e.g. a network's main output and a `head`. The returned code and KL share their inputs'
/// gradient tapes: add the KL to the decoder's loss and a single `backward` reaches the encoder
/// through both. PyTorch: `z = mu + torch.exp(0.5 * logvar) * eps` and
/// `kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1).mean()`.
pub fn try_gaussian_sample<B, const Z: usize, E, D, T, R>(
    mean: Tensor<(B, Const<Z>), E, D, T>,
    log_variance: Tensor<(B, Const<Z>), E, D, T>,
    rng: &mut R,
) -> Result<GaussianSample<B, Z, E, D, T>, D::Err>
where
    B: Dim,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
    R: Rng,
{
    let shape = *mean.shape();
    let noise: Vec<E> = (0..shape.num_elements())
        .map(|_| E::from_f64(standard_normal(rng)).unwrap_or_else(E::zero))
        .collect();
    let noise = mean.device().try_tensor_from_vec(noise, shape)?;
    try_gaussian_sample_with_noise(mean, log_variance, noise)
}

/// [`try_gaussian_sample`] with the standard-normal draw `ε` given (`[B, Z]`).
pub fn try_gaussian_sample_with_noise<B, const Z: usize, E, D, T>(
    mean: Tensor<(B, Const<Z>), E, D, T>,
    log_variance: Tensor<(B, Const<Z>), E, D, T>,
    noise: Tensor<(B, Const<Z>), E, D>,
) -> Result<GaussianSample<B, Z, E, D, T>, D::Err>
where
    B: Dim,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
{
    let batch = mean.shape().0.size();
    let half = E::from_f64(0.5).unwrap_or_else(E::zero);
    // μ and log σ² are each used more than once: the incoming tapes ride on the code's path,
    // the other uses get empty tapes with the same tensor ids, and adding the KL to the loss
    // merges them back.
    let (mean, mean_tape) = mean.split_tape();
    let (log_variance, log_variance_tape) = log_variance.split_tape();
    let code = log_variance
        .clone()
        .put_tape(mean_tape.merge(log_variance_tape))
        .try_mul(half)?
        .try_exp()?
        .try_mul(noise)?
        .try_add(mean.clone().put_tape(T::default()))?;
    let per_unit = mean
        .put_tape(T::default())
        .try_square()?
        .try_add(log_variance.clone().put_tape(T::default()).try_exp()?)?
        .try_sub(log_variance.put_tape(T::default()))?
        .try_sub(E::one())?;
    let scale = E::from_f64(0.5 / batch.max(1) as f64).unwrap_or_else(E::zero);
    let kl = per_unit.try_sum::<Rank0, _>()?.try_mul(scale)?;
    Ok(GaussianSample { code, kl })
}

/// The Bernoulli decoder's negative log-likelihood `−log p(x|z) = Σ_i BCE(y_i, x_i)` from the
/// decoder's logits `y`, summed over the elements of each example and averaged over the batch
/// (the first axis): nats per example. Targets `x` are probabilities in `[0, 1]` (grey pixels
/// are allowed, as in PyTorch's VAE example). Computed stably from the logits.
///
/// PyTorch: `F.binary_cross_entropy_with_logits(y, x, reduction="sum") / B`.
pub fn try_bernoulli_nll_with_logits<S: Shape, E: Element, D: crate::Device<E>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    targets: Tensor<S, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, D::Err> {
    let batch = logits.shape().concrete().into_iter().next().unwrap_or(1);
    let scale = E::from_f64(1.0 / batch.max(1) as f64).unwrap_or_else(E::zero);
    // One fused op on the CPU; dfdx's `bce_with_logits`, summed and scaled, elsewhere.
    crate::ops::try_pointwise_loss(
        logits,
        targets,
        crate::ops::PointwiseLoss::BinaryCrossEntropyWithLogits,
        scale,
    )
}
