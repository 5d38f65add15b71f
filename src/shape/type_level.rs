//! The output-size formulas on [`typenum`] numbers, for generic Rust written outside the
//! [`network!`](crate::network!) macro.
//!
//! Each formula is a trait implemented for the input size (so generic code needs a single
//! bound, `W: ConvOutput<F, P, S>`) and an alias naming its result:
//!
//! | alias | value | fails to compile when |
//! |---|---|---|
//! | [`ConvOut<W, F, P, S>`] | `⌊(W − F + 2P)/S⌋ + 1` | `F > W + 2P`, or `W`, `F` or `S` is 0 |
//! | [`PoolOut<W, F, S>`] | `⌊(W − F)/S⌋ + 1` | `F > W`, or `W`, `F` or `S` is 0 |
//! | [`ExactConvOut<W, F, P, S>`] | `(W − F + 2P)/S + 1` | as `ConvOut`, or `S` does not divide `W − F + 2P` |
//! | [`ExactPoolOut<W, F, S>`] | `(W − F)/S + 1` | as `PoolOut`, or `S` does not divide `W − F` |
//!
//! The mistakes are caught by typenum itself: unsigned subtraction below zero and division by
//! zero have no implementation. Quotients of unsigned typenum numbers round down, which is the
//! floor of the formula; the exact variants also require the remainder to be `U0` (rather than
//! using typenum's `PartialDiv`, whose failure makes rustc overflow its recursion limit instead
//! of saying "expected `UTerm`, found `UInt<UTerm, B1>`", i.e. remainder 1 where 0 was needed).
//! The compiler's messages name typenum's binary types rather than the arithmetic; for messages
//! that show the arithmetic, declare the network with [`network!`](crate::network!).
//!
//! # From a type to a dfdx shape
//!
//! dfdx shapes take `usize` constants. In non-generic code, turn the result into one with
//! [`Unsigned::USIZE`]:
//!
//! ```
//! use typednet::dfdx::prelude::*;
//! use typednet::shape::type_level::{ConvOut, PoolOut};
//! use typednet::typenum::{Unsigned, U0, U11, U227, U3, U4, U2};
//!
//! type Conv1 = ConvOut<U227, U11, U0, U4>; // AlexNet conv1: 55
//! const CONV1: usize = <Conv1 as Unsigned>::USIZE;
//! const POOL1: usize = <PoolOut<Conv1, U3, U2> as Unsigned>::USIZE; // 27
//!
//! let dev = Cpu::default();
//! let features: Tensor<Rank3<96, CONV1, CONV1>, f32, Cpu> = dev.zeros();
//! let pooled: Tensor<Rank3<96, POOL1, POOL1>, f32, Cpu> = dev.zeros();
//! assert_eq!((CONV1, POOL1), (55, 27));
//! # let _ = (features, pooled);
//! ```
//!
//! In generic code, carry the sizes as typenum parameters and require the formula as a bound;
//! a caller whose sizes do not fit gets a compile error at the call:
//!
//! ```
//! use typednet::shape::type_level::{ConvOut, ConvOutput};
//! use typednet::typenum::{Unsigned, U1, U2, U28, U5};
//!
//! /// Height and width after a square convolution over a square input.
//! fn conv_side<W, F, P, S>() -> usize
//! where
//!     W: ConvOutput<F, P, S>,
//! {
//!     <ConvOut<W, F, P, S> as Unsigned>::USIZE
//! }
//!
//! assert_eq!(conv_side::<U28, U5, U2, U1>(), 28); // LeNet conv1 with padding 2
//! ```
//!
//! Results compare as types, too:
//!
//! ```
//! use typednet::shape::type_level::{ConvOut, ExactConvOut, ExactPoolOut, PoolOut};
//! use typednet::typenum::{assert_type_eq, U0, U1, U11, U14, U2, U224, U227, U28, U4, U5, U54, U55, U7};
//!
//! assert_type_eq!(ConvOut<U227, U11, U0, U4>, U55);
//! assert_type_eq!(ConvOut<U224, U11, U0, U4>, U54); // floors, as PyTorch
//! assert_type_eq!(ExactConvOut<U227, U11, U0, U4>, U55);
//! assert_type_eq!(ConvOut<U28, U5, U2, U1>, U28);
//! assert_type_eq!(PoolOut<U14, U2, U2>, U7);
//! assert_type_eq!(ExactPoolOut<U28, U2, U2>, U14);
//! ```
//!
//! # What does not compile
//!
//! An exact-fit layer whose windows do not tile the input, `(224 − 11 + 2·0)/4 + 1 = 54.25`:
//!
//! ```compile_fail
//! use typednet::shape::type_level::ExactConvOut;
//! use typednet::typenum::{Unsigned, U0, U11, U224, U4};
//!
//! let _ = <ExactConvOut<U224, U11, U0, U4> as Unsigned>::USIZE;
//! ```
//!
//! A kernel larger than the padded input, `5 > 3 + 2·0`:
//!
//! ```compile_fail
//! use typednet::shape::type_level::ConvOut;
//! use typednet::typenum::{Unsigned, U0, U1, U3, U5};
//!
//! let _ = <ConvOut<U3, U5, U0, U1> as Unsigned>::USIZE;
//! ```
//!
//! A pooling window larger than its input:
//!
//! ```compile_fail
//! use typednet::shape::type_level::PoolOut;
//! use typednet::typenum::{Unsigned, U1, U2, U3};
//!
//! let _ = <PoolOut<U2, U3, U1> as Unsigned>::USIZE;
//! ```
//!
//! A zero stride:
//!
//! ```compile_fail
//! use typednet::shape::type_level::ConvOut;
//! use typednet::typenum::{Unsigned, U0, U3, U8};
//!
//! let _ = <ConvOut<U8, U3, U0, U0> as Unsigned>::USIZE;
//! ```

use core::ops::{Add, Div, Mul, Rem, Sub};

use typenum::{Diff, NonZero, Prod, Quot, Sum, Unsigned, U0, U1, U2};

/// The padded input `W + 2P`.
type Padded<W, P> = Sum<W, Prod<P, U2>>;
/// How far the window's last position is from its first: `W + 2P − F`.
type Slide<W, F, P> = Diff<Padded<W, P>, F>;

/// A convolution with kernel `F`, zero padding `P` at each end and stride `S` slides over an
/// input of size `Self`; [`ConvOut`] names its output size `⌊(W − F + 2P)/S⌋ + 1`.
///
/// Implemented exactly when the kernel fits into the padded input and `W`, `F`, `S` are not
/// zero. PyTorch: one dimension of `nn.Conv2d(c_in, c_out, F, S, P)`.
pub trait ConvOutput<F, P, S> {
    /// The output size.
    type Output: Unsigned;
}

impl<W, F, P, S> ConvOutput<F, P, S> for W
where
    W: Unsigned + NonZero + Add<Prod<P, U2>>,
    F: Unsigned + NonZero,
    P: Unsigned + Mul<U2>,
    S: Unsigned + NonZero,
    Padded<W, P>: Sub<F>,
    Slide<W, F, P>: Div<S>,
    Quot<Slide<W, F, P>, S>: Add<U1>,
    Sum<Quot<Slide<W, F, P>, S>, U1>: Unsigned,
{
    type Output = Sum<Quot<Slide<W, F, P>, S>, U1>;
}

/// Like [`ConvOutput`], but implemented only when the windows cover the padded input exactly:
/// `(W − F + 2P) % S` is `U0`. [`ExactConvOut`] names the output size `(W − F + 2P)/S + 1`.
pub trait ExactConvOutput<F, P, S> {
    /// The output size.
    type Output: Unsigned;
}

impl<W, F, P, S> ExactConvOutput<F, P, S> for W
where
    W: Unsigned + NonZero + Add<Prod<P, U2>>,
    F: Unsigned + NonZero,
    P: Unsigned + Mul<U2>,
    S: Unsigned + NonZero,
    Padded<W, P>: Sub<F>,
    Slide<W, F, P>: Div<S> + Rem<S, Output = U0>,
    Quot<Slide<W, F, P>, S>: Add<U1>,
    Sum<Quot<Slide<W, F, P>, S>, U1>: Unsigned,
{
    type Output = Sum<Quot<Slide<W, F, P>, S>, U1>;
}

/// Output size `⌊(W − F + 2P)/S⌋ + 1` of a convolution over an input of size `W` with kernel
/// `F`, padding `P` and stride `S` (see [`ConvOutput`]).
pub type ConvOut<W, F, P, S> = <W as ConvOutput<F, P, S>>::Output;

/// Output size `(W − F + 2P)/S + 1` of a convolution whose windows must tile the padded input
/// exactly (see [`ExactConvOutput`]).
pub type ExactConvOut<W, F, P, S> = <W as ExactConvOutput<F, P, S>>::Output;

/// Output size `⌊(W − F)/S⌋ + 1` of a max or average pooling window `F` with stride `S` over an
/// input of size `W`. PyTorch: one dimension of `nn.MaxPool2d(F, S)` or `nn.AvgPool2d(F, S)`.
pub type PoolOut<W, F, S> = ConvOut<W, F, U0, S>;

/// Output size `(W − F)/S + 1` of a pooling window whose positions must tile the input exactly.
pub type ExactPoolOut<W, F, S> = ExactConvOut<W, F, U0, S>;
