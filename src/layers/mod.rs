//! Layers that hold parameters. Layers without parameters (activations, pooling, flatten) are
//! plain functions in [`crate::ops`] that the generated `forward` calls.

mod conv2d;
mod conv_transpose2d;
mod grouped_conv2d;
mod locally_connected2d;

pub use conv2d::{Conv2d, Conv2dNoBias};
pub use conv_transpose2d::ConvTranspose2d;
pub use grouped_conv2d::GroupedConv2d;
pub use locally_connected2d::LocallyConnected2d;

use dfdx::shapes::Shape;
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::Device;
use rand::distributions::Uniform;

use crate::network::Element;

/// A layer initialised as PyTorch initialises its convolutions (kaiming_uniform with a = √5):
/// weights and biases uniform in ±1/√`FAN_IN`, the number of inputs one output sees.
pub(crate) trait FanIn {
    const FAN_IN: usize;
}

/// Refills `t`, a parameter of layer `L`, uniformly in ±1/√`L::FAN_IN`: the reset the
/// convolution-like layers hand to dfdx's `TensorOptions::reset_with`.
pub(crate) fn reset_uniform<L: FanIn, S: Shape, E: Element, D: Device<E>>(
    t: &mut Tensor<S, E, D>,
) -> Result<(), D::Err> {
    let bound = E::one() / E::from_usize(L::FAN_IN).unwrap().sqrt();
    t.try_fill_with_distr(Uniform::new(-bound, bound))
}

/// A fully connected layer `y = x·Wᵀ + b`: dfdx's own, which already matches PyTorch.
///
/// # Shapes
/// `[B, I]` → `[B, O]`; parameters: `I·O + O`.
///
/// Initialised like PyTorch's `nn.Linear(I, O)`: weight and bias uniform in `±1/√I`.
/// Its weight is stored as `[O, I]`, as in PyTorch, so weights copy across unchanged.
///
/// The parameters are dfdx's; the computation a `linear(…)` layer of
/// [`network!`](crate::network!) runs is [`crate::ops::try_linear`] (on the CPU in `f32`,
/// typednet's own [`crate::gemm`]; elsewhere dfdx's module, as `Module::forward` on this type
/// still is).
pub type Linear<const I: usize, const O: usize, E, D> = dfdx::nn::modules::Linear<I, O, E, D>;

/// Batch normalisation of images, per channel: `y = (x − μ)/√(σ² + ε)·γ + β`, the mean `μ` and
/// (biased) variance `σ²` taken over the batch, height and width while training, the running
/// estimates in evaluation. dfdx's layer: `scale` (γ, starts at 1) and `bias` (β, 0) are
/// trained; `running_mean` and `running_var` (PyTorch's buffers) are not, and are updated by
/// `forward_mut` with momentum 0.1 (the variance unbiased, as PyTorch does); `ε = 1e-5`.
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, H, W]`.
///
/// PyTorch: `nn.BatchNorm2d(C)`, `train()` for `forward_mut` with a tape, `eval()` without one.
pub type BatchNorm2d<const C: usize, E, D> = dfdx::nn::modules::BatchNorm2D<C, E, D>;

/// Batch normalisation of vectors, per feature, over the batch: as [`BatchNorm2d`] for
/// `[B, F]` → `[B, F]`. PyTorch: `nn.BatchNorm1d(F)`.
pub type BatchNorm1d<const F: usize, E, D> = dfdx::nn::modules::BatchNorm1D<F, E, D>;
