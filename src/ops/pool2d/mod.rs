//! Max and average pooling, without padding.
//!
//! dfdx 0.13 has no pooling on stable Rust. On the CPU, pooling runs a kernel of its own
//! (`cpu_kernel.rs`: one pass per plane, in parallel, with its own backward pass); on other
//! devices it is a composition of dfdx ops (`reference.rs`), which runs wherever dfdx does and
//! which the CPU kernel is tested against.

mod cpu_kernel;
// Outside the tests only the CUDA device runs the reference.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) mod reference;

pub use self::reference::Reduction;

use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;

use crate::network::Element;
use crate::ops::conv2d::{assert_output_size, WindowGeometry};

/// Window and stride of a pooling layer, `[height, width]` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dGeometry {
    /// Window size (PyTorch `kernel_size`).
    pub window: [usize; 2],
    /// Step between windows (PyTorch `stride`).
    pub stride: [usize; 2],
}

/// The device-specific implementation of pooling, chosen by the device type as dfdx chooses its
/// kernels. Callers have checked the geometry against `O_H`, `O_W`.
pub trait Pool2dKernel<E: Element>: Device<E> {
    /// Pools every window of `x` with `reduction`, recording the backward pass on the tape.
    #[allow(clippy::type_complexity)]
    fn try_pool2d_kernel<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Self, T>,
        geometry: Pool2dGeometry,
        reduction: Reduction,
    ) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err>;
}

impl<E: Element> Pool2dKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_pool2d_kernel<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Self, T>,
        geometry: Pool2dGeometry,
        reduction: Reduction,
    ) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        cpu_kernel::try_pool2d(x, geometry, reduction)
    }
}

/// On CUDA the composition of dfdx ops is the kernel: gather and max/mean already run there.
#[cfg(feature = "cuda")]
impl<E: Element> Pool2dKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_pool2d_kernel<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        T: Tape<E, Self>,
    >(
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, Self, T>,
        geometry: Pool2dGeometry,
        reduction: Reduction,
    ) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, Self, T>, Self::Err> {
        reference::try_pool2d(x, geometry, reduction)
    }
}

fn check_geometry(op: &str, input: [usize; 2], geometry: Pool2dGeometry, output: [usize; 2]) {
    assert!(
        geometry.window.iter().all(|&size| size > 0),
        "{op}: the window must be at least 1×1, not {}×{}",
        geometry.window[0],
        geometry.window[1]
    );
    let window = WindowGeometry {
        input,
        kernel: geometry.window,
        stride: geometry.stride,
        padding: [0, 0],
    };
    assert_output_size(op, window, output);
}

/// Max pooling: the largest value of every `K_H × K_W` window, channel by channel.
///
/// # Formula
/// `y[b, c, i, j] = max_{u < K_H, v < K_W} x[b, c, s_h·i + u, s_w·j + v]`
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, O_H, O_W]` with `O_H = ⌊(H − K_H)/s_h⌋ + 1` and
/// `O_W = ⌊(W − K_W)/s_w⌋ + 1` (rows and columns past the last whole window are dropped).
/// The [`network!`](crate::network!) macro computes `O_H` and `O_W`; here they are inferred from
/// the output type the caller asks for, and checked against the formula.
///
/// PyTorch: `F.max_pool2d(x, kernel_size=(K_H, K_W), stride=(s_h, s_w))`.
///
/// # Gradient at ties
/// The gradient of a window goes to the element that holds its maximum. Where several elements
/// tie for the maximum, the CPU kernel gives it to the first of them in row-major order, as
/// PyTorch does. Other devices run the composition of dfdx ops, whose `max` gives the whole
/// gradient to *each* tied element. Inputs with distinct values (anything real-valued and not
/// quantised, in practice) get identical gradients everywhere.
///
/// # Panics
/// If the window is empty, a stride is zero, the window is larger than the input, or
/// `O_H`/`O_W` differ from the formula; the message names the geometry.
///
/// ```
/// use typednet::dfdx::prelude::*;
/// use typednet::ops::{max_pool2d, Pool2dGeometry};
///
/// let dev = Cpu::default();
/// let x: Tensor<Rank4<8, 6, 28, 28>, f32, Cpu> = dev.sample_normal();
/// let geometry = Pool2dGeometry { window: [2, 2], stride: [2, 2] };
/// let _: Tensor<Rank4<8, 6, 14, 14>, f32, Cpu> = max_pool2d(x, geometry);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_max_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Pool2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    geometry: Pool2dGeometry,
) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    check_geometry("max_pool2d", [H, W], geometry, [O_H, O_W]);
    D::try_pool2d_kernel(x, geometry, Reduction::Max)
}

/// [`try_max_pool2d`], panicking on a device error (out of memory).
#[allow(clippy::type_complexity)]
pub fn max_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Pool2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    geometry: Pool2dGeometry,
) -> Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T> {
    try_max_pool2d(x, geometry).unwrap()
}

/// Average pooling: the mean of every `K_H × K_W` window, channel by channel.
///
/// # Formula
/// `y[b, c, i, j] = 1/(K_H·K_W) · Σ_{u < K_H, v < K_W} x[b, c, s_h·i + u, s_w·j + v]`
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, O_H, O_W]` with `O_H = ⌊(H − K_H)/s_h⌋ + 1` and
/// `O_W = ⌊(W − K_W)/s_w⌋ + 1` (rows and columns past the last whole window are dropped).
/// The [`network!`](crate::network!) macro computes `O_H` and `O_W`; here they are inferred from
/// the output type the caller asks for, and checked against the formula.
///
/// PyTorch: `F.avg_pool2d(x, kernel_size=(K_H, K_W), stride=(s_h, s_w))`.
///
/// # Panics
/// If the window is empty, a stride is zero, the window is larger than the input, or
/// `O_H`/`O_W` differ from the formula; the message names the geometry.
///
/// ```
/// use typednet::dfdx::prelude::*;
/// use typednet::ops::{avg_pool2d, Pool2dGeometry};
///
/// let dev = Cpu::default();
/// let x: Tensor<(usize, Const<16>, Const<10>, Const<10>), f32, Cpu> =
///     dev.sample_normal_like(&(4, Const, Const, Const));
/// // Overlapping 3×3 windows at stride 2: ⌊(10 − 3)/2⌋ + 1 = 4.
/// let geometry = Pool2dGeometry { window: [3, 3], stride: [2, 2] };
/// let _: Tensor<(usize, Const<16>, Const<4>, Const<4>), f32, Cpu> = avg_pool2d(x, geometry);
/// ```
#[allow(clippy::type_complexity)]
pub fn try_avg_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Pool2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    geometry: Pool2dGeometry,
) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
    check_geometry("avg_pool2d", [H, W], geometry, [O_H, O_W]);
    D::try_pool2d_kernel(x, geometry, Reduction::Mean)
}

/// [`try_avg_pool2d`], panicking on a device error (out of memory).
#[allow(clippy::type_complexity)]
pub fn avg_pool2d<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O_H: usize,
    const O_W: usize,
    E: Element,
    D: Pool2dKernel<E>,
    T: Tape<E, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
    geometry: Pool2dGeometry,
) -> Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T> {
    try_avg_pool2d(x, geometry).unwrap()
}

#[cfg(test)]
mod tests {
    use dfdx::shapes::{Axes4, Const, Dim, HasShape, Rank4};
    use dfdx::tensor::{
        AsArray, Cpu, NoneTape, Tensor, TensorFrom, TensorFromVec, Trace, WithEmptyTape,
        ZerosTensor,
    };
    use dfdx::tensor_ops::{Backward, Device, PermuteTo, SumTo};

    use super::*;
    use crate::ops::conv2d::test_support::{
        cast, distinct_values, numerical_gradient, random_values, to_f64, Fixture,
    };
    use crate::testing::TestDevice;

    /// `try_max_pool2d` or `try_avg_pool2d`, chosen at run time so one test body serves both.
    #[allow(clippy::type_complexity)]
    fn pool<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
        D: Pool2dKernel<E>,
        T: Tape<E, D>,
    >(
        kind: &str,
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
        geometry: Pool2dGeometry,
    ) -> Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T> {
        match kind {
            "max" => max_pool2d(x, geometry),
            "avg" => avg_pool2d(x, geometry),
            _ => unreachable!("no pooling called {kind}"),
        }
    }

    /// The output and the gradient of `x` for `loss = Σ pool(x)·g`, on device `D`.
    fn forward_backward<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
        D: Pool2dKernel<E>,
    >(
        dev: &D,
        kind: &str,
        batch: B,
        geometry: Pool2dGeometry,
        x: &[f64],
        g: &[f64],
    ) -> [Vec<E>; 2] {
        let x = dev.tensor_from_vec(cast::<E>(x), (batch, Const::<C>, Const::<H>, Const::<W>));
        let g = dev.tensor_from_vec(
            cast::<E>(g),
            (batch, Const::<C>, Const::<O_H>, Const::<O_W>),
        );

        let inference: Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, _, NoneTape> =
            pool(kind, x.clone(), geometry);
        let y: Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, _, _> =
            pool(kind, x.leaky_trace(), geometry);
        assert_eq!(
            y.as_vec(),
            inference.as_vec(),
            "the tape changed the output"
        );
        let out = y.as_vec();
        let grads = (y * g).sum::<(), _>().backward();
        [out, grads.get(&x).as_vec()]
    }

    /// Checks one PyTorch fixture on device `D`, max and average pooling, forward and gradient,
    /// with the batch size as a `Const` and as a run-time `usize`.
    fn check_fixture<
        const BATCH: usize,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
        D: Pool2dKernel<E>,
    >(
        dev: &D,
        fixture: Fixture,
        tolerance: f64,
    ) {
        fixture.assert_sizes("x_shape", &[BATCH, C, H, W]);
        fixture.assert_sizes("out_shape", &[BATCH, C, O_H, O_W]);
        let geometry = Pool2dGeometry {
            window: fixture.sizes("window"),
            stride: fixture.sizes("stride"),
        };
        let (x, g) = (fixture.values("x"), fixture.values("g"));
        for kind in ["max", "avg"] {
            let with_const_batch = forward_backward::<_, C, H, W, O_H, O_W, E, D>(
                dev,
                kind,
                Const::<BATCH>,
                geometry,
                x,
                g,
            );
            let with_usize_batch =
                forward_backward::<_, C, H, W, O_H, O_W, E, D>(dev, kind, BATCH, geometry, x, g);
            for [out, grad_x] in [with_const_batch, with_usize_batch] {
                fixture.assert_close(&format!("{kind}_out"), &out, tolerance);
                fixture.assert_close(&format!("{kind}_grad_x"), &grad_x, tolerance);
            }
        }
    }

    macro_rules! fixture {
        ($name:literal) => {
            Fixture::parse(
                $name,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/pool2d/",
                    $name,
                    ".txt"
                )),
            )
        };
    }

    /// One test per fixture, in `f32` (tolerance 1e-5) and in `f64` (the fixtures keep 12
    /// significant digits). Parameters: batch, c, h, w, o_h, o_w.
    macro_rules! matches_pytorch {
        ($($test:ident: $name:literal => [$($size:literal),*];)*) => {$(
            #[test]
            fn $test() {
                let dev = crate::test_device!();
                check_fixture::<$($size,)* f32, TestDevice>(&dev, fixture!($name), 1e-5);
                check_fixture::<$($size,)* f64, TestDevice>(&dev, fixture!($name), 1e-10);
            }
        )*};
    }

    matches_pytorch! {
        matches_pytorch_window2_stride2: "window2_stride2" => [2, 3, 6, 6, 3, 3];
        matches_pytorch_window3_stride2_overlapping:
            "window3_stride2_overlapping" => [2, 2, 7, 7, 3, 3];
        matches_pytorch_non_square: "non_square" => [2, 2, 7, 5, 3, 4];
        matches_pytorch_not_tiling: "not_tiling" => [2, 1, 7, 5, 3, 2];
        matches_pytorch_stride1: "stride1" => [2, 2, 4, 5, 3, 4];
        matches_pytorch_stride_wider_than_window:
            "stride_wider_than_window" => [2, 1, 8, 7, 3, 2];
    }

    /// The gradient against central differences of `loss = Σ pool(x)·g`, in `f64`, on a random
    /// case with a non-square window, overlapping rows and a column left over.
    #[test]
    fn gradients_match_finite_differences() {
        const B: usize = 2;
        type X = Rank4<B, 2, 5, 7>;
        type Y = Rank4<B, 2, 4, 2>;
        let geometry = Pool2dGeometry {
            window: [2, 3],
            stride: [1, 3],
        };
        let dev = crate::test_device!();
        // Distinct values: the finite-difference step never changes which element is the max.
        let x = distinct_values(B * 2 * 5 * 7, 11);
        let g: Tensor<Y, f64, _> =
            dev.tensor_from_vec(random_values(B * 2 * 4 * 2, 12), Y::default());
        for kind in ["max", "avg"] {
            let loss = |x: &[f64]| -> f64 {
                let x: Tensor<X, f64, _> = dev.tensor_from_vec(x.to_vec(), X::default());
                let y: Tensor<Y, f64, _> = pool(kind, x, geometry);
                (y * g.clone()).sum::<(), _>().array()
            };
            let x_tensor: Tensor<X, f64, _> = dev.tensor_from_vec(x.clone(), X::default());
            let y: Tensor<Y, f64, _, _> = pool(kind, x_tensor.leaky_trace(), geometry);
            let grads = (y * g.clone()).sum::<(), _>().backward();
            eprintln!("checking {kind} pooling");
            crate::assert_close!(
                grads.get(&x_tensor).as_vec(),
                numerical_gradient(loss, &x),
                1e-7
            );
        }
    }

    /// With ties the CPU kernel follows PyTorch: most windows of this fixture hold their
    /// maximum more than once, and PyTorch gives each window's gradient to the first of them.
    #[test]
    fn cpu_kernel_matches_pytorch_at_ties() {
        check_fixture::<2, 2, 7, 6, 3, 5, f32, Cpu>(&Cpu::default(), fixture!("ties"), 1e-5);
        check_fixture::<2, 2, 7, 6, 3, 5, f64, Cpu>(&Cpu::default(), fixture!("ties"), 1e-10);
    }

    /// The smallest tie: the first maximum in row-major order takes the whole gradient.
    #[test]
    fn cpu_max_gradient_goes_to_the_first_tied_element() {
        let dev = Cpu::default();
        let x: Tensor<Rank4<1, 1, 2, 2>, f32, _> = dev.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]);
        let geometry = Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        };
        let y: Tensor<Rank4<1, 1, 1, 1>, f32, _, _> = max_pool2d(x.leaky_trace(), geometry);
        assert_eq!(y.array(), [[[[1.0]]]]);
        let grads = (y * 3.0).sum::<(), _>().backward();
        assert_eq!(grads.get(&x).array(), [[[[0.0, 3.0], [0.0, 0.0]]]]);
    }

    /// Pins down the documented difference of the reference (the kernel on CUDA) from PyTorch:
    /// with a tie, dfdx's `max` passes the window's whole gradient to each tied element.
    #[test]
    fn reference_max_gradient_goes_to_every_tied_element() {
        let dev = crate::test_device!();
        let x: Tensor<Rank4<1, 1, 2, 2>, f32, _> = dev.tensor([[[[1.0, 1.0], [0.0, 1.0]]]]);
        let geometry = Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        };
        let y: Tensor<Rank4<1, 1, 1, 1>, f32, _, _> =
            reference::try_pool2d(x.leaky_trace(), geometry, Reduction::Max).unwrap();
        assert_eq!(y.array(), [[[[1.0]]]]);
        let grads = (y * 3.0).sum::<(), _>().backward();
        assert_eq!(grads.get(&x).array(), [[[[3.0, 3.0], [0.0, 3.0]]]]);
    }

    /// The CPU kernel against the reference (dfdx ops) on the CPU: output and gradient of
    /// `loss = Σ pool(x)·g` for max and average pooling. Distinct values, so no ties, where the
    /// two deliberately differ.
    fn check_cpu_kernel_against_reference<
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O_H: usize,
        const O_W: usize,
        E: Element,
    >(
        batch: B,
        geometry: Pool2dGeometry,
        tolerance: f64,
    ) where
        Cpu: Device<E>,
    {
        let dev = Cpu::default();
        let in_len = batch.size() * C * H * W;
        let out_len = batch.size() * C * O_H * O_W;
        let x = dev.tensor_from_vec(
            cast::<E>(&distinct_values(in_len, in_len as u64)),
            (batch, Const::<C>, Const::<H>, Const::<W>),
        );
        let g = dev.tensor_from_vec(
            cast::<E>(&random_values(out_len, out_len as u64)),
            (batch, Const::<C>, Const::<O_H>, Const::<O_W>),
        );
        for reduction in [Reduction::Max, Reduction::Mean] {
            let fast: Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, Cpu, _> =
                Cpu::try_pool2d_kernel(x.leaky_trace(), geometry, reduction).unwrap();
            let slow: Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, Cpu, _> =
                reference::try_pool2d(x.leaky_trace(), geometry, reduction).unwrap();
            eprintln!("{reduction:?} pooling, {H}×{W} input, {geometry:?}");
            crate::assert_close!(to_f64(&fast.as_vec()), to_f64(&slow.as_vec()), tolerance);
            let fast_grads = (fast * g.clone()).sum::<(), _>().backward();
            let slow_grads = (slow * g.clone()).sum::<(), _>().backward();
            crate::assert_close!(
                to_f64(&fast_grads.get(&x).as_vec()),
                to_f64(&slow_grads.get(&x).as_vec()),
                tolerance
            );
        }
    }

    /// One test per geometry: `f32` and `f64`, batch size as a `Const` and as a `usize`.
    /// Parameters: channels, input height and width, window, stride.
    macro_rules! cpu_kernel_matches_reference {
        ($($test:ident: [$c:literal, $h:literal, $w:literal], window [$kh:literal, $kw:literal],
            stride [$sh:literal, $sw:literal];)*) => {$(
            #[test]
            fn $test() {
                const O_H: usize = ($h - $kh) / $sh + 1;
                const O_W: usize = ($w - $kw) / $sw + 1;
                let geometry = Pool2dGeometry {
                    window: [$kh, $kw],
                    stride: [$sh, $sw],
                };
                check_cpu_kernel_against_reference::<_, $c, $h, $w, O_H, O_W, f32>(
                    Const::<2>, geometry, 1e-6,
                );
                check_cpu_kernel_against_reference::<_, $c, $h, $w, O_H, O_W, f32>(
                    3, geometry, 1e-6,
                );
                check_cpu_kernel_against_reference::<_, $c, $h, $w, O_H, O_W, f64>(
                    Const::<2>, geometry, 1e-12,
                );
                check_cpu_kernel_against_reference::<_, $c, $h, $w, O_H, O_W, f64>(
                    3, geometry, 1e-12,
                );
            }
        )*};
    }

    // Geometries drawn once at random (seeded): window and stride 1–3 along each axis, inputs
    // 3–9 along each axis, 1–3 channels; most leave rows or columns over. Then the classic 2×2
    // window at stride 2, and a batch of many small planes, which rayon splits into tasks of
    // several planes each.
    cpu_kernel_matches_reference! {
        cpu_kernel_random_geometry_1: [3, 3, 3], window [2, 1], stride [2, 3];
        cpu_kernel_random_geometry_2: [1, 7, 4], window [1, 2], stride [3, 1];
        cpu_kernel_random_geometry_3: [3, 4, 3], window [1, 2], stride [2, 1];
        cpu_kernel_random_geometry_4: [3, 4, 8], window [2, 1], stride [3, 1];
        cpu_kernel_random_geometry_5: [1, 6, 3], window [3, 1], stride [3, 3];
        cpu_kernel_random_geometry_6: [3, 6, 4], window [1, 3], stride [1, 2];
        cpu_kernel_random_geometry_7: [1, 9, 8], window [1, 3], stride [2, 3];
        cpu_kernel_random_geometry_8: [1, 4, 5], window [1, 3], stride [3, 3];
        cpu_kernel_random_geometry_9: [1, 3, 7], window [3, 3], stride [1, 3];
        cpu_kernel_random_geometry_10: [2, 9, 5], window [2, 3], stride [3, 2];
        cpu_kernel_random_geometry_11: [1, 4, 9], window [3, 2], stride [2, 2];
        cpu_kernel_random_geometry_12: [2, 5, 7], window [3, 1], stride [1, 3];
        cpu_kernel_window2_stride2: [3, 8, 6], window [2, 2], stride [2, 2];
        cpu_kernel_many_planes: [300, 6, 5], window [2, 2], stride [1, 2];
    }

    /// The kernel adds to a gradient that other uses of the input already hold, rather than
    /// overwriting it: `loss = Σ pool(x)·g + Σ x·h` has gradient `∂pool + h`.
    #[test]
    fn cpu_kernel_accumulates_into_the_input_gradient() {
        type X = Rank4<2, 2, 5, 4>;
        type Y = Rank4<2, 2, 2, 2>;
        let dev = Cpu::default();
        let geometry = Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        };
        let x: Tensor<X, f64, _> = dev.tensor_from_vec(distinct_values(80, 1), X::default());
        let h: Tensor<X, f64, _> = dev.tensor_from_vec(random_values(80, 2), X::default());
        let g: Tensor<Y, f64, _> = dev.tensor_from_vec(random_values(16, 3), Y::default());
        for reduction in [Reduction::Max, Reduction::Mean] {
            let gradient = |y: Tensor<Y, f64, Cpu, _>, x_again: Tensor<X, f64, Cpu, _>| {
                let loss = (y * g.clone()).sum::<(), _>() + (x_again * h.clone()).sum::<(), _>();
                loss.backward().get(&x).as_vec()
            };
            let x_traced = x.leaky_trace();
            let (x_taped, x_again) = (x_traced.with_empty_tape(), x_traced);
            let fast = gradient(
                Cpu::try_pool2d_kernel(x_taped, geometry, reduction).unwrap(),
                x_again,
            );
            let x_traced = x.leaky_trace();
            let (x_taped, x_again) = (x_traced.with_empty_tape(), x_traced);
            let slow = gradient(
                reference::try_pool2d(x_taped, geometry, reduction).unwrap(),
                x_again,
            );
            crate::assert_close!(fast, slow, 1e-12);
        }
    }

    /// A strided input (here a transposed view) is read in its logical order.
    #[test]
    fn cpu_kernel_reads_a_permuted_input() {
        let dev = Cpu::default();
        let stored: Tensor<Rank4<2, 3, 7, 5>, f64, _> =
            dev.tensor_from_vec(distinct_values(210, 4), Default::default());
        let g: Tensor<Rank4<2, 3, 2, 3>, f64, _> =
            dev.tensor_from_vec(random_values(36, 5), Default::default());
        let geometry = Pool2dGeometry {
            window: [2, 3],
            stride: [2, 2],
        };
        let run = |fast: bool| {
            let x = stored
                .leaky_trace()
                .permute::<Rank4<2, 3, 5, 7>, Axes4<0, 1, 3, 2>>();
            let y: Tensor<Rank4<2, 3, 2, 3>, f64, _, _> = if fast {
                max_pool2d(x, geometry)
            } else {
                reference::try_pool2d(x, geometry, Reduction::Max).unwrap()
            };
            let out = y.as_vec();
            let grads = (y * g.clone()).sum::<(), _>().backward();
            (out, grads.get(&stored).as_vec())
        };
        let (fast, slow) = (run(true), run(false));
        assert_eq!(fast.0, slow.0);
        assert_eq!(fast.1, slow.1);
    }

    #[test]
    #[should_panic(
        expected = "max_pool2d: the output width is ⌊(5 − 2 + 2·0)/2⌋ + 1 = 2, but \
                               the output type says 3"
    )]
    fn rejects_an_output_size_that_does_not_follow_from_the_geometry() {
        let dev = crate::test_device!();
        let x: Tensor<Rank4<1, 1, 4, 5>, f32, _> = dev.zeros();
        let geometry = Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        };
        let _: Tensor<Rank4<1, 1, 2, 3>, f32, _> = max_pool2d(x, geometry);
    }

    #[test]
    #[should_panic(expected = "avg_pool2d: the stride must be at least 1")]
    fn rejects_a_zero_stride() {
        let dev = crate::test_device!();
        let x: Tensor<Rank4<1, 1, 4, 4>, f32, _> = dev.zeros();
        let geometry = Pool2dGeometry {
            window: [2, 2],
            stride: [0, 2],
        };
        let _: Tensor<Rank4<1, 1, 1, 2>, f32, _> = avg_pool2d(x, geometry);
    }

    #[test]
    #[should_panic(expected = "max_pool2d: the window must be at least 1×1, not 0×2")]
    fn rejects_an_empty_window() {
        let dev = crate::test_device!();
        let x: Tensor<Rank4<1, 1, 4, 4>, f32, _> = dev.zeros();
        let geometry = Pool2dGeometry {
            window: [0, 2],
            stride: [1, 2],
        };
        let _: Tensor<Rank4<1, 1, 5, 2>, f32, _> = max_pool2d(x, geometry);
    }

    /// With a run-time batch size the batch is still pooled example by example.
    #[test]
    fn pools_each_example_separately() {
        let dev = crate::test_device!();
        let batch = 3;
        let x: Tensor<(usize, Const<1>, Const<2>, Const<2>), f64, _> = dev.tensor_from_vec(
            (0..batch * 4).map(|v| v as f64).collect(),
            (batch, Const, Const, Const),
        );
        let geometry = Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        };
        let max: Tensor<(usize, Const<1>, Const<1>, Const<1>), f64, _> =
            max_pool2d(x.clone(), geometry);
        let avg: Tensor<(usize, Const<1>, Const<1>, Const<1>), f64, _> = avg_pool2d(x, geometry);
        assert_eq!(max.as_vec(), [3.0, 7.0, 11.0]);
        assert_eq!(avg.as_vec(), [1.5, 5.5, 9.5]);
        assert_eq!(max.shape().0.size(), batch);
    }
}
