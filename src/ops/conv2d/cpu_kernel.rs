//! The fast CPU kernel of [`super::try_conv2d`], forward and backward, as one custom dfdx op:
//! direct convolution with register-tiled SIMD loops (this file, `tiles`, `layout`), and matrix
//! products on [`crate::gemm`] over the whole batch (`grid_gemm`).
//!
//! # Which route
//! - Forward pass ([`ForwardRoute::for_dims`]): output channels in the SIMD lanes
//!   (`channel_lanes`) for every layer with at least 16 output channels, 32 taps per window and
//!   128 output positions over the batch — the input read where it lies, any stride, positions
//!   in one flat run (AlexNet's conv1 0.85×, ResNet-18's 3×3 layers at batch 1 0.80–0.85× the
//!   time of the routes below); otherwise `grid_gemm` for outputs narrower than 16 with at
//!   least 32 output channels (ResNet's 7 × 7 maps at batch 1, the 2 × 2 ones of its training
//!   step), in `f32`; otherwise the row loops described below (LeNet's 1→6 layer).
//! - Input gradient: channel lanes at stride 1 for inputs narrower than 16 with at least 256
//!   positions over the batch, as a correlation with the flipped filters (ResNet's 8 × 8 maps
//!   in its training step: 0.89–0.92× the grid's time), and for inputs of any width on a CPU
//!   with AVX-512, where the lanes' blocks hold twelve 512-bit registers of sums (12 positions
//!   × 16 channels when measured, 6 × 32 since) and the row loops' six (32→32 on 32 × 32
//!   0.91×, 64→64 on 16 × 16 0.85× the forward + backward time); at stride > 1 channel lanes
//!   once per stride phase of the input (`strided_lanes`, the conditions in
//!   [`strided_lanes::suits`]: the DCGAN layer's transposed convolution forward 0.78×,
//!   ResNet-18's 64→128 stride-2 layers at 16 × 16 0.28–0.83× the time of the routes below);
//!   the row loops for outputs at least 16 wide, whose rows fill the register tiles (no packing, so they beat the GEMM there: 32→32,
//!   3×3 on 32 × 32 at ~150 GFLOP/s direct against ~85 through the GEMM); `grid_gemm` for
//!   narrower outputs with at least 32 output channels, in `f32`.
//! - Weight gradient: output channels in the SIMD lanes (`weight_lanes`: the forward block with
//!   taps and positions swapped, summing over positions) from 16 output channels, 32 taps and
//!   64 output positions per example on, in `f32` and `f64` — 0.62–0.94× the time of the
//!   backward pass before it, the input gradient included (`BENCHMARKS.md`); otherwise
//!   `grid_gemm` in `f32` from 32 output channels on, for a finite input (ResNet's 4 × 4 and
//!   2 × 2 maps, VGG's 3→32 layer); the per-example dot products below otherwise (`f64` on
//!   small maps, LeNet's 6-channel layer, an input holding an infinity). The dot products
//!   reached 25–45% of the machine's GEMM rate.
//!
//! The rest of these docs describe the row loops.
//! # What it computes
//! The same as `reference.rs`: `y[b, o, i, j] = bias[o] + Σ_{c,u,v} w[o, c, u, v] ·
//! x[b, c, s_h·i + u − p_h, s_w·j + v − p_w]`, and on backward `∂L/∂x`, `∂L/∂w` and `∂L/∂bias`,
//! each added to the gradient already there.
//!
//! # Layout
//! No im2col matrix: the loops read the input where it lies, in a padded copy of one example.
//! - Each task pads one example and splits it into stride phases ([`layout::PhaseLayout`];
//!   with stride 1 simply the zero-padded images), in a buffer the size of one input image.
//!   With fewer examples than threads (inference at batch 1) the phase planes are filled, the
//!   weights packed and the output zeroed on all threads, not on one while the others wait.
//!   There every window tap `(c, u, v)` is a fixed offset and output position `(i, j)` adds
//!   `i·row + j`, so a row of output positions reads consecutive elements.
//! - Forward: per example and tile of up to 6 output channels, [`tiles::correlate`] keeps a
//!   6 × 16-position block of outputs (`f32`; 6 × 8 for `f64`) in registers across all
//!   `C_IN·K_H·K_W` taps — per tap two vector loads, six broadcasts, twelve fused multiply-adds —
//!   and writes it once, bias added, straight into `[B, C_OUT, O_H, O_W]`.
//! - `∂L/∂x`: per example, the output gradient with a zero border ([`layout::GradientLayout`])
//!   correlated with the flipped, transposed filters, once per stride phase of the input: the
//!   forward loop again, a gather rather than im2col's scatter-add, so no two tasks write one
//!   cell.
//! - `∂L/∂w[o, c, u, v] = Σ_{b,i,j} ∂L/∂y[b, o, i, j] · x_padded[b, c, s_h·i + u, s_w·j + v]`:
//!   dot products of the same bordered gradient with the input's shifted windows,
//!   [`tiles::accumulate_window_dots`], vectorised along rows; `∂L/∂bias` sums the gradient.
//!   Each thread sums its examples into buffers of its own, added together at the end.
//!
//! # Why it is fast
//! The multiply-adds run from registers, close to the rate of the FMA units: a tile's source
//! rows (a few rows of every input channel) and its packed weights stay in L1, an example's
//! buffers in L2, and nothing larger than one example is materialised besides the input copy
//! kept for the backward pass. The big host buffers are reused between calls (`pool`), since a
//! fresh one costs a page fault per 4 KiB. Measured on the 2-core Zen 3 (AVX2 + FMA) machine of
//! `BENCHMARKS.md`, `f32`, counting `2·B·O_H·O_W·C_OUT·C_IN·K_H·K_W` per pass (the conv bench,
//! 2026-11-24 23:29 UTC, on the routes above):
//!
//! | layer | forward | forward + backward |
//! |---|---|---|
//! | 32→32, 3×3, padding 1, 32×32, batch 32 | 165 GFLOP/s | 125 GFLOP/s (86¹) |
//! | 64→64, 3×3, padding 1, 16×16, batch 32 | 175 GFLOP/s | 149 GFLOP/s |
//! | 1→6, 5×5, 32×32, batch 64 (LeNet conv1) | 81 GFLOP/s | 43 GFLOP/s |
//!
//! ¹ In runs where glibc had returned the memory of the step's fresh buffers (the output, and
//! dfdx's gradients of the output and the input) to the OS, and the step paid page faults to
//! map it again; raising glibc's trim threshold, or dfdx's allocation cache
//! (`Cpu::enable_cache`), avoided that in our runs.
//!
//! The reference reaches 1–16 GFLOP/s forward + backward on the same layers.
//!
//! Reading a dfdx tensor from outside the crate takes a copy: `Tensor::copy_into`, a `memcpy`
//! on `Cpu` (after `try_contiguous`, free unless the tensor is a strided view), is the cheapest
//! public way; the output is handed over without one (`try_tensor_from_vec`).

mod channel_lanes;
pub(crate) mod grid_gemm;
mod layout;
pub(crate) mod pool;
mod strided_lanes;
mod tiles;
pub(crate) mod weight_lanes;

use crate::ops::activations::Function;
use crate::ops::host::HostValues;
use crate::parallel::reduction_group_len;
use std::ops::Range;

use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use rayon::prelude::*;

pub(crate) use self::layout::all_finite;
use self::layout::{
    channel_tiles, forward_weights, input_gradient_phases, split_by_tiles, GradientLayout,
    InputGradientPhase, PhaseLayout,
};
pub(crate) use self::pool::Buffer;
use self::tiles::{accumulate_window_dots, correlate, OutputLayout, Store, Window, TILE_CHANNELS};
use super::Conv2dGeometry;
use crate::layers::Conv2d;
use crate::network::Element;

/// The sizes of one convolution, all known only at run time: what the kernel works with, so
/// that one compiled copy serves every layer shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvDims {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    /// `[height, width]` of each of the following.
    pub input: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub output: [usize; 2],
}

impl ConvDims {
    /// The sizes of a convolution, with the output size computed from the others; `None` when
    /// the window does not fit (see [`output_len`]).
    pub(crate) fn new(
        batch: usize,
        [c_in, c_out]: [usize; 2],
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Option<Self> {
        let output = [
            output_len(input[0], kernel[0], stride[0], padding[0])?,
            output_len(input[1], kernel[1], stride[1], padding[1])?,
        ];
        Some(Self {
            batch,
            c_in,
            c_out,
            input,
            kernel,
            stride,
            padding,
            output,
        })
    }

    pub(crate) fn window_len(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    pub(crate) fn input_image(&self) -> usize {
        self.c_in * self.input[0] * self.input[1]
    }

    pub(crate) fn output_plane(&self) -> usize {
        self.output[0] * self.output[1]
    }
}

/// Window positions along one axis, `⌊(input + 2·padding − kernel)/stride⌋ + 1`; `None` for a
/// zero input, kernel or stride, a kernel larger than the padded input, or an overflow — the
/// cases `crate::shape::conv_output_size` rejects (a property test holds the two equal).
pub(crate) fn output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Option<usize> {
    if input == 0 || kernel == 0 || stride == 0 {
        return None;
    }
    let padded = input.checked_add(padding.checked_mul(2)?)?;
    (padded.checked_sub(kernel)? / stride).checked_add(1)
}

/// The dfdx op: runs [`forward`] and records [`backward`] on the tape. The caller has checked
/// that `O_H` and `O_W` follow from the geometry.
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
    T: Tape<E, Cpu>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Cpu, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, Cpu>,
    geometry: Conv2dGeometry,
    relu: bool,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Cpu, T>, CpuError> {
    let batch = x.shape().0;
    let dims = ConvDims::new(
        batch.size(),
        [C_IN, C_OUT],
        [H, W],
        [K_H, K_W],
        geometry.stride,
        geometry.padding,
    )
    .filter(|dims| dims.output == [O_H, O_W])
    .unwrap_or_else(|| panic!("conv2d kernel: no {O_H}×{O_W} output for {geometry:?}"));

    // An input traced with `traced_input` gets no gradient, as in PyTorch (`crate::trace`).
    let input_gradient = !(T::OWNS_TAPE && crate::trace::take_gradient_unwanted(&x));
    // `try_contiguous` is free for a contiguous tensor (the usual case) and otherwise copies
    // with a backward op of its own, so `copy_into` below reads the logical order.
    let (x, tape) = x.try_contiguous()?.split_tape();
    // The parameters join on the input's tape, which holds the gradients they accumulate into
    // (what dfdx's `Linear` does through its matmul).
    let (weight, weight_tape) = layer.weight.retaped::<T>().try_contiguous()?.split_tape();
    let (bias, bias_tape) = layer.bias.retaped::<T>().try_contiguous()?.split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);

    // Read where dfdx keeps them (`ops::host`), and kept so for the backward pass.
    let x_values = HostValues::of(&x);
    let weight_values = HostValues::of(&weight);
    let y = forward(
        &dims,
        &x_values,
        &weight_values,
        &HostValues::of(&bias),
        relu,
    );
    let y = x
        .device()
        .try_tensor_from_vec(y, (batch, Const, Const, Const))?;

    if T::OWNS_TAPE {
        // The ReLU's mask is read from the output, shared with dfdx rather than copied.
        let kept_output = relu.then(|| HostValues::of(&y));
        let (x, weight, bias, out) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the other three can be
            // borrowed mutably in turn without copying it.
            let grad_y = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            // The gradient at the convolution's output: `∂y` where the ReLU passed it, else 0.
            let mut grad_before_relu = Buffer::<E>::take(0);
            let grad_z: &[E] = match &kept_output {
                Some(output) => {
                    grad_before_relu = Buffer::take(grad_y.len());
                    Function::Relu.backward(output, &grad_y, &mut grad_before_relu);
                    &grad_before_relu
                }
                None => &grad_y,
            };
            let mut grad_weight = std::mem::take(&mut **grads.get_or_alloc_mut(&weight)?);
            let grad_x = match input_gradient {
                true => Some(&mut grads.get_or_alloc_mut(&x)?[..]),
                false => None,
            };
            let grad_bias = backward(
                &dims,
                &x_values,
                &weight_values,
                grad_z,
                grad_x,
                &mut grad_weight,
            );
            drop(grad_before_relu);
            **grads.get_or_alloc_mut(&weight)? = grad_weight;
            add_into(grads.get_or_alloc_mut(&bias)?, &grad_bias);
            **grads.get_or_alloc_mut(&out)? = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

pub(crate) fn host_copy<S: dfdx::shapes::Shape, E: Element>(tensor: &Tensor<S, E, Cpu>) -> Vec<E> {
    let mut values = vec![E::zero(); tensor.shape().num_elements()];
    tensor.copy_into(&mut values);
    values
}

pub(crate) fn add_into<E: Element>(sum: &mut [E], values: &[E]) {
    for (s, &v) in sum.iter_mut().zip(values) {
        *s += v;
    }
}

/// Which loops compute a forward pass (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardRoute {
    /// Output channels in the SIMD lanes (`channel_lanes`).
    ChannelLanes,
    /// The whole batch's positions as one GEMM (`grid_gemm`), in `f32`.
    Grid,
    /// A row of output positions in the SIMD lanes (`tiles::correlate`).
    RowLanes,
}

impl ForwardRoute {
    /// The fastest route for `dims` in `E`, as measured (`BENCHMARKS.md`).
    pub(crate) fn for_dims<E: 'static>(dims: &ConvDims) -> Self {
        if channel_lanes::suits::<E>(dims) {
            Self::ChannelLanes
        } else if grid_gemm::prefers_grid(dims) && grid_gemm::takes::<E>() {
            Self::Grid
        } else {
            Self::RowLanes
        }
    }
}

/// `y = conv(x, weight) + bias`, then `y = relu(y)` with `relu`: `[B, C_OUT, O_H, O_W]`
/// row-major, from `x` (`[B, C_IN, H, W]`) and `weight` (`[C_OUT, C_IN, K_H, K_W]`), on the
/// route [`ForwardRoute::for_dims`] picks.
pub(crate) fn forward<E: Element>(
    dims: &ConvDims,
    x: &[E],
    weight: &[E],
    bias: &[E],
    relu: bool,
) -> Vec<E> {
    forward_by(
        ForwardRoute::for_dims::<E>(dims),
        dims,
        x,
        weight,
        bias,
        relu,
    )
}

/// [`forward`] on a given route (the grid only in `f32`).
///
/// On the row route, [`correlate_rows`], one task per example.
pub(crate) fn forward_by<E: Element>(
    route: ForwardRoute,
    dims: &ConvDims,
    x: &[E],
    weight: &[E],
    bias: &[E],
    relu: bool,
) -> Vec<E> {
    assert_eq!(x.len(), dims.batch * dims.input_image());
    assert_eq!(weight.len(), dims.c_out * dims.window_len());
    assert_eq!(bias.len(), dims.c_out);
    let plane = dims.output_plane();
    let mut y = crate::parallel::zeroed(dims.batch * dims.c_out * plane);
    if y.is_empty() {
        return y;
    }
    match route {
        ForwardRoute::ChannelLanes => {
            // The ReLU is applied as each block is stored: no second pass over the output.
            channel_lanes::ChannelLanes::new(dims, weight).forward(x, bias, relu, &mut y);
            return y;
        }
        ForwardRoute::Grid => {
            assert!(
                grid_gemm::forward(dims, x, weight, Some(bias), &mut y),
                "conv2d kernel: the grid route runs in f32 only"
            );
        }
        ForwardRoute::RowLanes => correlate_rows(dims, x, weight, &mut y, Some(bias)),
    }
    if relu {
        Function::Relu.apply(&mut y);
    }
    y
}

/// Adds `∂L/∂x` to `grad_x` (`[B, C_IN, H, W]`) from `grad_y` (`[B, C_OUT, O_H, O_W]`): the
/// input-gradient part of [`backward`] on its own, which is also the forward pass of the
/// transposed convolution with the same weights (`conv_transpose2d/cpu_kernel.rs`).
///
/// One task per example, as in [`backward`]: it borders the example's output gradient with
/// zeros and correlates it with the flipped filters, once per stride phase.
pub(crate) fn input_gradient<E: Element>(
    dims: &ConvDims,
    weight: &[E],
    grad_y: &[E],
    grad_x: &mut [E],
) {
    let plane_y = dims.output_plane();
    assert_eq!(weight.len(), dims.c_out * dims.window_len());
    assert_eq!(grad_x.len(), dims.batch * dims.input_image());
    assert_eq!(grad_y.len(), dims.batch * dims.c_out * plane_y);
    if grad_x.is_empty() || grad_y.is_empty() {
        // No example, no input channel (nothing to write) or no output channel (nothing to add).
        return;
    }
    if let Some(lanes) = channel_lanes::ChannelLanes::for_input_gradient(dims, weight, false) {
        lanes.add_to(grad_y, grad_x);
        return;
    }
    if let Some(lanes) = strided_lanes::StridedLanes::for_input_gradient(dims, weight, false) {
        lanes.add_to(grad_y, grad_x);
        return;
    }
    if grid_gemm::prefers_grid(dims) && grid_gemm::add_input_gradient(dims, weight, grad_y, grad_x)
    {
        return;
    }
    let correlation = InputGradientCorrelation::new(dims, weight);
    grad_x
        .par_chunks_mut(dims.input_image())
        .zip(grad_y.par_chunks(dims.c_out * plane_y))
        .for_each_init(
            || Buffer::take(correlation.gradient.len()),
            |padded, (grad_x, grad_y)| {
                correlation.gradient.pad(grad_y, padded);
                correlation.add_example(padded, grad_x);
            },
        );
}

/// `y += conv(x, weight)` (no bias) for the whole batch, `y`: `[B, C_OUT, O_H, O_W]`, from `x`
/// (`[B, C_IN, H, W]`): the forward pass's correlation, added to what `y` holds. It is the
/// transposed convolution's input gradient (`conv_transpose2d/cpu_kernel.rs`), on the channel
/// lanes where a forward pass takes them ([`ForwardRoute::for_dims`]), otherwise on the row
/// loops, one task per example (the grid only writes, so it is not a route here).
pub(crate) fn add_correlation<E: Element>(dims: &ConvDims, x: &[E], weight: &[E], y: &mut [E]) {
    assert_eq!(x.len(), dims.batch * dims.input_image());
    assert_eq!(weight.len(), dims.c_out * dims.window_len());
    let image_y = dims.c_out * dims.output_plane();
    assert_eq!(y.len(), dims.batch * image_y);
    if y.is_empty() {
        return;
    }
    if channel_lanes::suits::<E>(dims) {
        channel_lanes::ChannelLanes::new(dims, weight).add_to(x, y);
        return;
    }
    correlate_rows(dims, x, weight, y, None);
}

/// The row route of the forward correlation for the whole batch: `y = conv(x) + bias`, or
/// `y += conv(x)` without a bias. One task per example: it pads and phase-splits the example
/// into a buffer of its own (reused by the task's next example) and runs one correlation per
/// tile of output channels, the tiles in parallel too when there are fewer examples than
/// threads.
fn correlate_rows<E: Element>(
    dims: &ConvDims,
    x: &[E],
    weight: &[E],
    y: &mut [E],
    bias: Option<&[E]>,
) {
    let correlation = ForwardCorrelation::new(dims, weight);
    let few_examples = dims.batch < rayon::current_num_threads();
    y.par_chunks_mut(dims.c_out * dims.output_plane())
        .zip(x.par_chunks(dims.input_image()))
        .for_each_init(
            || Buffer::take(correlation.input.len()),
            |phased, (y, x)| {
                correlation.input.fill(x, phased, few_examples);
                correlation.example(phased, y, bias);
            },
        );
}

/// The backward pass: adds `∂L/∂x` to `grad_x` (`[B, C_IN, H, W]`) and `∂L/∂w` to
/// `grad_weight` (`[C_OUT, C_IN, K_H, K_W]`), and returns `∂L/∂bias`, summed over the batch,
/// from `grad_y` (`[B, C_OUT, O_H, O_W]`).
///
/// In `f32` (module docs): the input gradient by [`input_gradient`] and the weight gradient by
/// one GEMM (`grid_gemm`), added straight into `grad_weight`. Otherwise one task per example: it
/// borders the example's output gradient with zeros (a buffer of the size of one output image,
/// which stays in L2 for both uses), correlates it with the flipped filters into the example's
/// input gradient, once per stride phase (see `layout`), the tiles of input channels in
/// parallel too when there are fewer examples than threads, and adds the example's weight
/// gradient to its group's sum; the groups are a fixed partition of the batch
/// ([`reduction_group_len`]), added together in order at the end.
pub(crate) fn backward<E: Element>(
    dims: &ConvDims,
    x: &[E],
    weight: &[E],
    grad_y: &[E],
    grad_x: Option<&mut [E]>,
    grad_weight: &mut [E],
) -> Vec<E> {
    let window_len = dims.window_len();
    let plane_y = dims.output_plane();
    assert_eq!(x.len(), dims.batch * dims.input_image());
    assert_eq!(weight.len(), dims.c_out * window_len);
    assert_eq!(grad_weight.len(), weight.len());
    if let Some(grad_x) = &grad_x {
        assert_eq!(grad_x.len(), dims.batch * dims.input_image());
    }
    assert_eq!(grad_y.len(), dims.batch * dims.c_out * plane_y);
    let mut grad_bias = vec![E::zero(); dims.c_out];
    add_channel_sums(grad_y, plane_y, &mut grad_bias);
    if dims.batch == 0 || plane_y == 0 || dims.input_image() == 0 {
        // No example or no output position (no gradient at all), or no input channel (only
        // the bias has a gradient).
        return grad_bias;
    }
    if weight_lanes::suits::<E>(dims) {
        weight_lanes::add_weight_gradient(dims, x, grad_y, grad_weight);
        if let Some(grad_x) = grad_x {
            input_gradient(dims, weight, grad_y, grad_x);
        }
        return grad_bias;
    }
    if grid_gemm::add_weight_gradient(dims, x, grad_y, grad_weight) {
        if let Some(grad_x) = grad_x {
            input_gradient(dims, weight, grad_y, grad_x);
        }
        return grad_bias;
    }
    // The input gradient on its own where channel lanes take it (any stride), not per example
    // beside the weight gradient's dot products.
    let mut grad_x = grad_x;
    if let Some(image_gradients) = grad_x.as_deref_mut() {
        if let Some(lanes) = channel_lanes::ChannelLanes::for_input_gradient(dims, weight, false) {
            lanes.add_to(grad_y, image_gradients);
            grad_x = None;
        } else if let Some(lanes) =
            strided_lanes::StridedLanes::for_input_gradient(dims, weight, false)
        {
            lanes.add_to(grad_y, image_gradients);
            grad_x = None;
        }
    }
    let dots = WeightGradientDots::new(dims);
    let sums = || {
        (
            Buffer::zeroed(dims.c_out * window_len),
            // The example's padded input and bordered output gradient, reused from one example
            // to the next.
            Buffer::take(dots.input.len()),
            Buffer::take(dots.gradient.len()),
        )
    };
    let input_gradient = grad_x
        .is_some()
        .then(|| InputGradientCorrelation::new(dims, weight));
    // One input-gradient slice per example, or none at all.
    let mut grad_x_images: Vec<Option<&mut [E]>> = match grad_x {
        Some(grad_x) => grad_x.chunks_mut(dims.input_image()).map(Some).collect(),
        None => (0..dims.batch).map(|_| None).collect(),
    };
    // A fixed partition of the batch, summed in order: rayon's adaptive `fold` would group the
    // examples differently from run to run, and training would not repeat bit for bit.
    let group = reduction_group_len(dims.batch);
    let group_sums: Vec<_> = grad_x_images
        .par_chunks_mut(group)
        .zip(x.par_chunks(group * dims.input_image()))
        .zip(grad_y.par_chunks(group * dims.c_out * plane_y))
        .map(|((grad_x_images, x), grad_y)| {
            let (mut sum, mut phased, mut padded) = sums();
            for ((grad_x, x), grad_y) in grad_x_images
                .iter_mut()
                .zip(x.chunks(dims.input_image()))
                .zip(grad_y.chunks(dims.c_out * plane_y))
            {
                dots.input.fill(x, &mut phased, false);
                let finite = all_finite(x);
                dots.gradient.pad(grad_y, &mut padded);
                if let (Some(correlation), Some(grad_x)) = (&input_gradient, grad_x) {
                    correlation.add_example(&padded, grad_x);
                }
                dots.add_example(&padded, &phased, finite, &mut sum);
            }
            sum
        })
        .collect();
    for sum in &group_sums {
        add_into(grad_weight, sum);
    }
    grad_bias
}

/// Adds the sum of every `plane` consecutive values of `values` to `sums`, channel after channel
/// and wrapping around (`values` is `[B, C, plane]` and `sums` has `C` elements): the bias
/// gradient.
pub(crate) fn add_channel_sums<E: Element>(values: &[E], plane: usize, sums: &mut [E]) {
    if sums.is_empty() || plane == 0 {
        return;
    }
    // Every plane in parallel, each in eight interleaved partial sums (a single running sum is
    // one dependent add per element: 4 ms for one VGG-small step's four layers, serially).
    let plane_sums: Vec<E> = values.par_chunks(plane).map(sum_in_lanes).collect();
    for (c, sum) in plane_sums.into_iter().enumerate() {
        sums[c % sums.len()] += sum;
    }
}

/// `Σ values`, in eight interleaved partial sums that the compiler can keep in one vector.
fn sum_in_lanes<E: Element>(values: &[E]) -> E {
    let mut lanes = [E::zero(); 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let tail = rest.iter().fold(E::zero(), |s, &v| s + v);
    lanes.iter().fold(tail, |s, &v| s + v)
}

/// The forward correlation, set up once for all examples: the layout of a padded,
/// phase-split example, the offset of every window tap in it, and the weights packed per tile
/// of output channels.
pub(crate) struct ForwardCorrelation<E> {
    /// The buffer [`Self::example`] reads, filled with [`PhaseLayout::fill`].
    pub input: PhaseLayout,
    dims: ConvDims,
    tiles: Vec<Range<usize>>,
    weights: Vec<Vec<E>>,
    taps: Vec<usize>,
}

impl<E: Element> ForwardCorrelation<E> {
    pub(crate) fn new(dims: &ConvDims, weight: &[E]) -> Self {
        let tiles = channel_tiles(dims.c_out);
        let weights = forward_weights(dims, weight, &tiles);
        let input = PhaseLayout::new(dims);
        let taps = input.window_taps(dims.kernel);
        Self {
            input,
            dims: *dims,
            tiles,
            weights,
            taps,
        }
    }

    /// One example's output `y` (`[C_OUT, O_H, O_W]`) from its input `phased`, filled by
    /// [`Self::input`]: `y = conv + bias`, or `y += conv` without a bias. The tiles of output
    /// channels run in parallel.
    pub(crate) fn example(&self, phased: &[E], y: &mut [E], bias: Option<&[E]>) {
        let plane = self.dims.output_plane();
        let window = Window {
            src: phased,
            origin: 0,
            row_stride: self.input.plane[1],
            taps: &self.taps,
        };
        let layout = OutputLayout {
            start: 0,
            channel_stride: plane,
            row_stride: self.dims.output[1],
            col_stride: 1,
        };
        let grid = self.dims.output;
        split_by_tiles(y, &self.tiles, plane)
            .into_par_iter()
            .zip(&self.tiles)
            .zip(&self.weights)
            .for_each(|((out, tile), weights)| {
                let store = match bias {
                    Some(bias) => Store::Bias(&bias[tile.clone()]),
                    None => Store::Accumulate,
                };
                correlate(window, weights, tile.len(), grid, out, layout, store);
            });
    }
}

/// The input-gradient correlations, set up once for all examples: the layout of a bordered
/// output gradient, and per stride phase of the input its taps and packed weights (`layout`).
pub(crate) struct InputGradientCorrelation<E> {
    /// The buffer [`Self::add_example`] reads, filled with [`GradientLayout::pad`].
    pub gradient: GradientLayout,
    dims: ConvDims,
    tiles: Vec<Range<usize>>,
    phases: Vec<InputGradientPhase<E>>,
}

impl<E: Element> InputGradientCorrelation<E> {
    pub(crate) fn new(dims: &ConvDims, weight: &[E]) -> Self {
        let gradient = GradientLayout::new(dims);
        let tiles = channel_tiles(dims.c_in);
        let phases = input_gradient_phases(dims, &gradient, weight, &tiles, |_| TILE_CHANNELS);
        Self {
            gradient,
            dims: *dims,
            tiles,
            phases,
        }
    }

    /// Adds one example's input gradient to `grad_x` (`[C_IN, H, W]`), from its output
    /// gradient `padded`, filled by [`Self::gradient`]. The tiles of input channels run in
    /// parallel.
    pub(crate) fn add_example(&self, padded: &[E], grad_x: &mut [E]) {
        let dims = &self.dims;
        let image_x = dims.input[0] * dims.input[1];
        split_by_tiles(grad_x, &self.tiles, image_x)
            .into_par_iter()
            .enumerate()
            .for_each(|(t, out)| {
                for phase in &self.phases {
                    let window = Window {
                        src: padded,
                        origin: 0,
                        row_stride: self.gradient.plane[1],
                        taps: &phase.taps,
                    };
                    let layout = OutputLayout {
                        start: phase.target[0] * dims.input[1] + phase.target[1],
                        channel_stride: image_x,
                        row_stride: dims.stride[0] * dims.input[1],
                        col_stride: dims.stride[1],
                    };
                    let channels = self.tiles[t].len();
                    let weights = &phase.weights[t];
                    let store = Store::Accumulate;
                    correlate(window, weights, channels, phase.grid, out, layout, store);
                }
            });
    }
}

/// The weight gradient's dot products, set up once for all examples:
/// `∂L/∂w[o, c, u, v] = Σ_{i,j} ∂L/∂y[o, i, j] · x_padded[c, s_h·i + u, s_w·j + v]` reads the
/// bordered output gradient of [`InputGradientCorrelation`] and the padded input of
/// [`ForwardCorrelation`].
pub(crate) struct WeightGradientDots {
    /// The layout of the input buffer, filled with [`PhaseLayout::fill`].
    pub input: PhaseLayout,
    /// The layout of the output-gradient buffer, filled with [`GradientLayout::pad`].
    pub gradient: GradientLayout,
    x_taps: Vec<usize>,
    y_taps: Vec<usize>,
    grid: [usize; 2],
    window_len: usize,
}

impl WeightGradientDots {
    pub(crate) fn new(dims: &ConvDims) -> Self {
        let input = PhaseLayout::new(dims);
        let gradient = GradientLayout::new(dims);
        Self {
            x_taps: input.window_taps(dims.kernel),
            y_taps: gradient.channel_taps(),
            input,
            gradient,
            grid: dims.output,
            window_len: dims.window_len(),
        }
    }

    /// Adds one example's `∂L/∂w` (`[C_OUT, C_IN, K_H, K_W]`) to `grad_weight`, from its output
    /// gradient `padded` and its input `phased`; `finite` says whether every value of the input is finite ([`all_finite`]).
    pub(crate) fn add_example<E: Element>(
        &self,
        padded: &[E],
        phased: &[E],
        finite: bool,
        grad_weight: &mut [E],
    ) {
        let dy = Window {
            src: padded,
            origin: self.gradient.origin(),
            row_stride: self.gradient.plane[1],
            taps: &self.y_taps,
        };
        let x = Window {
            src: phased,
            origin: 0,
            row_stride: self.input.plane[1],
            taps: &self.x_taps,
        };
        // The bordered gradient reads zero past its rows: with a finite input, the rest of each
        // row goes as one more vector.
        accumulate_window_dots(dy, x, self.grid, grad_weight, self.window_len, finite);
    }
}

/// The kernel on run-time sizes: random geometries against the formula computed term by term,
/// and the output size against `crate::shape`.
#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::ops::conv2d::test_support::{cast, random_values, to_f64};
    use crate::shape::conv_output_size;

    /// The convolution and its gradients straight from the definition, one term at a time.
    struct Naive<'a> {
        dims: &'a ConvDims,
    }

    impl Naive<'_> {
        /// Every `(b, o, i, j, c, u, v, x index)` with the window cell inside the input.
        fn terms(&self, mut term: impl FnMut([usize; 4], [usize; 3], usize)) {
            let d = self.dims;
            let [height, width] = d.input;
            for b in 0..d.batch {
                for o in 0..d.c_out {
                    for i in 0..d.output[0] {
                        for j in 0..d.output[1] {
                            for c in 0..d.c_in {
                                for u in 0..d.kernel[0] {
                                    for v in 0..d.kernel[1] {
                                        let row = (i * d.stride[0] + u).checked_sub(d.padding[0]);
                                        let col = (j * d.stride[1] + v).checked_sub(d.padding[1]);
                                        if let (Some(row), Some(col)) = (row, col) {
                                            if row < height && col < width {
                                                let x =
                                                    ((b * d.c_in + c) * height + row) * width + col;
                                                term([b, o, i, j], [c, u, v], x);
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        fn y_index(&self, [b, o, i, j]: [usize; 4]) -> usize {
            ((b * self.dims.c_out + o) * self.dims.output[0] + i) * self.dims.output[1] + j
        }

        fn w_index(&self, o: usize, [c, u, v]: [usize; 3]) -> usize {
            ((o * self.dims.c_in + c) * self.dims.kernel[0] + u) * self.dims.kernel[1] + v
        }

        fn forward(&self, x: &[f64], weight: &[f64], bias: &[f64]) -> Vec<f64> {
            let d = self.dims;
            let mut y = vec![0.0; d.batch * d.c_out * d.output_plane()];
            for (index, out) in y.iter_mut().enumerate() {
                *out = bias[index / d.output_plane() % d.c_out];
            }
            self.terms(|at, cell, xi| {
                y[self.y_index(at)] += weight[self.w_index(at[1], cell)] * x[xi]
            });
            y
        }

        /// `(∂L/∂x, ∂L/∂w, ∂L/∂bias)` for `∂L/∂y = grad_y`.
        fn backward(&self, x: &[f64], weight: &[f64], grad_y: &[f64]) -> [Vec<f64>; 3] {
            let d = self.dims;
            let mut grad_x = vec![0.0; x.len()];
            let mut grad_w = vec![0.0; weight.len()];
            let mut grad_b = vec![0.0; d.c_out];
            self.terms(|at, cell, xi| {
                let g = grad_y[self.y_index(at)];
                grad_x[xi] += weight[self.w_index(at[1], cell)] * g;
                grad_w[self.w_index(at[1], cell)] += x[xi] * g;
            });
            for (index, g) in grad_y.iter().enumerate() {
                grad_b[index / d.output_plane() % d.c_out] += g;
            }
            [grad_x, grad_w, grad_b]
        }
    }

    /// A geometry with every size small but every feature likely: strides 1–3, padding 0–2,
    /// non-square inputs and kernels, windows that do not tile, rows shorter and longer than a
    /// vector, channel counts that leave partial tiles.
    fn random_dims(rng: &mut StdRng) -> ConvDims {
        loop {
            let input = [rng.gen_range(1..=9), rng.gen_range(1..=40)];
            let padding = [rng.gen_range(0..=2), rng.gen_range(0..=2)];
            let kernel =
                [0, 1].map(|axis| rng.gen_range(1..=(input[axis] + 2 * padding[axis]).min(5)));
            let stride = [rng.gen_range(1..=3), rng.gen_range(1..=3)];
            // Output channels on both sides of `grid_gemm`'s threshold (32).
            let channels = [rng.gen_range(1..=5), rng.gen_range(1..=40)];
            if let Some(dims) = ConvDims::new(
                rng.gen_range(0..=3),
                channels,
                input,
                kernel,
                stride,
                padding,
            ) {
                return dims;
            }
        }
    }

    #[test]
    fn the_backward_pass_gives_the_same_bits_with_any_number_of_threads() {
        // Six output channels take the dot-product path, which sums the weight gradient over
        // the examples in groups; 13 examples split unevenly between the threads.
        let dims = ConvDims::new(13, [3, 6], [12, 11], [5, 4], [1, 2], [2, 1]).unwrap();
        let x = cast::<f32>(&random_values(dims.batch * dims.input_image(), 1));
        let weight = cast::<f32>(&random_values(dims.c_out * dims.window_len(), 2));
        let grad_y = cast::<f32>(&random_values(
            dims.batch * dims.c_out * dims.output_plane(),
            3,
        ));
        crate::parallel::assert_same_on_threads(&[2, 3, 5, 2, 3], || {
            let mut grad_x = vec![0.0f32; x.len()];
            let mut grad_w = vec![0.0f32; weight.len()];
            let grad_b = backward(&dims, &x, &weight, &grad_y, Some(&mut grad_x), &mut grad_w);
            [grad_x, grad_w, grad_b].map(|v| v.iter().map(|g| g.to_bits()).collect::<Vec<_>>())
        });
    }

    /// Runs the kernel in `E` on `f64` values: `(y, ∂L/∂x, ∂L/∂w, ∂L/∂bias)`. The input
    /// gradient starts at `grad_x_before` and must be added to.
    fn kernel<E: Element>(
        dims: &ConvDims,
        [x, weight, bias, grad_y]: [&[f64]; 4],
        grad_x_before: &[f64],
    ) -> [Vec<f64>; 4] {
        let (x, weight) = (cast::<E>(x), cast::<E>(weight));
        let y = forward(dims, &x, &weight, &cast::<E>(bias), false);
        let mut grad_x = cast::<E>(grad_x_before);
        let mut grad_w = vec![E::zero(); weight.len()];
        let grad_b = backward(
            dims,
            &x,
            &weight,
            &cast::<E>(grad_y),
            Some(&mut grad_x),
            &mut grad_w,
        );
        [
            to_f64(&y),
            to_f64(&grad_x),
            to_f64(&grad_w),
            to_f64(&grad_b),
        ]
    }

    #[test]
    fn random_geometries_match_the_definition() {
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..300 {
            let dims = random_dims(&mut rng);
            let naive = Naive { dims: &dims };
            let x = random_values(dims.batch * dims.input_image(), 4 * case);
            let weight = random_values(dims.c_out * dims.window_len(), 4 * case + 1);
            let bias = random_values(dims.c_out, 4 * case + 2);
            let grad_y = random_values(dims.batch * dims.c_out * dims.output_plane(), 4 * case + 3);
            // The input gradient must be added to what is there.
            let before = vec![0.5; x.len()];
            let [mut grad_x, grad_w, grad_b] = naive.backward(&x, &weight, &grad_y);
            grad_x.iter_mut().for_each(|g| *g += 0.5);
            let expected = [naive.forward(&x, &weight, &bias), grad_x, grad_w, grad_b];
            let inputs = [&x[..], &weight, &bias, &grad_y];
            for (precision, tolerance, got) in [
                ("f64", 1e-10, kernel::<f64>(&dims, inputs, &before)),
                ("f32", 1e-4, kernel::<f32>(&dims, inputs, &before)),
            ] {
                let names = ["y", "grad_x", "grad_weight", "grad_bias"];
                for ((name, got), expected) in names.iter().zip(&got).zip(&expected) {
                    eprintln!("case {case} ({precision}): {name} of {dims:?}");
                    crate::assert_close!(got, expected, tolerance);
                }
            }
        }
    }

    /// Every forward route, in `f64` and `f32`, with and without the ReLU, on geometries that
    /// [`ForwardRoute::for_dims`] would mostly send elsewhere: each route must be right
    /// everywhere, not only where it is fast.
    #[test]
    fn every_forward_route_matches_the_definition() {
        let mut rng = StdRng::seed_from_u64(11);
        // AlexNet's first layer shrunk to a 7 × 7 output (stride 4, 11 × 11 windows) and a
        // window of several hundred taps, besides the random ones.
        let large = [
            ConvDims::new(1, [3, 20], [35, 35], [11, 11], [4, 4], [0, 0]).unwrap(),
            ConvDims::new(2, [40, 33], [9, 8], [3, 3], [2, 1], [1, 1]).unwrap(),
            // With 512-bit blocks, two groups of 32 channels and a last one of 16.
            ConvDims::new(2, [6, 80], [9, 10], [3, 3], [1, 1], [1, 1]).unwrap(),
        ];
        let cases = large
            .into_iter()
            .chain((0..150).map(|_| random_dims(&mut rng)));
        for (case, dims) in (0u64..).zip(cases) {
            let naive = Naive { dims: &dims };
            let x = random_values(dims.batch * dims.input_image(), 3 * case);
            let weight = random_values(dims.c_out * dims.window_len(), 3 * case + 1);
            let bias = random_values(dims.c_out, 3 * case + 2);
            let linear = naive.forward(&x, &weight, &bias);
            let rectified: Vec<f64> = linear.iter().map(|&v| v.max(0.0)).collect();
            for relu in [false, true] {
                let expected = if relu { &rectified } else { &linear };
                for route in [
                    ForwardRoute::ChannelLanes,
                    ForwardRoute::RowLanes,
                    ForwardRoute::Grid,
                ] {
                    eprintln!("case {case}: {route:?}, relu {relu}, {dims:?}");
                    let f32_y = forward_by(
                        route,
                        &dims,
                        &cast::<f32>(&x),
                        &cast::<f32>(&weight),
                        &cast::<f32>(&bias),
                        relu,
                    );
                    crate::assert_close!(to_f64(&f32_y), expected, 1e-4);
                    if route != ForwardRoute::Grid {
                        let f64_y = forward_by(route, &dims, &x, &weight, &bias, relu);
                        crate::assert_close!(f64_y, expected, 1e-10);
                    }
                }
            }
        }
    }

    /// The stride-1 input gradient as a correlation on channel lanes, wherever it applies (not
    /// only where it is chosen), added to what `grad_x` holds.
    #[test]
    fn the_channel_lanes_input_gradient_matches_the_definition() {
        let mut rng = StdRng::seed_from_u64(13);
        // Input channels are the correlation's output channels: with 512-bit blocks, 48 are a
        // group of 32 and one of 16, 64 two groups of 32 (the random ones have at most 5).
        let mut wide = [
            ConvDims::new(2, [48, 7], [6, 9], [3, 3], [1, 1], [1, 1]).unwrap(),
            ConvDims::new(1, [64, 5], [7, 5], [3, 3], [1, 1], [0, 2]).unwrap(),
        ]
        .into_iter();
        let mut checked = 0;
        while checked < 60 {
            let mut dims = wide.next().unwrap_or_else(|| random_dims(&mut rng));
            dims = match ConvDims::new(
                dims.batch,
                [dims.c_in, dims.c_out],
                dims.input,
                dims.kernel,
                [1, 1],
                dims.padding,
            ) {
                Some(dims) => dims,
                None => continue,
            };
            let weight = random_values(dims.c_out * dims.window_len(), 2 * checked);
            let Some(lanes) = channel_lanes::ChannelLanes::for_input_gradient(&dims, &weight, true)
            else {
                // Only a padding wider than the kernel less one has no such correlation.
                assert!(
                    (0..2).any(|a| dims.padding[a] >= dims.kernel[a]),
                    "{dims:?}"
                );
                continue;
            };
            let naive = Naive { dims: &dims };
            let x = vec![0.0; dims.batch * dims.input_image()];
            let grad_y = random_values(
                dims.batch * dims.c_out * dims.output_plane(),
                2 * checked + 1,
            );
            let [mut expected, _, _] = naive.backward(&x, &weight, &grad_y);
            expected.iter_mut().for_each(|g| *g += 0.5);
            let mut grad_x = vec![0.5; x.len()];
            lanes.add_to(&grad_y, &mut grad_x);
            eprintln!("case {checked}: {dims:?}");
            crate::assert_close!(grad_x, expected, 1e-10);
            checked += 1;
        }
    }

    /// The input gradient as one correlation per stride phase on channel lanes, wherever it
    /// applies (not only where it is chosen), added to what `grad_x` holds: strides 1–3, phases
    /// without taps (a 1 × 1 kernel at stride 2), rows of phases shorter than a block.
    #[test]
    fn the_strided_lanes_input_gradient_matches_the_definition() {
        let mut rng = StdRng::seed_from_u64(17);
        // Input channels are the correlation's output channels: with 512-bit blocks, 48 are a
        // group of 32 and one of 16, 64 two groups of 32 (the random ones have at most 5).
        let wide = [
            ConvDims::new(3, [48, 7], [9, 10], [4, 4], [2, 2], [1, 1]).unwrap(),
            ConvDims::new(1, [64, 5], [7, 11], [3, 3], [2, 3], [0, 2]).unwrap(),
            ConvDims::new(2, [33, 6], [8, 8], [1, 1], [2, 2], [0, 0]).unwrap(),
            ConvDims::new(2, [16, 3], [13, 6], [5, 2], [3, 1], [2, 0]).unwrap(),
        ];
        let cases = wide
            .into_iter()
            .chain((0..80).map(|_| random_dims(&mut rng)));
        for (case, dims) in (0u64..).zip(cases) {
            let weight = random_values(dims.c_out * dims.window_len(), 2 * case);
            let lanes = strided_lanes::StridedLanes::for_input_gradient(&dims, &weight, true)
                .expect("always");
            let naive = Naive { dims: &dims };
            let x = vec![0.0; dims.batch * dims.input_image()];
            let grad_y = random_values(dims.batch * dims.c_out * dims.output_plane(), 2 * case + 1);
            let [mut expected, _, _] = naive.backward(&x, &weight, &grad_y);
            expected.iter_mut().for_each(|g| *g += 0.5);
            let mut grad_x = vec![0.5; x.len()];
            lanes.add_to(&grad_y, &mut grad_x);
            eprintln!("case {case}: {dims:?}");
            crate::assert_close!(grad_x, expected, 1e-10);
            let mut f32_grad_x = vec![0.5f32; x.len()];
            let f32_lanes =
                strided_lanes::StridedLanes::for_input_gradient(&dims, &cast(&weight), true);
            f32_lanes
                .expect("always")
                .add_to(&cast(&grad_y), &mut f32_grad_x);
            crate::assert_close!(to_f64(&f32_grad_x), expected, 1e-4);
        }
    }

    /// Channel lanes split the positions of a batch-1 pass into runs by the number of threads;
    /// each output is still summed by one block in tap order, so the bits must not change.
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn channel_lanes_give_the_same_bits_with_any_number_of_threads() {
        let dims = ConvDims::new(1, [3, 40], [61, 58], [11, 11], [4, 4], [2, 1]).unwrap();
        let x = cast::<f32>(&random_values(dims.input_image(), 1));
        let weight = cast::<f32>(&random_values(dims.c_out * dims.window_len(), 2));
        let bias = cast::<f32>(&random_values(dims.c_out, 3));
        crate::parallel::assert_same_on_threads(&[2, 3, 5], || {
            let y = forward_by(ForwardRoute::ChannelLanes, &dims, &x, &weight, &bias, true);
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        });
    }

    /// The weight gradient with channels in the lanes, on its own, in `f64` and `f32`: strides,
    /// padding, non-square sizes, windows that end in a short block of taps, channels that leave
    /// the last group partly empty, and planes of several runs of positions; added to what is
    /// there.
    #[test]
    fn the_weight_lanes_match_the_definition() {
        for (case, (batch, channels, input, kernel, stride, padding)) in [
            (3, [4, 16], [9, 13], [3, 3], [1, 1], [1, 1]),
            (2, [5, 40], [23, 17], [3, 2], [2, 1], [1, 0]),
            (1, [3, 24], [30, 29], [5, 5], [1, 1], [2, 2]),
            (2, [2, 8], [11, 11], [7, 5], [3, 2], [3, 0]),
            (4, [6, 33], [14, 14], [5, 5], [1, 1], [0, 0]),
            // With 512-bit blocks: two groups of 32 channels and one of 16.
            (2, [3, 80], [10, 12], [3, 3], [1, 1], [1, 1]),
        ]
        .into_iter()
        .enumerate()
        {
            let dims = ConvDims::new(batch, channels, input, kernel, stride, padding).unwrap();
            let seed = 20 * case as u64;
            let x = random_values(dims.batch * dims.input_image(), seed);
            let weight = random_values(dims.c_out * dims.window_len(), seed + 1);
            let grad_y = random_values(dims.batch * dims.c_out * dims.output_plane(), seed + 2);
            let [_, expected, _] = Naive { dims: &dims }.backward(&x, &weight, &grad_y);
            let expected: Vec<f64> = expected.iter().map(|e| e + 0.25).collect();
            eprintln!("case {case}: {dims:?}");
            let mut got = vec![0.25f64; expected.len()];
            weight_lanes::add_weight_gradient(&dims, &x, &grad_y, &mut got);
            crate::assert_close!(got, expected, 1e-10);
            let mut got = vec![0.25f32; expected.len()];
            weight_lanes::add_weight_gradient(
                &dims,
                &cast::<f32>(&x),
                &cast::<f32>(&grad_y),
                &mut got,
            );
            crate::assert_close!(to_f64(&got), expected, 1e-4);
        }
    }

    /// The threads split the weights, never a weight's sum: the bits must not change.
    #[test]
    fn weight_lanes_give_the_same_bits_with_any_number_of_threads() {
        let dims = ConvDims::new(5, [7, 48], [19, 23], [3, 3], [1, 2], [1, 1]).unwrap();
        let x = cast::<f32>(&random_values(dims.batch * dims.input_image(), 4));
        let grad_y = cast::<f32>(&random_values(
            dims.batch * dims.c_out * dims.output_plane(),
            5,
        ));
        crate::parallel::assert_same_on_threads(&[2, 3, 5], || {
            let mut grad_w = vec![0.0f32; dims.c_out * dims.window_len()];
            weight_lanes::add_weight_gradient(&dims, &x, &grad_y, &mut grad_w);
            grad_w.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        });
    }

    /// The weight-lanes route's conditions, at the layers they were measured on.
    #[test]
    fn weight_lanes_suit_the_layers_they_were_measured_faster_on() {
        let conv = |batch, channels, input: usize, kernel: usize, stride: usize, padding: usize| {
            ConvDims::new(
                batch,
                channels,
                [input; 2],
                [kernel; 2],
                [stride; 2],
                [padding; 2],
            )
            .unwrap()
        };
        let suits = weight_lanes::suits::<f32>;
        assert!(suits(&conv(32, [64, 64], 16, 3, 1, 1)));
        assert!(suits(&conv(64, [6, 16], 14, 5, 1, 0)), "LeNet-5's conv2");
        assert!(
            suits(&conv(8, [3, 64], 64, 7, 2, 3)),
            "ResNet's conv1 at 64 × 64"
        );
        assert!(suits(&conv(8, [128, 128], 8, 3, 1, 1)));
        assert!(!suits(&conv(32, [3, 32], 32, 3, 1, 1)), "27 taps");
        assert!(!suits(&conv(8, [128, 256], 8, 3, 2, 1)), "4 × 4 positions");
        assert!(!suits(&conv(64, [1, 6], 28, 5, 1, 2)), "6 channels");
    }

    /// The GEMM path of the weight gradient on its own, in both of its orientations (fewer and
    /// more output channels than `DIRECT_OUTPUT_CHANNELS`), with strides, padding and
    /// non-square sizes; and its refusals (`f64`, few channels, an infinite input).
    #[test]
    fn the_weight_gradient_gemm_matches_the_definition() {
        for (case, (channels, input, kernel, stride, padding)) in [
            ([3, 32], [9, 13], [3, 3], [1, 1], [1, 1]),
            ([5, 64], [7, 6], [3, 2], [2, 1], [1, 0]),
            ([4, 70], [11, 11], [5, 5], [3, 3], [2, 2]),
            ([16, 65], [2, 2], [3, 3], [1, 1], [1, 1]),
            ([3, 33], [30, 30], [3, 3], [1, 1], [1, 1]),
            ([2, 64], [31, 20], [3, 3], [2, 2], [1, 1]),
        ]
        .into_iter()
        .enumerate()
        {
            let dims = ConvDims::new(3, channels, input, kernel, stride, padding).unwrap();
            let x = random_values(dims.batch * dims.input_image(), 10 * case as u64);
            let weight = random_values(dims.c_out * dims.window_len(), 10 * case as u64 + 1);
            let grad_y = random_values(
                dims.batch * dims.c_out * dims.output_plane(),
                10 * case as u64 + 2,
            );
            let [_, expected, _] = Naive { dims: &dims }.backward(&x, &weight, &grad_y);
            let mut got = vec![0.25f32; expected.len()];
            assert!(grid_gemm::add_weight_gradient(
                &dims,
                &cast::<f32>(&x),
                &cast::<f32>(&grad_y),
                &mut got
            ));
            let expected: Vec<f64> = expected.iter().map(|e| e + 0.25).collect();
            crate::assert_close!(to_f64(&got), expected, 1e-4);
        }
        let dims = ConvDims::new(1, [2, 32], [4, 4], [3, 3], [1, 1], [1, 1]).unwrap();
        let mut x = vec![1.0; dims.input_image()];
        let grad_y = vec![1.0; dims.c_out * dims.output_plane()];
        let mut grad_w = vec![0.0; dims.c_out * dims.window_len()];
        assert!(!grid_gemm::add_weight_gradient(
            &dims,
            &x,
            &grad_y,
            &mut grad_w
        ));
        x[3] = f64::INFINITY;
        let (mut x, grad_y) = (cast::<f32>(&x), cast::<f32>(&grad_y));
        let mut grad_w = vec![0.0f32; grad_w.len()];
        assert!(!grid_gemm::add_weight_gradient(
            &dims,
            &x,
            &grad_y,
            &mut grad_w
        ));
        let few = ConvDims::new(1, [2, 31], [4, 4], [3, 3], [1, 1], [1, 1]).unwrap();
        let mut grad_w = vec![0.0f32; few.c_out * few.window_len()];
        let grad_y = vec![1.0f32; few.c_out * few.output_plane()];
        x[3] = 1.0;
        assert!(!grid_gemm::add_weight_gradient(
            &few,
            &x,
            &grad_y,
            &mut grad_w
        ));
    }

    /// The output size the kernel derives from run-time sizes is the one the macro computes
    /// (`crate::shape::conv_output_size`, the same arithmetic), including every rejection.
    #[test]
    fn output_size_agrees_with_the_shape_arithmetic() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..500 {
            let input = [rng.gen_range(0..=40), rng.gen_range(0..=40)];
            let kernel = [rng.gen_range(0..=12), rng.gen_range(0..=12)];
            let stride = [rng.gen_range(0..=5), rng.gen_range(0..=5)];
            let padding = [rng.gen_range(0..=6), rng.gen_range(0..=6)];
            let expected = [0, 1].map(|axis| {
                conv_output_size(input[axis], kernel[axis], stride[axis], padding[axis]).ok()
            });
            for axis in 0..2 {
                assert_eq!(
                    output_len(input[axis], kernel[axis], stride[axis], padding[axis]),
                    expected[axis],
                    "input {} kernel {} stride {} padding {}",
                    input[axis],
                    kernel[axis],
                    stride[axis],
                    padding[axis]
                );
            }
            let dims = ConvDims::new(2, [3, 4], input, kernel, stride, padding);
            assert_eq!(
                dims.map(|dims| dims.output),
                expected[0].zip(expected[1]).map(|(h, w)| [h, w])
            );
        }
        assert_eq!(
            output_len(usize::MAX, 1, 1, 1),
            None,
            "the padded input overflows"
        );
        assert_eq!(
            conv_output_size(usize::MAX, 1, 1, 1).ok(),
            None,
            "the shape arithmetic rejects it too"
        );
    }

    /// An infinity in an input column no window reaches must not reach the weight gradient
    /// (the rest of each row is then summed element by element, not as a zero-padded vector).
    #[test]
    fn an_unreached_infinity_leaves_the_weight_gradient_finite() {
        // Stride 2, kernel 2, width 29: column 28 is in no window; rows of 14 positions leave
        // a rest of 6 lanes past the first vector of 8.
        let dims = ConvDims::new(2, [2, 3], [3, 29], [1, 2], [1, 2], [0, 0]).unwrap();
        assert_eq!(dims.output, [3, 14]);
        let mut x = random_values(dims.batch * dims.input_image(), 1);
        x[28] = f64::INFINITY;
        let weight = random_values(dims.c_out * dims.window_len(), 2);
        let grad_y = random_values(dims.batch * dims.c_out * dims.output_plane(), 3);
        let [_, grad_w, grad_b] = Naive { dims: &dims }.backward(&x, &weight, &grad_y);
        let bias = vec![0.0; 3];
        let [_, _, got_w, got_b] =
            kernel::<f32>(&dims, [&x, &weight, &bias, &grad_y], &vec![0.0; x.len()]);
        assert!(grad_w.iter().all(|g| g.is_finite()));
        crate::assert_close!(got_w, grad_w, 1e-4);
        crate::assert_close!(got_b, grad_b, 1e-4);
    }

    #[test]
    fn channel_tiles_are_balanced_and_cover_every_channel() {
        for channels in 0..40 {
            let tiles = layout::channel_tiles(channels);
            assert_eq!(tiles.iter().map(|t| t.len()).sum::<usize>(), channels);
            assert!(tiles.windows(2).all(|pair| pair[0].end == pair[1].start));
            let (min, max) = (
                tiles.iter().map(|t| t.len()).min(),
                tiles.iter().map(|t| t.len()).max(),
            );
            if let (Some(min), Some(max)) = (min, max) {
                assert!(
                    max <= tiles::TILE_CHANNELS && max - min <= 1,
                    "{channels}: {tiles:?}"
                );
            }
        }
    }
}
