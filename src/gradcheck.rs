//! Finite-difference gradient checks: dfdx's autodiff gradient against central differences.
//!
//! For a scalar loss `L(x)`, every element `xᵢ` is nudged by `±ε` and
//! `(L(x + εeᵢ) − L(x − εeᵢ)) / 2ε` is compared with the gradient that backpropagation
//! computes. Agreement to about `1e-6` in `f64` is strong evidence that a layer's backward pass
//! is right; Grenade calls this check "the most important test".
//!
//! ```
//! use typednet::dfdx::prelude::*;
//! use typednet::gradcheck::check_gradient;
//!
//! let dev = Cpu::default();
//! let x: Tensor<Rank1<4>, f64, Cpu> = dev.tensor([0.3, -1.2, 0.7, 2.0]);
//! let report = check_gradient(&x, |x| x.tanh().square().sum());
//! report.assert_below(1e-6);
//! ```
//!
//! # The error measure
//!
//! For each element the error is `|a − n| / max(|a|, |n|, floor)`, with `a` the autodiff
//! gradient and `n` the finite difference: a relative error where gradients are large, and an
//! absolute one where they are smaller than `floor` (default 1). Without the floor, an element
//! whose true gradient is 0 (a weight feeding a ReLU that is off) would compare two round-off
//! residues of order `1e-10` and report a relative error near 1; with it, the check still
//! catches any gradient that is wrong by more than `tolerance` in absolute terms.
//!
//! Central differences in `f64` with `ε = 1e-6` are accurate to about `1e-10` for losses of
//! order 1: their truncation error is `O(ε²)` and their round-off about `10⁻¹⁶·|L|/ε`.
//! Functions with kinks (ReLU, max pooling) need every input at least `ε` away from a kink.

use core::fmt;

use dfdx::shapes::{HasShape, Rank0, Shape};
use dfdx::tensor::{Gradients, OwnedTape, Tensor, Trace};
use dfdx::tensor_ops::{Backward, Device};

/// A scalar loss carrying a gradient tape, as a checked function returns it.
pub type TapedLoss<D> = Tensor<Rank0, f64, D, OwnedTape<f64, D>>;

/// Settings of a gradient check; [`GradCheck::default`] suits `f64` losses of order 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheck {
    /// Half the width of the central difference, `ε` (default `1e-6`).
    pub epsilon: f64,
    /// Gradients smaller than this are compared absolutely rather than relatively
    /// (default 1; see the [module documentation](self)).
    pub floor: f64,
}

impl Default for GradCheck {
    fn default() -> Self {
        Self {
            epsilon: 1e-6,
            floor: 1.0,
        }
    }
}

impl GradCheck {
    /// Checks the gradient of `loss` with respect to its input, at `input`.
    ///
    /// `loss` is called once with the input on a gradient tape for the autodiff gradient, and
    /// twice per element for the finite differences. The loss it returns must be computed from
    /// that input, whose tape carries the gradient.
    ///
    /// # Panics
    /// If the returned loss does not carry the input's tape (dfdx then has no gradient for the
    /// input), or `loss` panics.
    pub fn input<S, D, F>(&self, input: &Tensor<S, f64, D>, loss: F) -> GradCheckReport
    where
        S: Shape,
        D: Device<f64>,
        F: Fn(Tensor<S, f64, D, OwnedTape<f64, D>>) -> TapedLoss<D>,
    {
        // A fresh contiguous copy, so that a broadcast input has one gradient per element.
        let input = contiguous(input);
        let analytic = loss(input.leaky_trace()).backward().get(&input).as_vec();
        let numeric =
            self.central_differences(&input, |point| loss(point.leaky_traced()).as_vec()[0]);
        self.report(
            input.shape().concrete().into_iter().collect(),
            analytic,
            numeric,
        )
    }

    /// Checks the gradient of `loss` with respect to one parameter tensor of `module`, picked
    /// by `parameter` (e.g. `|linear| &mut linear.weight`).
    ///
    /// `loss` gets the module and a fresh [`Gradients`] to start its tape with, usually by
    /// tracing the module's input: `|net, gradients| net.forward(x.trace(gradients)).sum()`.
    /// The finite differences evaluate it on a copy of the module whose parameter is nudged one
    /// element at a time; `module` itself is not changed.
    ///
    /// # Panics
    /// If the device cannot allocate the gradient, or `loss` panics.
    pub fn parameter<M, S, D, P, F>(&self, module: &M, parameter: P, loss: F) -> GradCheckReport
    where
        M: Clone,
        S: Shape,
        D: Device<f64>,
        P: Fn(&mut M) -> &mut Tensor<S, f64, D>,
        F: Fn(&M, Gradients<f64, D>) -> TapedLoss<D>,
    {
        let mut module = module.clone();
        let original = contiguous(parameter(&mut module));
        *parameter(&mut module) = original.clone();
        let mut gradients = Gradients::leaky();
        // Allocated up front, so a parameter the loss ignores gets a zero gradient.
        gradients
            .try_alloc_for(&original)
            .expect("allocating the parameter's gradient");
        let analytic = loss(&module, gradients).backward().get(&original).as_vec();
        let numeric = self.central_differences(&original, |point| {
            *parameter(&mut module) = point;
            loss(&module, Gradients::leaky()).as_vec()[0]
        });
        self.report(
            original.shape().concrete().into_iter().collect(),
            analytic,
            numeric,
        )
    }

    /// `(L(x + εeᵢ) − L(x − εeᵢ)) / 2ε` for every element `i` of `point`.
    fn central_differences<S, D>(
        &self,
        point: &Tensor<S, f64, D>,
        mut loss_at: impl FnMut(Tensor<S, f64, D>) -> f64,
    ) -> Vec<f64>
    where
        S: Shape,
        D: Device<f64>,
    {
        let values = point.as_vec();
        let device = point.device().clone();
        let shape = *point.shape();
        let mut nudged = values.clone();
        (0..values.len())
            .map(|i| {
                let (up, down) = (values[i] + self.epsilon, values[i] - self.epsilon);
                nudged[i] = up;
                let loss_up = loss_at(device.tensor_from_vec(nudged.clone(), shape));
                nudged[i] = down;
                let loss_down = loss_at(device.tensor_from_vec(nudged.clone(), shape));
                nudged[i] = values[i];
                // The step actually taken, which rounding makes differ slightly from 2ε.
                (loss_up - loss_down) / (up - down)
            })
            .collect()
    }

    fn report(&self, shape: Vec<usize>, analytic: Vec<f64>, numeric: Vec<f64>) -> GradCheckReport {
        let (worst_index, max_error) = analytic
            .iter()
            .zip(&numeric)
            .map(|(&a, &n)| self.error(a, n))
            .enumerate()
            .fold((0, 0.0), |worst, (index, error)| {
                if error > worst.1 {
                    (index, error)
                } else {
                    worst
                }
            });
        GradCheckReport {
            shape,
            analytic,
            numeric,
            max_error,
            worst_index,
            floor: self.floor,
        }
    }

    /// `|a − n| / max(|a|, |n|, floor)`; infinite where either value is not finite, so that a
    /// NaN gradient fails every tolerance.
    fn error(&self, analytic: f64, numeric: f64) -> f64 {
        if !analytic.is_finite() || !numeric.is_finite() {
            return f64::INFINITY;
        }
        (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(self.floor)
    }
}

/// Checks the gradient of `loss` with respect to its input at `input`, with the default
/// [`GradCheck`] settings. See [`GradCheck::input`].
///
/// ```
/// use typednet::dfdx::prelude::*;
/// use typednet::gradcheck::check_gradient;
///
/// let dev = Cpu::default();
/// let x: Tensor<Rank2<2, 3>, f64, Cpu> = dev.sample_normal();
/// let report = check_gradient(&x, |x| x.log_softmax::<Axis<1>>().sum());
/// assert!(report.max_error() < 1e-6, "{report}");
/// ```
pub fn check_gradient<S, D, F>(input: &Tensor<S, f64, D>, loss: F) -> GradCheckReport
where
    S: Shape,
    D: Device<f64>,
    F: Fn(Tensor<S, f64, D, OwnedTape<f64, D>>) -> TapedLoss<D>,
{
    GradCheck::default().input(input, loss)
}

/// Checks the gradient of `loss` with respect to one parameter tensor of `module`, with the
/// default [`GradCheck`] settings. See [`GradCheck::parameter`].
///
/// ```
/// use typednet::dfdx::prelude::*;
/// use typednet::gradcheck::check_parameter_gradient;
/// use typednet::layers::Linear;
///
/// let dev = Cpu::default();
/// let linear: Linear<3, 2, f64, Cpu> = BuildModule::build(&dev);
/// let x: Tensor<Rank1<3>, f64, Cpu> = dev.sample_normal();
/// let report = check_parameter_gradient(
///     &linear,
///     |linear| &mut linear.weight,
///     |linear, gradients| linear.forward(x.trace(gradients)).tanh().sum(),
/// );
/// report.assert_below(1e-6);
/// ```
pub fn check_parameter_gradient<M, S, D, P, F>(module: &M, parameter: P, loss: F) -> GradCheckReport
where
    M: Clone,
    S: Shape,
    D: Device<f64>,
    P: Fn(&mut M) -> &mut Tensor<S, f64, D>,
    F: Fn(&M, Gradients<f64, D>) -> TapedLoss<D>,
{
    GradCheck::default().parameter(module, parameter, loss)
}

/// The outcome of a gradient check: both gradients, element by element, and the worst error.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    shape: Vec<usize>,
    analytic: Vec<f64>,
    numeric: Vec<f64>,
    max_error: f64,
    worst_index: usize,
    floor: f64,
}

impl GradCheckReport {
    /// The largest error over all elements (see the [module documentation](self) for the
    /// measure); 0 for a tensor without elements, infinite if a gradient is not finite.
    pub fn max_error(&self) -> f64 {
        self.max_error
    }

    /// The flat (row-major) index of the element with the largest error.
    pub fn worst_index(&self) -> usize {
        self.worst_index
    }

    /// The position of the element with the largest error, one index per dimension.
    pub fn worst_position(&self) -> Vec<usize> {
        let mut rest = self.worst_index;
        let mut position = vec![0; self.shape.len()];
        for (index, &size) in position.iter_mut().zip(&self.shape).rev() {
            *index = rest % size.max(1);
            rest /= size.max(1);
        }
        position
    }

    /// The shape of the checked tensor.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The gradient backpropagation computed, flattened row-major.
    pub fn analytic(&self) -> &[f64] {
        &self.analytic
    }

    /// The gradient the central differences estimate, flattened row-major.
    pub fn numeric(&self) -> &[f64] {
        &self.numeric
    }

    /// Panics, showing the report, unless [`max_error`](Self::max_error) is below `tolerance`.
    #[track_caller]
    pub fn assert_below(&self, tolerance: f64) {
        assert!(
            self.max_error < tolerance,
            "gradient check failed (tolerance {tolerance:e}): {self}"
        );
    }
}

impl fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max error {:e} (floor {}) over {} elements of shape {:?}",
            self.max_error,
            self.floor,
            self.analytic.len(),
            self.shape
        )?;
        if let (Some(analytic), Some(numeric)) = (
            self.analytic.get(self.worst_index),
            self.numeric.get(self.worst_index),
        ) {
            write!(
                f,
                ", worst at {:?}: autodiff {analytic:e}, finite difference {numeric:e}",
                self.worst_position()
            )?;
        }
        Ok(())
    }
}

/// A copy of `tensor` with its own contiguous storage and a new id.
fn contiguous<S: Shape, D: Device<f64>>(tensor: &Tensor<S, f64, D>) -> Tensor<S, f64, D> {
    tensor
        .device()
        .tensor_from_vec(tensor.as_vec(), *tensor.shape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::prelude::*;

    #[test]
    fn catches_a_wrong_gradient() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([0.5, -0.25, 2.0]);
        // The loss 2·Σx computed as Σx + Σx with the second term detached: autodiff sees
        // only half the slope.
        let report = check_gradient(&x, |x| {
            let detached = x.retaped::<NoneTape>().sum();
            x.sum() + detached
        });
        assert!((report.max_error() - 0.5).abs() < 1e-6, "{report}");
        assert_eq!(report.analytic(), &[1.0, 1.0, 1.0]);
    }

    #[test]
    fn an_unused_parameter_has_a_zero_gradient() {
        let dev = Cpu::default();
        let used: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([1.0, 2.0]);
        let unused: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([3.0, 4.0]);
        let report = check_parameter_gradient(
            &(used, unused),
            |(_, unused)| unused,
            |(used, _), gradients| used.trace(gradients).square().sum(),
        );
        assert_eq!(report.analytic(), &[0.0, 0.0]);
        assert_eq!(report.numeric(), &[0.0, 0.0]);
        assert_eq!(report.max_error(), 0.0);
    }

    #[test]
    fn checks_a_parameter_and_leaves_the_module_alone() {
        let dev = Cpu::default();
        let scale: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([0.5, -1.5, 2.0]);
        let x: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([1.0, 2.0, -3.0]);
        let report = check_parameter_gradient(
            &scale,
            |scale| scale,
            |scale, gradients| (x.trace(gradients) * scale.clone()).exp().sum(),
        );
        report.assert_below(1e-8);
        assert_eq!(scale.array(), [0.5, -1.5, 2.0]);
    }

    #[test]
    fn reports_the_worst_position() {
        let dev = Cpu::default();
        let x: Tensor<Rank2<2, 3>, f64, Cpu> = dev.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let stretch: Tensor<Rank2<2, 3>, f64, Cpu> = dev.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        // Masks the autodiff path of element [1, 2] only.
        let report = check_gradient(&x, |x| {
            let detached = x.retaped::<NoneTape>() * (stretch.clone() * -1.0 + 1.0);
            (x * stretch.clone() + detached).sum()
        });
        assert_eq!(report.worst_index(), 5);
        assert_eq!(report.worst_position(), vec![1, 2]);
        assert!(report.to_string().contains("worst at [1, 2]"), "{report}");
    }

    #[test]
    fn a_nan_gradient_fails() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<1>, f64, Cpu> = dev.tensor([-1.0]);
        let report = check_gradient(&x, |x| x.sqrt().sum());
        assert_eq!(report.max_error(), f64::INFINITY);
    }

    #[test]
    fn works_on_broadcast_inputs() {
        let dev = Cpu::default();
        let row: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([0.1, 0.2, 0.3]);
        let x: Tensor<Rank2<2, 3>, f64, Cpu> = row.broadcast();
        let report = check_gradient(&x, |x| x.square().sum());
        assert_eq!(report.shape(), &[2, 3]);
        report.assert_below(1e-8);
    }
}
