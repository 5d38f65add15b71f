//! The readable reference for [`super::try_conv2d`]: a composition of dfdx ops only, so the same
//! code runs on every dfdx device (`Cpu`, `Cuda`) and dfdx records its backward pass. A future
//! fast kernel is tested against this one.
//!
//! Convolution is lowered to im2col and one matrix product:
//! 1. **unfold**: flatten the batch, append one zero (the value every padding cell reads), and
//!    `gather` with an index tensor built on the host, so that row `(b, i, j)` of the result holds
//!    the `C_IN·K_H·K_W` input values under the window at output position `(i, j)` of example `b`;
//! 2. **matmul** those `[B·O_H·O_W, C_IN·K_H·K_W]` patches with the filters, seen as
//!    `[C_IN·K_H·K_W, C_OUT]`;
//! 3. move the channels in front of the positions and add the bias, broadcast.
//!
//! dfdx's `gather` scatters the gradient back (summing where windows overlap, dropping what
//! landed on the zero slot), and its matmul and broadcast give the filter and bias gradients.
//! Pooling ([`crate::ops::pool2d`]) reuses the same unfold.
//!
//! Known cost: the index tensor (one `usize` per unfolded value, `B·O_H·O_W·C_IN·K_H·K_W` of
//! them) is built and uploaded on every call, and the unfolded patches are materialised.

use dfdx::shapes::{Axes2, Axes3, Axis, Const, Dim, Dtype, HasShape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{
    BroadcastTo, Device, GatherTo, PermuteTo, ReshapeTo, TryConcatAlong, TryMatMul,
};

use super::Conv2dGeometry;
use crate::layers::Conv2d;
use crate::network::Element;

/// Where a sliding window visits the input, in run-time sizes: what an unfold needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    pub batch: usize,
    pub channels: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zeros added on each side, `[height, width]`.
    pub padding: [usize; 2],
    /// Number of window positions `[down, across]`; the caller has checked it against the formula.
    pub output: [usize; 2],
}

/// The order of the unfolded values: which rows the caller wants to reduce or multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnfoldLayout {
    /// `[B·O_H·O_W, C·K_H·K_W]`: one row per output position holding every channel's window,
    /// ready to multiply with the filters (convolution).
    PositionMajor,
    /// `[B·C·O_H·O_W, K_H·K_W]`: one row per channel and output position, ready to reduce over
    /// the window (pooling); the rows are already in `[B, C, O_H, O_W]` order.
    ChannelMajor,
}

impl Windows {
    fn input_len(&self) -> usize {
        self.batch * self.channels * self.input[0] * self.input[1]
    }

    fn window_len(&self, layout: UnfoldLayout) -> usize {
        let cells = self.kernel[0] * self.kernel[1];
        match layout {
            UnfoldLayout::PositionMajor => self.channels * cells,
            UnfoldLayout::ChannelMajor => cells,
        }
    }

    fn rows(&self, layout: UnfoldLayout) -> usize {
        let positions = self.batch * self.output[0] * self.output[1];
        match layout {
            UnfoldLayout::PositionMajor => positions,
            UnfoldLayout::ChannelMajor => positions * self.channels,
        }
    }

    /// Where window cell `(u, v)` at output position `(i, j)` reads channel `c` of example `b`:
    /// an index into the flattened input, or the zero slot just past its end for a padding cell.
    fn source(&self, b: usize, c: usize, [i, j]: [usize; 2], [u, v]: [usize; 2]) -> usize {
        let [height, width] = self.input;
        // Coordinates in the unpadded input; `None` when the cell lies in the padding.
        let row = (i * self.stride[0] + u)
            .checked_sub(self.padding[0])
            .filter(|&r| r < height);
        let col = (j * self.stride[1] + v)
            .checked_sub(self.padding[1])
            .filter(|&c| c < width);
        match (row, col) {
            (Some(row), Some(col)) => ((b * self.channels + c) * height + row) * width + col,
            _ => self.input_len(),
        }
    }

    /// The gather indices of an unfold, row-major in `layout`.
    fn indices(&self, layout: UnfoldLayout) -> Vec<usize> {
        let mut indices = Vec::with_capacity(self.rows(layout) * self.window_len(layout));
        let positions =
            || (0..self.output[0]).flat_map(move |i| (0..self.output[1]).map(move |j| [i, j]));
        let cells =
            || (0..self.kernel[0]).flat_map(move |u| (0..self.kernel[1]).map(move |v| [u, v]));
        for b in 0..self.batch {
            match layout {
                UnfoldLayout::PositionMajor => {
                    for position in positions() {
                        for c in 0..self.channels {
                            indices.extend(cells().map(|cell| self.source(b, c, position, cell)));
                        }
                    }
                }
                UnfoldLayout::ChannelMajor => {
                    for c in 0..self.channels {
                        for position in positions() {
                            indices.extend(cells().map(|cell| self.source(b, c, position, cell)));
                        }
                    }
                }
            }
        }
        indices
    }
}

/// A matrix whose sizes are known only at run time.
pub(crate) type Matrix<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// im2col with dfdx ops: `x`, flattened row-major from `[B, C, H, W]`, becomes the matrix of
/// window contents described by `layout`. Padding cells read zero.
pub(crate) fn try_unfold<E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<(usize,), E, D, T>,
    windows: &Windows,
    layout: UnfoldLayout,
) -> Result<Matrix<E, D, T>, D::Err> {
    assert_eq!(x.shape().0, windows.input_len(), "unfold: input length");
    let dev = x.device().clone();
    let source = if windows.padding == [0, 0] {
        x
    } else {
        // The zero slot, at index `input_len`, that every padding cell gathers.
        let zero = dev.try_zeros_like(&(1,))?;
        (x, zero).try_concat_along(Axis::<0>)?
    };
    let indices = windows.indices(layout);
    let len = indices.len();
    let indices = dev.try_tensor_from_vec(indices, (len,))?;
    let patches: Tensor<(usize,), E, D, T> = source.try_gather(indices)?;
    patches.try_reshape_like(&(windows.rows(layout), windows.window_len(layout)))
}

/// [`super::try_conv2d`] as unfold + matmul + bias. The caller has checked that `O_H`, `O_W`
/// follow from the geometry.
#[allow(clippy::type_complexity)]
pub(crate) fn try_conv2d<
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
    // The parameters join the input's tape with empty tapes of their own: their gradients are
    // recorded by the ops that read them (matmul, broadcast add), as before.
    try_conv2d_with_parameters(
        x,
        layer.weight.retaped::<T>(),
        layer.bias.retaped::<T>(),
        geometry,
    )
}

/// [`try_conv2d`] with the filters (`[C_OUT, C_IN, K_H, K_W]`) and the bias given as tensors
/// that may carry a tape: the result of other ops, such as the block-diagonal filters that
/// `crate::ops::grouped_conv2d`'s reference expands its weights to. The caller has checked that
/// `O_H`, `O_W` follow from the geometry.
#[allow(clippy::type_complexity)]
pub(crate) fn try_conv2d_with_parameters<
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
    weight: Tensor<(Const<C_OUT>, Const<C_IN>, Const<K_H>, Const<K_W>), E, D, T>,
    bias: Tensor<(Const<C_OUT>,), E, D, T>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    let batch = x.shape().0;
    let windows = Windows {
        batch: batch.size(),
        channels: C_IN,
        input: [H, W],
        kernel: [K_H, K_W],
        stride: geometry.stride,
        padding: geometry.padding,
        output: [O_H, O_W],
    };
    let window_len = C_IN * K_H * K_W;
    let positions = O_H * O_W;

    let x = x.try_reshape_like(&(windows.input_len(),))?;
    // [B·O_H·O_W, C_IN·K_H·K_W]
    let patches = try_unfold(x, &windows, UnfoldLayout::PositionMajor)?;
    // [C_IN·K_H·K_W, C_OUT]: the filters' `[C_IN, K_H, K_W]` order is the window's order.
    let filters = weight
        .try_reshape_like(&(Const::<C_OUT>, window_len))?
        .try_permute::<_, Axes2<1, 0>>()?;
    // [B·O_H·O_W, C_OUT] → [B, C_OUT, O_H·O_W] (a strided view; the bias add writes it out
    // contiguously).
    let y = patches
        .try_matmul(filters)?
        .try_reshape_like(&(batch.size(), positions, Const::<C_OUT>))?
        .try_permute::<_, Axes3<0, 2, 1>>()?;
    let bias =
        bias.try_broadcast_like::<_, Axes2<0, 2>>(&(batch.size(), Const::<C_OUT>, positions))?;
    (y + bias).try_reshape_like(&(batch, Const::<C_OUT>, Const::<O_H>, Const::<O_W>))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×3×3 input with padding 1 and a 2×2 window at stride 2: the corners of every window
    /// outside the input must read the zero slot (index 9).
    #[test]
    fn padding_cells_read_the_zero_slot() {
        let windows = Windows {
            batch: 1,
            channels: 1,
            input: [3, 3],
            kernel: [2, 2],
            stride: [2, 2],
            padding: [1, 1],
            output: [2, 2],
        };
        let indices = windows.indices(UnfoldLayout::PositionMajor);
        #[rustfmt::skip]
        assert_eq!(indices, [
            9, 9, 9, 0,
            9, 9, 1, 2,
            9, 3, 9, 6,
            4, 5, 7, 8,
        ]);
    }

    /// Two channels, two examples: the layouts differ only in where the channel loop sits.
    #[test]
    fn layouts_order_channels_differently() {
        let windows = Windows {
            batch: 2,
            channels: 2,
            input: [2, 2],
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            output: [2, 2],
        };
        let position_major = windows.indices(UnfoldLayout::PositionMajor);
        let channel_major = windows.indices(UnfoldLayout::ChannelMajor);
        assert_eq!(position_major[..8], [0, 4, 1, 5, 2, 6, 3, 7]);
        assert_eq!(channel_major, (0..16).collect::<Vec<_>>());
    }
}
