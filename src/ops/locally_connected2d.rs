//! Locally-connected 2-d layer: a convolution whose filters differ at every output position
//! (Keras `LocallyConnected2D`; DeepFace's layers L4–L6).
//!
//! # Formula
//! `y[b, o, i, j] = bias[o, i, j] + Σ_c Σ_u Σ_v weight[i, j, o, c, u, v] · x[b, c, s_h·i + u − p_h, s_w·j + v − p_w]`,
//! where `x` reads zero outside the image. With `weight[i, j] = w` and `bias[·, i, j] = b` at every
//! position it is the convolution with filters `w` and bias `b`.
//!
//! # Lowering
//! A composition of dfdx ops, so it runs and differentiates on every device (`Cpu`, `Cuda`):
//! 1. **unfold** (the convolution's im2col, [`super::conv2d::reference`]): `[B·L, C_IN·K_H·K_W]`
//!    patches, `L = O_H·O_W`, seen as `[L, B, C_IN·K_H·K_W]` (a permuted view);
//! 2. **batched matmul**, one product per position, with the weight seen as
//!    `[L, C_IN·K_H·K_W, C_OUT]` (the window's `[C_IN, K_H, K_W]` order is the weight's) →
//!    `[L, B, C_OUT]`;
//! 3. permute to `[B, C_OUT, L]`, add the bias broadcast over the batch, reshape to
//!    `[B, C_OUT, O_H, O_W]`.
//!
//! dfdx records the backward pass of each step: `gather` scatters the input gradient back
//! (summing where windows overlap), the batched matmul gives one weight gradient per position,
//! and the broadcast sums the bias gradient over the batch.
//!
//! # Cost
//! As the convolution's reference: the unfold's index tensor (`B·L·C_IN·K_H·K_W` indices) is built
//! on the host and uploaded on every call, and the patches are materialised. The arithmetic is
//! that of the convolution (`B·L·C_IN·K_H·K_W·C_OUT` multiply-adds), but as `L` small products
//! of `[B, C_IN·K_H·K_W] × [C_IN·K_H·K_W, C_OUT]` rather than one large one, and the weight is
//! `L` times larger.

use dfdx::shapes::{Axes3, Axis, Const, Dim, HasShape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{BroadcastTo, PermuteTo, ReshapeTo, TryAdd, TryMatMul};

use super::conv2d::reference::{try_unfold, UnfoldLayout, Windows};
use super::conv2d::{assert_output_size, WindowGeometry};
use super::Conv2dGeometry;
use crate::layers::LocallyConnected2d;
use crate::network::Element;

/// Locally-connected 2-d layer: every output position `(i, j)` applies filters and biases of its
/// own, `layer.weight[i, j]` and `layer.bias[·, i, j]`, to the window of the input under it.
///
/// # Formula
/// `y[b, o, i, j] = bias[o, i, j] + Σ_c Σ_u Σ_v weight[i, j, o, c, u, v] · x[b, c, s_h·i + u − p_h, s_w·j + v − p_w]`
/// (zero outside the input).
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, O_H, O_W]` with
/// `O_H = ⌊(H − K_H + 2·p_h)/s_h⌋ + 1` and `O_W = ⌊(W − K_W + 2·p_w)/s_w⌋ + 1`, as a convolution;
/// the layer's own `O_H`, `O_W` must be those.
///
/// PyTorch (no such layer; `L = O_H·O_W`, as `tools/reference_locally_connected.py` computes it):
/// `cols = F.unfold(x, (K_H, K_W), padding=(p_h, p_w), stride=(s_h, s_w))`, then
/// `torch.einsum('bkl,lok->bol', cols, weight.reshape(L, C_OUT, -1)) + bias.reshape(C_OUT, L)`,
/// reshaped to `[B, C_OUT, O_H, O_W]`. Keras: `LocallyConnected2D(C_OUT, (K_H, K_W))`.
///
/// # Panics
/// If a stride is zero, the window does not fit the padded input, or `O_H`/`O_W` differ from the
/// formula; the message names the geometry.
///
/// ```
/// use typednet::dfdx::nn::BuildModule;
/// use typednet::dfdx::prelude::*;
/// use typednet::layers::LocallyConnected2d;
/// use typednet::ops::{try_locally_connected2d, Conv2dGeometry};
///
/// let dev = Cpu::default();
/// // 3×3 windows over an 8×8 image without padding: 6×6 positions, each with 4 filters.
/// let layer = LocallyConnected2d::<2, 4, 3, 3, 6, 6, f32, Cpu>::build(&dev);
/// let images: Tensor<Rank4<5, 2, 8, 8>, f32, Cpu> = dev.sample_normal();
/// let geometry = Conv2dGeometry { stride: [1, 1], padding: [0, 0] };
/// let y: Tensor<Rank4<5, 4, 6, 6>, f32, Cpu> =
///     try_locally_connected2d(images, &layer, geometry).unwrap();
/// # let _ = y;
/// ```
#[allow(clippy::type_complexity)]
pub fn try_locally_connected2d<
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
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &LocallyConnected2d<C_IN, C_OUT, K_H, K_W, O_H, O_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    assert_output_size(
        "locally_connected2d",
        WindowGeometry {
            input: [H, W],
            kernel: [K_H, K_W],
            stride: geometry.stride,
            padding: geometry.padding,
        },
        [O_H, O_W],
    );
    let batch = x.shape().0;
    let windows = Windows {
        batch: batch.size(),
        channels: C_IN,
        input: [H, W],
        kernel: [K_H, K_W],
        stride: geometry.stride,
        padding: geometry.padding,
        output: [O_H, O_W],
    };
    let window_len = C_IN * K_H * K_W;
    let positions = O_H * O_W;

    let x = x.try_reshape_like(&(batch.size() * C_IN * H * W,))?;
    // [B·L, C_IN·K_H·K_W] → [L, B, C_IN·K_H·K_W] (a strided view).
    let patches = try_unfold(x, &windows, UnfoldLayout::PositionMajor)?
        .try_reshape_like(&(batch.size(), positions, window_len))?
        .try_permute::<_, Axes3<1, 0, 2>>()?;
    // [O_H, O_W, C_OUT, C_IN, K_H, K_W] → [L, C_IN·K_H·K_W, C_OUT] (a strided view).
    let filters = layer
        .weight
        .retaped::<T>()
        .try_reshape_like(&(positions, Const::<C_OUT>, window_len))?
        .try_permute::<_, Axes3<0, 2, 1>>()?;
    // [L, B, C_OUT] → [B, C_OUT, L] (a strided view; the bias add writes it out contiguously).
    let y = patches
        .try_matmul(filters)?
        .try_permute::<_, Axes3<1, 2, 0>>()?;
    let bias = layer
        .bias
        .retaped::<T>()
        .try_reshape_like(&(Const::<C_OUT>, positions))?
        .try_broadcast_like::<_, Axis<0>>(&(batch.size(), Const::<C_OUT>, positions))?;
    y.try_add(bias)?
        .try_reshape_like(&(batch, Const::<C_OUT>, Const::<O_H>, Const::<O_W>))
}

/// [`try_locally_connected2d`], panicking on a device error (out of memory).
#[allow(clippy::type_complexity)]
pub fn locally_connected2d<
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
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &LocallyConnected2d<C_IN, C_OUT, K_H, K_W, O_H, O_W, E, D>,
    geometry: Conv2dGeometry,
) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T> {
    try_locally_connected2d(x, layer, geometry).unwrap()
}

#[cfg(test)]
mod tests {
    use dfdx::nn::BuildModule;
    use dfdx::shapes::Rank4;
    use dfdx::tensor::{AsArray, SampleTensor, TensorFrom, TensorFromVec};

    use super::*;
    use crate::testing::TestDevice;

    /// A 1×1 window at stride 1 is a per-pixel linear map: check one value by hand.
    #[test]
    fn locally_connected_one_by_one_windows_by_hand() {
        let dev = crate::test_device!();
        let mut layer = LocallyConnected2d::<2, 1, 1, 1, 1, 2, f64, TestDevice>::build(&dev);
        // Position (0, 0): y = 2·x0 + 3·x1 + 1; position (0, 1): y = −x0 + 0.5·x1 − 1.
        layer.weight = dev.tensor_from_vec(vec![2.0, 3.0, -1.0, 0.5], Default::default());
        layer.bias = dev.tensor([[[1.0, -1.0]]]);
        let x: Tensor<Rank4<1, 2, 1, 2>, f64, TestDevice> =
            dev.tensor([[[[1.0, 2.0]], [[10.0, 20.0]]]]);
        let geometry = Conv2dGeometry {
            stride: [1, 1],
            padding: [0, 0],
        };
        let y: Tensor<Rank4<1, 1, 1, 2>, f64, TestDevice> =
            locally_connected2d(x, &layer, geometry);
        assert_eq!(y.array(), [[[[2.0 + 30.0 + 1.0, -2.0 + 10.0 - 1.0]]]]);
    }

    #[test]
    #[should_panic(expected = "locally_connected2d: the output width is ⌊(6 − 3 + 2·0)/1⌋ + 1 = 4")]
    fn locally_connected_rejects_a_wrong_output_size() {
        let dev = crate::test_device!();
        let layer = LocallyConnected2d::<1, 1, 3, 3, 3, 5, f32, TestDevice>::build(&dev);
        let x: Tensor<Rank4<1, 1, 5, 6>, f32, TestDevice> = dev.sample_normal();
        let geometry = Conv2dGeometry {
            stride: [1, 1],
            padding: [0, 0],
        };
        let _: Tensor<Rank4<1, 1, 3, 5>, f32, TestDevice> =
            locally_connected2d(x, &layer, geometry);
    }
}
