//! Data sets for classification: the IDX loader (MNIST), an in-memory [`Dataset`], and
//! mini-batches as dfdx tensors with a run-time batch size; and the generated sequence tasks of
//! the recurrent examples: [`adding`] (the adding problem), [`reber`] (the embedded Reber
//! grammar) and [`digit_strings`] (digit strings to reverse).
//!
//! [`Batches::prefetch`] (and the generic [`prefetch`]) assembles the next batches on a
//! background thread, like `DataLoader(num_workers=1, prefetch_factor=depth)`, yielding the
//! same batches in the same order.
//!
//! ```no_run
//! use typednet::data::Mnist;
//! use typednet::prelude::*;
//!
//! let (train, _test) = Mnist::load_shipped_split()?;
//! let dev = Cpu::default();
//! let mut rng = rand::thread_rng();
//! // Images flattened to vectors for an MLP: 1·28·28 = 784 values each.
//! for batch in train.shuffled_batches::<Rank1<784>, _>(64, &mut rng)? {
//!     let x: Tensor<(usize, Const<784>), f32, Cpu> = batch.to_tensor(&dev);
//!     let labels: Vec<usize> = batch.labels();
//!     # let _ = (x, labels);
//! }
//! # Ok::<(), typednet::data::DataError>(())
//! ```

pub mod adding;
mod batch;
mod dataset;
pub mod digit_strings;
mod error;
pub mod idx;
mod mnist;
mod prefetch;
pub mod reber;

pub use batch::{Batch, Batches, ExampleShape};
pub use dataset::Dataset;
pub use error::{DataError, DataErrorKind};
pub use idx::{read_idx_images, read_idx_labels, IdxImages};
pub use mnist::Mnist;
pub use prefetch::{prefetch, HostBatch, Prefetch};
