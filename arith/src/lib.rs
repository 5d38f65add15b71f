//! Output-size arithmetic of windowed layers (convolution and pooling), one axis at a time.
//!
//! This crate is the single source of truth for the formula: the `network!` macro uses it to
//! infer shapes, and `typednet::shape` re-exports it so that users get, at run time, the
//! numbers and the messages the macro gives at compile time.
//! It therefore uses nothing but `std`.
//!
//! Every operation is checked: a literal as large as `usize::MAX` must become an error, never a
//! panic (a panicking proc macro shows the user "proc macro panicked" and no span). Messages
//! spell the arithmetic out with exact values, which are computed in `i128`/`u128` where the
//! `usize` result could not hold them.

#![warn(missing_docs)]

use std::fmt;

/// How an output size is rounded when the windows do not tile the (padded) input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FitMode {
    /// PyTorch's rule, `⌊(w − f + 2p)/s⌋ + 1`: rows or columns that no window reaches are
    /// silently dropped.
    Floor,
    /// The windows must cover the padded input exactly: `(w − f + 2p)` must be a multiple of
    /// `s`, else the layer is an error (the rule taught by cs231n).
    Exact,
}

/// The kind of layer a window belongs to, which decides how messages spell the formula:
/// a convolution has a padding term and a *kernel*, a pooling layer has a *window* and no
/// padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// A convolution: `(w − f + 2p)/s + 1`.
    Conv,
    /// A max or average pooling layer: `(w − f)/s + 1`.
    Pool,
}

/// One axis (height or width) of a sliding window over an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowAxis {
    /// Input size `w` along this axis, before padding.
    pub input: usize,
    /// Kernel (or pooling window) size `f` along this axis.
    pub kernel: usize,
    /// Step `s` between two window positions.
    pub stride: usize,
    /// Zeros `p` added at each end of the axis (0 for pooling).
    pub padding: usize,
}

/// Why a window cannot slide over its input along one axis.
///
/// Render it with [`AxisError::message`], which needs to know whether the layer is a
/// convolution or a pooling layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AxisError {
    /// The input has size 0 along this axis.
    ZeroInput,
    /// The kernel (or pooling window) has size 0.
    ZeroKernel,
    /// The stride is 0, so the window would never move.
    ZeroStride,
    /// The kernel does not fit even once into the padded input (PyTorch rejects this too).
    KernelLargerThanInput {
        /// Kernel size `f`.
        kernel: usize,
        /// Input size `w`, before padding.
        input: usize,
        /// Padding `p` at each end.
        padding: usize,
    },
    /// In [`FitMode::Exact`], `(w − f + 2p)` is not a multiple of `s`.
    Inexact(WindowAxis),
    /// The padded input `w + 2p` does not fit in a `usize`.
    Overflow(WindowAxis),
}

impl AxisError {
    /// The message for this error, without a trailing period, e.g.
    /// `kernel 5 is larger than the padded input 3 + 2·0` or
    /// `(224 − 11 + 2·0)/4 + 1 = 54.25 is not a whole number; to fit exactly, use kernel 12 or stride 3`.
    ///
    /// The caller prefixes what the axis belongs to (`conv2 output height …`).
    pub fn message(&self, kind: WindowKind) -> String {
        let kernel_word = kernel_word(kind);
        match *self {
            AxisError::ZeroInput => "input size must be at least 1, found 0".to_owned(),
            AxisError::ZeroKernel => format!("{kernel_word} size must be at least 1, found 0"),
            AxisError::ZeroStride => "stride must be at least 1, found 0".to_owned(),
            AxisError::KernelLargerThanInput {
                kernel,
                input,
                padding,
            } => match kind {
                WindowKind::Conv => {
                    format!("kernel {kernel} is larger than the padded input {input} + 2·{padding}")
                }
                WindowKind::Pool if padding == 0 => {
                    format!("window {kernel} is larger than the input {input}")
                }
                WindowKind::Pool => {
                    format!("window {kernel} is larger than the padded input {input} + 2·{padding}")
                }
            },
            AxisError::Inexact(axis) => {
                let arithmetic = arithmetic(&axis, kind, FitMode::Exact);
                let fixes = exact_fit_fixes(&axis, kind).describe(kind);
                format!("{arithmetic} is not a whole number; to fit exactly, use {fixes}")
            }
            AxisError::Overflow(axis) => format!(
                "the padded input {} + 2·{} does not fit in a usize (at most {})",
                axis.input,
                axis.padding,
                usize::MAX
            ),
        }
    }
}

/// Why "same" padding (output size equal to input size) cannot be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamePaddingError {
    /// The kernel has size 0.
    ZeroKernel,
    /// The stride is not 1; a strided window shrinks its input whatever the padding
    /// (PyTorch's `padding='same'` also requires stride 1).
    StrideNotOne {
        /// The stride given.
        stride: usize,
    },
    /// The kernel is even, so the `f − 1` zeros cannot be split equally between both ends.
    EvenKernel {
        /// The kernel size given.
        kernel: usize,
    },
}

impl fmt::Display for SamePaddingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SamePaddingError::ZeroKernel => f.write_str("kernel size must be at least 1, found 0"),
            SamePaddingError::StrideNotOne { stride } => write!(
                f,
                "same padding needs stride 1 (as PyTorch's padding='same' does), found stride {stride}"
            ),
            SamePaddingError::EvenKernel { kernel } => {
                let total = kernel.saturating_sub(1);
                write!(
                    f,
                    "same padding needs an odd kernel, found kernel {kernel}: PyTorch pads it \
                     unevenly ({} before, {} after), but padding here is the same at both ends; \
                     give padding {} or {} explicitly",
                    total / 2,
                    total - total / 2,
                    total / 2,
                    total - total / 2,
                )
            }
        }
    }
}

impl std::error::Error for SamePaddingError {}

/// The output size of a window sliding over one axis: `⌊(w − f + 2p)/s⌋ + 1` in
/// [`FitMode::Floor`] (PyTorch's `Conv2d`, `MaxPool2d`, `AvgPool2d` with `ceil_mode=False` and
/// dilation 1), and the same number in [`FitMode::Exact`] if the division leaves no remainder.
///
/// Never panics: zero sizes, a kernel larger than the padded input, an inexact fit in exact
/// mode, and arithmetic overflow are all [`AxisError`]s.
pub const fn window_output(axis: &WindowAxis, mode: FitMode) -> Result<usize, AxisError> {
    let WindowAxis {
        input,
        kernel,
        stride,
        padding,
    } = *axis;
    if input == 0 {
        return Err(AxisError::ZeroInput);
    }
    if kernel == 0 {
        return Err(AxisError::ZeroKernel);
    }
    if stride == 0 {
        return Err(AxisError::ZeroStride);
    }
    let padded = match padding.checked_mul(2) {
        Some(both_ends) => input.checked_add(both_ends),
        None => None,
    };
    let Some(padded) = padded else {
        return Err(AxisError::Overflow(*axis));
    };
    // How far the window's first position is from its last one.
    let Some(slide) = padded.checked_sub(kernel) else {
        return Err(AxisError::KernelLargerThanInput {
            kernel,
            input,
            padding,
        });
    };
    if matches!(mode, FitMode::Exact) && !slide.is_multiple_of(stride) {
        return Err(AxisError::Inexact(*axis));
    }
    // Cannot overflow since `kernel ≥ 1`, but checked all the same: the macro must never panic.
    match (slide / stride).checked_add(1) {
        Some(output) => Ok(output),
        None => Err(AxisError::Overflow(*axis)),
    }
}

/// The padding `p` that keeps the output size equal to the input size: `(f − 1)/2`, as
/// PyTorch's `padding='same'`.
///
/// Requires stride 1 (a strided window always shrinks its input) and an odd kernel (an even one
/// would need different padding at the two ends, and padding here is symmetric).
pub const fn same_padding(kernel: usize, stride: usize) -> Result<usize, SamePaddingError> {
    if kernel == 0 {
        return Err(SamePaddingError::ZeroKernel);
    }
    if stride != 1 {
        return Err(SamePaddingError::StrideNotOne { stride });
    }
    if kernel.is_multiple_of(2) {
        return Err(SamePaddingError::EvenKernel { kernel });
    }
    Ok((kernel - 1) / 2)
}

/// The output-size formula with the axis's numbers filled in, and its exact value, for
/// messages and shape tables.
///
/// | kind, mode | example |
/// |---|---|
/// | conv, exact | `(224 − 11 + 2·0)/4 + 1 = 54.25` |
/// | conv, floor | `⌊(224 − 11 + 2·0)/4⌋ + 1 = 54` |
/// | pool, exact | `(28 − 3)/2 + 1 = 13.5` |
///
/// A value that does not terminate within four decimals is cut to three and marked with `…`
/// (`(16 − 0)/3 + 1 = 6.333…`). The value is exact even where the `usize` computation would
/// overflow or go negative; a zero stride reads `… = undefined`.
pub fn arithmetic(axis: &WindowAxis, kind: WindowKind, mode: FitMode) -> String {
    let WindowAxis {
        input,
        kernel,
        stride,
        padding,
    } = *axis;
    let numerator = match kind {
        WindowKind::Conv => format!("{input} − {kernel} + 2·{padding}"),
        // Pooling is usually unpadded; its padding is shown only when there is some.
        WindowKind::Pool if padding == 0 => format!("{input} − {kernel}"),
        WindowKind::Pool => format!("{input} − {kernel} + 2·{padding}"),
    };
    let formula = match mode {
        FitMode::Floor => format!("⌊({numerator})/{stride}⌋ + 1"),
        FitMode::Exact => format!("({numerator})/{stride} + 1"),
    };
    if stride == 0 {
        return format!("{formula} = undefined");
    }
    // Each value is below 2^64, so the padded slide lies within ±2^66: no overflow in i128.
    let slide = input as i128 - kernel as i128 + 2 * padding as i128;
    let stride = stride as i128;
    let value = match mode {
        FitMode::Floor => signed(slide.div_euclid(stride) + 1),
        FitMode::Exact => decimal(slide + stride, stride),
    };
    format!("{formula} = {value}")
}

/// Hyperparameters near a layer's own with which its windows would tile the input exactly,
/// each changed alone; `None` where no nearby value works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExactFitFixes {
    /// The padding nearest to the current one that fits (always `None` for pooling).
    pub padding: Option<usize>,
    /// The kernel (or window) size nearest to the current one that fits.
    pub kernel: Option<usize>,
    /// The stride nearest to the current one that fits.
    pub stride: Option<usize>,
}

impl ExactFitFixes {
    /// The fixes as a phrase, e.g. `padding 1, kernel 4 or stride 1`.
    pub fn describe(&self, kind: WindowKind) -> String {
        let kernel_word = kernel_word(kind);
        let options: Vec<String> = [
            self.padding.map(|p| format!("padding {p}")),
            self.kernel.map(|f| format!("{kernel_word} {f}")),
            self.stride.map(|s| format!("stride {s}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        match options.split_last() {
            None => format!("a different {kernel_word} size or stride"),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// How far from the current value [`exact_fit_fixes`] looks. Realistic layers need a few steps
/// at most; the bound only keeps absurd literals from costing time.
const FIX_SEARCH_LIMIT: u128 = 4096;

/// The nearest padding, kernel size and stride (each changed alone) with which `axis` tiles its
/// padded input exactly, i.e. `(w − f + 2p)` becomes a multiple of `s`; ties go to the larger
/// value (so a 2-wide pooling window is told to grow to 3, not shrink to 1). Used to suggest a
/// fix for [`AxisError::Inexact`].
pub fn exact_fit_fixes(axis: &WindowAxis, kind: WindowKind) -> ExactFitFixes {
    let input = axis.input as u128;
    let kernel = axis.kernel as u128;
    let stride = axis.stride as u128;
    let padding = axis.padding as u128;
    let tiles = |kernel: u128, stride: u128, padding: u128| {
        let padded = input + 2 * padding;
        kernel >= 1 && stride >= 1 && padded >= kernel && (padded - kernel).is_multiple_of(stride)
    };
    let nearest = |current: u128, fits: &dyn Fn(u128) -> bool| {
        (1..=FIX_SEARCH_LIMIT).find_map(|step| {
            let above = Some(current + step).filter(|&v| fits(v));
            let below = current.checked_sub(step).filter(|&v| fits(v));
            above.or(below)
        })
    };
    let to_usize = |value: u128| usize::try_from(value).ok();
    ExactFitFixes {
        padding: match kind {
            WindowKind::Conv => nearest(padding, &|p| tiles(kernel, stride, p)).and_then(to_usize),
            WindowKind::Pool => None,
        },
        kernel: nearest(kernel, &|f| tiles(f, stride, padding)).and_then(to_usize),
        stride: nearest(stride, &|s| tiles(kernel, s, padding))
            .or_else(|| tiles(kernel, 1, padding).then_some(1))
            .and_then(to_usize),
    }
}

/// What the kernel is called in messages about `kind`.
fn kernel_word(kind: WindowKind) -> &'static str {
    match kind {
        WindowKind::Conv => "kernel",
        WindowKind::Pool => "window",
    }
}

/// An integer with a Unicode minus sign, to match the formula's `−`.
fn signed(value: i128) -> String {
    if value < 0 {
        format!("−{}", value.unsigned_abs())
    } else {
        value.to_string()
    }
}

/// `numerator / denominator` in decimal: exact when it terminates within four decimals,
/// otherwise cut to three decimals and followed by `…`. `denominator` must be positive.
fn decimal(numerator: i128, denominator: i128) -> String {
    let sign = if numerator < 0 { "−" } else { "" };
    let numerator = numerator.unsigned_abs();
    let denominator = denominator.unsigned_abs();
    let whole = numerator / denominator;
    let mut remainder = numerator % denominator;
    let mut digits = String::new();
    // `remainder < denominator < 2^67`, so `remainder * 10` cannot overflow a u128.
    while remainder != 0 && digits.len() < 4 {
        remainder *= 10;
        digits.push(char::from(b'0' + (remainder / denominator) as u8));
        remainder %= denominator;
    }
    if remainder != 0 {
        digits.truncate(3);
        digits.push('…');
    }
    if digits.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{digits}")
    }
}

/// One axis of a transposed convolution (PyTorch's `ConvTranspose2d`), which maps each input
/// cell onto a `kernel`-wide window of the output, `stride` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransposedAxis {
    /// Input size `w` along this axis.
    pub input: usize,
    /// Kernel size `f`.
    pub kernel: usize,
    /// Step `s` between the windows of two neighbouring input cells.
    pub stride: usize,
    /// Cells `p` cropped from each end of the full output.
    pub padding: usize,
    /// Cells `q` added at the far end only (to reach sizes a strided conv maps onto the input).
    pub output_padding: usize,
}

/// Why a transposed convolution has no valid output size along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransposedAxisError {
    /// The kernel has size 0.
    ZeroKernel,
    /// The stride is 0.
    ZeroStride,
    /// PyTorch requires `output_padding < stride` (larger values would add cells that no input
    /// reaches).
    OutputPaddingNotBelowStride(TransposedAxis),
    /// `(w − 1)·s − 2p + f + q` is zero or negative: padding crops the whole output.
    NotPositive(TransposedAxis),
    /// An intermediate value does not fit in a `usize`.
    Overflow(TransposedAxis),
}

impl TransposedAxisError {
    /// The message for this error, without a trailing period, e.g.
    /// `(1 − 1)·2 − 2·2 + 3 + 0 = −1 is not a positive size`.
    pub fn message(&self) -> String {
        match *self {
            TransposedAxisError::ZeroKernel => "kernel size must be at least 1, found 0".to_owned(),
            TransposedAxisError::ZeroStride => "stride must be at least 1, found 0".to_owned(),
            TransposedAxisError::OutputPaddingNotBelowStride(a) => format!(
                "output padding {} must be smaller than the stride {} (as in PyTorch)",
                a.output_padding, a.stride
            ),
            TransposedAxisError::NotPositive(a) => format!(
                "{} is not a positive size: the padding crops the whole output",
                transposed_arithmetic(&a)
            ),
            TransposedAxisError::Overflow(a) => {
                format!("{} does not fit in a usize", transposed_arithmetic(&a))
            }
        }
    }
}

/// `(w − 1)·s − 2·p + f + q = value`, computed exactly (in `i128`).
pub fn transposed_arithmetic(a: &TransposedAxis) -> String {
    let value = (a.input as i128 - 1) * a.stride as i128 - 2 * a.padding as i128
        + a.kernel as i128
        + a.output_padding as i128;
    let shown = if value < 0 {
        format!("\u{2212}{}", -value)
    } else {
        value.to_string()
    };
    format!(
        "({} \u{2212} 1)·{} \u{2212} 2·{} + {} + {} = {shown}",
        a.input, a.stride, a.padding, a.kernel, a.output_padding
    )
}

/// Output size of a transposed convolution along one axis, PyTorch's rule:
/// `(w − 1)·s − 2p + f + q`.
///
/// ```
/// use typednet_arith::{transposed_output, TransposedAxis};
/// // DCGAN's generator: 4×4 kernels, stride 2, padding 1 double the size.
/// let axis = TransposedAxis { input: 7, kernel: 4, stride: 2, padding: 1, output_padding: 0 };
/// assert_eq!(transposed_output(&axis), Ok(14));
/// ```
pub const fn transposed_output(axis: &TransposedAxis) -> Result<usize, TransposedAxisError> {
    let a = *axis;
    if a.kernel == 0 {
        return Err(TransposedAxisError::ZeroKernel);
    }
    if a.stride == 0 {
        return Err(TransposedAxisError::ZeroStride);
    }
    if a.output_padding >= a.stride {
        return Err(TransposedAxisError::OutputPaddingNotBelowStride(a));
    }
    let full = match a.input.saturating_sub(1).checked_mul(a.stride) {
        Some(spread) => match spread.checked_add(a.kernel) {
            Some(v) => v.checked_add(a.output_padding),
            None => None,
        },
        None => None,
    };
    let Some(full) = full else {
        return Err(TransposedAxisError::Overflow(a));
    };
    let Some(cropped) = a.padding.checked_mul(2) else {
        return Err(TransposedAxisError::NotPositive(a));
    };
    match full.checked_sub(cropped) {
        Some(out) if out > 0 => Ok(out),
        _ => Err(TransposedAxisError::NotPositive(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(input: usize, kernel: usize, stride: usize, padding: usize) -> WindowAxis {
        WindowAxis {
            input,
            kernel,
            stride,
            padding,
        }
    }

    fn pool(input: usize, window: usize, stride: usize) -> WindowAxis {
        conv(input, window, stride, 0)
    }

    #[test]
    fn floor_matches_pytorch_examples() {
        // AlexNet conv1, LeNet conv1, a 2×2/2 pool, ResNet's stem, VGG's 3×3 same conv.
        assert_eq!(window_output(&conv(227, 11, 4, 0), FitMode::Floor), Ok(55));
        assert_eq!(window_output(&conv(28, 5, 1, 2), FitMode::Floor), Ok(28));
        assert_eq!(window_output(&pool(14, 2, 2), FitMode::Floor), Ok(7));
        assert_eq!(window_output(&conv(224, 7, 2, 3), FitMode::Floor), Ok(112));
        assert_eq!(window_output(&conv(224, 3, 1, 1), FitMode::Floor), Ok(224));
        // The famous typo: 224 does not tile with an 11/4 kernel, PyTorch floors to 54.
        assert_eq!(window_output(&conv(224, 11, 4, 0), FitMode::Floor), Ok(54));
    }

    #[test]
    fn exact_accepts_only_tiling_windows() {
        assert_eq!(window_output(&conv(227, 11, 4, 0), FitMode::Exact), Ok(55));
        assert_eq!(
            window_output(&conv(224, 11, 4, 0), FitMode::Exact),
            Err(AxisError::Inexact(conv(224, 11, 4, 0)))
        );
        // The window may exactly cover the whole input.
        assert_eq!(window_output(&conv(5, 5, 3, 0), FitMode::Exact), Ok(1));
    }

    #[test]
    fn rejects_zero_sizes() {
        assert_eq!(
            window_output(&conv(0, 1, 1, 0), FitMode::Floor),
            Err(AxisError::ZeroInput)
        );
        assert_eq!(
            window_output(&conv(4, 0, 1, 0), FitMode::Floor),
            Err(AxisError::ZeroKernel)
        );
        assert_eq!(
            window_output(&conv(4, 2, 0, 0), FitMode::Floor),
            Err(AxisError::ZeroStride)
        );
    }

    #[test]
    fn rejects_kernel_larger_than_padded_input() {
        let error = window_output(&conv(3, 5, 1, 0), FitMode::Floor).unwrap_err();
        assert_eq!(
            error,
            AxisError::KernelLargerThanInput {
                kernel: 5,
                input: 3,
                padding: 0
            }
        );
        assert_eq!(
            error.message(WindowKind::Conv),
            "kernel 5 is larger than the padded input 3 + 2·0"
        );
        assert_eq!(
            error.message(WindowKind::Pool),
            "window 5 is larger than the input 3"
        );
        // Padding can make room for the kernel.
        assert_eq!(window_output(&conv(3, 5, 1, 1), FitMode::Floor), Ok(1));
    }

    #[test]
    fn huge_literals_are_errors_not_panics() {
        let max = usize::MAX;
        assert_eq!(
            window_output(&conv(3, 3, 1, max), FitMode::Floor),
            Err(AxisError::Overflow(conv(3, 3, 1, max)))
        );
        assert_eq!(
            window_output(&conv(max, 1, 1, 1), FitMode::Floor),
            Err(AxisError::Overflow(conv(max, 1, 1, 1)))
        );
        assert_eq!(window_output(&conv(max, 1, 1, 0), FitMode::Floor), Ok(max));
        assert_eq!(
            window_output(&conv(max, max, max, 0), FitMode::Exact),
            Ok(1)
        );
        assert_eq!(
            window_output(&conv(3, max, 1, 0), FitMode::Floor).ok(),
            None
        );
        assert_eq!(window_output(&conv(max, 2, max, 0), FitMode::Floor), Ok(1));
        assert_eq!(
            AxisError::Overflow(conv(3, 3, 1, max)).message(WindowKind::Conv),
            format!("the padded input 3 + 2·{max} does not fit in a usize (at most {max})")
        );
        // Messages and fixes for huge values are computed without overflow either.
        let huge = conv(max, 2, max - 1, max);
        assert_eq!(
            window_output(&huge, FitMode::Exact),
            Err(AxisError::Overflow(huge))
        );
        let _ = AxisError::Inexact(huge).message(WindowKind::Conv);
        let _ = AxisError::Inexact(conv(max, 2, max, 0)).message(WindowKind::Pool);
        assert_eq!(
            arithmetic(&conv(max, 1, 1, max), WindowKind::Conv, FitMode::Floor),
            format!("⌊({max} − 1 + 2·{max})/1⌋ + 1 = {}", 3 * (max as u128))
        );
    }

    #[test]
    fn inexact_message_shows_the_arithmetic_and_a_fix() {
        let error = window_output(&conv(224, 11, 4, 0), FitMode::Exact).unwrap_err();
        assert_eq!(
            error.message(WindowKind::Conv),
            "(224 − 11 + 2·0)/4 + 1 = 54.25 is not a whole number; \
             to fit exactly, use kernel 12 or stride 3"
        );
        // Padding cannot change the parity of an odd slide with an even stride.
        let error = window_output(&conv(14, 5, 2, 0), FitMode::Exact).unwrap_err();
        assert_eq!(
            error.message(WindowKind::Conv),
            "(14 − 5 + 2·0)/2 + 1 = 5.5 is not a whole number; \
             to fit exactly, use kernel 6 or stride 3"
        );
        let error = window_output(&conv(10, 3, 3, 0), FitMode::Exact).unwrap_err();
        assert_eq!(
            error.message(WindowKind::Conv),
            "(10 − 3 + 2·0)/3 + 1 = 3.333… is not a whole number; \
             to fit exactly, use padding 1, kernel 4 or stride 1"
        );
        let error = window_output(&pool(7, 2, 2), FitMode::Exact).unwrap_err();
        assert_eq!(
            error.message(WindowKind::Pool),
            "(7 − 2)/2 + 1 = 3.5 is not a whole number; to fit exactly, use window 3 or stride 1"
        );
    }

    #[test]
    fn fixes_really_fit() {
        for input in 1..40 {
            for kernel in 1..=input.min(9) {
                for stride in 2..6 {
                    for padding in 0..3 {
                        let axis = conv(input, kernel, stride, padding);
                        if window_output(&axis, FitMode::Exact).is_ok() {
                            continue;
                        }
                        let fixes = exact_fit_fixes(&axis, WindowKind::Conv);
                        let fixed = [
                            fixes.padding.map(|padding| WindowAxis { padding, ..axis }),
                            fixes.kernel.map(|kernel| WindowAxis { kernel, ..axis }),
                            fixes.stride.map(|stride| WindowAxis { stride, ..axis }),
                        ];
                        assert!(fixes.stride.is_some(), "stride 1 always fits");
                        for fixed in fixed.into_iter().flatten() {
                            assert!(window_output(&fixed, FitMode::Exact).is_ok(), "{fixed:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn arithmetic_renders_exact_values() {
        let alexnet = conv(224, 11, 4, 0);
        assert_eq!(
            arithmetic(&alexnet, WindowKind::Conv, FitMode::Exact),
            "(224 − 11 + 2·0)/4 + 1 = 54.25"
        );
        assert_eq!(
            arithmetic(&alexnet, WindowKind::Conv, FitMode::Floor),
            "⌊(224 − 11 + 2·0)/4⌋ + 1 = 54"
        );
        assert_eq!(
            arithmetic(&pool(28, 3, 2), WindowKind::Pool, FitMode::Exact),
            "(28 − 3)/2 + 1 = 13.5"
        );
        assert_eq!(
            arithmetic(&conv(16, 0, 3, 0), WindowKind::Conv, FitMode::Exact),
            "(16 − 0 + 2·0)/3 + 1 = 6.333…"
        );
        assert_eq!(
            arithmetic(&conv(3, 5, 1, 0), WindowKind::Conv, FitMode::Floor),
            "⌊(3 − 5 + 2·0)/1⌋ + 1 = −1"
        );
        assert_eq!(
            arithmetic(&conv(3, 5, 4, 0), WindowKind::Conv, FitMode::Exact),
            "(3 − 5 + 2·0)/4 + 1 = 0.5"
        );
        assert_eq!(
            arithmetic(&conv(4, 2, 0, 0), WindowKind::Conv, FitMode::Exact),
            "(4 − 2 + 2·0)/0 + 1 = undefined"
        );
    }

    #[test]
    fn decimals_are_exact_or_marked() {
        assert_eq!(decimal(217, 4), "54.25");
        assert_eq!(decimal(3, 1), "3");
        assert_eq!(decimal(1, 16), "0.0625");
        assert_eq!(decimal(1, 32), "0.031…");
        assert_eq!(decimal(2, 3), "0.666…");
        assert_eq!(decimal(-3, 2), "−1.5");
        assert_eq!(decimal(21, 20), "1.05");
    }

    #[test]
    fn same_padding_keeps_the_size() {
        for kernel in [1, 3, 5, 7, 11] {
            let padding = same_padding(kernel, 1).unwrap();
            for input in 1..20 {
                assert_eq!(
                    window_output(&conv(input, kernel, 1, padding), FitMode::Exact),
                    Ok(input)
                );
            }
        }
        assert_eq!(same_padding(3, 1), Ok(1));
        assert_eq!(same_padding(0, 1), Err(SamePaddingError::ZeroKernel));
        assert_eq!(
            same_padding(3, 2),
            Err(SamePaddingError::StrideNotOne { stride: 2 })
        );
        assert_eq!(
            same_padding(4, 1),
            Err(SamePaddingError::EvenKernel { kernel: 4 })
        );
        assert_eq!(
            same_padding(4, 1).unwrap_err().to_string(),
            "same padding needs an odd kernel, found kernel 4: PyTorch pads it unevenly \
             (1 before, 2 after), but padding here is the same at both ends; \
             give padding 1 or 2 explicitly"
        );
        assert_eq!(same_padding(usize::MAX, 1), Ok(usize::MAX / 2));
    }

    /// One row of `tests/fixtures/pytorch_output_sizes.csv`, written by
    /// `tools/pytorch_output_sizes.py` from real `torch.nn` layers.
    struct TableRow {
        op: String,
        height: WindowAxis,
        width: WindowAxis,
        output: [usize; 2],
    }

    fn pytorch_table() -> Vec<TableRow> {
        let table = include_str!("../../tests/fixtures/pytorch_output_sizes.csv");
        let mut lines = table.lines();
        assert_eq!(
            lines.next(),
            Some("op,in_h,in_w,kernel_h,kernel_w,stride_h,stride_w,pad_h,pad_w,out_h,out_w")
        );
        lines
            .map(|line| {
                let (op, numbers) = line.split_once(',').expect("a row with an op");
                let n: Vec<usize> = numbers
                    .split(',')
                    .map(|field| field.parse().expect("an unsigned integer"))
                    .collect();
                assert_eq!(n.len(), 10, "row {line:?}");
                TableRow {
                    op: op.to_owned(),
                    height: conv(n[0], n[2], n[4], n[6]),
                    width: conv(n[1], n[3], n[5], n[7]),
                    output: [n[8], n[9]],
                }
            })
            .collect()
    }

    #[test]
    fn floor_mode_agrees_with_pytorch_table() {
        let rows = pytorch_table();
        assert!(rows.len() >= 300, "only {} rows", rows.len());
        for row in &rows {
            for (axis, expected) in [row.height, row.width].iter().zip(row.output) {
                assert_eq!(
                    window_output(axis, FitMode::Floor),
                    Ok(expected),
                    "{} {axis:?}",
                    row.op
                );
            }
        }
    }

    #[test]
    fn exact_mode_accepts_exactly_the_tiling_rows_of_pytorch_table() {
        let rows = pytorch_table();
        let mut accepted = 0;
        for row in &rows {
            for (axis, expected) in [row.height, row.width].iter().zip(row.output) {
                // PyTorch's windows tile the padded input when the last one ends at its end.
                let tiles =
                    (expected - 1) * axis.stride + axis.kernel == axis.input + 2 * axis.padding;
                match window_output(axis, FitMode::Exact) {
                    Ok(output) => {
                        assert!(tiles, "{} {axis:?} accepted", row.op);
                        assert_eq!(output, expected);
                        accepted += 1;
                    }
                    Err(error) => {
                        assert!(!tiles, "{} {axis:?} rejected", row.op);
                        assert_eq!(error, AxisError::Inexact(*axis));
                    }
                }
            }
        }
        // The table must exercise both outcomes.
        assert!(accepted > 0 && accepted < 2 * rows.len());
    }

    #[test]
    fn transposed_output_follows_pytorch() {
        // torch.nn.ConvTranspose2d(1, 1, k, s, p, q)(torch.zeros(1, 1, w, w)).shape[-1], printed
        // by tools/pytorch_transposed_sizes.py; (1, 3, 2, 2, 0) is rejected there too.
        let cases = [
            (7, 4, 2, 1, 0, 14),
            (4, 3, 2, 1, 1, 8),
            (5, 3, 1, 0, 0, 7),
            (1, 4, 1, 0, 0, 4),
            (3, 5, 3, 2, 2, 9),
        ];
        for (input, kernel, stride, padding, output_padding, expected) in cases {
            let axis = TransposedAxis {
                input,
                kernel,
                stride,
                padding,
                output_padding,
            };
            assert_eq!(transposed_output(&axis), Ok(expected), "{axis:?}");
        }
    }

    #[test]
    fn transposed_output_rejects_what_pytorch_rejects() {
        let axis = TransposedAxis {
            input: 1,
            kernel: 3,
            stride: 2,
            padding: 2,
            output_padding: 0,
        };
        let error = transposed_output(&axis).unwrap_err();
        assert_eq!(
            error.message(),
            "(1 \u{2212} 1)·2 \u{2212} 2·2 + 3 + 0 = \u{2212}1 is not a positive size: the padding crops the whole output"
        );
        let too_much = TransposedAxis {
            output_padding: 2,
            ..axis
        };
        assert!(matches!(
            transposed_output(&too_much),
            Err(TransposedAxisError::OutputPaddingNotBelowStride(_))
        ));
        let huge = TransposedAxis {
            input: usize::MAX,
            kernel: 3,
            stride: 2,
            padding: 0,
            output_padding: 0,
        };
        assert!(matches!(
            transposed_output(&huge),
            Err(TransposedAxisError::Overflow(_))
        ));
    }
}
