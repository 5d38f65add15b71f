//! The two-dimensional (grid) recurrent network of Graves, Fernández & Schmidhuber (2007), the
//! lecture notes' "multidimensional RNN": one cell per pixel, scanned from the top-left.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Axes2, Axes4, Axis, Const, Dim, Dtype, HasShape, Rank1, Rank2};
use dfdx::tensor::{NoneTape, PutTape, SplitTape, Storage, Tape, Tensor, TensorFrom};
use dfdx::tensor_ops::{
    BroadcastTo, Device, PermuteTo, ReshapeTo, SelectTo, TryAdd, TryMatMul, TryStack,
};

use super::reset_uniform;
use crate::network::Element;

/// The cell of a two-dimensional recurrent network (Graves et al. 2007, tanh units): the state
/// at pixel `(i, j)` is
///
/// `h_ij = tanh(W·x_ij + U_up·h_{i−1,j} + U_left·h_{i,j−1} + b)`,
///
/// where `x_ij` holds the `C` channels of the pixel and the states outside the grid
/// (`h_{−1,j}`, `h_{i,−1}`) are zero. The scan starts at the top-left, so `h_ij` depends on
/// every pixel above and to the left of `(i, j)`, itself included, and the bottom-right state
/// on the whole image. Run it with [`try_run_grid`] or [`try_run_grid_last`].
///
/// # Shapes
/// Image `[B, C, Hgt, Wid]` (PyTorch's convolution layout), states `[B, H]` per pixel, output
/// `[B, H, Hgt, Wid]`; parameters: `H·C + 2·H·H + H`.
///
/// No PyTorch equivalent. Initialised as PyTorch's recurrent layers: uniform in `±1/√H`.
#[derive(Debug, Clone)]
pub struct GridRnnCell<const C: usize, const H: usize, E: Dtype, D: Storage<E>> {
    /// Input weights `W`, `[H, C]`.
    pub weight_ih: Tensor<Rank2<H, C>, E, D>,
    /// Weights `U_up` of the state above, `[H, H]`.
    pub weight_up: Tensor<Rank2<H, H>, E, D>,
    /// Weights `U_left` of the state to the left, `[H, H]`.
    pub weight_left: Tensor<Rank2<H, H>, E, D>,
    /// Bias `b`, `[H]`.
    pub bias: Tensor<Rank1<H>, E, D>,
}

impl<const C: usize, const H: usize, E: Element, D: Device<E>> TensorCollection<E, D>
    for GridRnnCell<C, H, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = GridRnnCell<C, H, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight_ih",
                    |s| &s.weight_ih,
                    |s| &mut s.weight_ih,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "weight_up",
                    |s| &s.weight_up,
                    |s| &mut s.weight_up,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "weight_left",
                    |s| &s.weight_left,
                    |s| &mut s.weight_left,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
            ),
            |(weight_ih, weight_up, weight_left, bias)| GridRnnCell {
                weight_ih,
                weight_up,
                weight_left,
                bias,
            },
        )
    }
}

/// The states of a scan, row-major (empty unless collected), the bottom-right state and the
/// tape that recorded the scan.
type Scan<B, const H: usize, E, D, T> = (
    Vec<Tensor<(B, Const<H>), E, D, NoneTape>>,
    Option<Tensor<(B, Const<H>), E, D, NoneTape>>,
    T,
);

/// Scans the grid row by row, moving one tape through the pixels. The states it keeps carry
/// empty tapes and share their ids with the computation recorded on the returned tape.
fn scan<const C: usize, const H: usize, B: Dim, R: Dim, W: Dim, E, D, T>(
    cell: &GridRnnCell<C, H, E, D>,
    x: Tensor<(B, Const<C>, R, W), E, D, T>,
    collect: bool,
) -> Result<Scan<B, H, E, D, T>, D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (batch, _, rows, cols) = *x.shape();
    let (r, c) = (rows.size(), cols.size());
    let device = x.device().clone();
    // W·x + b for every pixel at once: [B, C, R, W] → [R, W, B, C] → [R·W·B, C] → [R·W·B, H].
    let n = r * c * batch.size();
    let flat = x
        .try_permute::<_, Axes4<2, 3, 0, 1>>()?
        .try_reshape_like(&(n, Const::<C>))?;
    let projected = flat.try_matmul(
        cell.weight_ih
            .retaped::<T>()
            .try_permute::<_, Axes2<1, 0>>()?,
    )?;
    let bias = cell
        .bias
        .retaped::<T>()
        .try_broadcast_like::<_, Axis<0>>(&(n, Const::<H>))?;
    let projected = projected
        .try_add(bias)?
        .try_reshape_like(&(rows, cols, batch, Const::<H>))?;
    let (projected, mut tape) = projected.split_tape();

    let mut states = Vec::with_capacity(if collect { r * c } else { 0 });
    let mut above: Vec<Option<Tensor<(B, Const<H>), E, D, NoneTape>>> = vec![None; c];
    let mut last = None;
    for i in 0..r {
        let row: Tensor<(W, B, Const<H>), E, D, T> = projected
            .clone()
            .put_tape(tape)
            .try_select(device.try_tensor(i)?)?;
        let (row, row_tape) = row.split_tape();
        tape = row_tape;
        let mut left: Option<Tensor<(B, Const<H>), E, D, NoneTape>> = None;
        for (j, up) in above.iter_mut().enumerate() {
            let mut z: Tensor<(B, Const<H>), E, D, T> = row
                .clone()
                .put_tape(tape)
                .try_select(device.try_tensor(j)?)?;
            if let Some(up) = up.as_ref() {
                z = z.try_add(
                    up.retaped::<T>().try_matmul(
                        cell.weight_up
                            .retaped::<T>()
                            .try_permute::<_, Axes2<1, 0>>()?,
                    )?,
                )?;
            }
            if let Some(left) = left.as_ref() {
                z = z.try_add(
                    left.retaped::<T>().try_matmul(
                        cell.weight_left
                            .retaped::<T>()
                            .try_permute::<_, Axes2<1, 0>>()?,
                    )?,
                )?;
            }
            let (h, h_tape) = z.try_tanh()?.split_tape();
            tape = h_tape;
            if collect {
                states.push(h.clone());
            }
            *up = Some(h.clone());
            left = Some(h.clone());
            last = Some(h);
        }
    }
    Ok((states, last, tape))
}

/// Runs a [`GridRnnCell`] over an image from the top-left: every state and the bottom-right
/// one.
///
/// `x` is `[B, C, Hgt, Wid]` (`Hgt`, `Wid` `Const` or run-time `usize`); the result is every
/// `h_ij` as `[B, H, Hgt, Wid]` and `h_{Hgt−1, Wid−1}` (`[B, H]`, zeros for an empty image).
/// The scan goes row by row, one pixel at a time.
///
/// As [`try_run_sequence`](super::try_run_sequence), the tape goes to the output map; the
/// bottom-right state shares its id with the computation on an empty tape, so a loss that uses
/// the map, or the map and the state, gets every gradient. For a loss on the bottom-right state
/// alone use [`try_run_grid_last`].
///
/// No PyTorch equivalent.
#[allow(clippy::type_complexity)]
pub fn try_run_grid<const C: usize, const H: usize, B: Dim, R: Dim, W: Dim, E, D, T>(
    cell: &GridRnnCell<C, H, E, D>,
    x: Tensor<(B, Const<C>, R, W), E, D, T>,
) -> Result<
    (
        Tensor<(B, Const<H>, R, W), E, D, T>,
        Tensor<(B, Const<H>), E, D, T>,
    ),
    D::Err,
>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (batch, _, rows, cols) = *x.shape();
    let device = x.device().clone();
    let (states, last, tape) = scan(cell, x, true)?;
    let last = match last {
        Some(h) => h.retaped::<T>(),
        None => device.try_zeros_like(&(batch, Const))?.retaped::<T>(),
    };
    if states.is_empty() {
        let out = device.try_zeros_like(&(batch, Const, rows, cols))?;
        return Ok((out.put_tape(tape), last));
    }
    // [R·W, B, H] (row-major pixels) → [R, W, B, H] → [B, H, R, W], copied to be contiguous.
    let states: Vec<Tensor<(B, Const<H>), E, D, T>> =
        states.iter().map(|h| h.retaped::<T>()).collect();
    let (stacked, stack_tape) = states.try_stack()?.split_tape();
    let out = stacked
        .put_tape(tape.merge(stack_tape))
        .try_reshape_like(&(rows, cols, batch, Const::<H>))?
        .try_permute::<_, Axes4<2, 3, 0, 1>>()?
        .try_reshape_like(&(batch, Const::<H>, rows, cols))?;
    Ok((out, last))
}

/// Runs a [`GridRnnCell`] over an image and returns only the bottom-right state `[B, H]`,
/// which carries the tape: for a loss on the summary of the whole image (a classifier).
/// Cheaper than [`try_run_grid`], which also gathers every state. Zeros for an empty image.
///
/// No PyTorch equivalent.
pub fn try_run_grid_last<const C: usize, const H: usize, B: Dim, R: Dim, W: Dim, E, D, T>(
    cell: &GridRnnCell<C, H, E, D>,
    x: Tensor<(B, Const<C>, R, W), E, D, T>,
) -> Result<Tensor<(B, Const<H>), E, D, T>, D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let batch = x.shape().0;
    let device = x.device().clone();
    let (_, last, tape) = scan(cell, x, false)?;
    let last = match last {
        Some(h) => h,
        None => device.try_zeros_like(&(batch, Const))?,
    };
    Ok(last.put_tape(tape))
}
