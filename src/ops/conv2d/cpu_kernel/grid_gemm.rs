//! A convolution's three products as GEMMs over the whole batch, on [`crate::gemm`] (`f32`): the
//! weight gradient where `super::weight_lanes` does not take it, and the forward pass and the input
//! gradient for narrow outputs, where the direct kernel's 16-position rows (`super::tiles`) would
//! run mostly empty — ResNet's 8 × 8, 4 × 4 and 2 × 2 maps. `f64`, and the weight gradient of an
//! input that is not finite, take the direct kernel.
//!
//! # The grid
//! With `X` the im2col matrix (`[C_IN·K_H·K_W, positions]`), the three products are
//! `Y = W · X`, `∂X = Wᵀ · ∂Y` (then added back over the windows, col2im) and
//! `∂Wᵀ = X · ∂Yᵀ` (or `∂W = ∂Y · Xᵀ`). `X` is never built: the input is laid out so that every
//! row of `X` is the padded input read from a fixed offset ([`crate::gemm::MatrixRef::rows_at`]),
//! and the GEMM's packing is the only gather.
//!
//! - The input is zero-padded and split into stride phases as in `super::layout` (stride 1: one
//!   phase, the padded image), but *channel-major*: `[C_IN, s_h, s_w, B, plane]`, each `plane`
//!   `ph × pw`. Tap `(c, u, v)` reads plane `(c, u mod s_h, v mod s_w)` at
//!   `(i + u / s_h, j + v / s_w)`, so with position index `q = b·ph·pw + i·pw + j` it reads
//!   `start(c, u, v) + q`: one offset per tap, and consecutive positions read consecutive
//!   elements across all examples.
//! - Outputs and output gradients live on the same grid, `[C_OUT, B, ph, pw]`. The grid's extra
//!   positions (`i ≥ O_H` or `j ≥ O_W`) compute values nobody reads (forward), add nothing
//!   (their output gradient is zero), or multiply input cells that no window reads by that zero —
//!   harmless for finite inputs, and why an input with an infinity or NaN takes the direct kernel
//!   for its weight gradient (`0·∞` is NaN).
//!
//! The grid has `ph·pw ≥ O_H·O_W` positions per example (3×3, padding 1: 34 × 34 for a 32 × 32
//! output, 13% more). Where it has more than 5/4 as many (a 2 × 2 output sits in a 4 × 4 plane)
//! and the matrix is small, the rows are gathered out at the exact positions instead.
//!
//! Measured (`BENCHMARKS.md`, 2026-11-24, 2 threads): the 32→32, 3×3 layer on 32 × 32, batch
//! 32, forward + backward went from 77 to 108 GFLOP/s (60% of the machine's sgemm) when its
//! weight gradient moved here from the dot products, and a ResNet-18 training step (64 × 64,
//! batch 8) from 601 to 156 ms. The 64→64 layer on 16 × 16 got slightly slower (14.7 to 15.7 ms
//! in one back-to-back pair), which is why VGG-small's step did not gain. The forward pass of that layer runs at about 85 GFLOP/s here
//! against 155 in the direct loops, which need no packing: hence only narrow outputs come here.

use rayon::prelude::*;

use super::layout::PhaseLayout;
use super::pool::Buffer;
use super::ConvDims;
use crate::gemm::{as_f32, as_f32_mut, gemm, MatrixRef};

/// Below this many output channels each packed element of the im2col matrix serves too few
/// multiply-adds, and the direct kernel is faster: LeNet-5's training step (batch 64) took
/// 4.7–5.0 ms with its 6→16 layer on the GEMM and 4.2 ms without; its 1→6 layer alone, 1.4 ms
/// forward + backward with the dot products against 2.4 ms with the GEMM.
const MIN_OUTPUT_CHANNELS: usize = 32;

/// From this many output channels on, the weight gradient comes out of the GEMM in its own
/// `[C_OUT, window]` order: its rows of 6 are then nearly all full, and transposing a large
/// gradient afterwards costs a cache miss per element (ResNet-18's 512-channel layers: 12% of a
/// training step).
const DIRECT_OUTPUT_CHANNELS: usize = 64;

/// Gather the im2col rows out (exact positions) when the grid has more than 5/4 as many
/// positions as the output, and the gathered matrix has at most this many elements (16 MiB).
const GATHER_LIMIT: usize = 1 << 22;

/// The positions of the products (module docs), and where the padded input lives.
#[derive(Debug, Clone, Copy)]
struct Grid {
    /// Rows and columns of one phase plane of one example: the padded input's layout.
    plane: [usize; 2],
    /// Rows and columns of the positions of one example: `plane` itself, or `[O_H, O_W]` when
    /// the im2col rows are gathered out of the planes (small outputs, whose planes are mostly
    /// border: a 2 × 2 output of a 3 × 3, padding 1 convolution sits in a 4 × 4 plane).
    positions_plane: [usize; 2],
    stride: [usize; 2],
    batch: usize,
}

impl Grid {
    fn new(dims: &ConvDims) -> Self {
        let plane = PhaseLayout::new(dims).plane;
        let (grid, exact) = (plane[0] * plane[1], dims.output_plane());
        let gathered =
            4 * grid > 5 * exact && dims.window_len() * dims.batch * exact <= GATHER_LIMIT;
        Self {
            plane,
            positions_plane: if gathered { dims.output } else { plane },
            stride: dims.stride,
            batch: dims.batch,
        }
    }

    fn gathered(&self) -> bool {
        self.positions_plane != self.plane
    }

    fn plane_len(&self) -> usize {
        self.plane[0] * self.plane[1]
    }

    /// Positions of one phase plane of the padded input, all examples.
    fn input_positions(&self) -> usize {
        self.batch * self.plane_len()
    }

    fn positions_per_example(&self) -> usize {
        self.positions_plane[0] * self.positions_plane[1]
    }

    /// Positions: the GEMM's depth (weight gradient) or width (forward, input gradient).
    fn positions(&self) -> usize {
        self.batch * self.positions_per_example()
    }

    /// The start of every tap `(c, u, v)` (in the weights' order) in the input buffer.
    fn taps(&self, dims: &ConvDims) -> Vec<usize> {
        let [s_h, s_w] = self.stride;
        let mut taps = Vec::with_capacity(dims.window_len());
        for c in 0..dims.c_in {
            for u in 0..dims.kernel[0] {
                for v in 0..dims.kernel[1] {
                    let phase = (c * s_h + u % s_h) * s_w + v % s_w;
                    taps.push(phase * self.input_positions() + u / s_h * self.plane[1] + v / s_w);
                }
            }
        }
        taps
    }

    /// The im2col matrix `[window, positions]`: rows read from `input` at `taps` on the grid,
    /// or gathered out of it into `gathered`.
    fn columns<'a>(
        &self,
        dims: &ConvDims,
        input: &'a [f32],
        taps: &'a [usize],
        gathered: &'a mut Option<Buffer<f32>>,
    ) -> MatrixRef<'a> {
        if !self.gathered() {
            return MatrixRef::rows_at(input, taps, self.positions());
        }
        let [out_rows, out_cols] = dims.output;
        let mut rows = Buffer::<f32>::take(taps.len() * self.positions());
        rows.par_chunks_mut(self.positions())
            .zip(taps)
            .for_each(|(row, &tap)| {
                for (b, example) in row.chunks_exact_mut(out_rows * out_cols).enumerate() {
                    for (i, out) in example.chunks_exact_mut(out_cols).enumerate() {
                        let start = tap + b * self.plane_len() + i * self.plane[1];
                        out.copy_from_slice(&input[start..start + out_cols]);
                    }
                }
            });
        let rows = gathered.insert(rows);
        MatrixRef::row_major(rows, taps.len(), self.positions())
    }

    /// Elements of the input buffer: every phase plane of every channel, and past the last
    /// the cells the last tap's row runs into.
    fn input_len(&self, dims: &ConvDims) -> usize {
        let [s_h, s_w] = self.stride;
        let last_tap_shift =
            (dims.kernel[0] - 1) / s_h * self.plane[1] + (dims.kernel[1] - 1) / s_w;
        dims.c_in * s_h * s_w * self.input_positions() + last_tap_shift
    }

    /// Fills `buffer` with `x` (`[B, C_IN, H, W]`), zero-padded, phase-split and channel-major.
    fn fill_input(&self, dims: &ConvDims, x: &[f32], buffer: &mut [f32]) {
        let [s_h, s_w] = self.stride;
        let [height, width] = dims.input;
        let [pad_h, pad_w] = dims.padding;
        let [rows, cols] = self.plane;
        let image = height * width;
        let (planes, tail) = buffer.split_at_mut(dims.c_in * s_h * s_w * self.input_positions());
        tail.fill(0.0);
        // One task per (channel, phase, example) plane.
        planes
            .par_chunks_mut(self.plane_len())
            .enumerate()
            .for_each(|(index, plane)| {
                let b = index % self.batch;
                let phase = index / self.batch;
                let (c, phase_row, phase_col) =
                    (phase / (s_h * s_w), phase / s_w % s_h, phase % s_w);
                let channel = &x[(b * dims.c_in + c) * image..][..image];
                for (r, out) in plane.chunks_exact_mut(cols).enumerate().take(rows) {
                    let row = (s_h * r + phase_row)
                        .checked_sub(pad_h)
                        .filter(|&row| row < height);
                    let Some(row) = row else {
                        out.fill(0.0);
                        continue;
                    };
                    let source = &channel[row * width..][..width];
                    if s_w == 1 {
                        // The row itself between its zero borders.
                        let (left, rest) = out.split_at_mut(pad_w.min(cols));
                        left.fill(0.0);
                        let inside = width.min(rest.len());
                        rest[..inside].copy_from_slice(&source[..inside]);
                        rest[inside..].fill(0.0);
                        continue;
                    }
                    for (q, cell) in out.iter_mut().enumerate() {
                        let col = (s_w * q + phase_col)
                            .checked_sub(pad_w)
                            .filter(|&col| col < width);
                        *cell = col.map_or(0.0, |col| source[col]);
                    }
                }
            });
    }

    /// Fills `buffer` with `grad_y` (`[B, C_OUT, O_H, O_W]`) as `[C_OUT, B, positions]`, zero
    /// outside each `O_H × O_W`.
    fn fill_gradient(&self, dims: &ConvDims, grad_y: &[f32], buffer: &mut [f32]) {
        let [out_rows, out_cols] = dims.output;
        let plane_y = dims.output_plane();
        let cols = self.positions_plane[1];
        buffer
            .par_chunks_mut(self.positions_per_example())
            .enumerate()
            .for_each(|(index, plane)| {
                let (o, b) = (index / self.batch, index % self.batch);
                let source = &grad_y[(b * dims.c_out + o) * plane_y..][..plane_y];
                plane.fill(0.0);
                for (out, row) in plane
                    .chunks_exact_mut(cols)
                    .zip(source.chunks_exact(out_cols))
                    .take(out_rows)
                {
                    out[..out_cols].copy_from_slice(row);
                }
            });
    }
}

/// Adds `∂L/∂w` (`[C_OUT, C_IN, K_H, K_W]`, summed over the batch) to `grad_weight`, from the
/// input `x` (`[B, C_IN, H, W]`) and the output gradient `grad_y` (`[B, C_OUT, O_H, O_W]`), by
/// one GEMM (module docs). Returns `false`, doing nothing, unless `E` is `f32`, every value of
/// `x` is finite and there are at least [`MIN_OUTPUT_CHANNELS`] output channels; the caller then takes the dot-product path.
pub(crate) fn add_weight_gradient<E: 'static>(
    dims: &ConvDims,
    x: &[E],
    grad_y: &[E],
    grad_weight: &mut [E],
) -> bool {
    let (Some(x), Some(grad_y), Some(grad_weight)) =
        (as_f32(x), as_f32(grad_y), as_f32_mut(grad_weight))
    else {
        return false;
    };
    assert_eq!(x.len(), dims.batch * dims.input_image());
    assert_eq!(grad_y.len(), dims.batch * dims.c_out * dims.output_plane());
    assert_eq!(grad_weight.len(), dims.c_out * dims.window_len());
    // Not `all`, whose early exit keeps it from vectorising.
    if !x.iter().fold(true, |finite, v| finite & v.is_finite()) {
        return false;
    }
    if dims.c_out < MIN_OUTPUT_CHANNELS {
        return false;
    }
    let window_len = dims.window_len();
    if grad_weight.is_empty() || grad_y.is_empty() {
        return true;
    }
    let grid = Grid::new(dims);
    let taps = grid.taps(dims);
    let mut input = Buffer::<f32>::take(grid.input_len(dims));
    grid.fill_input(dims, x, &mut input);
    let mut gradient = Buffer::<f32>::take(dims.c_out * grid.positions());
    grid.fill_gradient(dims, grad_y, &mut gradient);
    let mut gathered = None;
    let input = grid.columns(dims, &input, &taps, &mut gathered);
    let gradient = MatrixRef::row_major(&gradient, dims.c_out, grid.positions());
    if dims.c_out >= DIRECT_OUTPUT_CHANNELS {
        // `∂L/∂w = ∂Y · Xᵀ`, added where it belongs.
        gemm(gradient, input.t(), grad_weight, true);
    } else {
        // `∂L/∂wᵀ = X · ∂Yᵀ`, `[window, C_OUT]`: the long side (the window) as the GEMM's
        // rows, so that a few output channels still fill its 16-wide panels, then transposed
        // into place (small, with few channels).
        let mut transposed = Buffer::<f32>::take(window_len * dims.c_out);
        gemm(input, gradient.t(), &mut transposed, false);
        for (t, row) in transposed.chunks_exact(dims.c_out).enumerate() {
            for (o, &value) in row.iter().enumerate() {
                grad_weight[o * window_len + t] += value;
            }
        }
    }
    true
}

/// Whether the forward pass and the input gradient should run here rather than in the direct
/// kernel, whose register tiles cover 16 output positions of a row: below that width most of
/// each tile is empty, and from [`MIN_OUTPUT_CHANNELS`] output channels on the GEMM's packing
/// pays off (measured in `BENCHMARKS.md`).
pub(crate) fn prefers_grid(dims: &ConvDims) -> bool {
    dims.output[1] < NARROW_OUTPUT && dims.c_out >= MIN_OUTPUT_CHANNELS
}

/// Whether the grid runs in `E` (only `f32`: the GEMM's type).
pub(crate) fn takes<E: 'static>() -> bool {
    core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>()
}

/// Output widths below this take the grid for the forward pass and the input gradient.
const NARROW_OUTPUT: usize = 16;

/// `y = conv(x, weight) + bias` into `y` (`[B, C_OUT, O_H, O_W]`), from `x` (`[B, C_IN, H, W]`):
/// `Y = W · X` on the grid, then each output copied out of it with its bias. Returns `false`,
/// doing nothing, unless `E` is `f32`.
pub(crate) fn forward<E: 'static>(
    dims: &ConvDims,
    x: &[E],
    weight: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
) -> bool {
    let (Some(x), Some(weight), Some(y)) = (as_f32(x), as_f32(weight), as_f32_mut(y)) else {
        return false;
    };
    let bias = bias.map(|bias| as_f32(bias).expect("the bias has the weights' type"));
    assert_eq!(x.len(), dims.batch * dims.input_image());
    assert_eq!(weight.len(), dims.c_out * dims.window_len());
    assert_eq!(y.len(), dims.batch * dims.c_out * dims.output_plane());
    if y.is_empty() {
        return true;
    }
    let grid = Grid::new(dims);
    let taps = grid.taps(dims);
    let mut input = Buffer::<f32>::take(grid.input_len(dims));
    grid.fill_input(dims, x, &mut input);
    let mut out = Buffer::<f32>::take(dims.c_out * grid.positions());
    let mut gathered = None;
    gemm(
        MatrixRef::row_major(weight, dims.c_out, dims.window_len()),
        grid.columns(dims, &input, &taps, &mut gathered),
        &mut out,
        false,
    );
    let [out_rows, out_cols] = dims.output;
    let plane_y = dims.output_plane();
    y.par_chunks_mut(plane_y)
        .enumerate()
        .for_each(|(index, y)| {
            let (b, o) = (index / dims.c_out, index % dims.c_out);
            let offset = bias.map_or(0.0, |bias| bias[o]);
            let per_example = grid.positions_per_example();
            let source = &out[o * grid.positions() + b * per_example..][..per_example];
            for (row, source) in y
                .chunks_exact_mut(out_cols)
                .zip(source.chunks_exact(grid.positions_plane[1]))
                .take(out_rows)
            {
                for (y, &value) in row.iter_mut().zip(source) {
                    *y = value + offset;
                }
            }
        });
    true
}

/// Adds `∂L/∂x` to `grad_x` (`[B, C_IN, H, W]`) from `grad_y` (`[B, C_OUT, O_H, O_W]`):
/// `∂X = Wᵀ · ∂Y` on the grid, each tap's row added back where the tap read (col2im, one task
/// per input channel, whose taps write only its own planes), then the padded, phase-split
/// gradient added to `grad_x`. Returns `false`, doing nothing, unless `E` is `f32`.
pub(crate) fn add_input_gradient<E: 'static>(
    dims: &ConvDims,
    weight: &[E],
    grad_y: &[E],
    grad_x: &mut [E],
) -> bool {
    let (Some(weight), Some(grad_y), Some(grad_x)) =
        (as_f32(weight), as_f32(grad_y), as_f32_mut(grad_x))
    else {
        return false;
    };
    let window_len = dims.window_len();
    assert_eq!(weight.len(), dims.c_out * window_len);
    assert_eq!(grad_y.len(), dims.batch * dims.c_out * dims.output_plane());
    assert_eq!(grad_x.len(), dims.batch * dims.input_image());
    if grad_x.is_empty() || grad_y.is_empty() {
        return true;
    }
    let grid = Grid::new(dims);
    let positions = grid.positions();
    let mut gradient = Buffer::<f32>::take(dims.c_out * positions);
    grid.fill_gradient(dims, grad_y, &mut gradient);
    let mut columns = Buffer::<f32>::take(window_len * positions);
    gemm(
        MatrixRef::row_major(weight, dims.c_out, window_len).t(),
        MatrixRef::row_major(&gradient, dims.c_out, positions),
        &mut columns,
        false,
    );
    drop(gradient);
    // col2im: tap `(c, u, v)`'s row goes back to where it read, valid positions only (the
    // others are zero and would reach into the next channel's planes).
    let [s_h, s_w] = grid.stride;
    let [kernel_h, kernel_w] = dims.kernel;
    let [out_rows, out_cols] = dims.output;
    let planes_per_channel = s_h * s_w;
    let input_positions = grid.input_positions();
    let mut padded = Buffer::<f32>::zeroed(dims.c_in * planes_per_channel * input_positions);
    padded
        .par_chunks_mut(planes_per_channel * input_positions)
        .enumerate()
        .for_each(|(c, planes)| {
            for u in 0..kernel_h {
                for v in 0..kernel_w {
                    let tap = (c * kernel_h + u) * kernel_w + v;
                    let phase = (u % s_h) * s_w + v % s_w;
                    let shift = u / s_h * grid.plane[1] + v / s_w;
                    let row = &columns[tap * positions..][..positions];
                    for b in 0..dims.batch {
                        for i in 0..out_rows {
                            let q = b * grid.positions_per_example() + i * grid.positions_plane[1];
                            let cell = b * grid.plane_len() + i * grid.plane[1] + shift;
                            let target = &mut planes[phase * input_positions + cell..][..out_cols];
                            for (t, &value) in target.iter_mut().zip(&row[q..q + out_cols]) {
                                *t += value;
                            }
                        }
                    }
                }
            }
        });
    drop(columns);
    // Back from padded, phase-split planes to `[B, C_IN, H, W]`.
    let [height, width] = dims.input;
    let [pad_h, pad_w] = dims.padding;
    grad_x
        .par_chunks_mut(height * width)
        .enumerate()
        .for_each(|(index, grad_x)| {
            let (b, c) = (index / dims.c_in, index % dims.c_in);
            for (h, row) in grad_x.chunks_exact_mut(width).enumerate() {
                let (r, a) = ((h + pad_h) / s_h, (h + pad_h) % s_h);
                for (w, g) in row.iter_mut().enumerate() {
                    let (q, d) = ((w + pad_w) / s_w, (w + pad_w) % s_w);
                    let plane = (c * s_h + a) * s_w + d;
                    *g += padded
                        [plane * input_positions + b * grid.plane_len() + r * grid.plane[1] + q];
                }
            }
        });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small outputs gather their im2col rows out; large ones read them on the grid (both are
    /// held to the definition by `cpu_kernel`'s tests, which use these sizes).
    #[test]
    fn small_outputs_gather_and_large_ones_stay_on_the_grid() {
        let small = ConvDims::new(3, [16, 65], [2, 2], [3, 3], [1, 1], [1, 1]).unwrap();
        assert!(Grid::new(&small).gathered());
        let large = ConvDims::new(3, [3, 9], [30, 30], [3, 3], [1, 1], [1, 1]).unwrap();
        assert!(!Grid::new(&large).gathered());
        let strided = ConvDims::new(3, [2, 64], [31, 20], [3, 3], [2, 2], [1, 1]).unwrap();
        assert!(!Grid::new(&strided).gathered());
    }
}
