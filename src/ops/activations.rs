//! Element-wise nonlinearities over slices, in place, and their derivatives from the outputs:
//! what the recurrent cells' gate passes and the linear layer's fused activation use.
//!
//! For `f32`, σ and tanh run a polynomial `exp` (Cephes' `expf`: range reduction by `ln 2`, a
//! degree-5 polynomial, the power of two written into the exponent bits) that LLVM vectorises;
//! on x86-64 further copies are compiled with AVX2 and FMA and with AVX-512 (σ and tanh, about
//! twice as fast in 512-bit vectors) and chosen at run time, as the convolution kernel does.
//! Within `1e-6` of the library functions, relative to 1, which is all a gate needs; `f64` (and
//! any other float) keeps the library's `exp` and `tanh`.

use rayon::prelude::*;

use crate::gemm::{as_f32, as_f32_mut};
use crate::network::Element;

/// `v ← σ(v)`.
pub(crate) fn sigmoid_in_place<E: Element>(v: &mut [E]) {
    if let Some(v) = as_f32_mut(v) {
        f32_dispatch(v, Function::Sigmoid);
    } else {
        for x in v {
            *x = E::one() / (E::one() + (-*x).exp());
        }
    }
}

/// `v ← tanh(v)`.
pub(crate) fn tanh_in_place<E: Element>(v: &mut [E]) {
    if let Some(v) = as_f32_mut(v) {
        f32_dispatch(v, Function::Tanh);
    } else {
        for x in v {
            *x = x.tanh();
        }
    }
}

/// An element-wise nonlinearity, applied to a whole slice by [`Function::apply`] and
/// differentiated by [`Function::backward`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Function {
    /// `max(0, x)`; derivative 1 where the output is positive, else 0 (PyTorch's choice at 0).
    Relu,
    /// `x` for `x > 0`, `slope·x` below, for a slope in `[0, 1]` (so that the output has the
    /// input's sign); derivative 1 where the output is positive, else `slope` (PyTorch's).
    LeakyRelu(f64),
    /// `1 / (1 + e^{−x})`; derivative `y(1 − y)`.
    Sigmoid,
    /// `tanh x`; derivative `1 − y²`.
    Tanh,
}

use crate::parallel::{CHUNK, PARALLEL_LENGTH};

impl Function {
    /// `v ← f(v)`.
    pub(crate) fn apply<E: Element>(self, v: &mut [E]) {
        match self {
            Function::Relu => {
                for_chunks_mut(v, |chunk| {
                    for x in chunk {
                        // `max` would turn NaN into 0; this keeps it, as PyTorch does. Written
                        // as a select on every element, which LLVM vectorises: a conditional
                        // store compiled to a branch, mispredicted on half of real activations
                        // (it took half of LeNet-5's inference).
                        *x = if *x <= E::zero() { E::zero() } else { *x };
                    }
                });
            }
            Function::LeakyRelu(slope) => {
                let slope = E::from_f64(slope).unwrap_or_else(E::zero);
                for_chunks_mut(v, |chunk| {
                    for x in chunk {
                        *x = if *x < E::zero() { *x * slope } else { *x };
                    }
                });
            }
            Function::Sigmoid => for_chunks_mut(v, sigmoid_in_place),
            Function::Tanh => for_chunks_mut(v, tanh_in_place),
        }
    }

    /// `∂x = ∂y ⊙ f′(x)`, with `f′` written in terms of the output `y = f(x)`: the chain rule
    /// through the activation, into `grad_x` (overwritten).
    pub(crate) fn backward<E: Element>(self, y: &[E], grad_y: &[E], grad_x: &mut [E]) {
        assert!(y.len() == grad_y.len() && y.len() == grad_x.len());
        if let (Some(y), Some(grad_y), Some(grad_x)) =
            (as_f32(y), as_f32(grad_y), as_f32_mut(grad_x))
        {
            for_chunk_triples(y, grad_y, grad_x, |y, g, out| {
                derivative_f32(self, y, g, out)
            });
            return;
        }
        for ((dx, &y), &g) in grad_x.iter_mut().zip(y).zip(grad_y) {
            *dx = match self {
                Function::Relu | Function::LeakyRelu(_) if y > E::zero() => g,
                Function::Relu => E::zero(),
                Function::LeakyRelu(slope) => g * E::from_f64(slope).unwrap_or_else(E::zero),
                Function::Sigmoid => g * y * (E::one() - y),
                Function::Tanh => g * (E::one() - y * y),
            };
        }
    }
}

/// Runs `f` over `v`, in pieces on the thread pool when `v` is long.
fn for_chunks_mut<E: Element>(v: &mut [E], f: impl Fn(&mut [E]) + Sync) {
    if v.len() < PARALLEL_LENGTH {
        f(v);
    } else {
        v.par_chunks_mut(CHUNK).for_each(&f);
    }
}

fn for_chunk_triples(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) {
    if out.len() < PARALLEL_LENGTH {
        f(a, b, out);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(out, (a, b))| f(a, b, out));
    }
}

fn derivative_f32(function: Function, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { derivative_avx2(function, y, grad_y, grad_x) };
        return;
    }
    derivative(function, y, grad_y, grad_x);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn derivative_avx2(function: Function, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    derivative(function, y, grad_y, grad_x)
}

#[inline(always)]
fn derivative(function: Function, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    let triples = grad_x.iter_mut().zip(y).zip(grad_y);
    match function {
        Function::Relu => {
            for ((dx, &y), &g) in triples {
                *dx = if y > 0.0 { g } else { 0.0 };
            }
        }
        Function::LeakyRelu(slope) => {
            let slope = slope as f32;
            for ((dx, &y), &g) in triples {
                *dx = if y > 0.0 { g } else { slope * g };
            }
        }
        Function::Sigmoid => {
            for ((dx, &y), &g) in triples {
                *dx = g * (y * (1.0 - y));
            }
        }
        Function::Tanh => {
            for ((dx, &y), &g) in triples {
                *dx = g * (1.0 - y * y);
            }
        }
    }
}

fn f32_dispatch(v: &mut [f32], function: Function) {
    debug_assert!(
        matches!(function, Function::Sigmoid | Function::Tanh),
        "only σ and tanh take the polynomial"
    );
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512, AVX2 and FMA.
            unsafe { apply_avx512(v, function) };
        } else {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { apply_avx2(v, function) };
        }
        return;
    }
    apply_f32(v, function);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_avx2(v: &mut [f32], function: Function) {
    apply_f32(v, function)
}

/// [`apply_f32`] in 512-bit vectors: the same operations on each element (Rust does not fuse
/// a multiply and an add by itself), so the same bits as the AVX2 copy (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn apply_avx512(v: &mut [f32], function: Function) {
    apply_f32(v, function)
}

#[inline(always)]
fn apply_f32(v: &mut [f32], function: Function) {
    match function {
        Function::Sigmoid => {
            for x in v {
                *x = 1.0 / (1.0 + exp_f32(-*x));
            }
        }
        Function::Tanh => {
            // tanh x = 2σ(2x) − 1: absolute error of a few 1e-8 near 0.
            for x in v {
                *x = 2.0 / (1.0 + exp_f32(-2.0 * *x)) - 1.0;
            }
        }
        Function::Relu | Function::LeakyRelu(_) => {}
    }
}

/// `eˣ` for `f32`, Cephes' `expf`, branch-free so that it vectorises. Inputs are clamped to
/// `[−87, 88]`, where the result is a normal number (σ and tanh saturate long before).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer, kept in the low bits of the mantissa.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let n = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    y * f32::from_bits(((n + 127) as u32) << 23)
}

/// `log(1 + e)` for `e ∈ [0, 1]` (the softplus of a non-positive number, `e = e^{−|y|}`), in
/// `f32`, branch-free so that it vectorises: Cephes' `logf` polynomial on `u = 1 + e` (halved
/// above √2, so that its argument `u − 1` stays within ±0.42), then corrected for the rounding
/// of `1 + e` by the factor `e / (u − 1)`, which keeps tiny `e` exact (`log(1 + e) ≈ e`).
/// Within `2e-7` of the library's `ln_1p` on `[0, 1]`.
#[inline(always)]
pub(crate) fn ln_1p_unit_f32(e: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let u = 1.0 + e;
    let halve = u > core::f32::consts::SQRT_2;
    let k = if halve { 1.0 } else { 0.0 };
    let x = if halve { 0.5 * u } else { u } - 1.0;
    let z = x * x;
    let mut p = 7.037_683_6e-2_f32;
    p = p * x - 1.151_461e-1;
    p = p * x + 1.167_699_9e-1;
    p = p * x - 1.242_014_1e-1;
    p = p * x + 1.424_932_3e-1;
    p = p * x - 1.666_805_8e-1;
    p = p * x + 2.000_071_4e-1;
    p = p * x - 2.499_999_4e-1;
    p = p * x + 3.333_333e-1;
    let ln_u = x + (x * z * p + k * LN2_LO - 0.5 * z) + k * LN2_HI;
    if u == 1.0 {
        e
    } else {
        ln_u * (e / (u - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 512-bit copy of σ and tanh gives the AVX2 copy's bits, and the portable loop's.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_activations_give_the_avx2_bits() {
        if !(is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma"))
        {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        // Odd length: a vector loop's remainder too.
        let xs: Vec<f32> = (-9001..=9001).map(|i| i as f32 * 0.0123).collect();
        for function in [Function::Sigmoid, Function::Tanh] {
            let (mut wide, mut narrow, mut portable) = (xs.clone(), xs.clone(), xs.clone());
            // SAFETY: the CPU has AVX-512, AVX2 and FMA (checked above).
            unsafe {
                apply_avx512(&mut wide, function);
                apply_avx2(&mut narrow, function);
            }
            apply_f32(&mut portable, function);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&wide), bits(&narrow), "{function:?}");
            assert_eq!(bits(&wide), bits(&portable), "{function:?}");
            assert_ne!(wide, xs);
        }
    }

    #[test]
    fn f32_functions_match_the_library() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.01).collect();
        let mut s = xs.clone();
        sigmoid_in_place(&mut s);
        let mut t = xs.clone();
        tanh_in_place(&mut t);
        for ((x, s), t) in xs.iter().zip(&s).zip(&t) {
            let x = *x as f64;
            assert!(
                (*s as f64 - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6,
                "σ({x})"
            );
            assert!((*t as f64 - x.tanh()).abs() < 1e-6, "tanh({x})");
        }
        for x in [-1e4_f32, -100.0, 100.0, 1e4, f32::MAX, f32::MIN] {
            assert!(exp_f32(x).is_finite());
        }
        for x in [-80.0_f32, -10.0, -1.0, 0.0, 0.5, 1.0, 10.0, 80.0] {
            let relative = (exp_f32(x) as f64 / (x as f64).exp() - 1.0).abs();
            assert!(relative < 1e-6, "exp({x}): {relative}");
        }
    }

    #[test]
    fn ln_1p_matches_the_library_on_the_unit_interval() {
        let mut worst = 0.0f64;
        for i in 0..=1_000_000u32 {
            let e = i as f32 / 1_000_000.0;
            let error = (f64::from(ln_1p_unit_f32(e)) - f64::from(e).ln_1p()).abs();
            worst = worst.max(error);
        }
        for e in [1e-30_f32, 1e-12, 5.9e-8, 6e-8, 1e-7, 1e-4] {
            let relative = (f64::from(ln_1p_unit_f32(e)) / f64::from(e).ln_1p() - 1.0).abs();
            assert!(relative < 1e-6, "log(1 + {e}): relative error {relative}");
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
    }

    /// `apply` and `backward` against the formulas in `f64`, on a slice long enough to be
    /// split between threads, in `f32` (the fast path) and `f64` (the plain loop).
    #[test]
    fn apply_and_backward_match_the_formulas() {
        let n = PARALLEL_LENGTH + 3 * CHUNK + 5;
        let x: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 2001) as f64 / 200.0 - 5.0)
            .collect();
        let g: Vec<f64> = (0..n)
            .map(|i| ((i * 104_729) % 997) as f64 / 500.0 - 1.0)
            .collect();
        for function in [
            Function::Relu,
            Function::LeakyRelu(0.2),
            Function::Sigmoid,
            Function::Tanh,
        ] {
            let exact = |x: f64| match function {
                Function::Relu => x.max(0.0),
                Function::LeakyRelu(slope) => x.max(0.0) + slope * x.min(0.0),
                Function::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                Function::Tanh => x.tanh(),
            };
            let slope = |x: f64| match function {
                Function::Relu => f64::from(u8::from(x > 0.0)),
                Function::LeakyRelu(slope) if x <= 0.0 => slope,
                Function::LeakyRelu(_) => 1.0,
                Function::Sigmoid => exact(x) * (1.0 - exact(x)),
                Function::Tanh => 1.0 - exact(x) * exact(x),
            };
            let mut y32: Vec<f32> = x.iter().map(|&x| x as f32).collect();
            function.apply(&mut y32);
            let mut y64 = x.clone();
            function.apply(&mut y64);
            let g32: Vec<f32> = g.iter().map(|&g| g as f32).collect();
            let mut dx32 = vec![f32::NAN; n];
            function.backward(&y32, &g32, &mut dx32);
            let mut dx64 = vec![f64::NAN; n];
            function.backward(&y64, &g, &mut dx64);
            for i in 0..n {
                let (y, dx) = (exact(x[i]), g[i] * slope(x[i]));
                assert!(
                    (f64::from(y32[i]) - y).abs() < 1e-6,
                    "{function:?}({})",
                    x[i]
                );
                assert!((y64[i] - y).abs() < 1e-12, "{function:?}({}) in f64", x[i]);
                assert!(
                    (f64::from(dx32[i]) - dx).abs() < 1e-6,
                    "{function:?}′({})",
                    x[i]
                );
                assert!(
                    (dx64[i] - dx).abs() < 1e-12,
                    "{function:?}′({}) in f64",
                    x[i]
                );
            }
        }
        // NaN passes through ReLU, as in PyTorch.
        let mut v = [f32::NAN, -1.0];
        Function::Relu.apply(&mut v);
        assert!(v[0].is_nan() && v[1] == 0.0);
    }
}
