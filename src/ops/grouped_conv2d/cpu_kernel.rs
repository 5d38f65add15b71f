//! The CPU kernel of [`super::try_grouped_conv2d`]: conv2d's kernel
//! (`crate::ops::conv2d::cpu_kernel`) run once per group, as one custom dfdx op.
//!
//! Group `g` is an ordinary convolution of input channels `g·C_IN/G..(g+1)·C_IN/G` with filters
//! `g·C_OUT/G..(g+1)·C_OUT/G`, whose weights are consecutive rows of the `[C_OUT, C_IN/G, K_H,
//! K_W]` weight and whose biases a slice of the bias. Per group the op copies the group's
//! channels into a contiguous `[B, C_IN/G, H, W]` host buffer (kept for the backward pass), runs
//! conv2d's `forward`, and writes the result into the group's output channels; on backward it
//! takes the group's channels of the output gradient and of the input gradient, runs conv2d's
//! `backward` (which adds to the input gradient), writes those channels back, and adds the
//! weight and bias gradients to the group's rows. So it does the grouped convolution's own
//! multiply-adds, a `G`-th of the ungrouped one's, at the conv kernel's rate, plus copies of the
//! input, the output and their gradients. With one group nothing is copied besides what conv2d's
//! op copies: it is the conv2d kernel.

use std::ops::Range;

use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use rayon::prelude::*;

use crate::layers::GroupedConv2d;
use crate::network::Element;
use crate::ops::conv2d::cpu_kernel::{add_into, backward, forward, host_copy, Buffer, ConvDims};
use crate::ops::Conv2dGeometry;

/// The channels `range` of `values` (`[B, channels, plane]`, row-major) as a contiguous
/// `[B, range.len(), plane]` buffer.
fn take_channels<E: Element>(
    values: &[E],
    channels: usize,
    range: Range<usize>,
    plane: usize,
) -> Buffer<E> {
    let batch = values.len() / (channels * plane).max(1);
    let mut out = Buffer::take(batch * range.len() * plane);
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(range.len() * plane)
        .zip(values.par_chunks(channels * plane))
        .for_each(|(out, example)| {
            out.copy_from_slice(&example[range.start * plane..range.end * plane])
        });
    out
}

/// Writes `group` (`[B, range.len(), plane]`) into the channels `range` of `values`
/// (`[B, channels, plane]`): the inverse of [`take_channels`].
fn put_channels<E: Element>(
    values: &mut [E],
    channels: usize,
    range: Range<usize>,
    plane: usize,
    group: &[E],
) {
    if group.is_empty() {
        return;
    }
    values
        .par_chunks_mut(channels * plane)
        .zip(group.par_chunks(range.len() * plane))
        .for_each(|(example, group)| {
            example[range.start * plane..range.end * plane].copy_from_slice(group)
        });
}

/// The dfdx op: runs conv2d's `forward` per group and records the per-group `backward` on the
/// tape. The caller has checked the channel counts and that `O_H`, `O_W` follow from the
/// geometry.
#[allow(clippy::type_complexity)]
pub(crate) fn try_grouped_conv2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const GROUPS: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    T: Tape<E, Cpu>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Cpu, T>,
    layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, Cpu>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Cpu, T>, CpuError> {
    let batch = x.shape().0;
    let filters_per_group = C_OUT / GROUPS;
    // The convolution of one group.
    let dims = ConvDims::new(
        batch.size(),
        [C_IN_PER_GROUP, filters_per_group],
        [H, W],
        [K_H, K_W],
        geometry.stride,
        geometry.padding,
    )
    .filter(|dims| dims.output == [O_H, O_W])
    .unwrap_or_else(|| panic!("grouped_conv2d kernel: no {O_H}×{O_W} output for {geometry:?}"));
    let (plane_x, plane_y) = (H * W, O_H * O_W);
    let input_channels = move |g: usize| g * C_IN_PER_GROUP..(g + 1) * C_IN_PER_GROUP;
    let filters = move |g: usize| g * filters_per_group..(g + 1) * filters_per_group;
    let weight_rows = move |g: usize| {
        let len = filters_per_group * dims.window_len();
        g * len..(g + 1) * len
    };

    // As in conv2d's op: the input read in its logical order, the parameters joining the
    // input's tape.
    let (x, tape) = x.try_contiguous()?.split_tape();
    let (weight, weight_tape) = layer.weight.retaped::<T>().try_contiguous()?.split_tape();
    let (bias, bias_tape) = layer.bias.retaped::<T>().try_contiguous()?.split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);

    let mut x_values = Buffer::take(dims.batch * C_IN * plane_x);
    x.copy_into(&mut x_values);
    // Each group's input, contiguous, kept for the backward pass.
    let x_groups: Vec<Buffer<E>> = if GROUPS == 1 {
        vec![x_values]
    } else {
        (0..GROUPS)
            .map(|g| take_channels(&x_values, C_IN, input_channels(g), plane_x))
            .collect()
    };
    let weight_values = host_copy(&weight);
    let bias_values = host_copy(&bias);
    let y = if GROUPS == 1 {
        forward(&dims, &x_groups[0], &weight_values, &bias_values, false)
    } else {
        let mut y = vec![E::zero(); dims.batch * C_OUT * plane_y];
        for (g, x_group) in x_groups.iter().enumerate() {
            let y_group = forward(
                &dims,
                x_group,
                &weight_values[weight_rows(g)],
                &bias_values[filters(g)],
                false,
            );
            put_channels(&mut y, C_OUT, filters(g), plane_y, &y_group);
        }
        y
    };
    let y = x
        .device()
        .try_tensor_from_vec(y, (batch, Const, Const, Const))?;

    if T::OWNS_TAPE {
        let (x, weight, bias, out) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the other three can be
            // borrowed mutably in turn without copying it.
            let grad_y = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            let mut grad_weight = std::mem::take(&mut **grads.get_or_alloc_mut(&weight)?);
            for (g, x_group) in x_groups.iter().enumerate() {
                let weight_group = &weight_values[weight_rows(g)];
                let grad_weight = &mut grad_weight[weight_rows(g)];
                let grad_x = grads.get_or_alloc_mut(&x)?;
                let grad_bias = if GROUPS == 1 {
                    backward(
                        &dims,
                        x_group,
                        weight_group,
                        &grad_y,
                        Some(grad_x),
                        grad_weight,
                    )
                } else {
                    let grad_y_group = take_channels(&grad_y, C_OUT, filters(g), plane_y);
                    // `backward` adds to the input gradient: it gets the group's channels as
                    // they are, and they go back with its contribution added.
                    let mut grad_x_group = take_channels(grad_x, C_IN, input_channels(g), plane_x);
                    let sums = backward(
                        &dims,
                        x_group,
                        weight_group,
                        &grad_y_group,
                        Some(&mut grad_x_group),
                        grad_weight,
                    );
                    put_channels(grad_x, C_IN, input_channels(g), plane_x, &grad_x_group);
                    sums
                };
                add_into(&mut grads.get_or_alloc_mut(&bias)?[filters(g)], &grad_bias);
            }
            **grads.get_or_alloc_mut(&weight)? = grad_weight;
            **grads.get_or_alloc_mut(&out)? = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_conv_channel_copies_are_inverse() {
        // [2 examples, 3 channels, plane 2]
        let values: Vec<f64> = (0..12).map(f64::from).collect();
        let middle = take_channels(&values, 3, 1..2, 2);
        assert_eq!(&middle[..], [2.0, 3.0, 8.0, 9.0]);
        let mut zeros = vec![0.0; 12];
        put_channels(&mut zeros, 3, 1..2, 2, &middle);
        assert_eq!(zeros, [0., 0., 2., 3., 0., 0., 0., 0., 8., 9., 0., 0.]);
    }
}
