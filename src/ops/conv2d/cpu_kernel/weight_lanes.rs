//! The weight gradient with output channels in the SIMD lanes:
//! `∂L/∂w[o, t] = Σ_{b, q} ∂L/∂y[b, o, q] · x_padded[b, tap(t) + position(q)]` over the
//! examples `b` and output positions `q`, for window taps `t = (c, u, v)` at
//! `tap(t) = (c·H_p + u)·W_p + v` and positions `q = (i, j)` at `position(q) = s_h·i·W_p + s_w·j`
//! in the zero-padded example (`H_p × W_p` per channel).
//!
//! It is [`super::channel_lanes`]' register block with the roles of taps and positions swapped:
//! a block holds [`TILE_POSITIONS`] *taps* × `2·lanes` output channels (6 × 16 in `f32`; with
//! AVX-512, 6 × 32, and 12 × 16 for a narrow last group), and its inner loop runs over output
//! positions — per position two vector loads of the output gradient (packed
//! `[position][channel]` per group of channels), six broadcasts of the input cells under the six
//! taps, read where they lie, and twelve fused multiply-adds. Against the
//! grid GEMM (`super::grid_gemm`) it packs only the output gradient, not the im2col matrix, and
//! reads the exact positions: the grid also runs over the padding's positions (18 × 18 for a
//! 16 × 16 output, 27% more).
//!
//! Measured against the backward pass before it (input gradient included, same in both; 2
//! threads, minimum of 20–30 calls interleaved call by call, two rounds, 2026-11-24): 64→64,
//! 3×3 on 16 × 16 at batch 32 0.72× (the weight gradient alone 6.4 → 3.6 ms), 32→32 on
//! 32 × 32 at batch 32 0.94×, VGG's 32→64 on 16 × 16 0.75–0.76×, LeNet-5's conv2 (6→16, 5×5,
//! batch 64) 0.62–0.65×, ResNet's layers in its 64 × 64 training step (batch 8): conv1 (7×7,
//! stride 2) 0.78–0.79×, 64→64 on 16 × 16 0.71–0.79×, the stride-2 3×3 0.90–0.91×, the 1×1
//! projection 0.76–0.79×, 128→128 on 8 × 8 0.82–0.86×; a 48→128, 5×5 group of AlexNet's conv2
//! 0.78–0.79×; `f64` 32→32 on 16 × 16 0.93–0.94×. Left to the other routes ([`suits`]):
//! VGG's 3→32 layer (27 taps, 1.12–1.20×) and ResNet's 4 × 4 maps (1.15–1.28×).
//!
//! # Order of the sums
//! Each weight's sum runs over the examples in order, each example's positions in runs of
//! [`POSITION_RUN`] (a block's sum over a run, then added to the weight's running sum). The
//! threads split the *weights* between them, never the sum, so the result is the same bits
//! with any number of threads.

use rayon::prelude::*;

use std::ops::Range;

use super::channel_lanes::{
    block_sums, block_width, channel_groups, fills_channel_groups, group_channels, pack_group,
    pad_planes, padded_size, wide_blocks, window_taps, TILE_POSITIONS, WIDE_TILE_POSITIONS,
};
use super::pool::Buffer;
use super::tiles::lanes;
use super::ConvDims;
use crate::network::Element;

/// Positions per block call: a run's packed output gradient (256 × 16 `f32`, 16 KiB) stays in
/// L1 while the blocks of all the group's taps read it.
const POSITION_RUN: usize = 256;

/// Whether the weight gradient of `dims` should take this route rather than the grid GEMM or
/// the dot products (measured: module docs):
/// - at least one group of `2·lanes` output channels, the last at most 1/8 empty unless there
///   are many (as for the forward route);
/// - at least 32 taps per window: the output gradient is packed and the input padded once per
///   call, which a small window does not repay (VGG's 3→32 layer ran 1.12–1.20× the old time);
/// - at least 64 output positions per example: each block call sums one example's run of
///   positions, and fewer do not repay its 96 stores (ResNet's 4 × 4 maps at batch 8 took
///   1.15–1.28× as long).
pub(crate) fn suits<E>(dims: &ConvDims) -> bool {
    fills_channel_groups::<E>(dims.c_out) && dims.window_len() >= 32 && dims.output_plane() >= 64
}

/// Adds `∂L/∂w` (`[C_OUT, C_IN, K_H, K_W]`, summed over the batch) to `grad_weight`, from the
/// input `x` (`[B, C_IN, H, W]`) and the output gradient `grad_y` (`[B, C_OUT, O_H, O_W]`).
pub(crate) fn add_weight_gradient<E: Element>(
    dims: &ConvDims,
    x: &[E],
    grad_y: &[E],
    grad_weight: &mut [E],
) {
    let window = dims.window_len();
    let plane = dims.output_plane();
    assert_eq!(x.len(), dims.batch * dims.input_image());
    assert_eq!(grad_y.len(), dims.batch * dims.c_out * plane);
    assert_eq!(grad_weight.len(), dims.c_out * window);
    if grad_weight.is_empty() || plane == 0 || dims.batch == 0 {
        return;
    }
    let padded = padded_size(dims);
    let padded_x = (dims.padding != [0, 0]).then(|| pad_batch(dims, padded, x));
    let src: &[E] = padded_x.as_deref().unwrap_or(x);
    // The groups wider than `2·lanes` (512-bit blocks only: `channel_groups`) in blocks of
    // `4·lanes` channels, and the rest (a narrower last group, or every group) in blocks of
    // `2·lanes`, as `ChannelLanes::correlate` picks them.
    let groups = channel_groups::<E>(dims.c_out);
    let full = |group: &&Range<usize>| block_width::<E>(group) > group_channels::<E>();
    let full_end = groups.iter().rev().find(full).map_or(0, |g| g.end);
    for (channels, full) in [(0..full_end, true), (full_end..dims.c_out, false)] {
        if channels.is_empty() {
            continue;
        }
        let args = (dims, src, channels, grad_y, &mut *grad_weight);
        const P: usize = TILE_POSITIONS;
        const WIDE_P: usize = WIDE_TILE_POSITIONS;
        match (lanes::<E>() == 8, wide_blocks(), full) {
            (true, true, true) => add_weight_gradient_with::<E, 32, P>(args),
            (true, true, false) => add_weight_gradient_with::<E, 16, WIDE_P>(args),
            (true, false, _) => add_weight_gradient_with::<E, 16, P>(args),
            (false, true, true) => add_weight_gradient_with::<E, 16, P>(args),
            (false, true, false) => add_weight_gradient_with::<E, 8, WIDE_P>(args),
            (false, false, _) => add_weight_gradient_with::<E, 8, P>(args),
        }
    }
}

/// What [`add_weight_gradient_with`] works on: the layer, its input (zero-padded when the
/// layer pads), the output channels to take, the output gradient and the weight gradient.
type WeightGradientArgs<'a, E> = (&'a ConvDims, &'a [E], Range<usize>, &'a [E], &'a mut [E]);

/// [`add_weight_gradient`] for the output `channels`, in blocks of `P` taps × `CH` channels.
fn add_weight_gradient_with<E: Element, const CH: usize, const P: usize>(
    (dims, src, channels, grad_y, grad_weight): WeightGradientArgs<'_, E>,
) {
    let window = dims.window_len();
    let plane = dims.output_plane();
    let padded = padded_size(dims);
    let example_len = dims.c_in * padded[0] * padded[1];

    let taps = window_taps(dims, padded);
    let [out_h, out_w] = dims.output;
    let [s_h, s_w] = dims.stride;
    let positions: Vec<usize> = (0..out_h)
        .flat_map(|i| (0..out_w).map(move |j| s_h * i * padded[1] + s_w * j))
        .collect();
    // Every read is `example + tap + position`: the largest of each, checked once, makes the
    // unchecked loads in `block_sums` sound.
    let last = (dims.batch - 1) * example_len + taps[window - 1] + positions[plane - 1];
    assert!(
        last < src.len(),
        "conv2d weight lanes: a window reads past its input"
    );

    let groups = channels.len().div_ceil(CH);
    let gradient = pack_gradient::<E, CH>(dims, grad_y, &channels);
    let tap_blocks = window.div_ceil(P);
    let tiles = groups * tap_blocks;
    // Contiguous ranges of tiles (group-major), one per thread: each range reads the whole
    // batch once, so more ranges would read it more often.
    let parts = rayon::current_num_threads().clamp(1, tiles);
    let part_sums: Vec<Vec<[[E; CH]; P]>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let part_tiles = part * tiles / parts..(part + 1) * tiles / parts;
            let mut sums = vec![[[E::zero(); CH]; P]; part_tiles.len()];
            for b in 0..dims.batch {
                for run_start in (0..plane).step_by(POSITION_RUN) {
                    let run = run_start..(run_start + POSITION_RUN).min(plane);
                    for (tile, sum) in part_tiles.clone().zip(&mut sums) {
                        let (group, block) = (tile / tap_blocks, tile % tap_blocks);
                        // A short last block repeats the last tap (its sums are discarded).
                        let bases = core::array::from_fn(|k| {
                            b * example_len + taps[(block * P + k).min(window - 1)]
                        });
                        let weights = &gradient[((b * groups + group) * plane + run.start) * CH..]
                            [..run.len() * CH];
                        // SAFETY: every read was checked above; `weights` holds `run.len()·CH`.
                        let block = unsafe {
                            block_sums::<E, CH, P>(
                                src.as_ptr(),
                                bases,
                                &positions[run.clone()],
                                weights,
                            )
                        };
                        for (sum, block) in sum.iter_mut().zip(&block) {
                            for (s, &v) in sum.iter_mut().zip(block) {
                                *s += v;
                            }
                        }
                    }
                }
            }
            sums
        })
        .collect();
    for (tile, sums) in part_sums.iter().flatten().enumerate() {
        let (group, block) = (tile / tap_blocks, tile % tap_blocks);
        for (k, sums) in sums.iter().enumerate() {
            let t = block * P + k;
            if t >= window {
                break;
            }
            for (r, &sum) in sums.iter().enumerate() {
                let o = channels.start + group * CH + r;
                if o < channels.end {
                    grad_weight[o * window + t] += sum;
                }
            }
        }
    }
}

/// The batch with a zero border: `[B, C_IN, H_p, W_p]`.
fn pad_batch<E: Element>(dims: &ConvDims, padded: [usize; 2], x: &[E]) -> Buffer<E> {
    let mut buffer = Buffer::take(dims.batch * dims.c_in * padded[0] * padded[1]);
    pad_planes(dims, padded, x, &mut buffer, true);
    buffer
}

/// The output gradient of `channels` as `[B, group, O_H·O_W, CH]`: each group of `CH` of them
/// side by side per position, zero past the last.
fn pack_gradient<E: Element, const CH: usize>(
    dims: &ConvDims,
    grad_y: &[E],
    channels: &Range<usize>,
) -> Buffer<E> {
    let plane = dims.output_plane();
    let groups = channels.len().div_ceil(CH);
    let mut packed = Buffer::take(dims.batch * groups * plane * CH);
    packed
        .par_chunks_mut(plane * CH)
        .enumerate()
        .for_each(|(index, packed)| {
            let (b, group) = (index / groups, index % groups);
            let start = channels.start + group * CH;
            let rows = start..(start + CH).min(channels.end);
            let rows = &grad_y[(b * dims.c_out + rows.start) * plane..][..rows.len() * plane];
            pack_group(rows, packed, CH);
        });
    packed
}
