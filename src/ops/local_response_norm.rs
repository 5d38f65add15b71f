//! Local response normalisation across channels (AlexNet, ZFNet, GoogLeNet v1).

use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{ReshapeTo, TryAdd, TryDiv, TryMul};

use super::{try_avg_pool2d, try_pad2d, PadValue, Pool2dGeometry};
use crate::network::Element;

/// The settings of [`try_local_response_norm`]; `C_P = C + 2·⌊size/2⌋` (the channels with their
/// zero border) and `HW = H·W` are the sizes of the intermediate tensors, which the
/// [`network!`](crate::network!) macro computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrnWindow<const C_P: usize, const HW: usize> {
    /// Channels in each window `n` (odd).
    pub size: usize,
    /// `α`.
    pub alpha: f64,
    /// `β`.
    pub beta: f64,
    /// `k`.
    pub k: f64,
}

/// Local response normalisation across channels:
/// `y[c] = x[c] / (k + α/n · Σ_{c′ = c − ⌊n/2⌋}^{c + ⌊n/2⌋} x[c′]²)^β`, channels beyond the
/// edges counting as zero.
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, H, W]`.
///
/// PyTorch: `nn.LocalResponseNorm(n, alpha=α, beta=β, k=k)` (which divides the sum by `n` as
/// here). Krizhevsky et al. write `α` without the `1/n` and use `n = 5, α = 10⁻⁴, β = 0.75,
/// k = 2`. Only odd `n` (PyTorch pads even windows unevenly).
///
/// Written with dfdx ops and typednet's pad and average pooling along the channel axis (the
/// squares laid out as a one-channel `[C, H·W]` image), so it runs and differentiates on every
/// device.
///
/// # Panics
/// If `size` is even, or `C_P`, `HW` are not `C + 2·⌊size/2⌋`, `H·W`.
///
/// ```
/// use typednet::ops::{try_local_response_norm, LrnWindow};
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let x: Tensor<Rank4<1, 3, 1, 1>, f32, Cpu> = dev.tensor([[[[1.0]], [[2.0]], [[2.0]]]]);
/// let window = LrnWindow::<5, 1> { size: 3, alpha: 3.0, beta: 1.0, k: 1.0 };
/// let y = try_local_response_norm(x, window).unwrap();
/// // Channel 0: 1 / (1 + (0 + 1 + 4)) = 1/6.
/// assert!((y.array()[0][0][0][0] - 1.0 / 6.0).abs() < 1e-6);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_local_response_norm<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const C_P: usize,
    const HW: usize,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    window: LrnWindow<C_P, HW>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err> {
    let LrnWindow {
        size,
        alpha,
        beta,
        k,
    } = window;
    assert!(
        size % 2 == 1,
        "local_response_norm: the window size {size} must be odd"
    );
    assert_eq!(
        C + 2 * (size / 2),
        C_P,
        "local_response_norm: channels with border"
    );
    assert_eq!(H * W, HW, "local_response_norm: plane size");
    let batch = x.shape().0;
    let squares = x.retaped::<T>().try_square()?.try_reshape_like(&(
        batch,
        Const::<1>,
        Const::<C>,
        Const::<HW>,
    ))?;
    let bordered: Tensor<(B, Const<1>, Const<C_P>, Const<HW>), E, D, T> =
        try_pad2d(squares, [size / 2, 0], PadValue::Zero)?;
    let window_means: Tensor<(B, Const<1>, Const<C>, Const<HW>), E, D, T> = try_avg_pool2d(
        bordered,
        Pool2dGeometry {
            window: [size, 1],
            stride: [1, 1],
        },
    )?;
    let scale = window_means
        .try_reshape_like(&(batch, Const::<C>, Const::<H>, Const::<W>))?
        .try_mul(E::from_f64(alpha).unwrap())?
        .try_add(E::from_f64(k).unwrap())?
        .try_powf(beta)?;
    x.try_div(scale)
}
