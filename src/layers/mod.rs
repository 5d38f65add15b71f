//! Layers that hold parameters. Layers without parameters (activations, pooling, flatten) are
//! plain functions in [`crate::ops`] that the generated `forward` calls.

mod conv2d;
mod conv_transpose2d;

pub use conv2d::Conv2d;
pub use conv_transpose2d::ConvTranspose2d;

/// A fully connected layer `y = x·Wᵀ + b`: dfdx's own, which already matches PyTorch.
///
/// # Shapes
/// `[B, I]` → `[B, O]`; parameters: `I·O + O`.
///
/// Initialised like PyTorch's `nn.Linear(I, O)`: weight and bias uniform in `±1/√I`.
/// Its weight is stored as `[O, I]`, as in PyTorch, so weights copy across unchanged.
pub type Linear<const I: usize, const O: usize, E, D> = dfdx::nn::modules::Linear<I, O, E, D>;
