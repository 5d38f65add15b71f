//! What the MNIST examples share: their command line and their last line.
// Each example uses part of this module.
#![allow(dead_code)]

use typednet::train::EpochMetrics;

/// `[epochs] [seed]` from the command line, defaulting to 10 epochs and seed 0.
pub fn epochs_and_seed() -> Result<(usize, u64), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().map_or(Ok(10), |a| a.parse())?;
    let seed = args.next().map_or(Ok(0), |a| a.parse())?;
    Ok((epochs, seed))
}

/// Prints the final test accuracy and the time taken, from the per-epoch metrics.
pub fn report(history: &[EpochMetrics], test_len: usize) -> Result<(), Box<dyn std::error::Error>> {
    let last = history.last().ok_or("no epochs were run")?;
    let seconds: f64 = history.iter().map(|m| m.seconds).sum();
    println!(
        "test accuracy after {} epochs: {:.2}% ({} of {} digits), {:.1} s in all ({:.2} s per epoch)",
        last.epoch,
        100.0 * last.test_accuracy,
        (last.test_accuracy * test_len as f64).round(),
        test_len,
        seconds,
        seconds / history.len() as f64
    );
    Ok(())
}

/// The device the examples train on: the GPU with `--features cuda`, the CPU otherwise.
#[cfg(feature = "cuda")]
pub type Device = typednet::dfdx::tensor::Cuda;
/// The device the examples train on: the GPU with `--features cuda`, the CPU otherwise.
#[cfg(not(feature = "cuda"))]
pub type Device = typednet::dfdx::tensor::Cpu;

/// The examples' error: anything printable.
pub type Error = Box<dyn std::error::Error>;

/// `?` for device results: dfdx's `CudaError` is not a `std::error::Error`, so its `Debug` text
/// is carried instead (`Cpu`'s error is one; the conversion is the same for both devices).
pub trait OrDeviceError<T> {
    /// The result, with a device error turned into the examples' [`Error`].
    fn dev(self) -> Result<T, Error>;
}

impl<T, E: std::fmt::Debug> OrDeviceError<T> for Result<T, E> {
    fn dev(self) -> Result<T, Error> {
        self.map_err(|error| format!("device error: {error:?}").into())
    }
}
