//! The fast CPU kernel of [`super::try_conv_transpose2d`]: the conv2d kernel's loops, run
//! backwards, as one custom dfdx op.
//!
//! # Why the conv2d kernel computes it
//! A transposed convolution is the input gradient of a convolution. Take the convolution `conv′`
//! that maps the transposed convolution's *output* (`C_OUT` channels of `O_H × O_W`) to its
//! *input* (`C_IN` channels of `H × W`) with the same kernel, stride and padding: its weight
//! `[C_OUT′, C_IN′, K_H, K_W] = [C_IN, C_OUT, K_H, K_W]` is the transposed convolution's weight
//! as stored, and both sums run over the same `(input cell, kernel cell, output cell)` triples,
//! `s·h + u − p = i` along each axis. Its output size is `⌊(O + 2p − K)/s⌋ + 1 =
//! ⌊((H − 1)·s + q)/s⌋ + 1 = H` since the output padding `q` is smaller than the stride, so
//! `conv′` maps `O_H × O_W` back onto `H × W` exactly. Then, with `∂y` the gradient of the
//! transposed convolution's output:
//!
//! | transposed convolution | `conv′` (`conv2d/cpu_kernel.rs`) |
//! |---|---|
//! | `y = conv_transpose(x) + bias` | `∂L/∂x′` for `∂L/∂y′ = x`, plus the bias |
//! | `∂L/∂x` | `conv′(∂y)`, no bias |
//! | `∂L/∂w` | `∂L/∂w′` for input `x′ = ∂y` and `∂L/∂y′ = x` |
//! | `∂L/∂bias` | `Σ_{b,i,j} ∂y[b, o, i, j]` |
//!
//! So every multiply-add runs in the conv2d kernel's register-tiled loops, on its routes: the
//! forward pass is conv2d's input gradient (at stride > 1 one correlation per stride phase of
//! the output, on channel lanes for wide layers (`conv2d/cpu_kernel/strided_lanes.rs`): a
//! gather, no two tasks write one cell, no scatter-add as in the col2im of `reference.rs`); the backward pass is `conv′`'s weight gradient (the weight lanes or the
//! grid GEMM, else per-example dot products) and `conv′`'s forward pass for `∂L/∂x`
//! ([`add_correlation`]: the channel lanes for wide layers).
//!
//! On the DCGAN-size layer of `benches/conv.rs` (`conv/transpose_64to32_k4s2p1_16x16_b32`:
//! 64→32 channels, 4×4 kernel, stride 2, padding 1, 16×16 → 32×32, batch 32; 0.54 GFLOP
//! forward), 2 threads (`BENCHMARKS.md`): on the Zen 3 (AVX2) machine 3.8 ms forward (0.87×
//! PyTorch's time) and 13.9 ms forward + backward (1.10×, 2026-11-24); on the Zen 5 (AVX-512)
//! machine, with the forward pass on the row loops, 2.1 ms forward (1.22×) and 5.5 ms forward +
//! backward (1.18×), and on the strided channel lanes 1.6 ms (0.97×) and 4.8 ms (1.19×, PyTorch
//! faster in that run too; 2026-11-25).

use crate::ops::host::HostValues;
use crate::parallel::reduction_group_len;
use dfdx::shapes::{Const, Dim, HasShape};
use dfdx::tensor::{Cpu, CpuError, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use rayon::prelude::*;

use super::ConvTranspose2dGeometry;
use crate::layers::ConvTranspose2d;
use crate::network::Element;
use crate::ops::conv2d::cpu_kernel::{
    add_channel_sums, add_correlation, add_into, all_finite, grid_gemm, input_gradient,
    weight_lanes, Buffer, ConvDims, ForwardCorrelation, WeightGradientDots,
};

/// The convolution whose input gradient the transposed convolution is (module docs), in
/// run-time sizes: input `output` (`[O_H, O_W]`, `c_out` channels), output `input` (`[H, W]`,
/// `c_in` channels), same kernel, stride and padding.
///
/// # Panics
/// If that convolution does not map `output` back onto `input`: the caller has checked the
/// sizes against the transposed convolution's formula, which guarantees it.
pub(crate) fn adjoint_dims(
    batch: usize,
    [c_in, c_out]: [usize; 2],
    input: [usize; 2],
    kernel: [usize; 2],
    geometry: ConvTranspose2dGeometry,
    output: [usize; 2],
) -> ConvDims {
    ConvDims::new(
        batch,
        [c_out, c_in],
        output,
        kernel,
        geometry.stride,
        geometry.padding,
    )
    .filter(|dims| dims.output == input)
    .unwrap_or_else(|| {
        panic!(
            "conv_transpose2d kernel: no convolution maps {output:?} back onto {input:?} for \
             {geometry:?}"
        )
    })
}

/// The dfdx op: runs [`forward`] and records [`backward`] on the tape. The caller has checked
/// that `O_H` and `O_W` follow from the geometry.
pub(crate) fn try_conv_transpose2d<
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
    T: Tape<E, Cpu>,
>(
    x: Tensor<(B, Const<C_IN>, Const<H>, Const<W>), E, Cpu, T>,
    layer: &ConvTranspose2d<C_IN, C_OUT, K_H, K_W, E, Cpu>,
    geometry: ConvTranspose2dGeometry,
) -> Result<Tensor<(B, Const<C_OUT>, Const<O_H>, Const<O_W>), E, Cpu, T>, CpuError> {
    let batch = x.shape().0;
    let dims = adjoint_dims(
        batch.size(),
        [C_IN, C_OUT],
        [H, W],
        [K_H, K_W],
        geometry,
        [O_H, O_W],
    );

    // As in conv2d's op: the input read in its logical order, the parameters joining the
    // input's tape.
    let (x, tape) = x.try_contiguous()?.split_tape();
    let (weight, weight_tape) = layer.weight.retaped::<T>().try_contiguous()?.split_tape();
    let (bias, bias_tape) = layer.bias.retaped::<T>().try_contiguous()?.split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);

    // Read where dfdx keeps them (`ops::host`), and kept so for the backward pass.
    let x_values = HostValues::of(&x);
    let weight_values = HostValues::of(&weight);
    let y = forward(&dims, &x_values, &weight_values, &HostValues::of(&bias));
    let y = x
        .device()
        .try_tensor_from_vec(y, (batch, Const, Const, Const))?;

    if T::OWNS_TAPE {
        let (x, weight, bias, out) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Moved out of the gradients (and back at the end) so that the other three can be
            // borrowed mutably in turn without copying it.
            let grad_y = std::mem::take(&mut **grads.get_or_alloc_mut(&out)?);
            let (grad_weight, grad_bias) = backward(
                &dims,
                &x_values,
                &weight_values,
                &grad_y,
                grads.get_or_alloc_mut(&x)?,
            );
            add_into(grads.get_or_alloc_mut(&weight)?, &grad_weight);
            add_into(grads.get_or_alloc_mut(&bias)?, &grad_bias);
            **grads.get_or_alloc_mut(&out)? = grad_y;
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

/// `y = conv_transpose(x, weight) + bias`, `[B, C_OUT, O_H, O_W]` row-major, from `x`
/// (`[B, C_IN, H, W]`) and `weight` (`[C_IN, C_OUT, K_H, K_W]`); `dims` is the
/// [`adjoint_dims`] convolution, whose input the output is.
///
/// The output starts as the bias and receives `conv′`'s input gradient for output gradient `x`.
pub(crate) fn forward<E: Element>(dims: &ConvDims, x: &[E], weight: &[E], bias: &[E]) -> Vec<E> {
    // `conv′`'s output gradient, weight and input.
    assert_eq!(x.len(), dims.batch * dims.c_out * dims.output_plane());
    assert_eq!(weight.len(), dims.c_out * dims.window_len());
    assert_eq!(bias.len(), dims.c_in);
    let plane = dims.input[0] * dims.input[1];
    let mut y = vec![E::zero(); dims.batch * dims.input_image()];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(c, channel)| channel.fill(bias[c % dims.c_in]));
    input_gradient(dims, weight, x, &mut y);
    y
}

/// The backward pass: adds `∂L/∂x` to `grad_x` (`[B, C_IN, H, W]`) and returns
/// `(∂L/∂w, ∂L/∂bias)`, summed over the batch, from `grad_y` (`[B, C_OUT, O_H, O_W]`); `dims`
/// is the [`adjoint_dims`] convolution.
///
/// Where `conv′`'s weight gradient takes the weight lanes or the grid GEMM (`f32`), that runs
/// over the whole batch, and `∂L/∂x` is `conv′`'s forward pass on the route conv2d's forward
/// takes (`add_correlation`: the channel lanes for wide layers, 0.91× the row loops' time on
/// the DCGAN layer of `benches/conv.rs`). Otherwise one task per example, as conv2d's backward
/// pass: it pads and phase-splits the example's `∂y` (`conv′`'s input), correlates it with the
/// filters into the example's `∂L/∂x` (the tiles of channels in parallel too when there are
/// fewer examples than threads), borders the example's `x` with zeros (`conv′`'s output
/// gradient) for the weight gradient's dot products, and adds the weight and bias gradients to
/// sums of its thread's own, added together at the end.
pub(crate) fn backward<E: Element>(
    dims: &ConvDims,
    x: &[E],
    weight: &[E],
    grad_y: &[E],
    grad_x: &mut [E],
) -> (Buffer<E>, Vec<E>) {
    // In `conv′`'s terms: `x` is its output gradient, `grad_y` its input, `grad_x` its output.
    let image_x = dims.c_out * dims.output_plane();
    let image_y = dims.input_image();
    let plane_y = dims.input[0] * dims.input[1];
    assert_eq!(x.len(), dims.batch * image_x);
    assert_eq!(weight.len(), dims.c_out * dims.window_len());
    assert_eq!(grad_x.len(), dims.batch * image_x);
    assert_eq!(grad_y.len(), dims.batch * image_y);
    let dots = WeightGradientDots::new(dims);
    let sums = || {
        (
            Buffer::zeroed(weight.len()),
            vec![E::zero(); dims.c_in],
            // The example's phase-split `∂y` and bordered `x`, reused from one example to the
            // next.
            Buffer::take(dots.input.len()),
            Buffer::take(dots.gradient.len()),
        )
    };
    if grad_x.is_empty() || grad_y.is_empty() {
        // No example, no output channel (no gradient at all), or no input channel (only the
        // bias has a gradient).
        let (grad_weight, mut grad_bias, ..) = sums();
        add_channel_sums(grad_y, plane_y, &mut grad_bias);
        return (grad_weight, grad_bias);
    }
    {
        // `conv′`'s weight gradient with channels in the lanes or as one GEMM (`f32`, finite
        // `∂y`), and its forward pass for `∂L/∂x` on the forward's route.
        let mut grad_weight = Buffer::zeroed(weight.len());
        let lanes = weight_lanes::suits::<E>(dims);
        if lanes {
            weight_lanes::add_weight_gradient(dims, grad_y, x, &mut grad_weight);
        }
        if lanes || grid_gemm::add_weight_gradient(dims, grad_y, x, &mut grad_weight) {
            add_correlation(dims, grad_y, weight, grad_x);
            let mut grad_bias = vec![E::zero(); dims.c_in];
            add_channel_sums(grad_y, plane_y, &mut grad_bias);
            return (grad_weight, grad_bias);
        }
    }
    let correlation = ForwardCorrelation::new(dims, weight);
    // A fixed partition of the batch, summed in order (as in `conv2d`'s backward pass), so
    // that the sums round the same way on every run.
    let group = reduction_group_len(dims.batch);
    let group_sums: Vec<_> = grad_x
        .par_chunks_mut(group * image_x)
        .zip(x.par_chunks(group * image_x))
        .zip(grad_y.par_chunks(group * image_y))
        .map(|((grad_x, x), grad_y)| {
            let (mut grad_weight, mut grad_bias, mut phased, mut padded) = sums();
            for ((grad_x, x), grad_y) in grad_x
                .chunks_mut(image_x)
                .zip(x.chunks(image_x))
                .zip(grad_y.chunks(image_y))
            {
                dots.input.fill(grad_y, &mut phased, false);
                let finite = all_finite(grad_y);
                correlation.example(&phased, grad_x, None);
                dots.gradient.pad(x, &mut padded);
                dots.add_example(&padded, &phased, finite, &mut grad_weight);
                add_channel_sums(grad_y, plane_y, &mut grad_bias);
            }
            (grad_weight, grad_bias)
        })
        .collect();
    let mut group_sums = group_sums.into_iter();
    let (mut grad_weight, mut grad_bias) = group_sums.next().unwrap_or_else(|| {
        let (grad_weight, grad_bias, ..) = sums();
        (grad_weight, grad_bias)
    });
    for (w, b) in group_sums {
        add_into(&mut grad_weight, &w);
        add_into(&mut grad_bias, &b);
    }
    (grad_weight, grad_bias)
}

/// The kernel on run-time sizes: random geometries against the definition computed term by
/// term.
#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use typednet_arith::{transposed_output, TransposedAxis};

    use super::*;
    use crate::ops::conv2d::cpu_kernel::ForwardRoute;
    use crate::ops::conv2d::test_support::{cast, random_values, to_f64};

    /// The sizes of one transposed convolution, as the definition reads them.
    #[derive(Debug, Clone, Copy)]
    struct Sizes {
        batch: usize,
        c_in: usize,
        c_out: usize,
        input: [usize; 2],
        kernel: [usize; 2],
        geometry: ConvTranspose2dGeometry,
        output: [usize; 2],
    }

    impl Sizes {
        fn dims(&self) -> ConvDims {
            adjoint_dims(
                self.batch,
                [self.c_in, self.c_out],
                self.input,
                self.kernel,
                self.geometry,
                self.output,
            )
        }

        fn x_len(&self) -> usize {
            self.batch * self.c_in * self.input[0] * self.input[1]
        }

        fn y_len(&self) -> usize {
            self.batch * self.c_out * self.output[0] * self.output[1]
        }

        fn weight_len(&self) -> usize {
            self.c_in * self.c_out * self.kernel[0] * self.kernel[1]
        }

        /// Every term `(y index, weight index, x index)` of the scatter definition: input cell
        /// `(b, c, h, w)` adds `weight[c, o, u, v] · x` to output cell
        /// `(b, o, s_h·h + u − p_h, s_w·w + v − p_w)` when that lies inside the output.
        fn terms(&self, mut term: impl FnMut(usize, usize, usize)) {
            let [height, width] = self.input;
            let [k_h, k_w] = self.kernel;
            let [o_h, o_w] = self.output;
            let ConvTranspose2dGeometry {
                stride, padding, ..
            } = self.geometry;
            for b in 0..self.batch {
                for c in 0..self.c_in {
                    for h in 0..height {
                        for w in 0..width {
                            for o in 0..self.c_out {
                                for u in 0..k_h {
                                    for v in 0..k_w {
                                        let i = (stride[0] * h + u).checked_sub(padding[0]);
                                        let j = (stride[1] * w + v).checked_sub(padding[1]);
                                        let (Some(i), Some(j)) = (i, j) else {
                                            continue;
                                        };
                                        if i < o_h && j < o_w {
                                            let y = ((b * self.c_out + o) * o_h + i) * o_w + j;
                                            let weight = ((c * self.c_out + o) * k_h + u) * k_w + v;
                                            let x = ((b * self.c_in + c) * height + h) * width + w;
                                            term(y, weight, x);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        fn forward(&self, x: &[f64], weight: &[f64], bias: &[f64]) -> Vec<f64> {
            let plane = self.output[0] * self.output[1];
            let mut y: Vec<f64> = (0..self.y_len())
                .map(|index| bias[index / plane % self.c_out])
                .collect();
            self.terms(|yi, wi, xi| y[yi] += weight[wi] * x[xi]);
            y
        }

        /// `(∂L/∂x, ∂L/∂w, ∂L/∂bias)` for `∂L/∂y = grad_y`.
        fn backward(&self, x: &[f64], weight: &[f64], grad_y: &[f64]) -> [Vec<f64>; 3] {
            let plane = self.output[0] * self.output[1];
            let mut grad_x = vec![0.0; x.len()];
            let mut grad_w = vec![0.0; weight.len()];
            let mut grad_b = vec![0.0; self.c_out];
            self.terms(|yi, wi, xi| {
                grad_x[xi] += weight[wi] * grad_y[yi];
                grad_w[wi] += x[xi] * grad_y[yi];
            });
            for (index, g) in grad_y.iter().enumerate() {
                grad_b[index / plane % self.c_out] += g;
            }
            [grad_x, grad_w, grad_b]
        }
    }

    /// A geometry with every size small but every feature likely: strides 1–3, padding 0–2,
    /// output padding below the stride, non-square inputs and kernels, strides wider than the
    /// kernel, rows shorter and longer than a vector, one channel on either side, channel counts
    /// that leave partial tiles, empty batches.
    fn random_sizes(rng: &mut StdRng) -> Sizes {
        loop {
            let input = [rng.gen_range(1..=7), rng.gen_range(1..=20)];
            let kernel = [rng.gen_range(1..=5), rng.gen_range(1..=5)];
            let stride = [rng.gen_range(1..=3), rng.gen_range(1..=3)];
            let padding = [rng.gen_range(0..=2), rng.gen_range(0..=2)];
            let output_padding = stride.map(|s| rng.gen_range(0..s));
            let axis = |a: usize| TransposedAxis {
                input: input[a],
                kernel: kernel[a],
                stride: stride[a],
                padding: padding[a],
                output_padding: output_padding[a],
            };
            let (Ok(o_h), Ok(o_w)) = (transposed_output(&axis(0)), transposed_output(&axis(1)))
            else {
                continue;
            };
            return Sizes {
                batch: rng.gen_range(0..=3),
                c_in: rng.gen_range(1..=36),
                c_out: rng.gen_range(1..=36),
                input,
                kernel,
                geometry: ConvTranspose2dGeometry {
                    stride,
                    padding,
                    output_padding,
                },
                output: [o_h, o_w],
            };
        }
    }

    /// Runs the kernel in `E` on `f64` values: `(y, ∂L/∂x, ∂L/∂w, ∂L/∂bias)`. The input
    /// gradient starts at `grad_x_before` and must be added to.
    fn kernel<E: Element>(
        sizes: &Sizes,
        [x, weight, bias, grad_y]: [&[f64]; 4],
        grad_x_before: &[f64],
    ) -> [Vec<f64>; 4] {
        let dims = sizes.dims();
        let (x, weight) = (cast::<E>(x), cast::<E>(weight));
        let y = forward(&dims, &x, &weight, &cast::<E>(bias));
        let mut grad_x = cast::<E>(grad_x_before);
        let (grad_w, grad_b) = backward(&dims, &x, &weight, &cast::<E>(grad_y), &mut grad_x);
        [
            to_f64(&y),
            to_f64(&grad_x),
            to_f64(&grad_w),
            to_f64(&grad_b),
        ]
    }

    fn check(sizes: &Sizes, seed: u64) {
        let x = random_values(sizes.x_len(), 4 * seed);
        let weight = random_values(sizes.weight_len(), 4 * seed + 1);
        let bias = random_values(sizes.c_out, 4 * seed + 2);
        let grad_y = random_values(sizes.y_len(), 4 * seed + 3);
        // The input gradient must be added to what is there.
        let before = vec![0.5; x.len()];
        let [mut grad_x, grad_w, grad_b] = sizes.backward(&x, &weight, &grad_y);
        grad_x.iter_mut().for_each(|g| *g += 0.5);
        let expected = [sizes.forward(&x, &weight, &bias), grad_x, grad_w, grad_b];
        let inputs = [&x[..], &weight, &bias, &grad_y];
        for (precision, tolerance, got) in [
            ("f64", 1e-10, kernel::<f64>(sizes, inputs, &before)),
            ("f32", 1e-4, kernel::<f32>(sizes, inputs, &before)),
        ] {
            let names = ["y", "grad_x", "grad_weight", "grad_bias"];
            for ((name, got), expected) in names.iter().zip(&got).zip(&expected) {
                eprintln!("case {seed} ({precision}): {name} of {sizes:?}");
                crate::assert_close!(got, expected, tolerance);
            }
        }
    }

    #[test]
    fn random_geometries_match_the_definition() {
        let mut rng = StdRng::seed_from_u64(17);
        for case in 0..500 {
            check(&random_sizes(&mut rng), case);
        }
    }

    /// The DCGAN generator's layer at a batch of one (the tiles of channels run in parallel)
    /// and of several.
    #[test]
    fn dcgan_layer_matches_the_definition() {
        for batch in [1, 3] {
            let sizes = Sizes {
                batch,
                c_in: 16,
                c_out: 8,
                input: [4, 4],
                kernel: [4, 4],
                geometry: ConvTranspose2dGeometry {
                    stride: [2, 2],
                    padding: [1, 1],
                    output_padding: [0, 0],
                },
                output: [8, 8],
            };
            check(&sizes, batch as u64);
        }
    }

    /// A DCGAN layer wide enough for the channel lanes: `∂L/∂x` (conv′'s forward pass) on
    /// them, the weight gradient on the weight lanes, in both precisions.
    #[test]
    fn a_wide_dcgan_layer_matches_the_definition_on_the_channel_lanes() {
        let sizes = Sizes {
            batch: 3,
            c_in: 32,
            c_out: 16,
            input: [8, 8],
            kernel: [4, 4],
            geometry: ConvTranspose2dGeometry {
                stride: [2, 2],
                padding: [1, 1],
                output_padding: [0, 0],
            },
            output: [16, 16],
        };
        let dims = sizes.dims();
        for route in [
            ForwardRoute::for_dims::<f32>(&dims),
            ForwardRoute::for_dims::<f64>(&dims),
        ] {
            assert_eq!(route, ForwardRoute::ChannelLanes);
        }
        assert!(weight_lanes::suits::<f32>(&dims) && weight_lanes::suits::<f64>(&dims));
        check(&sizes, 7);
    }

    #[test]
    fn the_backward_pass_gives_the_same_bits_with_any_number_of_threads() {
        // `f64` takes the dot-product path, which sums the weight gradient over the examples
        // in groups; 13 examples split unevenly between the threads.
        let sizes = Sizes {
            batch: 13,
            c_in: 4,
            c_out: 3,
            input: [5, 6],
            kernel: [4, 3],
            geometry: ConvTranspose2dGeometry {
                stride: [2, 1],
                padding: [1, 0],
                output_padding: [1, 0],
            },
            output: [11, 8],
        };
        let dims = sizes.dims();
        let x = random_values(sizes.x_len(), 1);
        let weight = random_values(sizes.weight_len(), 2);
        let grad_y = random_values(sizes.y_len(), 3);
        crate::parallel::assert_same_on_threads(&[2, 3, 5, 2, 3], || {
            let mut grad_x = vec![0.0; x.len()];
            let (grad_w, grad_b) = backward(&dims, &x, &weight, &grad_y, &mut grad_x);
            [grad_x, grad_w.to_vec(), grad_b]
                .map(|v| v.iter().map(|g| g.to_bits()).collect::<Vec<_>>())
        });
    }

    /// An infinity in `∂y` at an output cell no input cell reaches (stride wider than the
    /// kernel leaves gaps) must not reach the weight gradient, and leaves `∂L/∂x` finite.
    #[test]
    fn an_unreached_infinity_leaves_the_weight_gradient_finite() {
        // Stride 3 over a 2-wide kernel: output columns 2, 5, 8, … receive nothing.
        let sizes = Sizes {
            batch: 2,
            c_in: 2,
            c_out: 3,
            input: [3, 10],
            kernel: [1, 2],
            geometry: ConvTranspose2dGeometry {
                stride: [1, 3],
                padding: [0, 0],
                output_padding: [0, 1],
            },
            output: [3, 30],
        };
        let x = random_values(sizes.x_len(), 1);
        let weight = random_values(sizes.weight_len(), 2);
        let mut grad_y = random_values(sizes.y_len(), 3);
        grad_y[2] = f64::INFINITY;
        let [grad_x, grad_w, _] = sizes.backward(&x, &weight, &grad_y);
        assert!(grad_w.iter().chain(&grad_x).all(|g| g.is_finite()));
        let bias = vec![0.0; sizes.c_out];
        let [_, got_x, got_w, _] =
            kernel::<f32>(&sizes, [&x, &weight, &bias, &grad_y], &vec![0.0; x.len()]);
        crate::assert_close!(got_x, grad_x, 1e-4);
        crate::assert_close!(got_w, grad_w, 1e-4);
    }
}
