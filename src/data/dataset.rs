//! An in-memory classification data set: one feature array and one label per example.

use super::error::{DataError, DataErrorKind};

/// Examples of one shape with a class label each, held in memory.
///
/// The features are `f32` whatever element type a model trains in: they are converted when a
/// batch becomes a tensor (see [`Dataset::batches`]). The invariants — one example of
/// `example_shape` per label, every label below `classes` — are checked by [`Dataset::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    features: Vec<f32>,
    labels: Vec<usize>,
    example_shape: Vec<usize>,
    classes: usize,
}

impl Dataset {
    /// A data set called `name` (used in error messages) from `features` — examples one after
    /// another, each row-major of `example_shape` — and one label per example, each below
    /// `classes`.
    ///
    /// Fails when `features.len() != labels.len() · ∏ example_shape` or a label is `≥ classes`.
    pub fn new(
        name: impl Into<String>,
        features: Vec<f32>,
        labels: Vec<usize>,
        example_shape: Vec<usize>,
        classes: usize,
    ) -> Result<Self, DataError> {
        let name = name.into();
        let example_len: usize = example_shape.iter().product();
        let expected = labels.len().checked_mul(example_len);
        if expected != Some(features.len()) {
            return Err(DataError::new(
                name,
                DataErrorKind::FeatureCount {
                    expected: expected.unwrap_or(usize::MAX),
                    found: features.len(),
                },
            ));
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(DataError::new(
                name,
                DataErrorKind::LabelOutOfRange {
                    index,
                    label,
                    classes,
                },
            ));
        }
        Ok(Self {
            name,
            features,
            labels,
            example_shape,
            classes,
        })
    }

    /// The name error messages use, e.g. `mnist` or `mnist[..8000]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same data set under another name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// All features, example after example, each row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// One label per example.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The shape of one example, e.g. `[1, 28, 28]`.
    pub fn example_shape(&self) -> &[usize] {
        &self.example_shape
    }

    /// Number of values in one example (`∏ example_shape`).
    pub fn example_len(&self) -> usize {
        self.example_shape.iter().product()
    }

    /// Number of classes; every label is below it.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set holds no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features and the label of example `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<(&[f32], usize)> {
        let label = *self.labels.get(index)?;
        let len = self.example_len();
        Some((&self.features[index * len..(index + 1) * len], label))
    }

    /// How many examples each class has: `counts[c]` for class `c`.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &label in &self.labels {
            counts[label] += 1;
        }
        counts
    }

    /// The first `n` examples and the rest, named `name[..n]` and `name[n..]`; `n` past the end
    /// is clamped, giving an empty second part.
    ///
    /// Like `torch.utils.data.Subset(ds, range(n))` and `Subset(ds, range(n, len(ds)))`.
    pub fn split_at(mut self, n: usize) -> (Dataset, Dataset) {
        let n = n.min(self.len());
        let rest_labels = self.labels.split_off(n);
        let rest_features = self.features.split_off(n * self.example_len());
        let rest = Dataset {
            name: format!("{}[{n}..]", self.name),
            features: rest_features,
            labels: rest_labels,
            example_shape: self.example_shape.clone(),
            classes: self.classes,
        };
        self.name = format!("{}[..{n}]", self.name);
        (self, rest)
    }

    /// The first `n` examples (all of them when `n ≥ len`).
    pub fn take(self, n: usize) -> Dataset {
        self.split_at(n).0
    }

    /// The mean and the standard deviation (divided by the count) of every feature value of
    /// every example, summed in `f64`; `(0, 0)` for an empty set.
    ///
    /// These are the two numbers torchvision's `transforms.Normalize((mean,), (std,))` takes
    /// for a one-channel set (for MNIST's 60,000 training digits, the familiar 0.1307 and
    /// 0.3081). Compute them on the training set only; see [`Dataset::standardized`].
    pub fn feature_mean_and_std(&self) -> (f32, f32) {
        if self.features.is_empty() {
            return (0.0, 0.0);
        }
        let count = self.features.len() as f64;
        let mean = self.features.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
        let variance = self
            .features
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / count;
        (mean as f32, variance.sqrt() as f32)
    }

    /// The same examples with every feature value `v` replaced by `(v − mean) / std`, as
    /// torchvision's `transforms.Normalize((mean,), (std,))` does.
    ///
    /// Inputs centred on zero with unit spread keep the first layer's pre-activations in the
    /// range its default initialisation assumes, which usually trains faster and a little
    /// better. Standardise the training and the test set with the training set's
    /// [`feature_mean_and_std`](Dataset::feature_mean_and_std), so that nothing of the test set
    /// leaks into training.
    ///
    /// Fails when `mean` is not finite or `std` is not a positive finite number.
    pub fn standardized(mut self, mean: f32, std: f32) -> Result<Self, DataError> {
        if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
            return Err(DataError::new(
                self.name,
                DataErrorKind::BadStandardization { mean, std },
            ));
        }
        for value in &mut self.features {
            *value = (*value - mean) / std;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset::new(
            "tiny",
            (0..12).map(|v| v as f32).collect(),
            vec![0, 1, 2],
            vec![2, 2],
            3,
        )
        .unwrap()
    }

    #[test]
    fn split_keeps_examples_whole() {
        let (head, tail) = tiny().split_at(1);
        assert_eq!(head.features(), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(head.labels(), [0]);
        assert_eq!(tail.labels(), [1, 2]);
        assert_eq!(tail.get(1), Some(([8.0, 9.0, 10.0, 11.0].as_slice(), 2)));
        assert_eq!(head.name(), "tiny[..1]");
        assert_eq!(tail.name(), "tiny[1..]");
    }

    #[test]
    fn split_past_the_end_is_clamped() {
        let (head, tail) = tiny().split_at(10);
        assert_eq!(head.len(), 3);
        assert!(tail.is_empty());
    }

    #[test]
    fn new_checks_the_invariants() {
        let err = Dataset::new("d", vec![0.0; 5], vec![0, 1], vec![3], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d: expected 6 feature values (one example per label), found 5"
        );
        let err = Dataset::new("d", vec![0.0; 6], vec![0, 2], vec![3], 2).unwrap_err();
        assert!(err.to_string().contains("label 2 at index 1"), "{err}");
    }

    #[test]
    fn standardizing_with_the_sets_own_figures_gives_mean_zero_and_deviation_one() {
        // Values 0..12: mean 5.5, population variance (12² − 1)/12.
        let (mean, std) = tiny().feature_mean_and_std();
        assert_eq!(mean, 5.5);
        assert!((std - (143.0f32 / 12.0).sqrt()).abs() < 1e-6, "{std}");
        let standardized = tiny().standardized(mean, std).unwrap();
        assert!((standardized.features()[0] - (-5.5 / std)).abs() < 1e-6);
        let (mean, std) = standardized.feature_mean_and_std();
        assert!(
            mean.abs() < 1e-6 && (std - 1.0).abs() < 1e-6,
            "{mean} {std}"
        );
        assert_eq!(standardized.labels(), tiny().labels());
        assert_eq!(standardized.example_shape(), tiny().example_shape());
    }

    #[test]
    fn standardizing_refuses_a_zero_or_non_finite_deviation() {
        for (mean, std) in [
            (0.0, 0.0),
            (0.0, -1.0),
            (f32::NAN, 1.0),
            (0.0, f32::INFINITY),
        ] {
            let err = tiny().standardized(mean, std).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("tiny: cannot standardise with mean"),
                "{err}"
            );
        }
        assert_eq!(
            Dataset::new("e", vec![], vec![], vec![2], 1)
                .unwrap()
                .feature_mean_and_std(),
            (0.0, 0.0)
        );
    }

    #[test]
    fn class_counts_is_a_histogram() {
        assert_eq!(tiny().class_counts(), [1, 1, 1]);
    }
}
