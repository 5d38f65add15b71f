//! Output sizes of convolution and pooling layers, at run time and as types.
//!
//! The [`network!`](crate::network!) macro does this arithmetic at compile time for a declared
//! network. This module offers the same arithmetic, with the same error messages, to code that
//! builds shapes itself:
//!
//! - functions on `usize` ([`conv_output_size`], [`pool_output_size`], their `_exact`
//!   variants, [`same_padding`]), which are `const fn`, so a constant computed with them is
//!   checked when the program compiles;
//! - [`type_level`]: the same formulas on [`typenum`] numbers, for generic code.
//!
//! # The formulas
//!
//! For one axis (height or width; they are independent) of an input of size `w`, a kernel or
//! window of size `f`, stride `s` and zero padding `p` at each end:
//!
//! | layer | output size | PyTorch |
//! |---|---|---|
//! | convolution | `⌊(w − f + 2p)/s⌋ + 1` | `nn.Conv2d(c_in, c_out, f, s, p)` |
//! | max / average pooling | `⌊(w − f)/s⌋ + 1` | `nn.MaxPool2d(f, s)`, `nn.AvgPool2d(f, s)` |
//!
//! The floor drops the rows or columns that no window reaches, as PyTorch does
//! (`ceil_mode=False`, dilation 1). The *exact-fit* variants (`#[exact_fit]` in the macro)
//! reject such a layer instead: `w − f + 2p` must be a multiple of `s`.
//!
//! ```
//! use typednet::shape::{conv_output_size, conv_output_size_exact, pool_output_size};
//!
//! assert_eq!(conv_output_size(227, 11, 4, 0), Ok(55)); // AlexNet conv1
//! assert_eq!(conv_output_size(224, 11, 4, 0), Ok(54)); // 213/4 rounds down
//! assert_eq!(
//!     conv_output_size_exact(224, 11, 4, 0).unwrap_err().to_string(),
//!     "(224 − 11 + 2·0)/4 + 1 = 54.25 is not a whole number; \
//!      to fit exactly, use kernel 12 or stride 3"
//! );
//! assert_eq!(pool_output_size(28, 2, 2), Ok(14)); // LeNet pooling
//! ```
//!
//! The arithmetic lives in one crate, `typednet-arith` (`arith/`), which the macro uses to infer
//! shapes and this module re-exports: the two cannot drift apart, and both are tested against
//! output sizes recorded from PyTorch (`tools/pytorch_output_sizes.py`).

use core::fmt;

use typednet_arith as arith;

pub mod type_level;

pub use arith::{
    arithmetic, exact_fit_fixes, window_output, AxisError, ExactFitFixes, FitMode,
    SamePaddingError, WindowAxis, WindowKind,
};

/// Why a layer's output size cannot be computed.
///
/// Its [`Display`](fmt::Display) is the message the [`network!`](crate::network!) macro gives
/// for the same mistake, e.g. `kernel 5 is larger than the padded input 3 + 2·0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShapeError {
    /// A convolution's kernel does not slide over its input along this axis.
    Conv(AxisError),
    /// A pooling window does not slide over its input along this axis.
    Pool(AxisError),
    /// "Same" padding was asked for where there is none.
    SamePadding(SamePaddingError),
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::Conv(error) => f.write_str(&error.message(WindowKind::Conv)),
            ShapeError::Pool(error) => f.write_str(&error.message(WindowKind::Pool)),
            ShapeError::SamePadding(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Output size of a convolution along one axis: `⌊(input − kernel + 2·padding)/stride⌋ + 1`.
///
/// PyTorch: the matching dimension of `nn.Conv2d(c_in, c_out, kernel, stride, padding)(x)`.
///
/// # Errors
/// A zero input, kernel or stride, a kernel larger than the padded input, and a padded input
/// that overflows `usize`.
///
/// ```
/// # use typednet::shape::conv_output_size;
/// assert_eq!(conv_output_size(28, 5, 1, 2), Ok(28)); // LeNet conv1
/// assert_eq!(
///     conv_output_size(3, 5, 1, 0).unwrap_err().to_string(),
///     "kernel 5 is larger than the padded input 3 + 2·0"
/// );
///
/// // A `const fn`: a constant computed with it is checked by the compiler.
/// const OUT: usize = match conv_output_size(227, 11, 4, 0) {
///     Ok(size) => size,
///     Err(_) => panic!("conv1 does not fit its input"),
/// };
/// let _: [f32; OUT] = [0.0; 55];
/// ```
pub const fn conv_output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize, ShapeError> {
    let axis = WindowAxis {
        input,
        kernel,
        stride,
        padding,
    };
    match window_output(&axis, FitMode::Floor) {
        Ok(size) => Ok(size),
        Err(error) => Err(ShapeError::Conv(error)),
    }
}

/// Output size of a convolution along one axis whose kernel positions must cover the padded
/// input exactly: `(input − kernel + 2·padding)/stride + 1` when the division leaves no
/// remainder.
///
/// Where it succeeds it equals [`conv_output_size`] (and PyTorch).
///
/// # Errors
/// Those of [`conv_output_size`], and [`AxisError::Inexact`] when the division has a remainder.
///
/// ```
/// # use typednet::shape::conv_output_size_exact;
/// assert_eq!(conv_output_size_exact(227, 11, 4, 0), Ok(55));
/// assert!(conv_output_size_exact(224, 11, 4, 0).is_err());
/// ```
pub const fn conv_output_size_exact(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize, ShapeError> {
    let axis = WindowAxis {
        input,
        kernel,
        stride,
        padding,
    };
    match window_output(&axis, FitMode::Exact) {
        Ok(size) => Ok(size),
        Err(error) => Err(ShapeError::Conv(error)),
    }
}

/// Output size of a max or average pooling layer along one axis:
/// `⌊(input − window)/stride⌋ + 1`.
///
/// PyTorch: the matching dimension of `nn.MaxPool2d(window, stride)(x)` or
/// `nn.AvgPool2d(window, stride)(x)` (no padding, `ceil_mode=False`).
///
/// # Errors
/// A zero input, window or stride, and a window larger than the input.
///
/// ```
/// # use typednet::shape::pool_output_size;
/// assert_eq!(pool_output_size(55, 3, 2), Ok(27)); // AlexNet's overlapping pooling
/// assert_eq!(
///     pool_output_size(3, 5, 1).unwrap_err().to_string(),
///     "window 5 is larger than the input 3"
/// );
/// ```
pub const fn pool_output_size(
    input: usize,
    window: usize,
    stride: usize,
) -> Result<usize, ShapeError> {
    let axis = WindowAxis {
        input,
        kernel: window,
        stride,
        padding: 0,
    };
    match window_output(&axis, FitMode::Floor) {
        Ok(size) => Ok(size),
        Err(error) => Err(ShapeError::Pool(error)),
    }
}

/// Output size of a pooling layer along one axis whose windows must cover the input exactly:
/// `(input − window)/stride + 1` when the division leaves no remainder.
///
/// # Errors
/// Those of [`pool_output_size`], and [`AxisError::Inexact`] when the division has a remainder.
///
/// ```
/// # use typednet::shape::pool_output_size_exact;
/// assert_eq!(pool_output_size_exact(28, 2, 2), Ok(14));
/// assert_eq!(
///     pool_output_size_exact(7, 2, 2).unwrap_err().to_string(),
///     "(7 − 2)/2 + 1 = 3.5 is not a whole number; to fit exactly, use window 3 or stride 1"
/// );
/// ```
pub const fn pool_output_size_exact(
    input: usize,
    window: usize,
    stride: usize,
) -> Result<usize, ShapeError> {
    let axis = WindowAxis {
        input,
        kernel: window,
        stride,
        padding: 0,
    };
    match window_output(&axis, FitMode::Exact) {
        Ok(size) => Ok(size),
        Err(error) => Err(ShapeError::Pool(error)),
    }
}

/// The padding that keeps a convolution's output size equal to its input size:
/// `(kernel − 1)/2`.
///
/// PyTorch: `nn.Conv2d(…, padding='same')`, which also requires stride 1. PyTorch pads an even
/// kernel unevenly (one more zero after than before); padding here is the same at both ends,
/// so an even kernel is an error.
///
/// # Errors
/// A zero kernel, a stride other than 1, or an even kernel.
///
/// ```
/// # use typednet::shape::{conv_output_size, same_padding};
/// let padding = same_padding(5, 1).unwrap();
/// assert_eq!(padding, 2);
/// assert_eq!(conv_output_size(28, 5, 1, padding), Ok(28));
/// assert!(same_padding(4, 1).is_err());
/// ```
pub const fn same_padding(kernel: usize, stride: usize) -> Result<usize, ShapeError> {
    match arith::same_padding(kernel, stride) {
        Ok(padding) => Ok(padding),
        Err(error) => Err(ShapeError::SamePadding(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_functions_wrap_the_shared_arithmetic() {
        assert_eq!(conv_output_size(224, 7, 2, 3), Ok(112));
        assert_eq!(conv_output_size_exact(28, 5, 1, 2), Ok(28));
        assert_eq!(pool_output_size(14, 2, 2), Ok(7));
        assert_eq!(pool_output_size_exact(28, 2, 2), Ok(14));
        assert_eq!(same_padding(3, 1), Ok(1));
    }

    #[test]
    fn errors_name_the_layer_kind() {
        assert_eq!(
            conv_output_size(4, 0, 1, 0).unwrap_err().to_string(),
            "kernel size must be at least 1, found 0"
        );
        assert_eq!(
            pool_output_size(4, 0, 1).unwrap_err().to_string(),
            "window size must be at least 1, found 0"
        );
        assert_eq!(
            conv_output_size(4, 2, 0, 0),
            Err(ShapeError::Conv(AxisError::ZeroStride))
        );
        assert_eq!(
            same_padding(3, 2).unwrap_err().to_string(),
            "same padding needs stride 1 (as PyTorch's padding='same' does), found stride 2"
        );
        let max = usize::MAX;
        assert_eq!(
            conv_output_size(3, 3, 1, max).unwrap_err().to_string(),
            format!("the padded input 3 + 2·{max} does not fit in a usize (at most {max})")
        );
    }

    #[test]
    fn shape_error_is_a_std_error() {
        let error: Box<dyn std::error::Error> = Box::new(pool_output_size(2, 3, 1).unwrap_err());
        assert_eq!(error.to_string(), "window 3 is larger than the input 2");
    }
}
