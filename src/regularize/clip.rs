//! Gradient clipping by value and by global norm, and per-parameter gradient norms.

use dfdx::nn::tensor_collection::{
    TensorCollection, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef,
};
use dfdx::nn::ZeroGrads;
use dfdx::shapes::{Dtype, Rank0, Shape};
use dfdx::tensor::{Gradients, OwnedTape, Tensor, Trace};
use dfdx::tensor_ops::{Backward, Device, SumTo, TryAdd, TryMul};

use super::{check_limit, unwrap_regularize, walk, RegularizeError};

/// Clamps every element of every trainable parameter's gradient to `[−v, v]`.
///
/// **PyTorch**: `torch.nn.utils.clip_grad_value_(model.parameters(), v)`.
///
/// # Panics
/// As [`try_clip_grad_value`] fails.
pub fn clip_grad_value<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
    clip_value: f64,
) {
    unwrap_regularize(try_clip_grad_value(model, grads, clip_value))
}

/// Fallible [`clip_grad_value`]: fails when `v` is not positive and finite, or the device
/// fails.
pub fn try_clip_grad_value<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
    clip_value: f64,
) -> Result<(), RegularizeError<D::Err>> {
    check_limit("clip_grad_value", clip_value)?;
    rewrite_gradients(model, grads, Rewrite::Clamp(clip_value))
}

/// Scales all trainable parameters' gradients together by `min(1, c / (‖g‖ + 10⁻⁶))`, where
/// `‖g‖` is the 2-norm of all of them as one vector, and returns `‖g‖` (before clipping).
///
/// The direction of the step is kept; only its length is capped at about `c`.
/// **PyTorch**: `torch.nn.utils.clip_grad_norm_(model.parameters(), c)`, same formula and
/// return value.
///
/// # Panics
/// As [`try_clip_grad_norm`] fails.
///
/// ```
/// use typednet::layers::Linear;
/// use typednet::prelude::*;
/// use typednet::regularize::clip_grad_norm;
///
/// let dev = Cpu::default();
/// let linear: Linear<2, 1, f64, Cpu> = BuildModule::build(&dev);
/// let x = dev.tensor([[30.0, 40.0]]);
/// // d(sum(Wx + b))/dW = x = [30, 40], d/db = 1: ‖g‖ = √2501.
/// let mut grads = linear.forward(x.leaky_trace()).sum().backward();
/// let total = clip_grad_norm(&linear, &mut grads, 1.0);
/// assert!((total - 2501f64.sqrt()).abs() < 1e-9);
/// let w = grads.get(&linear.weight).array()[0];
/// assert!((w[0] - 30.0 / (total + 1e-6)).abs() < 1e-12);
/// ```
pub fn clip_grad_norm<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
    max_norm: f64,
) -> f64 {
    unwrap_regularize(try_clip_grad_norm(model, grads, max_norm))
}

/// Fallible [`clip_grad_norm`]: fails when `c` is not positive and finite, or the device
/// fails. A non-finite total norm is returned as it is, and the gradients are then left alone
/// (PyTorch's default `error_if_nonfinite=False` would scale them by NaN).
pub fn try_clip_grad_norm<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
    max_norm: f64,
) -> Result<f64, RegularizeError<D::Err>> {
    check_limit("clip_grad_norm", max_norm)?;
    let squares = try_squared_norms(model, grads)?;
    let total = squares.iter().map(|(_, s)| s).sum::<f64>().sqrt();
    let coefficient = max_norm / (total + 1e-6);
    // PyTorch multiplies by min(1, coefficient) always; by 1 is no change, so it is skipped.
    if coefficient < 1.0 {
        rewrite_gradients(model, grads, Rewrite::Scale(coefficient))?;
    }
    Ok(total)
}

/// The 2-norm of each trainable parameter's gradient, by name, in the order optimisers visit
/// them: what [`clip_grad_norm`] sums, and what shows a vanishing or exploding gradient layer
/// by layer. A parameter with no gradient yet gets a zero one.
///
/// # Panics
/// When the device fails.
pub fn gradient_norms<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
) -> Vec<(String, f64)> {
    unwrap_regularize(try_gradient_norms(model, grads))
}

/// Fallible [`gradient_norms`].
pub fn try_gradient_norms<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
) -> Result<Vec<(String, f64)>, RegularizeError<D::Err>> {
    Ok(try_squared_norms(model, grads)?
        .into_iter()
        .map(|(name, square)| (name, square.sqrt()))
        .collect())
}

fn try_squared_norms<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
) -> Result<Vec<(String, f64)>, RegularizeError<D::Err>> {
    let mut reader = SquaredNorms {
        grads,
        squares: Vec::new(),
    };
    walk::<E, D, M, _>((String::new(), model), &mut reader).map_err(RegularizeError::Device)?;
    Ok(reader.squares)
}

struct SquaredNorms<'g, E: Dtype, D: Device<E>> {
    grads: &'g mut Gradients<E, D>,
    squares: Vec<(String, f64)>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for SquaredNorms<'_, E, D> {
    type Viewer = (ViewTensorName, ViewTensorRef);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (name, parameter): (String, &Tensor<S, E, D>),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if opts.do_gradient_update {
            self.grads.try_alloc_for(parameter)?;
            let square = self
                .grads
                .get(parameter)
                .try_square()?
                .try_sum::<Rank0, S::AllAxes>()?;
            let square = square.as_vec()[0].to_f64().unwrap_or(f64::NAN);
            self.squares.push((name, square));
        }
        Ok(None)
    }
}

/// What to do to each gradient.
#[derive(Clone, Copy)]
enum Rewrite {
    /// `g · s`.
    Scale(f64),
    /// `clamp(g, −v, v)`.
    Clamp(f64),
}

/// Replaces `grads` by the rewritten gradients `ĝ` of every trainable parameter.
///
/// dfdx writes gradients only through backward, so the new ones come from the backward pass
/// of `Σ_p sum(p ⊙ ĝ_p)` (`ĝ_p` constant), whose gradient with respect to `p` is exactly
/// `ĝ_p`. It starts from freshly allocated gradients of the model, so that the result holds
/// the parameters' gradients only, like the one it replaces.
fn rewrite_gradients<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
    rewrite: Rewrite,
) -> Result<(), RegularizeError<D::Err>> {
    let fresh = model.try_alloc_grads().map_err(RegularizeError::Device)?;
    let mut writer = Rewriter {
        old: grads,
        rewrite,
        fresh: Some(fresh),
        surrogate: None,
    };
    walk::<E, D, M, _>((String::new(), model), &mut writer).map_err(RegularizeError::Device)?;
    if let Some(surrogate) = writer.surrogate {
        *grads = surrogate.try_backward().map_err(RegularizeError::Device)?;
    }
    Ok(())
}

struct Rewriter<'g, E: Dtype, D: Device<E>> {
    old: &'g mut Gradients<E, D>,
    rewrite: Rewrite,
    /// The gradients the surrogate's tape starts from; taken by the first parameter.
    fresh: Option<Gradients<E, D>>,
    surrogate: Option<Tensor<Rank0, E, D, OwnedTape<E, D>>>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for Rewriter<'_, E, D> {
    type Viewer = (ViewTensorName, ViewTensorRef);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (_, parameter): (String, &Tensor<S, E, D>),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        self.old.try_alloc_for(parameter)?;
        let gradient = self.old.get(parameter);
        let rewritten = match self.rewrite {
            Rewrite::Scale(s) => gradient.try_mul(E::from_f64(s).unwrap_or_default())?,
            Rewrite::Clamp(v) => gradient.try_clamp(-v, v)?,
        };
        let tape = self.fresh.take().unwrap_or_else(Gradients::leaky);
        let term = parameter
            .clone()
            .traced(tape)
            .try_mul(rewritten)?
            .try_sum::<Rank0, S::AllAxes>()?;
        self.surrogate = Some(match self.surrogate.take() {
            None => term,
            Some(sum) => sum.try_add(term)?,
        });
        Ok(None)
    }
}
