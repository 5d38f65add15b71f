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
