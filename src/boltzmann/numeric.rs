//! Small numeric helpers shared by the Boltzmann machines and the GAN trainer.

use crate::network::Element;
use dfdx::prelude::*;

/// ln(1 + eˣ) without overflow.
pub(crate) fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Elementwise softplus on the device: max(x, 0) + ln(1 + e^(−|x|)).
pub(crate) fn try_softplus<S: Shape, E: Element, D: Device<E>>(
    x: Tensor<S, E, D>,
) -> Result<Tensor<S, E, D>, D::Err> {
    let positive = x.clone().try_relu()?;
    let tail = x
        .try_abs()?
        .try_negate()?
        .try_exp()?
        .try_add(E::one())?
        .try_ln()?;
    positive.try_add(tail)
}

/// An `f64` constant in the element type (exact conversion for `f32` and `f64`).
pub(crate) fn cast<E: Element>(value: f64) -> E {
    <E as num_traits::NumCast>::from(value).unwrap_or_else(E::zero)
}

/// An element as `f64` (NaN if it has no `f64` value).
pub(crate) fn to_f64<E: Element>(value: E) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}
