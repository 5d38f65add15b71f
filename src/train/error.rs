//! The error a training run returns.

use core::fmt;

use dfdx::optim::OptimizerUpdateError;

use super::csv::MetricsFileError;
use crate::data::DataError;
use crate::loss::LossError;
use crate::regularize::RegularizeError;

/// Why training or evaluation stopped.
#[derive(Debug)]
pub enum TrainError<DeviceError> {
    /// The data set does not fit the model (example shape, number of classes) or the batch size
    /// is 0.
    Data(DataError),
    /// The loss could not be computed.
    Loss(LossError<DeviceError>),
    /// A penalty, clipping threshold or max-norm constraint is invalid for the model, or
    /// could not be applied.
    Regularize(RegularizeError<DeviceError>),
    /// The loss of a training step (penalties included) was NaN or infinite. Training stopped
    /// before that step's backward pass and update, so the weights are those after the step
    /// before.
    NonFiniteLoss {
        /// The epoch, counted from 1.
        epoch: usize,
        /// The mini-batch within the epoch, counted from 1.
        step: usize,
        /// The loss.
        value: f64,
    },
    /// A feature of the training or test set is NaN or infinite; found before training.
    NonFiniteData {
        /// The data set's name.
        data: String,
        /// The example, counted from 0.
        example: usize,
        /// The feature within the example (row-major), counted from 0.
        feature: usize,
        /// The value.
        value: f32,
    },
    /// The optimiser could not update the model (a parameter had no gradient, or the device
    /// failed).
    Optimizer(OptimizerUpdateError<DeviceError>),
    /// The device failed (out of memory, a CUDA error).
    Device(DeviceError),
    /// The metrics CSV file ([`Trainer::metrics_csv`](super::Trainer::metrics_csv)) could not
    /// be created or written; the message names the file.
    MetricsFile(MetricsFileError),
}

impl<DeviceError: fmt::Display> fmt::Display for TrainError<DeviceError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Data(err) => write!(f, "{err}"),
            Self::Loss(err) => write!(f, "{err}"),
            Self::Regularize(err) => write!(f, "{err}"),
            Self::NonFiniteLoss { epoch, step, value } => write!(
                f,
                "epoch {epoch}, step {step}: the loss is {value}; training stopped before this step changed the weights (a smaller learning rate, gradient clipping, or a look for NaN in the data may help)"
            ),
            Self::NonFiniteData {
                data,
                example,
                feature,
                value,
            } => write!(
                f,
                "{data}: example {example} holds {value} at feature {feature}; a non-finite input would make the loss or the weights NaN"
            ),
            Self::Optimizer(err) => write!(f, "optimizer update failed: {err}"),
            Self::Device(err) => write!(f, "device error: {err}"),
            Self::MetricsFile(err) => write!(f, "{err}"),
        }
    }
}

/// Each variant's message is its inner error's, so the inner error is not repeated as a
/// `source()` (like thiserror's `#[error(transparent)]`).
impl<DeviceError: fmt::Debug + fmt::Display> std::error::Error for TrainError<DeviceError> {}

impl<DeviceError> From<DataError> for TrainError<DeviceError> {
    fn from(err: DataError) -> Self {
        Self::Data(err)
    }
}

impl<DeviceError> From<LossError<DeviceError>> for TrainError<DeviceError> {
    fn from(err: LossError<DeviceError>) -> Self {
        Self::Loss(err)
    }
}

impl<DeviceError> From<RegularizeError<DeviceError>> for TrainError<DeviceError> {
    fn from(err: RegularizeError<DeviceError>) -> Self {
        Self::Regularize(err)
    }
}

impl<DeviceError> From<OptimizerUpdateError<DeviceError>> for TrainError<DeviceError> {
    fn from(err: OptimizerUpdateError<DeviceError>) -> Self {
        Self::Optimizer(err)
    }
}

impl<DeviceError> From<MetricsFileError> for TrainError<DeviceError> {
    fn from(err: MetricsFileError) -> Self {
        Self::MetricsFile(err)
    }
}
