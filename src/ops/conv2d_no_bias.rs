//! [`Conv2dNoBias`]: the convolution of [`super::try_conv2d`] with a zero bias.

use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};

use super::{try_conv2d, Conv2dGeometry};
use crate::layers::{Conv2d, Conv2dNoBias};
use crate::network::Element;

/// 2-d convolution without a bias: [`try_conv2d`] with the filters of `layer` and a zero bias.
///
/// The filters are shared, not copied (a dfdx tensor clone shares its data and id), so their
/// gradient lands on `layer.weight`; the zero bias is a constant off the tape's leaves, whose
/// gradient dfdx drops after the backward pass.
///
/// PyTorch: `F.conv2d(x, weight, None, stride, padding)`.
#[allow(clippy::type_complexity)]
pub fn try_conv2d_no_bias<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2dNoBias<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    let with_zero_bias = Conv2d {
        weight: layer.weight.clone(),
        bias: layer.weight.device().try_zeros()?,
    };
    try_conv2d(x, &with_zero_bias, geometry)
}
