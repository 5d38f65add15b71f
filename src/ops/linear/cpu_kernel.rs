//! The linear layer on the CPU in `f32`: forward and backward as [`crate::gemm`] products.
//!
//! With `x` `[R, I]` (every dimension but the last folded into the rows), `W` `[O, I]` and `∂y`
//! `[R, O]`, all row-major:
//!
//! - forward: `z ← b` on every row, then `z += x·Wᵀ` (`Wᵀ` read through strides), then
//!   `y = f(z)` in place when an activation is fused;
//! - backward: `∂z = ∂y ⊙ f′` (from `y`, read where dfdx keeps it; `∂z = ∂y` without an
//!   activation),
//!   then `∂x += ∂z·W`, `∂W += ∂zᵀ·x`, `∂b += Σ_rows ∂z`, straight into the gradients. `∂x` is
//!   skipped for an input traced with [`crate::trace::TraceInput::traced_input`].
//!
//! dfdx's own module computes the same with its `matmul` (the `gemm` crate, slower here; see
//! `BENCHMARKS.md`) plus a separate broadcast add, each allocating its result.

use core::any::TypeId;

use dfdx::shapes::HasShape;
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;

use super::{rows, LinearActivation, LinearShape};
use crate::gemm::try_gemm;
use crate::layers::Linear;
use crate::network::Element;
use crate::ops::conv2d::cpu_kernel::pool::Buffer;
use crate::ops::host::HostValues;

/// Whether `E` is `f32`, the type this kernel computes in.
pub(crate) fn is_f32<E: 'static>() -> bool {
    TypeId::of::<E>() == TypeId::of::<f32>()
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
    activation: LinearActivation,
) -> Result<Tensor<S::Output, E, Cpu, T>, CpuError> {
    // An input traced with `traced_input` gets no gradient, as in PyTorch (`crate::trace`).
    let input_gradient = !(T::OWNS_TAPE && crate::trace::take_gradient_unwanted(&x));
    // `try_contiguous` is free for a contiguous tensor (the usual case) and otherwise copies
    // with a backward op of its own, so `copy_into` reads the logical order.
    let (x, tape) = x.try_contiguous()?.split_tape();
    // The parameters join on the input's tape, which holds the gradients they accumulate into.
    let (weight, weight_tape) = layer.weight.retaped::<T>().split_tape();
    let (bias, bias_tape) = layer.bias.retaped::<T>().split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);

    let rows = rows(x.shape(), I);
    // Read where dfdx keeps them (`ops::host`), and kept so for the backward pass.
    let x_values = HostValues::of(&x);
    let weight_values = HostValues::of(&weight);
    let mut y = Vec::with_capacity(rows * O);
    let bias_values = HostValues::of(&bias);
    for _ in 0..rows {
        y.extend_from_slice(&bias_values);
    }
    let multiplied = try_gemm(
        (&x_values, false),
        (&weight_values, true),
        &mut y,
        [rows, I, O],
        true,
    );
    assert!(multiplied, "the linear kernel computes in f32 only");
    let function = activation.function();
    if let Some(function) = function {
        function.apply(&mut y);
    }
    let y = x
        .device()
        .try_tensor_from_vec(y, x.shape().output_shape())?;
    // The backward pass needs `f′`, which each activation here writes in terms of its output:
    // read from the output tensor, shared with dfdx rather than copied (`ops::host`).
    let kept_output = function
        .filter(|_| T::OWNS_TAPE)
        .map(|_| HostValues::of(&y));

    if T::OWNS_TAPE {
        let (x, weight, bias, out) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the others can be
            // borrowed mutably in turn without copying it.
            let grad_y: Vec<E> = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            // `∂z`, the gradient at the product: `∂y` itself without an activation.
            let mut grad_product = Buffer::<E>::take(0);
            let grad_z: &[E] = match (function, &kept_output) {
                (Some(function), Some(output)) => {
                    grad_product = Buffer::take(grad_y.len());
                    function.backward(output, &grad_y, &mut grad_product);
                    &grad_product
                }
                _ => &grad_y,
            };
            // `E` is `f32` (checked above), so both products run.
            if input_gradient {
                try_gemm(
                    (grad_z, false),
                    (&weight_values, false),
                    grads.get_or_alloc_mut(&x)?,
                    [rows, O, I],
                    true,
                );
            }
            try_gemm(
                (grad_z, true),
                (&x_values, false),
                grads.get_or_alloc_mut(&weight)?,
                [O, rows, I],
                true,
            );
            let grad_bias: &mut [E] = grads.get_or_alloc_mut(&bias)?;
            for row in grad_z.chunks_exact(O) {
                for (sum, &g) in grad_bias.iter_mut().zip(row) {
                    *sum += g;
                }
            }
            drop(grad_product);
            **grads.get_or_alloc_mut(&out)? = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}
