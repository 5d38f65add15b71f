//! The fully connected layer, `y = x·Wᵀ + b`, as one op: what a `linear(…)` layer of
//! [`network!`](crate::network!) lowers to.
//!
//! | | |
//! |---|---|
//! | formula | `y[…, o] = Σ_i x[…, i]·W[o, i] + b[o]` |
//! | shapes | `x` `[I]`, `[B, I]` or `[B, T, I]` (applied at every step); `W` `[O, I]`; `b` `[O]`; `y` as `x` with `O` last |
//! | gradients | `∂x = ∂y·W`, `∂W = ∂yᵀ·x` (over every row), `∂b = Σ_rows ∂y` |
//! | PyTorch | `torch.nn.functional.linear(x, W, b)`, i.e. `nn.Linear(I, O)` |
//!
//! The parameters are dfdx's [`Linear`] (PyTorch's layout and initialisation), so everything
//! written for dfdx modules (optimisers, checkpoints, `to_device`) works unchanged. What differs
//! is the lowering:
//!
//! - on [`Cpu`](dfdx::tensor::Cpu) in `f32`, `cpu_kernel.rs`: one op on the tape whose forward is
//!   one [`crate::gemm`] product accumulated onto the broadcast bias and whose backward is two
//!   products and a column sum, all read through strides (no transposed copies);
//! - elsewhere (CUDA, `f64`), the reference: dfdx's own `Linear` module, a `matmul` of `x` with
//!   `Wᵀ` plus the broadcast bias. The tests hold the kernel to it.
//!
//! [`try_linear_activation`] is the layer followed by ReLU, σ or tanh, in one op: what
//! `linear(n) -> relu` (or `sigmoid`, `tanh`) in a `network!` lowers to. On the CPU in `f32` the
//! activation is applied to the product where it lies, and its derivative (written in terms of
//! the output, `y > 0`, `y(1 − y)`, `1 − y²`) multiplies the incoming gradient before the two
//! backward products. dfdx's separate activation op would copy the product, map the copy, and
//! in the backward pass allocate and accumulate a gradient for the product: three passes over
//! memory and an allocation that the fused op does not make. Elsewhere it is the reference
//! followed by dfdx's activation op.

pub(crate) mod cpu_kernel;

use dfdx::nn::Module;
use dfdx::shapes::{Const, Dim, Shape};
use dfdx::tensor::{Tape, Tensor};

use crate::ops::activations::Function;

use crate::layers::Linear;
use crate::network::Element;

/// `y = x·Wᵀ + b` for `x` `[I]`, `[B, I]` or `[B, T, I]`; see the [module docs](self).
///
/// ```
/// use dfdx::prelude::*;
/// use typednet::layers::Linear;
///
/// let dev = Cpu::default();
/// let layer: Linear<3, 2, f32, Cpu> = dev.build_module::<dfdx::nn::builders::Linear<3, 2>, f32>();
/// let x = dev.tensor([[1.0f32, 2.0, 3.0]]);
/// let y = typednet::ops::try_linear(x.clone(), &layer).unwrap();
/// // The same numbers as dfdx's (and PyTorch's) linear layer.
/// let expected = layer.forward(x);
/// for (a, b) in y.array()[0].iter().zip(expected.array()[0]) {
///     assert!((a - b).abs() < 1e-6);
/// }
/// ```
pub fn try_linear<
    const I: usize,
    const O: usize,
    S: LinearShape<I, O>,
    E: Element,
    D: LinearKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<S, E, D, T>,
    layer: &Linear<I, O, E, D>,
) -> Result<Tensor<S::Output, E, D, T>, D::Err> {
    D::try_linear_kernel(x, layer, LinearActivation::Identity)
}

/// The activation [`try_linear_activation`] applies to the layer's output.
///
/// | variant | `f(z)` | `f′` in terms of `y = f(z)` | PyTorch |
/// |---|---|---|---|
/// | `Identity` | `z` | 1 | — |
/// | `Relu` | `max(0, z)` | 1 where `y > 0`, else 0 | `F.relu` |
/// | `LeakyRelu(a)`, `0 ≤ a ≤ 1` | `max(0, z) + a·min(0, z)` | 1 where `y > 0`, else `a` | `F.leaky_relu(z, a)` |
/// | `Sigmoid` | `1 / (1 + e^{−z})` | `y(1 − y)` | `torch.sigmoid` |
/// | `Tanh` | `tanh z` | `1 − y²` | `torch.tanh` |
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum LinearActivation {
    /// No activation: [`try_linear`].
    #[default]
    Identity,
    /// `max(0, z)`.
    Relu,
    /// Leaky ReLU with the given slope below zero. A slope outside `[0, 1]`, where the output's
    /// sign no longer tells the input's, runs unfused (the layer, then
    /// [`try_leaky_relu`](crate::ops::try_leaky_relu)).
    LeakyRelu(f64),
    /// The logistic sigmoid.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
}

impl LinearActivation {
    /// The slice kernel, `None` for the identity.
    pub(crate) fn function(self) -> Option<Function> {
        match self {
            LinearActivation::Identity => None,
            LinearActivation::Relu => Some(Function::Relu),
            LinearActivation::LeakyRelu(slope) if (0.0..=1.0).contains(&slope) => {
                Some(Function::LeakyRelu(slope))
            }
            // Not fusable: the CPU kernel runs it after the layer.
            LinearActivation::LeakyRelu(_) => None,
            LinearActivation::Sigmoid => Some(Function::Sigmoid),
            LinearActivation::Tanh => Some(Function::Tanh),
        }
    }

    /// The activation as dfdx's op: the reference the fused kernel is tested against.
    fn reference<S: Shape, E: Element, D: dfdx::tensor_ops::Device<E>, T: Tape<E, D>>(
        self,
        z: Tensor<S, E, D, T>,
    ) -> Result<Tensor<S, E, D, T>, D::Err> {
        match self {
            LinearActivation::Identity => Ok(z),
            LinearActivation::Relu => z.try_relu(),
            LinearActivation::LeakyRelu(slope) => crate::ops::try_leaky_relu(z, slope),
            LinearActivation::Sigmoid => z.try_sigmoid(),
            LinearActivation::Tanh => z.try_tanh(),
        }
    }
}

/// `f(x·Wᵀ + b)` for an element-wise `f`, in one op; see the [module docs](self).
///
/// ```
/// use dfdx::prelude::*;
/// use typednet::layers::Linear;
/// use typednet::ops::{try_linear, try_linear_activation, LinearActivation};
///
/// let dev = Cpu::default();
/// let layer: Linear<3, 2, f32, Cpu> = dev.build_module::<dfdx::nn::builders::Linear<3, 2>, f32>();
/// let x = dev.tensor([[1.0f32, -2.0, 3.0]]);
/// let fused = try_linear_activation(x.clone(), &layer, LinearActivation::Sigmoid).unwrap();
/// let separate = try_linear(x, &layer).unwrap().sigmoid();
/// for (a, b) in fused.array()[0].iter().zip(separate.array()[0]) {
///     assert!((a - b).abs() < 1e-6);
/// }
/// ```
pub fn try_linear_activation<
    const I: usize,
    const O: usize,
    S: LinearShape<I, O>,
    E: Element,
    D: LinearKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<S, E, D, T>,
    layer: &Linear<I, O, E, D>,
    activation: LinearActivation,
) -> Result<Tensor<S::Output, E, D, T>, D::Err> {
    D::try_linear_kernel(x, layer, activation)
}

/// The input shapes a linear layer takes (`[I]`, `[B, I]`, `[B, T, I]`) and what it makes of
/// them (the same with `O` last).
pub trait LinearShape<const I: usize, const O: usize>: Shape {
    /// The output shape: `Self` with its last dimension `O`.
    type Output: Shape;

    /// The output shape of this input.
    fn output_shape(&self) -> Self::Output;

    /// The reference lowering: dfdx's `Linear` module.
    fn reference<E: Element, D: dfdx::tensor_ops::Device<E>, T: Tape<E, D>>(
        x: Tensor<Self, E, D, T>,
        layer: &Linear<I, O, E, D>,
    ) -> Result<Tensor<Self::Output, E, D, T>, D::Err>;
}

impl<const I: usize, const O: usize> LinearShape<I, O> for (Const<I>,) {
    type Output = (Const<O>,);
    fn output_shape(&self) -> Self::Output {
        (Const,)
    }
    fn reference<E: Element, D: dfdx::tensor_ops::Device<E>, T: Tape<E, D>>(
        x: Tensor<Self, E, D, T>,
        layer: &Linear<I, O, E, D>,
    ) -> Result<Tensor<Self::Output, E, D, T>, D::Err> {
        layer.try_forward(x)
    }
}

impl<B: Dim, const I: usize, const O: usize> LinearShape<I, O> for (B, Const<I>) {
    type Output = (B, Const<O>);
    fn output_shape(&self) -> Self::Output {
        (self.0, Const)
    }
    fn reference<E: Element, D: dfdx::tensor_ops::Device<E>, T: Tape<E, D>>(
        x: Tensor<Self, E, D, T>,
        layer: &Linear<I, O, E, D>,
    ) -> Result<Tensor<Self::Output, E, D, T>, D::Err> {
        layer.try_forward(x)
    }
}

impl<B: Dim, S: Dim, const I: usize, const O: usize> LinearShape<I, O> for (B, S, Const<I>) {
    type Output = (B, S, Const<O>);
    fn output_shape(&self) -> Self::Output {
        (self.0, self.1, Const)
    }
    fn reference<E: Element, D: dfdx::tensor_ops::Device<E>, T: Tape<E, D>>(
        x: Tensor<Self, E, D, T>,
        layer: &Linear<I, O, E, D>,
    ) -> Result<Tensor<Self::Output, E, D, T>, D::Err> {
        layer.try_forward(x)
    }
}

/// The device-specific implementation of [`try_linear`], chosen by the device type as dfdx
/// chooses its kernels.
pub trait LinearKernel<E: Element>: dfdx::tensor_ops::Device<E> {
    /// Runs the layer and its activation on this device, recording the backward pass on the
    /// tape.
    fn try_linear_kernel<const I: usize, const O: usize, S: LinearShape<I, O>, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        layer: &Linear<I, O, E, Self>,
        activation: LinearActivation,
    ) -> Result<Tensor<S::Output, E, Self, T>, Self::Err>;
}

/// On the CPU, the [`crate::gemm`] kernel for `f32`; dfdx's module for other types.
impl<E: Element> LinearKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: dfdx::tensor_ops::Device<E>,
{
    fn try_linear_kernel<const I: usize, const O: usize, S: LinearShape<I, O>, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        layer: &Linear<I, O, E, Self>,
        activation: LinearActivation,
    ) -> Result<Tensor<S::Output, E, Self, T>, Self::Err> {
        if !cpu_kernel::is_f32::<E>() {
            activation.reference(S::reference(x, layer)?)
        } else if activation == LinearActivation::Identity || activation.function().is_some() {
            cpu_kernel::try_linear(x, layer, activation)
        } else {
            let z = cpu_kernel::try_linear(x, layer, LinearActivation::Identity)?;
            activation.reference(z)
        }
    }
}

/// On CUDA dfdx's module is the kernel: its matmul is cuBLAS.
#[cfg(feature = "cuda")]
impl<E: Element> LinearKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: dfdx::tensor_ops::Device<E>,
{
    fn try_linear_kernel<const I: usize, const O: usize, S: LinearShape<I, O>, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        layer: &Linear<I, O, E, Self>,
        activation: LinearActivation,
    ) -> Result<Tensor<S::Output, E, Self, T>, Self::Err> {
        activation.reference(S::reference(x, layer)?)
    }
}

/// The number of rows a linear layer multiplies: every dimension but the last.
fn rows<S: Shape>(shape: &S, features: usize) -> usize {
    shape.num_elements().checked_div(features).unwrap_or(0)
}

#[cfg(test)]
mod tests;
