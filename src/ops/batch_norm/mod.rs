//! Batch normalisation in the three modes a network runs in: training that updates the running
//! statistics (`forward_mut` with a tape), training that does not (`forward` with a tape, e.g.
//! a gradient check), and evaluation (no tape).
//!
//! The arithmetic is that of dfdx's own batch-norm layers (their `train_fwd` and `infer_fwd`,
//! which dfdx does not export), written with public dfdx ops so it runs and differentiates on
//! every device; this module picks the mode from the tape, as `dropout` does, so that generated
//! code has one call per layer.
//!
//! With `x` of shape `[B, C, …]` (the channel axis second) and `n` values per channel,
//! training computes per channel `μ = Σx/n`, `σ² = Σ(x − μ)²/n`, `x̂ = (x − μ)/√(σ² + ε)` and
//! `y = γ·x̂ + β`; its backward pass is `∂β = Σ∂y`, `∂γ = Σ∂y·x̂` and
//! `∂x = γ/√(σ² + ε) · (∂y − ∂β/n − x̂·∂γ/n)`. PyTorch: `nn.BatchNorm2d` / `nn.BatchNorm1d`.
//!
//! - Training runs through [`BatchNormKernel`]: on [`Cpu`](dfdx::tensor::Cpu) in `f32`, one op
//!   (`cpu_kernel.rs`: two passes for the statistics, one for the output, two back); elsewhere
//!   the composition `train`, about ten dfdx ops each way, each allocating a tensor the size of
//!   `x`. The tests hold the kernel to the composition and to PyTorch.
//! - Evaluation is one pass on the CPU in `f32` (`infer_on_cpu_f32`), the composition
//!   `infer` elsewhere.

use dfdx::nn::modules::{BatchNorm1D, BatchNorm2D};
use dfdx::shapes::{
    Axes, Axes3, Axis, BroadcastShapeTo, Const, Dim, Dtype, HasAxes, HasShape, Rank1,
};
use dfdx::shapes::{ReduceShapeTo, Shape};
use dfdx::tensor::Storage;
use dfdx::tensor::{PutTape, SplitTape, Tape, Tensor};
use dfdx::tensor_ops::{BroadcastTo, Device, MeanTo, TryAdd, TryDiv, TryMul, TrySub};

use crate::network::Element;

mod cpu_kernel;

/// A batch-norm layer's tensors and settings as the training kernels take them; the running
/// statistics are updated in place.
#[derive(Debug)]
pub struct Normalisation<'a, const C: usize, E: Dtype, D: Storage<E>> {
    /// The running mean, updated as `(1 − momentum)·running + momentum·μ`.
    pub running_mean: &'a mut Tensor<Rank1<C>, E, D>,
    /// The running variance, updated with the unbiased batch variance `σ²·n/(n − 1)`.
    pub running_var: &'a mut Tensor<Rank1<C>, E, D>,
    /// `γ`.
    pub scale: &'a Tensor<Rank1<C>, E, D>,
    /// `β`.
    pub bias: &'a Tensor<Rank1<C>, E, D>,
    /// `ε`, added to the variance.
    pub epsilon: f64,
    /// The running statistics' momentum (PyTorch's convention: the weight of the new batch).
    pub momentum: f64,
    /// Whether a ReLU follows, applied in the same pass: `max(0, y)`, gradient 0 where `y ≤ 0`.
    pub relu: bool,
}

/// The device-specific implementation of batch norm in training mode, chosen by the device
/// type as dfdx chooses its kernels.
pub trait BatchNormKernel<E: Element>: Device<E> {
    /// Normalises `x` by its batch statistics over the axes `Ax` (every axis but the channel
    /// axis, which is the second), updates the running statistics, and records the backward
    /// pass on the tape; see the [module docs](self).
    fn try_batch_norm_train<const C: usize, S, T: Tape<E, Self>, Ax: Axes>(
        x: Tensor<S, E, Self, T>,
        layer: Normalisation<'_, C, E, Self>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>
    where
        S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>;
}

/// On the CPU, the fused kernel for `f32`; the composition for other types.
impl<E: Element> BatchNormKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_batch_norm_train<const C: usize, S, T: Tape<E, Self>, Ax: Axes>(
        x: Tensor<S, E, Self, T>,
        layer: Normalisation<'_, C, E, Self>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>
    where
        S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>,
    {
        if crate::ops::linear::cpu_kernel::is_f32::<E>() {
            if let Some(layout) = cpu_kernel::Layout::of::<C, S, Ax>(x.shape()) {
                return cpu_kernel::try_train(x, layer, layout);
            }
        }
        train::<C, S, E, Self, T, Ax>(x, layer)
    }
}

/// On CUDA, the composition of dfdx ops, whose kernels run there.
#[cfg(feature = "cuda")]
impl<E: Element> BatchNormKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_batch_norm_train<const C: usize, S, T: Tape<E, Self>, Ax: Axes>(
        x: Tensor<S, E, Self, T>,
        layer: Normalisation<'_, C, E, Self>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>
    where
        S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>,
    {
        train::<C, S, E, Self, T, Ax>(x, layer)
    }
}

/// A [`Normalisation`] of `$layer` (dfdx's `BatchNorm2D` or `BatchNorm1D`, which have the same
/// fields) with the given running statistics.
macro_rules! normalisation {
    ($layer:expr, $running_mean:expr, $running_var:expr, $relu:expr) => {
        Normalisation {
            running_mean: $running_mean,
            running_var: $running_var,
            scale: &$layer.scale,
            bias: &$layer.bias,
            epsilon: $layer.epsilon,
            momentum: $layer.momentum,
            relu: $relu,
        }
    };
}

/// The public functions' one body: training with a tape (batch statistics, the running ones
/// updated through `layer`), evaluation without (the running statistics).
fn normalise<const C: usize, S, E: Element, D: BatchNormKernel<E>, T: Tape<E, D>, Ax: Axes>(
    x: Tensor<S, E, D, T>,
    layer: Normalisation<'_, C, E, D>,
) -> Result<Tensor<S, E, D, T>, D::Err>
where
    S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>,
    Rank1<C>: BroadcastShapeTo<S, Ax>,
{
    if T::OWNS_TAPE {
        return D::try_batch_norm_train::<C, S, T, Ax>(x, layer);
    }
    evaluate(x, |x| infer::<C, S, E, D, Ax>(x, &layer))
}

/// [`BatchNorm2d`](crate::layers::BatchNorm2d) on a batch of images, without updating the
/// running statistics: batch statistics with a tape, the running ones without.
pub fn try_batch_norm2d<B: Dim, const C: usize, const H: usize, const W: usize, E: Element, D, T>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    layer: &BatchNorm2D<C, E, D>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    // With a tape, the running statistics are updated on copies and dropped.
    let (mut mean, mut var) = (layer.running_mean.clone(), layer.running_var.clone());
    normalise::<C, _, E, D, T, Axes3<0, 2, 3>>(x, normalisation!(layer, &mut mean, &mut var, false))
}

/// [`try_batch_norm2d`] that, with a tape, also updates the layer's running statistics: the
/// training step (PyTorch's `train()` mode).
pub fn try_batch_norm2d_mut<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    E: Element,
    D,
    T,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    layer: &mut BatchNorm2D<C, E, D>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mean, var) = (&mut layer.running_mean, &mut layer.running_var);
    normalise::<C, _, E, D, T, Axes3<0, 2, 3>>(x, normalisation!(layer, mean, var, false))
}

/// [`try_batch_norm2d`] followed by a ReLU in the same pass (`batchnorm -> relu` in
/// `network!`): `max(0, y)`, with PyTorch's gradient 0 where `y ≤ 0`.
pub fn try_batch_norm2d_relu<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    E: Element,
    D,
    T,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    layer: &BatchNorm2D<C, E, D>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mut mean, mut var) = (layer.running_mean.clone(), layer.running_var.clone());
    normalise::<C, _, E, D, T, Axes3<0, 2, 3>>(x, normalisation!(layer, &mut mean, &mut var, true))
}

/// [`try_batch_norm2d_mut`] followed by a ReLU in the same pass.
pub fn try_batch_norm2d_relu_mut<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    E: Element,
    D,
    T,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    layer: &mut BatchNorm2D<C, E, D>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mean, var) = (&mut layer.running_mean, &mut layer.running_var);
    normalise::<C, _, E, D, T, Axes3<0, 2, 3>>(x, normalisation!(layer, mean, var, true))
}

/// [`BatchNorm1d`](crate::layers::BatchNorm1d) on a batch of vectors, without updating the
/// running statistics: batch statistics with a tape, the running ones without.
pub fn try_batch_norm1d<B: Dim, const F: usize, E: Element, D, T>(
    x: Tensor<(B, Const<F>), E, D, T>,
    layer: &BatchNorm1D<F, E, D>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mut mean, mut var) = (layer.running_mean.clone(), layer.running_var.clone());
    normalise::<F, _, E, D, T, Axis<0>>(x, normalisation!(layer, &mut mean, &mut var, false))
}

/// [`try_batch_norm1d`] that, with a tape, also updates the running statistics.
pub fn try_batch_norm1d_mut<B: Dim, const F: usize, E: Element, D, T>(
    x: Tensor<(B, Const<F>), E, D, T>,
    layer: &mut BatchNorm1D<F, E, D>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mean, var) = (&mut layer.running_mean, &mut layer.running_var);
    normalise::<F, _, E, D, T, Axis<0>>(x, normalisation!(layer, mean, var, false))
}

/// [`try_batch_norm1d`] followed by a ReLU in the same pass.
pub fn try_batch_norm1d_relu<B: Dim, const F: usize, E: Element, D, T>(
    x: Tensor<(B, Const<F>), E, D, T>,
    layer: &BatchNorm1D<F, E, D>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mut mean, mut var) = (layer.running_mean.clone(), layer.running_var.clone());
    normalise::<F, _, E, D, T, Axis<0>>(x, normalisation!(layer, &mut mean, &mut var, true))
}

/// [`try_batch_norm1d_mut`] followed by a ReLU in the same pass.
pub fn try_batch_norm1d_relu_mut<B: Dim, const F: usize, E: Element, D, T>(
    x: Tensor<(B, Const<F>), E, D, T>,
    layer: &mut BatchNorm1D<F, E, D>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err>
where
    D: BatchNormKernel<E>,
    T: Tape<E, D>,
{
    let (mean, var) = (&mut layer.running_mean, &mut layer.running_var);
    normalise::<F, _, E, D, T, Axis<0>>(x, normalisation!(layer, mean, var, true))
}

/// Runs `f` on `x` without its tape and puts the tape back: evaluation records nothing (the
/// tape is dfdx's `NoneTape` whenever this runs).
fn evaluate<S: dfdx::shapes::Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    f: impl FnOnce(Tensor<S, E, D>) -> Result<Tensor<S, E, D>, D::Err>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    let (x, tape) = x.split_tape();
    Ok(f(x)?.put_tape(tape))
}

/// Training, the reference composition: normalise by the batch's statistics, and fold them into the running ones,
/// `running = (1 − momentum)·running + momentum·batch`, the variance unbiased (`n/(n − 1)`),
/// as PyTorch does. `Ax` are the axes reduced over (all but the channel axis).
fn train<const C: usize, S, E: Dtype, D: Device<E>, T: Tape<E, D>, Ax: Axes>(
    x: Tensor<S, E, D, T>,
    layer: Normalisation<'_, C, E, D>,
) -> Result<Tensor<S, E, D, T>, D::Err>
where
    S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>,
{
    let Normalisation {
        running_mean,
        running_var,
        scale,
        bias,
        epsilon,
        momentum,
        relu,
    } = layer;
    let n = <S as HasAxes<Ax>>::size(x.shape()) as f64;
    let shape = *x.shape();
    let mean = x.retaped::<T>().try_mean::<Rank1<C>, Ax>()?;
    running_mean.try_axpy(1.0 - momentum, &mean, momentum)?;
    let centered = x.try_sub(mean.try_broadcast_like(&shape)?)?;
    let var = centered
        .retaped::<T>()
        .try_square()?
        .try_mean::<Rank1<C>, Ax>()?;
    // One example per channel has no unbiased variance; PyTorch then takes the biased one too.
    let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    running_var.try_axpy(1.0 - momentum, &var, momentum * unbias)?;
    let std = var.try_add(E::from_f64(epsilon).unwrap())?.try_sqrt()?;
    let scale = scale
        .retaped::<T>()
        .try_div(std)?
        .try_broadcast_like(&shape)?;
    let bias = bias.retaped::<T>().try_broadcast_like(&shape)?;
    let y = centered.try_mul(scale)?.try_add(bias)?;
    if relu {
        y.try_relu()
    } else {
        Ok(y)
    }
}

/// Evaluation: normalise by the running statistics.
fn infer<const C: usize, S: Shape, E: Dtype, D: Device<E>, Ax: Axes>(
    x: Tensor<S, E, D>,
    layer: &Normalisation<'_, C, E, D>,
) -> Result<Tensor<S, E, D>, D::Err>
where
    Rank1<C>: BroadcastShapeTo<S, Ax>,
{
    let Normalisation {
        running_mean,
        running_var,
        scale,
        bias,
        epsilon,
        relu,
        ..
    } = layer;
    let (running_mean, running_var) = (&**running_mean, &**running_var);
    let (scale, bias, epsilon, relu) = (*scale, *bias, *epsilon, *relu);
    if let Some(y) = infer_on_cpu_f32(&x, [running_var, running_mean, scale, bias], epsilon, relu) {
        return Ok(y);
    }
    let shape = *x.shape();
    let std = running_var
        .clone()
        .try_add(E::from_f64(epsilon).unwrap())?
        .try_sqrt()?;
    let scale = scale.clone().try_div(std)?.try_broadcast_like(&shape)?;
    let x = x.try_sub(running_mean.clone().try_broadcast_like(&shape)?)?;
    let y = x
        .try_mul(scale)?
        .try_add(bias.clone().try_broadcast_like(&shape)?)?;
    if relu {
        y.try_relu()
    } else {
        Ok(y)
    }
}

/// [`infer`] on the CPU in `f32`, when `x` is that: one pass over a copy of `x` computing
/// `(x − mean_c)·s_c + bias_c` with `s_c = scale_c / √(var_c + ε)`, the operations of the dfdx
/// composition in its order (so the values are the same), with the per-channel factors worked
/// out once instead of broadcast to the whole batch, and the channels' planes split between the
/// threads; `max(0, ·)` after it with `relu`. `None` for any other type or device (the
/// composition runs).
fn infer_on_cpu_f32<const C: usize, S: Shape, E: Dtype, D: Device<E>>(
    x: &Tensor<S, E, D>,
    [running_var, running_mean, scale, bias]: [&Tensor<Rank1<C>, E, D>; 4],
    epsilon: f64,
    relu: bool,
) -> Option<Tensor<S, E, D>> {
    use core::any::Any;
    use dfdx::tensor::{Cpu, TensorFromVec};
    use dfdx::tensor_ops::ReshapeTo;
    use rayon::prelude::*;

    let x = (x as &dyn Any).downcast_ref::<Tensor<S, f32, Cpu>>()?;
    let per_channel = |t: &Tensor<Rank1<C>, E, D>| -> Option<Vec<f32>> {
        Some(
            (t as &dyn Any)
                .downcast_ref::<Tensor<Rank1<C>, f32, Cpu>>()?
                .as_vec(),
        )
    };
    let (var, mean) = (per_channel(running_var)?, per_channel(running_mean)?);
    let (scale, bias) = (per_channel(scale)?, per_channel(bias)?);
    let factors: Vec<f32> = scale
        .iter()
        .zip(&var)
        .map(|(scale, var)| scale / (var + epsilon as f32).sqrt())
        .collect();
    let len = x.shape().num_elements();
    // `[B, C, plane]` in logical order (`plane` = H·W, or 1 for vectors).
    let mut values = vec![0.0f32; len];
    x.clone().contiguous().copy_into(&mut values);
    let batch = x.shape().concrete().into_iter().next().unwrap_or(0);
    if batch == 0 || C == 0 || len % (batch * C) != 0 {
        return None;
    }
    let plane = len / (batch * C);
    let normalise = |(index, row): (usize, &mut [f32])| {
        let channel = index % C;
        let (mean, factor, bias) = (mean[channel], factors[channel], bias[channel]);
        for value in row.iter_mut() {
            *value = (*value - mean) * factor + bias;
        }
        if relu {
            for value in row {
                *value = value.max(0.0);
            }
        }
    };
    if len >= 1 << 15 {
        values.par_chunks_mut(plane).enumerate().for_each(normalise);
    } else {
        values.chunks_mut(plane).enumerate().for_each(normalise);
    }
    let y: Box<dyn Any> = Box::new(x.device().tensor_from_vec(values, *x.shape()));
    y.downcast::<Tensor<S, E, D>>().ok().map(|y| *y)
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;

    /// The dfdx composition of [`infer`], spelled out: what the `f32` CPU pass must equal.
    fn composition<const C: usize, S: Shape, Ax: Axes>(
        x: Tensor<S, f32, Cpu>,
        [var, mean, scale, bias]: [&Tensor<Rank1<C>, f32, Cpu>; 4],
        epsilon: f64,
    ) -> Vec<f32>
    where
        Rank1<C>: BroadcastShapeTo<S, Ax>,
    {
        let shape = *x.shape();
        let std = (var.clone() + epsilon as f32).sqrt();
        let scale = (scale.clone() / std).broadcast_like(&shape);
        ((x - mean.clone().broadcast_like(&shape)) * scale + bias.clone().broadcast_like(&shape))
            .as_vec()
    }

    #[test]
    fn evaluation_on_the_cpu_equals_the_composition_bit_for_bit() {
        let dev = Cpu::seed_from_u64(1);
        let var: Tensor<Rank1<4>, f32, Cpu> = dev.sample_uniform::<Rank1<4>>() + 0.5;
        let (mean, scale, bias): (Tensor<Rank1<4>, f32, Cpu>, _, _) = (
            dev.sample_normal(),
            dev.sample_normal(),
            dev.sample_normal(),
        );
        let stats = [&var, &mean, &scale, &bias];
        let layer = |epsilon: f64, relu: bool| {
            // Evaluation reads the running statistics only.
            let (mut mean, mut var) = (mean.clone(), var.clone());
            let (scale, bias) = (scale.clone(), bias.clone());
            move |f: &dyn Fn(&Normalisation<'_, 4, f32, Cpu>) -> Vec<f32>| {
                f(&Normalisation {
                    running_mean: &mut mean,
                    running_var: &mut var,
                    scale: &scale,
                    bias: &bias,
                    epsilon,
                    momentum: 0.1,
                    relu,
                })
            }
        };
        // Images, long enough to be split between threads, and vectors; with and without the
        // ReLU after.
        let images: Tensor<Rank4<3, 4, 50, 60>, f32, Cpu> = dev.sample_normal();
        let vectors: Tensor<Rank2<5, 4>, f32, Cpu> = dev.sample_normal();
        for relu in [false, true] {
            let rectify = |v: Vec<f32>| -> Vec<f32> {
                v.into_iter()
                    .map(|v| if relu { v.max(0.0) } else { v })
                    .collect()
            };
            let fast = layer(1e-5, relu)(&|layer| {
                infer::<4, _, f32, Cpu, Axes3<0, 2, 3>>(images.clone(), layer)
                    .unwrap()
                    .as_vec()
            });
            let expected = composition::<4, _, Axes3<0, 2, 3>>(images.clone(), stats, 1e-5);
            assert_eq!(fast, rectify(expected));
            let fast = layer(1e-3, relu)(&|layer| {
                infer::<4, _, f32, Cpu, Axis<0>>(vectors.clone(), layer)
                    .unwrap()
                    .as_vec()
            });
            let expected = composition::<4, _, Axis<0>>(vectors.clone(), stats, 1e-3);
            assert_eq!(fast, rectify(expected));
        }
    }
}
