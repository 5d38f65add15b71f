//! Per-epoch metrics as a CSV file, one row written and flushed per epoch.

use core::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::metrics::EpochMetrics;

/// The header row of a metrics CSV file: the fields of [`EpochMetrics`], in order.
pub const CSV_HEADER: &str = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds";

/// Writes [`EpochMetrics`] to a CSV file as training goes: the [header](CSV_HEADER) when the
/// file is created, then one row per epoch, each flushed to the operating system as soon as it
/// is written, so a run that is killed keeps the rows of the epochs it finished.
///
/// Accuracies are fractions (0.9731, not 97.31); numbers are written in Rust's shortest form
/// that reads back as the same `f64` (`NaN` for the test columns of an empty test set), so
/// [`read_metrics_csv`] returns exactly the metrics that were written.
///
/// **Keras**: `keras.callbacks.CSVLogger(path)`; [`Trainer::metrics_csv`](super::Trainer::metrics_csv)
/// attaches one to a training run.
///
/// ```
/// use typednet::train::{read_metrics_csv, CsvLog, EpochMetrics};
///
/// let path = std::env::temp_dir().join("typednet_csv_log_doctest.csv");
/// let epoch = EpochMetrics {
///     epoch: 1,
///     train_loss: 0.5,
///     train_accuracy: 0.875,
///     test_loss: 0.25,
///     test_accuracy: 0.9375,
///     seconds: 1.5,
/// };
/// let mut log = CsvLog::create(&path)?;
/// log.append(&epoch)?;
/// assert_eq!(
///     std::fs::read_to_string(&path)?,
///     "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n1,0.5,0.875,0.25,0.9375,1.5\n"
/// );
/// assert_eq!(read_metrics_csv(&path)?, [epoch]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    file: File,
}

impl CsvLog {
    /// Creates (or truncates) the file at `path` and writes the header row; the parent folder
    /// must exist. The error names the file.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, MetricsFileError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|err| MetricsFileError::io(&path, err))?;
        let mut log = Self { path, file };
        log.write_line(CSV_HEADER)?;
        Ok(log)
    }

    /// Appends one row and flushes it. The error names the file.
    pub fn append(&mut self, metrics: &EpochMetrics) -> Result<(), MetricsFileError> {
        let EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds,
        } = metrics;
        self.write_line(&format!(
            "{epoch},{train_loss},{train_accuracy},{test_loss},{test_accuracy},{seconds}"
        ))
    }

    /// Writes a whole history to `path` at once: the header and one row per epoch.
    pub fn write_all(
        path: impl AsRef<Path>,
        history: &[EpochMetrics],
    ) -> Result<(), MetricsFileError> {
        let mut log = Self::create(path)?;
        history.iter().try_for_each(|metrics| log.append(metrics))
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One whole line in one `write` (the file is unbuffered), so a killed run leaves no
    /// half-written row behind unless the kill lands inside that call.
    fn write_line(&mut self, line: &str) -> Result<(), MetricsFileError> {
        let line = format!("{line}\n");
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|err| MetricsFileError::io(&self.path, err))
    }
}

/// Reads a metrics CSV file written by [`CsvLog`] back into the per-epoch metrics (e.g. to
/// plot a finished or killed run with [`plot_metrics`](super::plot_metrics)).
///
/// **pandas**: `pd.read_csv(path)`.
///
/// # Errors
/// When the file cannot be read, its first line is not [`CSV_HEADER`], or a row does not hold
/// six numbers; the error names the file and the line.
pub fn read_metrics_csv(path: impl AsRef<Path>) -> Result<Vec<EpochMetrics>, MetricsFileError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|err| MetricsFileError::io(path, err))?;
    let mut history = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|err| MetricsFileError::io(path, err))?;
        let bad = |problem: String| MetricsFileError {
            path: path.to_path_buf(),
            kind: MetricsFileErrorKind::BadLine {
                line: index + 1,
                problem,
            },
        };
        if index == 0 {
            if line != CSV_HEADER {
                return Err(bad(format!(
                    "expected the header {CSV_HEADER:?}, found {line:?}"
                )));
            }
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let [epoch, numbers @ ..] = fields.as_slice() else {
            unreachable!("split yields at least one field");
        };
        if numbers.len() != 5 {
            return Err(bad(format!("expected 6 fields, found {}", fields.len())));
        }
        let epoch = epoch
            .parse()
            .map_err(|_| bad(format!("the epoch {epoch:?} is not a whole number")))?;
        let mut values = [0.0; 5];
        for (value, (text, column)) in values
            .iter_mut()
            .zip(numbers.iter().zip(CSV_HEADER.split(',').skip(1)))
        {
            *value = text
                .parse()
                .map_err(|_| bad(format!("{column} {text:?} is not a number")))?;
        }
        let [train_loss, train_accuracy, test_loss, test_accuracy, seconds] = values;
        history.push(EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds,
        });
    }
    Ok(history)
}

/// Why a metrics file could not be written or read; the message names the file, e.g.
/// `runs/lenet.csv: cannot write or read the file: No such file or directory (os error 2)`.
#[derive(Debug)]
pub struct MetricsFileError {
    path: PathBuf,
    kind: MetricsFileErrorKind,
}

/// What went wrong with a metrics file; see [`MetricsFileError::kind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum MetricsFileErrorKind {
    /// The file could not be created, written or read.
    Io(io::Error),
    /// A line of a file being read is not what [`CsvLog`] writes.
    BadLine {
        /// The line, counted from 1 (the header is line 1).
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

impl MetricsFileError {
    fn io(path: &Path, err: io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            kind: MetricsFileErrorKind::Io(err),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> &MetricsFileErrorKind {
        &self.kind
    }
}

impl fmt::Display for MetricsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        match &self.kind {
            MetricsFileErrorKind::Io(err) => write!(f, "cannot write or read the file: {err}"),
            MetricsFileErrorKind::BadLine { line, problem } => write!(f, "line {line}: {problem}"),
        }
    }
}

/// The I/O error is part of the message and reachable through [`MetricsFileError::kind`], so
/// it is not repeated as a `source()`.
impl std::error::Error for MetricsFileError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / 3.0,
            train_accuracy: 0.1 + 0.2,
            test_loss: f64::NAN,
            test_accuracy: f64::NAN,
            seconds: 1e-7,
        }
    }

    #[test]
    fn rows_read_back_bit_for_bit_and_nan_stays_nan() {
        let path = std::env::temp_dir().join(format!("typednet_csv_{}.csv", std::process::id()));
        CsvLog::write_all(&path, &[metrics(1), metrics(2)]).unwrap();
        let back = read_metrics_csv(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].epoch, 2);
        assert_eq!(back[0].train_loss.to_bits(), (1.0f64 / 3.0).to_bits());
        assert_eq!(back[0].train_accuracy.to_bits(), (0.1f64 + 0.2).to_bits());
        assert!(back[0].test_loss.is_nan() && back[0].test_accuracy.is_nan());
        assert_eq!(back[0].seconds, 1e-7);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let err = CsvLog::create("/nonexistent-typednet-dir/m.csv").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent-typednet-dir/m.csv: cannot write or read the file: "),
            "{err}"
        );
        let path = std::env::temp_dir().join(format!("typednet_bad_{}.csv", std::process::id()));
        std::fs::write(
            &path,
            format!("{CSV_HEADER}\n1,0.5,0.5,0.5,0.5,1\n2,0.5,x,0.5,0.5,1\n"),
        )
        .unwrap();
        let err = read_metrics_csv(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: line 3: train_accuracy \"x\" is not a number",
                path.display()
            )
        );
        std::fs::write(&path, "epoch,loss\n").unwrap();
        assert!(read_metrics_csv(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1: expected the header"));
        std::fs::remove_file(&path).unwrap();
    }
}
