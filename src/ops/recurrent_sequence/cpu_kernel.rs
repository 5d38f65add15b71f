//! The fast CPU kernel of the whole-sequence LSTM and GRU: one custom dfdx op per run, with its
//! own backpropagation through time.
//!
//! # What it computes
//! The same as `reference.rs` (the cell's step unrolled): for [`LstmCell`]
//! `(i, f, g, o) = (σ, σ, tanh, σ)(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh)`,
//! `C_t = f ∗ C_{t−1} + i ∗ g`, `h_t = o ∗ tanh(C_t)`; for [`TorchGruCell`]
//! `(r, z) = σ(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh)` (their rows),
//! `n = tanh(W_in·x_t + b_in + r ∗ (W_hn·h_{t−1} + b_hn))`, `h_t = n + z ∗ (h_{t−1} − n)`; and on
//! backward `∂L/∂x` and the gradients of the four parameters, each added to the gradient
//! already there.
//!
//! # Layout
//! Everything is kept in *processing order*: row `k·B + b` holds step `k` of example `b`, where
//! step `k` reads `x_{t(k)}` with `t(k) = k` (or `S − 1 − k` for a reversed run). The input is
//! copied into that order once, `[S·B, I]`; the outputs and `∂L/∂x` are copied back.
//! - Forward: `X·W_ihᵀ` for all steps in one matmul (`[S·B, G·H]`, biases added); per step one
//!   matmul `h_{k−1}·W_hhᵀ` (`[B, G·H]`, skipped at the first step, whose state is zero) and one
//!   pass of gate arithmetic that writes `h_k`, `C_k` and the gate activations the backward
//!   pass needs into buffers allocated once per run. `h` (and `C`) live in `[S + 1, B, H]`
//!   buffers whose first block is the zero initial state, so the `h_{k−1}` of every step is one
//!   contiguous `[S·B, H]` slice.
//! - Backward, steps in reverse: one pass of gate arithmetic gives the pre-activation gradients
//!   of step `k` (`[B, G·H]`), and one matmul with `W_hh` carries `∂L/∂h` to step `k − 1`.
//!   Then, over all steps at once: `∂L/∂W_ih = ∂Pᵀ·X`, `∂L/∂W_hh = ∂Pᵀ·H_prev`, the bias
//!   gradients as column sums, and `∂L/∂X = ∂P·W_ih` — three big matmuls.
//!
//! The per-step loops of both passes run on several threads at once, each over its share of
//! the batch (`example_parts`): the examples are independent, so the threads meet once per
//! sequence rather than at every step's product.
//!
//! The per-step matmuls of `f32` run a register-tiled SIMD kernel of this module
//! (`small_matmul.rs`: 4 × 16 blocks with AVX2 + FMA, 8 × 32 blocks in 512-bit registers on a
//! CPU with AVX-512, chosen at run time, the same bits either way; when the batch is not
//! split, rows split over two rayon tasks when large enough), the recurrent weights laid out
//! for it once per run; the whole-sequence products run on [`crate::gemm`]; other types use
//! dfdx's matmul (the `gemm` crate) on tensors without tapes. σ and tanh of `f32` are vectorised polynomials
//! (`ops/activations.rs`). dfdx's own matmul was measured first: per step it repacked `W_hh` and
//! paid its dispatch, and the training step was about 1.4× slower with it (loaded machine).
//!
//! # Cost, `T = 32, B = 32, I = 64, H = 128` (the `train/lstm_t32_i64_h128_b32` bench)
//! Forward about 67 MFLOP of input projection and 134 of recurrence, backward twice that;
//! the gate arithmetic is a few percent. Per thread, one step's `[16, 128]·[128, 512]` takes
//! about 7.5 µs in 512-bit blocks (280 GFLOP/s, one core's peak) and 16 µs in AVX2 blocks on
//! the Zen 5 of `BENCHMARKS.md`. See there for the measured step.

use crate::ops::host::HostValues;
use std::ops::Range;

use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Cpu, CpuError, Gradients, NoneTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::{Device, ReshapeTo, TryMatMul};
use rayon::prelude::*;

mod small_matmul;

use self::small_matmul::Packed;
use super::SequenceRun;
use crate::network::Element;
use crate::ops::activations::{sigmoid_in_place, tanh_in_place};
use crate::ops::conv2d::cpu_kernel::{add_into, host_copy};
use crate::recurrent::{LstmCell, LstmState, TorchGruCell};

/// The sizes of one run, in processing order.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    steps: usize,
    input: usize,
    hidden: usize,
    gates: usize,
    reverse: bool,
}

impl Dims {
    /// The time step read at processing step `k`.
    fn time(&self, k: usize) -> usize {
        if self.reverse {
            self.steps - 1 - k
        } else {
            k
        }
    }

    fn width(&self) -> usize {
        self.gates * self.hidden
    }

    fn rows(&self) -> usize {
        self.steps * self.batch
    }

    /// One `[B, H]` block.
    fn block(&self) -> usize {
        self.batch * self.hidden
    }

    /// The same sizes for the examples `examples` of the batch alone (one thread's part, see
    /// `example_parts`).
    fn part(&self, examples: &Range<usize>) -> Dims {
        Dims {
            batch: examples.len(),
            ..*self
        }
    }

    /// Where the rows of `examples` lie in block `k` of a buffer of `[B, row]` blocks.
    fn part_rows(&self, k: usize, examples: &Range<usize>, row: usize) -> Range<usize> {
        (k * self.batch + examples.start) * row..(k * self.batch + examples.end) * row
    }
}

/// From this many rows on, a product runs on [`crate::gemm`] (packing pays for itself).
const LARGE_PRODUCT_ROWS: usize = 128;

/// `c = a·b`, or `c += a·b` when `accumulate`, for row-major `a` `[m, k]`, `b` `[k, n]` and
/// `c` `[m, n]`: the SIMD kernel of `small_matmul` for `f32`, dfdx's matmul otherwise.
fn matmul<E: Element>(
    dev: &Cpu,
    a: &[E],
    b: &[E],
    c: &mut [E],
    [m, k, n]: [usize; 3],
    accumulate: bool,
) -> Result<(), CpuError>
where
    Cpu: Device<E>,
{
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            c.iter_mut().for_each(|v| *v = E::zero());
        }
        return Ok(());
    }
    // The whole-sequence products (hundreds of rows) go to the packed GEMM, the per-step ones
    // (a batch of rows against weights packed once per run) to the register-tiled kernel.
    if m >= LARGE_PRODUCT_ROWS
        && crate::gemm::try_gemm((a, false), (b, false), c, [m, k, n], accumulate)
    {
        return Ok(());
    }
    if small_matmul::try_matmul(a, b, c, [m, k, n], accumulate) {
        return Ok(());
    }
    let a = dev.try_tensor_from_vec(a[..m * k].to_vec(), (m, k))?;
    let b = dev.try_tensor_from_vec(b[..k * n].to_vec(), (k, n))?;
    let product = a.try_matmul(b)?;
    if accumulate {
        add_into(c, &product.as_vec());
    } else {
        product.copy_into(c);
    }
    Ok(())
}

/// The transpose of a row-major `[rows, cols]` matrix.
///
/// In square tiles: column by column, the writes of a `[512, 128]` matrix lie 2 KiB apart,
/// share a few sets of the L1 cache and evict each other (the transposes of the weights took
/// 6% of the LSTM training step before).
fn transpose<E: Element>(m: &[E], rows: usize, cols: usize) -> Vec<E> {
    const TILE: usize = 16;
    let mut t = vec![E::zero(); rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
    t
}

/// The input in processing order, `[S·B, I]`, from `[B, S, I]`.
fn to_processing_order<E: Element>(dims: &Dims, x: &[E]) -> Vec<E> {
    let Dims { batch, steps, .. } = *dims;
    let row = dims.input;
    let mut xs = vec![E::zero(); dims.rows() * row];
    for k in 0..steps {
        let t = dims.time(k);
        for b in 0..batch {
            let from = (b * steps + t) * row;
            let to = (k * batch + b) * row;
            xs[to..to + row].copy_from_slice(&x[from..from + row]);
        }
    }
    xs
}

/// Blocks `1..=S` of an `[S + 1, B, H]` buffer as outputs `[B, S, H]` in time order.
fn outputs_in_time_order<E: Element>(dims: &Dims, hs: &[E]) -> Vec<E> {
    let Dims {
        batch,
        steps,
        hidden,
        ..
    } = *dims;
    let mut y = vec![E::zero(); batch * steps * hidden];
    for k in 0..steps {
        let t = dims.time(k);
        for b in 0..batch {
            let from = ((k + 1) * batch + b) * hidden;
            let to = (b * steps + t) * hidden;
            y[to..to + hidden].copy_from_slice(&hs[from..from + hidden]);
        }
    }
    y
}

/// Adds `∂L/∂X` in processing order (`[S·B, I]`) to the gradient of `x` (`[B, S, I]`).
fn add_input_gradient<E: Element>(dims: &Dims, grad_xs: &[E], grad_x: &mut [E]) {
    let Dims { batch, steps, .. } = *dims;
    let row = dims.input;
    for k in 0..steps {
        let t = dims.time(k);
        for b in 0..batch {
            let from = (k * batch + b) * row;
            let to = (b * steps + t) * row;
            add_into(&mut grad_x[to..to + row], &grad_xs[from..from + row]);
        }
    }
}

/// `out[j] += Σ_rows m[row, j]` for a `[rows, width]` matrix.
fn add_column_sums<E: Element>(m: &[E], width: usize, out: &mut [E]) {
    for row in m.chunks_exact(width) {
        add_into(out, row);
    }
}

/// The gradient of `t`, allocated (zeros) if absent. (Outside the functions bounded by
/// `Cpu: Device<E>`, where the compiler sees `Cpu`'s gradient storage as the `Vec` it is.)
/// The tensor itself (a cheap clone) rather than its ghost is kept for this: dfdx's ghost type
/// cannot be named outside it.
fn grad<'a, S: dfdx::shapes::Shape, E: Element>(
    grads: &'a mut Gradients<E, Cpu>,
    t: &Tensor<S, E, Cpu, NoneTape>,
) -> Result<&'a mut Vec<E>, CpuError> {
    Ok(grads.get_or_alloc_mut(t)?)
}

/// The parameters of a gated cell as row-major host copies, the weights also transposed.
struct Weights<E: Element> {
    dev: Cpu,
    /// `W_ih` `[G·H, I]` and `W_ihᵀ` `[I, G·H]`.
    w_ih: Vec<E>,
    w_ih_t: Vec<E>,
    /// `W_hh` `[G·H, H]` and `W_hhᵀ` `[H, G·H]`.
    w_hh: Vec<E>,
    w_hh_t: Vec<E>,
    b_ih: Vec<E>,
    b_hh: Vec<E>,
    /// `W_hhᵀ` and `W_hh` packed for the SIMD kernel (`f32`), read by every step.
    w_hh_t_packed: Option<Packed>,
    w_hh_packed: Option<Packed>,
}

/// The tensors a run reads, split from their tapes, with the merged tape.
struct Inputs<B: Dim, S: Dim, const I: usize, const G: usize, const H: usize, E: Element, T> {
    x: Tensor<(B, S, Const<I>), E, Cpu>,
    weight_ih: Tensor<(Const<G>, Const<H>, Const<I>), E, Cpu>,
    weight_hh: Tensor<(Const<G>, Const<H>, Const<H>), E, Cpu>,
    bias_ih: Tensor<(Const<G>, Const<H>), E, Cpu>,
    bias_hh: Tensor<(Const<G>, Const<H>), E, Cpu>,
    tape: T,
    /// False for an input traced with `traced_input` (`crate::trace`): `∂X` is not computed.
    input_gradient: bool,
}

#[allow(clippy::type_complexity)]
fn split_inputs<B: Dim, S: Dim, const I: usize, const G: usize, const H: usize, E, T>(
    x: Tensor<(B, S, Const<I>), E, Cpu, T>,
    weight_ih: &Tensor<(Const<G>, Const<H>, Const<I>), E, Cpu>,
    weight_hh: &Tensor<(Const<G>, Const<H>, Const<H>), E, Cpu>,
    bias_ih: &Tensor<(Const<G>, Const<H>), E, Cpu>,
    bias_hh: &Tensor<(Const<G>, Const<H>), E, Cpu>,
) -> Result<Inputs<B, S, I, G, H, E, T>, CpuError>
where
    E: Element,
    Cpu: Device<E>,
    T: Tape<E, Cpu>,
{
    let input_gradient = !(T::OWNS_TAPE && crate::trace::take_gradient_unwanted(&x));
    // `try_contiguous` is free for a contiguous tensor and otherwise copies with a backward op
    // of its own, so `copy_into` reads the logical order and the gradients are laid out as it.
    let (x, tape) = x.try_contiguous()?.split_tape();
    // The parameters join the input's tape, which holds the gradients they accumulate into.
    let (weight_ih, t1) = weight_ih.retaped::<T>().try_contiguous()?.split_tape();
    let (weight_hh, t2) = weight_hh.retaped::<T>().try_contiguous()?.split_tape();
    let (bias_ih, t3) = bias_ih.retaped::<T>().try_contiguous()?.split_tape();
    let (bias_hh, t4) = bias_hh.retaped::<T>().try_contiguous()?.split_tape();
    Ok(Inputs {
        x,
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        tape: tape.merge(t1).merge(t2).merge(t3).merge(t4),
        input_gradient,
    })
}

impl<B: Dim, S: Dim, const I: usize, const G: usize, const H: usize, E: Element, T>
    Inputs<B, S, I, G, H, E, T>
where
    Cpu: Device<E>,
{
    fn dims(&self, reverse: bool) -> Dims {
        let (batch, seq, _) = *self.x.shape();
        Dims {
            batch: batch.size(),
            steps: seq.size(),
            input: I,
            hidden: H,
            gates: G,
            reverse,
        }
    }

    fn weights(&self) -> Weights<E> {
        let w_ih = host_copy(&self.weight_ih);
        let w_hh = host_copy(&self.weight_hh);
        let w_hh_t = transpose(&w_hh, G * H, H);
        Weights {
            w_hh_t_packed: Packed::new(&w_hh_t, H, G * H),
            w_hh_packed: Packed::new(&w_hh, G * H, H),
            dev: self.x.device().clone(),
            w_ih_t: transpose(&w_ih, G * H, I),
            w_hh_t,
            w_ih,
            w_hh,
            b_ih: host_copy(&self.bias_ih),
            b_hh: host_copy(&self.bias_hh),
        }
    }

    /// The input in processing order, `[S·B, I]`, and `X·W_ihᵀ + b_ih` (plus `b_hh` when
    /// `both_biases`), `[S·B, G·H]`.
    fn project_input(
        &self,
        dims: &Dims,
        weights: &Weights<E>,
        both_biases: bool,
    ) -> Result<(Vec<E>, Vec<E>), CpuError> {
        let x = HostValues::of(&self.x);
        assert_eq!(x.len(), dims.rows() * I);
        let xs = to_processing_order(dims, &x);
        let mut xp = vec![E::zero(); dims.rows() * dims.width()];
        let sizes = [dims.rows(), I, dims.width()];
        matmul(&weights.dev, &xs, &weights.w_ih_t, &mut xp, sizes, false)?;
        let mut bias = weights.b_ih.clone();
        if both_biases {
            add_into(&mut bias, &weights.b_hh);
        }
        for row in xp.chunks_exact_mut(dims.width()) {
            add_into(row, &bias);
        }
        Ok((xs, xp))
    }
}

/// `h_{k−1}·W_hhᵀ` into `hp` (`[B, G·H]`), or zeros at the first step (`h_prev` `None`).
/// `parallel`: whether the product may split between threads (not when the caller runs on one
/// thread of several, see [`example_parts`]).
fn project_hidden<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    h_prev: Option<&[E]>,
    hp: &mut [E],
    parallel: bool,
) -> Result<(), CpuError>
where
    Cpu: Device<E>,
{
    let Some(h) = h_prev else {
        hp.iter_mut().for_each(|v| *v = E::zero());
        return Ok(());
    };
    if let Some(packed) = &weights.w_hh_t_packed {
        if small_matmul::try_matmul_packed(h, packed, hp, dims.batch, false, parallel) {
            return Ok(());
        }
    }
    let sizes = [dims.batch, dims.hidden, dims.width()];
    matmul(&weights.dev, h, &weights.w_hh_t, hp, sizes, false)
}

/// `∂P_k·W_hh` (`[B, H]`) added to `dh`, the gradient carried to step `k − 1`; `parallel` as
/// for [`project_hidden`].
fn carry_hidden_gradient<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    dp: &[E],
    dh: &mut [E],
    parallel: bool,
) -> Result<(), CpuError>
where
    Cpu: Device<E>,
{
    if let Some(packed) = &weights.w_hh_packed {
        if small_matmul::try_matmul_packed(dp, packed, dh, dims.batch, true, parallel) {
            return Ok(());
        }
    }
    let sizes = [dims.batch, dims.width(), dims.hidden];
    matmul(&weights.dev, dp, &weights.w_hh, dh, sizes, true)
}

/// Examples per part at least (see [`example_parts`]): fewer rows than two register tiles
/// would read all of `W_hh` per step for too little arithmetic.
const MIN_PART_EXAMPLES: usize = 8;

/// The ranges of examples that threads each run a whole recurrence over.
///
/// The examples of a batch are independent, so one thread can take its share of the batch
/// through every step, its own rows of the per-step product included: the threads meet once
/// per sequence. Splitting each step's product instead costs a fork and a join per step, with
/// the gate arithmetic in between on one thread — 64 hand-overs in a 32-step training step,
/// a sixth of its time. One range for steps too small to share (the per-step product below
/// `small_matmul`'s threshold) or batches too small to cut.
fn example_parts(dims: &Dims) -> Vec<Range<usize>> {
    let work = dims.batch * dims.hidden * dims.width();
    let parts = if work < small_matmul::PARALLEL_WORK {
        1
    } else {
        rayon::current_num_threads()
            .min(dims.batch / MIN_PART_EXAMPLES)
            .max(1)
    };
    // Whole register tiles (4 rows) per part where the batch allows.
    let per_part = dims.batch.div_ceil(parts).div_ceil(4) * 4;
    (0..dims.batch)
        .step_by(per_part.max(1))
        .map(|start| start..(start + per_part).min(dims.batch))
        .collect()
}

/// `values`, `blocks` blocks of `[B, row]` one after the other, cut into each part's rows of
/// every block: `cut[p][k]` is part `p`'s rows of block `k`.
fn cut_blocks<'a, E>(
    values: &'a mut [E],
    blocks: usize,
    row: usize,
    parts: &[Range<usize>],
) -> Vec<Vec<&'a mut [E]>> {
    let mut cut: Vec<Vec<&'a mut [E]>> = parts.iter().map(|_| Vec::with_capacity(blocks)).collect();
    let block_len = values.len() / blocks.max(1);
    let mut rest = values;
    for _ in 0..blocks {
        let (mut block, after) = rest.split_at_mut(block_len);
        rest = after;
        for (part, rows) in cut.iter_mut().zip(parts) {
            let (mine, others) = block.split_at_mut(rows.len() * row);
            part.push(mine);
            block = others;
        }
    }
    cut
}

/// `run(p, part)` for every part, on threads of their own when there are several; the first
/// error, if any.
fn run_parts<P: Send>(
    parts: Vec<P>,
    run: impl Fn(P) -> Result<(), CpuError> + Sync + Send,
) -> Result<(), CpuError> {
    if parts.len() == 1 {
        parts.into_iter().try_for_each(run)
    } else {
        parts.into_par_iter().try_for_each(run)
    }
}

/// The gradients over all steps from the pre-activation gradients (`[S·B, G·H]` each):
/// `∂W_ih = ∂P_xᵀ·X`, `∂W_hh = ∂P_hᵀ·H_prev`, `∂X = ∂P_x·W_ih`; returned as
/// `(∂W_ih, ∂W_hh, ∂X)`, `∂X` empty unless `input_gradient`. The weight gradients are computed transposed (`Xᵀ·∂P_x`), so that
/// the big `∂P` is read row by row as it lies.
#[allow(clippy::type_complexity)]
fn weight_gradients<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    xs: &[E],
    hs: &[E],
    dp_x: &[E],
    dp_h: &[E],
    input_gradient: bool,
) -> Result<(Vec<E>, Vec<E>, Vec<E>), CpuError>
where
    Cpu: Device<E>,
{
    let dev = &weights.dev;
    let (rows, width, hidden, input) = (dims.rows(), dims.width(), dims.hidden, dims.input);
    // `f32`: the GEMM reads `∂Pᵀ` through strides, so nothing is transposed.
    let (batch, later) = (dims.batch, rows.saturating_sub(dims.batch));
    let mut grad_w_ih = vec![E::zero(); width * input];
    if crate::gemm::try_gemm(
        (dp_x, true),
        (xs, false),
        &mut grad_w_ih,
        [width, rows, input],
        false,
    ) {
        let mut grad_w_hh = vec![E::zero(); width * hidden];
        let h_prev = &hs[batch * hidden..(batch + later) * hidden];
        let dp_h_later = &dp_h[batch.min(rows) * width..];
        crate::gemm::try_gemm(
            (dp_h_later, true),
            (h_prev, false),
            &mut grad_w_hh,
            [width, later, hidden],
            false,
        );
        let mut grad_xs = Vec::new();
        if input_gradient {
            grad_xs = vec![E::zero(); rows * input];
            crate::gemm::try_gemm(
                (dp_x, false),
                (&weights.w_ih, false),
                &mut grad_xs,
                [rows, width, input],
                false,
            );
        }
        return Ok((grad_w_ih, grad_w_hh, grad_xs));
    }
    let mut grad_w_ih_t = vec![E::zero(); input * width];
    let xs_t = transpose(xs, rows, input);
    matmul(
        dev,
        &xs_t,
        dp_x,
        &mut grad_w_ih_t,
        [input, rows, width],
        false,
    )?;
    // Step 0 reads the zero state: its rows add nothing to `∂W_hh`.
    let mut grad_w_hh_t = vec![E::zero(); hidden * width];
    let h_prev_t = transpose(&hs[batch * hidden..(batch + later) * hidden], later, hidden);
    let dp_h = &dp_h[batch.min(rows) * width..];
    matmul(
        dev,
        &h_prev_t,
        dp_h,
        &mut grad_w_hh_t,
        [hidden, later, width],
        false,
    )?;
    let mut grad_xs = Vec::new();
    if input_gradient {
        grad_xs = vec![E::zero(); rows * input];
        matmul(
            dev,
            dp_x,
            &weights.w_ih,
            &mut grad_xs,
            [rows, width, input],
            false,
        )?;
    }
    Ok((
        transpose(&grad_w_ih_t, input, width),
        transpose(&grad_w_hh_t, hidden, width),
        grad_xs,
    ))
}

/// [`LstmCell`] over `x` from the zero state, as one op.
#[allow(clippy::type_complexity)]
pub(crate) fn try_lstm_sequence<B: Dim, S: Dim, const I: usize, const H: usize, E, T>(
    cell: &LstmCell<I, H, E, Cpu>,
    x: Tensor<(B, S, Const<I>), E, Cpu, T>,
    reverse: bool,
    collect: bool,
) -> Result<SequenceRun<B, S, H, E, Cpu, LstmState<B, H, E, Cpu>, T>, CpuError>
where
    E: Element,
    Cpu: Device<E>,
    T: Tape<E, Cpu>,
{
    let (batch, seq, _) = *x.shape();
    let inputs = split_inputs(
        x,
        &cell.weight_ih,
        &cell.weight_hh,
        &cell.bias_ih,
        &cell.bias_hh,
    )?;
    let dims = inputs.dims(reverse);
    let weights = inputs.weights();
    let (xs, xp) = inputs.project_input(&dims, &weights, true)?;
    let forward = lstm_forward(&dims, &weights, &xp)?;

    let dev = inputs.x.device().clone();
    let block = dims.block();
    let last = dims.steps * block..(dims.steps + 1) * block;
    let h = dev.try_tensor_from_vec(forward.hs[last.clone()].to_vec(), (batch, Const::<H>))?;
    let c = dev.try_tensor_from_vec(forward.cs[last].to_vec(), (batch, Const::<H>))?;
    let outputs = if collect {
        let y = outputs_in_time_order(&dims, &forward.hs);
        Some(dev.try_tensor_from_vec(y, (batch, seq, Const::<H>))?)
    } else {
        None
    };

    let mut tape = inputs.tape;
    if T::OWNS_TAPE {
        let (x, input_gradient) = (inputs.x.clone(), inputs.input_gradient);
        let params = (
            inputs.weight_ih.clone(),
            inputs.weight_hh.clone(),
            inputs.bias_ih.clone(),
            inputs.bias_hh.clone(),
        );
        let out = outputs.clone();
        let (h_ghost, c_ghost) = (h.clone(), c.clone());
        tape.add_backward_op(move |grads| {
            let dy = match &out {
                Some(out) => std::mem::take(grad(grads, out)?),
                None => Vec::new(),
            };
            let dh_last = grad(grads, &h_ghost)?.clone();
            let dc_last = grad(grads, &c_ghost)?.clone();
            let dp = lstm_backward(&dims, &weights, &forward, &dy, dh_last, dc_last)?;
            if let Some(out) = &out {
                *grad(grads, out)? = dy;
            }
            let width = dims.width();
            let mut grad_b = vec![E::zero(); width];
            add_column_sums(&dp, width, &mut grad_b);
            let (grad_w_ih, grad_w_hh, grad_xs) =
                weight_gradients(&dims, &weights, &xs, &forward.hs, &dp, &dp, input_gradient)?;
            if input_gradient {
                add_input_gradient(&dims, &grad_xs, grad(grads, &x)?);
            }
            add_into(grad(grads, &params.0)?, &grad_w_ih);
            add_into(grad(grads, &params.1)?, &grad_w_hh);
            add_into(grad(grads, &params.2)?, &grad_b);
            add_into(grad(grads, &params.3)?, &grad_b);
            Ok(())
        });
    }
    Ok(SequenceRun {
        outputs,
        last: LstmState { h, c },
        tape,
    })
}

/// What the LSTM's forward pass keeps for the backward pass, in processing order.
struct LstmForward<E> {
    /// `h`, `[S + 1, B, H]`, block 0 the zero initial state.
    hs: Vec<E>,
    /// `C`, `[S + 1, B, H]`, likewise.
    cs: Vec<E>,
    /// `tanh(C_k)`, `[S, B, H]`.
    tanh_cs: Vec<E>,
    /// The gate activations `(i, f, g, o)`, `[S, B, 4H]`.
    gates: Vec<E>,
}

fn lstm_forward<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    xp: &[E],
) -> Result<LstmForward<E>, CpuError>
where
    Cpu: Device<E>,
{
    let (hidden, width, block, steps) = (dims.hidden, dims.width(), dims.block(), dims.steps);
    let mut hs = vec![E::zero(); (steps + 1) * block];
    let mut cs = vec![E::zero(); (steps + 1) * block];
    let mut tanh_cs = vec![E::zero(); steps * block];
    let mut gates = vec![E::zero(); dims.rows() * width];
    let parts = example_parts(dims);
    let parallel = parts.len() == 1;
    let work: Vec<_> = parts
        .iter()
        .cloned()
        .zip(cut_blocks(&mut hs, steps + 1, hidden, &parts))
        .zip(cut_blocks(&mut cs, steps + 1, hidden, &parts))
        .zip(cut_blocks(&mut tanh_cs, steps, hidden, &parts))
        .zip(cut_blocks(&mut gates, steps, width, &parts))
        .collect();
    run_parts(
        work,
        |((((examples, mut hs), mut cs), mut tanh_cs), mut gates)| {
            let local = dims.part(&examples);
            let mut hp = vec![E::zero(); local.batch * width];
            for k in 0..steps {
                let (h_done, h_next) = hs.split_at_mut(k + 1);
                let h_prev: &[E] = h_done[k];
                project_hidden(
                    &local,
                    weights,
                    (k > 0).then_some(h_prev),
                    &mut hp,
                    parallel,
                )?;
                let (c_done, c_next) = cs.split_at_mut(k + 1);
                let (c_prev, c_k): (&[E], &mut [E]) = (c_done[k], &mut c_next[0]);
                let (h_k, tc_k, gates_k) = (&mut h_next[0], &mut tanh_cs[k], &mut gates[k]);
                let xp_k = &xp[dims.part_rows(k, &examples, width)];
                for b in 0..local.batch {
                    let act = &mut gates_k[b * width..(b + 1) * width];
                    let (h, c) = (
                        &mut h_k[b * hidden..][..hidden],
                        &mut c_k[b * hidden..][..hidden],
                    );
                    let tc = &mut tc_k[b * hidden..][..hidden];
                    let c_prev = &c_prev[b * hidden..][..hidden];
                    let x_row = &xp_k[b * width..(b + 1) * width];
                    let h_row = &hp[b * width..(b + 1) * width];
                    for ((a, &x), &h) in act.iter_mut().zip(x_row).zip(h_row) {
                        *a = x + h;
                    }
                    sigmoid_in_place(&mut act[..2 * hidden]);
                    tanh_in_place(&mut act[2 * hidden..3 * hidden]);
                    sigmoid_in_place(&mut act[3 * hidden..]);
                    let (i, rest) = act.split_at(hidden);
                    let (f, rest) = rest.split_at(hidden);
                    let (g, o) = rest.split_at(hidden);
                    for j in 0..hidden {
                        c[j] = f[j] * c_prev[j] + i[j] * g[j];
                    }
                    tc.copy_from_slice(c);
                    tanh_in_place(tc);
                    for j in 0..hidden {
                        h[j] = o[j] * tc[j];
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(LstmForward {
        hs,
        cs,
        tanh_cs,
        gates,
    })
}

/// The pre-activation gradients of every step, `[S·B, 4H]` in processing order, from the
/// gradients of the outputs (`[B, S, H]` in time order, or empty when not collected) and of
/// the last `h` and `C`.
fn lstm_backward<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    forward: &LstmForward<E>,
    dy: &[E],
    mut dh: Vec<E>,
    mut dc: Vec<E>,
) -> Result<Vec<E>, CpuError>
where
    Cpu: Device<E>,
{
    let (hidden, width, steps) = (dims.hidden, dims.width(), dims.steps);
    let mut dp = vec![E::zero(); dims.rows() * width];
    let parts = example_parts(dims);
    let parallel = parts.len() == 1;
    let work: Vec<_> = parts
        .iter()
        .cloned()
        .zip(cut_blocks(&mut dp, steps, width, &parts))
        .zip(cut_blocks(&mut dh, 1, hidden, &parts))
        .zip(cut_blocks(&mut dc, 1, hidden, &parts))
        .collect();
    run_parts(work, |(((examples, mut dp), mut dh), mut dc)| {
        let local = dims.part(&examples);
        let (dh, dc) = (&mut *dh[0], &mut *dc[0]);
        for k in (0..steps).rev() {
            let t = dims.time(k);
            let c_prev = &forward.cs[dims.part_rows(k, &examples, hidden)];
            let tc_k = &forward.tanh_cs[dims.part_rows(k, &examples, hidden)];
            let gates_k = &forward.gates[dims.part_rows(k, &examples, width)];
            let dp_k = &mut *dp[k];
            for b in 0..local.batch {
                let act = &gates_k[b * width..(b + 1) * width];
                let tc = &tc_k[b * hidden..(b + 1) * hidden];
                let c_prev = &c_prev[b * hidden..(b + 1) * hidden];
                let (dh, dc) = (
                    &mut dh[b * hidden..][..hidden],
                    &mut dc[b * hidden..][..hidden],
                );
                if !dy.is_empty() {
                    let at = ((examples.start + b) * steps + t) * hidden;
                    add_into(dh, &dy[at..at + hidden]);
                }
                let (i, rest) = act.split_at(hidden);
                let (f, rest) = rest.split_at(hidden);
                let (g, o) = rest.split_at(hidden);
                let dp = &mut dp_k[b * width..(b + 1) * width];
                let (dp_i, rest) = dp.split_at_mut(hidden);
                let (dp_f, rest) = rest.split_at_mut(hidden);
                let (dp_g, dp_o) = rest.split_at_mut(hidden);
                let one = E::one();
                for j in 0..hidden {
                    let (i, f, g, o, tc, dh_j) = (i[j], f[j], g[j], o[j], tc[j], dh[j]);
                    let dc_j = dc[j] + dh_j * o * (one - tc * tc);
                    dp_i[j] = dc_j * g * i * (one - i);
                    dp_f[j] = dc_j * c_prev[j] * f * (one - f);
                    dp_g[j] = dc_j * i * (one - g * g);
                    dp_o[j] = dh_j * tc * o * (one - o);
                    dc[j] = dc_j * f;
                    dh[j] = E::zero();
                }
            }
            if k > 0 {
                carry_hidden_gradient(&local, weights, dp_k, dh, parallel)?;
            }
        }
        Ok(())
    })?;
    Ok(dp)
}

/// [`TorchGruCell`] over `x` from the zero state, as one op.
#[allow(clippy::type_complexity)]
pub(crate) fn try_gru_sequence<B: Dim, S: Dim, const I: usize, const H: usize, E, T>(
    cell: &TorchGruCell<I, H, E, Cpu>,
    x: Tensor<(B, S, Const<I>), E, Cpu, T>,
    reverse: bool,
    collect: bool,
) -> Result<SequenceRun<B, S, H, E, Cpu, Tensor<(B, Const<H>), E, Cpu>, T>, CpuError>
where
    E: Element,
    Cpu: Device<E>,
    T: Tape<E, Cpu>,
{
    let (batch, seq, _) = *x.shape();
    let inputs = split_inputs(
        x,
        &cell.weight_ih,
        &cell.weight_hh,
        &cell.bias_ih,
        &cell.bias_hh,
    )?;
    let dims = inputs.dims(reverse);
    let weights = inputs.weights();
    let (xs, xp) = inputs.project_input(&dims, &weights, false)?;
    let forward = gru_forward(&dims, &weights, &xp)?;

    let dev = inputs.x.device().clone();
    let block = dims.block();
    let last = dims.steps * block..(dims.steps + 1) * block;
    let h = dev.try_tensor_from_vec(forward.hs[last].to_vec(), (batch, Const::<H>))?;
    let outputs = if collect {
        let y = outputs_in_time_order(&dims, &forward.hs);
        Some(dev.try_tensor_from_vec(y, (batch, seq, Const::<H>))?)
    } else {
        None
    };

    let mut tape = inputs.tape;
    if T::OWNS_TAPE {
        let (x, input_gradient) = (inputs.x.clone(), inputs.input_gradient);
        let params = (
            inputs.weight_ih.clone(),
            inputs.weight_hh.clone(),
            inputs.bias_ih.clone(),
            inputs.bias_hh.clone(),
        );
        let out = outputs.clone();
        let h_ghost = h.clone();
        tape.add_backward_op(move |grads| {
            let dy = match &out {
                Some(out) => std::mem::take(grad(grads, out)?),
                None => Vec::new(),
            };
            let dh_last = grad(grads, &h_ghost)?.clone();
            let (dp_x, dp_h) = gru_backward(&dims, &weights, &forward, &dy, dh_last)?;
            if let Some(out) = &out {
                *grad(grads, out)? = dy;
            }
            let width = dims.width();
            let mut grad_b_ih = vec![E::zero(); width];
            add_column_sums(&dp_x, width, &mut grad_b_ih);
            let mut grad_b_hh = vec![E::zero(); width];
            add_column_sums(&dp_h, width, &mut grad_b_hh);
            let (grad_w_ih, grad_w_hh, grad_xs) = weight_gradients(
                &dims,
                &weights,
                &xs,
                &forward.hs,
                &dp_x,
                &dp_h,
                input_gradient,
            )?;
            if input_gradient {
                add_input_gradient(&dims, &grad_xs, grad(grads, &x)?);
            }
            add_into(grad(grads, &params.0)?, &grad_w_ih);
            add_into(grad(grads, &params.1)?, &grad_w_hh);
            add_into(grad(grads, &params.2)?, &grad_b_ih);
            add_into(grad(grads, &params.3)?, &grad_b_hh);
            Ok(())
        });
    }
    Ok(SequenceRun {
        outputs,
        last: h,
        tape,
    })
}

/// What the GRU's forward pass keeps for the backward pass, in processing order.
struct GruForward<E> {
    /// `h`, `[S + 1, B, H]`, block 0 the zero initial state.
    hs: Vec<E>,
    /// The gate activations `(r, z, n)`, `[S, B, 3H]`.
    gates: Vec<E>,
    /// `W_hn·h_{k−1} + b_hn`, `[S, B, H]`.
    hn: Vec<E>,
}

fn gru_forward<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    xp: &[E],
) -> Result<GruForward<E>, CpuError>
where
    Cpu: Device<E>,
{
    let (hidden, width, block, steps) = (dims.hidden, dims.width(), dims.block(), dims.steps);
    let mut hs = vec![E::zero(); (steps + 1) * block];
    let mut hn = vec![E::zero(); steps * block];
    let mut gates = vec![E::zero(); dims.rows() * width];
    let b_hh = &weights.b_hh;
    // One share of the batch per thread through the whole sequence, as in `lstm_forward`.
    let parts = example_parts(dims);
    let parallel = parts.len() == 1;
    let work: Vec<_> = parts
        .iter()
        .cloned()
        .zip(cut_blocks(&mut hs, steps + 1, hidden, &parts))
        .zip(cut_blocks(&mut hn, steps, hidden, &parts))
        .zip(cut_blocks(&mut gates, steps, width, &parts))
        .collect();
    run_parts(work, |(((examples, mut hs), mut hn), mut gates)| {
        let local = dims.part(&examples);
        let mut hp = vec![E::zero(); local.batch * width];
        for k in 0..steps {
            let (h_done, h_next) = hs.split_at_mut(k + 1);
            let h_prev: &[E] = h_done[k];
            project_hidden(
                &local,
                weights,
                (k > 0).then_some(h_prev),
                &mut hp,
                parallel,
            )?;
            let (h_k, hn_k, gates_k) = (&mut h_next[0], &mut hn[k], &mut gates[k]);
            let xp_k = &xp[dims.part_rows(k, &examples, width)];
            for b in 0..local.batch {
                let act = &mut gates_k[b * width..(b + 1) * width];
                let (h, hn) = (
                    &mut h_k[b * hidden..][..hidden],
                    &mut hn_k[b * hidden..][..hidden],
                );
                let x_row = &xp_k[b * width..(b + 1) * width];
                let h_row = &hp[b * width..(b + 1) * width];
                let h_prev = &h_prev[b * hidden..(b + 1) * hidden];
                for j in 0..2 * hidden {
                    act[j] = x_row[j] + h_row[j] + b_hh[j];
                }
                sigmoid_in_place(&mut act[..2 * hidden]);
                for j in 0..hidden {
                    hn[j] = h_row[2 * hidden + j] + b_hh[2 * hidden + j];
                    act[2 * hidden + j] = x_row[2 * hidden + j] + act[j] * hn[j];
                }
                tanh_in_place(&mut act[2 * hidden..]);
                for j in 0..hidden {
                    let (z, n) = (act[hidden + j], act[2 * hidden + j]);
                    h[j] = n + z * (h_prev[j] - n);
                }
            }
        }
        Ok(())
    })?;
    Ok(GruForward { hs, gates, hn })
}

/// The pre-activation gradients of every step in processing order, `[S·B, 3H]` each: of the
/// input projection `(∂r, ∂z, ∂n)` and of the recurrent one `(∂r, ∂z, ∂(W_hn·h + b_hn))`.
fn gru_backward<E: Element>(
    dims: &Dims,
    weights: &Weights<E>,
    forward: &GruForward<E>,
    dy: &[E],
    mut dh: Vec<E>,
) -> Result<(Vec<E>, Vec<E>), CpuError>
where
    Cpu: Device<E>,
{
    let (hidden, width, steps) = (dims.hidden, dims.width(), dims.steps);
    let mut dp_x = vec![E::zero(); dims.rows() * width];
    let mut dp_h = vec![E::zero(); dims.rows() * width];
    let parts = example_parts(dims);
    let parallel = parts.len() == 1;
    let work: Vec<_> = parts
        .iter()
        .cloned()
        .zip(cut_blocks(&mut dp_x, steps, width, &parts))
        .zip(cut_blocks(&mut dp_h, steps, width, &parts))
        .zip(cut_blocks(&mut dh, 1, hidden, &parts))
        .collect();
    run_parts(work, |(((examples, mut dp_x), mut dp_h), mut dh)| {
        let local = dims.part(&examples);
        let dh = &mut *dh[0];
        for k in (0..steps).rev() {
            let t = dims.time(k);
            let h_prev = &forward.hs[dims.part_rows(k, &examples, hidden)];
            let hn_k = &forward.hn[dims.part_rows(k, &examples, hidden)];
            let gates_k = &forward.gates[dims.part_rows(k, &examples, width)];
            let (dp_x_k, dp_h_k) = (&mut *dp_x[k], &mut *dp_h[k]);
            for b in 0..local.batch {
                let act = &gates_k[b * width..(b + 1) * width];
                let h_prev = &h_prev[b * hidden..(b + 1) * hidden];
                let hn = &hn_k[b * hidden..(b + 1) * hidden];
                let dh = &mut dh[b * hidden..][..hidden];
                if !dy.is_empty() {
                    let at = ((examples.start + b) * steps + t) * hidden;
                    add_into(dh, &dy[at..at + hidden]);
                }
                let (r, rest) = act.split_at(hidden);
                let (z, n) = rest.split_at(hidden);
                let (dpx_r, rest) = dp_x_k[b * width..(b + 1) * width].split_at_mut(hidden);
                let (dpx_z, dpx_n) = rest.split_at_mut(hidden);
                let (dph_r, rest) = dp_h_k[b * width..(b + 1) * width].split_at_mut(hidden);
                let (dph_z, dph_n) = rest.split_at_mut(hidden);
                let one = E::one();
                for j in 0..hidden {
                    let (r, z, n, dh_j) = (r[j], z[j], n[j], dh[j]);
                    let dn = dh_j * (one - z) * (one - n * n);
                    let dr = dn * hn[j] * r * (one - r);
                    let dz = dh_j * (h_prev[j] - n) * z * (one - z);
                    dpx_r[j] = dr;
                    dpx_z[j] = dz;
                    dpx_n[j] = dn;
                    dph_r[j] = dr;
                    dph_z[j] = dz;
                    dph_n[j] = dn * r;
                    dh[j] = dh_j * z;
                }
            }
            if k > 0 {
                carry_hidden_gradient(&local, weights, dp_h_k, dh, parallel)?;
            }
        }
        Ok(())
    })?;
    Ok((dp_x, dp_h))
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn transpose_moves_every_element_across_tile_edges() {
        for [rows, cols] in [[37, 19], [16, 16], [1, 40], [512, 128]] {
            let m: Vec<f64> = (0..rows * cols).map(|i| i as f64).collect();
            let t = transpose(&m, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r],
                        m[r * cols + c],
                        "{rows}×{cols} at ({r}, {c})"
                    );
                }
            }
        }
    }
}
