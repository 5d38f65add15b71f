//! Annealed importance sampling (AIS) for a restricted Boltzmann machine's log partition
//! function, after Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief
//! networks" (ICML), and Neal (2001), "Annealed importance sampling".
//!
//! # The estimator
//!
//! AIS anneals from a base-rate model A, an RBM with the same layers, W = 0, visible biases
//! b_A (e.g. from the data's unit means, [`try_base_rate_visible_bias`]) and zero hidden biases,
//! to the RBM B = (W, b, c) through the distributions over `v` with `h` summed out,
//!
//! p*_β(v) = exp((1 − β) b_Aᵀv + β bᵀv) · Πⱼ (1 + exp(β (cⱼ + vᵀW₍:,ⱼ₎))),
//!
//! 0 = β₀ < β₁ < … < β_K = 1,
//!
//! so that p*₀ is the base-rate model, whose Z₀ = 2ᴴ Πᵢ (1 + e^(b_A,i)) is known in closed form
//! (the hidden units are free at β = 0), and p*₁(v) = exp(−F(v)), the RBM's unnormalised
//! marginal. Each of `M` runs draws v₁ exactly from p₀ (vᵢ ~ σ(b_A,i)), then for k = 1 … K
//! adds to its log importance weight
//!
//! log p*_{β_k}(v_k) − log p*_{β_{k−1}}(v_k)
//!   = (β_k − β_{k−1}) (b − b_A)ᵀv_k + Σⱼ [softplus(β_k xⱼ) − softplus(β_{k−1} xⱼ)],
//!
//! with x = c + v_kᵀW,
//!
//! and (for k < K) moves by one block Gibbs sweep that leaves p_{β_k} invariant:
//! h ~ σ(β_k (c + vᵀW)), then v ~ σ((1 − β_k) b_A + β_k (b + Wh)). The weights w = exp(log w)
//! are unbiased for Z / Z₀, so
//!
//! log Ẑ = log Z₀ + log((1/M) Σₘ wₘ),
//!
//! an estimate that is unbiased for Z but, through the log, tends to *underestimate* log Z when
//! the schedule is too short (Jensen), which makes the test log-likelihood look too good.
//!
//! Everything that touches the model runs as dfdx device ops on the `M` runs at once (CPU or
//! CUDA, reproducible from the device's seed); the log weights are moved to the host in f64
//! every [`FLUSH_EVERY`] steps so that a long schedule in f32 does not lose precision.
//!
//! PyTorch has no AIS; `tools/pytorch_mnist_rbm.py` writes the same loop by hand.

use super::exact::log_sum_exp;
use super::numeric::{cast, softplus, to_f64, try_softplus};
use super::rbm::Rbm;
use super::sample::try_sample_bernoulli;
use crate::network::Element;
use dfdx::prelude::*;

/// How many annealing steps accumulate their log-weight increments on the device before the
/// sums are added, in f64, to the host's running totals.
pub const FLUSH_EVERY: usize = 250;

/// An increasing sequence of inverse temperatures 0 = β₀ < β₁ < … < β_K = 1 for AIS.
#[derive(Debug, Clone, PartialEq)]
pub struct AisSchedule {
    betas: Vec<f64>,
}

/// Why a list of β's or of segments is not a valid [`AisSchedule`].
#[derive(Debug, Clone, PartialEq)]
pub enum AisScheduleError {
    /// Fewer than two β's, or a segment list with no steps.
    TooShort,
    /// The first β is not 0 or the last is not 1.
    BadEnds {
        /// The first β given.
        first: f64,
        /// The last β given.
        last: f64,
    },
    /// β's that do not strictly increase (or are not finite), at this index.
    NotIncreasing {
        /// The index of the first β that is not above the one before it.
        index: usize,
    },
}

impl std::fmt::Display for AisScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort => write!(f, "an AIS schedule needs at least two inverse temperatures"),
            Self::BadEnds { first, last } => write!(
                f,
                "an AIS schedule runs from β = 0 to β = 1, found {first} to {last}"
            ),
            Self::NotIncreasing { index } => write!(
                f,
                "AIS schedule β's must strictly increase; β[{index}] is not above β[{}]",
                index.saturating_sub(1)
            ),
        }
    }
}

impl std::error::Error for AisScheduleError {}

impl AisSchedule {
    /// A schedule from its β's, checked: they start at 0, end at 1 and strictly increase.
    pub fn try_from_betas(betas: Vec<f64>) -> Result<Self, AisScheduleError> {
        if betas.len() < 2 {
            return Err(AisScheduleError::TooShort);
        }
        let (first, last) = (betas[0], betas[betas.len() - 1]);
        if first != 0.0 || last != 1.0 {
            return Err(AisScheduleError::BadEnds { first, last });
        }
        if let Some(index) =
            (1..betas.len()).find(|&k| betas[k].is_nan() || betas[k] <= betas[k - 1])
        {
            return Err(AisScheduleError::NotIncreasing { index });
        }
        Ok(Self { betas })
    }

    /// `steps` evenly spaced steps from 0 to 1 (β_k = k / steps; `steps` 0 is taken as 1).
    pub fn uniform(steps: usize) -> Self {
        let steps = steps.max(1);
        Self {
            betas: (0..=steps).map(|k| k as f64 / steps as f64).collect(),
        }
    }

    /// Evenly spaced pieces: `segments[s] = (end, steps)` takes β from the previous segment's
    /// end (0 for the first) to `end` in `steps` equal steps. The last end must be 1.
    ///
    /// [`Self::salakhutdinov_murray`] is `piecewise(&[(0.5, 1_000), (0.9, 4_000), (1.0, 10_000)])`.
    pub fn piecewise(segments: &[(f64, usize)]) -> Result<Self, AisScheduleError> {
        let mut betas = vec![0.0];
        let mut start = 0.0;
        for &(end, steps) in segments {
            for k in 1..=steps {
                betas.push(if k == steps {
                    end
                } else {
                    start + (end - start) * k as f64 / steps as f64
                });
            }
            start = end;
        }
        Self::try_from_betas(betas)
    }

    /// The schedule of Salakhutdinov & Murray (2008) for MNIST RBMs: 15,000 steps, 1,000 evenly
    /// spaced in [0, 0.5], 4,000 in [0.5, 0.9] and 10,000 in [0.9, 1].
    pub fn salakhutdinov_murray() -> Self {
        Self::scaled_salakhutdinov_murray(1.0)
    }

    /// [`Self::salakhutdinov_murray`] with every segment's step count multiplied by `fraction`
    /// (at least one step each): `0.2` gives 3,000 steps (200, 800, 2,000) for a quicker,
    /// slightly less accurate estimate.
    pub fn scaled_salakhutdinov_murray(fraction: f64) -> Self {
        let steps = |n: f64| ((n * fraction).round() as usize).max(1);
        let betas = [
            (0.5, steps(1_000.0)),
            (0.9, steps(4_000.0)),
            (1.0, steps(10_000.0)),
        ];
        // Ends 0.5 < 0.9 < 1 with at least one step each: always a valid schedule.
        Self::piecewise(&betas).unwrap_or_else(|_| Self::uniform(1))
    }

    /// The inverse temperatures β₀ = 0, …, β_K = 1.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// K, the number of annealing steps (one fewer than the β's).
    pub fn steps(&self) -> usize {
        self.betas.len() - 1
    }
}

impl Default for AisSchedule {
    /// [`AisSchedule::salakhutdinov_murray`].
    fn default() -> Self {
        Self::salakhutdinov_murray()
    }
}

/// The result of [`Rbm::try_ais_log_partition`]: log Ẑ and the runs' log importance weights,
/// from which its uncertainty follows.
#[derive(Debug, Clone, PartialEq)]
pub struct AisEstimate {
    /// log Ẑ = log Z₀ + log((1/M) Σₘ wₘ).
    pub log_partition: f64,
    /// log Z₀ = H log 2 + Σᵢ softplus(b_A,i) of the base-rate model.
    pub base_log_partition: f64,
    /// Each run's log importance weight log wₘ (an estimate of log Z − log Z₀ on its own).
    pub log_weights: Vec<f64>,
}

impl AisEstimate {
    /// The weights relative to the largest, wₘ / max w, and log max w.
    fn relative_weights(&self) -> (Vec<f64>, f64) {
        let max = self
            .log_weights
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let relative = self.log_weights.iter().map(|w| (w - max).exp()).collect();
        (relative, max)
    }

    /// The mean and the standard error of the mean of the relative weights.
    fn relative_mean_and_error(&self) -> (f64, f64, f64) {
        let (relative, max) = self.relative_weights();
        let m = relative.len().max(1) as f64;
        let mean = relative.iter().sum::<f64>() / m;
        let variance =
            relative.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
        (mean, (variance / m).sqrt(), max)
    }

    /// The standard error of log Ẑ by the delta method, σ(w) / (√M · mean(w)): the spread of
    /// the estimate between seeds. It says nothing of the bias of a too-short schedule.
    pub fn standard_error(&self) -> f64 {
        let (mean, error, _) = self.relative_mean_and_error();
        error / mean
    }

    /// The interval log Z₀ + log(mean(w) ± `num_std` · σ(w)/√M) of Salakhutdinov & Murray
    /// (who report `num_std` = 3); the lower end is −∞ when the interval reaches Ẑ ≤ 0.
    pub fn log_partition_interval(&self, num_std: f64) -> (f64, f64) {
        let (mean, error, max) = self.relative_mean_and_error();
        let at = |x: f64| {
            if x > 0.0 {
                self.base_log_partition + max + x.ln()
            } else {
                f64::NEG_INFINITY
            }
        };
        (at(mean - num_std * error), at(mean + num_std * error))
    }

    /// The effective sample size (Σ w)² / Σ w² of the runs, between 1 (one run dominates) and M
    /// (equal weights): a warning sign when it is a small fraction of M.
    pub fn effective_sample_size(&self) -> f64 {
        let (relative, _) = self.relative_weights();
        let sum: f64 = relative.iter().sum();
        let squares: f64 = relative.iter().map(|r| r * r).sum();
        sum * sum / squares
    }
}

/// The base-rate visible biases b_A,i = log(pᵢ / (1 − pᵢ)) from a batch of binary data
/// (`[B, V]`), pᵢ the fraction of rows with unit `i` on, clamped to [0.001, 0.999] (the same
/// rule as [`Rbm::try_with_visible_bias_from_data`]): the base-rate model then matches the
/// data's unit means, a good starting point for AIS. Computed with device ops.
///
/// PyTorch: `p = v.mean(0).clamp(1e-3, 1 - 1e-3); torch.log(p) - torch.log1p(-p)`.
pub fn try_base_rate_visible_bias<const B: usize, const V: usize, E: Element, D: Device<E>>(
    data: &Tensor<Rank2<B, V>, E, D>,
) -> Result<Tensor<Rank1<V>, E, D>, D::Err> {
    let p = data
        .clone()
        .try_mean::<Rank1<V>, Axis<0>>()?
        .try_clamp(0.001, 0.999)?;
    let off = p.clone().try_negate()?.try_add(E::one())?.try_ln()?;
    p.try_ln()?.try_sub(off)
}

impl<const V: usize, const H: usize, E: Element, D: Device<E>> Rbm<V, H, E, D> {
    /// Estimates log Z by annealed importance sampling with `M` runs in parallel on the device,
    /// from the base-rate model with visible biases `base_visible_bias` (`[V]`, e.g. from
    /// [`try_base_rate_visible_bias`]; zeros give the uniform distribution) through the β's of
    /// `schedule` (see the [module docs](crate::boltzmann::ais) for the formulas).
    /// Reproducible from the device's seed.
    ///
    /// More runs lower the variance; more steps lower the variance and the downward bias of
    /// log Ẑ. Each step costs two `[M, V] × [V, H]` matrix products.
    pub fn try_ais_log_partition<const M: usize>(
        &self,
        base_visible_bias: &Tensor<Rank1<V>, E, D>,
        schedule: &AisSchedule,
    ) -> Result<AisEstimate, D::Err> {
        self.try_ais_log_partition_with_progress::<M>(base_visible_bias, schedule, |_, _| {})
    }

    /// [`try_ais_log_partition`](Self::try_ais_log_partition) that calls
    /// `progress(done, steps)` after each annealing step (tens of thousands for the published
    /// schedule), e.g. to move a [`ProgressBar`](crate::train::ProgressBar) (`tqdm` around the
    /// loop over β); the library itself prints nothing.
    pub fn try_ais_log_partition_with_progress<const M: usize>(
        &self,
        base_visible_bias: &Tensor<Rank1<V>, E, D>,
        schedule: &AisSchedule,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<AisEstimate, D::Err> {
        let device = self.weight.device().clone();
        let base_bias_host: Vec<f64> = base_visible_bias.as_vec().into_iter().map(to_f64).collect();
        let base_log_partition = H as f64 * std::f64::consts::LN_2
            + base_bias_host.iter().map(|&b| softplus(b)).sum::<f64>();

        let base_rows = base_visible_bias
            .clone()
            .try_broadcast::<Rank2<M, V>, Axis<0>>()?;
        let visible_rows = self
            .visible_bias
            .clone()
            .try_broadcast::<Rank2<M, V>, Axis<0>>()?;
        let bias_difference = self
            .visible_bias
            .clone()
            .try_sub(base_visible_bias.clone())?
            .try_broadcast::<Rank2<M, V>, Axis<0>>()?;
        let hidden_rows = self
            .hidden_bias
            .clone()
            .try_broadcast::<Rank2<M, H>, Axis<0>>()?;
        let transposed = self
            .weight
            .clone()
            .try_permute::<Rank2<H, V>, Axes2<1, 0>>()?;

        // v₁ ~ p₀ exactly.
        let mut visible = try_sample_bernoulli(&base_rows.clone().try_sigmoid()?)?;
        let mut log_weights = vec![0.0f64; M];
        let mut pending: Tensor<Rank1<M>, E, D> = device.try_zeros()?;
        let betas = schedule.betas();
        let steps = schedule.steps();
        for k in 1..=steps {
            let (previous, current) = (betas[k - 1], betas[k]);
            let hidden_input = visible
                .clone()
                .try_matmul(self.weight.clone())?
                .try_add(hidden_rows.clone())?;
            let visible_term = visible
                .clone()
                .try_mul(bias_difference.clone())?
                .try_sum::<Rank1<M>, Axis<1>>()?
                .try_mul(cast::<E>(current - previous))?;
            // Softplus differences elementwise before summing: each is small, so the sum keeps
            // its precision in f32 where two large sums subtracted would not.
            let scaled_now = hidden_input.clone().try_mul(cast::<E>(current))?;
            let scaled_before = hidden_input.try_mul(cast::<E>(previous))?;
            let hidden_term = try_softplus(scaled_now.clone())?
                .try_sub(try_softplus(scaled_before)?)?
                .try_sum::<Rank1<M>, Axis<1>>()?;
            pending = pending.try_add(visible_term.try_add(hidden_term)?)?;
            if k % FLUSH_EVERY == 0 || k == steps {
                for (total, increment) in log_weights.iter_mut().zip(pending.as_vec()) {
                    *total += to_f64(increment);
                }
                pending = device.try_zeros()?;
            }
            if k < steps {
                // One Gibbs sweep that leaves p_{β_k} invariant.
                let hidden = try_sample_bernoulli(&scaled_now.try_sigmoid()?)?;
                let visible_input = hidden
                    .try_matmul(transposed.clone())?
                    .try_add(visible_rows.clone())?
                    .try_mul(cast::<E>(current))?
                    .try_add(base_rows.clone().try_mul(cast::<E>(1.0 - current))?)?;
                visible = try_sample_bernoulli(&visible_input.try_sigmoid()?)?;
            }
            progress(k, steps);
        }
        let log_mean_weight = log_sum_exp(&log_weights) - (M.max(1) as f64).ln();
        Ok(AisEstimate {
            log_partition: base_log_partition + log_mean_weight,
            base_log_partition,
            log_weights,
        })
    }

    /// The mean log-likelihood (1/B) Σ_b log p(v_b) = mean(−F(v_b)) − log Ẑ of a batch of binary
    /// data (`[B, V]`), with log Ẑ from [`Self::try_ais_log_partition`]: the free energies come
    /// from the device, the mean is taken in f64. In nats per example.
    pub fn try_ais_log_likelihood<const B: usize>(
        &self,
        data: &Tensor<Rank2<B, V>, E, D>,
        estimate: &AisEstimate,
    ) -> Result<f64, D::Err> {
        let free_energy = self.try_free_energy(data)?.as_vec();
        let mean = free_energy.into_iter().map(to_f64).sum::<f64>() / B.max(1) as f64;
        Ok(-mean - estimate.log_partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;

    /// A 12×8 machine with weights N(0, 2²) and biases N(0, 0.5²): strongly coupled, so the
    /// marginal is far from the base rate.
    fn coupled_rbm(dev: &TestDevice) -> Rbm<12, 8, f64, TestDevice> {
        let mut rbm = Rbm::<12, 8, f64, TestDevice>::try_new(dev, 2.0).unwrap();
        rbm.visible_bias = dev.sample_normal::<Rank1<12>>() * 0.5;
        rbm.hidden_bias = dev.sample_normal::<Rank1<8>>() * 0.5;
        rbm
    }

    #[test]
    fn ais_matches_the_exact_log_partition_of_a_small_coupled_rbm() {
        let dev = crate::test_device!(17);
        let rbm = coupled_rbm(&dev);
        let exact = rbm.exact_log_partition();
        let base: Tensor<Rank1<12>, f64, TestDevice> = dev.zeros();
        let estimate = rbm
            .try_ais_log_partition::<200>(&base, &AisSchedule::uniform(1000))
            .unwrap();
        let (low, high) = estimate.log_partition_interval(3.0);
        eprintln!(
            "AIS {} ± {} [{low}, {high}], ESS {}, vs exact {exact}",
            estimate.log_partition,
            estimate.standard_error(),
            estimate.effective_sample_size()
        );
        // Measured (seed 17): AIS 29.839 ± 0.011 vs exact 29.835, effective sample size 195.
        assert!(
            (estimate.log_partition - exact).abs() < 0.05,
            "AIS {} vs exact {exact}",
            estimate.log_partition
        );
        assert!(low <= exact && exact <= high, "[{low}, {high}] vs {exact}");
    }

    #[test]
    fn ais_log_likelihood_matches_the_exact_one() {
        let dev = crate::test_device!(23);
        let rbm = coupled_rbm(&dev);
        // 64 data rows drawn from the model itself by a long Gibbs chain.
        let start: Tensor<Rank2<64, 12>, f64, TestDevice> = dev.zeros();
        let data = rbm.try_gibbs_sample(start, 200).unwrap();
        let exact = rbm.exact_log_likelihood(&data);
        let base = try_base_rate_visible_bias(&data).unwrap();
        let estimate = rbm
            .try_ais_log_partition::<200>(&base, &AisSchedule::uniform(1000))
            .unwrap();
        let ais = rbm.try_ais_log_likelihood(&data, &estimate).unwrap();
        eprintln!("AIS log-likelihood {ais} vs exact {exact}");
        // Measured (seed 23): AIS −3.0664 vs exact −3.0699 nats per row.
        assert!((ais - exact).abs() < 0.05, "AIS {ais} vs exact {exact}");
    }

    #[test]
    fn the_base_rate_model_is_estimated_without_error() {
        // W = 0, c = 0, b = b_A: every intermediate distribution is the base rate, so each
        // weight is exactly 1 and log Ẑ = log Z₀ = H log 2 + Σ softplus(b_A).
        let dev = crate::test_device!(1);
        let data = dev.tensor([
            [1.0, 0.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 1.0],
        ]);
        let base = try_base_rate_visible_bias(&data).unwrap();
        crate::assert_close!(
            base.as_vec(),
            [3.0f64.ln(), (1.0f64 / 3.0).ln(), 3.0f64.ln()],
            1e-12
        );
        let mut rbm = Rbm::<3, 2, f64, TestDevice>::try_new(&dev, 0.0).unwrap();
        rbm.visible_bias = base.clone();
        let estimate = rbm
            .try_ais_log_partition::<16>(&base, &AisSchedule::uniform(10))
            .unwrap();
        let exact = rbm.exact_log_partition();
        assert!((estimate.log_partition - exact).abs() < 1e-12);
        assert!((estimate.base_log_partition - exact).abs() < 1e-12);
        assert!(estimate.standard_error().abs() < 1e-12);
        assert!((estimate.effective_sample_size() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn ais_is_reproducible_from_the_seed() {
        // Skips the test when built for CUDA without a GPU; the closure then opens seeded devices.
        let _ = crate::test_device!();
        let run = |seed| {
            let dev = crate::testing::test_device_seeded(seed).expect("probed above");
            let rbm = Rbm::<6, 4, f64, TestDevice>::try_new(&dev, 1.0).unwrap();
            let base: Tensor<Rank1<6>, f64, TestDevice> = dev.zeros();
            rbm.try_ais_log_partition::<8>(&base, &AisSchedule::uniform(20))
                .unwrap()
                .log_weights
        };
        assert_eq!(run(4), run(4));
        assert_ne!(run(4), run(5));
    }

    #[test]
    fn schedules_are_checked_and_built_as_documented() {
        assert_eq!(
            AisSchedule::uniform(4).betas(),
            &[0.0, 0.25, 0.5, 0.75, 1.0]
        );
        let paper = AisSchedule::salakhutdinov_murray();
        assert_eq!(paper.steps(), 15_000);
        assert_eq!(paper.betas()[1_000], 0.5);
        assert_eq!(paper.betas()[5_000], 0.9);
        assert!((paper.betas()[1] - 5e-4).abs() < 1e-15);
        assert_eq!(AisSchedule::scaled_salakhutdinov_murray(0.2).steps(), 3_000);
        assert_eq!(
            AisSchedule::try_from_betas(vec![0.0]),
            Err(AisScheduleError::TooShort)
        );
        assert_eq!(
            AisSchedule::try_from_betas(vec![0.0, 0.5]),
            Err(AisScheduleError::BadEnds {
                first: 0.0,
                last: 0.5
            })
        );
        assert_eq!(
            AisSchedule::try_from_betas(vec![0.0, 0.6, 0.6, 1.0]),
            Err(AisScheduleError::NotIncreasing { index: 2 })
        );
        assert!(AisSchedule::piecewise(&[(0.5, 2), (0.9, 0), (0.8, 1)]).is_err());
    }
}
