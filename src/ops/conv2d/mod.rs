//! 2-d convolution (placeholder signatures; the implementation is being written).
use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;

use crate::layers::Conv2d;
use crate::network::Element;

/// Stride and zero padding of a convolution, `[height, width]` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

#[allow(clippy::type_complexity)]
pub fn try_conv2d<
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
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    let _ = (x, layer, geometry);
    unimplemented!("conv2d")
}

#[allow(clippy::type_complexity)]
pub fn conv2d<
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
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T> {
    try_conv2d(x, layer, geometry).unwrap()
}
