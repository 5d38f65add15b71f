//! The readable reference for [`super::try_conv_transpose2d`]: dfdx ops only, so the same code
//! runs on every dfdx device and dfdx records the backward pass.
//!
//! The lowering follows the definition, *scatter* form: every input cell `(h, w)` adds a stamp,
//! its value times the filter of its channel, to the output window that starts at
//! `(s_h·h − p_h, s_w·w − p_w)`.
//!
//! 1. `matmul`: all stamps at once. With the input laid out as `[B·H·W, C_IN]` (one row per input
//!    cell) and PyTorch's weight `[C_IN, C_OUT, K_H, K_W]` read as the matrix
//!    `[C_IN, C_OUT·K_H·K_W]` as it is stored, row `(b, h, w)` of the product is the stamp of cell
//!    `(b, h, w)`.
//! 2. fold (col2im, the transpose of conv2d's unfold): every output cell sums the stamp cells
//!    that land on it. Along an axis, output `i` receives stamp cell `u` of input `h` exactly when
//!    `s·h + u − p = i`, so at most `⌈K/s⌉` of them; [`Fold`] lists them for every output cell,
//!    padded to that fixed count with a zero slot, `gather` fetches them and `sum` adds them.
//! 3. the bias, broadcast over the output.
//!
//! Why not the other textbook form, a stride-1 convolution of the input dilated by the stride
//! and padded by `K − 1 − p`, with the kernel flipped and its channels swapped: it multiplies
//! `s_h·s_w` times as many numbers, most of them the zeros put in by the dilation, and needs
//! three tricks (dilation, flip, and a negative padding — a crop — when `p > K − 1`), each easy to
//! get subtly wrong. The scatter form is the formula as written, uses the weight as stored, and
//! is exactly the transpose of conv2d's unfold + matmul, which is what the adjoint test checks.
//!
//! Known cost: the index tensor (`B·C_OUT·O_H·O_W·⌈K_H/s_h⌉·⌈K_W/s_w⌉` of them) is built and
//! uploaded on every call, and the stamps are materialised.

use dfdx::shapes::{Axes2, Axes4, Axis, Const, Dim, HasShape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{
    BroadcastTo, Device, GatherTo, PermuteTo, ReshapeTo, SumTo, TryConcatAlong, TryMatMul,
};

use super::ConvTranspose2dGeometry;
use crate::layers::ConvTranspose2d;
use crate::network::Element;

/// Where the stamps land, in run-time sizes: what a fold needs. The stamps are laid out as
/// `[B, H, W, C_OUT, K_H, K_W]`, the output as `[B, C_OUT, O_H, O_W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fold {
    pub batch: usize,
    /// Output channels.
    pub channels: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Cells cropped from each side of the full output, `[height, width]`.
    pub padding: [usize; 2],
    /// Output `[height, width]`; the caller has checked it against the formula.
    pub output: [usize; 2],
}

impl Fold {
    fn stamps_len(&self) -> usize {
        let [height, width] = self.input;
        self.batch * height * width * self.channels * self.kernel[0] * self.kernel[1]
    }

    fn output_len(&self) -> usize {
        self.batch * self.channels * self.output[0] * self.output[1]
    }

    /// The most stamp cells that can land on one output cell along `axis`: `⌈K/s⌉`.
    fn reach(&self, axis: usize) -> usize {
        self.kernel[axis].div_ceil(self.stride[axis])
    }

    /// How many stamp cells every output cell gathers (real ones, then zero slots).
    pub(crate) fn slots(&self) -> usize {
        self.reach(0) * self.reach(1)
    }

    /// The `(input, kernel)` positions `(h, u)` along `axis` whose stamp cell lands on output
    /// position `i`, that is `s·h + u − p = i`, padded with `None` to [`Self::reach`] entries.
    fn sources(&self, axis: usize, i: usize) -> impl Iterator<Item = Option<[usize; 2]>> {
        let (stride, kernel, input) = (self.stride[axis], self.kernel[axis], self.input[axis]);
        // Position in the uncropped output; `u` must have the same remainder modulo the stride.
        let full = i + self.padding[axis];
        let found = (full % stride..kernel)
            .step_by(stride)
            .filter(move |&u| u <= full && (full - u) / stride < input)
            .map(move |u| Some([(full - u) / stride, u]));
        found.chain(core::iter::repeat(None)).take(self.reach(axis))
    }

    /// The gather indices of the fold: [`Self::slots`] per output cell, in `[B, C_OUT, O_H, O_W]`
    /// order, each an index into the flattened stamps or the zero slot just past their end.
    pub(crate) fn indices(&self) -> Vec<usize> {
        let [height, width] = self.input;
        let [k_h, k_w] = self.kernel;
        let zero_slot = self.stamps_len();
        let rows: Vec<Vec<Option<[usize; 2]>>> = (0..self.output[0])
            .map(|i| self.sources(0, i).collect())
            .collect();
        let columns: Vec<Vec<Option<[usize; 2]>>> = (0..self.output[1])
            .map(|j| self.sources(1, j).collect())
            .collect();
        let mut indices = Vec::with_capacity(self.output_len() * self.slots());
        for b in 0..self.batch {
            for o in 0..self.channels {
                for row in &rows {
                    for column in &columns {
                        for &from_row in row {
                            indices.extend(column.iter().map(|&from_column| {
                                match (from_row, from_column) {
                                    (Some([h, u]), Some([w, v])) => {
                                        let cell = (b * height + h) * width + w;
                                        ((cell * self.channels + o) * k_h + u) * k_w + v
                                    }
                                    _ => zero_slot,
                                }
                            }));
                        }
                    }
                }
            }
        }
        indices
    }
}

/// col2im with dfdx ops: the stamps, flattened row-major from `[B, H, W, C_OUT, K_H, K_W]`,
/// become the output `[B, C_OUT, O_H, O_W]` (flattened), each output cell the sum of the stamp
/// cells that land on it.
pub(crate) fn try_fold<E: Element, D: Device<E>, T: Tape<E, D>>(
    stamps: Tensor<(usize,), E, D, T>,
    fold: &Fold,
) -> Result<Tensor<(usize,), E, D, T>, D::Err> {
    assert_eq!(stamps.shape().0, fold.stamps_len(), "fold: stamps length");
    let dev = stamps.device().clone();
    // The zero slot, at index `stamps_len`, that every missing contribution gathers.
    let zero = dev.try_zeros_like(&(1,))?;
    let source = (stamps, zero).try_concat_along(Axis::<0>)?;
    let indices = fold.indices();
    let len = indices.len();
    let indices = dev.try_tensor_from_vec(indices, (len,))?;
    let gathered: Tensor<(usize,), E, D, T> = source.try_gather(indices)?;
    gathered
        .try_reshape_like(&(fold.output_len(), fold.slots()))?
        .try_sum::<_, Axis<1>>()
}

/// [`super::try_conv_transpose2d`] as matmul + fold + bias. The caller has checked that `O_H`,
/// `O_W` follow from the geometry.
#[allow(clippy::type_complexity)]
pub(crate) fn try_conv_transpose2d<
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
    layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: ConvTranspose2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    let batch = x.shape().0;
    let fold = Fold {
        batch: batch.size(),
        channels: C_OUT,
        input: [H, W],
        kernel: [K_H, K_W],
        stride: geometry.stride,
        padding: geometry.padding,
        output: [O_H, O_W],
    };
    let stamp_len = C_OUT * K_H * K_W;
    let positions = O_H * O_W;

    // [B·H·W, C_IN]: one row per input cell.
    let cells = x
        .try_permute::<_, Axes4<0, 2, 3, 1>>()?
        .try_reshape_like(&(batch.size() * H * W, C_IN))?;
    // [C_IN, C_OUT·K_H·K_W]: PyTorch's weight layout is already this matrix.
    let filters = layer.weight.clone().try_reshape_like(&(C_IN, stamp_len))?;
    // [B·H·W, C_OUT·K_H·K_W]: the stamp of every input cell, flattened for the fold.
    let stamps = cells.try_matmul(filters)?;
    let stamps = stamps.try_reshape_like(&(fold.stamps_len(),))?;
    let y =
        try_fold(stamps, &fold)?.try_reshape_like(&(batch.size(), Const::<C_OUT>, positions))?;
    let bias = layer.bias.clone().try_broadcast_like::<_, Axes2<0, 2>>(&(
        batch.size(),
        Const::<C_OUT>,
        positions,
    ))?;
    (y + bias).try_reshape_like(&(batch, Const::<C_OUT>, Const::<O_H>, Const::<O_W>))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stride 2, kernel 3, padding 1 along one axis: output `i` takes kernel cell `u` of input
    /// `h` where `2h + u − 1 = i`.
    #[test]
    fn sources_solve_the_stamp_equation() {
        let fold = Fold {
            batch: 1,
            channels: 1,
            input: [3, 1],
            kernel: [3, 1],
            stride: [2, 1],
            padding: [1, 0],
            output: [5, 1],
        };
        let sources = |i| fold.sources(0, i).collect::<Vec<_>>();
        assert_eq!(fold.reach(0), 2);
        // i = 0: 2h + u = 1 → (0, 1).
        assert_eq!(sources(0), [Some([0, 1]), None]);
        // i = 1: 2h + u = 2 → (1, 0) and (0, 2).
        assert_eq!(sources(1), [Some([1, 0]), Some([0, 2])]);
        // i = 4: 2h + u = 5 → (2, 1); (1, 3) is outside the kernel.
        assert_eq!(sources(4), [Some([2, 1]), None]);
    }

    /// A stride wider than the kernel leaves output cells that no stamp reaches: all zero slots.
    #[test]
    fn gaps_between_stamps_read_the_zero_slot() {
        let fold = Fold {
            batch: 1,
            channels: 1,
            input: [2, 1],
            kernel: [1, 1],
            stride: [3, 1],
            padding: [0, 0],
            output: [4, 1],
        };
        // Stamps: 2 cells; zero slot: index 2.
        assert_eq!(fold.indices(), [0, 2, 2, 1]);
    }
}
