//! The linear layer on the CPU in `f32`: forward and backward as [`crate::gemm`] products.
//!
//! With `x` `[R, I]` (every dimension but the last folded into the rows), `W` `[O, I]` and `∂y`
//! `[R, O]`, all row-major:
//!
//! - forward: `y ← b` on every row, then `y += x·Wᵀ` (`Wᵀ` read through strides);
//! - backward: `∂x += ∂y·W`, `∂W += ∂yᵀ·x`, `∂b += Σ_rows ∂y`, straight into the gradients.
//!
//! dfdx's own module computes the same with its `matmul` (the `gemm` crate, slower here; see
//! `BENCHMARKS.md`) plus a separate broadcast add, each allocating its result.

use core::any::TypeId;

use dfdx::shapes::{HasShape, Shape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;

use super::{rows, LinearShape};
use crate::gemm::{gemm, MatrixRef};
use crate::layers::Linear;
use crate::network::Element;
use crate::ops::conv2d::cpu_kernel::pool::Buffer;

/// Whether `E` is `f32`, the type this kernel computes in.
pub(crate) fn is_f32<E: 'static>() -> bool {
    TypeId::of::<E>() == TypeId::of::<f32>()
}

fn as_f32<E: Element>(v: &[E]) -> &[f32] {
    assert!(is_f32::<E>());
    // SAFETY: `E` is `f32` (same type id).
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len()) }
}

fn as_f32_mut<E: Element>(v: &mut [E]) -> &mut [f32] {
    assert!(is_f32::<E>());
    // SAFETY: `E` is `f32` (same type id).
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len()) }
}

/// A tensor's values in their logical (row-major) order, in a pooled buffer: the copies of the
/// input and the weights live until the backward pass, and fresh ones of this size would be
/// mapped and unmapped by the allocator on every step (see `conv2d/cpu_kernel/pool.rs`).
fn values<S: Shape, E: Element>(tensor: &Tensor<S, E, Cpu>) -> Buffer<E> {
    let mut values = Buffer::take(tensor.shape().num_elements());
    tensor.copy_into(&mut values);
    values
}

/// [`super::try_linear`] on the CPU. `E` must be `f32` (checked by the caller).
pub(crate) fn try_linear<
    const I: usize,
    const O: usize,
    S: LinearShape<I, O>,
    E: Element,
    T: Tape<E, Cpu>,
>(
    x: Tensor<S, E, Cpu, T>,
    layer: &Linear<I, O, E, Cpu>,
) -> Result<Tensor<S::Output, E, Cpu, T>, CpuError> {
    // `try_contiguous` is free for a contiguous tensor (the usual case) and otherwise copies
    // with a backward op of its own, so `copy_into` reads the logical order.
    let (x, tape) = x.try_contiguous()?.split_tape();
    // The parameters join on the input's tape, which holds the gradients they accumulate into.
    let (weight, weight_tape) = layer.weight.retaped::<T>().split_tape();
    let (bias, bias_tape) = layer.bias.retaped::<T>().split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);

    let rows = rows(x.shape(), I);
    let x_values = values(&x);
    // The parameters' own tensors are always contiguous (dfdx builds them so and optimisers
    // update them in place).
    let weight_values = values(&weight);
    let mut y = Vec::with_capacity(rows * O);
    let bias_values = values(&bias);
    for _ in 0..rows {
        y.extend_from_slice(&bias_values);
    }
    gemm(
        MatrixRef::row_major(as_f32(&x_values), rows, I),
        MatrixRef::row_major(as_f32(&weight_values), O, I).t(),
        as_f32_mut(&mut y),
        true,
    );
    let y = x
        .device()
        .try_tensor_from_vec(y, x.shape().output_shape())?;

    if T::OWNS_TAPE {
        let (x, weight, bias, out) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the others can be
            // borrowed mutably in turn without copying it.
            let grad_y: Vec<E> = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            let grad_y_matrix = MatrixRef::row_major(as_f32(&grad_y), rows, O);
            gemm(
                grad_y_matrix,
                MatrixRef::row_major(as_f32(&weight_values), O, I),
                as_f32_mut(grads.get_or_alloc_mut(&x)?),
                true,
            );
            gemm(
                grad_y_matrix.t(),
                MatrixRef::row_major(as_f32(&x_values), rows, I),
                as_f32_mut(grads.get_or_alloc_mut(&weight)?),
                true,
            );
            let grad_bias: &mut [E] = grads.get_or_alloc_mut(&bias)?;
            for row in grad_y.chunks_exact(O) {
                for (sum, &g) in grad_bias.iter_mut().zip(row) {
                    *sum += g;
                }
            }
            **grads.get_or_alloc_mut(&out)? = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}
