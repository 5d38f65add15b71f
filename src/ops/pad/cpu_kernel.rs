//! [`super::try_pad2d`] on the CPU, for every element type: the output is filled with the
//! border value and each input row copied into place; the backward pass adds each interior row
//! of the output's gradient to the input's. Planes are split between the threads when there are
//! many values.

use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use rayon::prelude::*;

use crate::network::Element;
use crate::ops::host::HostValues;

use crate::parallel::PARALLEL_LENGTH;

/// Where an input plane's rows lie in its padded plane.
#[derive(Clone, Copy, Debug)]
struct Border {
    /// Input rows and columns.
    size: [usize; 2],
    /// Rows above (and below), columns left (and right).
    padding: [usize; 2],
}

impl Border {
    fn input_plane(self) -> usize {
        self.size[0] * self.size[1]
    }

    fn padded_width(self) -> usize {
        self.size[1] + 2 * self.padding[1]
    }

    fn padded_plane(self) -> usize {
        (self.size[0] + 2 * self.padding[0]) * self.padded_width()
    }

    /// The interior segment of each row of a padded plane: where the input's rows go.
    fn interior(self, padded: &[impl Copy]) -> impl Iterator<Item = std::ops::Range<usize>> {
        let ([rows, columns], width) = (self.padding, self.padded_width());
        debug_assert_eq!(padded.len(), self.padded_plane());
        (0..self.size[0]).map(move |row| {
            let start = (rows + row) * width + columns;
            start..start + self.size[1]
        })
    }
}

/// Runs `f(input plane, padded plane)` on every pair, in parallel when large.
fn for_each_plane<A: Sync, P: Send>(
    input: &[A],
    padded: &mut [P],
    border: Border,
    f: impl Fn(&[A], &mut [P]) + Sync,
) {
    let (input_plane, padded_plane) = (border.input_plane(), border.padded_plane());
    if input_plane == 0 || padded_plane == 0 {
        return;
    }
    if padded.len() < PARALLEL_LENGTH {
        for (x, y) in input
            .chunks_exact(input_plane)
            .zip(padded.chunks_exact_mut(padded_plane))
        {
            f(x, y);
        }
    } else {
        input
            .par_chunks_exact(input_plane)
            .zip(padded.par_chunks_exact_mut(padded_plane))
            .for_each(|(x, y)| f(x, y));
    }
}

/// See the [module docs](self).
#[allow(clippy::type_complexity)]
pub(crate) fn try_pad2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const H_P: usize,
    const W_P: usize,
    E: Element,
    T: Tape<E, Cpu>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Cpu, T>,
    padding: [usize; 2],
    fill: E,
) -> Result<Tensor<(B, Const<C>, Const<H_P>, Const<W_P>), E, Cpu, T>, CpuError> {
    let border = Border {
        size: [H, W],
        padding,
    };
    debug_assert_eq!(border.padded_plane(), H_P * W_P);
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let batch = x.shape().0;
    let planes = batch.size() * C;
    let input = HostValues::of(&x);
    let mut padded = vec![fill; planes * H_P * W_P];
    for_each_plane(&input, &mut padded, border, |x, y| {
        for (row, segment) in x.chunks_exact(W).zip(border.interior(y)) {
            y[segment].copy_from_slice(row);
        }
    });
    drop(input);
    let y = x
        .device()
        .try_tensor_from_vec(padded, (batch, Const, Const, Const))?;
    if T::OWNS_TAPE {
        let (x, out) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the input's can be
            // borrowed mutably without copying it.
            let grad_y = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            let grad_x: &mut [E] = grads.get_or_alloc_mut(&x)?;
            // The input's planes are written, the padded ones read: the roles of the forward
            // pass's two slices, swapped.
            let (input_plane, padded_plane) = (border.input_plane(), border.padded_plane());
            let add = |grad_x: &mut [E], grad_y: &[E]| {
                for (sum, segment) in grad_x.chunks_exact_mut(W).zip(border.interior(grad_y)) {
                    for (s, &g) in sum.iter_mut().zip(&grad_y[segment]) {
                        *s += g;
                    }
                }
            };
            if input_plane > 0 && padded_plane > 0 {
                if grad_y.len() < PARALLEL_LENGTH {
                    grad_x
                        .chunks_exact_mut(input_plane)
                        .zip(grad_y.chunks_exact(padded_plane))
                        .for_each(|(x, y)| add(x, y));
                } else {
                    grad_x
                        .par_chunks_exact_mut(input_plane)
                        .zip(grad_y.par_chunks_exact(padded_plane))
                        .for_each(|(x, y)| add(x, y));
                }
            }
            **grads.get_or_alloc_mut(&out)? = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::super::reference;

    /// The kernel against the composition of dfdx ops: values and input gradients, bit for bit
    /// (both only move values and add each gradient once).
    fn check<const B: usize, const H_P: usize, const W_P: usize>(padding: [usize; 2], fill: f32) {
        let dev = Cpu::seed_from_u64(7);
        let x: Tensor<Rank4<B, 3, 5, 4>, f32, Cpu> = dev.sample_normal();
        let g: Tensor<Rank4<B, 3, H_P, W_P>, f32, Cpu> = dev.sample_normal();
        let fast: Tensor<Rank4<B, 3, H_P, W_P>, f32, _, _> =
            super::try_pad2d(x.leaky_trace(), padding, fill).unwrap();
        let slow: Tensor<Rank4<B, 3, H_P, W_P>, f32, _, _> =
            reference(x.leaky_trace(), padding, fill).unwrap();
        assert_eq!(fast.as_vec(), slow.as_vec(), "{padding:?}");
        let fast_grad = (fast * g.clone()).sum().backward().get(&x).as_vec();
        let slow_grad = (slow * g).sum().backward().get(&x).as_vec();
        assert_eq!(fast_grad, slow_grad, "{padding:?}");
    }

    #[test]
    fn the_kernel_equals_the_composition() {
        check::<2, 7, 6>([1, 1], f32::NEG_INFINITY);
        check::<2, 9, 4>([2, 0], 0.0);
        check::<2, 5, 10>([0, 3], 0.0);
        check::<2, 5, 4>([0, 0], 0.0);
        // Enough planes to be split between the threads.
        check::<700, 7, 6>([1, 1], 0.0);
    }

    #[test]
    fn the_border_holds_the_fill_and_the_middle_the_input() {
        let dev = Cpu::default();
        let x = dev.tensor([[[[1.0f32, 2.0], [3.0, 4.0]]]]);
        let y: Tensor<Rank4<1, 1, 4, 4>, f32, Cpu> = super::try_pad2d(x, [1, 1], -9.0).unwrap();
        assert_eq!(
            y.array(),
            [[[
                [-9.0, -9.0, -9.0, -9.0],
                [-9.0, 1.0, 2.0, -9.0],
                [-9.0, 3.0, 4.0, -9.0],
                [-9.0, -9.0, -9.0, -9.0]
            ]]]
        );
    }
}
