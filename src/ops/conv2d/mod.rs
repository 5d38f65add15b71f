//! 2-d convolution, for [`Conv2d`] layers.
//!
//! dfdx 0.13 has no convolution on stable Rust. Each device runs [`try_conv2d`] through its
//! [`Conv2dKernel`]:
//! - `Cpu`: a kernel of typednet's own (`cpu_kernel.rs`), direct convolution with register-tiled
//!   SIMD loops for the forward pass and all three gradients, recorded on the tape as one op;
//!   an order of magnitude or more faster than the composition below.
//! - `Cuda`: a composition of dfdx ops (`reference.rs`), whose kernels dfdx already has there.
//!
//! The composition is also the readable reference the CPU kernel is tested against, on many
//! geometries, besides PyTorch's numbers and finite differences. Dilated convolution
//! ([`try_dilated_conv2d`]) spreads the filters and runs the composition, on both devices.

pub(crate) mod cpu_kernel;
mod dilated;
// Without CUDA the reference runs in the tests only, as the truth the CPU kernel is held to.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) mod reference;

use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;

use crate::layers::Conv2d;
use crate::network::Element;

pub use dilated::try_dilated_conv2d;

/// Stride and zero padding of a convolution, `[height, width]` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Step between windows (PyTorch `stride`).
    pub stride: [usize; 2],
    /// Zeros added on both sides of the input (PyTorch `padding`).
    pub padding: [usize; 2],
}

/// 2-d convolution (cross-correlation, as in every deep-learning library) of a batch of images
/// with the filters of `layer`, plus its bias.
///
/// # Formula
/// `y[b, o, i, j] = bias[o] + Σ_c Σ_u Σ_v weight[o, c, u, v] · x[b, c, s_h·i + u − p_h, s_w·j + v − p_w]`,
/// where `x` reads zero outside the image (zero padding).
///
/// # Shapes
/// `[B, C_IN, H, W]` → `[B, C_OUT, O_H, O_W]` with
/// `O_H = ⌊(H − K_H + 2·p_h)/s_h⌋ + 1` and `O_W = ⌊(W − K_W + 2·p_w)/s_w⌋ + 1`.
/// The [`network!`](crate::network!) macro computes `O_H` and `O_W`; here they are inferred from
/// the output type the caller asks for, and checked against the formula.
///
/// PyTorch: `F.conv2d(x, weight, bias, stride=(s_h, s_w), padding=(p_h, p_w))`.
///
/// # Panics
/// If a stride is zero, the window does not fit the padded input, or `O_H`/`O_W` differ from the
/// formula; the message names the geometry.
///
/// ```
/// use typednet::dfdx::nn::BuildModule;
/// use typednet::dfdx::prelude::*;
/// use typednet::layers::Conv2d;
/// use typednet::ops::{conv2d, Conv2dGeometry};
///
/// let dev = Cpu::default();
/// // LeNet-5's first layer: 6 filters of 5×5, padding 2 keeps 28×28.
/// let layer = Conv2d::<1, 6, 5, 5, f32, Cpu>::build(&dev);
/// let images: Tensor<Rank4<8, 1, 28, 28>, f32, Cpu> = dev.sample_normal();
/// let geometry = Conv2dGeometry { stride: [1, 1], padding: [2, 2] };
/// let _: Tensor<Rank4<8, 6, 28, 28>, f32, Cpu> = conv2d(images.clone(), &layer, geometry);
///
/// // Stride 2, no padding: ⌊(28 − 5)/2⌋ + 1 = 12.
/// let geometry = Conv2dGeometry { stride: [2, 2], padding: [0, 0] };
/// let _: Tensor<Rank4<8, 6, 12, 12>, f32, Cpu> = conv2d(images, &layer, geometry);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_conv2d<
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
    D: Conv2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    checked_conv2d(x, layer, geometry, false)
}

/// [`try_conv2d`] followed by a ReLU in the same pass (`conv(…) -> relu` in `network!`):
/// `max(0, y)`, with PyTorch's gradient 0 where `y ≤ 0`. On the CPU the ReLU is applied where
/// the output lies and its mask read from it going back; dfdx's separate `relu` allocated a
/// copy each way.
///
/// PyTorch: `F.relu(F.conv2d(x, weight, bias, stride, padding))`.
#[allow(clippy::type_complexity)]
pub fn try_conv2d_relu<
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
    D: Conv2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    checked_conv2d(x, layer, geometry, true)
}

/// Checks the geometry against `O_H`, `O_W` and runs the device's kernel.
#[allow(clippy::type_complexity)]
fn checked_conv2d<
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
    D: Conv2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
    relu: bool,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    assert_output_size(
        "conv2d",
        WindowGeometry {
            input: [H, W],
            kernel: [K_H, K_W],
            stride: geometry.stride,
            padding: geometry.padding,
        },
        [O_H, O_W],
    );
    D::try_conv2d_kernel(x, layer, geometry, relu)
}

/// [`try_conv2d`], panicking on a device error (out of memory).
#[allow(clippy::type_complexity)]
pub fn conv2d<
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
    D: Conv2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, D, T>,
    layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, D>,
    geometry: Conv2dGeometry,
) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, D, T> {
    try_conv2d(x, layer, geometry).unwrap()
}

/// How a sliding window meets its input, `[height, width]` each: what fixes the output size.
/// The device-specific implementation of [`try_conv2d`], chosen by the device type as dfdx
/// chooses its kernels. Callers have checked the geometry against `O_H`, `O_W`.
pub trait Conv2dKernel<E: Element>: Device<E> {
    /// Runs the convolution on this device, and a ReLU after it with `relu`, recording the
    /// backward pass on the tape.
    #[allow(clippy::type_complexity)]
    fn try_conv2d_kernel<
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
        layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, Self>,
        geometry: Conv2dGeometry,
        relu: bool,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err>;
}

/// On the CPU, typednet's own kernel (`cpu_kernel.rs`).
impl<E: Element> Conv2dKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_conv2d_kernel<
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
        layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, Self>,
        geometry: Conv2dGeometry,
        relu: bool,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        cpu_kernel::try_conv2d(x, layer, geometry, relu)
    }
}

/// On CUDA the composition of dfdx ops is the kernel: gather and matmul already run there.
#[cfg(feature = "cuda")]
impl<E: Element> Conv2dKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_conv2d_kernel<
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
        layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, Self>,
        geometry: Conv2dGeometry,
        relu: bool,
    ) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        let y = reference::try_conv2d(x, layer, geometry)?;
        if relu {
            y.try_relu()
        } else {
            Ok(y)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowGeometry {
    pub input: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

/// Panics unless `output` is `⌊(input − kernel + 2·padding)/stride⌋ + 1` along both axes.
///
/// The [`network!`](crate::network!) macro only emits calls whose output type it computed with
/// this formula, so this guards hand-written calls: the ops index the input by the output size,
/// and a wrong one would read the wrong pixels rather than fail.
pub(crate) fn assert_output_size(op: &str, geometry: WindowGeometry, output: [usize; 2]) {
    let WindowGeometry {
        input,
        kernel,
        stride,
        padding,
    } = geometry;
    let describe = || {
        format!(
            "{}×{} input, {}×{} window, stride {:?}, padding {:?}",
            input[0], input[1], kernel[0], kernel[1], stride, padding
        )
    };
    for (axis, name) in ["height", "width"].into_iter().enumerate() {
        assert!(
            stride[axis] > 0,
            "{op}: the stride must be at least 1 along both axes ({})",
            describe()
        );
        let padded = input[axis] + 2 * padding[axis];
        assert!(
            kernel[axis] <= padded,
            "{op}: the window {name} {} is larger than the input {name} {} + 2·{} = {padded} ({})",
            kernel[axis],
            input[axis],
            padding[axis],
            describe()
        );
        let expected = (padded - kernel[axis]) / stride[axis] + 1;
        assert!(
            output[axis] == expected,
            "{op}: the output {name} is ⌊({} − {} + 2·{})/{}⌋ + 1 = {expected}, but the output type \
             says {} ({})",
            input[axis],
            kernel[axis],
            padding[axis],
            stride[axis],
            output[axis],
            describe()
        );
    }
}

/// What the conv and pooling tests share: reading PyTorch fixtures and finite differences.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::network::Element;
    use num_traits::NumCast;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    /// A reference file written by `tools/reference_conv_pool.py`: `#` comments, then lines of a
    /// key and its numbers.
    pub(crate) struct Fixture {
        name: &'static str,
        entries: Vec<(&'static str, Vec<f64>)>,
    }

    impl Fixture {
        pub(crate) fn parse(name: &'static str, text: &'static str) -> Self {
            let entries = text
                .lines()
                .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
                .map(|line| {
                    let mut words = line.split_whitespace();
                    let key = words.next().unwrap();
                    let values = words
                        .map(|word| {
                            word.parse::<f64>().unwrap_or_else(|_| {
                                panic!("fixture {name}: `{key}` holds `{word}`, not a number")
                            })
                        })
                        .collect();
                    (key, values)
                })
                .collect();
            Self { name, entries }
        }

        pub(crate) fn values(&self, key: &str) -> &[f64] {
            self.entries
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_slice())
                .unwrap_or_else(|| panic!("fixture {}: no `{key}`", self.name))
        }

        /// A list of sizes (a shape, a stride), checked against what the test's types say.
        pub(crate) fn assert_sizes(&self, key: &str, expected: &[usize]) {
            let found: Vec<usize> = self.values(key).iter().map(|&v| v as usize).collect();
            assert_eq!(
                found, expected,
                "fixture {}: `{key}` differs from the test's types",
                self.name
            );
        }

        pub(crate) fn sizes<const N: usize>(&self, key: &str) -> [usize; N] {
            let values = self.values(key);
            core::array::from_fn(|i| values[i] as usize)
        }

        /// Compares `actual` with the fixture's `key`, naming both on failure.
        pub(crate) fn assert_close<E: Element>(&self, key: &str, actual: &[E], tolerance: f64) {
            eprintln!("fixture {}: checking `{key}`", self.name);
            crate::assert_close!(to_f64(actual), self.values(key), tolerance);
        }
    }

    pub(crate) fn cast<E: Element>(values: &[f64]) -> Vec<E> {
        values
            .iter()
            .map(|&v| <E as NumCast>::from(v).unwrap())
            .collect()
    }

    pub(crate) fn to_f64<E: Element>(values: &[E]) -> Vec<f64> {
        values.iter().map(|v| v.to_f64().unwrap()).collect()
    }

    /// Uniform in `[-1, 1)`, reproducible.
    pub(crate) fn random_values(len: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// In `[-1, 1)`, at least `2/len` apart: no ties for max pooling, and no finite-difference
    /// step changes which value is the largest.
    pub(crate) fn distinct_values(len: usize, seed: u64) -> Vec<f64> {
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        order
            .into_iter()
            .map(|k| 2.0 * k as f64 / len as f64 - 1.0)
            .collect()
    }

    /// Central differences `(f(p + h·e_i) − f(p − h·e_i)) / 2h` for every coordinate `i`.
    pub(crate) fn numerical_gradient(f: impl Fn(&[f64]) -> f64, at: &[f64]) -> Vec<f64> {
        const STEP: f64 = 1e-6;
        let mut point = at.to_vec();
        (0..at.len())
            .map(|i| {
                point[i] = at[i] + STEP;
                let up = f(&point);
                point[i] = at[i] - STEP;
                let down = f(&point);
                point[i] = at[i];
                (up - down) / (2.0 * STEP)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use dfdx::nn::ZeroGrads;
    use dfdx::shapes::{Const, Dim, Rank4};
    use dfdx::tensor::{AsArray, NoneTape, Tape, Tensor, TensorFromVec, Trace};
    use dfdx::tensor_ops::{Backward, Device, PermuteTo, SumTo};

    use super::test_support::{
        cast, distinct_values, numerical_gradient, random_values, to_f64, Fixture,
    };
    use super::*;
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
    ) -> Conv2d<C_IN, C_OUT, K_H, K_W, E, TestDevice>
    where
        TestDevice: Device<E>,
    {
        Conv2d {
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
        layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, TestDevice>,
        geometry: Conv2dGeometry,
    ) -> Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, TestDevice, T>
    where
        TestDevice: Device<E>,
    {
        match implementation {
            Implementation::Kernel => conv2d(x, layer, geometry),
            Implementation::Reference => reference::try_conv2d(x, layer, geometry).unwrap(),
        }
    }

    /// The output and the gradients of `x`, `weight` and `bias` for `loss = Σ conv2d(x)·g`.
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
        layer: &Conv2d<C_IN, C_OUT, K_H, K_W, E, TestDevice>,
        geometry: Conv2dGeometry,
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
        fixture.assert_sizes("weight_shape", &[C_OUT, C_IN, K_H, K_W]);
        fixture.assert_sizes("out_shape", &[BATCH, C_OUT, O_H, O_W]);
        let geometry = Conv2dGeometry {
            stride: fixture.sizes("stride"),
            padding: fixture.sizes("padding"),
        };
        let dev = crate::test_device!();
        let layer = layer_from::<C_IN, C_OUT, K_H, K_W, E>(
            &dev,
            fixture.values("weight"),
            fixture.values("bias"),
        );
        let (x, g) = (fixture.values("x"), fixture.values("g"));

        let with_const_batch = forward_backward::<_, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, E>(
            Const::<BATCH>,
            &layer,
            geometry,
            x,
            g,
            Implementation::Kernel,
        );
        let with_usize_batch = forward_backward::<_, C_IN, H, W, C_OUT, K_H, K_W, O_H, O_W, E>(
            BATCH,
            &layer,
            geometry,
            x,
            g,
            Implementation::Kernel,
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
                    "/tests/fixtures/conv2d/",
                    $name,
                    ".txt"
                )),
            )
        };
    }

    /// One test per fixture, in `f32` (tolerance 1e-5) and in `f64` (the fixtures keep 12
    /// significant digits). Parameters: batch, c_in, h, w, c_out, k_h, k_w, o_h, o_w.
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
        matches_pytorch_single_channel: "single_channel" => [2, 1, 5, 5, 1, 3, 3, 3, 3];
        matches_pytorch_channels_pad1: "channels_pad1" => [2, 3, 6, 6, 4, 3, 3, 6, 6];
        matches_pytorch_stride2_pad1: "stride2_pad1" => [2, 2, 7, 7, 3, 3, 3, 4, 4];
        matches_pytorch_non_square: "non_square" => [2, 2, 7, 5, 3, 3, 2, 4, 4];
        matches_pytorch_pad2_not_tiling: "pad2_not_tiling" => [2, 2, 8, 6, 2, 3, 3, 4, 3];
        matches_pytorch_not_tiling: "not_tiling" => [2, 3, 7, 5, 2, 2, 2, 3, 2];
        matches_pytorch_kernel_1x1_stride2: "kernel_1x1_stride2" => [2, 4, 5, 6, 2, 1, 1, 3, 3];
        matches_pytorch_kernel_larger_than_input:
            "kernel_larger_than_input" => [2, 1, 4, 3, 2, 5, 4, 4, 4];
        matches_pytorch_mixed_stride_padding:
            "mixed_stride_padding" => [2, 2, 6, 7, 3, 3, 3, 4, 3];
    }

    /// The output size of a test case, as the macro computes it.
    const fn out(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
        match crate::shape::conv_output_size(input, kernel, stride, padding) {
            Ok(size) => size,
            Err(_) => panic!("a test geometry does not fit"),
        }
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
        geometry: Conv2dGeometry,
    ) {
        let seed = (BATCH * 7 + C_IN * 5 + H * 3 + W + C_OUT * 11 + K_H * 13 + K_W) as u64;
        let x = random_values(BATCH * C_IN * H * W, seed);
        let weight = random_values(C_OUT * C_IN * K_H * K_W, seed + 1);
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
            geometry: Conv2dGeometry,
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

    /// One test per geometry: `[batch, c_in, h, w, c_out, k_h, k_w]`, stride and padding
    /// `[height, width]`. Chosen to cover strides 1–3, padding 0–2, non-square inputs and
    /// kernels, windows that do not tile, rows shorter and longer than a SIMD vector, kernels
    /// larger than the input, and channel counts that leave partial register tiles.
    macro_rules! matches_reference {
        ($($test:ident: [$b:literal, $c_in:literal, $h:literal, $w:literal, $c_out:literal,
            $k_h:literal, $k_w:literal], stride [$s_h:literal, $s_w:literal],
            padding [$p_h:literal, $p_w:literal];)*) => {$(
            #[test]
            fn $test() {
                check_against_reference::<
                    $b, $c_in, $h, $w, $c_out, $k_h, $k_w,
                    { out($h, $k_h, $s_h, $p_h) }, { out($w, $k_w, $s_w, $p_w) },
                >(Conv2dGeometry { stride: [$s_h, $s_w], padding: [$p_h, $p_w] });
            }
        )*};
    }

    matches_reference! {
        reference_single_channel: [2, 1, 5, 5, 1, 3, 3], stride [1, 1], padding [0, 0];
        reference_same_padding: [3, 2, 7, 9, 3, 3, 3], stride [1, 1], padding [1, 1];
        reference_stride_2_by_1: [2, 3, 8, 6, 5, 2, 3], stride [2, 1], padding [1, 0];
        reference_stride_3_by_2: [1, 5, 9, 11, 4, 3, 2], stride [3, 2], padding [2, 1];
        reference_kernel_1x1_strided: [2, 4, 6, 17, 7, 1, 1], stride [2, 3], padding [0, 2];
        reference_stride_3_pad_2: [3, 1, 10, 10, 2, 5, 5], stride [3, 3], padding [2, 2];
        reference_kernel_larger_than_input: [2, 2, 4, 3, 6, 5, 4], stride [1, 1], padding [1, 1];
        reference_rows_longer_than_a_vector: [2, 3, 12, 20, 8, 3, 3], stride [1, 1], padding [1, 1];
        reference_three_channel_tiles: [1, 2, 7, 33, 13, 2, 4], stride [2, 1], padding [0, 2];
        reference_kernel_5x5_pad_2: [4, 5, 5, 5, 5, 5, 5], stride [1, 1], padding [2, 2];
        reference_one_row_kernel: [2, 1, 3, 40, 2, 3, 1], stride [1, 3], padding [1, 0];
        reference_even_kernel_stride_2: [2, 3, 9, 9, 3, 4, 4], stride [2, 2], padding [1, 1];
        reference_stride_3_by_1: [2, 2, 11, 7, 3, 3, 5], stride [3, 1], padding [0, 2];
        reference_lenet_conv1: [2, 1, 32, 32, 6, 5, 5], stride [1, 1], padding [0, 0];
        reference_seven_filters_stride_2: [2, 6, 8, 8, 7, 3, 3], stride [2, 2], padding [1, 1];
    }

    /// A strided view (a permuted tensor) as input: the kernel reads it in its logical order,
    /// and the gradient reaches the tensor it was permuted from.
    #[test]
    fn reads_a_permuted_input_in_its_logical_order() {
        let dev = crate::test_device!();
        let stored: Tensor<Rank4<2, 5, 4, 3>, f64, _> =
            dev.tensor_from_vec(random_values(120, 1), Default::default());
        let layer = layer_from::<3, 2, 2, 3, f64>(&dev, &random_values(36, 2), &[0.5, -0.5]);
        let geometry = Conv2dGeometry {
            stride: [1, 2],
            padding: [1, 1],
        };
        let results = [Implementation::Kernel, Implementation::Reference].map(|implementation| {
            let x = stored.leaky_trace().permute::<Rank4<2, 3, 5, 4>, _>();
            let y: Tensor<Rank4<2, 2, 6, 2>, f64, _, _> = run(implementation, x, &layer, geometry);
            let out = y.as_vec();
            let grads = y.sum::<(), _>().backward();
            [
                out,
                grads.get(&stored).as_vec(),
                grads.get(&layer.weight).as_vec(),
            ]
        });
        for (got, expected) in results[0].iter().zip(&results[1]) {
            crate::assert_close!(got, expected, 1e-12);
        }
    }

    /// In a training step the parameters' gradients come with the input's tape
    /// (`x.traced(grads)`) and accumulate across steps until zeroed.
    #[test]
    fn accumulates_into_the_gradients_a_training_step_passes_in() {
        let dev = crate::test_device!();
        let layer = layer_from::<2, 3, 3, 3, f64>(&dev, &random_values(54, 1), &[0.1, 0.2, 0.3]);
        let x: Tensor<Rank4<2, 2, 6, 5>, f64, _> =
            dev.tensor_from_vec(random_values(120, 2), Default::default());
        let geometry = Conv2dGeometry {
            stride: [1, 1],
            padding: [1, 1],
        };
        let step = |implementation, grads| {
            let y: Tensor<Rank4<2, 3, 6, 5>, f64, _, _> =
                run(implementation, x.trace(grads), &layer, geometry);
            y.square().sum::<(), _>().backward()
        };
        let results = [Implementation::Kernel, Implementation::Reference].map(|implementation| {
            let once = step(implementation, layer.alloc_grads());
            let twice = step(implementation, once.clone());
            [&once, &twice].map(|grads| {
                [
                    grads.get(&layer.weight).as_vec(),
                    grads.get(&layer.bias).as_vec(),
                ]
            })
        });
        let [[once_w, once_b], [twice_w, twice_b]] = &results[0];
        let doubled = |v: &[f64]| v.iter().map(|g| 2.0 * g).collect::<Vec<_>>();
        crate::assert_close!(twice_w, doubled(once_w), 1e-12);
        crate::assert_close!(twice_b, doubled(once_b), 1e-12);
        for (got, expected) in results[0].iter().flatten().zip(results[1].iter().flatten()) {
            crate::assert_close!(got, expected, 1e-12);
        }
    }

    /// Every gradient against central differences of `loss = Σ conv2d(x)·g`, in `f64`, on a
    /// random case with a non-square input and kernel, stride 2×1 and padding 1.
    #[test]
    fn gradients_match_finite_differences() {
        const B: usize = 2;
        type X = Rank4<B, 2, 5, 4>;
        type Y = Rank4<B, 3, 3, 5>;
        let geometry = Conv2dGeometry {
            stride: [2, 1],
            padding: [1, 1],
        };
        let dev = crate::test_device!();
        let x = random_values(B * 2 * 5 * 4, 1);
        let weight = random_values(3 * 2 * 3 * 2, 2);
        let bias = random_values(3, 3);
        let g: Tensor<Y, f64, _> =
            dev.tensor_from_vec(random_values(B * 3 * 3 * 5, 4), Y::default());
        let loss = |x: &[f64], weight: &[f64], bias: &[f64]| -> f64 {
            let layer = layer_from::<2, 3, 3, 2, f64>(&dev, weight, bias);
            let x: Tensor<X, f64, _> = dev.tensor_from_vec(x.to_vec(), X::default());
            let y: Tensor<Y, f64, _> = conv2d(x, &layer, geometry);
            (y * g.clone()).sum::<(), _>().array()
        };

        let layer = layer_from::<2, 3, 3, 2, f64>(&dev, &weight, &bias);
        let x_tensor: Tensor<X, f64, _> = dev.tensor_from_vec(x.clone(), X::default());
        let y: Tensor<Y, f64, _, _> = conv2d(x_tensor.leaky_trace(), &layer, geometry);
        let grads = (y * g.clone()).sum::<(), _>().backward();

        let tolerance = 1e-7;
        let numerical = numerical_gradient(|x| loss(x, &weight, &bias), &x);
        crate::assert_close!(grads.get(&x_tensor).as_vec(), numerical, tolerance);
        let numerical = numerical_gradient(|w| loss(&x, w, &bias), &weight);
        crate::assert_close!(grads.get(&layer.weight).as_vec(), numerical, tolerance);
        let numerical = numerical_gradient(|b| loss(&x, &weight, b), &bias);
        crate::assert_close!(grads.get(&layer.bias).as_vec(), numerical, tolerance);
    }

    /// Convolving with a one-hot filter copies the input: checks the index arithmetic on a case
    /// large enough to have many windows per row and several examples.
    #[test]
    fn one_hot_filter_picks_the_shifted_input() {
        const B: usize = 3;
        let dev = crate::test_device!();
        let x_values = distinct_values(B * 9 * 11, 5);
        let x: Tensor<(usize, Const<1>, Const<9>, Const<11>), f32, _> =
            dev.tensor_from_vec(cast(&x_values), (B, Const, Const, Const));
        // Picks the cell one down and two across from each window's corner.
        let mut weight = vec![0.0; 3 * 3];
        weight[3 + 2] = 1.0;
        let layer = layer_from::<1, 1, 3, 3, f32>(&dev, &weight, &[0.5]);
        let geometry = Conv2dGeometry {
            stride: [2, 3],
            padding: [0, 0],
        };
        let y: Tensor<(usize, Const<1>, Const<4>, Const<3>), f32, _> = conv2d(x, &layer, geometry);
        let expected: Vec<f64> = (0..B)
            .flat_map(|b| (0..4).flat_map(move |i| (0..3).map(move |j| (b, i, j))))
            .map(|(b, i, j)| x_values[b * 99 + (2 * i + 1) * 11 + 3 * j + 2] + 0.5)
            .collect();
        crate::assert_close!(y.as_vec(), expected);
    }

    #[test]
    #[should_panic(
        expected = "conv2d: the output height is ⌊(7 − 3 + 2·1)/2⌋ + 1 = 4, but \
                               the output type says 5"
    )]
    fn rejects_an_output_size_that_does_not_follow_from_the_geometry() {
        let dev = crate::test_device!();
        let layer = layer_from::<1, 1, 3, 3, f32>(&dev, &[0.0; 9], &[0.0]);
        let x: Tensor<Rank4<1, 1, 7, 7>, f32, _> =
            dev.tensor_from_vec(vec![0.0; 49], Default::default());
        let geometry = Conv2dGeometry {
            stride: [2, 2],
            padding: [1, 1],
        };
        let _: Tensor<Rank4<1, 1, 5, 4>, f32, _> = conv2d(x, &layer, geometry);
    }

    #[test]
    #[should_panic(
        expected = "conv2d: the window width 4 is larger than the input width 3 + 2·0 = 3"
    )]
    fn rejects_a_window_wider_than_the_padded_input() {
        let dev = crate::test_device!();
        let layer = layer_from::<1, 1, 1, 4, f32>(&dev, &[0.0; 4], &[0.0]);
        let x: Tensor<Rank4<1, 1, 3, 3>, f32, _> =
            dev.tensor_from_vec(vec![0.0; 9], Default::default());
        let geometry = Conv2dGeometry {
            stride: [1, 1],
            padding: [0, 0],
        };
        let _: Tensor<Rank4<1, 1, 3, 1>, f32, _> = conv2d(x, &layer, geometry);
    }

    #[test]
    fn adds_one_bias_per_filter() {
        let dev = crate::test_device!();
        let layer = layer_from::<2, 3, 1, 1, f64>(&dev, &[0.0; 6], &[1.0, 2.0, 3.0]);
        let x: Tensor<Rank4<1, 2, 2, 2>, f64, _> =
            dev.tensor_from_vec(vec![1.0; 8], Default::default());
        let y: Tensor<Rank4<1, 3, 2, 2>, f64, _> = conv2d(
            x,
            &layer,
            Conv2dGeometry {
                stride: [1, 1],
                padding: [0, 0],
            },
        );
        assert_eq!(y.array(), [[[[1.0; 2]; 2], [[2.0; 2]; 2], [[3.0; 2]; 2]]]);
    }
}

#[cfg(test)]
mod relu_tests {
    use dfdx::nn::BuildModule;
    use dfdx::prelude::*;

    use super::{try_conv2d, try_conv2d_relu, Conv2dGeometry};
    use crate::layers::Conv2d;

    /// The fused op against the convolution followed by dfdx's `relu`: the same values and the
    /// same gradients for the input, the filters and the bias, bit for bit.
    fn check<const B: usize, const O: usize>(geometry: Conv2dGeometry) {
        let dev = Cpu::seed_from_u64(11);
        let layer = Conv2d::<3, 5, 3, 3, f32, Cpu>::build(&dev);
        let x: Tensor<Rank4<B, 3, 9, 9>, f32, Cpu> = dev.sample_normal();
        let g: Tensor<Rank4<B, 5, O, O>, f32, Cpu> = dev.sample_normal();
        let fused: Tensor<Rank4<B, 5, O, O>, f32, _, _> =
            try_conv2d_relu(x.leaky_trace(), &layer, geometry).unwrap();
        let separate: Tensor<Rank4<B, 5, O, O>, f32, _, _> =
            try_conv2d(x.leaky_trace(), &layer, geometry)
                .unwrap()
                .relu();
        assert_eq!(fused.as_vec(), separate.as_vec());
        assert!(fused.as_vec().contains(&0.0));
        let fused = (fused * g.clone()).sum().backward();
        let separate = (separate * g).sum().backward();
        assert_eq!(fused.get(&x).as_vec(), separate.get(&x).as_vec());
        assert_eq!(
            fused.get(&layer.weight).as_vec(),
            separate.get(&layer.weight).as_vec()
        );
        assert_eq!(
            fused.get(&layer.bias).as_vec(),
            separate.get(&layer.bias).as_vec()
        );
    }

    #[test]
    fn conv_relu_equals_the_convolution_then_relu() {
        check::<2, 9>(Conv2dGeometry {
            stride: [1, 1],
            padding: [1, 1],
        });
        check::<3, 4>(Conv2dGeometry {
            stride: [2, 2],
            padding: [0, 0],
        });
    }
}
