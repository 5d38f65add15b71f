//! L2 and L1 penalties on chosen parameters, as loss terms on the gradient tape.

use core::fmt;

use dfdx::nn::tensor_collection::{
    TensorCollection, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef,
};
use dfdx::shapes::{Dtype, Rank0, Shape};
use dfdx::tensor::{OwnedTape, Tensor};
use dfdx::tensor_ops::{Device, SumTo, TryAdd, TryMul};

use super::{parameter_names, unwrap_regularize, walk, RegularizeError, Select};

/// The norm a [`Penalty`] charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PenaltyKind {
    /// `λ Σ w²` (ridge, "weight decay"): shrinks every weight in proportion to its size.
    L2,
    /// `λ Σ |w|` (lasso): pulls every weight towards 0 by the same amount, driving small ones
    /// to exactly 0.
    L1,
}

/// A penalty `λ Σ w²` or `λ Σ |w|` over the parameters chosen by a [`Select`], added to the
/// loss.
///
/// ```
/// use typednet::regularize::{Penalty, Select};
///
/// let decay = Penalty::l2(1e-4); // all weights, no biases
/// let sparse_first_layer = Penalty::l1(1e-5).on(Select::layers(["linear1"]));
/// assert_eq!(sparse_first_layer.to_string(), "l1 penalty 0.00001 on the weights of layers linear1");
/// # let _ = decay;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    /// L2 or L1.
    pub kind: PenaltyKind,
    /// `λ ≥ 0`.
    pub strength: f64,
    /// The parameters charged.
    pub select: Select,
}

impl Penalty {
    /// `λ Σ w²` over all weights (not biases). PyTorch: adding
    /// `λ * sum(p.pow(2).sum() for p in weights)` to the loss; SGD's `weight_decay = 2λ` gives
    /// the same gradient when applied to the same parameters.
    pub fn l2(strength: f64) -> Self {
        Self {
            kind: PenaltyKind::L2,
            strength,
            select: Select::Weights,
        }
    }

    /// `λ Σ |w|` over all weights (not biases). PyTorch: adding
    /// `λ * sum(p.abs().sum() for p in weights)` to the loss. At `w = 0` the subgradient 0 is
    /// taken, as PyTorch's `abs` does.
    pub fn l1(strength: f64) -> Self {
        Self {
            kind: PenaltyKind::L1,
            strength,
            select: Select::Weights,
        }
    }

    /// The same penalty on other parameters.
    #[must_use]
    pub fn on(mut self, select: Select) -> Self {
        self.select = select;
        self
    }

    fn what(&self) -> &'static str {
        match self.kind {
            PenaltyKind::L2 => "l2 penalty",
            PenaltyKind::L1 => "l1 penalty",
        }
    }

    /// Fails when `λ` is negative or not finite, or the selection does not fit `parameters`.
    pub(crate) fn check<E>(&self, parameters: &[String]) -> Result<(), RegularizeError<E>> {
        if !(self.strength >= 0.0 && self.strength.is_finite()) {
            return Err(RegularizeError::InvalidStrength {
                what: self.what(),
                strength: self.strength,
            });
        }
        self.select.check(self.what(), parameters)
    }
}

impl fmt::Display for Penalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} on {}", self.what(), self.strength, self.select)
    }
}

/// The penalty's value on `model`'s parameters, `λ Σ w²` or `λ Σ |w|`, as a scalar on a
/// gradient tape: add it to the loss before `backward`, and the chosen parameters' gradients
/// gain `2λw` or `λ sign(w)`.
///
/// # Panics
/// As [`try_penalty`] fails.
///
/// ```
/// use typednet::layers::Linear;
/// use typednet::prelude::*;
/// use typednet::regularize::{penalty, Penalty};
///
/// let dev = Cpu::default();
/// let mut linear: Linear<2, 1, f64, Cpu> = BuildModule::build(&dev);
/// linear.weight = dev.tensor([[3.0, -4.0]]);
/// let l2 = penalty(&linear, &Penalty::l2(0.5));
/// assert_eq!(l2.array(), 0.5 * 25.0); // the bias is not charged
/// let grads = l2.backward();
/// assert_eq!(grads.get(&linear.weight).array(), [[3.0, -4.0]]); // 2λw
/// ```
pub fn penalty<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    penalty: &Penalty,
) -> Tensor<Rank0, E, D, OwnedTape<E, D>> {
    unwrap_regularize(try_penalty(model, penalty))
}

/// Fallible [`penalty`]: fails when `λ` is negative or not finite, when the selection names a
/// layer or parameter the model does not have or matches nothing, or when the device fails.
pub fn try_penalty<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    penalty: &Penalty,
) -> Result<Tensor<Rank0, E, D, OwnedTape<E, D>>, RegularizeError<D::Err>> {
    penalty.check(&parameter_names(model))?;
    let mut summer = PenaltySum {
        penalty,
        total: None,
    };
    walk::<E, D, M, _>((String::new(), model), &mut summer).map_err(RegularizeError::Device)?;
    let total = summer
        .total
        .expect("checked: the selection matches a parameter");
    let strength = E::from_f64(penalty.strength).unwrap_or_default();
    total.try_mul(strength).map_err(RegularizeError::Device)
}

/// Sums `Σ w²` or `Σ |w|` over the chosen parameters, each read through a copy on its own
/// tape (same id), so that the gradient lands on the parameter.
struct PenaltySum<'p, E: Dtype, D: Device<E>> {
    penalty: &'p Penalty,
    total: Option<Tensor<Rank0, E, D, OwnedTape<E, D>>>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for PenaltySum<'_, E, D> {
    type Viewer = (ViewTensorName, ViewTensorRef);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (name, parameter): (String, &Tensor<S, E, D>),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if !opts.do_gradient_update || !self.penalty.select.matches(&name) {
            return Ok(None);
        }
        let traced = parameter.retaped::<OwnedTape<E, D>>();
        let magnitude = match self.penalty.kind {
            PenaltyKind::L2 => traced.try_square()?,
            PenaltyKind::L1 => traced.try_abs()?,
        };
        let term = magnitude.try_sum::<Rank0, S::AllAxes>()?;
        self.total = Some(match self.total.take() {
            None => term,
            Some(total) => total.try_add(term)?,
        });
        Ok(None)
    }
}
