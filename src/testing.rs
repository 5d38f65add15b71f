//! Helpers for device-generic tests: the same suite runs on the CPU, and on CUDA when the
//! `cuda` feature is on.

/// The device tests run on: [`dfdx::tensor::Cpu`], or `dfdx::tensor::Cuda` with `--features cuda`.
#[cfg(not(feature = "cuda"))]
pub type TestDevice = dfdx::tensor::Cpu;
/// The device tests run on: [`dfdx::tensor::Cpu`], or `dfdx::tensor::Cuda` with `--features cuda`.
#[cfg(feature = "cuda")]
pub type TestDevice = dfdx::tensor::Cuda;

/// Asserts that two sequences of floats are equal within an absolute-plus-relative tolerance,
/// naming the first index that differs.
#[macro_export]
macro_rules! assert_close {
    ($actual:expr, $expected:expr) => {
        $crate::assert_close!($actual, $expected, 1e-5)
    };
    ($actual:expr, $expected:expr, $tolerance:expr) => {{
        let actual: ::std::vec::Vec<f64> = ($actual).iter().map(|&v| v as f64).collect();
        let expected: ::std::vec::Vec<f64> = ($expected).iter().map(|&v| v as f64).collect();
        let tolerance: f64 = $tolerance as f64;
        assert_eq!(actual.len(), expected.len(), "lengths differ");
        for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
            assert!(
                (a - e).abs() <= tolerance * (1.0 + e.abs()),
                "index {i}: got {a}, expected {e} (tolerance {tolerance})"
            );
        }
    }};
}
