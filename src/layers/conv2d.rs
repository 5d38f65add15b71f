use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Dtype, Rank1, Rank4};
use dfdx::tensor::{Storage, Tensor};
use dfdx::tensor_ops::Device;

use super::{reset_uniform, FanIn};
use crate::network::Element;

/// The parameters of a 2-d convolution with `C_IN` input channels, `C_OUT` filters of size
/// `K_H × K_W`, and a bias per filter. Stride and padding are not part of the type: the
/// [`network!`](crate::network!) macro passes them to [`crate::ops::conv2d()`] with the output
/// size it computed.
///
/// # Formula
/// `y[o, i, j] = b[o] + Σ_c Σ_u Σ_v w[o, c, u, v] · x[c, s_h·i + u − p_h, s_w·j + v − p_w]`
/// (zero outside the input).
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, ⌊(H − K_H + 2p_h)/s_h⌋ + 1, ⌊(W − K_W + 2p_w)/s_w⌋ + 1]`;
/// parameters: `C_OUT·C_IN·K_H·K_W + C_OUT`.
///
/// PyTorch: `nn.Conv2d(C_IN, C_OUT, (K_H, K_W), stride, padding)`, initialised the same way
/// (weight and bias uniform in `±1/√(C_IN·K_H·K_W)`), with the same `[C_OUT, C_IN, K_H, K_W]`
/// weight layout.
#[derive(Debug, Clone)]
pub struct Conv2d<
    const C_IN: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// Filters, `[C_OUT, C_IN, K_H, K_W]`.
    pub weight: Tensor<Rank4<C_OUT, C_IN, K_H, K_W>, E, D>,
    /// One bias per filter.
    pub bias: Tensor<Rank1<C_OUT>, E, D>,
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        E: Element,
        D: Device<E>,
    > TensorCollection<E, D> for Conv2d<C_IN, C_OUT, K_H, K_W, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2d<C_IN, C_OUT, K_H, K_W, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(reset_uniform::<Self, _, E, D>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(reset_uniform::<Self, _, E, D>),
                ),
            ),
            |(weight, bias)| Conv2d { weight, bias },
        )
    }
}

/// A 2-d convolution without a bias: [`Conv2d`]'s filters only, for a convolution followed by
/// batch normalisation, whose `β` makes a bias redundant (ResNet's and GoogLeNet's convolutions).
/// Declared as `conv(…, bias = false)`.
///
/// # Shapes
/// As [`Conv2d`]; parameters: `C_OUT·C_IN·K_H·K_W`.
///
/// PyTorch: `nn.Conv2d(C_IN, C_OUT, (K_H, K_W), stride, padding, bias=False)`.
#[derive(Debug, Clone)]
pub struct Conv2dNoBias<
    const C_IN: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// Filters, `[C_OUT, C_IN, K_H, K_W]`.
    pub weight: Tensor<Rank4<C_OUT, C_IN, K_H, K_W>, E, D>,
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        E: Element,
        D: Device<E>,
    > TensorCollection<E, D> for Conv2dNoBias<C_IN, C_OUT, K_H, K_W, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2dNoBias<C_IN, C_OUT, K_H, K_W, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            Self::tensor(
                "weight",
                |s| &s.weight,
                |s| &mut s.weight,
                TensorOptions::reset_with(reset_uniform::<Self, _, E, D>),
            ),
            |weight| Conv2dNoBias { weight },
        )
    }
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        E: Dtype,
        D: Storage<E>,
    > FanIn for Conv2d<C_IN, C_OUT, K_H, K_W, E, D>
{
    const FAN_IN: usize = C_IN * K_H * K_W;
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        E: Dtype,
        D: Storage<E>,
    > FanIn for Conv2dNoBias<C_IN, C_OUT, K_H, K_W, E, D>
{
    const FAN_IN: usize = C_IN * K_H * K_W;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::nn::BuildModule;
    use dfdx::nn::NumParams;
    use dfdx::tensor::AsArray;

    #[test]
    fn counts_parameters_like_pytorch() {
        let dev = crate::test_device!();
        let conv = Conv2d::<3, 96, 11, 11, f32, TestDevice>::build(&dev);
        // AlexNet's conv1: 96·3·11·11 + 96.
        assert_eq!(conv.num_trainable_params(), 34_944);
    }

    #[test]
    fn initialises_within_the_pytorch_bound() {
        let dev = crate::test_device!();
        let conv = Conv2d::<2, 4, 3, 3, f32, TestDevice>::build(&dev);
        let bound = 1.0 / (2.0f32 * 9.0).sqrt();
        let weights = conv.weight.as_vec();
        assert!(weights.iter().all(|w| w.abs() <= bound));
        // Not all equal: the weights were actually drawn.
        assert!(weights.iter().any(|w| (w - weights[0]).abs() > 1e-6));
        assert!(conv.bias.array().iter().all(|b| b.abs() <= bound));
    }
}
