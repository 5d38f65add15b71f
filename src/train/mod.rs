//! Training a classifier: a mini-batch loop with per-epoch metrics, and a progress bar.
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
//!     .fit_vectors(&mut model, &mut opt, &train, &test, &mut StdRng::seed_from_u64(0))?;
//! println!("test accuracy {:.1}%", 100.0 * metrics.last().unwrap().test_accuracy);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod metrics;
pub mod progress;
mod trainer;

pub use error::TrainError;
pub use metrics::{EpochMetrics, Evaluation};
pub use progress::{ProgressBar, ProgressStyle};
pub use trainer::{Classifier, Trainer, Verbosity};
