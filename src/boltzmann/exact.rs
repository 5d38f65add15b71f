//! Exact, host-side helpers for small Boltzmann machines and their tests: enumerating binary
//! states, normalising energies, and comparing distributions.

/// Every binary vector of length `n`, in the order of the integers 0 … 2ⁿ − 1 with unit `i`
/// equal to bit `i` (so state `k` has `x_i = (k >> i) & 1`).
///
/// # Panics
/// If `n > 24` (16 million states is past what exact enumeration is meant for).
pub fn binary_states(n: usize) -> impl Iterator<Item = Vec<f64>> {
    assert!(
        n <= 24,
        "binary_states: 2^{n} states are too many to enumerate"
    );
    (0..1usize << n).map(move |k| (0..n).map(|i| ((k >> i) & 1) as f64).collect())
}

/// log Σ exp(aᵢ), computed without overflow; −∞ for an empty slice.
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// KL(p ‖ q) = Σ pᵢ log(pᵢ / qᵢ) in nats; terms with pᵢ = 0 contribute 0, and qᵢ = 0 where
/// pᵢ > 0 gives +∞.
///
/// # Panics
/// If the two distributions have different lengths.
pub fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(
        p.len(),
        q.len(),
        "kl_divergence: distributions of different lengths"
    );
    p.iter()
        .zip(q)
        .filter(|(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            if qi > 0.0 {
                pi * (pi / qi).ln()
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

/// Pearson's χ² statistic of observed counts against expected probabilities, and its degrees of
/// freedom. Cells whose expected count is below 5 are pooled into one cell (the usual rule for
/// the χ² approximation to hold).
///
/// # Panics
/// If the slices differ in length.
pub fn chi_square(observed: &[usize], expected_probabilities: &[f64]) -> (f64, usize) {
    assert_eq!(
        observed.len(),
        expected_probabilities.len(),
        "chi_square: lengths differ"
    );
    let total: usize = observed.iter().sum();
    let total = total as f64;
    let (mut statistic, mut cells) = (0.0, 0usize);
    let (mut pooled_observed, mut pooled_expected) = (0.0, 0.0);
    for (&o, &p) in observed.iter().zip(expected_probabilities) {
        let expected = p * total;
        if expected < 5.0 {
            pooled_observed += o as f64;
            pooled_expected += expected;
        } else {
            statistic += (o as f64 - expected).powi(2) / expected;
            cells += 1;
        }
    }
    if pooled_expected > 0.0 {
        statistic += (pooled_observed - pooled_expected).powi(2) / pooled_expected;
        cells += 1;
    }
    (statistic, cells.saturating_sub(1))
}

/// The χ² value that a statistic with `degrees_of_freedom` exceeds with probability
/// `significance` (e.g. 0.001), by the Wilson–Hilferty approximation (accurate to a few percent
/// from 3 degrees of freedom up).
pub fn chi_square_critical(degrees_of_freedom: usize, significance: f64) -> f64 {
    let k = degrees_of_freedom.max(1) as f64;
    let z = standard_normal_upper_quantile(significance);
    let h = 2.0 / (9.0 * k);
    k * (1.0 - h + z * h.sqrt()).powi(3)
}

/// z with P(Z > z) = p for a standard normal Z (Acklam's rational approximation, relative error
/// below 1.2e-9), for 0 < p < 1.
fn standard_normal_upper_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    // Lower-tail quantile of q = 1 − p, then the upper tail is its value.
    let q = 1.0 - p;
    let tail = |t: f64| {
        let r = (-2.0 * t.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if q < 0.02425 {
        tail(q)
    } else if q > 1.0 - 0.02425 {
        -tail(1.0 - q)
    } else {
        let u = q - 0.5;
        let r = u * u;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * u
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_enumerated_with_unit_i_as_bit_i() {
        let states: Vec<_> = binary_states(2).collect();
        assert_eq!(
            states,
            vec![
                vec![0.0, 0.0],
                vec![1.0, 0.0],
                vec![0.0, 1.0],
                vec![1.0, 1.0]
            ]
        );
        assert_eq!(binary_states(10).count(), 1024);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((log_sum_exp(&[0.0, 1.0f64.ln(), 2.0f64.ln()]) - 4f64.ln()).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
    }

    #[test]
    fn kl_divergence_known_values() {
        assert_eq!(kl_divergence(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        let expected = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        assert!((kl_divergence(&[0.25, 0.75], &[0.5, 0.5]) - expected).abs() < 1e-15);
        assert_eq!(kl_divergence(&[1.0, 0.0], &[0.0, 1.0]), f64::INFINITY);
    }

    #[test]
    fn chi_square_statistic_and_critical_values() {
        // Observed 30/70 against 0.5/0.5: (20² + 20²)/50 = 16 on 1 degree of freedom.
        assert_eq!(chi_square(&[30, 70], &[0.5, 0.5]), (16.0, 1));
        // Tables: χ²(0.001) is 16.27 for 3 and 29.59 for 10 degrees of freedom, 18.31 is χ²(0.05, 10).
        assert!((chi_square_critical(3, 0.001) - 16.27).abs() < 0.3);
        assert!((chi_square_critical(10, 0.001) - 29.59).abs() < 0.2);
        assert!((chi_square_critical(10, 0.05) - 18.31).abs() < 0.05);
    }
}
