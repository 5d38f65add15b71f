use dfdx::shapes::{Const, Dim, Dtype, Shape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, ReshapeTo};

/// `[B, C, H, W]` → `[B, C·H·W]`, row-major like PyTorch's `nn.Flatten()`.
///
/// The macro computes `F = C·H·W`; the element count is checked again by dfdx at run time.
pub fn try_flatten<S: Shape, B: Dim, const F: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    batch: B,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err> {
    x.try_reshape_like(&(batch, Const::<F>))
}

/// Reshapes every example of a batch to `Dst` (given with its batch dimension), keeping the
/// row-major order, like `x.reshape(B, …)` in PyTorch.
pub fn try_reshape<S: Shape, Dst: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    dst: Dst,
) -> Result<Tensor<Dst, E, D, T>, D::Err> {
    x.try_reshape_like(&dst)
}

/// Inverted dropout with probability `p`, applied only while a gradient tape is attached
/// (training); without a tape (inference) it is the identity, so evaluation is deterministic.
///
/// PyTorch: `nn.Dropout(p)` in `train()` / `eval()` mode.
pub fn try_dropout<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    p: f64,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    if T::OWNS_TAPE && p > 0.0 {
        x.try_dropout(p)
    } else {
        Ok(x)
    }
}
