//! Joining the outputs of parallel branches: along channels for images (Inception's filter
//! concatenation), along features for vectors.
//!
//! dfdx 0.13 can concatenate only along run-time (`usize`) dimensions on stable Rust (adding two
//! `Const` dimensions needs `generic_const_exprs`), so the inputs are realised to a run-time
//! channel count, joined with `concat_along`, and realised back to the `Const` size the
//! [`network!`](crate::network!) macro computed. Realising only relabels the shape (same data,
//! same tensor id), so gradients flow through `concat_along`'s backward pass, on every device.

use dfdx::shapes::{Axis, Const, Dim, Dtype};
use dfdx::tensor::{Merge, Tape, Tensor};
use dfdx::tensor_ops::{Device, RealizeTo, TryConcatAlong};

/// `[B, C1, H, W]` and `[B, C2, H, W]` → `[B, C, H, W]` with `C = C1 + C2`: `a`'s channels first.
///
/// PyTorch: `torch.cat([a, b], dim=1)`.
///
/// # Panics
/// If `C ≠ C1 + C2` (the macro computes `C`; a hand-written call with a wrong `C` is a bug).
///
/// ```
/// use typednet::ops::try_concat_channels;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let a: Tensor<Rank4<2, 3, 4, 4>, f32, Cpu> = dev.ones();
/// let b: Tensor<Rank4<2, 5, 4, 4>, f32, Cpu> = dev.zeros();
/// let joined: Tensor<Rank4<2, 8, 4, 4>, f32, Cpu> = try_concat_channels(a, b).unwrap();
/// assert_eq!(joined.as_vec().iter().sum::<f32>(), 2.0 * 3.0 * 16.0);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_concat_channels<
    B: Dim,
    const C1: usize,
    const C2: usize,
    const C: usize,
    const H: usize,
    const W: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<R>,
    R: Tape<E, D>,
>(
    a: Tensor<(B, Const<C1>, Const<H>, Const<W>), E, D, T>,
    b: Tensor<(B, Const<C2>, Const<H>, Const<W>), E, D, R>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err> {
    assert_eq!(C1 + C2, C, "concat: {C1} + {C2} channels cannot make {C}");
    let a = relabel(a.try_realize::<(B, usize, Const<H>, Const<W>)>());
    let b = relabel(b.try_realize::<(B, usize, Const<H>, Const<W>)>());
    let joined = (a, b).try_concat_along(Axis::<1>)?;
    Ok(relabel(
        joined.try_realize::<(B, Const<C>, Const<H>, Const<W>)>(),
    ))
}

/// `[B, F1]` and `[B, F2]` → `[B, F]` with `F = F1 + F2`: `a`'s features first.
///
/// PyTorch: `torch.cat([a, b], dim=1)`.
///
/// # Panics
/// If `F ≠ F1 + F2`.
pub fn try_concat_features<
    B: Dim,
    const F1: usize,
    const F2: usize,
    const F: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<R>,
    R: Tape<E, D>,
>(
    a: Tensor<(B, Const<F1>), E, D, T>,
    b: Tensor<(B, Const<F2>), E, D, R>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err> {
    assert_eq!(F1 + F2, F, "concat: {F1} + {F2} features cannot make {F}");
    let a = relabel(a.try_realize::<(B, usize)>());
    let b = relabel(b.try_realize::<(B, usize)>());
    let joined = (a, b).try_concat_along(Axis::<1>)?;
    Ok(relabel(joined.try_realize::<(B, Const<F>)>()))
}

/// The result of relabelling a size between `Const<N>` and a run-time `usize` holding `N`,
/// which cannot fail: the sizes were checked above.
pub(crate) fn relabel<T, U>(realized: Result<T, U>) -> T {
    match realized {
        Ok(tensor) => tensor,
        Err(_) => unreachable!("concat: a size changed while relabelling it"),
    }
}

/// `[B, T, F1]` and `[B, T, F2]` → `[B, T, F]` with `F = F1 + F2`: two sequences of one length
/// joined step by step, `a`'s features first.
///
/// PyTorch: `torch.cat([a, b], dim=2)`.
///
/// # Panics
/// If `F ≠ F1 + F2`, or (a run-time length) the lengths differ.
#[allow(clippy::type_complexity)]
pub fn try_concat_sequence_features<
    B: Dim,
    S: Dim,
    const F1: usize,
    const F2: usize,
    const F: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<R>,
    R: Tape<E, D>,
>(
    a: Tensor<(B, S, Const<F1>), E, D, T>,
    b: Tensor<(B, S, Const<F2>), E, D, R>,
) -> Result<Tensor<(B, S, Const<F>), E, D, T>, D::Err> {
    assert_eq!(F1 + F2, F, "concat: {F1} + {F2} features cannot make {F}");
    let a = relabel(a.try_realize::<(B, S, usize)>());
    let b = relabel(b.try_realize::<(B, S, usize)>());
    let joined = (a, b).try_concat_along(Axis::<2>)?;
    Ok(relabel(joined.try_realize::<(B, S, Const<F>)>()))
}
