//! Autoencoders: an encoder and a decoder declared apart and joined with their shapes checked,
//! and the notes' ways of making them learn something useful.
//!
//! An autoencoder maps an input `x` to a code `z = f(x)` and back to a reconstruction
//! `x̂ = g(z)`, trained to make `x̂` close to `x`. Declared with `network!`:
//!
//! ```
//! use typednet::prelude::*;
//! use typednet::autoencoder::Autoencoder;
//!
//! network! {
//!     pub struct Encoder: [784] -> linear(256) -> relu -> linear(30);
//!     pub struct Decoder: [30] -> linear(256) -> relu -> linear(784) -> sigmoid;
//!     /// The decoder must take the encoder's code and give back the encoder's input shape:
//!     /// both are compile-time checks.
//!     #[autoencoder]
//!     pub struct Deep = Encoder -> Decoder;
//! }
//!
//! let dev = Cpu::default();
//! let ae = Deep::<f32, Cpu>::new(&dev);
//! let x: Tensor<Rank2<4, 784>, f32, Cpu> = dev.sample_uniform();
//! let code = ae.encode(x.clone()); // [4, 30]
//! let back = ae.decode(code); // [4, 784]
//! assert_eq!(back.array(), ae.reconstruct(x).array());
//! assert_eq!(ae.decoder().summary(), Decoder::<f32, Cpu>::new(&dev).summary());
//! ```
//!
//! The variants the notes list, each an option of the training loss:
//!
//! | variant | what changes | here |
//! |---|---|---|
//! | undercomplete | the code is smaller than the input (`[784] → [30]`) | the declaration |
//! | linear = PCA | no non-linearity, squared loss: learns the top-K principal subspace | [`crate::pca`] is the baseline |
//! | deep | several layers each side | the declaration |
//! | sparse | `+ λ Σ_j |z_j|` on the code | [`try_sparsity_penalty`] |
//! | denoising | the encoder sees a corrupted `x̃`, the loss compares with the clean `x` | [`Corruption`] |
//! | contractive | `+ λ ‖∂f(x)/∂x‖²_F` | [`try_contractive_penalty`] (one sigmoid/tanh layer, exact), [`try_contractive_penalty_estimate`] (any encoder) |
//! | variational | a Gaussian code sampled by reparameterisation, `+ KL(q(z|x) ‖ N(0, I))`, a Bernoulli decoder | [`variational`] |

mod corruption;
mod penalty;
pub mod variational;

pub use corruption::Corruption;
pub use penalty::{
    try_contractive_penalty, try_contractive_penalty_estimate, try_sparsity_penalty,
    EncoderActivation,
};

use core::fmt;

use crate::network::{Network, ShapeMarker};

/// The two halves of an `#[autoencoder]` declared with `network!`.
///
/// Generated code also gives the autoencoder `encode`, `decode` and `reconstruct` (each with a
/// `try_` form), which run one example or a batch through the encoder, the decoder, or both.
pub trait Autoencoder {
    /// The network that maps an input to its code.
    type Encoder;
    /// The network that maps a code back to the input's shape.
    type Decoder;
    /// The encoder.
    fn encoder(&self) -> &Self::Encoder;
    /// The decoder.
    fn decoder(&self) -> &Self::Decoder;
    /// The encoder, to change it.
    fn encoder_mut(&mut self) -> &mut Self::Encoder;
    /// The decoder, to change it.
    fn decoder_mut(&mut self) -> &mut Self::Decoder;
}

/// Implemented when a decoder's output shape is its encoder's input shape.
#[diagnostic::on_unimplemented(
    message = "the decoder's output `{Self}` is not the encoder's input `{Other}`",
    label = "this decoder gives back `{Self}`, but its encoder takes `{Other}`",
    note = "an autoencoder reconstructs its input: the decoder's `Output` must equal the encoder's `Input`"
)]
pub trait GivesBack<Other> {}
impl<S: ShapeMarker> GivesBack<S> for S {}

/// Compiles only when `Decoder`'s output shape is `Encoder`'s input shape.
#[doc(hidden)]
pub fn assert_gives_back<Encoder: Network, Decoder: Network>()
where
    Decoder::Output: GivesBack<Encoder::Input>,
{
}

/// A corruption or penalty given an invalid setting, or a device failure.
#[derive(Debug, Clone, PartialEq)]
pub enum AutoencoderError<DeviceError> {
    /// A setting outside its range, e.g. a masking probability of 1.5.
    InvalidSetting {
        /// What was set, e.g. `"the masking probability"`.
        what: &'static str,
        /// The value given.
        value: f64,
        /// The range it must lie in, e.g. `"[0, 1]"`.
        range: &'static str,
    },
    /// The device failed.
    Device(DeviceError),
}

impl<DeviceError: fmt::Debug> fmt::Display for AutoencoderError<DeviceError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSetting { what, value, range } => {
                write!(f, "{what} is {value}; it must lie in {range}")
            }
            Self::Device(error) => write!(f, "the device failed: {error:?}"),
        }
    }
}

impl<DeviceError: fmt::Debug> std::error::Error for AutoencoderError<DeviceError> {}

/// Fails unless `value` is finite and in `[low, high]`.
fn check_setting<DeviceError>(
    what: &'static str,
    value: f64,
    low: f64,
    high: f64,
    range: &'static str,
) -> Result<(), AutoencoderError<DeviceError>> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(AutoencoderError::InvalidSetting { what, value, range })
    }
}
