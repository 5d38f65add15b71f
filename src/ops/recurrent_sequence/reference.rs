//! The readable whole-sequence run: the cell's own step (`recurrent/cells.rs`), unrolled by the
//! runners' loop (`recurrent/sequence.rs`), all dfdx ops. The CUDA kernel, and the truth the
//! CPU kernel is tested against.

use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{NoneTape, Tape, Tensor};
use dfdx::tensor_ops::Device;

use super::SequenceRun;
use crate::network::Element;
use crate::recurrent::{unroll, RecurrentCell};

/// Runs `cell` step by step over `x` from the zero state, forwards or `reverse`d.
#[allow(clippy::type_complexity)]
pub(crate) fn try_sequence<C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    reverse: bool,
    collect: bool,
) -> Result<SequenceRun<B, S, H, E, D, C::State<B, NoneTape>, T>, D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    E: Element,
    D: Device<E>,
    T: Tape<E, D>,
{
    unroll(cell, x, None, reverse, collect)
}
