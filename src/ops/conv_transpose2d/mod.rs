//! 2-d transposed convolution, for [`ConvTranspose2d`] layers: the upsampling step of decoders
//! and generators, and the adjoint (the transpose) of [`conv2d`](crate::ops::conv2d()).
//!
//! dfdx 0.13 has no transposed convolution on stable Rust. Each device runs
//! [`try_conv_transpose2d`] through its [`ConvTranspose2dKernel`]:
//! - `Cpu`: a kernel of typednet's own (`cpu_kernel.rs`), recorded on the tape as one op. A
//!   transposed convolution is the input gradient of the convolution that maps its output back
//!   to its input with the same weight tensor, so the conv2d kernel's register-tiled loops
//!   compute it: the forward pass is that convolution's input gradient, the input gradient is
//!   that convolution's forward pass, and the weight gradient is its weight gradient with the
//!   roles of input and output gradient swapped.
//! - `Cuda`: a composition of dfdx ops (`reference.rs`: matmul, then a gather that folds the
//!   stamps onto the output), whose kernels dfdx already has there.
//!
//! The composition is also the readable reference the CPU kernel is tested against, besides
//! PyTorch's numbers, the definition term by term, and finite differences.

mod cpu_kernel;
// Without CUDA the reference runs in the tests only, as the truth the CPU kernel is held to.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) mod reference;

use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;
use typednet_arith::{transposed_arithmetic, transposed_output, TransposedAxis};

use crate::layers::ConvTranspose2d;
use crate::network::Element;

/// Stride, padding and output padding of a transposed convolution, `[height, width]` each, with
/// PyTorch's meaning: `padding` crops that many cells from both sides of the full output and
/// `output_padding` adds that many at the bottom and right, so that a stride-`s` convolution and
/// its transpose can map between the same sizes. PyTorch requires `output_padding < stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dGeometry {
    /// Step of the convolution this transposes (PyTorch `stride`).
    pub stride: [usize; 2],
    /// Cells cropped from both sides of the full output (PyTorch `padding`).
    pub padding: [usize; 2],
    /// Cells added at the bottom and right of the output (PyTorch `output_padding`).
    pub output_padding: [usize; 2],
}

/// 2-d transposed convolution of a batch of images with the filters of `layer`, plus its bias:
/// every input cell adds its value times its channel's filter to the output, `stride` apart.
///
/// # Formula
/// `y[b, o, i, j] = bias[o] + Σ_c Σ_{h, u: s_h·h + u − p_h = i} Σ_{w, v: s_w·w + v − p_w = j}
/// weight[c, o, u, v] · x[b, c, h, w]`
///
/// With the same weight tensor and no bias, this is the transpose of
/// [`conv2d`](crate::ops::conv2d()) with the same stride and padding:
/// `⟨conv2d(x), y⟩ = ⟨x, conv_transpose2d(y)⟩`, which is where its name comes from and why
/// decoders use it to undo a convolution's downsampling.
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, O_H, O_W]` with
/// `O_H = (H − 1)·s_h − 2·p_h + K_H + q_h` and `O_W = (W − 1)·s_w − 2·p_w + K_W + q_w`
/// (`q` the output padding). For example, a 4×4 kernel at stride 2 with padding 1 doubles the
/// size (DCGAN's generator). The output size is inferred from the output type the caller asks
/// for, and checked against the formula.
///
/// PyTorch: `F.conv_transpose2d(x, weight, bias, stride=(s_h, s_w), padding=(p_h, p_w),
/// output_padding=(q_h, q_w))`, or `nn.ConvTranspose2d(C_IN, C_OUT, (K_H, K_W), stride, padding,
/// output_padding)`.
///
/// # Panics
/// If the input or the kernel is empty, a stride is zero, an output padding is not smaller than
/// its stride, the padding crops the whole output, or `O_H`/`O_W` differ from the formula; the
/// message shows the arithmetic.
///
/// ```
/// use typednet::dfdx::nn::BuildModule;
/// use typednet::dfdx::prelude::*;
/// use typednet::layers::ConvTranspose2d;
/// use typednet::ops::{conv_transpose2d, ConvTranspose2dGeometry};
///
/// let dev = Cpu::default();
/// // DCGAN's generator: 4×4 kernels at stride 2 with padding 1 double the size:
/// // (7 − 1)·2 − 2·1 + 4 + 0 = 14.
/// let layer = ConvTranspose2d::<64, 32, 4, 4, f32, Cpu>::build(&dev);
/// let features: Tensor<Rank4<8, 64, 7, 7>, f32, Cpu> = dev.sample_normal();
/// let geometry = ConvTranspose2dGeometry { stride: [2, 2], padding: [1, 1], output_padding: [0, 0] };
/// let _: Tensor<Rank4<8, 32, 14, 14>, f32, Cpu> = conv_transpose2d(features, &layer, geometry);
///
/// // The transpose of a 3×3 convolution at stride 2 with padding 1 maps 7×7 onto 4×4; going
/// // back, output padding 1 picks 8×8 rather than 7×7, both of which that convolution maps
/// // onto 4×4: (4 − 1)·2 − 2·1 + 3 + 1 = 8.
/// let layer = ConvTranspose2d::<16, 3, 3, 3, f32, Cpu>::build(&dev);
/// let codes: Tensor<(usize, Const<16>, Const<4>, Const<4>), f32, Cpu> =
///     dev.sample_normal_like(&(5, Const, Const, Const));
/// let geometry = ConvTranspose2dGeometry { stride: [2, 2], padding: [1, 1], output_padding: [1, 1] };
/// let _: Tensor<(usize, Const<3>, Const<8>, Const<8>), f32, Cpu> =
///     conv_transpose2d(codes, &layer, geometry);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_conv_transpose2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: ConvTranspose2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    assert_output_size([H, W], [K_H, K_W], geometry, [O_H, O_W]);
    D::try_conv_transpose2d_kernel(x, layer, geometry)
}

/// [`try_conv_transpose2d`], panicking on a device error (out of memory).
#[allow(clippy::type_complexity)]
pub fn conv_transpose2d<
    B: Dim,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const K_H: usize,
    const K_W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: crate::Device<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: ConvTranspose2dGeometry,
) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T> {
    try_conv_transpose2d(x, layer, geometry).unwrap()
}

/// The device-specific implementation of [`try_conv_transpose2d`], chosen by the device type as
/// dfdx chooses its kernels. Callers have checked the geometry against `O_H`, `O_W`.
pub trait ConvTranspose2dKernel<E: Element>: Device<E> {
    /// Runs the transposed convolution on this device, recording its backward pass on the tape.
    #[allow(clippy::type_complexity)]
    fn try_conv_transpose2d_kernel<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Self, T>,
        layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, Self>,
        geometry: ConvTranspose2dGeometry,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err>;
}

/// On the CPU, typednet's own kernel (`cpu_kernel.rs`): the conv2d kernel's loops.
impl<E: Element> ConvTranspose2dKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_conv_transpose2d_kernel<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Self, T>,
        layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, Self>,
        geometry: ConvTranspose2dGeometry,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        cpu_kernel::try_conv_transpose2d(x, layer, geometry)
    }
}

/// On CUDA the composition of dfdx ops is the kernel: matmul and gather already run there.
#[cfg(feature = "cuda")]
impl<E: Element> ConvTranspose2dKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_conv_transpose2d_kernel<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Self, T>,
        layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, Self>,
        geometry: ConvTranspose2dGeometry,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        reference::try_conv_transpose2d(x, layer, geometry)
    }
}

/// Panics unless `output` is `(input − 1)·stride − 2·padding + kernel + output_padding` along
/// both axes, with PyTorch's conditions on the geometry.
///
/// The arithmetic is `typednet-arith`'s, the same the [`network!`](crate::network!) macro uses,
/// so the sizes checked here and the sizes the macro computes cannot drift apart. As for
/// [`conv2d`](crate::ops::conv2d()), this guards hand-written calls: the op lays out its output
/// by the size the type states, and a wrong one would place the stamps wrongly rather than fail.
fn assert_output_size(
    input: [usize; 2],
    kernel: [usize; 2],
    geometry: ConvTranspose2dGeometry,
    output: [usize; 2],
) {
    let ConvTranspose2dGeometry {
        stride,
        padding,
        output_padding,
    } = geometry;
    let describe = || {
        format!(
            "{}×{} input, {}×{} kernel, stride {:?}, padding {:?}, output padding {:?}",
            input[0], input[1], kernel[0], kernel[1], stride, padding, output_padding
        )
    };
    for (axis, name) in ["height", "width"].into_iter().enumerate() {
        assert!(
            input[axis] > 0,
            "conv_transpose2d: the input {name} must be at least 1; {}",
            describe()
        );
        let transposed = TransposedAxis {
            input: input[axis],
            kernel: kernel[axis],
            stride: stride[axis],
            padding: padding[axis],
            output_padding: output_padding[axis],
        };
        match transposed_output(&transposed) {
            Ok(expected) => assert!(
                output[axis] == expected,
                "conv_transpose2d: the output {name} is {}, but the output type says {}; {}",
                transposed_arithmetic(&transposed),
                output[axis],
                describe()
            ),
            Err(error) => panic!(
                "conv_transpose2d: along the {name}, {}; {}",
                error.message(),
                describe()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use dfdx::shapes::{Const, Dim, Rank4};
    use dfdx::tensor::{AsArray, NoneTape, Tape, Tensor, TensorFromVec, Trace};
    use dfdx::tensor_ops::{Backward, Device, SumTo};

    use super::*;
    use crate::layers::Conv2d;
    use crate::ops::conv2d::test_support::{
        cast, numerical_gradient, random_values, to_f64, Fixture,
    };
    use crate::ops::{conv2d, Conv2dGeometry};
    use crate::testing::TestDevice;

    fn layer_from<
        const C_IN: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        E: Element,
    >(
        dev: &TestDevice,
        weight: &[f64],
        bias: &[f64],
    ) -> ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, TestDevice>
    where
        TestDevice: Device<E>,
    {
        ConvTranspose2d {
            weight: dev.tensor_from_vec(cast(weight), Default::default()),
            bias: dev.tensor_from_vec(cast(bias), Default::default()),
        }
    }

    /// Which implementation a test runs: the device's kernel (on `Cpu` the fast one), or the
    /// composition of dfdx ops it is held to.
    #[derive(Debug, Clone, Copy)]
    enum Implementation {
        Kernel,
        Reference,
    }

    #[allow(clippy::type_complexity)]
    fn run<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
        T: Tape<E, TestDevice>,
    >(
        implementation: Implementation,
        x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, TestDevice, T>,
        layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, TestDevice>,
        geometry: ConvTranspose2dGeometry,
    ) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, TestDevice, T>
    where
        TestDevice: Device<E>,
    {
        match implementation {
            Implementation::Kernel => conv_transpose2d(x, layer, geometry),
            Implementation::Reference => {
                reference::try_conv_transpose2d(x, layer, geometry).unwrap()
            }
        }
    }

    /// The output and the gradients of `x`, `weight` and `bias` for
    /// `loss = Σ conv_transpose2d(x)·g`.
    #[allow(clippy::type_complexity)]
    fn forward_backward<
        B: Dim,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
    >(
        batch: B,
        layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, TestDevice>,
        geometry: ConvTranspose2dGeometry,
        x: &[f64],
        g: &[f64],
        implementation: Implementation,
    ) -> [Vec<E>; 4]
    where
        TestDevice: Device<E>,
    {
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
        let grads = (y * g).sum::<(), _>().backward();
        [
            out,
            grads.get(&x).as_vec(),
            grads.get(&layer.weight).as_vec(),
            grads.get(&layer.bias).as_vec(),
        ]
    }

    /// Checks one PyTorch fixture: forward and all gradients, with the batch size as a `Const`
    /// and as a run-time `usize`.
    fn check_fixture<
        const BATCH: usize,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
    >(
        fixture: Fixture,
        tolerance: f64,
    ) where
        TestDevice: Device<E>,
    {
        fixture.assert_sizes("x_shape", &[BATCH, C_IN, H, W]);
        fixture.assert_sizes("weight_shape", &[C_IN, C_OUT, K_H, K_W]);
        fixture.assert_sizes("out_shape", &[BATCH, C_OUT, O_H, O_W]);
        let geometry = ConvTranspose2dGeometry {
            stride: fixture.sizes("stride"),
            padding: fixture.sizes("padding"),
            output_padding: fixture.sizes("output_padding"),
        };
        let dev = crate::test_device!();
        let layer = layer_from::<C_IN, C_OUT, K_H, K_W, E>(
            &dev,
            fixture.values("weight"),
            fixture.values("bias"),
        );
        let (x, g) = (fixture.values("x"), fixture.values("g"));

        let kernel = Implementation::Kernel;
        let with_const_batch = forward_backward::<_, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, E>(
            Const::<BATCH>,
            &layer,
            geometry,
            x,
            g,
            kernel,
        );
        let with_usize_batch = forward_backward::<_, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, E>(
            BATCH, &layer, geometry, x, g, kernel,
        );
        for [out, grad_x, grad_weight, grad_bias] in [with_const_batch, with_usize_batch] {
            fixture.assert_close("out", &out, tolerance);
            fixture.assert_close("grad_x", &grad_x, tolerance);
            fixture.assert_close("grad_weight", &grad_weight, tolerance);
            fixture.assert_close("grad_bias", &grad_bias, tolerance);
        }
    }

    macro_rules! fixture {
        ($name:literal) => {
            Fixture::parse(
                $name,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/conv_transpose2d/",
                    $name,
                    ".txt"
                )),
            )
        };
    }

    /// One test per fixture (written by `tools/reference_conv_transpose.py`), in `f32`
    /// (tolerance 1e-5) and in `f64` (the fixtures keep 12 significant digits).
    /// Parameters: batch, c_in, h, w, c_out, k_h, k_w, o_h, o_w.
    macro_rules! matches_pytorch {
        ($($test:ident: $name:literal => [$($size:literal),*];)*) => {$(
            #[test]
            fn $test() {
                check_fixture::<$($size,)* f32>(fixture!($name), 1e-5);
                check_fixture::<$($size,)* f64>(fixture!($name), 1e-10);
            }
        )*};
    }

    matches_pytorch! {
        matches_pytorch_stride1: "stride1" => [2, 2, 4, 5, 3, 3, 3, 6, 7];
        matches_pytorch_stride1_pad1: "stride1_pad1" => [2, 3, 5, 4, 2, 3, 3, 5, 4];
        matches_pytorch_stride2: "stride2" => [2, 2, 3, 3, 2, 3, 3, 7, 7];
        matches_pytorch_stride2_pad1_output_padding1:
            "stride2_pad1_output_padding1" => [2, 3, 3, 4, 2, 3, 3, 6, 8];
        matches_pytorch_dcgan_kernel4_stride2_pad1:
            "dcgan_kernel4_stride2_pad1" => [2, 4, 3, 3, 3, 4, 4, 6, 6];
        matches_pytorch_non_square: "non_square" => [2, 3, 3, 5, 2, 2, 3, 7, 5];
        matches_pytorch_stride_wider_than_kernel:
            "stride_wider_than_kernel" => [2, 2, 3, 3, 2, 2, 2, 10, 9];
        matches_pytorch_padding_wider_than_kernel:
            "padding_wider_than_kernel" => [2, 1, 5, 4, 2, 2, 2, 6, 6];
    }

    /// The output size of a transposed convolution along one axis, for the test tables.
    const fn out(
        input: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        extra: usize,
    ) -> usize {
        (input - 1) * stride + kernel + extra - 2 * padding
    }

    /// The device's kernel against the reference, forward and every gradient, with the batch a
    /// `Const` and a `usize`: in `f64` to 1e-10 and in `f32` to 1e-4 (relative, beyond 1).
    fn check_against_reference<
        const BATCH: usize,
        const C_IN: usize,
        const H: usize,
        const W: usize,
        const C_OUT: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
    >(
        geometry: ConvTranspose2dGeometry,
    ) {
        let seed = (BATCH * 7 + C_IN * 5 + H * 3 + W + C_OUT * 11 + K_H * 13 + K_W) as u64;
        let x = random_values(BATCH * C_IN * H * W, seed);
        let weight = random_values(C_IN * C_OUT * K_H * K_W, seed + 1);
        let bias = random_values(C_OUT, seed + 2);
        let g = random_values(BATCH * C_OUT * O_H * O_W, seed + 3);
        fn compare<
            const BATCH: usize,
            const C_IN: usize,
            const H: usize,
            const W: usize,
            const C_OUT: usize,
            const K_H: usize,
            const K_W: usize,
            const O_H: usize,
            const O_W: usize,
            E: Element,
        >(
            geometry: ConvTranspose2dGeometry,
            [x, weight, bias, g]: [&[f64]; 4],
            tolerance: f64,
        ) where
            TestDevice: Device<E>,
        {
            let dev = crate::test_device!();
            let layer = layer_from::<C_IN, C_OUT, K_H, K_W, E>(&dev, weight, bias);
            let both = |implementation| {
                [
                    forward_backward::<_, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, E>(
                        Const::<BATCH>,
                        &layer,
                        geometry,
                        x,
                        g,
                        implementation,
                    ),
                    forward_backward::<_, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, E>(
                        BATCH,
                        &layer,
                        geometry,
                        x,
                        g,
                        implementation,
                    ),
                ]
            };
            let kernel = both(Implementation::Kernel);
            let [reference, _] = both(Implementation::Reference);
            for got in kernel {
                for (name, (got, expected)) in ["y", "grad_x", "grad_weight", "grad_bias"]
                    .into_iter()
                    .zip(got.iter().zip(&reference))
                {
                    eprintln!("{geometry:?}: {name}");
                    crate::assert_close!(to_f64(got), to_f64(expected), tolerance);
                }
            }
        }
        let values = [&x[..], &weight, &bias, &g];
        compare::<BATCH, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, f64>(geometry, values, 1e-10);
        compare::<BATCH, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, f32>(geometry, values, 1e-4);
    }

    /// One test per geometry: `[batch, c_in, h, w, c_out, k_h, k_w]`, then stride, padding and
    /// output padding `[height, width]`. Chosen to cover strides 1–3, padding 0–2 (wider than
    /// the kernel too), output padding, non-square inputs and kernels, strides wider than the
    /// kernel, one channel on either side, batches of one and several, and channel counts that
    /// leave partial register tiles.
    macro_rules! matches_reference {
        ($($test:ident: [$b:literal, $c_in:literal, $h:literal, $w:literal, $c_out:literal,
            $k_h:literal, $k_w:literal], stride [$s_h:literal, $s_w:literal],
            padding [$p_h:literal, $p_w:literal],
            output_padding [$q_h:literal, $q_w:literal];)*) => {$(
            #[test]
            fn $test() {
                check_against_reference::<
                    $b, $c_in, $h, $w, $c_out, $k_h, $k_w,
                    { out($h, $k_h, $s_h, $p_h, $q_h) }, { out($w, $k_w, $s_w, $p_w, $q_w) },
                >(ConvTranspose2dGeometry {
                    stride: [$s_h, $s_w],
                    padding: [$p_h, $p_w],
                    output_padding: [$q_h, $q_w],
                });
            }
        )*};
    }

    matches_reference! {
        reference_stride_1: [2, 3, 5, 4, 2, 3, 3], stride [1, 1], padding [0, 0],
            output_padding [0, 0];
        reference_stride_1_pad_1_batch_1: [1, 4, 6, 7, 5, 3, 3], stride [1, 1], padding [1, 1],
            output_padding [0, 0];
        reference_dcgan_kernel_4_stride_2: [3, 8, 4, 4, 6, 4, 4], stride [2, 2], padding [1, 1],
            output_padding [0, 0];
        reference_stride_2_output_padding_1: [2, 3, 3, 5, 4, 3, 3], stride [2, 2],
            padding [1, 1], output_padding [1, 1];
        reference_stride_3: [2, 2, 4, 3, 3, 3, 3], stride [3, 3], padding [0, 0],
            output_padding [0, 0];
        reference_stride_3_by_2_output_padding: [1, 5, 3, 4, 7, 4, 3], stride [3, 2],
            padding [2, 1], output_padding [2, 1];
        reference_stride_wider_than_kernel: [2, 3, 3, 4, 2, 2, 1], stride [3, 2],
            padding [0, 0], output_padding [1, 0];
        reference_padding_wider_than_kernel: [2, 2, 6, 5, 3, 2, 2], stride [2, 2],
            padding [2, 2], output_padding [0, 1];
        reference_non_square_kernel: [2, 4, 5, 6, 3, 2, 5], stride [1, 2], padding [0, 2],
            output_padding [0, 1];
        reference_one_input_channel: [3, 1, 5, 5, 8, 3, 3], stride [2, 2], padding [1, 1],
            output_padding [1, 0];
        reference_one_output_channel: [2, 9, 4, 6, 1, 4, 4], stride [2, 2], padding [1, 1],
            output_padding [0, 0];
        reference_one_by_one_kernel: [2, 6, 4, 5, 13, 1, 1], stride [2, 3], padding [0, 0],
            output_padding [1, 2];
        reference_rows_longer_than_a_vector: [1, 3, 3, 20, 7, 3, 4], stride [1, 2],
            padding [1, 1], output_padding [0, 1];
        reference_one_by_one_input: [2, 3, 1, 1, 4, 3, 2], stride [2, 2], padding [0, 0],
            output_padding [0, 0];
    }

    /// Every gradient against central differences of `loss = Σ conv_transpose2d(x)·g`, in
    /// `f64`, on a random case with a non-square input and kernel, stride 2×1, padding 1×0 and
    /// output padding 1×0.
    #[test]
    fn gradients_match_finite_differences() {
        const B: usize = 2;
        type X = Rank4<B, 2, 3, 4>;
        // (3 − 1)·2 − 2·1 + 3 + 1 = 6; (4 − 1)·1 − 0 + 2 + 0 = 5.
        type Y = Rank4<B, 3, 6, 5>;
        let geometry = ConvTranspose2dGeometry {
            stride: [2, 1],
            padding: [1, 0],
            output_padding: [1, 0],
        };
        let dev = crate::test_device!();
        let x = random_values(B * 2 * 3 * 4, 21);
        let weight = random_values(2 * 3 * 3 * 2, 22);
        let bias = random_values(3, 23);
        let g: Tensor<Y, f64, _> =
            dev.tensor_from_vec(random_values(B * 3 * 6 * 5, 24), Y::default());
        let loss = |x: &[f64], weight: &[f64], bias: &[f64]| -> f64 {
            let layer = layer_from::<2, 3, 3, 2, f64>(&dev, weight, bias);
            let x: Tensor<X, f64, _> = dev.tensor_from_vec(x.to_vec(), X::default());
            let y: Tensor<Y, f64, _> = conv_transpose2d(x, &layer, geometry);
            (y * g.clone()).sum::<(), _>().array()
        };

        let layer = layer_from::<2, 3, 3, 2, f64>(&dev, &weight, &bias);
        let x_tensor: Tensor<X, f64, _> = dev.tensor_from_vec(x.clone(), X::default());
        let y: Tensor<Y, f64, _, _> = conv_transpose2d(x_tensor.leaky_trace(), &layer, geometry);
        let grads = (y * g.clone()).sum::<(), _>().backward();

        let tolerance = 1e-7;
        let numerical = numerical_gradient(|x| loss(x, &weight, &bias), &x);
        crate::assert_close!(grads.get(&x_tensor).as_vec(), numerical, tolerance);
        let numerical = numerical_gradient(|w| loss(&x, w, &bias), &weight);
        crate::assert_close!(grads.get(&layer.weight).as_vec(), numerical, tolerance);
        let numerical = numerical_gradient(|b| loss(&x, &weight, b), &bias);
        crate::assert_close!(grads.get(&layer.bias).as_vec(), numerical, tolerance);
    }

    /// The gradients once more with `typednet::gradcheck`, each parameter nudged inside the
    /// layer, on a loss that is not linear in the output: `Σ (conv_transpose2d(x)·g)²`, in
    /// `f64`, with stride 2, padding 1, output padding 1 and a non-square kernel.
    #[test]
    fn gradcheck_agrees_on_every_gradient() {
        use crate::gradcheck::{check_gradient, check_parameter_gradient};

        type X = Rank4<2, 3, 3, 4>;
        // (3 − 1)·2 − 2·1 + 4 + 1 = 7; (4 − 1)·2 − 2·1 + 3 + 1 = 8.
        type Y = Rank4<2, 2, 7, 8>;
        let geometry = ConvTranspose2dGeometry {
            stride: [2, 2],
            padding: [1, 1],
            output_padding: [1, 1],
        };
        let dev = crate::test_device!();
        let layer =
            layer_from::<3, 2, 4, 3, f64>(&dev, &random_values(72, 61), &random_values(2, 62));
        let x: Tensor<X, f64, _> = dev.tensor_from_vec(random_values(72, 63), X::default());
        let g: Tensor<Y, f64, _> = dev.tensor_from_vec(random_values(224, 64), Y::default());

        let report = check_gradient(&x, |x| {
            let y: Tensor<Y, f64, _, _> = conv_transpose2d(x, &layer, geometry);
            (y * g.clone()).square().sum()
        });
        report.assert_below(1e-6);
        let through_layer = |layer: &ConvTranspose2d<3, 2, 4, 3, f64, TestDevice>, gradients| {
            let y: Tensor<Y, f64, _, _> = conv_transpose2d(x.trace(gradients), layer, geometry);
            (y * g.clone()).square().sum()
        };
        check_parameter_gradient(&layer, |layer| &mut layer.weight, through_layer)
            .assert_below(1e-6);
        check_parameter_gradient(&layer, |layer| &mut layer.bias, through_layer).assert_below(1e-6);
    }

    /// `⟨conv2d(x), y⟩ = ⟨x, conv_transpose2d(y)⟩` for the same weight tensor (read as
    /// `[C_B, C_A, K_H, K_W]` by both: conv2d's `[C_OUT, C_IN, …]` is the transpose's
    /// `[C_IN, C_OUT, …]`), zero biases, the same stride and padding, and the output padding that
    /// brings the transpose back to the size of `x`.
    fn check_adjoint<
        const C_A: usize,
        const H: usize,
        const W: usize,
        const C_B: usize,
        const K_H: usize,
        const K_W: usize,
        const O_H: usize,
        const O_W: usize,
    >(
        stride: [usize; 2],
        padding: [usize; 2],
        output_padding: [usize; 2],
        seed: u64,
    ) {
        const B: usize = 2;
        let dev = crate::test_device!();
        let weight: Tensor<Rank4<C_B, C_A, K_H, K_W>, f64, _> = dev.tensor_from_vec(
            random_values(C_B * C_A * K_H * K_W, seed),
            Default::default(),
        );
        let conv = Conv2d::<C_A, C_B, K_H, K_W, f64, TestDevice> {
            weight: weight.clone(),
            bias: dev.tensor_from_vec(vec![0.0; C_B], Default::default()),
        };
        let transpose = ConvTranspose2d::<C_B, C_A, K_H, K_W, f64, TestDevice> {
            weight,
            bias: dev.tensor_from_vec(vec![0.0; C_A], Default::default()),
        };
        let x: Tensor<Rank4<B, C_A, H, W>, f64, _> =
            dev.tensor_from_vec(random_values(B * C_A * H * W, seed + 1), Default::default());
        let y: Tensor<Rank4<B, C_B, O_H, O_W>, f64, _> = dev.tensor_from_vec(
            random_values(B * C_B * O_H * O_W, seed + 2),
            Default::default(),
        );
        let forward: Tensor<Rank4<B, C_B, O_H, O_W>, f64, _> =
            conv2d(x.clone(), &conv, Conv2dGeometry { stride, padding });
        let backward: Tensor<Rank4<B, C_A, H, W>, f64, _> = conv_transpose2d(
            y.clone(),
            &transpose,
            ConvTranspose2dGeometry {
                stride,
                padding,
                output_padding,
            },
        );
        let left = (forward * y).sum::<(), _>().array();
        let right = (x * backward).sum::<(), _>().array();
        assert!(
            (left - right).abs() <= 1e-12 * (1.0 + left.abs()),
            "⟨conv2d(x), y⟩ = {left}, ⟨x, conv_transpose2d(y)⟩ = {right}"
        );
    }

    #[test]
    fn is_the_adjoint_of_conv2d() {
        // 8×6 → ⌊(8 + 2 − 3)/2⌋ + 1 = 4 by ⌊(6 − 2)/1⌋ + 1 = 5; back: (4 − 1)·2 − 2 + 3 + 1 = 8
        // (output padding 1: the convolution drops a row) by (5 − 1)·1 − 0 + 2 + 0 = 6.
        check_adjoint::<3, 8, 6, 4, 3, 2, 4, 5>([2, 1], [1, 0], [1, 0], 31);
        // Stride 3 over a 2×2 kernel leaves cells no window reads: 8×7 → 3×2; back:
        // (3 − 1)·3 + 2 + 0 = 8 by (2 − 1)·3 + 2 + 2 = 7.
        check_adjoint::<2, 8, 7, 3, 2, 2, 3, 2>([3, 3], [0, 0], [0, 2], 41);
        // DCGAN's pair: 4×4 kernel, stride 2, padding 1 halves 8×8 and doubles it back.
        check_adjoint::<2, 8, 8, 3, 4, 4, 4, 4>([2, 2], [1, 1], [0, 0], 51);
    }

    /// Stride equal to the kernel: every input cell stamps its own block, so the output is the
    /// Kronecker product of the input and the filter (plus the bias).
    #[test]
    fn stride_equal_to_the_kernel_tiles_the_stamps() {
        let dev = crate::test_device!();
        let layer = layer_from::<1, 1, 2, 2, f64>(&dev, &[1.0, 2.0, 3.0, 4.0], &[0.5]);
        let x: Tensor<Rank4<1, 1, 2, 2>, f64, _> =
            dev.tensor_from_vec(vec![1.0, 10.0, 100.0, 1000.0], Default::default());
        let geometry = ConvTranspose2dGeometry {
            stride: [2, 2],
            padding: [0, 0],
            output_padding: [0, 0],
        };
        let y: Tensor<Rank4<1, 1, 4, 4>, f64, _> = conv_transpose2d(x, &layer, geometry);
        #[rustfmt::skip]
        assert_eq!(y.as_vec(), [
            1.5, 2.5, 10.5, 20.5,
            3.5, 4.5, 30.5, 40.5,
            100.5, 200.5, 1000.5, 2000.5,
            300.5, 400.5, 3000.5, 4000.5,
        ]);
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: the output height is (4 − 1)·2 − 2·1 + 3 + 1 = 8, but the \
                    output type says 7"
    )]
    fn rejects_an_output_size_that_does_not_follow_from_the_geometry() {
        let dev = crate::test_device!();
        let layer = layer_from::<1, 1, 3, 3, f32>(&dev, &[0.0; 9], &[0.0]);
        let x: Tensor<Rank4<1, 1, 4, 4>, f32, _> =
            dev.tensor_from_vec(vec![0.0; 16], Default::default());
        let geometry = ConvTranspose2dGeometry {
            stride: [2, 2],
            padding: [1, 1],
            output_padding: [1, 1],
        };
        let _: Tensor<Rank4<1, 1, 7, 8>, f32, _> = conv_transpose2d(x, &layer, geometry);
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: along the width, output padding 2 must be smaller than \
                    the stride 2 (as in PyTorch)"
    )]
    fn rejects_an_output_padding_as_large_as_the_stride() {
        let dev = crate::test_device!();
        let layer = layer_from::<1, 1, 3, 3, f32>(&dev, &[0.0; 9], &[0.0]);
        let x: Tensor<Rank4<1, 1, 4, 4>, f32, _> =
            dev.tensor_from_vec(vec![0.0; 16], Default::default());
        let geometry = ConvTranspose2dGeometry {
            stride: [2, 2],
            padding: [1, 1],
            output_padding: [1, 2],
        };
        let _: Tensor<Rank4<1, 1, 8, 9>, f32, _> = conv_transpose2d(x, &layer, geometry);
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: along the height, (1 − 1)·2 − 2·2 + 3 + 0 = −1 is not a \
                    positive size: the padding crops the whole output"
    )]
    fn rejects_a_padding_that_crops_everything() {
        let dev = crate::test_device!();
        let layer = layer_from::<1, 1, 3, 3, f32>(&dev, &[0.0; 9], &[0.0]);
        let x: Tensor<Rank4<1, 1, 1, 1>, f32, _> =
            dev.tensor_from_vec(vec![0.0], Default::default());
        let geometry = ConvTranspose2dGeometry {
            stride: [2, 2],
            padding: [2, 0],
            output_padding: [0, 0],
        };
        let _: Tensor<Rank4<1, 1, 1, 3>, f32, _> = conv_transpose2d(x, &layer, geometry);
    }
}
