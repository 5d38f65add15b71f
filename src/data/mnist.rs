//! MNIST: the shipped 10,000 digits, and the full files a user downloads.

use std::path::{Path, PathBuf};

use super::dataset::Dataset;
use super::error::{DataError, DataErrorKind};
use super::idx::{read_idx_images, read_idx_labels};

/// Loader for MNIST-format data sets: 28×28 grey digits in IDX files, ten classes.
///
/// Fashion-MNIST and KMNIST use the same files and load the same way.
#[derive(Debug, Clone, Copy)]
pub struct Mnist;

impl Mnist {
    /// Number of classes (digits 0–9).
    pub const CLASSES: usize = 10;
    /// Number of examples in the shipped files.
    pub const SHIPPED_LEN: usize = 10_000;
    /// The shipped examples used for training by [`Mnist::load_shipped_split`]; the rest test.
    pub const SHIPPED_TRAIN_LEN: usize = 8_000;

    /// Loads an images file and a labels file (each gzip-compressed or raw, e.g.
    /// `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz`) as a data set named
    /// `mnist` of `[1, rows, cols]` examples.
    ///
    /// Pixels are scaled to `[0, 1]` as `k / 255`, as torchvision's `ToTensor()` does (without
    /// its optional normalisation). Fails, naming the file, when a file is missing or corrupt,
    /// when the two files hold different numbers of examples, or when a label is not a digit.
    pub fn load(
        images_path: impl AsRef<Path>,
        labels_path: impl AsRef<Path>,
    ) -> Result<Dataset, DataError> {
        let (images_path, labels_path) = (images_path.as_ref(), labels_path.as_ref());
        let images = read_idx_images(images_path)?;
        let labels = read_idx_labels(labels_path)?;
        if images.count != labels.len() {
            return Err(DataError::new(
                images_path.display().to_string(),
                DataErrorKind::CountMismatch {
                    images: images.count,
                    labels_file: labels_path.display().to_string(),
                    labels: labels.len(),
                },
            ));
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= Self::CLASSES)
        {
            return Err(DataError::new(
                labels_path.display().to_string(),
                DataErrorKind::LabelOutOfRange {
                    index,
                    label: label.into(),
                    classes: Self::CLASSES,
                },
            ));
        }
        let features = images
            .pixels
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect();
        let labels = labels.into_iter().map(usize::from).collect();
        Dataset::new(
            "mnist",
            features,
            labels,
            vec![1, images.rows, images.cols],
            Self::CLASSES,
        )
    }

    /// Paths of the images and labels files shipped in the crate's `data/` folder.
    pub fn shipped_paths() -> (PathBuf, PathBuf) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        (
            dir.join("mnist10k-images-idx3-ubyte.gz"),
            dir.join("mnist10k-labels-idx1-ubyte.gz"),
        )
    }

    /// Loads the 10,000 real digits shipped with the crate (about 1,000 per class, shuffled with
    /// a fixed seed; see `data/README.md`).
    pub fn load_shipped() -> Result<Dataset, DataError> {
        let (images, labels) = Self::shipped_paths();
        Self::load(images, labels)
    }

    /// The shipped digits split into the first 8,000 for training and the last 2,000 for
    /// testing.
    pub fn load_shipped_split() -> Result<(Dataset, Dataset), DataError> {
        Ok(Self::load_shipped()?.split_at(Self::SHIPPED_TRAIN_LEN))
    }
}
