//! Bernoulli sampling on the device.

use crate::network::Element;
use dfdx::prelude::*;

/// Draws binary units: each entry is 1 with the probability given at its place, else 0.
///
/// Built from device ops (a uniform draw, a comparison and a select), so it runs on every dfdx
/// device and is reproducible from the device's seed (`Cpu::seed_from_u64`). The result is a
/// fresh tensor without a tape: samples carry no gradient.
///
/// PyTorch equivalent: `torch.bernoulli(probabilities)`.
pub fn try_sample_bernoulli<S: Shape, E: Element, D: Device<E>>(
    probabilities: &Tensor<S, E, D>,
) -> Result<Tensor<S, E, D>, D::Err> {
    let device = probabilities.device();
    let unit_interval = rand::distributions::Uniform::new(E::zero(), E::one());
    let uniform = device.try_sample_like(probabilities.shape(), unit_interval)?;
    let fires = uniform.try_lt(probabilities)?;
    let ones = device.try_ones_like(probabilities.shape())?;
    let zeros = device.try_zeros_like(probabilities.shape())?;
    fires.try_choose(ones, zeros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_binary_with_the_given_frequencies() {
        let dev = Cpu::seed_from_u64(7);
        let probabilities: Tensor<Rank2<20_000, 3>, f64, Cpu> =
            dev.tensor([[0.0, 0.3, 1.0]; 20_000]);
        let samples = try_sample_bernoulli(&probabilities).unwrap().as_vec();
        assert!(samples.iter().all(|&s| s == 0.0 || s == 1.0));
        let mean = |column: usize| samples.iter().skip(column).step_by(3).sum::<f64>() / 20_000.0;
        assert_eq!(mean(0), 0.0);
        assert_eq!(mean(2), 1.0);
        // Standard error of the mean is √(0.3·0.7/20,000) ≈ 0.0032; allow five of them.
        assert!((mean(1) - 0.3).abs() < 0.016, "mean {}", mean(1));
    }

    #[test]
    fn the_same_seed_gives_the_same_samples() {
        let draw = |seed| {
            let dev = Cpu::seed_from_u64(seed);
            let p: Tensor<Rank1<64>, f32, Cpu> = dev.tensor([0.5; 64]);
            try_sample_bernoulli(&p).unwrap().as_vec()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
