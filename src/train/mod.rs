//! Training a classifier: a mini-batch loop with per-epoch metrics, and ways to watch it.
//!
//! | item | does | PyTorch / Keras |
//! |---|---|---|
//! | [`Trainer`] | the mini-batch loop, [`EpochMetrics`] per epoch | the usual `for x, y in loader:` loop, Keras `model.fit` |
//! | [`ProgressBar`] | a bar with rate and ETA on stderr | `tqdm` |
//! | [`CsvLog`], [`Trainer::metrics_csv`], [`read_metrics_csv`] | one CSV row per epoch, flushed as it is written | Keras `CSVLogger` |
//! | [`plot_metrics`], [`metrics_chart`] | loss and accuracy curves as a PNG | matplotlib `plt.plot` + `savefig` |
//! | [`Trainer::prefetch`] | the next batches assembled on a worker thread | `DataLoader(num_workers=1, prefetch_factor=depth)` |
//!
//! ```no_run
//! use typednet::data::Mnist;
//! use typednet::dfdx::optim::{Adam, AdamConfig};
//! use typednet::prelude::*;
//! use typednet::train::Trainer;
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let (train, test) = Mnist::load_shipped_split()?;
//! let dev = Cpu::default();
//! let mut model = dev.build_module::<(Linear<784, 128>, ReLU, Linear<128, 10>), f32>();
//! let mut opt = Adam::new(&model, AdamConfig::default());
//! let metrics = Trainer::new(&dev)
//!     .epochs(5)
//!     .batch_size(64)
//!     .metrics_csv("metrics.csv")
//!     .prefetch(2)
//!     .fit_vectors(&mut model, &mut opt, &train, &test, &mut StdRng::seed_from_u64(0))?;
//! println!("test accuracy {:.1}%", 100.0 * metrics.last().unwrap().test_accuracy);
//! typednet::train::plot_metrics(&metrics, "curves.png")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod csv;
mod error;
mod metrics;
mod plot;
pub mod progress;
mod trainer;

pub use csv::{read_metrics_csv, CsvLog, MetricsFileError, MetricsFileErrorKind, CSV_HEADER};
pub use error::TrainError;
pub use metrics::{EpochMetrics, Evaluation};
pub use plot::{metrics_chart, plot_metrics};
pub use progress::{ProgressBar, ProgressStyle};
pub use trainer::{Classifier, Trainer, Verbosity};
