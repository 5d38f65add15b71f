//! The gate nonlinearities over slices: σ and tanh in place, and the slice arithmetic of the
//! gate passes.
//!
//! For `f32` they run a polynomial `exp` (Cephes' `expf`: range reduction by `ln 2`, a
//! degree-5 polynomial, the power of two written into the exponent bits) that LLVM vectorises;
//! on x86-64 a second copy is compiled with AVX2 and FMA and chosen at run time, as the
//! convolution kernel does. Within `1e-6` of the library functions, relative to 1, which is
//! all a gate needs; `f64` (and any other float) keeps the library's `exp` and `tanh`.

use core::any::TypeId;

use crate::network::Element;

/// `v ← σ(v)`.
pub(crate) fn sigmoid_in_place<E: Element>(v: &mut [E]) {
    if let Some(v) = as_f32(v) {
        f32_dispatch(v, Function::Sigmoid);
    } else {
        for x in v {
            *x = E::one() / (E::one() + (-*x).exp());
        }
    }
}

/// `v ← tanh(v)`.
pub(crate) fn tanh_in_place<E: Element>(v: &mut [E]) {
    if let Some(v) = as_f32(v) {
        f32_dispatch(v, Function::Tanh);
    } else {
        for x in v {
            *x = x.tanh();
        }
    }
}

/// `v` as `f32`, when `E` is `f32`.
fn as_f32<E: Element>(v: &mut [E]) -> Option<&mut [f32]> {
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        // SAFETY: `E` is `f32` (same type id), so the slice is a slice of `f32`.
        Some(unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len()) })
    } else {
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Function {
    Sigmoid,
    Tanh,
}

fn f32_dispatch(v: &mut [f32], function: Function) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { apply_avx2(v, function) };
        return;
    }
    apply(v, function);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_avx2(v: &mut [f32], function: Function) {
    apply(v, function)
}

#[inline(always)]
fn apply(v: &mut [f32], function: Function) {
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
    }
}

/// `eˣ` for `f32`, Cephes' `expf`, branch-free so that it vectorises. Inputs are clamped to
/// `[−87, 88]`, where the result is a normal number (σ and tanh saturate long before).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
