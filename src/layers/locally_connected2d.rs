//! Locally-connected 2-d layer parameters: a convolution without weight sharing.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Dtype, Rank3, Rank6};
use dfdx::tensor::{Storage, Tensor};
use dfdx::tensor_ops::Device;

use super::{reset_uniform, FanIn};
use crate::network::Element;

/// The parameters of a locally-connected 2-d layer: like a convolution with `C_IN` input
/// channels and `C_OUT` filters of size `K_H × K_W`, but with no weight sharing: each of the
/// `O_H × O_W` output positions has a filter bank and biases of its own. Stride and padding are
/// not part of the type: the [`network!`](crate::network!) macro passes them to
/// [`crate::ops::locally_connected2d()`] with the output size it computed, which the layer's
/// shape depends on.
///
/// Suits inputs whose content is aligned (DeepFace's layers L4–L6 on centred, frontalised faces),
/// where the features worth detecting differ from one place to another.
///
/// # Formula
/// `y[b, o, i, j] = bias[o, i, j] + Σ_c Σ_u Σ_v weight[i, j, o, c, u, v] · x[b, c, s_h·i + u − p_h, s_w·j + v − p_w]`
/// (zero outside the input).
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, O_H, O_W]` with `O_H = ⌊(H − K_H + 2p_h)/s_h⌋ + 1`,
/// `O_W = ⌊(W − K_W + 2p_w)/s_w⌋ + 1`; weight `[O_H, O_W, C_OUT, C_IN, K_H, K_W]`, bias
/// `[C_OUT, O_H, O_W]`; parameters: `O_H·O_W·(C_IN·K_H·K_W + 1)·C_OUT`, that is `O_H·O_W` times
/// those of the convolution with the same filters.
///
/// Keras 2: `LocallyConnected2D(C_OUT, (K_H, K_W), strides=(s_h, s_w))` (valid padding only;
/// its kernel is stored as `[O_H·O_W, K_H·K_W·C_IN, C_OUT]`, in another order; Keras 3 dropped
/// the layer).
///
/// PyTorch has no such layer; the equivalent is an unfold and one matrix product per position:
/// ```text
/// cols = F.unfold(x, (K_H, K_W), padding=(p_h, p_w), stride=(s_h, s_w))   # [B, C_IN·K_H·K_W, L]
/// y = torch.einsum('bkl,lok->bol', cols, weight.reshape(L, C_OUT, -1)) + bias.reshape(C_OUT, L)
/// y = y.reshape(B, C_OUT, O_H, O_W)                                       # L = O_H·O_W
/// ```
/// (`tools/reference_locally_connected.py`). The initialisation follows PyTorch's `nn.Conv2d`:
/// weight and bias uniform in `±1/√(C_IN·K_H·K_W)`, the fan-in of one output value.
#[derive(Debug, Clone)]
pub struct LocallyConnected2d<
    const C_IN: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// One filter bank per output position: `[O_H, O_W, C_OUT, C_IN, K_H, K_W]`.
    pub weight: Tensor<Rank6<O_H, O_W, C_OUT, C_IN, K_H, K_W>, E, D>,
    /// One bias per output channel and position: `[C_OUT, O_H, O_W]`.
    pub bias: Tensor<Rank3<C_OUT, O_H, O_W>, E, D>,
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
        D: Device<E>,
    > TensorCollection<E, D> for LocallyConnected2d<C_IN, C_OUT, K_H, K_W, O_H, O_W, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> =
        LocallyConnected2d<C_IN, C_OUT, K_H, K_W, O_H, O_W, E2, D2>;

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
            |(weight, bias)| LocallyConnected2d { weight, bias },
        )
    }
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Dtype,
        D: Storage<E>,
    > FanIn for LocallyConnected2d<C_IN, C_OUT, K_H, K_W, O_H, O_W, E, D>
{
    const FAN_IN: usize = C_IN * K_H * K_W;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::nn::{BuildModule, NumParams};

    #[test]
    fn locally_connected_counts_parameters() {
        let dev = crate::test_device!();
        let layer = LocallyConnected2d::<3, 4, 3, 3, 5, 6, f32, TestDevice>::build(&dev);
        // 5·6 positions, each with 4 filters of 3·3·3 weights and a bias.
        assert_eq!(layer.num_trainable_params(), 5 * 6 * (27 + 1) * 4);
        assert_eq!(layer.num_trainable_params(), 3_360);
    }

    #[test]
    fn locally_connected_initialises_within_the_conv_bound() {
        let dev = crate::test_device!();
        let layer = LocallyConnected2d::<2, 3, 3, 2, 4, 5, f32, TestDevice>::build(&dev);
        let bound = 1.0 / (2.0f32 * 3.0 * 2.0).sqrt();
        let weights = layer.weight.as_vec();
        assert!(weights.iter().all(|w| w.abs() <= bound));
        // Drawn, not constant: positions do not start out sharing filters.
        assert!(weights.iter().any(|w| (w - weights[0]).abs() > 1e-6));
        let biases = layer.bias.as_vec();
        assert!(biases.iter().all(|b| b.abs() <= bound));
        assert!(biases.iter().any(|b| (b - biases[0]).abs() > 1e-6));
    }
}
