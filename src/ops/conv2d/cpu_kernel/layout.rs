//! The buffers the CPU kernel's loops read, and the tap offsets and packed weights that index
//! them: everything that turns a convolution of any stride and padding into the stride-1,
//! padding-free correlations of `super::tiles`.
//!
//! # Stride phases
//! A window at output position `(i, j)` reads padded input cell `(s_h·i + u, s_w·j + v)`. Split
//! the padded input into `s_h·s_w` *phase planes*, plane `(a, b)` holding the cells whose row is
//! `a` modulo `s_h` and whose column is `b` modulo `s_w`: cell `(R, Q)` goes to row `R / s_h`,
//! column `Q / s_w` of plane `(R mod s_h, Q mod s_w)`. Tap `(c, u, v)` then reads plane
//! `(c, u mod s_h, v mod s_w)` at `(i + u / s_h, j + v / s_w)`: a fixed offset plus
//! `i·row + j`, so consecutive output positions read consecutive elements whatever the stride.
//! With stride 1 there is one phase and the buffer is simply the zero-padded input.
//!
//! # The input gradient as a correlation
//! `∂L/∂x` scatters each `∂L/∂y[o, i, j]` back over its window. Gathered instead, per phase
//! `(a, b)` of the padded input, it is again a stride-1 correlation: cell `(s_h·R + a, s_w·Q + b)`
//! receives `Σ_{o,m,n} w[o, c, a + s_h·m, b + s_w·n] · ∂L/∂y[o, R − m, Q − n]`, the output
//! gradient (zero outside its `O_H × O_W`) correlated with the kernel's taps of that phase,
//! flipped. [`GradientLayout`] holds the output gradient with the zero border these reads need,
//! and [`input_gradient_phases`] the taps and weights of each phase. No two windows write the
//! same cell at once, so the work splits over examples and channels without atomics.

use std::ops::Range;

use rayon::prelude::*;

use super::tiles::{MAX_LANES, SLACK, TILE_CHANNELS};
use super::ConvDims;
use crate::network::Element;

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// How many of the kernel taps `0..kernel` fall in phase `phase` of `stride`.
fn taps_in_phase(kernel: usize, stride: usize, phase: usize) -> usize {
    if phase < kernel {
        ceil_div(kernel - phase, stride)
    } else {
        0
    }
}

/// The channels of a tile of at most [`TILE_CHANNELS`], as evenly split as possible (32
/// channels become 6, 6, 5, 5, 5, 5 rather than five 6s and a 2, which would run a thin tile).
pub(crate) fn channel_tiles(channels: usize) -> Vec<Range<usize>> {
    let tiles = ceil_div(channels, TILE_CHANNELS);
    let mut start = 0;
    (0..tiles)
        .map(|t| {
            let len = channels / tiles + usize::from(t < channels % tiles);
            start += len;
            start - len..start
        })
        .collect()
}

/// Splits `data` (whole channels of `per_channel` elements, channel after channel) into one
/// mutable slice per tile.
pub(crate) fn split_by_tiles<'a, E>(
    mut data: &'a mut [E],
    tiles: &[Range<usize>],
    per_channel: usize,
) -> Vec<&'a mut [E]> {
    tiles
        .iter()
        .map(|tile| {
            let (head, rest) = std::mem::take(&mut data).split_at_mut(tile.len() * per_channel);
            data = rest;
            head
        })
        .collect()
}

/// Packs `weight(o, t)` of a tile's channels as `[tap][width]` (zero past the tile's channels):
/// the order the register blocks read them in, `width` [`TILE_CHANNELS`] for
/// [`super::tiles::correlate`] (broadcast) or a group's block width for the channel lanes (one
/// vector load per tap).
fn pack_tile<E: Element>(
    tile: &Range<usize>,
    taps: usize,
    width: usize,
    weight: impl Fn(usize, usize) -> E,
) -> Vec<E> {
    debug_assert!(tile.len() <= width);
    let mut packed = vec![E::zero(); taps * width];
    for t in 0..taps {
        for (r, o) in tile.clone().enumerate() {
            packed[t * width + r] = weight(o, t);
        }
    }
    packed
}

/// The sizes of one example's zero-padded input split into stride phases (module docs):
/// `[C_IN, s_h, s_w]` planes of `plane[0] × plane[1]`, then [`SLACK`] zeros; the layout of the
/// buffer [`PhaseLayout::fill`] fills.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhaseLayout {
    pub stride: [usize; 2],
    /// Rows and columns of one phase plane: `⌈padded / stride⌉` along each axis.
    pub plane: [usize; 2],
    channels: usize,
    input: [usize; 2],
    padding: [usize; 2],
}

impl PhaseLayout {
    pub(crate) fn new(dims: &ConvDims) -> Self {
        let plane = [0, 1]
            .map(|axis| ceil_div(dims.input[axis] + 2 * dims.padding[axis], dims.stride[axis]));
        Self {
            stride: dims.stride,
            plane,
            channels: dims.c_in,
            input: dims.input,
            padding: dims.padding,
        }
    }

    fn plane_len(&self) -> usize {
        self.plane[0] * self.plane[1]
    }

    /// Elements of the buffer, [`SLACK`] included.
    pub(crate) fn len(&self) -> usize {
        self.channels * self.stride[0] * self.stride[1] * self.plane_len() + SLACK
    }

    /// Where padded input cell `(row, col)` of channel `c` lives.
    pub(crate) fn index(&self, c: usize, [row, col]: [usize; 2]) -> usize {
        let [s_h, s_w] = self.stride;
        let plane = (c * s_h + row % s_h) * s_w + col % s_w;
        plane * self.plane_len() + row / s_h * self.plane[1] + col / s_w
    }

    /// The offset of every window cell `(c, u, v)`, in the weights' `[C_IN, K_H, K_W]` order:
    /// output position `(i, j)` reads tap `t` at `taps[t] + i·plane[1] + j`.
    pub(crate) fn window_taps(&self, kernel: [usize; 2]) -> Vec<usize> {
        let mut taps = Vec::with_capacity(self.channels * kernel[0] * kernel[1]);
        for c in 0..self.channels {
            for u in 0..kernel[0] {
                for v in 0..kernel[1] {
                    taps.push(self.index(c, [u, v]));
                }
            }
        }
        taps
    }

    /// Fills `buffer` (of [`Self::len`] elements) with one example `x` (`[C_IN, H, W]`,
    /// row-major), zero-padded and phase-split. With
    /// `parallel`, the phase planes are filled on the pool's threads: a batch smaller than the
    /// pool would otherwise fill its examples on one thread while the others wait (a 224 × 224
    /// example takes ~70 µs, 5–10% of a batch-1 forward pass).
    pub(crate) fn fill<E: Element>(&self, x: &[E], buffer: &mut [E], parallel: bool) {
        let [height, width] = self.input;
        assert_eq!(x.len(), self.channels * height * width);
        assert_eq!(buffer.len(), self.len());
        let plane_len = self.plane_len();
        let (planes, slack) = buffer.split_at_mut(buffer.len() - SLACK);
        slack.fill(E::zero());
        if plane_len == 0 {
            return;
        }
        let fill_plane = |(p, plane): (usize, &mut [E])| self.fill_plane(x, p, plane);
        if parallel {
            planes
                .par_chunks_mut(plane_len)
                .enumerate()
                .for_each(fill_plane);
        } else {
            planes
                .chunks_mut(plane_len)
                .enumerate()
                .for_each(fill_plane);
        }
    }

    /// Fills phase plane `p` (channel `c`, phase `(a, b)`, in [`Self::index`]'s order) from
    /// channel `c` of `x`.
    fn fill_plane<E: Element>(&self, x: &[E], p: usize, plane: &mut [E]) {
        let [height, width] = self.input;
        let [pad_h, pad_w] = self.padding;
        let [s_h, s_w] = self.stride;
        let (c, a, b) = (p / (s_h * s_w), p / s_w % s_h, p % s_w);
        plane.fill(E::zero());
        // The first input row and column whose padded position falls in phase `(a, b)`.
        let first_row = (a + s_h - pad_h % s_h) % s_h;
        let first_col = (b + s_w - pad_w % s_w) % s_w;
        if first_col < width {
            let channel = &x[c * height * width..(c + 1) * height * width];
            for r in (first_row..height).step_by(s_h) {
                let start = (r + pad_h) / s_h * self.plane[1] + (first_col + pad_w) / s_w;
                let row = &channel[r * width + first_col..(r + 1) * width];
                if s_w == 1 {
                    plane[start..start + row.len()].copy_from_slice(row);
                } else {
                    for (cell, &value) in plane[start..].iter_mut().zip(row.iter().step_by(s_w)) {
                        *cell = value;
                    }
                }
            }
        }
    }
}

/// Whether every value is finite (what [`super::tiles::accumulate_window_dots`] needs to know
/// of its `b` window).
pub(crate) fn all_finite<E: Element>(values: &[E]) -> bool {
    // Not `all`, whose early exit keeps it from vectorising.
    values.iter().fold(true, |finite, v| finite & v.is_finite())
}

/// One example's output gradient with a zero border of `⌈K/s⌉ − 1` cells above and left, and
/// enough below and right for every read of [`input_gradient_phases`] and for a vector read at
/// the end of a row to find zeros past it: the layout of the buffer [`GradientLayout::pad`]
/// fills.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GradientLayout {
    /// Rows and columns of one channel's plane.
    pub plane: [usize; 2],
    /// `[⌈K_H/s_h⌉, ⌈K_W/s_w⌉]`: the most taps any phase has along each axis.
    pub phase_taps: [usize; 2],
    /// `[O_H, O_W]`.
    output: [usize; 2],
    channels: usize,
}

impl GradientLayout {
    pub(crate) fn new(dims: &ConvDims) -> Self {
        let input = PhaseLayout::new(dims);
        let phase_taps = [0, 1].map(|axis| ceil_div(dims.kernel[axis], dims.stride[axis]));
        // A phase plane's rows, plus the border: the largest row any phase reads.
        let [rows, cols] = [0, 1].map(|axis| input.plane[axis] + phase_taps[axis] - 1);
        Self {
            plane: [
                rows,
                cols.max(phase_taps[1] - 1 + dims.output[1] + MAX_LANES - 1),
            ],
            phase_taps,
            output: dims.output,
            channels: dims.c_out,
        }
    }

    /// Elements of the buffer, [`SLACK`] included.
    pub(crate) fn len(&self) -> usize {
        self.channels * self.plane[0] * self.plane[1] + SLACK
    }

    /// Where `∂L/∂y[o, 0, 0]` lives, minus `o·plane`: the origin of the unpadded gradient.
    pub(crate) fn origin(&self) -> usize {
        (self.phase_taps[0] - 1) * self.plane[1] + self.phase_taps[1] - 1
    }

    /// The offset of each output channel's plane.
    pub(crate) fn channel_taps(&self) -> Vec<usize> {
        (0..self.channels)
            .map(|o| o * self.plane[0] * self.plane[1])
            .collect()
    }

    /// Fills `buffer` (of [`Self::len`] elements) with the zero-bordered `grad_y` of one
    /// example (`[C_OUT, O_H, O_W]`, row-major).
    pub(crate) fn pad<E: Element>(&self, grad_y: &[E], buffer: &mut [E]) {
        let [rows, cols] = self.output;
        assert_eq!(grad_y.len(), self.channels * rows * cols);
        assert_eq!(buffer.len(), self.len());
        buffer.fill(E::zero());
        if cols == 0 {
            return;
        }
        for (o, channel) in grad_y.chunks(rows * cols).enumerate() {
            for (i, row) in channel.chunks(cols).enumerate() {
                let start = (o * self.plane[0] + i) * self.plane[1] + self.origin();
                buffer[start..start + cols].copy_from_slice(row);
            }
        }
    }
}

/// One phase of the input gradient: which cells it writes, and the correlation that computes
/// them (module docs).
#[derive(Debug)]
pub(crate) struct InputGradientPhase<E> {
    /// The number of rows and columns of the phase plane written.
    pub grid: [usize; 2],
    /// Where the first written cell is in the unpadded input, `[row, col]`.
    pub target: [usize; 2],
    /// Offsets into a [`GradientLayout`] buffer for the first written cell; cell `(i, j)` of the
    /// grid adds `i·plane[1] + j`.
    pub taps: Vec<usize>,
    /// Per channel tile of the input, the packed weights of `taps`.
    pub weights: Vec<Vec<E>>,
}

/// The correlations of every phase of the input gradient that receives any gradient, the
/// weights packed per tile of input channels `[tap][width(tile)]` ([`TILE_CHANNELS`] for the
/// row loops, a group's block width for the channel lanes).
pub(crate) fn input_gradient_phases<E: Element>(
    dims: &ConvDims,
    gradient: &GradientLayout,
    weight: &[E],
    tiles: &[Range<usize>],
    width: impl Fn(&Range<usize>) -> usize,
) -> Vec<InputGradientPhase<E>> {
    let [s_h, s_w] = dims.stride;
    let [k_h, k_w] = dims.kernel;
    let [most_h, most_w] = gradient.phase_taps;
    let window = dims.c_in * k_h * k_w;
    let mut phases = Vec::new();
    for a in 0..s_h {
        for b in 0..s_w {
            let taps_h = taps_in_phase(k_h, s_h, a);
            let taps_w = taps_in_phase(k_w, s_w, b);
            // The phase-plane rows whose padded row `s·R + a` lies inside the input, and the
            // same for columns.
            let range = |phase: usize, stride: usize, pad: usize, size: usize| {
                let first = ceil_div(pad.saturating_sub(phase), stride);
                let end = ceil_div((pad + size).saturating_sub(phase), stride);
                (first, end.saturating_sub(first))
            };
            let (first_row, rows) = range(a, s_h, dims.padding[0], dims.input[0]);
            let (first_col, cols) = range(b, s_w, dims.padding[1], dims.input[1]);
            if taps_h == 0 || taps_w == 0 || rows == 0 || cols == 0 {
                continue;
            }
            let mut taps = Vec::with_capacity(dims.c_out * taps_h * taps_w);
            let mut cells = Vec::with_capacity(taps.capacity());
            for o in 0..dims.c_out {
                for m in 0..taps_h {
                    for n in 0..taps_w {
                        let row = first_row + m + most_h - taps_h;
                        let col = first_col + n + most_w - taps_w;
                        taps.push((o * gradient.plane[0] + row) * gradient.plane[1] + col);
                        // Flipped: the last tap of the phase meets the first gradient row.
                        let u = a + s_h * (taps_h - 1 - m);
                        let v = b + s_w * (taps_w - 1 - n);
                        cells.push((o, u * k_w + v));
                    }
                }
            }
            let weights = tiles
                .iter()
                .map(|tile| {
                    pack_tile(tile, taps.len(), width(tile), |c, t| {
                        let (o, cell) = cells[t];
                        weight[o * window + c * k_h * k_w + cell]
                    })
                })
                .collect();
            phases.push(InputGradientPhase {
                grid: [rows, cols],
                target: [
                    s_h * first_row + a - dims.padding[0],
                    s_w * first_col + b - dims.padding[1],
                ],
                taps,
                weights,
            });
        }
    }
    phases
}

/// The forward weights of every output channel tile, packed for `correlate`.
pub(crate) fn forward_weights<E: Element>(
    dims: &ConvDims,
    weight: &[E],
    tiles: &[Range<usize>],
) -> Vec<Vec<E>> {
    let window = dims.c_in * dims.kernel[0] * dims.kernel[1];
    tiles
        .par_iter()
        .map(|tile| pack_tile(tile, window, TILE_CHANNELS, |o, t| weight[o * window + t]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every padded cell holds its input value (zero in the border) where [`PhaseLayout::index`]
    /// says, the slack is zero, and the sequential and the parallel fill agree.
    #[test]
    fn all_finite_finds_an_infinity_or_a_nan_anywhere() {
        let mut values = vec![1.0f32; 37];
        assert!(all_finite(&values));
        for (at, bad) in [(0, f32::INFINITY), (36, f32::NEG_INFINITY), (17, f32::NAN)] {
            values[at] = bad;
            assert!(!all_finite(&values), "{bad} at {at}");
            values[at] = 1.0;
        }
    }

    #[test]
    fn fill_puts_every_padded_cell_at_its_index() {
        for (input, stride, padding) in [
            ([5, 7], [1, 1], [0, 0]),
            ([5, 7], [2, 3], [1, 2]),
            ([11, 9], [4, 4], [0, 3]),
            ([3, 2], [3, 1], [2, 0]),
        ] {
            let dims = ConvDims::new(1, [2, 1], input, [1, 1], stride, padding).unwrap();
            let layout = PhaseLayout::new(&dims);
            let x: Vec<f64> = (0..2 * input[0] * input[1])
                .map(|v| v as f64 + 1.0)
                .collect();
            let mut sequential = vec![f64::NAN; layout.len()];
            let mut parallel = vec![f64::NAN; layout.len()];
            layout.fill(&x, &mut sequential, false);
            layout.fill(&x, &mut parallel, true);
            assert_eq!(sequential, parallel);
            let mut expected = vec![0.0; layout.len()];
            for c in 0..2 {
                for row in 0..input[0] + 2 * padding[0] {
                    for col in 0..input[1] + 2 * padding[1] {
                        let (r, q) = (row.wrapping_sub(padding[0]), col.wrapping_sub(padding[1]));
                        if r < input[0] && q < input[1] {
                            expected[layout.index(c, [row, col])] =
                                x[(c * input[0] + r) * input[1] + q];
                        }
                    }
                }
            }
            assert_eq!(sequential, expected, "{input:?} {stride:?} {padding:?}");
        }
    }
}
