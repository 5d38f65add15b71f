//! The IDX loader on the shipped MNIST digits and on small broken files, and the batch builder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use typednet::data::{read_idx_images, read_idx_labels, DataError, DataErrorKind, Dataset, Mnist};
use typednet::prelude::*;

fn shipped() -> &'static Dataset {
    static SHIPPED: OnceLock<Dataset> = OnceLock::new();
    SHIPPED.get_or_init(|| Mnist::load_shipped().expect("the shipped MNIST files load"))
}

// Expected values below were read independently of this crate, with Python's gzip module:
//
//     import gzip
//     img = gzip.open("data/mnist10k-images-idx3-ubyte.gz").read()   # header = img[:16]
//     lab = gzip.open("data/mnist10k-labels-idx1-ubyte.gz").read()   # header = lab[:8]
//     px, lb = img[16:], lab[8:]
//     list(lb[:10]), list(lb[-5:]), [lb.count(c) for c in range(10)]
//     [sum(px[i*784:(i+1)*784]) for i in (0, 1, 4321, 8000, 9999)]
//     px[i*784 + 14*28 + 14]                                          # centre pixel
//     list(px[10*28:11*28])                                           # row 10 of image 0
//     sum(px)

/// Labels 0..10 and the last five.
const FIRST_LABELS: [usize; 10] = [8, 0, 2, 0, 0, 0, 9, 6, 4, 1];
const LAST_LABELS: [usize; 5] = [0, 6, 3, 8, 9];
/// Examples per class in all 10,000, in the first 8,000 and in the last 2,000.
const CLASS_COUNTS: [usize; 10] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
const TRAIN_CLASS_COUNTS: [usize; 10] = [810, 913, 786, 805, 799, 685, 807, 862, 745, 788];
const TEST_CLASS_COUNTS: [usize; 10] = [191, 214, 205, 227, 181, 178, 207, 208, 199, 190];
/// (index, label, sum of the 784 raw bytes, raw centre pixel (14, 14)).
const EXAMPLES: [(usize, usize, u32, u8); 5] = [
    (0, 8, 24984, 20),
    (1, 0, 27826, 0),
    (4321, 1, 17539, 255),
    (8000, 9, 26022, 0),
    (9999, 9, 20616, 0),
];
const IMAGE_0_ROW_10: [u8; 28] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 218, 254, 254, 244, 120, 6, 0, 0, 0, 0, 0, 0, 14, 137, 0, 0, 0,
];
const TOTAL_PIXEL_SUM: u64 = 262_146_600;

#[test]
fn the_shipped_files_hold_10000_digits_of_28_by_28() {
    let (images_path, labels_path) = Mnist::shipped_paths();
    let images = read_idx_images(&images_path).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (10_000, 28, 28));
    assert_eq!(images.pixels.len(), 10_000 * 784);
    assert_eq!(&images.pixels[10 * 28..11 * 28], IMAGE_0_ROW_10);
    assert_eq!(
        images.pixels.iter().map(|&p| u64::from(p)).sum::<u64>(),
        TOTAL_PIXEL_SUM
    );
    for (index, _, sum, centre) in EXAMPLES {
        let image = &images.pixels[index * 784..(index + 1) * 784];
        assert_eq!(image.iter().map(|&p| u32::from(p)).sum::<u32>(), sum);
        assert_eq!(image[14 * 28 + 14], centre);
    }
    let labels = read_idx_labels(&labels_path).unwrap();
    assert_eq!(labels.len(), 10_000);
}

#[test]
fn mnist_scales_pixels_to_the_unit_interval_and_keeps_labels() {
    let data = shipped();
    assert_eq!(data.len(), Mnist::SHIPPED_LEN);
    assert_eq!(data.example_shape(), [1, 28, 28]);
    assert_eq!(data.classes(), 10);
    assert_eq!(data.name(), "mnist");
    assert_eq!(data.labels()[..10], FIRST_LABELS);
    assert_eq!(data.labels()[10_000 - 5..], LAST_LABELS);
    assert!(data.features().iter().all(|&v| (0.0..=1.0).contains(&v)));
    for (index, label, sum, centre) in EXAMPLES {
        let (features, got_label) = data.get(index).unwrap();
        assert_eq!(got_label, label, "label of example {index}");
        let got_sum: f64 = features.iter().map(|&v| f64::from(v)).sum();
        assert!(
            (got_sum - f64::from(sum) / 255.0).abs() < 1e-3,
            "sum of example {index}"
        );
        assert_eq!(features[14 * 28 + 14], f32::from(centre) / 255.0);
    }
    assert_eq!(data.get(10_000), None);
}

#[test]
fn the_classes_are_roughly_balanced() {
    let counts = shipped().class_counts();
    assert_eq!(counts, CLASS_COUNTS);
    // Not exactly 1,000 each: the digit 1 is the most common (1,127), 5 the least (863).
    assert!(
        counts.iter().all(|&c| (850..=1150).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn the_shipped_split_is_8000_then_2000() {
    let (train, test) = Mnist::load_shipped_split().unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.class_counts(), TRAIN_CLASS_COUNTS);
    assert_eq!(test.class_counts(), TEST_CLASS_COUNTS);
    assert_eq!(test.labels()[0], 9, "example 8000 opens the test set");
    assert_eq!(train.name(), "mnist[..8000]");
    assert_eq!(test.name(), "mnist[8000..]");
}

#[test]
fn batches_become_tensors_with_a_run_time_batch_size() {
    let dev: Cpu = Default::default();
    let data = shipped().clone().take(100);
    let mut sizes = Vec::new();
    for batch in data.batches::<Rank1<784>>(32).unwrap() {
        let x: Tensor<(usize, Const<784>), f32, Cpu> = batch.to_tensor(&dev);
        sizes.push(x.shape().0);
    }
    assert_eq!(sizes, [32, 32, 32, 4]);

    let first = data.batches::<Rank3<1, 28, 28>>(3).unwrap().next().unwrap();
    let images: Tensor<(usize, Const<1>, Const<28>, Const<28>), f64, Cpu> = first.to_tensor(&dev);
    assert_eq!(first.labels(), FIRST_LABELS[..3]);
    let values = images.as_vec();
    assert_eq!(values.len(), 3 * 784);
    // The data set holds f32 (as torchvision's ToTensor gives); an f64 batch widens those values.
    assert_eq!(values[14 * 28 + 14], f64::from(20.0f32 / 255.0));
}

#[test]
fn a_batch_of_the_wrong_shape_names_the_data_set_and_both_shapes() {
    let data = shipped();
    let err = data.batches::<Rank1<100>>(8).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch of \"mnist\": expected examples of shape [100], the data set holds [1, 28, 28]"
    );
    let err = data.batches::<Rank3<28, 28, 1>>(8).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch of \"mnist\": expected examples of shape [28, 28, 1], the data set holds [1, 28, 28]"
    );
    // Flattening to vectors of the same size is the usual input of an MLP: accepted.
    assert!(data.batches::<Rank1<784>>(8).is_ok());
    assert!(data.batches::<Rank3<1, 28, 28>>(8).is_ok());
}

/// A fresh folder under the system's temp dir for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("typednet-data-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn idx(magic: u32, dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Two 2×2 images and their labels, raw.
fn two_images() -> Vec<u8> {
    idx(0x0803, &[2, 2, 2], &[0, 51, 102, 255, 255, 0, 0, 0])
}

fn assert_message(err: &DataError, path: &Path, problem: &str) {
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: ", path.display())),
        "does not start with the file: {message}"
    );
    assert!(
        message.contains(problem),
        "does not say {problem:?}: {message}"
    );
}

#[test]
fn raw_and_gzipped_files_load_alike_whatever_their_names() {
    let dir = temp_dir("raw-and-gzip");
    // Detection is by content: a raw file named .gz and a gzipped one without the extension.
    let raw = write(&dir, "images.gz", &two_images());
    let zipped = write(&dir, "images-idx3-ubyte", &gzip(&two_images()));
    let labels = write(&dir, "labels", &idx(0x0801, &[2], &[3, 9]));
    let a = Mnist::load(&raw, &labels).unwrap();
    let b = Mnist::load(&zipped, &labels).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.example_shape(), [1, 2, 2]);
    assert_eq!(a.features(), [0.0, 0.2, 0.4, 1.0, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(a.labels(), [3, 9]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_file_is_named() {
    let path = temp_dir("missing").join("train-images-idx3-ubyte.gz");
    let err = read_idx_images(&path).unwrap_err();
    assert_message(&err, &path, "cannot read the file");
    assert!(
        matches!(err.kind(), DataErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
}

#[test]
fn corrupt_gzip_is_reported() {
    let dir = temp_dir("corrupt-gzip");
    let garbage = write(
        &dir,
        "garbage.gz",
        &[0x1f, 0x8b, 0x08, 0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert_message(
        &read_idx_images(&garbage).unwrap_err(),
        &garbage,
        "corrupt gzip data",
    );
    let whole = gzip(&two_images());
    let cut = write(&dir, "cut.gz", &whole[..whole.len() / 2]);
    assert_message(
        &read_idx_images(&cut).unwrap_err(),
        &cut,
        "corrupt gzip data",
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_wrong_magic_number_shows_both_in_hex() {
    let dir = temp_dir("magic");
    let labels = write(&dir, "labels-as-images", &idx(0x0801, &[2], &[3, 9]));
    assert_message(
        &read_idx_images(&labels).unwrap_err(),
        &labels,
        "wrong magic number: expected 0x00000803 (u8 values, 3 dimensions), \
         found 0x00000801 (u8 values, 1 dimension)",
    );
    let text = write(&dir, "not-idx.txt", b"hello, world");
    assert_message(
        &read_idx_labels(&text).unwrap_err(),
        &text,
        "expected 0x00000801 (u8 values, 1 dimension), found 0x68656c6c (not an IDX file)",
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unsupported_type_code_is_named() {
    let dir = temp_dir("type-code");
    let floats = write(&dir, "floats", &idx(0x0D03, &[1, 1, 1], &[0, 0, 0, 0]));
    assert_message(
        &read_idx_images(&floats).unwrap_err(),
        &floats,
        "unsupported IDX type code 0x0d (f32); only 0x08 (u8) is supported",
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn truncated_data_says_how_many_bytes() {
    let dir = temp_dir("truncated");
    let mut bytes = two_images();
    bytes.truncate(bytes.len() - 3);
    let raw = write(&dir, "short", &bytes);
    assert_message(
        &read_idx_images(&raw).unwrap_err(),
        &raw,
        "truncated data: expected 24 bytes (header and values), found 21",
    );
    let zipped = write(&dir, "short.gz", &gzip(&bytes));
    assert_message(
        &read_idx_images(&zipped).unwrap_err(),
        &zipped,
        "truncated data: expected 24 bytes (header and values), found 21",
    );
    let header_only = write(&dir, "header", &[0, 0, 8, 3, 0, 0]);
    assert_message(
        &read_idx_images(&header_only).unwrap_err(),
        &header_only,
        "truncated data: expected 16 bytes (header and values), found 6",
    );
    let mut long = two_images();
    long.push(7);
    let long = write(&dir, "long", &long);
    assert_message(
        &read_idx_images(&long).unwrap_err(),
        &long,
        "unexpected trailing bytes: expected 24 bytes (header and values), found 25",
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn images_and_labels_must_be_as_many() {
    let dir = temp_dir("count");
    let images = write(&dir, "images", &two_images());
    let labels = write(&dir, "labels", &idx(0x0801, &[3], &[1, 2, 3]));
    let err = Mnist::load(&images, &labels).unwrap_err();
    assert_message(
        &err,
        &images,
        &format!("holds 2 images but {} holds 3 labels", labels.display()),
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_label_out_of_range_names_the_labels_file() {
    let dir = temp_dir("label-range");
    let images = write(&dir, "images", &two_images());
    let labels = write(&dir, "labels", &idx(0x0801, &[2], &[3, 10]));
    assert_message(
        &Mnist::load(&images, &labels).unwrap_err(),
        &labels,
        "label 10 at index 1 is out of range for 10 classes",
    );
    let _ = std::fs::remove_dir_all(dir);
}
