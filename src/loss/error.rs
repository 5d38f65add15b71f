//! The error every `try_` loss returns.

use core::fmt;

/// Why a `try_` loss could not compute its value. Every message starts with the loss's name.
#[derive(Debug)]
#[non_exhaustive]
pub enum LossError<DeviceError> {
    /// The number of labels is not the batch size of the logits.
    LabelCount {
        /// The loss, as its function is named (`cross_entropy`, `multiclass_hinge`, …).
        loss: &'static str,
        /// Rows of the logits.
        batch: usize,
        /// Labels given.
        labels: usize,
    },
    /// A label is not below the number of classes (columns of the logits).
    LabelOutOfRange {
        /// The loss.
        loss: &'static str,
        /// Position of the first bad label.
        index: usize,
        /// The label.
        label: usize,
        /// Columns of the logits.
        classes: usize,
    },
    /// The targets do not have the shape of the predictions (possible when a dimension is a
    /// run-time `usize`; with `Const` dimensions it is a compile error instead).
    TargetShape {
        /// The loss.
        loss: &'static str,
        /// Shape of the predictions.
        predictions: Vec<usize>,
        /// Shape of the targets.
        targets: Vec<usize>,
    },
    /// A binary target is none of −1, 0, 1.
    BinaryTarget {
        /// The loss.
        loss: &'static str,
        /// Flat (row-major) position of the first bad target.
        index: usize,
        /// The target.
        value: f64,
    },
    /// Binary targets mix the `{0, 1}` and `{−1, +1}` conventions, which is almost certainly a
    /// bug in the data (both 0 and −1 would mean "negative").
    MixedBinaryConventions {
        /// The loss.
        loss: &'static str,
        /// Position of the first 0.
        zero_at: usize,
        /// Position of the first −1.
        minus_one_at: usize,
    },
    /// The pseudo-Huber `δ` is not a positive finite number.
    NonPositiveDelta {
        /// The loss.
        loss: &'static str,
        /// The `δ` given.
        delta: f64,
    },
    /// The device failed (out of memory, a CUDA error).
    Device(DeviceError),
}

impl<DeviceError: fmt::Display> fmt::Display for LossError<DeviceError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LabelCount {
                loss,
                batch,
                labels,
            } => write!(
                f,
                "{loss}: logits hold a batch of {batch} rows but {labels} labels were given"
            ),
            Self::LabelOutOfRange {
                loss,
                index,
                label,
                classes,
            } => write!(
                f,
                "{loss}: label {label} at index {index} is out of range for logits with {classes} classes"
            ),
            Self::TargetShape {
                loss,
                predictions,
                targets,
            } => write!(
                f,
                "{loss}: predictions have shape {predictions:?} but targets have shape {targets:?}"
            ),
            Self::BinaryTarget { loss, index, value } => write!(
                f,
                "{loss}: target {value} at index {index} is not a binary label (use 0 or 1, or −1 or +1)"
            ),
            Self::MixedBinaryConventions {
                loss,
                zero_at,
                minus_one_at,
            } => write!(
                f,
                "{loss}: targets mix the {{0, 1}} and {{−1, +1}} conventions (0 at index {zero_at}, −1 at index {minus_one_at})"
            ),
            Self::NonPositiveDelta { loss, delta } => {
                write!(f, "{loss}: δ must be a positive finite number, got {delta}")
            }
            Self::Device(err) => write!(f, "loss: device error: {err}"),
        }
    }
}

impl<DeviceError: fmt::Debug + fmt::Display> std::error::Error for LossError<DeviceError> {}
