//! Dilated ("atrous") convolution: the taps of each `K_H × K_W` filter are `d` cells apart, so
//! the filter covers `d·(K − 1) + 1` cells with `K` weights.
//!
//! Lowered as the filters spread onto their dilated extent with zeros between the taps (a
//! `gather` from the weights with one zero slot appended, as the grouped convolution's
//! reference spreads its filters block-diagonally), then the convolution reference
//! (`reference.rs`: unfold + matmul) on the spread filters. A composition of dfdx ops, so it runs
//! on every device and dfdx records its backward pass; `gather`'s backward gives each weight the
//! gradient of its tap. Known cost: the multiplications by the zeros between the taps, about
//! `(d·(K − 1) + 1)² / K²` times a plain convolution's (2.8× for `K = 3, d = 2`), and the
//! reference's unfold instead of the fast CPU kernel.

use dfdx::shapes::{Axis, Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{Device, GatherTo, ReshapeTo, TryConcatAlong};

use super::{assert_output_size, reference, Conv2dGeometry, WindowGeometry};
use crate::layers::Conv2d;
use crate::network::Element;

/// Where each cell of the spread `[C_OUT·C_IN, KD_H, KD_W]` filters reads the flat
/// `[C_OUT·C_IN·K_H·K_W]` weights: tap `(u, v)` sits at `(u·d_h, v·d_w)`; every other cell reads
/// the zero slot at index `C_OUT·C_IN·K_H·K_W`.
pub(crate) fn spread_indices(
    filters: usize,
    kernel: [usize; 2],
    dilation: [usize; 2],
    spread: [usize; 2],
) -> Vec<usize> {
    let zero = filters * kernel[0] * kernel[1];
    let mut indices = Vec::with_capacity(filters * spread[0] * spread[1]);
    for f in 0..filters {
        for row in 0..spread[0] {
            for col in 0..spread[1] {
                let tap = (row % dilation[0] == 0 && col % dilation[1] == 0)
                    .then(|| (row / dilation[0], col / dilation[1]));
                indices.push(match tap {
                    Some((u, v)) => (f * kernel[0] + u) * kernel[1] + v,
                    None => zero,
                });
            }
        }
    }
    indices
}

/// Dilated 2-d convolution: `y[b, o, i, j] = bias[o] + Σ_{c, u, v} w[o, c, u, v] ·
/// x_padded[b, c, i·s_h + u·d_h, j·s_w + v·d_w]`, `[B, C_IN, H, W]` → `[B, C_OUT, O_H, O_W]` with
/// `O = ⌊(H + 2p − d·(K − 1) − 1)/s⌋ + 1`. `KD_H`, `KD_W` are the dilated extents
/// `d·(K − 1) + 1`, which the [`network!`](crate::network!) macro computes (`conv(…, dilation = d)`).
///
/// PyTorch: `nn.Conv2d(C_IN, C_OUT, K, stride=s, padding=p, dilation=d)`.
///
/// # Panics
/// If `KD_H`, `KD_W` are not the dilated extents, or `O_H`, `O_W` do not follow from them.
///
/// ```
/// use typednet::layers::Conv2d;
/// use typednet::ops::{try_dilated_conv2d, Conv2dGeometry};
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let layer = Conv2d::<1, 4, 3, 3, f32, Cpu>::build(&dev);
/// let x: Tensor<Rank4<2, 1, 16, 16>, f32, Cpu> = dev.sample_normal();
/// let geometry = Conv2dGeometry { stride: [1, 1], padding: [0, 0] };
/// // A 3×3 filter with taps 2 apart spans 5×5: 16 − 5 + 1 = 12.
/// let y: Tensor<Rank4<2, 4, 12, 12>, f32, Cpu> =
///     try_dilated_conv2d::<_, 1, 16, 16, 4, 3, 3, 5, 5, 12, 12, _, _, _>(x, &layer, geometry, [2, 2])
///         .unwrap();
/// ```
#[allow(clippy::type_complexity)]
pub fn try_dilated_conv2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    const KD_H: usize,
    const KD_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
    dilation: [usize; 2],
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    assert!(
        dilation[0] > 0 && dilation[1] > 0,
        "dilated conv2d: the dilation must be at least 1, found {dilation:?}"
    );
    let spread = [dilation[0] * (K_H - 1) + 1, dilation[1] * (K_W - 1) + 1];
    assert_eq!(
        [KD_H, KD_W],
        spread,
        "dilated conv2d: a {K_H}×{K_W} filter with dilation {dilation:?} spans {}×{}, not {KD_H}×{KD_W}",
        spread[0],
        spread[1]
    );
    assert_output_size(
        "dilated conv2d",
        WindowGeometry {
            input: [H, W],
            kernel: spread,
            stride: geometry.stride,
            padding: geometry.padding,
        },
        [O_H, O_W],
    );
    let dev = layer.weight.device().clone();
    let len = C_OUT * C_IN * K_H * K_W;
    // The weight joins the input's tape with an empty tape of its own; `gather` records its
    // gradient.
    let flat = layer.weight.retaped::<T>().try_reshape_like(&(len,))?;
    let zero = dev.try_zeros_like(&(1,))?;
    let source = (flat, zero).try_concat_along(Axis::<0>)?;
    let indices = spread_indices(C_OUT * C_IN, [K_H, K_W], dilation, spread);
    let indices = dev.try_tensor_from_vec(indices, (C_OUT * C_IN * KD_H * KD_W,))?;
    let spread: Tensor<(usize,), E, D, T> = source.try_gather(indices)?;
    let spread =
        spread.try_reshape_like(&(Const::<C_OUT>, Const::<C_IN>, Const::<KD_H>, Const::<KD_W>))?;
    reference::try_conv2d_with_parameters(x, spread, layer.bias.retaped::<T>(), geometry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::nn::BuildModule;
    use dfdx::tensor::{SampleTensor, TensorFrom, Trace};
    use dfdx::tensor_ops::{Backward, SumTo};

    /// One 2×2 filter with dilation 2 spreads to 3×3: taps at the corners, zeros (index 4)
    /// between them.
    #[test]
    fn taps_land_d_apart_with_zeros_between() {
        assert_eq!(
            spread_indices(1, [2, 2], [2, 2], [3, 3]),
            [0, 4, 1, 4, 4, 4, 2, 4, 3]
        );
        // Dilation (1, 2) on a 1×2 filter: only the columns spread.
        assert_eq!(
            spread_indices(2, [1, 2], [1, 2], [1, 3]),
            [0, 4, 1, 2, 4, 3]
        );
    }

    /// Dilation 1 is the plain convolution: values and every gradient.
    #[test]
    fn dilation_one_is_the_plain_convolution() {
        let dev = crate::test_device!();
        let layer: Conv2d<2, 3, 3, 2, f64, TestDevice> = BuildModule::build(&dev);
        let x: Tensor<dfdx::shapes::Rank4<2, 2, 6, 5>, f64, TestDevice> = dev.sample_normal();
        let geometry = Conv2dGeometry {
            stride: [2, 1],
            padding: [1, 0],
        };
        let plain: Tensor<dfdx::shapes::Rank4<2, 3, 3, 4>, f64, TestDevice, _> =
            crate::ops::try_conv2d(x.leaky_trace(), &layer, geometry).unwrap();
        let dilated: Tensor<dfdx::shapes::Rank4<2, 3, 3, 4>, f64, TestDevice, _> =
            try_dilated_conv2d::<_, 2, 6, 5, 3, 3, 2, 3, 2, 3, 4, _, _, _>(
                x.leaky_trace(),
                &layer,
                geometry,
                [1, 1],
            )
            .unwrap();
        crate::assert_close!(dilated.as_vec(), plain.as_vec(), 1e-12);
        let g_plain = plain.square().sum::<dfdx::shapes::Rank0, _>().backward();
        let g_dilated = dilated.square().sum::<dfdx::shapes::Rank0, _>().backward();
        crate::assert_close!(g_dilated.get(&x).as_vec(), g_plain.get(&x).as_vec(), 1e-10);
        crate::assert_close!(
            g_dilated.get(&layer.weight).as_vec(),
            g_plain.get(&layer.weight).as_vec(),
            1e-10
        );
        crate::assert_close!(
            g_dilated.get(&layer.bias).as_vec(),
            g_plain.get(&layer.bias).as_vec(),
            1e-10
        );
    }

    #[test]
    #[should_panic(expected = "spans 5×5, not 4×4")]
    fn a_wrong_extent_panics_with_the_sizes() {
        let dev = crate::test_device!();
        let layer: Conv2d<1, 1, 3, 3, f64, TestDevice> = BuildModule::build(&dev);
        let x: Tensor<dfdx::shapes::Rank4<1, 1, 8, 8>, f64, TestDevice> = dev.sample_normal();
        let geometry = Conv2dGeometry {
            stride: [1, 1],
            padding: [0, 0],
        };
        let _ = dev.tensor([0.0f64]);
        let _: Tensor<dfdx::shapes::Rank4<1, 1, 5, 5>, f64, TestDevice> =
            try_dilated_conv2d::<_, 1, 8, 8, 1, 3, 3, 4, 4, 5, 5, _, _, _>(
                x,
                &layer,
                geometry,
                [2, 2],
            )
            .unwrap();
    }
}
