//! Annealed importance sampling (AIS) for a restricted Boltzmann machine's log partition
//! function, after Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief
//! networks".
//!
//! AIS anneals from a base-rate model p_A(v) ∝ exp(b_Aᵀv) (visible biases only, no hidden
//! units, Z_A = Πᵢ (1 + e^(b_A,i)) in closed form; set b_A from the data means for a good start)
//! to the RBM through the intermediate distributions
//!
//! p*_β(v) = exp((1 − β) b_Aᵀv + β bᵀv) Πⱼ (1 + exp(β (cⱼ + vᵀW₍:,ⱼ₎))),  0 = β₀ < … < β_K = 1.
//!
//! Each chain starts with an exact draw from p_A, accumulates the log importance weight
//! log w = Σ_k [log p*_{β_k}(v_k) − log p*_{β_{k−1}}(v_k)], and moves by one block Gibbs step
//! that leaves p_{β_k} invariant (h ~ σ(β(c + vW)), v ~ σ((1 − β) b_A + β (b + hWᵀ))). Then
//! log Z ≈ log Z_A + log mean(w). PyTorch has no AIS.

use super::exact::log_sum_exp;
use super::rbm::Rbm;
use super::sample::try_sample_bernoulli;
use crate::network::Element;
use dfdx::prelude::*;

/// The result of [`try_ais_log_partition`].
#[derive(Debug, Clone, PartialEq)]
pub struct AisEstimate {
    /// The estimate of log Z: log Z_A + log mean(w).
    pub log_partition: f64,
    /// log Z_A of the base-rate model.
    pub base_log_partition: f64,
    /// Each chain's log importance weight log w.
    pub log_weights: Vec<f64>,
}

/// The base-rate model's visible biases b_A,i = log(pᵢ / (1 − pᵢ)) from a batch of data
/// (`[B, V]`), pᵢ the fraction of rows with unit `i` on, clamped to [0.001, 0.999].
pub fn try_base_rate_bias<const B: usize, const V: usize, E: Element, D: Device<E>>(
    data: &Tensor<Rank2<B, V>, E, D>,
) -> Result<Tensor<Rank1<V>, E, D>, D::Err> {
    let values = data.as_vec();
    let mut means = vec![0.0; V];
    for (k, x) in values.iter().enumerate() {
        means[k % V] += x.to_f64().unwrap_or(0.0);
    }
    let bias: Vec<E> = means
        .iter()
        .map(|m| {
            let p = (m / B.max(1) as f64).clamp(0.001, 0.999);
            cast::<E>((p / (1.0 - p)).ln())
        })
        .collect();
    data.device().try_tensor_from_vec(bias, (Const::<V>,))
}

/// Estimates log Z of `rbm` by AIS with `C` independent chains and `intermediate`
/// inverse temperatures spaced evenly in (0, 1) (so K = intermediate + 1 annealing steps),
/// starting from the base-rate model with visible biases `base_visible_bias` (`[V]`, e.g. from
/// [`try_base_rate_bias`], or zeros for the uniform distribution). Reproducible from the
/// device's seed. More chains lower the variance; more intermediate distributions lower the
/// bias (AIS tends to underestimate log Z when too few are used).
pub fn try_ais_log_partition<const V: usize, const H: usize, const C: usize, E, D>(
    rbm: &Rbm<V, H, E, D>,
    base_visible_bias: &Tensor<Rank1<V>, E, D>,
    intermediate: usize,
) -> Result<AisEstimate, D::Err>
where
    E: Element,
    D: Device<E>,
{
    let steps = intermediate + 1;
    let betas: Vec<f64> = (0..=steps).map(|k| k as f64 / steps as f64).collect();
    let base_bias_host: Vec<f64> =
        base_visible_bias.as_vec().into_iter().map(|b| b.to_f64().unwrap_or(f64::NAN)).collect();
    let base_log_partition: f64 = base_bias_host.iter().map(|&b| softplus(b)).sum();

    let base_rows = base_visible_bias.clone().try_broadcast::<Rank2<C, V>, Axis<0>>()?;
    let rbm_rows = rbm.visible_bias.clone().try_broadcast::<Rank2<C, V>, Axis<0>>()?;
    let hidden_rows = rbm.hidden_bias.clone().try_broadcast::<Rank2<C, H>, Axis<0>>()?;
    let transposed = rbm.weight.clone().try_permute::<Rank2<H, V>, Axes2<1, 0>>()?;

    // An exact draw from p_A.
    let mut visible = try_sample_bernoulli(&base_rows.clone().try_sigmoid()?)?;
    let mut log_weights = visible.device().try_zeros_like(&(Const::<C>,))?;
    for k in 1..=steps {
        let (previous, current) = (betas[k - 1], betas[k]);
        // log p*_β(v) = (1 − β) b_Aᵀv + β bᵀv + Σⱼ softplus(β (cⱼ + vᵀW₍:,ⱼ₎)).
        let base_term = visible.clone().try_mul(base_rows.clone())?.try_sum::<Rank1<C>, Axis<1>>()?;
        let rbm_term = visible.clone().try_mul(rbm_rows.clone())?.try_sum::<Rank1<C>, Axis<1>>()?;
        let hidden_input = visible.clone().try_matmul(rbm.weight.clone())?.try_add(hidden_rows.clone())?;
        let delta = current - previous;
        let softplus_now =
            try_softplus(hidden_input.clone().try_mul(cast::<E>(current))?)?.try_sum::<Rank1<C>, Axis<1>>()?;
        let softplus_before =
            try_softplus(hidden_input.clone().try_mul(cast::<E>(previous))?)?.try_sum::<Rank1<C>, Axis<1>>()?;
        let increment = rbm_term
            .try_sub(base_term)?
            .try_mul(cast::<E>(delta))?
            .try_add(softplus_now)?
            .try_sub(softplus_before)?;
        log_weights = log_weights.try_add(increment)?;
        if k < steps {
            // One Gibbs step leaving p_β invariant.
            let hidden = try_sample_bernoulli(&hidden_input.try_mul(cast::<E>(current))?.try_sigmoid()?)?;
            let visible_input = hidden
                .try_matmul(transposed.clone())?
                .try_add(rbm_rows.clone())?
                .try_mul(cast::<E>(current))?
                .try_add(base_rows.clone().try_mul(cast::<E>(1.0 - current))?)?;
            visible = try_sample_bernoulli(&visible_input.try_sigmoid()?)?;
        }
    }
    let log_weights: Vec<f64> =
        log_weights.as_vec().into_iter().map(|w| w.to_f64().unwrap_or(f64::NAN)).collect();
    let log_mean_weight = log_sum_exp(&log_weights) - (C.max(1) as f64).ln();
    Ok(AisEstimate { log_partition: base_log_partition + log_mean_weight, base_log_partition, log_weights })
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn try_softplus<S: Shape, E: Element, D: Device<E>>(
    x: Tensor<S, E, D>,
) -> Result<Tensor<S, E, D>, D::Err> {
    let positive = x.clone().try_relu()?;
    let tail = x.try_abs()?.try_negate()?.try_exp()?.try_add(E::one())?.try_ln()?;
    positive.try_add(tail)
}

fn cast<E: Element>(value: f64) -> E {
    <E as num_traits::NumCast>::from(value).unwrap_or_else(E::zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;

    #[test]
    fn ais_matches_the_exact_log_partition_of_a_small_rbm() {
        let dev = TestDevice::seed_from_u64(17);
        let mut rbm = Rbm::<12, 8, f64, TestDevice>::try_new(&dev, 1.0).unwrap();
        rbm.visible_bias = dev.sample_normal::<Rank1<12>>().try_mul(0.5).unwrap();
        rbm.hidden_bias = dev.sample_normal::<Rank1<8>>().try_mul(0.5).unwrap();
        let exact = rbm.exact_log_partition();
        let base: Tensor<Rank1<12>, f64, TestDevice> = dev.zeros();
        let estimate = try_ais_log_partition::<12, 8, 500, _, _>(&rbm, &base, 1000).unwrap();
        eprintln!("AIS {} vs exact {exact}", estimate.log_partition);
        assert!((estimate.log_partition - exact).abs() < 0.1, "AIS {} vs exact {exact}", estimate.log_partition);
    }
}
