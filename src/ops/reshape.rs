use dfdx::shapes::{Axes2, Const, Dim, Dtype, Shape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, MeanTo, ReshapeTo};

/// `[B, C, H, W]` → `[B, C·H·W]`, row-major like PyTorch's `nn.Flatten()`.
///
/// The macro computes `F = C·H·W`; the element count is checked again by dfdx at run time.
pub fn try_flatten<S: Shape, B: Dim, const F: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    batch: B,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err> {
    x.try_reshape_like(&(batch, Const::<F>))
}

/// Global average pooling: the mean of every channel over its height and width,
/// `[B, C, H, W]` → `[B, C]`.
///
/// PyTorch: `nn.AdaptiveAvgPool2d(1)` followed by `nn.Flatten()` (Keras:
/// `GlobalAveragePooling2D`). The last stage of GoogLeNet and ResNet, in place of large dense
/// layers.
///
/// ```
/// use typednet::ops::try_global_avg_pool2d;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let x = dev.tensor([[[[1.0f32, 2.0], [3.0, 6.0]], [[0.0, 0.0], [0.0, 4.0]]]]);
/// let y: Tensor<Rank2<1, 2>, f32, Cpu> = try_global_avg_pool2d(x).unwrap();
/// assert_eq!(y.array(), [[3.0, 1.0]]);
/// ```
pub fn try_global_avg_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
) -> Result<Tensor<(B, Const<C>), E, D, T>, D::Err> {
    x.try_mean::<_, Axes2<2, 3>>()
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
