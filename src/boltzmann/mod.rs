//! Boltzmann machines: the energy-based generative models of the notes.
//!
//! | model | energy E(x) | module |
//! |---|---|---|
//! | fully visible BM | −xᵀUx − bᵀx | [`fully_visible`] |
//! | BM with latent units | −x_vᵀRx_v − x_vᵀWx_h − x_hᵀSx_h − bᵀx_v − cᵀx_h | [`latent`] |
//! | restricted BM | −bᵀv − cᵀh − vᵀWh | [`rbm`], with [`ais`] for log Z |
//! | deep BM | −vᵀW¹h¹ − (h¹)ᵀW²h² − (h²)ᵀW³h³ (+ biases) | [`dbm`] |
//!
//! Every unit is binary, p(x) = exp(−E(x)) / Z. Samplers are built from dfdx device ops
//! ([`try_sample_bernoulli`]) so they run on the CPU and on CUDA and are reproducible from the
//! device's seed; the exact helpers in this module (enumeration of states, KL divergence, the χ²
//! test) are host-side and serve small models and tests.

pub mod ais;
pub mod dbm;
pub mod fully_visible;
pub mod latent;
pub mod rbm;

mod exact;
pub(crate) mod numeric;
mod sample;

pub use exact::{binary_states, chi_square, chi_square_critical, kl_divergence, log_sum_exp};
pub use sample::{try_sample_bernoulli, try_sample_standard_normal};
