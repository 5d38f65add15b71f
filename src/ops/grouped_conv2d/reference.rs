//! The readable reference for [`super::try_grouped_conv2d`]: dfdx ops only, so the same code
//! runs on every dfdx device, and dfdx records its backward pass.
//!
//! A grouped convolution is the ordinary convolution with a block-diagonal filter bank: filter
//! `o` of group `g(o) = ⌊o / (C_OUT/G)⌋` weighs input channel `c` by `w[o, c − g(o)·C_IN/G]`
//! when `c` lies in its group's channel range, and by zero otherwise. So:
//! 1. **expand**: flatten the `[C_OUT, C_IN/G, K_H, K_W]` weight, append one zero, and `gather`
//!    it into the full `[C_OUT, C_IN, K_H, K_W]` bank with an index built on the host (the zero
//!    slot off the diagonal blocks); `gather`'s backward scatters the bank's gradient back onto
//!    the grouped weight, dropping what lands on the zero slot;
//! 2. **convolve** with that bank and the bias: the conv2d reference composition
//!    (`crate::ops::conv2d::reference`), unfold + matmul + bias.
//!
//! Known cost: the expanded bank multiplies zeros, `G` times the multiply-adds of the grouped
//! convolution (and the bank is `G` times the weight's size). Acceptable for a reference and for
//! the CUDA path, whose matmul is fast; the CPU kernel (`cpu_kernel.rs`) convolves each group on
//! its own instead.

use dfdx::shapes::{Axis, Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, GatherTo, ReshapeTo, TryConcatAlong};

use crate::layers::GroupedConv2d;
use crate::network::Element;
use crate::ops::conv2d::reference::try_conv2d_with_parameters;
use crate::ops::Conv2dGeometry;

/// Where entry `[o, c, u, v]` of the block-diagonal bank (`[C_OUT, C_IN, K_H, K_W]`, row-major)
/// reads the flattened grouped weight: `(o·C_IN/G + c − g(o)·C_IN/G)·K_H·K_W + u·K_W + v` inside
/// filter `o`'s group, else the zero slot `C_OUT·C_IN/G·K_H·K_W` just past the weight's end.
///
/// `cells` is `K_H·K_W`. The caller has checked that `groups` divides `c_out` and is at least 1.
pub(crate) fn block_diagonal_indices(
    c_in_per_group: usize,
    c_out: usize,
    groups: usize,
    cells: usize,
) -> Vec<usize> {
    let zero_slot = c_out * c_in_per_group * cells;
    let filters_per_group = c_out / groups;
    let c_in = c_in_per_group * groups;
    let mut indices = Vec::with_capacity(c_out * c_in * cells);
    for o in 0..c_out {
        let first = (o / filters_per_group) * c_in_per_group;
        for c in 0..c_in {
            match c.checked_sub(first).filter(|&k| k < c_in_per_group) {
                Some(k) => {
                    indices.extend((0..cells).map(|cell| (o * c_in_per_group + k) * cells + cell))
                }
                None => indices.extend(std::iter::repeat_n(zero_slot, cells)),
            }
        }
    }
    indices
}

/// [`super::try_grouped_conv2d`] as expand + conv2d reference. The caller has checked the
/// channel counts and that `O_H`, `O_W` follow from the geometry.
#[allow(clippy::type_complexity)]
pub(crate) fn try_grouped_conv2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const GROUPS: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    let dev = layer.weight.device().clone();
    let len = C_OUT * C_IN_PER_GROUP * K_H * K_W;
    // The weight joins the input's tape with an empty tape of its own; `gather` records its
    // gradient.
    let flat = layer.weight.retaped::<T>().try_reshape_like(&(len,))?;
    let zero = dev.try_zeros_like(&(1,))?;
    let source = (flat, zero).try_concat_along(Axis::<0>)?;
    let indices = block_diagonal_indices(C_IN_PER_GROUP, C_OUT, GROUPS, K_H * K_W);
    let indices = dev.try_tensor_from_vec(indices, (C_OUT * C_IN * K_H * K_W,))?;
    let bank: Tensor<(usize,), E, D, T> = source.try_gather(indices)?;
    let bank =
        bank.try_reshape_like(&(Const::<C_OUT>, Const::<C_IN>, Const::<K_H>, Const::<K_W>))?;
    try_conv2d_with_parameters(x, bank, layer.bias.retaped::<T>(), geometry)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups of one input channel and two filters each, 1×1 kernels: the bank is
    /// block-diagonal, with the zero slot (index 4) off the blocks.
    #[test]
    fn grouped_conv_bank_is_block_diagonal() {
        #[rustfmt::skip]
        assert_eq!(block_diagonal_indices(1, 4, 2, 1), [
            0, 4,
            1, 4,
            4, 2,
            4, 3,
        ]);
    }

    /// Depthwise with two cells per window: each filter reads only its own two weights.
    #[test]
    fn grouped_conv_depthwise_bank_reads_each_filter_once() {
        #[rustfmt::skip]
        assert_eq!(block_diagonal_indices(1, 2, 2, 2), [
            0, 1, 4, 4,
            4, 4, 2, 3,
        ]);
    }
}
