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

/// Reads a fixture of named arrays, one `name v v v …` line each (`#` lines are comments), as
/// the reference scripts under `tools/` write them; panics naming the file when it is missing
/// or a value does not parse.
pub fn named_arrays(path: &str) -> std::collections::HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.split(' ');
            let name = fields.next().unwrap_or_default().to_string();
            let values = fields
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|e| panic!("{path}: {name}: {v:?}: {e}"))
                })
                .collect();
            (name, values)
        })
        .collect()
}
