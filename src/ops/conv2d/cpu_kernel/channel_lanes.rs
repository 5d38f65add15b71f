//! The forward pass with output *channels* in the SIMD lanes: the route for most layers at
//! batch 1 and for strided or oddly sized ones at any batch (which layers: [`suits`]); and the
//! input gradient of stride-1 layers on narrow inputs, as the same correlation with flipped
//! filters ([`ChannelLanes::for_input_gradient`]).
//!
//! [`super::tiles::correlate`] puts output *positions* in the lanes, so a row of positions must
//! read consecutive input cells: with stride `s` the input is first split into `s_h·s_w` phase
//! planes (a gather of the whole example, 5% of AlexNet's conv1), a 55-wide row fills its
//! 16-position blocks unevenly, and at batch 1 the tiles of 6 channels are the only
//! parallelism (64 channels: 11 tiles on 2 threads). Here a register block holds
//! [`TILE_POSITIONS`] output positions × `2·lanes` output channels (6 × 16 in `f32`): per
//! window tap, two vector loads of packed weights, one broadcast of the input cell under each
//! position and twelve fused multiply-adds. A broadcast reads any address, so
//! - the input is read where it lies (a zero-padded copy only when there is padding), and the
//!   stride costs nothing;
//! - the positions run in one flat sequence over the output plane, with no partly empty block
//!   at the end of each row;
//! - the work splits into groups of 16 channels × runs of positions, as many as the threads
//!   need.
//!
//! The price is the write: a block's sums are `[position][channel]` and the output
//! `[channel][position]`, so each block is stored one element at a time (96 stores against
//! `12·taps` multiply-adds), which is why windows of few taps stay on the other route.
//!
//! On a CPU with AVX-512 (chosen at run time, [`wide_blocks`]; the same bits as the AVX2 block)
//! the block is [`TILE_POSITIONS`] positions × 32 channels, two 512-bit registers of sums per
//! position, and a last group of at most 16 channels takes [`WIDE_TILE_POSITIONS`] × 16. On
//! the Zen 5 machine of `BENCHMARKS.md` (2026-11-25) the 64→64, 16 × 16 forward pass (conv
//! bench) took 2.56 ms with the AVX2 block, 2.07 ms with 6 × 16 in 512-bit registers, 1.79–1.91
//! ms with 12 × 16 and 1.37 ms with 6 × 32 (PyTorch 1.28 ms).
//!
//! Measured against the position route (2 threads, batch 1, minimum of 100–300 interleaved
//! calls, 2026-11-24): AlexNet conv1 0.85×, ResNet-18's conv1 0.94×, its 3×3 layers on 56 × 56
//! and 28 × 28 0.80–0.83×, and against the grid GEMM on 14 × 14 0.83–0.91× (`BENCHMARKS.md`).

use std::ops::Range;

use num_traits::Float;
use rayon::prelude::*;

use super::pool::Buffer;
#[cfg(target_arch = "x86_64")]
use super::tiles::{has_avx2_fma, has_avx512f};
use super::tiles::{lanes, MAX_LANES, PORTABLE_FMA};
use super::ConvDims;
use crate::network::Element;

/// Output positions one register block holds.
pub(crate) const TILE_POSITIONS: usize = 6;

/// Output positions the register block of a group of only `2·lanes` channels holds on a CPU
/// with AVX-512 ([`wide_blocks`]): one 512-bit register of sums per position, twelve of them,
/// as the AVX2 block's 6 × 2 — enough independent multiply-adds to cover their latency (six
/// were not: 64→64 forward at 292 GFLOP/s against 469 for PyTorch's oneDNN on the Zen 5
/// machine).
pub(crate) const WIDE_TILE_POSITIONS: usize = 12;

/// The multiple of positions every run of positions holds: a whole number of blocks of any
/// group.
fn block_positions() -> usize {
    if wide_blocks() {
        WIDE_TILE_POSITIONS
    } else {
        TILE_POSITIONS
    }
}

/// Whether the register blocks are 512-bit (AVX-512): [`TILE_POSITIONS`] positions (the weight
/// gradient: taps) × [`wide_group_channels`], and for a last group of at most
/// [`group_channels`], [`WIDE_TILE_POSITIONS`] × [`group_channels`]; otherwise
/// [`TILE_POSITIONS`] × [`group_channels`].
pub(super) fn wide_blocks() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx512f()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Output channels one register block holds: two 256-bit vectors of `E` (16 `f32`, 8 `f64`).
pub(super) const fn group_channels<E>() -> usize {
    2 * lanes::<E>()
}

/// Output channels one 512-bit register block holds ([`wide_blocks`]): two 512-bit vectors of
/// `E`, 32 `f32` or 16 `f64`. Six positions × two registers make twelve registers of sums, as
/// the 12 × 1 block, but with two multiply-adds per broadcast instead of one: in a single-thread
/// probe on the Zen 5 machine (64→64, 3×3 on 16 × 16, 2026-11-25) 260 GFLOP/s against 193 for
/// 12 × 16, whose twelve window pointers do not fit in the general registers (two were
/// reloaded from the stack every tap).
pub(super) const fn wide_group_channels<E>() -> usize {
    4 * lanes::<E>()
}

/// The groups of output channels of a layer with `channels` of them, one register block wide
/// each: of [`group_channels`], or with 512-bit blocks of [`wide_group_channels`] but for a
/// last group of at most [`group_channels`] (48 channels: 32 + 16, not 32 + 32 half empty).
pub(super) fn channel_groups<E>(channels: usize) -> Vec<Range<usize>> {
    let width = if wide_blocks() {
        wide_group_channels::<E>()
    } else {
        group_channels::<E>()
    };
    (0..channels.div_ceil(width))
        .map(|g| g * width..((g + 1) * width).min(channels))
        .collect()
}

/// Channels the register block of `group` holds (the packed weights' width): a whole number
/// of 256-bit vectors' lanes, at least the group's channels.
pub(super) fn block_width<E>(group: &Range<usize>) -> usize {
    if group.len() > group_channels::<E>() {
        wide_group_channels::<E>()
    } else {
        group_channels::<E>()
    }
}

/// Whether a forward pass should take this route rather than the position route or the grid
/// GEMM (measured; module docs and `BENCHMARKS.md`):
/// - at least one group of `2·lanes` output channels, the last group at most 1/8 empty unless
///   there are many (24 channels would fill 32 lanes);
/// - at least 32 taps per window: with fewer, storing a block one element at a time costs more
///   than the other routes' waste (LeNet's 1→32, 5×5 layer ran 4% slower here);
/// - at least 128 output positions over the batch: the weights are packed once per call, and
///   fewer positions do not repay it (ResNet's 7 × 7 maps at batch 1 ran 1.35× slower here
///   than on the grid GEMM, which reads the weights in place).
pub(crate) fn suits<E>(dims: &ConvDims) -> bool {
    fills_channel_groups::<E>(dims.c_out)
        && dims.window_len() >= 32
        && dims.batch * dims.output_plane() >= 128
}

/// Whether `channels` fill groups of `2·lanes` well enough for this route: at least one group,
/// and the last at most 1/8 empty unless there are many (24 channels would fill 32 lanes).
pub(super) fn fills_channel_groups<E>(channels: usize) -> bool {
    let group = group_channels::<E>();
    channels >= group && (channels.is_multiple_of(group) || channels >= 8 * group)
}

/// Packs one group's `rows` (each `packed.len() / width` long, at most `width` of them) as
/// `packed[k·width + r] = rows[r][k]`, zero past the last row: a group of channels side by
/// side per tap (weights) or per position (output gradients), `width` a [`block_width`].
///
/// In chunks of 16 values (64 bytes of `f32`) of every row: the rows of an output gradient lie
/// a plane apart, 4 KiB for a 32 × 32 plane, so they all fall into one set of the L1 cache, and
/// walking them side by side one value at a time read each cache line again from L2 for each
/// of its 16 values (0.72 ms of the 2.1 ms weight gradient of 32→32 on 32 × 32 at batch 32; the
/// transposed order, one row at a time, took longer than ResNet's 7 × 7 layers' whole forward
/// pass). A chunk reads one line of each row and writes `16 × width` values that stay in L1.
pub(super) fn pack_group<E: Element>(rows: &[E], packed: &mut [E], width: usize) {
    const CHUNK: usize = 16;
    let len = packed.len() / width;
    let count = rows.len() / len.max(1);
    debug_assert!(count <= width && rows.len() == count * len);
    for (chunk, packed) in packed.chunks_mut(CHUNK * width).enumerate() {
        let start = chunk * CHUNK;
        let positions = packed.len() / width;
        for r in 0..width {
            let column = packed[r..].iter_mut().step_by(width);
            if r < count {
                let row = &rows[r * len + start..][..positions];
                column.zip(row).for_each(|(p, &v)| *p = v);
            } else {
                column.for_each(|p| *p = E::zero());
            }
        }
    }
}

/// Copies every `H × W` plane of `x` (one example's channels, or a batch's) into consecutive
/// planes of `buffer` with a zero border (`padded`: `[height, width]` with the border).
pub(super) fn pad_planes<E: Element>(
    dims: &ConvDims,
    padded: [usize; 2],
    x: &[E],
    buffer: &mut [E],
    parallel: bool,
) {
    let [height, width] = dims.input;
    let [pad_h, pad_w] = dims.padding;
    let fill = |(plane, channel): (&mut [E], &[E])| {
        plane.fill(E::zero());
        for (r, row) in channel.chunks_exact(width).enumerate() {
            let start = (r + pad_h) * padded[1] + pad_w;
            plane[start..start + width].copy_from_slice(row);
        }
    };
    let (padded_plane, plane) = (padded[0] * padded[1], height * width);
    if parallel {
        buffer
            .par_chunks_mut(padded_plane)
            .zip(x.par_chunks(plane))
            .for_each(fill);
    } else {
        buffer
            .chunks_mut(padded_plane)
            .zip(x.chunks(plane))
            .for_each(fill);
    }
}

/// `[height, width]` of the zero-padded input.
pub(super) fn padded_size(dims: &ConvDims) -> [usize; 2] {
    [0, 1].map(|axis| dims.input[axis] + 2 * dims.padding[axis])
}

/// The offset of every window tap `(c, u, v)`, in the weights' order, in a zero-padded example
/// of `padded` (`[height, width]`) planes.
pub(super) fn window_taps(dims: &ConvDims, padded: [usize; 2]) -> Vec<usize> {
    let mut taps = Vec::with_capacity(dims.window_len());
    for c in 0..dims.c_in {
        for u in 0..dims.kernel[0] {
            for v in 0..dims.kernel[1] {
                taps.push((c * padded[0] + u) * padded[1] + v);
            }
        }
    }
    taps
}

/// How a block's sums meet the output.
#[derive(Debug, Clone, Copy)]
enum Store<'a, E> {
    /// `y = sum + bias`, then the ReLU with `relu` (a forward pass).
    Bias { bias: &'a [E], relu: bool },
    /// `y += sum` (an input gradient).
    Accumulate,
}

/// The [`Store`] modes as the constants the loops are compiled for.
const BIAS: u8 = 0;
const BIAS_RELU: u8 = 1;
const ACCUMULATE: u8 = 2;

/// What one task correlates: the example, the group's packed weights, its bias, the run of
/// positions and the run's part of each of the group's output rows.
type CorrelateArgs<'s, 'y, E> = (&'s [E], &'s [E], &'s [E], Range<usize>, Vec<&'y mut [E]>);

/// Whether the input gradient of `dims` (stride 1), computed as the correlation `gradient`,
/// should take this route: where that correlation [`suits`] it, the batch has at least 256
/// input positions, and either the input is narrower than the row loops' 16-position rows (so
/// the grid GEMM would take it) or the blocks are 512-bit ([`wide_blocks`]: twelve registers
/// of sums, where the row loops' 512-bit copy keeps six, one per channel of its tile). Measured forward + backward, 2 threads: with AVX2, minimum of 60 interleaved
/// calls, 128 channels on 8 × 8 at batch 8 0.89–0.92× the grid's time; 256 on 4 × 4 (128
/// positions) 1.02–1.06×, hence the floor; 32 on 32 × 32 at batch 32 1.02–1.03× the row
/// loops', hence only narrow inputs; 64 on 16 × 16 and 48→128, 5 × 5 on 27 × 27 within ±4%.
/// With AVX-512 (the conv bench, Zen 5, 2026-11-25), 32→32 on 32 × 32 0.91× and 64→64 on
/// 16 × 16 0.85× the forward + backward time on the row loops.
fn suits_input_gradient<E>(dims: &ConvDims, gradient: &ConvDims) -> bool {
    suits::<E>(gradient)
        && dims.batch * dims.input[0] * dims.input[1] >= 256
        && (dims.input[1] < 16 || wide_blocks())
}

/// The forward correlation with channels in the lanes, set up once for all examples: the
/// zero-padded input's sizes, the offset of every window tap in it, and the weights packed
/// `[tap][channel]` per group of output channels ([`channel_groups`]; zero past `C_OUT`).
pub(crate) struct ChannelLanes<E> {
    dims: ConvDims,
    /// `[height, width]` of the zero-padded input.
    padded: [usize; 2],
    taps: Vec<usize>,
    groups: Vec<Range<usize>>,
    weights: Vec<Vec<E>>,
}

impl<E: Element> ChannelLanes<E> {
    pub(crate) fn new(dims: &ConvDims, weight: &[E]) -> Self {
        let padded = padded_size(dims);
        let taps = window_taps(dims, padded);
        let groups = channel_groups::<E>(dims.c_out);
        let window = dims.window_len();
        let weights = groups
            .par_iter()
            .map(|group| {
                let width = block_width::<E>(group);
                let mut packed = vec![E::zero(); window * width];
                let rows = &weight[group.start * window..group.end * window];
                pack_group(rows, &mut packed, width);
                packed
            })
            .collect();
        Self {
            dims: *dims,
            padded,
            taps,
            groups,
            weights,
        }
    }

    /// The input gradient of a stride-1 convolution as a correlation on this route: `∂L/∂x`
    /// is `∂L/∂y`, zero-bordered by `K − 1 − p`, correlated with the filters flipped in both
    /// axes and their input and output channels swapped (`C_IN` output channels). `None` for
    /// a stride other than 1 or a padding wider than `K − 1`, and, unless `always`, where the
    /// other routes are as fast ([`suits_input_gradient`]).
    pub(crate) fn for_input_gradient(dims: &ConvDims, weight: &[E], always: bool) -> Option<Self> {
        if dims.stride != [1, 1] {
            return None;
        }
        let [k_h, k_w] = dims.kernel;
        let padding = [
            (k_h - 1).checked_sub(dims.padding[0])?,
            (k_w - 1).checked_sub(dims.padding[1])?,
        ];
        let gradient = ConvDims::new(
            dims.batch,
            [dims.c_out, dims.c_in],
            dims.output,
            dims.kernel,
            [1, 1],
            padding,
        )?;
        debug_assert_eq!(gradient.output, dims.input);
        if !(always || suits_input_gradient::<E>(dims, &gradient)) {
            return None;
        }
        // `flipped[c, o, u, v] = weight[o, c, K_H − 1 − u, K_W − 1 − v]`.
        let taps = k_h * k_w;
        let mut flipped = vec![E::zero(); weight.len()];
        for (c, filters) in flipped.chunks_exact_mut(dims.c_out * taps).enumerate() {
            for (o, filter) in filters.chunks_exact_mut(taps).enumerate() {
                let from = &weight[(o * dims.c_in + c) * taps..][..taps];
                for (to, &w) in filter.iter_mut().zip(from.iter().rev()) {
                    *to = w;
                }
            }
        }
        Some(Self::new(&gradient, &flipped))
    }

    /// Elements of one zero-padded example.
    fn padded_len(&self) -> usize {
        self.dims.c_in * self.padded[0] * self.padded[1]
    }

    /// `y = conv(x) + bias`, then `y = max(y, 0)` with `relu` (NaN kept, as in PyTorch), for
    /// the whole batch, written over `y` (`[B, C_OUT, O_H, O_W]`).
    pub(crate) fn forward(&self, x: &[E], bias: &[E], relu: bool, y: &mut [E]) {
        assert_eq!(bias.len(), self.dims.c_out);
        self.run(x, Store::Bias { bias, relu }, y);
    }

    /// `y += conv(x)` for the whole batch (`y`: `[B, C_OUT, O_H, O_W]`).
    pub(crate) fn add_to(&self, x: &[E], y: &mut [E]) {
        self.run(x, Store::Accumulate, y);
    }

    /// One task per example; within it, one per group of channels and run of positions
    /// ([`Self::runs`]).
    fn run(&self, x: &[E], store: Store<'_, E>, y: &mut [E]) {
        let dims = &self.dims;
        let image = dims.input_image();
        let plane = dims.output_plane();
        assert_eq!(x.len(), dims.batch * image);
        assert_eq!(y.len(), dims.batch * dims.c_out * plane);
        if y.is_empty() {
            return;
        }
        let padding = dims.padding != [0, 0];
        let few_examples = dims.batch < rayon::current_num_threads();
        let runs = self.runs(few_examples);
        let zeros = [E::zero(); 4 * MAX_LANES];
        y.par_chunks_mut(dims.c_out * plane)
            .enumerate()
            .for_each_init(
                || Buffer::take(if padding { self.padded_len() } else { 0 }),
                |padded, (b, y)| {
                    let x = &x[b * image..(b + 1) * image];
                    let src = if padding {
                        self.pad(x, padded, few_examples);
                        &padded[..]
                    } else {
                        x
                    };
                    self.tasks(y, &runs)
                        .into_par_iter()
                        .for_each(|(group, positions, rows)| {
                            let channels = self.groups[group].clone();
                            let weights = &self.weights[group][..];
                            let (bias, mode) = match store {
                                Store::Bias { bias, relu } => {
                                    (&bias[channels], if relu { BIAS_RELU } else { BIAS })
                                }
                                Store::Accumulate => (&zeros[..channels.len()], ACCUMULATE),
                            };
                            let args = (src, weights, bias, positions, rows);
                            match mode {
                                BIAS => self.correlate::<BIAS>(args),
                                BIAS_RELU => self.correlate::<BIAS_RELU>(args),
                                _ => self.correlate::<ACCUMULATE>(args),
                            }
                        });
                },
            );
    }

    /// The runs of output positions each group of channels is split into: the whole plane,
    /// or with fewer examples than threads, enough runs (whole blocks each) for about sixteen
    /// tasks per thread: with four, AlexNet's conv1 at batch 1 made 9 tasks of its 3 groups of
    /// 32 channels for 2 threads (5 on one), and took 6–8% longer (two A/B runs, Zen 5,
    /// 2026-11-25).
    fn runs(&self, few_examples: bool) -> Vec<Range<usize>> {
        let positions = self.dims.output_plane();
        let block = block_positions();
        let blocks = positions.div_ceil(block);
        let wanted = if few_examples {
            (16 * rayon::current_num_threads()).div_ceil(self.groups.len())
        } else {
            1
        };
        // At least 8 blocks a run: a task switch costs about as much as a block.
        let runs = wanted.min(blocks / 8).max(1);
        (0..runs)
            .map(|k| {
                let start = (k * blocks / runs * block).min(positions);
                let end = ((k + 1) * blocks / runs * block).min(positions);
                start..end
            })
            .collect()
    }

    /// One task per group of channels and run of positions: the group's index, the run, and
    /// the run's part of the output row of each of the group's channels.
    #[allow(clippy::type_complexity)]
    fn tasks<'y>(
        &self,
        y: &'y mut [E],
        runs: &[Range<usize>],
    ) -> Vec<(usize, Range<usize>, Vec<&'y mut [E]>)> {
        let positions = self.dims.output_plane();
        let mut tasks: Vec<_> = (0..self.groups.len())
            .flat_map(|g| runs.iter().map(move |run| (g, run.clone(), Vec::new())))
            .collect();
        // Every group but the last is as wide as the first.
        let width = self.groups[0].len();
        for (channel, mut row) in y.chunks_exact_mut(positions).enumerate() {
            let group = channel / width;
            for task in &mut tasks[group * runs.len()..(group + 1) * runs.len()] {
                let (part, rest) = std::mem::take(&mut row).split_at_mut(task.1.len());
                task.2.push(part);
                row = rest;
            }
        }
        tasks
    }

    /// Copies one example into `buffer` with a zero border.
    fn pad(&self, x: &[E], buffer: &mut [E], parallel: bool) {
        pad_planes(&self.dims, self.padded, x, buffer, parallel);
    }

    /// One group's channels (`rows[r]`: channel `r`'s outputs at `positions`) from the example
    /// `src` (zero-padded when the layer pads): `(src, weights, bias, positions, rows)`, stored
    /// as `STORE` says.
    fn correlate<const STORE: u8>(&self, args: CorrelateArgs<'_, '_, E>) {
        const P: usize = TILE_POSITIONS;
        const WIDE_P: usize = WIDE_TILE_POSITIONS;
        let f32 = lanes::<E>() == 8;
        let full = args.4.len() > group_channels::<E>();
        match (f32, wide_blocks(), full) {
            (true, true, true) => self.correlate_with::<32, STORE, P>(args),
            (true, true, false) => self.correlate_with::<16, STORE, WIDE_P>(args),
            (true, false, _) => self.correlate_with::<16, STORE, P>(args),
            (false, true, true) => self.correlate_with::<16, STORE, P>(args),
            (false, true, false) => self.correlate_with::<8, STORE, WIDE_P>(args),
            (false, false, _) => self.correlate_with::<8, STORE, P>(args),
        }
    }

    /// [`Self::correlate`] in blocks of `P` positions × `CH` channels.
    fn correlate_with<const CH: usize, const STORE: u8, const P: usize>(
        &self,
        (src, weights, bias, positions, mut rows): CorrelateArgs<'_, '_, E>,
    ) {
        let [out_h, out_w] = self.dims.output;
        let [s_h, s_w] = self.dims.stride;
        let row_step = s_h * self.padded[1];
        // Every read is `base + tap` for the window base of some position and some tap: the
        // largest of each, checked once, makes the unchecked loads in `block_sums` sound.
        let last_base = (out_h - 1) * row_step + (out_w - 1) * s_w;
        let last = last_base + self.taps.iter().max().copied().unwrap_or(0);
        assert!(
            last < src.len(),
            "conv2d channel lanes: the window reads past its input"
        );
        assert!(weights.len() >= self.taps.len() * CH);
        assert!(bias.len() <= CH && rows.len() == bias.len());
        assert!(rows.iter().all(|row| row.len() == positions.len()));
        let last_position = positions.end.saturating_sub(1);
        // The next position's column, and the window base of its row's first position.
        let (mut j, mut row_base) = (positions.start % out_w, positions.start / out_w * row_step);
        let mut position = positions.start;
        for start in (0..positions.len()).step_by(P) {
            let bases = core::array::from_fn(|_| {
                let base = row_base + j * s_w;
                // A short last block repeats the last position (its copies are discarded).
                if position < last_position {
                    position += 1;
                    j += 1;
                    if j == out_w {
                        j = 0;
                        row_base += row_step;
                    }
                }
                base
            });
            // SAFETY: every read was checked above.
            let sums = unsafe { block_sums::<E, CH, P>(src.as_ptr(), bases, &self.taps, weights) };
            let store = |out: &mut E, sum: E, bias: E| {
                let value = sum + bias;
                *out = match STORE {
                    ACCUMULATE => *out + sum,
                    // A select, not `max`, which would turn NaN into 0.
                    BIAS_RELU if value <= E::zero() => E::zero(),
                    _ => value,
                };
            };
            let n = (positions.len() - start).min(P);
            let rows = rows.iter_mut().zip(bias).enumerate();
            if n == P {
                for (r, (row, &bias)) in rows {
                    let out: &mut [E; P] = (&mut row[start..start + P]).try_into().unwrap();
                    for (o, sums) in out.iter_mut().zip(&sums) {
                        store(o, sums[r], bias);
                    }
                }
            } else {
                for (r, (row, &bias)) in rows {
                    for (o, sums) in row[start..start + n].iter_mut().zip(&sums) {
                        store(o, sums[r], bias);
                    }
                }
            }
        }
    }
}

/// The register block, `sums[k][r] = Σ_t weights[t·CH + r] · src[bases[k] + taps[t]]` for
/// [`TILE_POSITIONS`] positions `k` and `CH` channels `r`, in its AVX2 + FMA copy when the
/// CPU has them.
///
/// # Safety
/// `src + bases[k] + taps[t]` must be readable for every `k` and `t`, and `weights` must hold
/// `taps.len()·CH` values.
#[inline(always)]
pub(super) unsafe fn block_sums<E: Float, const CH: usize, const P: usize>(
    src: *const E,
    bases: [usize; P],
    taps: &[usize],
    weights: &[E],
) -> [[E; CH]; P] {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512f() {
            return block_sums_avx512::<E, CH, P>(src, bases, taps, weights.as_ptr());
        }
        if has_avx2_fma() {
            return block_sums_avx2::<E, CH, P>(src, bases, taps, weights.as_ptr());
        }
    }
    block_sums_with::<E, CH, P, PORTABLE_FMA>(src, bases, taps, weights.as_ptr())
}

/// The same loop with 512-bit vectors: a group's `2·lanes` channels (16 `f32`, 8 `f64`) in one
/// register per position, so six multiply-adds per tap instead of twelve. The sums are the same
/// bits as the AVX2 copy's: each lane adds the same products in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn block_sums_avx512<E: Float, const CH: usize, const P: usize>(
    src: *const E,
    bases: [usize; P],
    taps: &[usize],
    weights: *const E,
) -> [[E; CH]; P] {
    block_sums_with::<E, CH, P, true>(src, bases, taps, weights)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_sums_avx2<E: Float, const CH: usize, const P: usize>(
    src: *const E,
    bases: [usize; P],
    taps: &[usize],
    weights: *const E,
) -> [[E; CH]; P] {
    block_sums_with::<E, CH, P, true>(src, bases, taps, weights)
}

/// Per tap: `CH / lanes` vector loads of weights, one broadcast per position, and
/// `TILE_POSITIONS · CH / lanes` multiply-adds into accumulators that stay in registers
/// (checked in the assembly: 12 `vfmadd231ps` on registers, 6 `vbroadcastss`, 2 `vmovups`).
///
/// # Safety
/// As for [`block_sums`].
#[inline(always)]
unsafe fn block_sums_with<E: Float, const CH: usize, const P: usize, const FMA: bool>(
    src: *const E,
    bases: [usize; P],
    taps: &[usize],
    weights: *const E,
) -> [[E; CH]; P] {
    let at: [*const E; P] = bases.map(|base| src.add(base));
    let mut sums = [[E::zero(); CH]; P];
    for (t, &tap) in taps.iter().enumerate() {
        let w = weights.add(t * CH).cast::<[E; CH]>().read_unaligned();
        for (sums, at) in sums.iter_mut().zip(&at) {
            let x = *at.add(tap);
            for (sum, &w) in sums.iter_mut().zip(&w) {
                *sum = if FMA {
                    x.mul_add(w, *sum)
                } else {
                    x * w + *sum
                };
            }
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(batch: usize, c_out: usize, output: [usize; 2]) -> ConvDims {
        // A 1×1 kernel at stride 1 makes the output the input's size.
        ConvDims::new(batch, [2, c_out], output, [1, 1], [1, 1], [0, 0]).unwrap()
    }

    /// The tasks cover every output element once, each task's rows are its run of its own
    /// group's channels, and the runs are whole blocks.
    #[test]
    fn tasks_split_the_output_into_groups_and_runs() {
        for (c_out, output, few_examples) in [
            (40, [55, 55], true),
            (16, [7, 9], true),
            (96, [3, 3], true),
            (33, [20, 13], false),
        ] {
            let dims = dims(1, c_out, output);
            let weight = vec![0.0f32; c_out * 2];
            let lanes = ChannelLanes::new(&dims, &weight);
            let runs = lanes.runs(few_examples);
            let positions = dims.output_plane();
            assert_eq!(runs.first().unwrap().start, 0);
            assert_eq!(runs.last().unwrap().end, positions);
            for pair in runs.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(pair[0].len() % block_positions(), 0);
            }
            let mut y: Vec<f32> = (0..c_out * positions).map(|v| v as f32).collect();
            let expected = y.clone();
            let mut seen = vec![0u32; y.len()];
            for (group, run, rows) in lanes.tasks(&mut y, &runs) {
                assert_eq!(rows.len(), lanes.groups[group].len());
                for (r, row) in rows.iter().enumerate() {
                    let channel = lanes.groups[group].start + r;
                    for (k, &value) in row.iter().enumerate() {
                        let index = channel * positions + run.start + k;
                        assert_eq!(value, expected[index], "{c_out} {output:?}");
                        seen[index] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{c_out} {output:?}");
        }
    }

    /// Groups are one register block wide, but for a last group of at most `2·lanes` channels
    /// with 512-bit blocks, which takes the narrower block rather than one half empty.
    #[test]
    fn channel_groups_cover_the_channels_a_block_wide() {
        let widths = |channels: usize| -> Vec<(usize, usize)> {
            let groups = channel_groups::<f32>(channels);
            assert_eq!(groups.first().map_or(0, |g| g.start), 0);
            assert_eq!(groups.last().map_or(0, |g| g.end), channels);
            for pair in groups.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            let widths = groups.iter().map(|g| (g.len(), block_width::<f32>(g)));
            widths.collect()
        };
        if wide_blocks() {
            assert_eq!(widths(48), [(32, 32), (16, 16)]);
            assert_eq!(widths(56), [(32, 32), (24, 32)]);
            assert_eq!(widths(64), [(32, 32), (32, 32)]);
            assert_eq!(widths(16), [(16, 16)]);
            assert_eq!(channel_groups::<f64>(40).len(), 3);
        } else {
            assert_eq!(widths(48), [(16, 16), (16, 16), (16, 16)]);
            assert_eq!(widths(40), [(16, 16), (16, 16), (8, 16)]);
        }
    }

    /// Every copy of the register block — 512-bit, AVX2 and portable, and the one `block_sums`
    /// picks — gives the same bits at every block size in both precisions: each lane adds the
    /// same products in the same order, so the routes' results do not depend on the CPU.
    #[test]
    fn every_copy_of_the_block_gives_the_same_bits() {
        fn check<E: Float, const CH: usize, const P: usize>() {
            let value = |i: usize, m: usize| E::from((i * 7919 % m) as f64 / 333.0 - 1.5).unwrap();
            let taps: Vec<usize> = (0..37).map(|t| 3 * t + t % 5).collect();
            let src: Vec<E> = (0..400).map(|i| value(i, 1000)).collect();
            let weights: Vec<E> = (0..taps.len() * CH).map(|i| value(i, 997)).collect();
            let bases: [usize; P] = core::array::from_fn(|k| 5 * k + 1);
            let bits = |block: [[E; CH]; P]| -> Vec<u64> {
                let values = block.iter().flatten();
                values.map(|v| v.to_f64().unwrap().to_bits()).collect()
            };
            let (src, w) = (src.as_ptr(), weights.as_ptr());
            // SAFETY: the largest read is src[5·(P − 1) + 1 + 112] < 400; `weights` holds
            // `taps.len()·CH` values.
            let portable = bits(unsafe { block_sums_with::<E, CH, P, true>(src, bases, &taps, w) });
            let picked = bits(unsafe { block_sums::<E, CH, P>(src, bases, &taps, &weights) });
            assert_eq!(picked, portable);
            #[cfg(target_arch = "x86_64")]
            {
                if has_avx2_fma() {
                    let avx2 = unsafe { block_sums_avx2::<E, CH, P>(src, bases, &taps, w) };
                    assert_eq!(bits(avx2), portable);
                }
                if has_avx512f() {
                    let avx512 = unsafe { block_sums_avx512::<E, CH, P>(src, bases, &taps, w) };
                    assert_eq!(bits(avx512), portable);
                }
            }
        }
        check::<f32, 16, TILE_POSITIONS>();
        check::<f32, 16, WIDE_TILE_POSITIONS>();
        check::<f32, 32, TILE_POSITIONS>();
        check::<f64, 8, TILE_POSITIONS>();
        check::<f64, 8, WIDE_TILE_POSITIONS>();
        check::<f64, 16, TILE_POSITIONS>();
    }

    /// The route's conditions, at the layers they were measured on.
    #[test]
    fn suits_the_layers_it_was_measured_faster_on() {
        let conv = |batch, channels, input, kernel, stride, padding| {
            ConvDims::new(batch, channels, input, kernel, stride, padding).unwrap()
        };
        let alexnet_conv1 = conv(1, [3, 96], [227, 227], [11, 11], [4, 4], [0, 0]);
        let resnet_56 = conv(1, [64, 64], [56, 56], [3, 3], [1, 1], [1, 1]);
        let resnet_7 = conv(1, [512, 512], [7, 7], [3, 3], [1, 1], [1, 1]);
        let lenet_wide = conv(64, [1, 32], [28, 28], [5, 5], [1, 1], [2, 2]);
        let lenet_conv1 = conv(64, [1, 6], [32, 32], [5, 5], [1, 1], [0, 0]);
        let channels_24 = conv(1, [64, 24], [56, 56], [3, 3], [1, 1], [1, 1]);
        assert!(suits::<f32>(&alexnet_conv1) && suits::<f32>(&resnet_56));
        assert!(!suits::<f32>(&resnet_7), "too few positions");
        assert!(!suits::<f32>(&lenet_wide), "too few taps");
        assert!(!suits::<f32>(&lenet_conv1), "too few channels");
        assert!(
            !suits::<f32>(&channels_24) && suits::<f64>(&channels_24),
            "a third empty"
        );

        let weight = |dims: &ConvDims| vec![0.0f32; dims.c_out * dims.window_len()];
        let takes_input_gradient = |dims: ConvDims| {
            ChannelLanes::for_input_gradient(&dims, &weight(&dims), false).is_some()
        };
        let resnet_8 = conv(8, [128, 128], [8, 8], [3, 3], [1, 1], [1, 1]);
        let resnet_4 = conv(8, [256, 256], [4, 4], [3, 3], [1, 1], [1, 1]);
        let wide = conv(32, [32, 32], [32, 32], [3, 3], [1, 1], [1, 1]);
        let strided = conv(8, [128, 128], [8, 8], [3, 3], [2, 2], [1, 1]);
        assert!(takes_input_gradient(resnet_8));
        assert!(!takes_input_gradient(resnet_4), "too few positions");
        assert_eq!(
            takes_input_gradient(wide),
            wide_blocks(),
            "rows for the row loops, unless the blocks are 512-bit"
        );
        assert!(!takes_input_gradient(strided), "stride 2");
    }
}
