//! [`GroupedConv2d`]: the parameters of a grouped 2-d convolution.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Dtype, Rank1, Rank4};
use dfdx::tensor::{Storage, Tensor};
use dfdx::tensor_ops::Device;

use super::{reset_uniform, FanIn};
use crate::network::Element;

/// The parameters of a grouped 2-d convolution: `C_IN = GROUPS·C_IN_PER_GROUP` input channels
/// and `C_OUT` filters of size `K_H × K_W` split into `GROUPS` groups, each group of
/// `C_OUT/GROUPS` filters seeing only its own `C_IN_PER_GROUP` input channels; a bias per
/// filter. Stride and padding are not part of the type: the [`network!`](crate::network!) macro
/// passes them to [`crate::ops::grouped_conv2d::grouped_conv2d`] with the output size it
/// computed. `GROUPS = 1` is [`Conv2d`](crate::layers::Conv2d); `GROUPS = C_IN` is a depthwise
/// convolution (channel multiplier `C_OUT/C_IN`).
///
/// # Formula
/// With `g(o) = ⌊o / (C_OUT/GROUPS)⌋` the group of filter `o`:
/// `y[o, i, j] = b[o] + Σ_{c < C_IN/G} Σ_u Σ_v w[o, c, u, v] · x[g(o)·C_IN/G + c, s_h·i + u − p_h, s_w·j + v − p_w]`
/// (zero outside the input).
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, ⌊(H − K_H + 2p_h)/s_h⌋ + 1, ⌊(W − K_W + 2p_w)/s_w⌋ + 1]`;
/// parameters: `C_OUT·(C_IN/G)·K_H·K_W + C_OUT`, a `G`-th of the ungrouped convolution's
/// weights.
///
/// PyTorch: `nn.Conv2d(C_IN, C_OUT, (K_H, K_W), stride, padding, groups=G)`, initialised the
/// same way (weight and bias uniform in `±1/√(C_IN/G·K_H·K_W)`), with the same
/// `[C_OUT, C_IN/G, K_H, K_W]` weight layout, so weights copy across unchanged.
#[derive(Debug, Clone)]
pub struct GroupedConv2d<
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const GROUPS: usize,
    const K_H: usize,
    const K_W: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// Filters in PyTorch's layout `[C_OUT, C_IN/GROUPS, K_H, K_W]`: filter o sees input
    /// channels of group o / (C_OUT/GROUPS).
    pub weight: Tensor<Rank4<C_OUT, C_IN_PER_GROUP, K_H, K_W>, E, D>,
    /// One bias per filter.
    pub bias: Tensor<Rank1<C_OUT>, E, D>,
}

impl<
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        E: Element,
        D: Device<E>,
    > TensorCollection<E, D> for GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> =
        GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E2, D2>;

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
            |(weight, bias)| GroupedConv2d { weight, bias },
        )
    }
}

impl<
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        E: Dtype,
        D: Storage<E>,
    > FanIn for GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, D>
{
    const FAN_IN: usize = C_IN_PER_GROUP * K_H * K_W;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::nn::BuildModule;
    use dfdx::nn::NumParams;
    use dfdx::tensor::AsArray;

    #[test]
    fn grouped_conv_counts_alexnet_conv2_parameters() {
        let dev = crate::test_device!();
        // AlexNet's conv2: 96 → 256 channels, 5×5, 2 groups of 48 input channels.
        let conv = GroupedConv2d::<48, 256, 2, 5, 5, f32, TestDevice>::build(&dev);
        assert_eq!(conv.num_trainable_params(), 256 * 48 * 25 + 256);
        assert_eq!(conv.num_trainable_params(), 307_456);
    }

    #[test]
    fn grouped_conv_initialises_within_the_pytorch_bound() {
        let dev = crate::test_device!();
        let conv = GroupedConv2d::<2, 6, 3, 3, 3, f32, TestDevice>::build(&dev);
        // The fan-in is a group's 2 channels, not all 6.
        let bound = 1.0 / (2.0f32 * 9.0).sqrt();
        let weights = conv.weight.as_vec();
        assert!(weights.iter().all(|w| w.abs() <= bound));
        assert!(weights
            .iter()
            .any(|w| w.abs() > 1.0 / (6.0f32 * 9.0).sqrt()));
        assert!(weights.iter().any(|w| (w - weights[0]).abs() > 1e-6));
        assert!(conv.bias.array().iter().all(|b| b.abs() <= bound));
    }
}
