//! Batch normalisation in training mode on the CPU in `f32`, as one op.
//!
//! `x` is read as `[B, C, plane]` (`plane` = H·W for images, 1 for vectors), `n = B·plane`
//! values per channel. Per channel, with `s = γ/√(σ² + ε)`:
//!
//! - forward: `μ` and `σ²` in two passes (the second over `x − μ`, as the composition does, which
//!   keeps `σ²` accurate when `|μ| ≫ σ`), then `y = (x − μ)·s + β` in one;
//! - backward: `Σ∂y` and `Σ∂y·(x − μ)` in one pass, then
//!   `∂x += s·∂y + k·(x − μ) + j` in another, with `k = −s·Σ∂y·(x − μ)/(n·(σ² + ε))` and
//!   `j = −s·Σ∂y/n`: the module docs' formula with its per-channel factors worked out once.
//!
//! With a ReLU after (`Normalisation::relu`), `y` is clamped at 0 in the same pass, and the
//! backward pass reads `∂y` as 0 wherever `(x − μ)·s + β ≤ 0`, recomputed from `x` rather than
//! kept.
//!
//! Sums run in eight `f32` lanes within a plane (so they vectorise) and in `f64` across planes.
//! The composition of dfdx ops (`super::train`) takes about ten passes each way, each
//! allocating a tensor the size of `x`.

use dfdx::shapes::{Axes, HasAxes, HasShape, Rank1, ReduceShapeTo, Shape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use rayon::prelude::*;

use super::Normalisation;
use crate::gemm::{as_f32, as_f32_mut};
use crate::network::Element;
use crate::ops::host::HostValues;

use crate::parallel::PARALLEL_LENGTH;

/// Where a channel's values lie in `[B, C, plane]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    batch: usize,
    channels: usize,
    plane: usize,
}

impl Layout {
    /// The layout of `shape` normalised over `Ax` with `C` channels on the second axis; `None`
    /// when the shape is not `[B, C, …]` reduced over every other axis, or is empty.
    pub(crate) fn of<const C: usize, S, Ax: Axes>(shape: &S) -> Option<Self>
    where
        S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>,
    {
        let dims = shape.concrete();
        let (batch, channels) = (dims.into_iter().next()?, dims.into_iter().nth(1)?);
        let len = shape.num_elements();
        if channels != C || batch == 0 || C == 0 || !len.is_multiple_of(batch * C) {
            return None;
        }
        let layout = Self {
            batch,
            channels,
            plane: len / (batch * C),
        };
        (<S as HasAxes<Ax>>::size(shape) == layout.count()).then_some(layout)
    }

    /// `n`, the values per channel.
    fn count(self) -> usize {
        self.batch * self.plane
    }

    fn len(self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// The planes of `channel`, one per example.
    fn planes(self, values: &[f32], channel: usize) -> impl Iterator<Item = &[f32]> {
        (0..self.batch).map(move |example| {
            &values[(example * self.channels + channel) * self.plane..][..self.plane]
        })
    }

    /// `per_channel(c)` for every channel, split between the threads for long inputs.
    fn per_channel<R: Send>(self, per_channel: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
        if self.len() < PARALLEL_LENGTH {
            (0..self.channels).map(per_channel).collect()
        } else {
            (0..self.channels)
                .into_par_iter()
                .map(per_channel)
                .collect()
        }
    }

    /// `f(channel, plane)` on every plane of `values`, split between the threads by example for
    /// long inputs.
    fn for_each_plane(self, values: &mut [f32], f: impl Fn(usize, &mut [f32], usize) + Sync) {
        let example = |(index, example): (usize, &mut [f32])| {
            for (channel, plane) in example.chunks_exact_mut(self.plane).enumerate() {
                f(
                    channel,
                    plane,
                    (index * self.channels + channel) * self.plane,
                );
            }
        };
        let example_len = self.channels * self.plane;
        if self.len() < PARALLEL_LENGTH {
            values
                .chunks_exact_mut(example_len)
                .enumerate()
                .for_each(example);
        } else {
            values
                .par_chunks_exact_mut(example_len)
                .enumerate()
                .for_each(example);
        }
    }
}

/// `Σ term(v)` over `values` in eight lanes, which LLVM vectorises (a single accumulator is a
/// chain of dependent adds it must keep in order).
fn lane_sum(values: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|&v| term(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// The gradient at the normalisation's output `(x − μ)·s + β` for `g` at the layer's output:
/// `g` itself, or 0 where a ReLU after it clamped.
#[inline(always)]
fn before_relu<const RELU: bool>(g: f32, x: f32, channel: &Channel) -> f32 {
    if RELU && (x - channel.mean) * channel.factor + channel.beta <= 0.0 {
        0.0
    } else {
        g
    }
}

/// `(Σ g′, Σ g′·(x − μ))` over a plane of the gradient and of `x`, with `g′` [`before_relu`], in
/// eight lanes each.
fn gradient_sums<const RELU: bool>(grad: &[f32], x: &[f32], channel: &Channel) -> (f32, f32) {
    let mean = channel.mean;
    let (mut sums, mut products) = ([0.0f32; 8], [0.0f32; 8]);
    let (grad_chunks, x_chunks) = (grad.chunks_exact(8), x.chunks_exact(8));
    let (mut sum, mut product) = (0.0f32, 0.0f32);
    for (&g, &v) in grad_chunks.remainder().iter().zip(x_chunks.remainder()) {
        let g = before_relu::<RELU>(g, v, channel);
        sum += g;
        product += g * (v - mean);
    }
    for (g, v) in grad_chunks.zip(x_chunks) {
        for lane in 0..8 {
            let g = before_relu::<RELU>(g[lane], v[lane], channel);
            sums[lane] += g;
            products[lane] += g * (v[lane] - mean);
        }
    }
    (
        sums.iter().sum::<f32>() + sum,
        products.iter().sum::<f32>() + product,
    )
}

/// A channel's batch statistics and its factor `s = γ/√(σ² + ε)`.
#[derive(Clone, Copy, Debug)]
struct Channel {
    mean: f32,
    variance: f32,
    /// `1/(σ² + ε)`, for the backward pass's `k`.
    inverse_variance: f32,
    factor: f32,
    /// `β`.
    beta: f32,
}

/// The batch statistics of every channel of `x`.
fn statistics(x: &[f32], layout: Layout) -> Vec<(f32, f32)> {
    let n = layout.count() as f64;
    layout.per_channel(|channel| {
        let sum: f64 = layout
            .planes(x, channel)
            .map(|plane| f64::from(lane_sum(plane, |v| v)))
            .sum();
        let mean = (sum / n) as f32;
        let squares: f64 = layout
            .planes(x, channel)
            .map(|plane| f64::from(lane_sum(plane, |v| (v - mean) * (v - mean))))
            .sum();
        (mean, (squares / n) as f32)
    })
}

/// Per channel, `(Σ g′, Σ g′·(x − μ))` in `f64` over the channel's planes ([`gradient_sums`]).
fn channel_gradient_sums<const RELU: bool>(
    grad: &[f32],
    x: &[f32],
    channels: &[Channel],
    layout: Layout,
) -> Vec<(f64, f64)> {
    layout.per_channel(|index| {
        let channel = &channels[index];
        layout
            .planes(grad, index)
            .zip(layout.planes(x, index))
            .map(|(g, x)| gradient_sums::<RELU>(g, x, channel))
            .fold((0.0, 0.0), |(sum, product), (g, p)| {
                (sum + f64::from(g), product + f64::from(p))
            })
    })
}

/// `∂x += s·g′ + k·(x − μ) + j` with each channel's `(s, k, j)` in `terms`.
fn add_input_gradient<const RELU: bool>(
    grad_x: &mut [f32],
    grad: &[f32],
    x: &[f32],
    channels: &[Channel],
    terms: &[(f32, f32, f32)],
    layout: Layout,
) {
    layout.for_each_plane(grad_x, |index, plane, start| {
        let (s, k, j) = terms[index];
        let channel = &channels[index];
        let (g, x) = (&grad[start..][..layout.plane], &x[start..][..layout.plane]);
        for ((dx, &g), &x) in plane.iter_mut().zip(g).zip(x) {
            *dx += s * before_relu::<RELU>(g, x, channel) + k * (x - channel.mean) + j;
        }
    });
}

/// [`super::BatchNormKernel::try_batch_norm_train`] on the CPU. `E` must be `f32` (checked by
/// the caller) and `layout` that of `x`.
pub(crate) fn try_train<const C: usize, S: Shape, E: Element, T: Tape<E, Cpu>>(
    x: Tensor<S, E, Cpu, T>,
    layer: Normalisation<'_, C, E, Cpu>,
    layout: Layout,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    let input_gradient = !(T::OWNS_TAPE && crate::trace::take_gradient_unwanted(&x));
    // `try_contiguous` is free for a contiguous tensor (the usual case) and otherwise copies
    // with a backward op of its own, so `copy_into` reads the logical order.
    let (x, tape) = x.try_contiguous()?.split_tape();
    // γ and β join on the input's tape, which holds the gradients they accumulate into.
    let (scale, scale_tape) = layer.scale.retaped::<T>().split_tape();
    let (bias, bias_tape) = layer.bias.retaped::<T>().split_tape();
    let mut tape = tape.merge(scale_tape).merge(bias_tape);

    // Read where dfdx keeps it (`ops::host`), and kept so for the backward pass.
    let x_values = HostValues::of(&x);
    let to_f32 = |values: &[E]| -> Vec<f32> {
        as_f32(values)
            .expect("the batch-norm kernel computes in f32 only")
            .to_vec()
    };
    let (gamma, beta) = (to_f32(&scale.as_vec()), to_f32(&bias.as_vec()));
    let xs = as_f32(&x_values).expect("the batch-norm kernel computes in f32 only");
    let channels: Vec<Channel> = statistics(xs, layout)
        .into_iter()
        .zip(gamma.iter().zip(&beta))
        .map(|((mean, variance), (&gamma, &beta))| {
            let shifted = variance + layer.epsilon as f32;
            Channel {
                mean,
                variance,
                inverse_variance: 1.0 / shifted,
                factor: gamma / shifted.sqrt(),
                beta,
            }
        })
        .collect();

    // The running statistics, with the composition's formula (an `axpy` on dfdx tensors).
    let device = x.device().clone();
    let as_tensor = |values: Vec<f32>| -> Result<Tensor<Rank1<C>, E, Cpu>, CpuError> {
        let values = values
            .into_iter()
            .map(|v| E::from_f32(v).unwrap_or_default());
        device.try_tensor_from_vec(values.collect(), (dfdx::shapes::Const::<C>,))
    };
    let n = layout.count() as f64;
    // One example per channel has no unbiased variance; PyTorch then takes the biased one too.
    let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    let momentum = layer.momentum;
    let means = as_tensor(channels.iter().map(|c| c.mean).collect())?;
    layer
        .running_mean
        .try_axpy(1.0 - momentum, &means, momentum)?;
    let variances = as_tensor(channels.iter().map(|c| c.variance).collect())?;
    layer
        .running_var
        .try_axpy(1.0 - momentum, &variances, momentum * unbias)?;

    let mut y = vec![E::default(); layout.len()];
    let ys = as_f32_mut(&mut y).expect("f32, checked above");
    let relu = layer.relu;
    layout.for_each_plane(ys, |channel, plane, start| {
        let Channel {
            mean, factor, beta, ..
        } = channels[channel];
        for (y, &x) in plane.iter_mut().zip(&xs[start..][..layout.plane]) {
            *y = (x - mean) * factor + beta;
        }
        if relu {
            for y in plane {
                *y = y.max(0.0);
            }
        }
    });
    let y = device.try_tensor_from_vec(y, *x.shape())?;

    if T::OWNS_TAPE {
        let (x, scale, bias, out) = (x.ghost(), scale.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the others can be
            // borrowed mutably in turn without copying it.
            let grad_y: Vec<E> = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            let gs = as_f32(&grad_y).expect("f32, checked above");
            let xs = as_f32(&x_values).expect("f32, checked above");
            // Per channel: (Σ∂y, Σ∂y·(x − μ)).
            let sums = if relu {
                channel_gradient_sums::<true>(gs, xs, &channels, layout)
            } else {
                channel_gradient_sums::<false>(gs, xs, &channels, layout)
            };
            let grad_scale = as_f32_mut(grads.get_or_alloc_mut(&scale)?).expect("f32");
            for ((sum, &(_, product)), channel) in grad_scale.iter_mut().zip(&sums).zip(&channels) {
                // Σ∂y·x̂ = Σ∂y·(x − μ)/√(σ² + ε).
                *sum += (product * f64::from(channel.inverse_variance).sqrt()) as f32;
            }
            let grad_bias = as_f32_mut(grads.get_or_alloc_mut(&bias)?).expect("f32");
            for (sum, &(total, _)) in grad_bias.iter_mut().zip(&sums) {
                *sum += total as f32;
            }
            if input_gradient {
                let terms: Vec<(f32, f32, f32)> = channels
                    .iter()
                    .zip(&sums)
                    .map(|(channel, &(total, product))| {
                        let s = f64::from(channel.factor);
                        let k = -s * product * f64::from(channel.inverse_variance) / n;
                        let j = -s * total / n;
                        (channel.factor, k as f32, j as f32)
                    })
                    .collect();
                let grad_x = as_f32_mut(grads.get_or_alloc_mut(&x)?).expect("f32");
                if relu {
                    add_input_gradient::<true>(grad_x, gs, xs, &channels, &terms, layout);
                } else {
                    add_input_gradient::<false>(grad_x, gs, xs, &channels, &terms, layout);
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

    use super::super::{train, Normalisation};
    use crate::network::Element;

    /// Runs batch norm on `x` in `E` (the kernel when `fused`, else the composition) and returns
    /// the output, the gradients of `x`, γ and β for `∂y = g`, and the running mean and variance.
    fn run<E: Element, S, Ax: Axes>(
        shape: S,
        [x, g, gamma, beta, mean, var]: [&[f64]; 6],
        fused: bool,
        relu: bool,
    ) -> [Vec<f64>; 6]
    where
        S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<4>, Ax>,
        Cpu: Device<E>,
    {
        let dev = Cpu::default();
        let cast = |v: &[f64]| -> Vec<E> { v.iter().map(|&v| E::from_f64(v).unwrap()).collect() };
        let back = |v: Vec<E>| -> Vec<f64> { v.into_iter().map(|v| v.to_f64().unwrap()).collect() };
        let x = dev.tensor_from_vec(cast(x), shape);
        let g = dev.tensor_from_vec(cast(g), shape);
        let scale: Tensor<Rank1<4>, E, Cpu> = dev.tensor(cast(gamma));
        let bias: Tensor<Rank1<4>, E, Cpu> = dev.tensor(cast(beta));
        let mut running_mean: Tensor<Rank1<4>, E, Cpu> = dev.tensor(cast(mean));
        let mut running_var: Tensor<Rank1<4>, E, Cpu> = dev.tensor(cast(var));
        let layer = Normalisation {
            running_mean: &mut running_mean,
            running_var: &mut running_var,
            scale: &scale,
            bias: &bias,
            epsilon: 1e-5,
            momentum: 0.1,
            relu,
        };
        let y = if fused {
            let layout = super::Layout::of::<4, S, Ax>(&shape).expect("a [B, C, ...] shape");
            super::try_train(x.leaky_trace(), layer, layout).unwrap()
        } else {
            train::<4, S, E, Cpu, _, Ax>(x.leaky_trace(), layer).unwrap()
        };
        let out = back(y.as_vec());
        let grads = (y * g).sum().backward();
        [
            out,
            back(grads.get(&x).as_vec()),
            back(grads.get(&scale).as_vec()),
            back(grads.get(&bias).as_vec()),
            back(running_mean.as_vec()),
            back(running_var.as_vec()),
        ]
    }

    /// The kernel in `f32` against the composition in `f64` on the same values: outputs,
    /// gradients and running statistics, to `f32` precision relative to each's largest value.
    fn check<S, Ax: Axes>(shape: S, seed: u64)
    where
        S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<4>, Ax>,
    {
        let dev = Cpu::seed_from_u64(seed);
        let len = shape.num_elements();
        let normal = |dev: &Cpu| -> Vec<f64> {
            let t: Tensor<(usize,), f64, Cpu> = dev.sample_normal_like(&(len,));
            t.as_vec()
        };
        // Activations with an offset mean, as real ones have.
        let x: Vec<f64> = normal(&dev).iter().map(|v| 3.0 + 2.0 * v).collect();
        let g = normal(&dev);
        let (gamma, beta) = ([0.5, -1.5, 2.0, 1.0], [0.1, 0.2, -0.3, 0.0]);
        let (mean, var) = ([0.3, -0.2, 0.0, 1.0], [1.0, 2.0, 0.5, 1.5]);
        let inputs = [&x[..], &g, &gamma, &beta, &mean, &var];
        for relu in [false, true] {
            let fused = run::<f32, S, Ax>(shape, inputs, true, relu);
            let reference = run::<f64, S, Ax>(shape, inputs, false, relu);
            let names = ["y", "∂x", "∂γ", "∂β", "running mean", "running var"];
            for ((name, fused), reference) in names.iter().zip(&fused).zip(&reference) {
                assert_eq!(fused.len(), reference.len(), "{name}");
                let largest = reference.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for (i, (a, b)) in fused.iter().zip(reference).enumerate() {
                    assert!(
                        (a - b).abs() <= 2e-5 * largest,
                        "{name}[{i}]: kernel {a}, composition {b} ({shape:?}, relu {relu})"
                    );
                }
            }
        }
    }

    #[test]
    fn images_match_the_composition() {
        // Planes shorter and longer than a vector's eight lanes, and a batch long enough to be
        // split between the threads.
        check::<_, Axes3<0, 2, 3>>((Const::<2>, Const::<4>, Const::<3>, Const::<5>), 1);
        check::<_, Axes3<0, 2, 3>>((5usize, Const::<4>, Const::<1>, Const::<1>), 2);
        check::<_, Axes3<0, 2, 3>>((Const::<9>, Const::<4>, Const::<30>, Const::<31>), 3);
    }

    #[test]
    fn vectors_match_the_composition() {
        check::<_, Axis<0>>((Const::<7>, Const::<4>), 4);
        check::<_, Axis<0>>((9000usize, Const::<4>), 5);
    }

    #[test]
    fn the_layout_is_that_of_the_channel_axis() {
        let layout = super::Layout::of::<4, _, Axes3<0, 2, 3>>(&(
            3usize, Const::<4>, Const::<5>, Const::<6>,
        ));
        assert_eq!(
            layout,
            Some(super::Layout {
                batch: 3,
                channels: 4,
                plane: 30
            })
        );
        // An empty batch has no statistics; the composition runs (and fails as dfdx does).
        let empty = super::Layout::of::<4, _, Axis<0>>(&(0usize, Const::<4>));
        assert_eq!(empty, None);
    }
}
