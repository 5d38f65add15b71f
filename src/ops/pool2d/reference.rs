//! The readable reference for [`super::try_max_pool2d`] and [`super::try_avg_pool2d`]: dfdx ops
//! only, so the same code runs on every dfdx device and dfdx records the backward pass. A future
//! fast kernel is tested against this one.
//!
//! Pooling reuses the convolution's unfold ([`crate::ops::conv2d::reference`]): `gather` lays
//! every window out as one row of `[B·C·O_H·O_W, K_H·K_W]`, already in output order, and `max`
//! or `mean` reduces the rows. Windows never reach outside the input (no padding), so the unfold
//! needs no zero slot.
//!
//! Known cost: as for the convolution, the index tensor is built and uploaded on every call.

use dfdx::shapes::{Axis, Const, Dim, HasShape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, MaxTo, MeanTo, ReshapeTo};

use super::Pool2dGeometry;
use crate::network::Element;
use crate::ops::conv2d::reference::{try_unfold, UnfoldLayout, Windows};

/// The reduction applied to every window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// The largest value of each window (max pooling).
    Max,
    /// The mean of each window (average pooling).
    Mean,
}

/// Pools every `window` of `x` with `reduction`. The caller has checked that `O_H`, `O_W` follow
/// from the geometry.
///
/// For [`Reduction::Max`] the gradient goes to every element equal to its window's maximum:
/// dfdx's `max` passes the whole gradient to each tied element, where PyTorch passes it to the
/// first one only. Without ties (any input with distinct values) the two agree.
#[allow(clippy::type_complexity)]
pub(crate) fn try_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    geometry: Pool2dGeometry,
    reduction: Reduction,
) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    let batch = x.shape().0;
    let windows = Windows {
        batch: batch.size(),
        channels: C,
        input: [H, W],
        kernel: geometry.window,
        stride: geometry.stride,
        padding: [0, 0],
        output: [O_H, O_W],
    };
    let x = x.try_reshape_like(&(batch.size() * C * H * W,))?;
    // [B·C·O_H·O_W, K_H·K_W]
    let patches = try_unfold(x, &windows, UnfoldLayout::ChannelMajor)?;
    let pooled: Tensor<(usize,), E, D, T> = match reduction {
        Reduction::Max => patches.try_max::<_, Axis<1>>()?,
        Reduction::Mean => patches.try_mean::<_, Axis<1>>()?,
    };
    pooled.try_reshape_like(&(batch, Const::<C>, Const::<O_H>, Const::<O_W>))
}
