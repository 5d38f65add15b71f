//! The pointwise losses on the CPU in `f32`: one pass for the sum and the derivatives, one for
//! the backward pass.
//!
//! The forward pass overwrites its copy of the predictions with `ℓ′(y_i, t_i)` as it sums the
//! terms, and keeps that buffer for the backward pass, which is then `∂y += g·s·ℓ′`: nothing else
//! is kept and nothing is recomputed.

use dfdx::shapes::{HasShape, Rank0, Shape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use num_traits::NumCast;
use rayon::prelude::*;

use super::PointwiseLoss;
use crate::gemm::{as_f32, as_f32_mut};
use crate::network::Element;
use crate::ops::activations::{exp_f32, ln_1p_unit_f32};
use crate::ops::conv2d::cpu_kernel::pool::Buffer;
use crate::ops::host::HostValues;

use crate::parallel::{CHUNK, PARALLEL_LENGTH};
/// Terms summed in `f32` lanes before the lanes are added into the `f64` total.
const BLOCK: usize = 512;

/// [`super::try_pointwise_loss`] on the CPU. `E` must be `f32` (checked by the caller).
pub(super) fn try_pointwise_loss<S: Shape, E: Element, T: Tape<E, Cpu>>(
    predictions: Tensor<S, E, Cpu, T>,
    targets: Tensor<S, E, Cpu>,
    loss: PointwiseLoss,
    scale: E,
) -> Result<Tensor<Rank0, E, Cpu, T>, CpuError> {
    // `copy_into` copies the storage as it lies; `try_contiguous` (free when it already is)
    // puts it in logical order, which broadcast targets are not.
    let (predictions, mut tape) = predictions.try_contiguous()?.split_tape();
    let targets = targets.try_contiguous()?;
    let len = predictions.shape().num_elements();
    let mut derivatives = Buffer::<E>::take(len);
    predictions.copy_into(&mut derivatives);
    let target_values = HostValues::of(&targets);
    let (Some(y), Some(t)) = (as_f32_mut(&mut derivatives), as_f32(&target_values)) else {
        unreachable!("the pointwise loss kernel computes in f32 only");
    };
    let sum = match loss {
        PointwiseLoss::SquaredError => terms_and_derivatives(y, t, Term::Squared),
        PointwiseLoss::BinaryCrossEntropyWithLogits => terms_and_derivatives(y, t, Term::Bce),
    };
    drop(target_values);
    let scale_f64 = scale.to_f64().unwrap_or(f64::NAN);
    let value: E = NumCast::from(sum * scale_f64).unwrap_or_else(E::nan);
    let out = predictions.device().try_tensor_from_vec(vec![value], ())?;

    if T::OWNS_TAPE {
        let (predictions, out_ghost) = (predictions.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let g = grads.get_or_alloc_mut(&out_ghost)?[0];
            let factor = as_f32(&[g * scale]).map_or(f32::NAN, |v| v[0]);
            let grad = grads.get_or_alloc_mut(&predictions)?;
            let (Some(grad), Some(derivatives)) = (as_f32_mut(grad), as_f32(&derivatives)) else {
                unreachable!("the pointwise loss kernel computes in f32 only");
            };
            for_chunk_pairs(grad, derivatives, |grad, derivatives| {
                for (g, &d) in grad.iter_mut().zip(derivatives) {
                    *g += factor * d;
                }
            });
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}

#[derive(Clone, Copy)]
enum Term {
    Squared,
    Bce,
}

/// `Σ ℓ(y_i, t_i)`, overwriting `y` with `ℓ′(y_i, t_i)`.
fn terms_and_derivatives(y: &mut [f32], t: &[f32], term: Term) -> f64 {
    assert_eq!(y.len(), t.len());
    if y.len() < PARALLEL_LENGTH {
        return chunk_dispatch(y, t, term);
    }
    // The chunks' sums are added in order (rayon's `sum` would group them differently from run
    // to run).
    let chunk_sums: Vec<f64> = y
        .par_chunks_mut(CHUNK)
        .zip(t.par_chunks(CHUNK))
        .map(|(y, t)| chunk_dispatch(y, t, term))
        .collect();
    chunk_sums.iter().sum()
}

fn for_chunk_pairs(a: &mut [f32], b: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    if a.len() < PARALLEL_LENGTH {
        f(a, b);
    } else {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .for_each(|(a, b)| f(a, b));
    }
}

fn chunk_dispatch(y: &mut [f32], t: &[f32], term: Term) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { chunk_avx2(y, t, term) };
    }
    chunk(y, t, term)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_avx2(y: &mut [f32], t: &[f32], term: Term) -> f64 {
    chunk(y, t, term)
}

#[inline(always)]
fn chunk(y: &mut [f32], t: &[f32], term: Term) -> f64 {
    match term {
        Term::Squared => sum_terms(y, t, |y, t| {
            let residual = y - t;
            (residual * residual, 2.0 * residual)
        }),
        Term::Bce => sum_terms(y, t, bce_with_logits),
    }
}

/// `max(y, 0) − y·t + log(1 + e^{−|y|})` and its derivative `σ(y) − t`, sharing `e^{−|y|}`.
#[inline(always)]
pub(super) fn bce_with_logits(y: f32, t: f32) -> (f32, f32) {
    let e = exp_f32(-y.abs());
    let term = y.max(0.0) - y * t + ln_1p_unit_f32(e);
    // σ(y) = 1/(1 + e^{−y}) for y ≥ 0, e^{y}/(1 + e^{y}) below: no overflow either way.
    let sigma = if y >= 0.0 { 1.0 } else { e } / (1.0 + e);
    (term, sigma - t)
}

/// Sums `term(y_i, t_i).0`, writing `term(y_i, t_i).1` over `y_i`. Each block of [`BLOCK`]
/// terms is written out first by a plain element loop (which LLVM vectorises, polynomial and
/// selects included; a loop that also accumulates does not vectorise), then summed in eight
/// `f32` lanes, the blocks in `f64`.
#[inline(always)]
fn sum_terms(y: &mut [f32], t: &[f32], term: impl Fn(f32, f32) -> (f32, f32)) -> f64 {
    let mut total = 0.0f64;
    let mut terms = [0.0f32; BLOCK];
    for (y, t) in y.chunks_mut(BLOCK).zip(t.chunks(BLOCK)) {
        let terms = &mut terms[..y.len()];
        for ((y, &t), out) in y.iter_mut().zip(t).zip(terms.iter_mut()) {
            let (value, derivative) = term(*y, t);
            *out = value;
            *y = derivative;
        }
        let mut lanes = [0.0f32; 8];
        let mut eights = terms.chunks_exact(8);
        for eight in &mut eights {
            for (lane, &value) in lanes.iter_mut().zip(eight) {
                *lane += value;
            }
        }
        for (lane, &value) in lanes.iter_mut().zip(eights.remainder()) {
            *lane += value;
        }
        total += lanes
            .iter()
            .map(|&lane| <f64 as From<f32>>::from(lane))
            .sum::<f64>();
    }
    total
}
