//! The corruptions of a denoising autoencoder.

use dfdx::shapes::{HasShape, Shape};
use dfdx::tensor::Tensor;
use rand::Rng;

use super::{check_setting, AutoencoderError};
use crate::network::Element;

/// How a denoising autoencoder corrupts its input: it encodes the corrupted `x̃` and is trained
/// to reconstruct the clean `x` (Vincent et al., 2008), so it must learn the structure of the
/// data rather than copy its input.
///
/// The noise is drawn on the host from the given random-number generator, so that a seed gives
/// the same corruption on every device.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use typednet::autoencoder::Corruption;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let x: Tensor<Rank1<1000>, f32, Cpu> = dev.ones();
/// let masked = Corruption::Masking { probability: 0.25 }
///     .try_apply(&x, &mut StdRng::seed_from_u64(0))
///     .unwrap();
/// let kept = masked.as_vec().iter().filter(|&&v| v == 1.0).count();
/// assert!((700..800).contains(&kept)); // about 75% kept
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Corruption {
    /// `x̃ = x`: a plain autoencoder.
    None,
    /// `x̃ = x + ε`, `ε ~ N(0, σ²)` independently per element (not clipped). PyTorch:
    /// `x + std * torch.randn_like(x)`.
    Gaussian {
        /// `σ ≥ 0`.
        std: f64,
    },
    /// Masking noise: each element set to 0 with probability `p`, kept otherwise (not rescaled,
    /// unlike dropout). PyTorch: `x * (torch.rand_like(x) >= p)`.
    Masking {
        /// `p ∈ [0, 1]`.
        probability: f64,
    },
}

impl Corruption {
    /// The corrupted copy `x̃` of `x` (which is left as it is), without a gradient tape.
    ///
    /// Fails when `σ` is negative or not finite, or `p` lies outside `[0, 1]`.
    pub fn try_apply<S: Shape, E: Element, D: crate::Device<E>, R: Rng>(
        &self,
        x: &Tensor<S, E, D>,
        rng: &mut R,
    ) -> Result<Tensor<S, E, D>, AutoencoderError<D::Err>> {
        let mut values = x.as_vec();
        match *self {
            Corruption::None => {}
            Corruption::Gaussian { std } => {
                check_setting(
                    "the noise's standard deviation",
                    std,
                    0.0,
                    f64::MAX,
                    "[0, ∞)",
                )?;
                for value in &mut values {
                    let noise = std * standard_normal(rng);
                    *value += E::from_f64(noise).unwrap_or_else(E::zero);
                }
            }
            Corruption::Masking { probability } => {
                check_setting("the masking probability", probability, 0.0, 1.0, "[0, 1]")?;
                for value in &mut values {
                    if rng.gen::<f64>() < probability {
                        *value = E::zero();
                    }
                }
            }
        }
        x.device()
            .try_tensor_from_vec(values, *x.shape())
            .map_err(AutoencoderError::Device)
    }
}

/// A draw from N(0, 1) by the Box–Muller transform (`rand` without `rand_distr` has none).
pub(super) fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    // 1 − u ∈ (0, 1], so the logarithm is finite.
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * core::f64::consts::PI * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::shapes::Rank1;
    use dfdx::tensor::{TensorFrom, TensorFromVec, ZerosTensor};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn gaussian_noise_has_the_stated_mean_and_deviation() {
        let dev = crate::test_device!();
        let x: Tensor<Rank1<20000>, f64, _> = dev.zeros();
        let noisy = Corruption::Gaussian { std: 0.3 }
            .try_apply(&x, &mut StdRng::seed_from_u64(1))
            .unwrap()
            .as_vec();
        let n = noisy.len() as f64;
        let mean = noisy.iter().sum::<f64>() / n;
        let variance = noisy.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        // Standard errors: 0.3/√20000 ≈ 0.002 for the mean, ≈ 0.0015 for the deviation.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!(
            (variance.sqrt() - 0.3).abs() < 0.008,
            "std {}",
            variance.sqrt()
        );
    }

    #[test]
    fn masking_zeroes_about_p_of_the_inputs_and_keeps_the_rest_unchanged() {
        let dev = crate::test_device!();
        let values: Vec<f64> = (0..10000).map(|i| 1.0 + (i % 7) as f64).collect();
        let x = dev.tensor_from_vec(values.clone(), (Default::default(),));
        let x: Tensor<Rank1<10000>, f64, _> = x;
        let masked = Corruption::Masking { probability: 0.3 }
            .try_apply(&x, &mut StdRng::seed_from_u64(2))
            .unwrap()
            .as_vec();
        let zeroed = masked.iter().filter(|&&v| v == 0.0).count();
        // 3000 ± 46 (one standard deviation).
        assert!((2850..3150).contains(&zeroed), "{zeroed} zeroed");
        for (kept, original) in masked.iter().zip(&values) {
            assert!(*kept == 0.0 || kept == original);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_corruption_and_none_is_the_identity() {
        let dev = crate::test_device!();
        let x: Tensor<Rank1<50>, f32, _> = dev.tensor([0.5; 50]);
        let corruption = Corruption::Gaussian { std: 1.0 };
        let a = corruption
            .try_apply(&x, &mut StdRng::seed_from_u64(3))
            .unwrap();
        let b = corruption
            .try_apply(&x, &mut StdRng::seed_from_u64(3))
            .unwrap();
        assert_eq!(a.as_vec(), b.as_vec());
        let same = Corruption::None
            .try_apply(&x, &mut StdRng::seed_from_u64(3))
            .unwrap();
        assert_eq!(same.as_vec(), x.as_vec());
    }

    #[test]
    fn invalid_settings_are_errors_naming_them() {
        let dev = crate::test_device!();
        let x: Tensor<Rank1<3>, f32, _> = dev.zeros();
        let rng = &mut StdRng::seed_from_u64(0);
        let error = Corruption::Masking { probability: 1.5 }
            .try_apply(&x, rng)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the masking probability is 1.5; it must lie in [0, 1]"
        );
        let error = Corruption::Gaussian { std: f64::NAN }
            .try_apply(&x, rng)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the noise's standard deviation is NaN; it must lie in [0, ∞)"
        );
    }
}
