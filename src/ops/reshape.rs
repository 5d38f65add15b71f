use dfdx::shapes::{Axes2, Axes4, Const, Dim, Dtype, HasShape, Shape};
use dfdx::tensor::{PutTape, SplitTape, Tape, Tensor};
use dfdx::tensor_ops::{Device, MeanTo, PermuteTo, ReshapeTo, TryMul};

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

/// `[B, C, H, W]` → `[B, H, C·W]`: each image read as the sequence of its `H` rows, step `t`
/// holding row `t` of every channel (channel-major), for a recurrent layer; the `rows` layer.
///
/// PyTorch: `x.permute(0, 2, 1, 3).reshape(B, H, C * W)` (for one channel, `x.squeeze(1)`: MNIST
/// read row by row).
///
/// # Panics
/// If `F ≠ C·W` (the macro computes `F`).
///
/// ```
/// use typednet::ops::try_rows;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// // Two channels of a 2×3 image: channel 0 holds 0..6, channel 1 holds 6..12.
/// let x: Tensor<Rank4<1, 2, 2, 3>, f32, Cpu> = dev.tensor([[[[0., 1., 2.], [3., 4., 5.]], [[6., 7., 8.], [9., 10., 11.]]]]);
/// let rows: Tensor<Rank3<1, 2, 6>, f32, Cpu> = try_rows(x).unwrap();
/// assert_eq!(rows.array(), [[[0., 1., 2., 6., 7., 8.], [3., 4., 5., 9., 10., 11.]]]);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_rows<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
) -> Result<Tensor<(B, Const<H>, Const<F>), E, D, T>, D::Err> {
    assert_eq!(
        C * W,
        F,
        "rows: a row of {C}×{W} values cannot have {F} features"
    );
    let batch = x.shape().0;
    x.try_permute::<_, Axes4<0, 2, 1, 3>>()?
        .try_reshape_like(&(batch, Const::<H>, Const::<F>))
}

/// `[B, C, H, W]` → `[B, W, C·H]`: each image read as the sequence of its `W` columns, left to
/// right (as a CRNN reads a line of text); the `columns` layer.
///
/// PyTorch: `x.permute(0, 3, 1, 2).reshape(B, W, C * H)`.
///
/// # Panics
/// If `F ≠ C·H`.
#[allow(clippy::type_complexity)]
pub fn try_columns<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
) -> Result<Tensor<(B, Const<W>, Const<F>), E, D, T>, D::Err> {
    assert_eq!(
        C * H,
        F,
        "columns: a column of {C}×{H} values cannot have {F} features"
    );
    let batch = x.shape().0;
    x.try_permute::<_, Axes4<0, 3, 1, 2>>()?
        .try_reshape_like(&(batch, Const::<W>, Const::<F>))
}

/// Reshapes every example of a batch to `Dst` (given with its batch dimension), keeping the
/// row-major order, like `x.reshape(B, …)` in PyTorch.
pub fn try_reshape<S: Shape, Dst: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    dst: Dst,
) -> Result<Tensor<Dst, E, D, T>, D::Err> {
    x.try_reshape_like(&dst)
}

/// Leaky ReLU, `max(0, x) + slope·min(0, x)` element-wise.
///
/// PyTorch: `nn.LeakyReLU(slope)` (the same gradient except at exactly 0, see the body).
pub fn try_leaky_relu<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    slope: f64,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    let scale = E::from_f64(slope).unwrap_or_else(E::default);
    if !(0.0..=1.0).contains(&slope) {
        return dfdx::tensor_ops::TryPReLU::try_prelu(x, scale);
    }
    // For 0 ≤ slope ≤ 1 it is max(slope·x, x): two element-wise ops, where dfdx's `prelu`
    // takes five (a broadcast scalar, a product, a comparison and a select). The gradient is
    // PyTorch's except at exactly x = 0, where `maximum` splits it: (1 + slope)/2, not slope.
    let (x, tape) = x.split_tape();
    x.clone().put_tape(tape).try_mul(scale)?.try_maximum(x)
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

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::tensor::{AsArray, Cpu, TensorFrom, Trace};
    use dfdx::tensor_ops::{Backward, SumTo};

    /// Values and gradients of the two paths (max for slopes in [0, 1], dfdx's prelu
    /// otherwise) against `max(0, x) + slope·min(0, x)` and its derivative.
    #[test]
    fn leaky_relu_values_and_gradients() {
        let dev = Cpu::default();
        let points = [-2.0f64, -0.5, 0.25, 3.0];
        for slope in [0.0, 0.2, 1.0, 1.5, -0.3] {
            let x = dev.tensor(points);
            let y = try_leaky_relu(x.leaky_trace(), slope).unwrap();
            let values = y.array();
            let gradient = y.sum::<dfdx::shapes::Rank0, _>().backward().get(&x).array();
            for (i, &p) in points.iter().enumerate() {
                let expected = p.max(0.0) + slope * p.min(0.0);
                let derivative = if p > 0.0 { 1.0 } else { slope };
                assert!((values[i] - expected).abs() < 1e-12, "slope {slope} at {p}");
                assert!(
                    (gradient[i] - derivative).abs() < 1e-12,
                    "slope {slope} at {p}"
                );
            }
        }
    }
}
