use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Dtype, Rank1, Rank4};
use dfdx::tensor::{Storage, Tensor};
use dfdx::tensor_ops::Device;

use super::{reset_uniform, FanIn};
use crate::network::Element;

/// The parameters of a 2-d transposed convolution (the upsampling layer of decoders and
/// generators): `C_IN` input channels, each spreading a `C_OUT × K_H × K_W` stamp over the
/// output, plus a bias per output channel. Stride, padding and output padding are not part of
/// the type: they are passed to [`crate::ops::conv_transpose2d()`] with the output size.
///
/// # Formula
/// `y[o, i, j] = b[o] + Σ_c Σ_{h, u: s_h·h + u − p_h = i} Σ_{w, v: s_w·w + v − p_w = j}
/// w[c, o, u, v] · x[c, h, w]`: each input cell adds its value times the filter `w[c]` to the
/// output window that starts at `(s_h·h − p_h, s_w·w − p_w)`.
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, (H − 1)·s_h − 2p_h + K_H + q_h, (W − 1)·s_w − 2p_w + K_W + q_w]`
/// (`q` the output padding); parameters: `C_IN·C_OUT·K_H·K_W + C_OUT`.
///
/// PyTorch: `nn.ConvTranspose2d(C_IN, C_OUT, (K_H, K_W), stride, padding, output_padding)`, with
/// the same `[C_IN, C_OUT, K_H, K_W]` weight layout, so weights copy across unchanged, and the
/// same initialisation: weight and bias uniform in `±1/√(C_OUT·K_H·K_W)`. (PyTorch computes the
/// fan-in of any conv weight from its dimension 1, which for a transposed convolution is
/// `C_OUT`, not `C_IN`.)
#[derive(Debug, Clone)]
pub struct ConvTranspose2d<
    const C_IN: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// Filters, `[C_IN, C_OUT, K_H, K_W]`: what each input channel adds to the output.
    pub weight: Tensor<Rank4<C_IN, C_OUT, K_H, K_W>, E, D>,
    /// One bias per output channel.
    pub bias: Tensor<Rank1<C_OUT>, E, D>,
}

impl<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        E: Element,
        D: Device<E>,
    > TensorCollection<E, D> for ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E2, D2>;

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
            |(weight, bias)| ConvTranspose2d { weight, bias },
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
    > FanIn for ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, D>
{
    // PyTorch takes the fan-in from the weight's second axis, which for a transposed
    // convolution (`[C_IN, C_OUT, K_H, K_W]`) is the output channels.
    const FAN_IN: usize = C_OUT * K_H * K_W;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::nn::BuildModule;
    use dfdx::nn::NumParams;
    use dfdx::tensor::AsArray;

    /// `sum(p.numel() for p in nn.ConvTranspose2d(c_in, c_out, k).parameters())` in PyTorch
    /// 2.15: 32800 for (64, 32, 4), 217 for (3, 7, (2, 5)).
    #[test]
    fn counts_parameters_like_pytorch() {
        let dev = crate::test_device!();
        let dcgan = ConvTranspose2d::<64, 32, 4, 4, f32, TestDevice>::build(&dev);
        assert_eq!(dcgan.num_trainable_params(), 32_800);
        let non_square = ConvTranspose2d::<3, 7, 2, 5, f32, TestDevice>::build(&dev);
        assert_eq!(non_square.num_trainable_params(), 217);
    }

    /// PyTorch 2.15, `nn.ConvTranspose2d(3, 64, 5)`: max |weight| = 0.024996 and max |bias| =
    /// 0.024734, against 1/√(64·25) = 0.025; the bound from `C_IN`, 1/√(3·25) = 0.115, would be
    /// four times too wide. The same holds here: all within the bound, and some close to it.
    #[test]
    fn initialises_within_the_pytorch_bound_from_the_output_channels() {
        let dev = crate::test_device!();
        let layer = ConvTranspose2d::<3, 64, 5, 5, f32, TestDevice>::build(&dev);
        let bound = 1.0 / (64.0f32 * 25.0).sqrt();
        let weights = layer.weight.as_vec();
        assert!(weights.iter().all(|w| w.abs() <= bound));
        assert!(weights.iter().any(|w| w.abs() > 0.9 * bound));
        let biases = layer.bias.array();
        assert!(biases.iter().all(|b| b.abs() <= bound));
        assert!(biases.iter().any(|b| b.abs() > 0.5 * bound));
    }
}
