//! The input gradient of a *strided* convolution with input channels in the SIMD lanes: the
//! register block of `channel_lanes`, run once per stride phase of the input. It is also the
//! forward pass of a strided transposed convolution (`conv_transpose2d/cpu_kernel.rs`).
//!
//! At stride `s > 1` the input gradient is `s_h·s_w` stride-1 correlations, one per stride
//! phase `(a, b)` of the input (`layout`, "The input gradient as a correlation"): the phase
//! writes the cells `(t_h + s_h·i, t_w + s_w·j)` and reads the bordered output gradient with
//! the kernel's taps that fall in it, flipped ([`input_gradient_phases`]). The row loops
//! (`tiles::correlate`) put a phase's positions in the lanes, so a block is one row of a phase
//! plane (16 × 16 for the DCGAN layer below: rows of 16) × a tile of 6 channels, six 512-bit
//! registers of sums on AVX-512, too few to cover the multiply-adds' latency. Here a block is
//! [`TILE_POSITIONS`] positions, walking the phase's rows as one flat run, × a group of input
//! channels (32 `f32` on AVX-512: twelve registers of sums), as in `channel_lanes`: per tap one
//! vector load of packed weights per 16 channels and one broadcast of the gradient cell under
//! each position. The sums are stored one element at a time, `s_w` apart along a row.
//!
//! The work splits into one task per example, group of channels and run of phase rows (more
//! runs with fewer examples than threads); a task owns rows `s_h·m₀ .. s_h·m₁` of its channels,
//! where every phase's rows `m₀ .. m₁` land, so no two tasks write one cell.
//!
//! Measured on the Zen 5 machine of `BENCHMARKS.md` (2 threads, 2026-11-25): the input gradient
//! alone, minimum of 40 interleaved calls against the route it replaced, took 0.78× the row
//! loops' time on the DCGAN layer's adjoint (1.92 → 1.50 ms, 280 → 358 GFLOP/s), and against
//! the grid GEMM 0.83× on ResNet-18's 64→128, 3 × 3 layer at 16 × 16, batch 8, and 0.28× on
//! its 1 × 1 shortcut, but 1.46× on its 128→256 layer at 8 × 8 (hence [`suits`]); against the
//! row loops 0.68× on a 64→128, 3 × 3 layer at 56 × 56, batch 1. In the conv bench the transposed convolution's
//! forward pass went from 2.07 to 1.57 ms (1.22 → 0.97× PyTorch's time), forward + backward
//! from 5.53 to 4.83 ms.

use std::ops::Range;

use rayon::prelude::*;

use super::channel_lanes::{
    block_sums, block_width, channel_groups, fills_channel_groups, group_channels, wide_blocks,
    TILE_POSITIONS, WIDE_TILE_POSITIONS,
};
use super::layout::{input_gradient_phases, GradientLayout, InputGradientPhase};
use super::pool::Buffer;
use super::tiles::lanes;
use super::ConvDims;
use crate::network::Element;

/// Whether the input gradient of `dims` should take this route rather than the row loops or
/// the grid GEMM:
/// - a stride other than 1 (stride 1 has one phase: `ChannelLanes::for_input_gradient`);
/// - input channels that fill groups of `2·lanes` (`channel_lanes::fills_channel_groups`);
/// - at least 32 taps in the fullest phase (`C_OUT·⌈K_H/s_h⌉·⌈K_W/s_w⌉`), as for the forward
///   channel lanes: with fewer, the element-at-a-time stores cost more than the block saves;
/// - at least 256 input positions over the batch, as for the stride-1 input gradient;
/// - at least 32 positions per phase and example: every block reads the phase's packed weights
///   (`C_OUT·taps·width`, 128 KiB a phase and group for ResNet-18's 128→256 layer), so each
///   example must reuse them over enough blocks. On that layer's 8 × 8 input (16 positions a
///   phase) this route took 1.46× the grid GEMM's time; on its 64→128 layer's 16 × 16 (64 a
///   phase) 0.83× (2 threads, minimum of 40 interleaved calls, Zen 5, 2026-11-25);
/// - 512-bit blocks, or phase rows narrower than the row loops' 16-position rows, as the
///   stride-1 rule (`channel_lanes::suits_input_gradient`). With AVX2 only (measured on the
///   Zen 5 machine with every 512-bit path switched off in a throwaway build, the same probe
///   as in the module docs): the DCGAN adjoint (rows of 16) took 1.12× the row loops' time
///   here, ResNet-18's 64→128 layers at 16 × 16 (rows of 8) 0.97× and 0.38× (1 × 1) the
///   grid's, 64→128 on 28 × 28 at batch 8 0.80×; 64→128 on 56 × 56 at batch 1 (rows of 28,
///   left on the row loops) 0.91×, a win this rule forgoes.
pub(crate) fn suits<E>(dims: &ConvDims) -> bool {
    let [s_h, s_w] = dims.stride;
    let phase_taps = dims.kernel[0].div_ceil(s_h) * dims.kernel[1].div_ceil(s_w);
    dims.stride != [1, 1]
        && fills_channel_groups::<E>(dims.c_in)
        && dims.c_out * phase_taps >= 32
        && dims.batch * dims.input[0] * dims.input[1] >= 256
        && dims.input[0] * dims.input[1] >= 32 * s_h * s_w
        && (wide_blocks() || dims.input[1].div_ceil(s_w) < 16)
}

/// The input gradient's phase correlations with channels in the lanes, set up once for all
/// examples: the bordered output gradient's layout, the groups of input channels
/// (`channel_groups`), and per phase its taps and, per group, its weights packed
/// `[tap][block width]`.
pub(crate) struct StridedLanes<E> {
    dims: ConvDims,
    gradient: GradientLayout,
    groups: Vec<Range<usize>>,
    phases: Vec<InputGradientPhase<E>>,
}

/// One task: the group's index, the run of phase rows, and the run's rows of each of the
/// group's channels.
type Task<'x, E> = (usize, Range<usize>, Vec<&'x mut [E]>);

impl<E: Element> StridedLanes<E> {
    /// `None` where the other routes are as fast ([`suits`]), unless `always`.
    pub(crate) fn for_input_gradient(dims: &ConvDims, weight: &[E], always: bool) -> Option<Self> {
        if !(always || suits::<E>(dims)) {
            return None;
        }
        let gradient = GradientLayout::new(dims);
        let groups = channel_groups::<E>(dims.c_in);
        let phases = input_gradient_phases(dims, &gradient, weight, &groups, block_width::<E>);
        Some(Self {
            dims: *dims,
            gradient,
            groups,
            phases,
        })
    }

    /// Adds `∂L/∂x` (`[B, C_IN, H, W]`) to `grad_x` from `grad_y` (`[B, C_OUT, O_H, O_W]`). One
    /// task per example: it borders the example's output gradient with zeros (a buffer of its
    /// own, reused by its next example), then runs its group × run tasks.
    pub(crate) fn add_to(&self, grad_y: &[E], grad_x: &mut [E]) {
        let dims = &self.dims;
        let image_y = dims.c_out * dims.output_plane();
        assert_eq!(grad_x.len(), dims.batch * dims.input_image());
        assert_eq!(grad_y.len(), dims.batch * image_y);
        if grad_x.is_empty() || image_y == 0 {
            return;
        }
        let runs = self.runs(dims.batch < rayon::current_num_threads());
        grad_x
            .par_chunks_mut(dims.input_image())
            .zip(grad_y.par_chunks(image_y))
            .for_each_init(
                || Buffer::take(self.gradient.len()),
                |padded, (grad_x, grad_y)| {
                    self.gradient.pad(grad_y, padded);
                    let padded = &padded[..];
                    self.tasks(grad_x, &runs)
                        .into_par_iter()
                        .for_each(|task| self.correlate(padded, task));
                },
            );
    }

    /// The runs of phase rows `m` each group is split into: all of them, or with fewer
    /// examples than threads about sixteen tasks per thread, as `ChannelLanes::runs`.
    fn runs(&self, few_examples: bool) -> Vec<Range<usize>> {
        let rows = self.dims.input[0].div_ceil(self.dims.stride[0]);
        let wanted = if few_examples {
            (16 * rayon::current_num_threads()).div_ceil(self.groups.len())
        } else {
            1
        };
        let runs = wanted.clamp(1, rows.max(1));
        (0..runs)
            .map(|k| k * rows / runs..(k + 1) * rows / runs)
            .collect()
    }

    /// One task per group and run: run `m₀ .. m₁` owns input rows `s_h·m₀ .. s_h·m₁` (the last
    /// run up to `H`) of each of the group's channels.
    fn tasks<'x>(&self, grad_x: &'x mut [E], runs: &[Range<usize>]) -> Vec<Task<'x, E>> {
        let [height, width] = self.dims.input;
        let s_h = self.dims.stride[0];
        let mut tasks: Vec<Task<'x, E>> = (0..self.groups.len())
            .flat_map(|g| runs.iter().map(move |run| (g, run.clone(), Vec::new())))
            .collect();
        // Every group but the last is as wide as the first.
        let group_width = self.groups[0].len();
        for (channel, mut plane) in grad_x.chunks_exact_mut(height * width).enumerate() {
            let group = channel / group_width;
            for task in &mut tasks[group * runs.len()..(group + 1) * runs.len()] {
                let rows = (s_h * task.1.end).min(height) - (s_h * task.1.start).min(height);
                let (part, rest) = std::mem::take(&mut plane).split_at_mut(rows * width);
                task.2.push(part);
                plane = rest;
            }
        }
        tasks
    }

    /// One task, in blocks of the group's width (as `ChannelLanes::correlate`).
    fn correlate(&self, src: &[E], task: Task<'_, E>) {
        const P: usize = TILE_POSITIONS;
        const WIDE_P: usize = WIDE_TILE_POSITIONS;
        let f32 = lanes::<E>() == 8;
        let full = task.2.len() > group_channels::<E>();
        match (f32, wide_blocks(), full) {
            (true, true, true) => self.correlate_with::<32, P>(src, task),
            (true, true, false) => self.correlate_with::<16, WIDE_P>(src, task),
            (true, false, _) => self.correlate_with::<16, P>(src, task),
            (false, true, true) => self.correlate_with::<16, P>(src, task),
            (false, true, false) => self.correlate_with::<8, WIDE_P>(src, task),
            (false, false, _) => self.correlate_with::<8, P>(src, task),
        }
    }

    /// Every phase's positions `(i, j)` with `m₀ ≤ i < m₁`, in blocks of `P` positions × `CH`
    /// channels, each sum added to input cell `(t_h + s_h·i, t_w + s_w·j)` of its channel.
    fn correlate_with<const CH: usize, const P: usize>(
        &self,
        src: &[E],
        (group, run, mut rows): Task<'_, E>,
    ) {
        let width = self.dims.input[1];
        let [s_h, s_w] = self.dims.stride;
        let src_row = self.gradient.plane[1];
        for phase in &self.phases {
            let [grid_rows, cols] = phase.grid;
            let end = run.end.min(grid_rows);
            if run.start >= end {
                continue;
            }
            let weights = &phase.weights[group][..];
            assert!(weights.len() >= phase.taps.len() * CH);
            // Every read is `base + tap` and every write `out` of a position below: the
            // largest of each, checked once, makes the unchecked loads in `block_sums` sound
            // (the writes are checked anyway).
            let last_base = (end - 1) * src_row + cols - 1;
            let last_tap = phase.taps.iter().max().copied().unwrap_or(0);
            assert!(
                last_base + last_tap < src.len(),
                "conv2d strided lanes: the window reads past its input"
            );
            let [t_h, t_w] = phase.target;
            let out_of =
                |(i, j): (usize, usize)| (s_h * (i - run.start) + t_h) * width + t_w + s_w * j;
            let positions = (end - run.start) * cols;
            let mut next = (run.start, 0);
            for start in (0..positions).step_by(P) {
                let n = (positions - start).min(P);
                // A short last block repeats its last position (whose copies are not stored).
                let mut cells = [next; P];
                for cell in &mut cells[..n] {
                    *cell = next;
                    next.1 += 1;
                    if next.1 == cols {
                        next = (next.0 + 1, 0);
                    }
                }
                let last = cells[n - 1];
                cells[n..].fill(last);
                let bases = cells.map(|(i, j)| i * src_row + j);
                // SAFETY: every read was checked above.
                let sums =
                    unsafe { block_sums::<E, CH, P>(src.as_ptr(), bases, &phase.taps, weights) };
                let outs = cells.map(out_of);
                for (r, row) in rows.iter_mut().enumerate() {
                    for (sums, &out) in sums[..n].iter().zip(&outs) {
                        row[out] += sums[r];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tasks cover every input element once, each task's rows are its run's rows of its
    /// own group's channels, and the runs cover every phase row.
    #[test]
    fn tasks_split_the_input_into_groups_and_runs() {
        for (c_in, input, stride, few_examples) in [
            (40, [15, 13], [2, 2], true),
            (16, [7, 9], [3, 2], true),
            (96, [3, 3], [2, 1], true),
            (33, [20, 13], [2, 3], false),
        ] {
            let dims = ConvDims::new(1, [c_in, 2], input, [3, 3], stride, [1, 1]).unwrap();
            let weight = vec![0.0f32; c_in * 2 * 9];
            let lanes = StridedLanes::for_input_gradient(&dims, &weight, true).unwrap();
            let runs = lanes.runs(few_examples);
            let phase_rows = input[0].div_ceil(stride[0]);
            assert_eq!(runs.first().unwrap().start, 0);
            assert_eq!(runs.last().unwrap().end, phase_rows);
            for pair in runs.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            let plane = input[0] * input[1];
            let mut x: Vec<f32> = (0..c_in * plane).map(|v| v as f32).collect();
            let expected = x.clone();
            let mut seen = vec![0u32; x.len()];
            for (group, run, rows) in lanes.tasks(&mut x, &runs) {
                assert_eq!(rows.len(), lanes.groups[group].len());
                for (r, row) in rows.iter().enumerate() {
                    let channel = lanes.groups[group].start + r;
                    let first = channel * plane + stride[0] * run.start * input[1];
                    for (k, &value) in row.iter().enumerate() {
                        assert_eq!(value, expected[first + k], "{c_in} {input:?}");
                        seen[first + k] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{c_in} {input:?}");
        }
    }

    /// The route's conditions, at the layers they were meant for.
    #[test]
    fn suits_strided_layers_with_channels_to_fill_the_lanes() {
        let conv = |batch, channels, input, kernel, stride, padding| {
            ConvDims::new(batch, channels, input, kernel, stride, padding).unwrap()
        };
        // The DCGAN layer's adjoint: 32 channels of 32 × 32 in, 64 of 16 × 16 out.
        let dcgan = conv(32, [32, 64], [32, 32], [4, 4], [2, 2], [1, 1]);
        let resnet_down = conv(8, [64, 128], [16, 16], [3, 3], [2, 2], [1, 1]);
        let stride_1 = conv(32, [32, 64], [32, 32], [3, 3], [1, 1], [1, 1]);
        let few_channels = conv(32, [8, 64], [32, 32], [4, 4], [2, 2], [1, 1]);
        let few_taps = conv(32, [32, 4], [32, 32], [4, 4], [2, 2], [1, 1]);
        let few_positions = conv(1, [32, 64], [8, 8], [4, 4], [2, 2], [1, 1]);
        let resnet_narrow = conv(8, [128, 256], [8, 8], [3, 3], [2, 2], [1, 1]);
        assert_eq!(suits::<f32>(&dcgan), wide_blocks(), "16-wide phase rows");
        assert!(suits::<f32>(&resnet_down), "8-wide phase rows");
        assert!(!suits::<f32>(&stride_1), "stride 1");
        assert!(!suits::<f32>(&few_channels), "lanes mostly empty");
        assert!(!suits::<f32>(&few_taps), "16 taps a phase");
        assert!(!suits::<f32>(&few_positions), "64 positions");
        assert!(!suits::<f32>(&resnet_narrow), "16 positions a phase");
    }
}
