//! The fully visible Boltzmann machine over binary vectors.
//!
//! p(x) = exp(−E(x)) / Z,  E(x) = −xᵀUx − bᵀx,  x ∈ {0, 1}ᴺ,
//!
//! with U symmetric and zero on the diagonal (a diagonal entry would only add to bᵢ, since
//! xᵢ² = xᵢ). Each pair i < j appears twice in xᵀUx, so its weight in the energy is 2·Uᵢⱼ.
//!
//! The log-likelihood of data x⁽¹⁾…x⁽ᵐ⁾ has the gradient of the notes, data statistics minus
//! model statistics:
//!
//! ∂/∂bᵢ (1/m) Σ log p(x⁽ᵏ⁾) = E_data\[xᵢ\] − E_model\[xᵢ\]
//! ∂/∂Uᵢⱼ (1/m) Σ log p(x⁽ᵏ⁾) = 2 (E_data\[xᵢxⱼ\] − E_model\[xᵢxⱼ\])   (Uᵢⱼ = Uⱼᵢ one parameter)
//!
//! For small N the model statistics and Z are exact by enumerating all 2ᴺ states
//! ([`FullyVisibleBm::exact_gradient`]); otherwise they are estimated from Gibbs chains run on a
//! dfdx device ([`FullyVisibleBm::try_gibbs_sample`], [`FullyVisibleBm::sampled_gradient`]), where
//! one sweep updates each unit from p(xᵢ = 1 | x₋ᵢ) = σ(bᵢ + 2 Σⱼ Uᵢⱼxⱼ).
//!
//! PyTorch has no Boltzmann machines; the closest is writing the energy by hand.

use super::exact::{binary_states, log_sum_exp};
use crate::network::Element;
use dfdx::prelude::*;

/// A fully visible Boltzmann machine on `N` binary units, parameters in f64 on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct FullyVisibleBm<const N: usize> {
    /// U: symmetric, zero diagonal.
    pub coupling: [[f64; N]; N],
    /// b.
    pub bias: [f64; N],
}

/// ∂(mean log-likelihood)/∂parameters, laid out like [`FullyVisibleBm`]; `coupling[i][j]` is the
/// derivative with respect to the shared parameter Uᵢⱼ = Uⱼᵢ (zero on the diagonal).
#[derive(Debug, Clone, PartialEq)]
pub struct FullyVisibleGradient<const N: usize> {
    /// ∂/∂Uᵢⱼ.
    pub coupling: [[f64; N]; N],
    /// ∂/∂bᵢ.
    pub bias: [f64; N],
}

impl<const N: usize> Default for FullyVisibleBm<N> {
    fn default() -> Self {
        Self {
            coupling: [[0.0; N]; N],
            bias: [0.0; N],
        }
    }
}

impl<const N: usize> FullyVisibleBm<N> {
    /// A machine with all parameters zero: the uniform distribution over the 2ᴺ states.
    pub fn new() -> Self {
        Self::default()
    }

    /// A machine from a coupling matrix and biases; the matrix is symmetrised (½(U + Uᵀ)) and its
    /// diagonal cleared.
    pub fn from_parameters(coupling: [[f64; N]; N], bias: [f64; N]) -> Self {
        let mut symmetric = [[0.0; N]; N];
        for i in 0..N {
            for j in 0..N {
                if i != j {
                    symmetric[i][j] = 0.5 * (coupling[i][j] + coupling[j][i]);
                }
            }
        }
        Self {
            coupling: symmetric,
            bias,
        }
    }

    /// E(x) = −xᵀUx − bᵀx.
    pub fn energy(&self, x: &[f64; N]) -> f64 {
        let mut energy = 0.0;
        for i in 0..N {
            energy -= self.bias[i] * x[i];
            for j in 0..N {
                energy -= x[i] * self.coupling[i][j] * x[j];
            }
        }
        energy
    }

    /// log Z = log Σₓ exp(−E(x)), exact by enumerating all 2ᴺ states.
    pub fn exact_log_partition(&self) -> f64 {
        let negative_energies: Vec<f64> = states::<N>().map(|x| -self.energy(&x)).collect();
        log_sum_exp(&negative_energies)
    }

    /// p(x) for every state, in the order of [`binary_states`] (unit i is bit i of the index).
    pub fn exact_distribution(&self) -> Vec<f64> {
        let log_partition = self.exact_log_partition();
        states::<N>()
            .map(|x| (-self.energy(&x) - log_partition).exp())
            .collect()
    }

    /// The mean log-likelihood (1/m) Σ log p(x⁽ᵏ⁾) of binary data, exact.
    pub fn exact_log_likelihood(&self, data: &[[f64; N]]) -> f64 {
        let log_partition = self.exact_log_partition();
        data.iter().map(|x| -self.energy(x)).sum::<f64>() / data.len() as f64 - log_partition
    }

    /// The exact gradient of the mean log-likelihood: data statistics minus the model's,
    /// these by enumeration.
    pub fn exact_gradient(&self, data: &[[f64; N]]) -> FullyVisibleGradient<N> {
        let model_states: Vec<[f64; N]> = states::<N>().collect();
        let probabilities = self.exact_distribution();
        statistics_difference(data, &model_states, &probabilities)
    }

    /// The gradient with the model statistics estimated from `samples` (e.g. the states of
    /// persistent Gibbs chains from [`Self::try_gibbs_sample`]) instead of enumerated.
    pub fn sampled_gradient(
        &self,
        data: &[[f64; N]],
        samples: &[[f64; N]],
    ) -> FullyVisibleGradient<N> {
        let weights = vec![1.0 / samples.len() as f64; samples.len()];
        statistics_difference(data, samples, &weights)
    }

    /// One step of gradient ascent on the log-likelihood.
    pub fn ascend(&mut self, gradient: &FullyVisibleGradient<N>, learning_rate: f64) {
        for i in 0..N {
            self.bias[i] += learning_rate * gradient.bias[i];
            for j in 0..N {
                self.coupling[i][j] += learning_rate * gradient.coupling[i][j];
            }
        }
    }

    /// Runs `B` independent Gibbs chains for `sweeps` sweeps on `device` and returns their final
    /// states, one per row. Chains start from `start` or, when it is `None`, from uniform random
    /// states; each sweep visits the units in order, drawing xᵢ from σ(bᵢ + 2 Σⱼ Uᵢⱼxⱼ).
    /// Reproducible from the device's seed.
    pub fn try_gibbs_sample<const B: usize, E: Element, D: Device<E>>(
        &self,
        device: &D,
        start: Option<Tensor<Rank2<B, N>, E, D>>,
        sweeps: usize,
    ) -> Result<Tensor<Rank2<B, N>, E, D>, D::Err> {
        let cast = |v: f64| E::from(v).expect("a parameter fits the element type");
        let coupling: Vec<E> = self
            .coupling
            .iter()
            .flatten()
            .map(|&u| cast(2.0 * u))
            .collect();
        let twice_coupling: Tensor<Rank2<N, N>, E, D> =
            device.try_tensor_from_vec(coupling, (Const::<N>, Const::<N>))?;
        let bias: Tensor<Rank1<N>, E, D> = device
            .try_tensor_from_vec(self.bias.iter().map(|&b| cast(b)).collect(), (Const::<N>,))?;
        let mut chains = match start {
            Some(states) => states,
            None => {
                super::try_sample_bernoulli(&device.try_ones::<Rank2<B, N>>()?.try_mul(cast(0.5))?)?
            }
        };
        let unit_masks: Vec<Tensor<Rank2<B, N>, E, D>> = (0..N)
            .map(|i| {
                let mut one_hot = vec![E::zero(); N];
                one_hot[i] = E::one();
                device
                    .try_tensor_from_vec(one_hot, (Const::<N>,))
                    .and_then(|mask: Tensor<Rank1<N>, E, D>| mask.try_broadcast())
            })
            .collect::<Result<_, _>>()?;
        for _ in 0..sweeps {
            for mask in &unit_masks {
                // The field of every unit; only unit i's is used. U's zero diagonal keeps xᵢ out
                // of its own field.
                let field = chains
                    .clone()
                    .try_matmul(twice_coupling.clone())?
                    .try_add(bias.clone().try_broadcast()?)?;
                let draw = super::try_sample_bernoulli(&field.try_sigmoid()?)?;
                let keep = mask.clone().try_negate()?.try_add(E::one())?;
                chains = chains.try_mul(keep)?.try_add(draw.try_mul(mask.clone())?)?;
            }
        }
        Ok(chains)
    }
}

/// Every state of N binary units as an array, in [`binary_states`] order.
fn states<const N: usize>() -> impl Iterator<Item = [f64; N]> {
    binary_states(N).map(|x| {
        let mut state = [0.0; N];
        state.copy_from_slice(&x);
        state
    })
}

/// E_data[·] − E_weighted[·] for the sufficient statistics xᵢ and xᵢxⱼ, with the factor 2 of
/// the shared coupling parameter.
fn statistics_difference<const N: usize>(
    data: &[[f64; N]],
    model_states: &[[f64; N]],
    model_weights: &[f64],
) -> FullyVisibleGradient<N> {
    let mut gradient = FullyVisibleGradient {
        coupling: [[0.0; N]; N],
        bias: [0.0; N],
    };
    let mut accumulate = |x: &[f64; N], weight: f64| {
        for i in 0..N {
            gradient.bias[i] += weight * x[i];
            for j in 0..N {
                if i != j {
                    gradient.coupling[i][j] += 2.0 * weight * x[i] * x[j];
                }
            }
        }
    };
    let data_weight = 1.0 / data.len() as f64;
    data.iter().for_each(|x| accumulate(x, data_weight));
    model_states
        .iter()
        .zip(model_weights)
        .for_each(|(x, &w)| accumulate(x, -w));
    gradient
}

/// Rows of a `[B, N]` tensor as arrays (host copy), e.g. Gibbs samples for
/// [`FullyVisibleBm::sampled_gradient`].
pub fn rows<const B: usize, const N: usize, E: Element, D: Device<E>>(
    states: &Tensor<Rank2<B, N>, E, D>,
) -> Vec<[f64; N]> {
    states
        .as_vec()
        .chunks(N)
        .map(|row| {
            let mut state = [0.0; N];
            for (s, &v) in state.iter_mut().zip(row) {
                *s = v.to_f64().expect("a float converts to f64");
            }
            state
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{chi_square, chi_square_critical, kl_divergence};
    use super::*;

    fn teacher() -> FullyVisibleBm<5> {
        FullyVisibleBm::from_parameters(
            [
                [0.0, 0.8, -0.5, 0.0, 0.3],
                [0.8, 0.0, 0.4, -0.7, 0.0],
                [-0.5, 0.4, 0.0, 0.6, -0.2],
                [0.0, -0.7, 0.6, 0.0, 0.9],
                [0.3, 0.0, -0.2, 0.9, 0.0],
            ],
            [-0.4, 0.2, -1.0, 0.1, -0.3],
        )
    }

    #[test]
    fn energy_partition_and_distribution_by_hand() {
        // N = 2, U₁₂ = 0.5, b = (0.1, −0.2): energies 0, −0.1, 0.2, −(0.1 − 0.2 + 2·0.5) = −0.9.
        let bm = FullyVisibleBm::from_parameters([[0.0, 0.5], [0.5, 0.0]], [0.1, -0.2]);
        assert!((bm.energy(&[1.0, 1.0]) + 0.9).abs() < 1e-15);
        let unnormalised = [1.0, 0.1f64.exp(), (-0.2f64).exp(), 0.9f64.exp()];
        let z: f64 = unnormalised.iter().sum();
        assert!((bm.exact_log_partition() - z.ln()).abs() < 1e-14);
        for (p, u) in bm.exact_distribution().iter().zip(unnormalised) {
            assert!((p - u / z).abs() < 1e-15);
        }
    }

    #[test]
    fn exact_gradient_matches_finite_differences_of_the_log_likelihood() {
        let bm = teacher();
        let data = [
            [1.0, 1.0, 0.0, 0.0, 1.0],
            [0.0, 1.0, 1.0, 1.0, 0.0],
            [1.0, 0.0, 0.0, 1.0, 1.0],
        ];
        let gradient = bm.exact_gradient(&data);
        let h = 1e-6;
        for i in 0..5 {
            let mut plus = bm.clone();
            let mut minus = bm.clone();
            plus.bias[i] += h;
            minus.bias[i] -= h;
            let numeric =
                (plus.exact_log_likelihood(&data) - minus.exact_log_likelihood(&data)) / (2.0 * h);
            assert!(
                (numeric - gradient.bias[i]).abs() < 1e-8,
                "b{i}: {numeric} vs {}",
                gradient.bias[i]
            );
            for j in (i + 1)..5 {
                // Uᵢⱼ and Uⱼᵢ move together: they are one parameter.
                let (mut plus, mut minus) = (bm.clone(), bm.clone());
                plus.coupling[i][j] += h;
                plus.coupling[j][i] += h;
                minus.coupling[i][j] -= h;
                minus.coupling[j][i] -= h;
                let numeric = (plus.exact_log_likelihood(&data)
                    - minus.exact_log_likelihood(&data))
                    / (2.0 * h);
                let analytic = gradient.coupling[i][j];
                assert!(
                    (numeric - analytic).abs() < 1e-8,
                    "U{i}{j}: {numeric} vs {analytic}"
                );
            }
        }
    }

    #[test]
    fn gibbs_samples_follow_the_exact_distribution() {
        let bm = teacher();
        let dev = crate::test_device!(11);
        let samples = bm.try_gibbs_sample::<8000, f32, _>(&dev, None, 30).unwrap();
        let mut counts = vec![0usize; 32];
        for x in rows(&samples) {
            counts[(0..5).map(|i| (x[i] as usize) << i).sum::<usize>()] += 1;
        }
        let (statistic, dof) = chi_square(&counts, &bm.exact_distribution());
        let critical = chi_square_critical(dof, 0.001);
        eprintln!("Gibbs vs exact: χ² {statistic:.1} on {dof} dof (critical {critical:.1})");
        assert!(
            statistic < critical,
            "χ² {statistic:.1} on {dof} dof ≥ {critical:.1}"
        );
    }

    #[test]
    fn learns_a_known_distribution_from_its_samples() {
        // Data: 20,000 Gibbs samples of the teacher. Fitting by exact gradient ascent should recover
        // it up to sampling error: KL(teacher ‖ fitted) ≈ (parameters)/(2·samples) ≈ 4e-4.
        let target = teacher();
        let dev = crate::test_device!(5);
        let data = rows(
            &target
                .try_gibbs_sample::<20_000, f64, _>(&dev, None, 30)
                .unwrap(),
        );
        let mut student = FullyVisibleBm::<5>::new();
        let initial = kl_divergence(&target.exact_distribution(), &student.exact_distribution());
        for _ in 0..2000 {
            let gradient = student.exact_gradient(&data);
            student.ascend(&gradient, 0.5);
        }
        let fitted = kl_divergence(&target.exact_distribution(), &student.exact_distribution());
        eprintln!("exact-gradient fit: KL {initial:.4} -> {fitted:.5}");
        assert!(initial > 0.3, "initial KL {initial}");
        assert!(
            fitted < 3e-3,
            "KL after fitting {fitted} (initial {initial})"
        );
    }

    #[test]
    fn persistent_gibbs_gradient_learns_without_enumeration() {
        // The large-N path: model statistics from 2,000 persistent chains, no enumeration.
        let target = teacher();
        let dev = crate::test_device!(9);
        let data = rows(
            &target
                .try_gibbs_sample::<5000, f64, _>(&dev, None, 30)
                .unwrap(),
        );
        let mut student = FullyVisibleBm::<5>::new();
        let mut chains = None;
        for _ in 0..300 {
            let states = student
                .try_gibbs_sample::<2000, f64, _>(&dev, chains.take(), 1)
                .unwrap();
            let gradient = student.sampled_gradient(&data, &rows(&states));
            student.ascend(&gradient, 0.1);
            chains = Some(states);
        }
        let fitted = kl_divergence(&target.exact_distribution(), &student.exact_distribution());
        eprintln!("persistent-chain fit: KL -> {fitted:.5}");
        assert!(fitted < 0.02, "KL after persistent-chain training {fitted}");
    }
}
