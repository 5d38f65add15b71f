//! Controlling capacity while training: L2 and L1 penalties on chosen parameters, max-norm
//! constraints, and gradient clipping by value and by global norm.
//!
//! | control | what it does | when | PyTorch |
//! |---|---|---|---|
//! | [`Penalty::l2`] | adds `λ Σ w²` to the loss | on the tape, before backward | `loss + λ * sum(w.pow(2).sum())` (SGD's `weight_decay = 2λ` on the same parameters) |
//! | [`Penalty::l1`] | adds `λ Σ \|w\|` to the loss | on the tape, before backward | `loss + λ * sum(w.abs().sum())` |
//! | [`clip_grad_value`] | clamps every gradient element to `[−v, v]` | after backward | `clip_grad_value_(params, v)` |
//! | [`clip_grad_norm`] | scales all gradients by `min(1, c / (‖g‖ + 10⁻⁶))`, `‖g‖` over all parameters together | after backward | `clip_grad_norm_(params, c)` |
//! | [`MaxNorm`] | rescales every neuron's incoming weight vector to norm ≤ `c` | after the optimiser step | `w.data = torch.renorm(w, 2, 0, c)` |
//! | dropout | the `dropout(p)` layer of [`network!`](crate::network!) ([`try_dropout`](crate::ops::try_dropout)) | in training only | `nn.Dropout(p)` |
//!
//! [`Trainer`](crate::train::Trainer) attaches them all (`.penalty(…)`, `.clip_grad_value(…)`,
//! `.clip_grad_norm(…)`, `.max_norm(…)`); the functions here are the same steps for a loop of
//! one's own.
//!
//! # Choosing parameters
//!
//! Parameters are chosen by the names dfdx's `TensorCollection` gives them: `linear1.weight`,
//! `conv2.bias` for a [`network!`](crate::network!) (layers are named `linear1`, `conv2`, … or
//! as declared), `0.weight` for a tuple of dfdx modules. [`Select`] picks all weights (the
//! default: penalising biases is rarely wanted), every parameter, the weights of some layers, or
//! parameters by full name; [`parameter_names`] lists them. A name that matches nothing is an
//! error, not a silent no-op.
//!
//! # Why penalties are loss terms and clipping rewrites the gradients
//!
//! A penalty is part of the objective, so it is computed on the gradient tape like the loss:
//! its gradient (`2λw`, `λ sign w`) then comes from the same backward pass, on every device,
//! and is checked by finite differences like any loss. Clipping is not a function of the
//! weights but an edit of the gradients, so it must come after backward. dfdx offers no
//! device-generic way to write into a gradient buffer, so the clipped gradients `ĝ` are
//! produced by one more (tiny) backward pass, of `Σ_p ⟨p, ĝ_p⟩` with `ĝ` held constant, whose
//! gradient with respect to each parameter `p` is exactly `ĝ_p`. Max-norm edits the weights
//! themselves in place, keeping their identity (the optimiser's state is keyed by it).

use core::fmt;

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorViewer, TensorVisitor, ViewTensorName,
    ViewTensorRef,
};
use dfdx::shapes::{Dtype, Shape};
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::Device;

mod clip;
mod max_norm;
mod penalty;

pub use clip::{
    clip_grad_norm, clip_grad_value, gradient_norms, try_clip_grad_norm, try_clip_grad_value,
    try_gradient_norms,
};
pub use max_norm::{apply_max_norm, try_apply_max_norm, MaxNorm};
pub use penalty::{penalty, try_penalty, Penalty, PenaltyKind};

/// Which parameters a penalty or a constraint applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Select {
    /// Every parameter whose name ends in `weight` (all layer weights, no biases).
    #[default]
    Weights,
    /// Every trainable parameter, biases included.
    All,
    /// The weights of the named layers: `linear1` selects `linear1.weight`.
    Layers(Vec<String>),
    /// Parameters by full name, such as `linear1.bias`.
    Parameters(Vec<String>),
}

impl Select {
    /// The weights of the named layers.
    pub fn layers<I: IntoIterator<Item = N>, N: Into<String>>(names: I) -> Self {
        Self::Layers(names.into_iter().map(Into::into).collect())
    }

    /// Parameters by full name.
    pub fn parameters<I: IntoIterator<Item = N>, N: Into<String>>(names: I) -> Self {
        Self::Parameters(names.into_iter().map(Into::into).collect())
    }

    /// Whether the parameter called `name` is chosen.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Weights => is_weight(name),
            Self::All => true,
            Self::Layers(layers) => is_weight(name) && layers.iter().any(|l| l == layer_of(name)),
            Self::Parameters(names) => names.iter().any(|n| n == name),
        }
    }

    /// Fails when a named layer or parameter is not among `parameters`, or nothing is chosen.
    fn check<E>(
        &self,
        what: &'static str,
        parameters: &[String],
    ) -> Result<(), RegularizeError<E>> {
        match self {
            Self::Layers(layers) => {
                for layer in layers {
                    if !parameters.iter().any(|p| layer_of(p) == layer) {
                        let mut known: Vec<String> =
                            parameters.iter().map(|p| layer_of(p).to_string()).collect();
                        known.dedup();
                        return Err(RegularizeError::UnknownLayer {
                            what,
                            layer: layer.clone(),
                            known,
                        });
                    }
                }
            }
            Self::Parameters(names) => {
                for name in names {
                    if !parameters.contains(name) {
                        return Err(RegularizeError::UnknownParameter {
                            what,
                            parameter: name.clone(),
                            known: parameters.to_vec(),
                        });
                    }
                }
            }
            Self::Weights | Self::All => {}
        }
        if !parameters.iter().any(|p| self.matches(p)) {
            return Err(RegularizeError::NothingSelected {
                what,
                select: self.clone(),
                known: parameters.to_vec(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Weights => f.write_str("all weights"),
            Self::All => f.write_str("all parameters"),
            Self::Layers(layers) => write!(f, "the weights of layers {}", layers.join(", ")),
            Self::Parameters(names) => write!(f, "parameters {}", names.join(", ")),
        }
    }
}

/// `linear1.weight` → `linear1`; a top-level `weight` → ``.
fn layer_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(layer, _)| layer)
}

fn is_weight(name: &str) -> bool {
    name.rsplit('.').next() == Some("weight")
}

/// Why a penalty, constraint or clipping could not be applied.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegularizeError<DeviceError> {
    /// A penalty's strength `λ` is negative, NaN or infinite.
    InvalidStrength {
        /// The penalty (`l2 penalty`, `l1 penalty`).
        what: &'static str,
        /// The `λ` given.
        strength: f64,
    },
    /// A max-norm `c` or a clipping threshold is not a positive finite number.
    NonPositiveLimit {
        /// The control (`max_norm`, `clip_grad_norm`, `clip_grad_value`).
        what: &'static str,
        /// The limit given.
        limit: f64,
    },
    /// [`Select::Layers`] names a layer the model does not have.
    UnknownLayer {
        /// The control.
        what: &'static str,
        /// The name given.
        layer: String,
        /// The model's layers with parameters.
        known: Vec<String>,
    },
    /// [`Select::Parameters`] names a parameter the model does not have.
    UnknownParameter {
        /// The control.
        what: &'static str,
        /// The name given.
        parameter: String,
        /// The model's parameters.
        known: Vec<String>,
    },
    /// The selection matches no parameter of the model (for max-norm: no weight matrix or
    /// filter bank, since a bias has no incoming weight vectors).
    NothingSelected {
        /// The control.
        what: &'static str,
        /// The selection.
        select: Select,
        /// The model's parameters.
        known: Vec<String>,
    },
    /// The device failed (out of memory, a CUDA error).
    Device(DeviceError),
}

impl<DeviceError: fmt::Display> fmt::Display for RegularizeError<DeviceError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidStrength { what, strength } => write!(
                f,
                "{what}: the strength λ must be a non-negative finite number, got {strength}"
            ),
            Self::NonPositiveLimit { what, limit } => write!(
                f,
                "{what}: the limit must be a positive finite number, got {limit}"
            ),
            Self::UnknownLayer { what, layer, known } => write!(
                f,
                "{what}: the model has no layer named {layer:?}; its layers with parameters are {}",
                known.join(", ")
            ),
            Self::UnknownParameter {
                what,
                parameter,
                known,
            } => write!(
                f,
                "{what}: the model has no parameter named {parameter:?}; its parameters are {}",
                known.join(", ")
            ),
            Self::NothingSelected {
                what,
                select,
                known,
            } => write!(
                f,
                "{what}: {select} selects nothing among the model's parameters ({})",
                known.join(", ")
            ),
            Self::Device(err) => write!(f, "device error: {err}"),
        }
    }
}

impl<DeviceError: fmt::Debug + fmt::Display> std::error::Error for RegularizeError<DeviceError> {}

/// The names of `model`'s trainable parameters, in the order optimisers visit them, such as
/// `["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]`.
///
/// ```
/// use typednet::prelude::*;
/// use typednet::regularize::parameter_names;
///
/// network! {
///     pub struct Tiny: [4] -> linear(3) -> relu -> linear(2);
/// }
/// let net = Tiny::<f32, Cpu>::new(&Cpu::default());
/// assert_eq!(
///     parameter_names(&net),
///     ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]
/// );
/// ```
pub fn parameter_names<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
) -> Vec<String> {
    let mut names = NameCollector(Vec::new());
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (String::new(), model),
        f: &mut names,
    });
    // The collector never fails: its error type is uninhabited.
    match walked {
        Ok(_) => names.0,
        Err(never) => match never {},
    }
}

struct NameCollector(Vec<String>);

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for NameCollector {
    type Viewer = (ViewTensorName, ViewTensorRef);
    type Err = core::convert::Infallible;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (name, _): (String, &Tensor<S, E, D>),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if opts.do_gradient_update {
            self.0.push(name);
        }
        Ok(None)
    }
}

/// Walks `model`'s tensors with `visitor`, whose view of the model is `view`.
fn walk<'a, E, D, M, V>(
    view: <V::Viewer as TensorViewer>::View<'a, M>,
    visitor: &'a mut V,
) -> Result<(), V::Err>
where
    E: Dtype,
    D: Device<E>,
    M: TensorCollection<E, D>,
    V: TensorVisitor<E, D, E2 = E, D2 = D>,
{
    M::iter_tensors(&mut RecursiveWalker {
        m: view,
        f: visitor,
    })?;
    Ok(())
}

/// A limit that must be a positive finite number.
pub(crate) fn check_limit<E>(what: &'static str, limit: f64) -> Result<(), RegularizeError<E>> {
    if limit > 0.0 && limit.is_finite() {
        Ok(())
    } else {
        Err(RegularizeError::NonPositiveLimit { what, limit })
    }
}

/// The panicking twin's way out.
fn unwrap_regularize<T, E: fmt::Display>(result: Result<T, RegularizeError<E>>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_match_by_name() {
        let names: Vec<String> = ["linear1.weight", "linear1.bias", "linear2.weight", "weight"]
            .map(String::from)
            .into();
        let chosen = |s: &Select| -> Vec<&str> {
            names
                .iter()
                .filter(|n| s.matches(n))
                .map(String::as_str)
                .collect()
        };
        assert_eq!(
            chosen(&Select::Weights),
            ["linear1.weight", "linear2.weight", "weight"]
        );
        assert_eq!(chosen(&Select::All).len(), 4);
        assert_eq!(chosen(&Select::layers(["linear2"])), ["linear2.weight"]);
        assert_eq!(
            chosen(&Select::parameters(["linear1.bias"])),
            ["linear1.bias"]
        );
    }

    #[test]
    fn unknown_names_are_errors_that_list_the_model() {
        let names: Vec<String> = ["linear1.weight", "linear1.bias"].map(String::from).into();
        let err = Select::layers(["linear9"])
            .check::<core::convert::Infallible>("l2 penalty", &names)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "l2 penalty: the model has no layer named \"linear9\"; its layers with parameters are linear1"
        );
        let err = Select::parameters(["linear1.weights"])
            .check::<core::convert::Infallible>("max_norm", &names)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "max_norm: the model has no parameter named \"linear1.weights\"; its parameters are linear1.weight, linear1.bias"
        );
        let err = Select::Weights
            .check::<core::convert::Infallible>("l1 penalty", &names[1..])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "l1 penalty: all weights selects nothing among the model's parameters (linear1.bias)"
        );
    }
}
