//! Constant padding of images, the step before a padded pooling window.
//!
//! The border is a constant, and the gradient of the input is the output's gradient without its
//! border.
//!
//! - On [`Cpu`](dfdx::tensor::Cpu), `cpu_kernel.rs`: one pass that fills the output and copies
//!   each input row into place, and one back that adds the interior rows of the gradient.
//! - Elsewhere, `reference`: dfdx's `concat_along` on run-time sizes (stable Rust cannot add
//!   `Const` dims; see `ops/concat.rs`), four concatenations, each copying the whole tensor
//!   each way. On the CPU that took 5% of ResNet-18's inference (its stem's padded max pool).

use dfdx::shapes::{Axis, Const, Dim, HasShape};
use dfdx::tensor::{PutTape, SplitTape, Tape, Tensor};
use dfdx::tensor_ops::{Device, RealizeTo, TryConcatAlong};

mod cpu_kernel;

use super::concat::relabel;
use crate::network::Element;

/// The value a border is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadValue {
    /// Zeros: average pooling with PyTorch's default `count_include_pad=True`.
    Zero,
    /// −∞: max pooling, where a padded cell must never be a window's maximum (PyTorch pads max
    /// pooling this way).
    NegativeInfinity,
}

/// Pads every image of a batch with `padding = [rows, columns]` cells of `value` on each side:
/// `[B, C, H, W]` → `[B, C, H + 2·rows, W + 2·columns]`.
///
/// PyTorch: `F.pad(x, (columns, columns, rows, rows), value=…)`.
///
/// # Panics
/// If `H_P ≠ H + 2·rows` or `W_P ≠ W + 2·columns` (the macro computes them).
///
/// ```
/// use typednet::ops::{try_pad2d, PadValue};
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let x = dev.tensor([[[[1.0f32, 2.0], [3.0, 4.0]]]]);
/// let y: Tensor<Rank4<1, 1, 4, 2>, f32, Cpu> = try_pad2d(x, [1, 0], PadValue::Zero).unwrap();
/// assert_eq!(y.array(), [[[[0.0, 0.0], [1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]]]);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_pad2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const H_P: usize,
    const W_P: usize,
    E: Element,
    D: Pad2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    [rows, columns]: [usize; 2],
    value: PadValue,
) -> Result<Tensor<(B, Const<C>, Const<H_P>, Const<W_P>), E, D, T>, D::Err> {
    assert_eq!(
        H + 2 * rows,
        H_P,
        "pad2d: {H} + 2·{rows} rows cannot make {H_P}"
    );
    assert_eq!(
        W + 2 * columns,
        W_P,
        "pad2d: {W} + 2·{columns} columns cannot make {W_P}"
    );
    let fill = match value {
        PadValue::Zero => E::zero(),
        PadValue::NegativeInfinity => E::neg_infinity(),
    };
    D::try_pad2d_kernel(x, [rows, columns], fill)
}

/// The device-specific implementation of [`try_pad2d`], chosen by the device type as dfdx
/// chooses its kernels. The caller has checked `H_P = H + 2·rows` and `W_P = W + 2·columns`.
pub trait Pad2dKernel<E: Element>: Device<E> {
    /// Pads with `fill`, recording the backward pass on the tape.
    #[allow(clippy::type_complexity)]
    fn try_pad2d_kernel<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const H_P: usize,
        const W_P: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Self, T>,
        padding: [usize; 2],
        fill: E,
    ) -> Result<Tensor<(B, Const<C>, Const<H_P>, Const<W_P>), E, Self, T>, Self::Err>;
}

impl<E: Element> Pad2dKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_pad2d_kernel<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const H_P: usize,
        const W_P: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Self, T>,
        padding: [usize; 2],
        fill: E,
    ) -> Result<Tensor<(B, Const<C>, Const<H_P>, Const<W_P>), E, Self, T>, Self::Err> {
        cpu_kernel::try_pad2d(x, padding, fill)
    }
}

/// On CUDA the composition of dfdx ops, whose kernels run there.
#[cfg(feature = "cuda")]
impl<E: Element> Pad2dKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_pad2d_kernel<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const H_P: usize,
        const W_P: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Self, T>,
        padding: [usize; 2],
        fill: E,
    ) -> Result<Tensor<(B, Const<C>, Const<H_P>, Const<W_P>), E, Self, T>, Self::Err> {
        reference(x, padding, fill)
    }
}

/// [`try_pad2d`] as dfdx ops that run and differentiate on every device: four concatenations
/// of constant borders. What the CPU kernel is tested against.
#[allow(clippy::type_complexity)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn reference<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const H_P: usize,
    const W_P: usize,
    E: Element,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    [rows, columns]: [usize; 2],
    fill: E,
) -> Result<Tensor<(B, Const<C>, Const<H_P>, Const<W_P>), E, D, T>, D::Err> {
    let batch = x.shape().0;
    let dev = x.device().clone();
    let border = |shape: (B, Const<C>, usize, usize)| {
        let len = batch.size() * C * shape.2 * shape.3;
        dev.try_tensor_from_vec(vec![fill; len], shape)
    };
    let x = relabel(x.try_realize::<(B, Const<C>, usize, usize)>());
    let x = if columns > 0 {
        // The border takes the tape (dfdx merges a tape on the left with none on the right).
        let (x, tape) = x.split_tape();
        let left = border((batch, Const, H, columns))?.put_tape(tape);
        let x = (left, x).try_concat_along(Axis::<3>)?;
        (x, border((batch, Const, H, columns))?).try_concat_along(Axis::<3>)?
    } else {
        x
    };
    let x = if rows > 0 {
        let (x, tape) = x.split_tape();
        let top = border((batch, Const, rows, W_P))?.put_tape(tape);
        let x = (top, x).try_concat_along(Axis::<2>)?;
        (x, border((batch, Const, rows, W_P))?).try_concat_along(Axis::<2>)?
    } else {
        x
    };
    Ok(relabel(
        x.try_realize::<(B, Const<C>, Const<H_P>, Const<W_P>)>(),
    ))
}
