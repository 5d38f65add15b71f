//! Batch normalisation in the three modes a network runs in: training that updates the running
//! statistics (`forward_mut` with a tape), training that does not (`forward` with a tape, e.g.
//! a gradient check), and evaluation (no tape).
//!
//! The arithmetic is that of dfdx's own batch-norm layers (their `train_fwd` and `infer_fwd`,
//! which dfdx does not export), written with public dfdx ops so it runs and differentiates on
//! every device; this module picks the mode from the tape, as `dropout` does, so that generated
//! code has one call per layer.

use dfdx::nn::modules::{BatchNorm1D, BatchNorm2D};
use dfdx::shapes::{
    Axes, Axes3, Axis, BroadcastShapeTo, Const, Dim, Dtype, HasAxes, HasShape, Rank1,
};
use dfdx::shapes::{ReduceShapeTo, Shape};
use dfdx::tensor::{PutTape, SplitTape, Tape, Tensor};
use dfdx::tensor_ops::{BroadcastTo, Device, MeanTo, TryAdd, TryDiv, TryMul, TrySub};

/// [`BatchNorm2d`](crate::layers::BatchNorm2d) on a batch of images, without updating the
/// running statistics: batch statistics with a tape, the running ones without.
pub fn try_batch_norm2d<B: Dim, const C: usize, const H: usize, const W: usize, E: Dtype, D, T>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    layer: &BatchNorm2D<C, E, D>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err>
where
    D: Device<E>,
    T: Tape<E, D>,
{
    if T::OWNS_TAPE {
        // Statistics of this batch; the running ones are updated on copies and dropped.
        let (mut mean, mut var) = (layer.running_mean.clone(), layer.running_var.clone());
        return train::<C, _, E, D, T, Axes3<0, 2, 3>>(
            x,
            &mut var,
            &mut mean,
            &layer.scale,
            &layer.bias,
            layer.epsilon,
            layer.momentum,
        );
    }
    evaluate(x, |x| {
        infer::<C, _, E, D, Axes3<0, 2, 3>>(
            x,
            &layer.running_var,
            &layer.running_mean,
            &layer.scale,
            &layer.bias,
            layer.epsilon,
        )
    })
}

/// [`try_batch_norm2d`] that, with a tape, also updates the layer's running statistics: the
/// training step (PyTorch's `train()` mode).
pub fn try_batch_norm2d_mut<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    E: Dtype,
    D,
    T,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    layer: &mut BatchNorm2D<C, E, D>,
) -> Result<Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>, D::Err>
where
    D: Device<E>,
    T: Tape<E, D>,
{
    if !T::OWNS_TAPE {
        return try_batch_norm2d(x, layer);
    }
    train::<C, _, E, D, T, Axes3<0, 2, 3>>(
        x,
        &mut layer.running_var,
        &mut layer.running_mean,
        &layer.scale,
        &layer.bias,
        layer.epsilon,
        layer.momentum,
    )
}

/// [`BatchNorm1d`](crate::layers::BatchNorm1d) on a batch of vectors, without updating the
/// running statistics: batch statistics with a tape, the running ones without.
pub fn try_batch_norm1d<B: Dim, const F: usize, E: Dtype, D, T>(
    x: Tensor<(B, Const<F>), E, D, T>,
    layer: &BatchNorm1D<F, E, D>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err>
where
    D: Device<E>,
    T: Tape<E, D>,
{
    if T::OWNS_TAPE {
        let (mut mean, mut var) = (layer.running_mean.clone(), layer.running_var.clone());
        return train::<F, _, E, D, T, Axis<0>>(
            x,
            &mut var,
            &mut mean,
            &layer.scale,
            &layer.bias,
            layer.epsilon,
            layer.momentum,
        );
    }
    evaluate(x, |x| {
        infer::<F, _, E, D, Axis<0>>(
            x,
            &layer.running_var,
            &layer.running_mean,
            &layer.scale,
            &layer.bias,
            layer.epsilon,
        )
    })
}

/// [`try_batch_norm1d`] that, with a tape, also updates the running statistics.
pub fn try_batch_norm1d_mut<B: Dim, const F: usize, E: Dtype, D, T>(
    x: Tensor<(B, Const<F>), E, D, T>,
    layer: &mut BatchNorm1D<F, E, D>,
) -> Result<Tensor<(B, Const<F>), E, D, T>, D::Err>
where
    D: Device<E>,
    T: Tape<E, D>,
{
    if !T::OWNS_TAPE {
        return try_batch_norm1d(x, layer);
    }
    train::<F, _, E, D, T, Axis<0>>(
        x,
        &mut layer.running_var,
        &mut layer.running_mean,
        &layer.scale,
        &layer.bias,
        layer.epsilon,
        layer.momentum,
    )
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

/// Training: normalise by the batch's statistics, and fold them into the running ones,
/// `running = (1 − momentum)·running + momentum·batch`, the variance unbiased (`n/(n − 1)`),
/// as PyTorch does. `Ax` are the axes reduced over (all but the channel axis).
fn train<const C: usize, S, E: Dtype, D: Device<E>, T: Tape<E, D>, Ax: Axes>(
    x: Tensor<S, E, D, T>,
    running_var: &mut Tensor<Rank1<C>, E, D>,
    running_mean: &mut Tensor<Rank1<C>, E, D>,
    scale: &Tensor<Rank1<C>, E, D>,
    bias: &Tensor<Rank1<C>, E, D>,
    epsilon: f64,
    momentum: f64,
) -> Result<Tensor<S, E, D, T>, D::Err>
where
    S: Shape + HasAxes<Ax> + ReduceShapeTo<Rank1<C>, Ax>,
{
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
    centered.try_mul(scale)?.try_add(bias)
}

/// Evaluation: normalise by the running statistics.
fn infer<const C: usize, S: Shape, E: Dtype, D: Device<E>, Ax: Axes>(
    x: Tensor<S, E, D>,
    running_var: &Tensor<Rank1<C>, E, D>,
    running_mean: &Tensor<Rank1<C>, E, D>,
    scale: &Tensor<Rank1<C>, E, D>,
    bias: &Tensor<Rank1<C>, E, D>,
    epsilon: f64,
) -> Result<Tensor<S, E, D>, D::Err>
where
    Rank1<C>: BroadcastShapeTo<S, Ax>,
{
    if let Some(y) = infer_on_cpu_f32(&x, [running_var, running_mean, scale, bias], epsilon) {
        return Ok(y);
    }
    let shape = *x.shape();
    let std = running_var
        .clone()
        .try_add(E::from_f64(epsilon).unwrap())?
        .try_sqrt()?;
    let scale = scale.clone().try_div(std)?.try_broadcast_like(&shape)?;
    let x = x.try_sub(running_mean.clone().try_broadcast_like(&shape)?)?;
    x.try_mul(scale)?
        .try_add(bias.clone().try_broadcast_like(&shape)?)
}

/// [`infer`] on the CPU in `f32`, when `x` is that: one pass over a copy of `x` computing
/// `(x − mean_c)·s_c + bias_c` with `s_c = scale_c / √(var_c + ε)`, the operations of the dfdx
/// composition in its order (so the values are the same), with the per-channel factors worked
/// out once instead of broadcast to the whole batch, and the channels' planes split between the
/// threads. `None` for any other type or device (the composition runs).
fn infer_on_cpu_f32<const C: usize, S: Shape, E: Dtype, D: Device<E>>(
    x: &Tensor<S, E, D>,
    [running_var, running_mean, scale, bias]: [&Tensor<Rank1<C>, E, D>; 4],
    epsilon: f64,
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
        for value in row {
            *value = (*value - mean) * factor + bias;
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
        // Images, long enough to be split between threads, and vectors.
        let images: Tensor<Rank4<3, 4, 50, 60>, f32, Cpu> = dev.sample_normal();
        let fast = infer::<4, _, f32, Cpu, Axes3<0, 2, 3>>(
            images.clone(),
            &var,
            &mean,
            &scale,
            &bias,
            1e-5,
        );
        assert_eq!(
            fast.unwrap().as_vec(),
            composition::<4, _, Axes3<0, 2, 3>>(images, stats, 1e-5)
        );
        let vectors: Tensor<Rank2<5, 4>, f32, Cpu> = dev.sample_normal();
        let fast =
            infer::<4, _, f32, Cpu, Axis<0>>(vectors.clone(), &var, &mean, &scale, &bias, 1e-3);
        assert_eq!(
            fast.unwrap().as_vec(),
            composition::<4, _, Axis<0>>(vectors, stats, 1e-3)
        );
    }
}
