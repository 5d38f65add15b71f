//! The CPU kernel of [`super::try_max_pool2d`] and [`super::try_avg_pool2d`]: one pass over each
//! plane (one channel of one example), the planes spread over rayon's threads, and a backward
//! pass of its own recorded on the tape.
//!
//! Max pooling remembers, for every output, where in its plane the maximum was (the *first*
//! maximum in row-major window order, PyTorch's rule), so its backward pass routes each output
//! gradient to exactly one input. Average pooling needs nothing from the forward pass: its
//! backward pass spreads each output gradient evenly over the window.
//!
//! The loops run along an output row: for each cell `(u, v)` of the window, every window of the
//! row reads its cell `(u, v)`, `stride` apart in the input row, and updates its own running max
//! or sum. Each window still sees its cells in row-major order (so ties and rounding come out as
//! in PyTorch, whose loop runs window by window), but the innermost loop runs over independent
//! windows and walks memory in order. Comparisons feed selects, never branches: on real data a
//! branch on them is mispredicted half the time, which made a first version several times slower.
//!
//! The forward pass reads the input where dfdx keeps it ([`crate::ops::host`]); gradients are
//! handed out mutably by [`Gradients::get_or_alloc_mut`](dfdx::tensor::Gradients), so the backward
//! pass copies nothing.

use core::hint::select_unpredictable;

use crate::ops::host::HostValues;

use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use rayon::prelude::*;

use super::{Pool2dGeometry, Reduction};
use crate::network::Element;

/// Below this many input values a rayon task costs more than the pooling it would run.
const MIN_VALUES_PER_TASK: usize = 1 << 14;

/// The sizes of one plane and its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plane {
    input: [usize; 2],
    window: [usize; 2],
    stride: [usize; 2],
    output: [usize; 2],
}

impl Plane {
    fn input_len(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn output_len(&self) -> usize {
        self.output[0] * self.output[1]
    }

    fn window_len(&self) -> usize {
        self.window[0] * self.window[1]
    }

    /// How many planes one rayon task takes, so that small planes are batched.
    fn planes_per_task(&self) -> usize {
        (MIN_VALUES_PER_TASK / self.input_len().max(1)).max(1)
    }

    /// The window cells `(u, v)` in row-major order.
    fn cells(&self) -> impl Iterator<Item = [usize; 2]> {
        let [height, width] = self.window;
        (0..height).flat_map(move |u| (0..width).map(move |v| [u, v]))
    }

    /// The plane index of cell `(u, v)` of the first window of output row `i`; the next windows
    /// of the row find theirs `stride[1]` further on.
    fn cell_start(&self, i: usize, [u, v]: [usize; 2]) -> usize {
        (i * self.stride[0] + u) * self.input[1] + v
    }

    /// Cell `(u, v)` of every window of output row `i`, as `(plane index, value)`, in output
    /// order.
    fn cell_run<'a, E: Copy>(
        &self,
        plane: &'a [E],
        i: usize,
        cell: [usize; 2],
    ) -> impl Iterator<Item = (usize, E)> + 'a {
        let (start, stride) = (self.cell_start(i, cell), self.stride[1]);
        (0..self.output[1]).map(move |j| {
            let index = start + j * stride;
            (index, plane[index])
        })
    }

    /// Max pools one plane into `y`, and when asked, each output's argmax (as an index into the
    /// plane) into `argmax`.
    ///
    /// PyTorch's rule, comparison for comparison: every output starts at −∞ with its window's
    /// first cell as argmax, and a value replaces the maximum only if it is strictly larger or
    /// NaN. So among tied values the first in row-major order wins (and takes the whole
    /// gradient), a NaN propagates, and a window of −∞ points at its first cell.
    fn max<E: Element>(&self, x: &[E], y: &mut [E], mut argmax: Option<&mut [u32]>) {
        let width = self.output[1];
        for (i, y_row) in y.chunks_exact_mut(width).enumerate() {
            let Some(argmax) = argmax.as_deref_mut() else {
                y_row.fill(E::neg_infinity());
                for cell in self.cells() {
                    for (max, (_, value)) in y_row.iter_mut().zip(self.cell_run(x, i, cell)) {
                        *max = select_unpredictable(replaces(value, *max), value, *max);
                    }
                }
                continue;
            };
            // The same comparisons, but only the argmax is carried, and the running maximum
            // read back through it: an integer select, where carrying the value as well makes
            // the compiler branch on every comparison. Starting at the first cell rather than
            // at −∞ changes nothing, as comparing a value with itself keeps it.
            let argmax_row = &mut argmax[i * width..][..width];
            for (argmax, (index, _)) in argmax_row.iter_mut().zip(self.cell_run(x, i, [0, 0])) {
                *argmax = index as u32;
            }
            for cell in self.cells() {
                for (argmax, (index, value)) in argmax_row.iter_mut().zip(self.cell_run(x, i, cell))
                {
                    let replace = replaces(value, x[*argmax as usize]);
                    *argmax = select_unpredictable(replace, index as u32, *argmax);
                }
            }
            for (max, &argmax) in y_row.iter_mut().zip(argmax_row.iter()) {
                *max = x[argmax as usize];
            }
        }
    }

    /// Average pools one plane into `y`: each window summed in row-major order from zero, then
    /// divided by its size (PyTorch's order of operations).
    fn mean<E: Element>(&self, x: &[E], y: &mut [E]) {
        let size = self.window_size::<E>();
        for (i, y_row) in y.chunks_exact_mut(self.output[1]).enumerate() {
            y_row.fill(E::zero());
            for cell in self.cells() {
                for (sum, (_, value)) in y_row.iter_mut().zip(self.cell_run(x, i, cell)) {
                    *sum += value;
                }
            }
            for sum in y_row {
                *sum /= size;
            }
        }
    }

    /// Adds every output gradient of one plane to the input that was its window's maximum.
    /// Overlapping windows may have picked the same input, hence `+=`, in order.
    fn max_backward<E: Element>(&self, argmax: &[u32], grad_x: &mut [E], grad_y: &[E]) {
        for (&g, &index) in grad_y.iter().zip(argmax) {
            grad_x[index as usize] += g;
        }
    }

    /// Adds every output gradient of one plane, divided by the window size, to each input of
    /// its window.
    fn mean_backward<E: Element>(&self, grad_x: &mut [E], grad_y: &[E]) {
        let size = self.window_size::<E>();
        for (i, grad_y_row) in grad_y.chunks_exact(self.output[1]).enumerate() {
            for cell in self.cells() {
                let start = self.cell_start(i, cell);
                let run = grad_x[start..].iter_mut().step_by(self.stride[1]);
                for (grad_x, &g) in run.zip(grad_y_row) {
                    *grad_x += g / size;
                }
            }
        }
    }

    fn window_size<E: Element>(&self) -> E {
        E::from_usize(self.window_len()).expect("pool2d: the window size as a float")
    }
}

/// Whether `value` replaces the running maximum `max`: PyTorch's `val > maxval || isnan(val)`.
///
/// Computed without short-circuit and used through `select_unpredictable`, so that the compiler
/// emits conditional moves: on real data the outcome is a coin toss, and a branch on it is
/// mispredicted half the time (that made the kernel several times slower).
#[inline(always)]
fn replaces<E: Element>(value: E, max: E) -> bool {
    (value > max) | value.is_nan()
}

/// Pools every window of `x` with `reduction`; the caller has checked that `O_H`, `O_W` follow
/// from the geometry.
///
/// Deliberately without a `Cpu: Device<E>` bound (everything used here is implemented for every
/// dtype): under such a bound rustc no longer sees that a `Cpu` gradient buffer is a `Vec<E>`.
pub(super) fn try_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    T: Tape<E, Cpu>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Cpu, T>,
    geometry: Pool2dGeometry,
    reduction: Reduction,
) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, Cpu, T>, CpuError> {
    let plane = Plane {
        input: [H, W],
        window: geometry.window,
        stride: geometry.stride,
        output: [O_H, O_W],
    };
    assert!(
        plane.input_len() <= u32::MAX as usize,
        "pool2d: a {H}×{W} plane has too many values to index with u32"
    );
    // A strided view (after a permute, say) is first laid out row-major by dfdx, which records
    // that copy's backward pass; a contiguous tensor passes through untouched.
    let x = x.try_contiguous()?;
    let (x, mut tape) = x.split_tape();
    let batch = x.shape().0;
    let planes = batch.size() * C;
    let input = HostValues::of(&x);
    assert_eq!(input.len(), planes * plane.input_len());
    let mut output = vec![E::zero(); planes * plane.output_len()];
    let (input_planes, output_planes) = (
        input.par_chunks(plane.input_len()),
        output.par_chunks_mut(plane.output_len()),
    );
    let pairs = input_planes
        .zip(output_planes)
        .with_min_len(plane.planes_per_task());

    // The argmax of every output, as an index into its plane, for the backward pass.
    let mut argmax: Vec<u32> = Vec::new();
    match reduction {
        Reduction::Max if T::OWNS_TAPE => {
            argmax = vec![0; planes * plane.output_len()];
            pairs
                .zip(argmax.par_chunks_mut(plane.output_len()))
                .for_each(|((x, y), argmax)| plane.max(x, y, Some(argmax)));
        }
        Reduction::Max => pairs.for_each(|(x, y)| plane.max(x, y, None)),
        Reduction::Mean => pairs.for_each(|(x, y)| plane.mean(x, y)),
    }

    let dev = x.device().clone();
    let y = dev.try_tensor_from_vec(output, (batch, Const::<C>, Const::<O_H>, Const::<O_W>))?;
    if T::OWNS_TAPE {
        // Ghosts name the tensors' gradients without keeping their data alive.
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            grads.try_alloc_for(&x_ghost)?;
            grads.try_alloc_for(&y_ghost)?;
            // dfdx lends one gradient at a time, so the output's is moved out while the input's
            // is updated, then put back: no copy.
            let grad_y: &mut Vec<E> = grads.get_or_alloc_mut(&y_ghost)?;
            let grad_y = core::mem::take(grad_y);
            let grad_x: &mut Vec<E> = grads.get_or_alloc_mut(&x_ghost)?;
            assert_eq!(
                grad_x.len(),
                planes * plane.input_len(),
                "pool2d: input gradient"
            );
            assert_eq!(
                grad_y.len(),
                planes * plane.output_len(),
                "pool2d: output gradient"
            );
            // Planes run in parallel, each owning its slice of the input gradient.
            let pairs = grad_x
                .par_chunks_mut(plane.input_len())
                .zip(grad_y.par_chunks(plane.output_len()))
                .with_min_len(plane.planes_per_task());
            match reduction {
                Reduction::Max => pairs.zip(argmax.par_chunks(plane.output_len())).for_each(
                    |((grad_x, grad_y), argmax)| plane.max_backward(argmax, grad_x, grad_y),
                ),
                Reduction::Mean => {
                    pairs.for_each(|(grad_x, grad_y)| plane.mean_backward(grad_x, grad_y))
                }
            }
            let slot: &mut Vec<E> = grads.get_or_alloc_mut(&y_ghost)?;
            *slot = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(input: [usize; 2], window: [usize; 2], stride: [usize; 2]) -> Plane {
        let output = core::array::from_fn(|axis| (input[axis] - window[axis]) / stride[axis] + 1);
        Plane {
            input,
            window,
            stride,
            output,
        }
    }

    /// Max pools one plane, returning the maxima and their indices.
    fn max(plane: &Plane, x: &[f64]) -> (Vec<f64>, Vec<u32>) {
        let mut y = vec![0.0; plane.output_len()];
        let mut argmax = vec![0; plane.output_len()];
        plane.max(x, &mut y, Some(&mut argmax));
        let mut without_argmax = vec![0.0; plane.output_len()];
        plane.max(x, &mut without_argmax, None);
        assert_eq!(
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            without_argmax
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            "the maxima depend on whether the argmax is recorded"
        );
        (y, argmax)
    }

    /// Ties go to the first maximum in row-major order, as in PyTorch's kernel
    /// (`if ((val > maxval) || std::isnan(val))` in `aten/src/ATen/native/cpu/MaxPoolKernel.cpp`).
    #[test]
    fn the_first_of_tied_maxima_wins() {
        let plane = plane([2, 3], [2, 2], [1, 1]);
        #[rustfmt::skip]
        let x = [
            0.0, 2.0, 2.0,
            2.0, 1.0, 2.0,
        ];
        assert_eq!(max(&plane, &x), (vec![2.0, 2.0], vec![1, 1]));
    }

    #[test]
    fn a_nan_is_the_maximum_and_minus_infinity_points_at_the_first_cell() {
        let plane = plane([1, 6], [1, 3], [1, 3]);
        let x = [
            1.0,
            f64::NAN,
            3.0,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        let (y, argmax) = max(&plane, &x);
        assert!(y[0].is_nan());
        assert_eq!(y[1], f64::NEG_INFINITY);
        assert_eq!(argmax, [1, 3]);
    }

    /// Every window of a row reads its cell `stride` apart; rows past the last window are left.
    #[test]
    fn windows_visit_the_right_cells() {
        let plane = plane([5, 7], [2, 3], [2, 3]);
        assert_eq!(plane.output, [2, 2]);
        let x: Vec<f64> = (0..35).map(f64::from).collect();
        let runs = |cell| {
            (0..2)
                .map(|i| {
                    plane
                        .cell_run(&x, i, cell)
                        .map(|(index, _)| index)
                        .collect()
                })
                .collect::<Vec<Vec<usize>>>()
        };
        assert_eq!(runs([0, 0]), [[0, 3], [14, 17]]);
        assert_eq!(runs([1, 2]), [[9, 12], [23, 26]]);
        // The largest value of each window is its bottom-right cell.
        assert_eq!(
            max(&plane, &x),
            (vec![9.0, 12.0, 23.0, 26.0], vec![9, 12, 23, 26])
        );
    }
}
