//! Grouped 2-d convolution, for [`GroupedConv2d`] layers: PyTorch's
//! `nn.Conv2d(…, groups=G)`, as in the original AlexNet (2 groups) and depthwise convolutions
//! (`G = C_IN`).
//!
//! Each device runs [`try_grouped_conv2d`] through its [`GroupedConv2dKernel`]:
//! - `Cpu`: conv2d's own kernel run once per group (`cpu_kernel.rs`), recorded on the tape as
//!   one op: the grouped convolution's multiply-adds only, a `G`-th of the ungrouped ones.
//! - `Cuda`: a composition of dfdx ops (`reference.rs`): the weight expanded to the
//!   block-diagonal `[C_OUT, C_IN, K_H, K_W]` filter bank (zeros between the groups), then the
//!   conv2d reference composition. It costs `G` times the flops of the grouped convolution, since
//!   it multiplies the zeros too; acceptable for a reference and for the GPU's fast matmul.
//!
//! The composition is also the readable reference the CPU kernel is tested against, besides
//! PyTorch's numbers (`tests/grouped_conv.rs`) and finite differences.

mod cpu_kernel;
// Without CUDA the reference runs in the tests only, as the truth the CPU kernel is held to.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) mod reference;

use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;

use crate::layers::GroupedConv2d;
use crate::network::Element;
use crate::ops::conv2d::{assert_output_size, WindowGeometry};
use crate::ops::Conv2dGeometry;

/// Grouped 2-d convolution (cross-correlation) of a batch of images with the filters of
/// `layer`, plus its bias: the `C_IN` input channels and `C_OUT` filters are split into `GROUPS`
/// consecutive groups, and each group of filters sees only its group of input channels.
///
/// # Formula
/// With `C_OUT/G` filters and `C_IN/G` input channels per group and `g(o) = ⌊o / (C_OUT/G)⌋`:
/// `y[b, o, i, j] = bias[o] + Σ_{c < C_IN/G} Σ_u Σ_v weight[o, c, u, v] · x[b, g(o)·C_IN/G + c, s_h·i + u − p_h, s_w·j + v − p_w]`,
/// where `x` reads zero outside the image (zero padding).
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, O_H, O_W]` with
/// `O_H = ⌊(H − K_H + 2·p_h)/s_h⌋ + 1` and `O_W = ⌊(W − K_W + 2·p_w)/s_w⌋ + 1`; the weight is
/// `[C_OUT, C_IN/G, K_H, K_W]`. The [`network!`](crate::network!) macro computes `O_H` and
/// `O_W`; here they are inferred from the output type the caller asks for, and checked.
///
/// PyTorch: `F.conv2d(x, weight, bias, stride=(s_h, s_w), padding=(p_h, p_w), groups=G)`.
///
/// # Panics
/// If `C_IN ≠ C_IN_PER_GROUP·GROUPS`, `GROUPS` is zero or does not divide `C_OUT`, a stride is
/// zero, the window does not fit the padded input, or `O_H`/`O_W` differ from the formula; the
/// message names the sizes.
///
/// ```
/// use typednet::dfdx::nn::BuildModule;
/// use typednet::dfdx::prelude::*;
/// use typednet::layers::GroupedConv2d;
/// use typednet::ops::grouped_conv2d::grouped_conv2d;
/// use typednet::ops::Conv2dGeometry;
///
/// let dev = Cpu::default();
/// // AlexNet's conv2 (reduced batch): 96 → 256 channels in 2 groups of 48 → 128, 5×5, pad 2.
/// let layer = GroupedConv2d::<48, 256, 2, 5, 5, f32, Cpu>::build(&dev);
/// let x: Tensor<Rank4<1, 96, 27, 27>, f32, Cpu> = dev.sample_normal();
/// let geometry = Conv2dGeometry { stride: [1, 1], padding: [2, 2] };
/// let _: Tensor<Rank4<1, 256, 27, 27>, f32, Cpu> = grouped_conv2d(x, &layer, geometry);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_grouped_conv2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const GROUPS: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: GroupedConv2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    assert_group_sizes(C_IN, C_IN_PER_GROUP, C_OUT, GROUPS);
    assert_output_size(
        "grouped_conv2d",
        WindowGeometry {
            input: [H, W],
            kernel: [K_H, K_W],
            stride: geometry.stride,
            padding: geometry.padding,
        },
        [O_H, O_W],
    );
    D::try_grouped_conv2d_kernel(x, layer, geometry)
}

/// [`try_grouped_conv2d`], panicking on a device error (out of memory).
#[allow(clippy::type_complexity)]
pub fn grouped_conv2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const GROUPS: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: GroupedConv2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T> {
    try_grouped_conv2d(x, layer, geometry).unwrap()
}

/// Panics unless `c_in = c_in_per_group·groups` and `groups ≥ 1` divides `c_out`.
///
/// The [`network!`](crate::network!) macro only emits consistent sizes; this guards
/// hand-written calls, for which the kernels would otherwise read the wrong channels.
fn assert_group_sizes(c_in: usize, c_in_per_group: usize, c_out: usize, groups: usize) {
    assert!(
        groups >= 1,
        "grouped_conv2d: GROUPS must be at least 1 (C_IN = {c_in}, C_OUT = {c_out})"
    );
    assert!(
        c_in == c_in_per_group * groups,
        "grouped_conv2d: the input has C_IN = {c_in} channels, but the layer expects \
         GROUPS = {groups} groups of C_IN_PER_GROUP = {c_in_per_group}, {} channels",
        c_in_per_group * groups
    );
    assert!(
        c_out.is_multiple_of(groups),
        "grouped_conv2d: C_OUT = {c_out} filters do not split into GROUPS = {groups} equal \
         groups ({c_out} is not a multiple of {groups})"
    );
}

/// The device-specific implementation of [`try_grouped_conv2d`], chosen by the device type as
/// dfdx chooses its kernels. Callers have checked the channel counts and the geometry against
/// `O_H`, `O_W`.
pub trait GroupedConv2dKernel<E: Element>: Device<E> {
    /// Runs the grouped convolution on this device, recording its backward pass on the tape.
    #[allow(clippy::type_complexity)]
    fn try_grouped_conv2d_kernel<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Self, T>,
        layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, Self>,
        geometry: Conv2dGeometry,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err>;
}

/// On the CPU, conv2d's kernel per group (`cpu_kernel.rs`).
impl<E: Element> GroupedConv2dKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_grouped_conv2d_kernel<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Self, T>,
        layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, Self>,
        geometry: Conv2dGeometry,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        cpu_kernel::try_grouped_conv2d(x, layer, geometry)
    }
}

/// On CUDA the composition of dfdx ops is the kernel: gather and matmul already run there.
#[cfg(feature = "cuda")]
impl<E: Element> GroupedConv2dKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_grouped_conv2d_kernel<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Self, T>,
        layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, Self>,
        geometry: Conv2dGeometry,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        reference::try_grouped_conv2d(x, layer, geometry)
    }
}

#[cfg(test)]
mod tests {
    use dfdx::nn::BuildModule;
    use dfdx::shapes::{Const, Dim, Rank4};
    use dfdx::tensor::{NoneTape, Tape, Tensor, TensorFromVec, Trace, ZerosTensor};
    use dfdx::tensor_ops::{Backward, Device, SumTo};

    use super::*;
    use crate::layers::Conv2d;
    use crate::ops::conv2d::test_support::{cast, random_values, to_f64};
    use crate::ops::try_conv2d;
    use crate::testing::TestDevice;

    /// Which implementation a test runs: the device's kernel (on `Cpu` the per-group one), or
    /// the composition of dfdx ops it is held to.
    #[derive(Debug, Clone, Copy)]
    enum Implementation {
        Kernel,
        Reference,
    }

    fn layer_from<
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        E: Element,
    >(
        dev: &TestDevice,
        weight: &[f64],
        bias: &[f64],
    ) -> GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, TestDevice>
    where
        TestDevice: Device<E>,
    {
        GroupedConv2d {
            weight: dev.tensor_from_vec(cast(weight), Default::default()),
            bias: dev.tensor_from_vec(cast(bias), Default::default()),
        }
    }

    /// The output and the gradients of `x`, `weight` and `bias` for
    /// `loss = Σ_{k < uses} Σ grouped_conv2d(x)·g`: with `uses = 2` the op runs twice on the same
    /// tape, and every gradient must be the sum of both runs' (added to, not overwritten).
    #[allow(clippy::type_complexity)]
    fn forward_backward<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
    >(
        batch: B,
        layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, TestDevice>,
        geometry: Conv2dGeometry,
        [x, g]: [&[f64]; 2],
        implementation: Implementation,
        uses: usize,
    ) -> [Vec<f64>; 4]
    where
        TestDevice: Device<E>,
    {
        fn run<
            B: Dim,
            const C_IN: usize,
            const H: usize,
            const W: usize,
            const C_IN_PER_GROUP: usize,
            const C_OUT: usize,
            const GROUPS: usize,
            const K_H: usize,
            const K_W: usize,
            const O_H: usize,
            const O_W: usize,
            E: Element,
            T: Tape<E, TestDevice>,
        >(
            implementation: Implementation,
            x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, TestDevice, T>,
            layer: &GroupedConv2d<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E, TestDevice>,
            geometry: Conv2dGeometry,
        ) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, TestDevice, T>
        where
            TestDevice: Device<E>,
        {
            match implementation {
                Implementation::Kernel => grouped_conv2d(x, layer, geometry),
                Implementation::Reference => {
                    reference::try_grouped_conv2d(x, layer, geometry).unwrap()
                }
            }
        }

        let dev = layer.weight.device().clone();
        let x = dev.tensor_from_vec(cast::<E>(x), (batch, Const::<C_IN>, Const::<H>, Const::<W>));
        let g = dev.tensor_from_vec(
            cast::<E>(g),
            (batch, Const::<C_OUT>, Const::<O_H>, Const::<O_W>),
        );
        let inference: Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, _, NoneTape> =
            run(implementation, x.clone(), layer, geometry);
        let y = run(implementation, x.leaky_trace(), layer, geometry);
        assert_eq!(
            y.as_vec(),
            inference.as_vec(),
            "the tape changed the output"
        );
        let out = y.as_vec();
        let mut loss = (y * g.clone()).sum::<(), _>();
        for _ in 1..uses {
            let again = run(implementation, x.leaky_trace(), layer, geometry);
            loss = loss + (again * g.clone()).sum::<(), _>();
        }
        let grads = loss.backward();
        [
            to_f64(&out),
            to_f64(&grads.get(&x).as_vec()),
            to_f64(&grads.get(&layer.weight).as_vec()),
            to_f64(&grads.get(&layer.bias).as_vec()),
        ]
    }

    /// The device's kernel against the reference, forward and every gradient, with the batch a
    /// `Const` and a `usize`, and with the op used twice (gradients accumulate): in `f64` to
    /// 1e-10 and in `f32` to 1e-4 (relative, beyond 1).
    fn check_against_reference<
        const BATCH: usize,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_IN_PER_GROUP: usize,
        const C_OUT: usize,
        const GROUPS: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
    >(
        geometry: Conv2dGeometry,
    ) {
        let seed =
            (BATCH * 7 + C_IN * 5 + H * 3 + W + C_OUT * 11 + GROUPS * 17 + K_H * 13 + K_W) as u64;
        let x = random_values(BATCH * C_IN * H * W, seed);
        let weight = random_values(C_OUT * C_IN_PER_GROUP * K_H * K_W, seed + 1);
        let bias = random_values(C_OUT, seed + 2);
        let g = random_values(BATCH * C_OUT * O_H * O_W, seed + 3);
        fn compare<
            const BATCH: usize,
            const C_IN: usize,
            const H: usize,
            const W: usize,
            const C_IN_PER_GROUP: usize,
            const C_OUT: usize,
            const GROUPS: usize,
            const K_H: usize,
            const K_W: usize,
            const O_H: usize,
            const O_W: usize,
            E: Element,
        >(
            geometry: Conv2dGeometry,
            [x, weight, bias, g]: [&[f64]; 4],
            tolerance: f64,
        ) where
            TestDevice: Device<E>,
        {
            let dev = crate::test_device!();
            let layer =
                layer_from::<C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, E>(&dev, weight, bias);
            let run = |batch_is_const: bool, implementation, uses| {
                let data = [x, g];
                if batch_is_const {
                    forward_backward::<
                        _,
                        C_IN,
                        H,
                        W,
                        C_IN_PER_GROUP,
                        C_OUT,
                        GROUPS,
                        K_H,
                        K_W,
                        O_H,
                        O_W,
                        E,
                    >(
                        Const::<BATCH>, &layer, geometry, data, implementation, uses
                    )
                } else {
                    forward_backward::<
                        _,
                        C_IN,
                        H,
                        W,
                        C_IN_PER_GROUP,
                        C_OUT,
                        GROUPS,
                        K_H,
                        K_W,
                        O_H,
                        O_W,
                        E,
                    >(BATCH, &layer, geometry, data, implementation, uses)
                }
            };
            let names = ["y", "grad_x", "grad_weight", "grad_bias"];
            let reference = run(true, Implementation::Reference, 1);
            // Not all zero: the comparison below means something.
            for (name, values) in names.iter().zip(&reference) {
                assert!(
                    values.iter().any(|v| v.abs() > 1e-3),
                    "{name} of the reference is all zero"
                );
            }
            for (batch_is_const, uses) in [(true, 1), (false, 1), (true, 2)] {
                let got = run(batch_is_const, Implementation::Kernel, uses);
                for (index, (name, (got, expected))) in
                    names.iter().zip(got.iter().zip(&reference)).enumerate()
                {
                    eprintln!("{geometry:?}, const batch {batch_is_const}, {uses} uses: {name}");
                    // The output does not grow with the uses; every gradient doubles.
                    let factor = if index == 0 { 1.0 } else { uses as f64 };
                    let expected: Vec<f64> = expected.iter().map(|v| v * factor).collect();
                    crate::assert_close!(got, expected, tolerance);
                }
            }
        }
        let values = [&x[..], &weight, &bias, &g];
        compare::<BATCH, C_IN, H, W, C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, O_H, O_W, f64>(
            geometry, values, 1e-10,
        );
        compare::<BATCH, C_IN, H, W, C_IN_PER_GROUP, C_OUT, GROUPS, K_H, K_W, O_H, O_W, f32>(
            geometry, values, 1e-4,
        );
    }

    /// The output size of a test case, as the macro computes it.
    const fn out(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
        match crate::shape::conv_output_size(input, kernel, stride, padding) {
            Ok(size) => size,
            Err(_) => panic!("a test geometry does not fit"),
        }
    }

    /// One test per geometry: `[batch, groups, c_in, h, w, c_out, k_h, k_w]`, stride and
    /// padding `[height, width]`.
    macro_rules! matches_reference {
        ($($test:ident: [$b:literal, $groups:literal, $c_in:literal, $h:literal, $w:literal,
            $c_out:literal, $k_h:literal, $k_w:literal], stride [$s_h:literal, $s_w:literal],
            padding [$p_h:literal, $p_w:literal];)*) => {$(
            #[test]
            fn $test() {
                check_against_reference::<
                    $b, $c_in, $h, $w, { $c_in / $groups }, $c_out, $groups, $k_h, $k_w,
                    { out($h, $k_h, $s_h, $p_h) }, { out($w, $k_w, $s_w, $p_w) },
                >(Conv2dGeometry { stride: [$s_h, $s_w], padding: [$p_h, $p_w] });
            }
        )*};
    }

    matches_reference! {
        grouped_conv_reference_two_groups_same_padding:
            [2, 2, 4, 6, 7, 6, 3, 3], stride [1, 1], padding [1, 1];
        grouped_conv_reference_depthwise_multiplier_2:
            [2, 3, 3, 7, 5, 6, 3, 2], stride [2, 1], padding [1, 0];
        grouped_conv_reference_depthwise_multiplier_1:
            [3, 8, 8, 5, 9, 8, 3, 3], stride [1, 1], padding [1, 1];
        grouped_conv_reference_four_groups_stride_2_not_tiling:
            [2, 4, 8, 9, 8, 8, 3, 3], stride [2, 2], padding [0, 1];
        grouped_conv_reference_three_groups_stride_3_by_2:
            [1, 3, 6, 10, 11, 9, 4, 2], stride [3, 2], padding [2, 0];
        grouped_conv_reference_partial_channel_tiles:
            [2, 2, 4, 7, 33, 26, 2, 4], stride [2, 1], padding [0, 2];
        grouped_conv_reference_pointwise_groups:
            [2, 4, 8, 5, 6, 12, 1, 1], stride [1, 1], padding [0, 0];
        grouped_conv_reference_kernel_larger_than_input:
            [2, 2, 2, 4, 3, 4, 5, 4], stride [1, 1], padding [1, 1];
        grouped_conv_reference_one_group:
            [2, 1, 3, 6, 6, 4, 3, 3], stride [1, 1], padding [1, 1];
    }

    /// With one group the layer is a [`Conv2d`]: same output and gradients as [`try_conv2d`]
    /// with the same tensors (shared, so the weight and bias gradients land on the same ids).
    #[test]
    fn grouped_conv_with_one_group_equals_conv2d() {
        let dev = crate::test_device!();
        let layer = layer_from::<3, 5, 1, 3, 2, f64>(
            &dev,
            &random_values(5 * 3 * 3 * 2, 1),
            &random_values(5, 2),
        );
        let conv = Conv2d {
            weight: layer.weight.clone(),
            bias: layer.bias.clone(),
        };
        let geometry = Conv2dGeometry {
            stride: [2, 1],
            padding: [1, 1],
        };
        let x: Tensor<Rank4<2, 3, 7, 6>, f64, _> =
            dev.tensor_from_vec(random_values(2 * 3 * 7 * 6, 3), Default::default());
        let g: Tensor<Rank4<2, 5, 4, 7>, f64, _> =
            dev.tensor_from_vec(random_values(2 * 5 * 4 * 7, 4), Default::default());

        let y = try_grouped_conv2d(x.leaky_trace(), &layer, geometry).unwrap();
        let grouped_y = y.as_vec();
        let grouped = (y * g.clone()).sum().backward();
        let y = try_conv2d(x.leaky_trace(), &conv, geometry).unwrap();
        let conv_y = y.as_vec();
        let plain = (y * g).sum().backward();

        crate::assert_close!(grouped_y, conv_y, 1e-14);
        crate::assert_close!(grouped.get(&x).as_vec(), plain.get(&x).as_vec(), 1e-14);
        let (w, b) = (&layer.weight, &layer.bias);
        crate::assert_close!(grouped.get(w).as_vec(), plain.get(w).as_vec(), 1e-14);
        crate::assert_close!(grouped.get(b).as_vec(), plain.get(b).as_vec(), 1e-14);
        assert!(conv_y.iter().any(|v| v.abs() > 1e-3));
    }

    fn geometry(stride: usize, padding: usize) -> Conv2dGeometry {
        Conv2dGeometry {
            stride: [stride; 2],
            padding: [padding; 2],
        }
    }

    #[test]
    #[should_panic(
        expected = "grouped_conv2d: the input has C_IN = 5 channels, but the layer expects \
                    GROUPS = 2 groups of C_IN_PER_GROUP = 2, 4 channels"
    )]
    fn grouped_conv_rejects_input_channels_that_are_not_the_groups() {
        let dev = crate::test_device!();
        let layer = GroupedConv2d::<2, 4, 2, 3, 3, f64, TestDevice>::build(&dev);
        let x: Tensor<Rank4<1, 5, 4, 4>, f64, _> = dev.zeros();
        let _: Tensor<Rank4<1, 4, 2, 2>, f64, _> = grouped_conv2d(x, &layer, geometry(1, 0));
    }

    #[test]
    #[should_panic(
        expected = "grouped_conv2d: C_OUT = 5 filters do not split into GROUPS = 2 equal groups \
                    (5 is not a multiple of 2)"
    )]
    fn grouped_conv_rejects_filters_that_do_not_split_into_groups() {
        let dev = crate::test_device!();
        let layer = GroupedConv2d::<2, 5, 2, 3, 3, f64, TestDevice>::build(&dev);
        let x: Tensor<Rank4<1, 4, 4, 4>, f64, _> = dev.zeros();
        let _: Tensor<Rank4<1, 5, 2, 2>, f64, _> = grouped_conv2d(x, &layer, geometry(1, 0));
    }

    #[test]
    #[should_panic(expected = "grouped_conv2d: GROUPS must be at least 1")]
    fn grouped_conv_rejects_zero_groups() {
        let dev = crate::test_device!();
        let layer = GroupedConv2d::<2, 4, 0, 3, 3, f64, TestDevice>::build(&dev);
        let x: Tensor<Rank4<1, 0, 4, 4>, f64, _> = dev.zeros();
        let _: Tensor<Rank4<1, 4, 2, 2>, f64, _> = grouped_conv2d(x, &layer, geometry(1, 0));
    }

    #[test]
    #[should_panic(
        expected = "grouped_conv2d: the output height is ⌊(4 − 3 + 2·1)/1⌋ + 1 = 4, but the \
                    output type says 2"
    )]
    fn grouped_conv_rejects_an_output_size_the_geometry_does_not_give() {
        let dev = crate::test_device!();
        let layer = GroupedConv2d::<2, 4, 2, 3, 3, f64, TestDevice>::build(&dev);
        let x: Tensor<Rank4<1, 4, 4, 4>, f64, _> = dev.zeros();
        let _: Tensor<Rank4<1, 4, 2, 2>, f64, _> = grouped_conv2d(x, &layer, geometry(1, 1));
    }
}
