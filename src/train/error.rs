//! The error a training run returns.

use core::fmt;

use dfdx::optim::OptimizerUpdateError;

use crate::data::DataError;
use crate::loss::LossError;

/// Why training or evaluation stopped.
#[derive(Debug)]
pub enum TrainError<DeviceError> {
    /// The data set does not fit the model (example shape, number of classes) or the batch size
    /// is 0.
    Data(DataError),
    /// The loss could not be computed.
    Loss(LossError<DeviceError>),
    /// The optimiser could not update the model (a parameter had no gradient, or the device
    /// failed).
    Optimizer(OptimizerUpdateError<DeviceError>),
    /// The device failed (out of memory, a CUDA error).
    Device(DeviceError),
}

impl<DeviceError: fmt::Display> fmt::Display for TrainError<DeviceError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Data(err) => write!(f, "{err}"),
            Self::Loss(err) => write!(f, "{err}"),
            Self::Optimizer(err) => write!(f, "optimizer update failed: {err}"),
            Self::Device(err) => write!(f, "device error: {err}"),
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

impl<DeviceError> From<OptimizerUpdateError<DeviceError>> for TrainError<DeviceError> {
    fn from(err: OptimizerUpdateError<DeviceError>) -> Self {
        Self::Optimizer(err)
    }
}
