//! Max-norm constraints: every neuron's incoming weight vector is kept within a ball.

use dfdx::nn::tensor_collection::{
    TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::shapes::{Dtype, HasShape, Shape};
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::Device;

use super::{check_limit, parameter_names, unwrap_regularize, walk, RegularizeError, Select};

/// The constraint `‖w‖₂ ≤ c` on every neuron's incoming weight vector, applied after each
/// optimiser step (Srebro & Shraibman; used with dropout by Srivastava et al.).
///
/// The neuron axis is the first one: a row of a linear weight `[out, in]`, an output channel
/// `[in, kh, kw]` of a conv weight `[out, in, kh, kw]`. A vector longer than `c` is scaled by
/// `c / (‖w‖ + 10⁻⁷)`, exactly as PyTorch's `torch.renorm(w, p=2, dim=0, maxnorm=c)`; shorter
/// ones are left alone. Rank-1 parameters (biases) have no incoming vectors and are skipped.
/// (A `ConvTranspose2d` weight is `[in, out, kh, kw]`, so its first axis is the *input*
/// channel: select it only if that is the constraint meant.)
///
/// ```
/// use typednet::regularize::{MaxNorm, Select};
///
/// let all_weights = MaxNorm::new(3.0);
/// let hidden_only = MaxNorm::new(3.0).on(Select::layers(["linear1", "linear2"]));
/// # let _ = (all_weights, hidden_only);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MaxNorm {
    /// The largest allowed norm `c > 0`.
    pub max_norm: f64,
    /// The weights constrained (rank-1 parameters among them are skipped).
    pub select: Select,
}

impl MaxNorm {
    /// `‖w‖ ≤ max_norm` for every neuron of every weight.
    pub fn new(max_norm: f64) -> Self {
        Self {
            max_norm,
            select: Select::Weights,
        }
    }

    /// The same constraint on other parameters.
    #[must_use]
    pub fn on(mut self, select: Select) -> Self {
        self.select = select;
        self
    }

    /// Fails when `c` is not positive and finite or the selection does not fit `parameters`.
    pub(crate) fn check<E>(&self, parameters: &[String]) -> Result<(), RegularizeError<E>> {
        check_limit("max_norm", self.max_norm)?;
        self.select.check("max_norm", parameters)
    }
}

/// Rescales, in place, every selected neuron's incoming weight vector whose norm exceeds `c`;
/// returns how many were rescaled.
///
/// # Panics
/// As [`try_apply_max_norm`] fails.
///
/// ```
/// use typednet::layers::Linear;
/// use typednet::prelude::*;
/// use typednet::regularize::{apply_max_norm, MaxNorm};
///
/// let dev = Cpu::default();
/// let mut linear: Linear<2, 2, f64, Cpu> = BuildModule::build(&dev);
/// linear.weight = dev.tensor([[3.0, 4.0], [0.6, 0.8]]);
/// assert_eq!(apply_max_norm(&mut linear, &MaxNorm::new(1.0)), 1);
/// let w = linear.weight.array();
/// assert!((w[0][0] - 0.6).abs() < 1e-6 && (w[0][1] - 0.8).abs() < 1e-6);
/// assert_eq!(w[1], [0.6, 0.8]);
/// ```
pub fn apply_max_norm<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &mut M,
    constraint: &MaxNorm,
) -> usize {
    unwrap_regularize(try_apply_max_norm(model, constraint))
}

/// Fallible [`apply_max_norm`]: fails when `c ≤ 0` (or is not finite), when the selection
/// names a layer or parameter the model does not have or matches no weight of rank ≥ 2, or
/// when the device fails.
///
/// The weights are read to the host, rescaled there in `f64`, and written back into the same
/// tensors only when a vector was too long: the tensors keep their identity, which optimisers
/// key their state by.
pub fn try_apply_max_norm<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &mut M,
    constraint: &MaxNorm,
) -> Result<usize, RegularizeError<D::Err>> {
    let names = parameter_names(&*model);
    constraint.check(&names)?;
    let mut clamp = RowClamp {
        constraint,
        matrices: 0,
        rescaled: 0,
    };
    walk::<E, D, M, _>((String::new(), model), &mut clamp).map_err(RegularizeError::Device)?;
    if clamp.matrices == 0 {
        return Err(RegularizeError::NothingSelected {
            what: "max_norm",
            select: constraint.select.clone(),
            known: names,
        });
    }
    Ok(clamp.rescaled)
}

struct RowClamp<'c> {
    constraint: &'c MaxNorm,
    /// Selected tensors of rank ≥ 2.
    matrices: usize,
    /// Rows rescaled.
    rescaled: usize,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for RowClamp<'_> {
    type Viewer = (ViewTensorName, ViewTensorMut);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (name, weight): (String, &mut Tensor<S, E, D>),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if !opts.do_gradient_update || S::NUM_DIMS < 2 || !self.constraint.select.matches(&name) {
            return Ok(None);
        }
        self.matrices += 1;
        let neurons = weight.shape().concrete()[0];
        let mut values = weight.as_vec();
        let fan_in = values.len() / neurons.max(1);
        let c = self.constraint.max_norm;
        let mut changed = false;
        for row in values.chunks_mut(fan_in.max(1)) {
            let norm = row
                .iter()
                .map(|v| v.to_f64().unwrap_or(f64::NAN).powi(2))
                .sum::<f64>()
                .sqrt();
            if norm > c {
                let scale = c / (norm + 1e-7);
                for v in row.iter_mut() {
                    *v = E::from_f64(v.to_f64().unwrap_or(f64::NAN) * scale).unwrap_or(*v);
                }
                self.rescaled += 1;
                changed = true;
            }
        }
        if changed {
            // Parameters are contiguous, so logical and physical order agree.
            weight.copy_from(&values);
        }
        Ok(None)
    }
}
