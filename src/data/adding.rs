//! The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the form of Le et al.
//! (2015) and Arjovsky et al. (2016): a test of long-term memory for recurrent networks.
//!
//! Each example is a sequence of `T` steps with two features. The first is a value `v_t` drawn
//! uniformly from `[0, 1]`; the second is a marker `m_t`, 1 at exactly two steps — `a`, drawn
//! uniformly from the first half `0 ≤ a < ⌊T/2⌋`, and `b`, from the second half
//! `⌊T/2⌋ ≤ b < T` — and 0 elsewhere. The target is
//!
//! `y = Σ_t m_t·v_t = v_a + v_b`.
//!
//! A network must remember `v_a` across at least `T/2` steps. Always predicting `1` (the mean
//! of `y`) has a mean squared error of `Var(v_a + v_b) = 2·(1/12) = 1/6 ≈ 0.167`: the baseline
//! a model must beat; [`AddingProblem::BASELINE_MSE`].
//!
//! # Shapes
//! A batch of `B` examples is `[B, T, 2]` (value, marker at each step) and the targets `[B, 1]`;
//! [`AddingBatch::inputs`] and [`AddingBatch::targets`] make them dfdx tensors.
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use typednet::data::adding::AddingProblem;
//! use typednet::dfdx::prelude::*;
//!
//! let problem = AddingProblem::new(100);
//! let batch = problem.batch(32, &mut StdRng::seed_from_u64(0));
//! let dev = Cpu::default();
//! let x: Tensor<(usize, usize, Const<2>), f32, Cpu> = batch.inputs(&dev);
//! let y: Tensor<(usize, Const<1>), f32, Cpu> = batch.targets(&dev);
//! assert_eq!(x.shape().concrete(), [32, 100, 2]);
//! assert_eq!(y.shape().concrete(), [32, 1]);
//! ```

use dfdx::shapes::Const;
use dfdx::tensor::{Tensor, TensorFromVec};
use rand::Rng;

use crate::network::Element;

/// The adding problem with sequences of `steps` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddingProblem {
    /// The sequence length `T` (at least 2, so that each half holds a marker).
    pub steps: usize,
}

/// A batch of adding-problem examples as flat vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct AddingBatch {
    /// The number of examples `B`.
    pub batch_size: usize,
    /// The sequence length `T`.
    pub steps: usize,
    /// `[B, T, 2]` row-major: element `(b·T + t)·2` is example `b`'s value `v_t`, the next one
    /// its marker `m_t`.
    pub values_and_markers: Vec<f32>,
    /// `[B]`: the sum of each example's two marked values.
    pub sums: Vec<f32>,
}

impl AddingProblem {
    /// The mean squared error of always predicting 1, the mean target: `Var(v_a + v_b) = 1/6`.
    pub const BASELINE_MSE: f64 = 1.0 / 6.0;

    /// The problem with sequences of `steps` steps.
    ///
    /// # Panics
    /// If `steps < 2`: each half of the sequence must hold a marker.
    pub fn new(steps: usize) -> Self {
        assert!(
            steps >= 2,
            "adding problem: {steps} steps, need at least 2 (a marker in each half)"
        );
        Self { steps }
    }

    /// One example: `[T, 2]` (value, marker per step) and its target, drawn from `rng`.
    pub fn example<R: Rng + ?Sized>(&self, rng: &mut R) -> (Vec<f32>, f32) {
        let steps = self.steps;
        let half = steps / 2;
        let first = rng.gen_range(0..half);
        let second = rng.gen_range(half..steps);
        let mut sequence = Vec::with_capacity(2 * steps);
        let mut sum = 0.0;
        for t in 0..steps {
            let value: f32 = rng.gen_range(0.0..=1.0);
            let marked = t == first || t == second;
            if marked {
                sum += value;
            }
            sequence.push(value);
            sequence.push(if marked { 1.0 } else { 0.0 });
        }
        (sequence, sum)
    }

    /// `batch_size` examples drawn from `rng`, one after the other.
    pub fn batch<R: Rng + ?Sized>(&self, batch_size: usize, rng: &mut R) -> AddingBatch {
        let mut values_and_markers = Vec::with_capacity(batch_size * self.steps * 2);
        let mut sums = Vec::with_capacity(batch_size);
        for _ in 0..batch_size {
            let (sequence, sum) = self.example(rng);
            values_and_markers.extend(sequence);
            sums.push(sum);
        }
        AddingBatch {
            batch_size,
            steps: self.steps,
            values_and_markers,
            sums,
        }
    }
}

impl AddingBatch {
    /// The inputs as a `[B, T, 2]` tensor (both sizes known at run time).
    pub fn inputs<E: Element, D: TensorFromVec<E>>(
        &self,
        device: &D,
    ) -> Tensor<(usize, usize, Const<2>), E, D> {
        device.tensor_from_vec(
            convert(&self.values_and_markers),
            (self.batch_size, self.steps, Const),
        )
    }

    /// The targets as a `[B, 1]` tensor, the shape of a `Linear<H, 1>` head's output.
    pub fn targets<E: Element, D: TensorFromVec<E>>(
        &self,
        device: &D,
    ) -> Tensor<(usize, Const<1>), E, D> {
        device.tensor_from_vec(convert(&self.sums), (self.batch_size, Const))
    }
}

fn convert<E: Element>(values: &[f32]) -> Vec<E> {
    values
        .iter()
        .map(|&v| E::from(v).expect("values in [0, 2] convert to any float type"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// The marked steps of one `[T, 2]` example.
    fn markers(sequence: &[f32]) -> Vec<usize> {
        sequence
            .chunks(2)
            .enumerate()
            .filter(|(_, step)| step[1] != 0.0)
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn two_markers_one_in_each_half() {
        let mut rng = StdRng::seed_from_u64(1);
        for steps in [2, 3, 10, 101] {
            let problem = AddingProblem::new(steps);
            for _ in 0..500 {
                let (sequence, _) = problem.example(&mut rng);
                assert_eq!(sequence.len(), 2 * steps);
                assert!(sequence.chunks(2).all(|s| s[1] == 0.0 || s[1] == 1.0));
                let marked = markers(&sequence);
                assert_eq!(marked.len(), 2, "T = {steps}: markers at {marked:?}");
                assert!(marked[0] < steps / 2 && marked[1] >= steps / 2);
            }
        }
    }

    #[test]
    fn every_marker_position_occurs() {
        let problem = AddingProblem::new(10);
        let mut rng = StdRng::seed_from_u64(2);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            for t in markers(&problem.example(&mut rng).0) {
                seen[t] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn target_is_the_sum_of_the_marked_values_and_values_lie_in_0_1() {
        let problem = AddingProblem::new(50);
        let batch = problem.batch(200, &mut StdRng::seed_from_u64(3));
        assert_eq!(batch.values_and_markers.len(), 200 * 50 * 2);
        assert_eq!(batch.sums.len(), 200);
        for (sequence, &sum) in batch.values_and_markers.chunks(100).zip(&batch.sums) {
            assert!(sequence.chunks(2).all(|s| (0.0..=1.0).contains(&s[0])));
            let expected: f32 = markers(sequence).iter().map(|&t| sequence[2 * t]).sum();
            assert_eq!(sum, expected);
        }
    }

    #[test]
    fn same_seed_same_batch() {
        let problem = AddingProblem::new(20);
        let a = problem.batch(8, &mut StdRng::seed_from_u64(4));
        let b = problem.batch(8, &mut StdRng::seed_from_u64(4));
        let c = problem.batch(8, &mut StdRng::seed_from_u64(5));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn predicting_one_has_mse_one_sixth() {
        let batch = AddingProblem::new(100).batch(20_000, &mut StdRng::seed_from_u64(6));
        let mse = batch
            .sums
            .iter()
            .map(|&y| (f64::from(y) - 1.0).powi(2))
            .sum::<f64>()
            / batch.sums.len() as f64;
        // One squared error (v_a + v_b − 1)² has variance 1/15 − 1/36 ≈ 0.039 (v_a + v_b − 1 is
        // triangular on [−1, 1]), so the mean over 20,000 has a standard deviation of about
        // 0.0014; 0.005 is 3.5 of them.
        assert!(
            (mse - AddingProblem::BASELINE_MSE).abs() < 0.005,
            "baseline MSE {mse}, expected 1/6"
        );
    }

    #[test]
    fn tensors_hold_the_batch_in_order() {
        use dfdx::shapes::HasShape;
        use dfdx::tensor::Cpu;
        let batch = AddingProblem::new(4).batch(3, &mut StdRng::seed_from_u64(7));
        let dev = Cpu::default();
        let x = batch.inputs::<f32, _>(&dev);
        let y = batch.targets::<f32, _>(&dev);
        assert_eq!(*x.shape(), (3, 4, Const::<2>));
        assert_eq!(*y.shape(), (3, Const::<1>));
        assert_eq!(x.as_vec(), batch.values_and_markers);
        assert_eq!(y.as_vec(), batch.sums);
    }

    #[test]
    #[should_panic(expected = "at least 2")]
    fn one_step_is_refused() {
        AddingProblem::new(1);
    }
}
