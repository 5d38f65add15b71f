//! The error every data-loading function returns.

use std::fmt;
use std::io;

/// Why a data set could not be read or used; its message names the file (or the data set) and
/// the problem, e.g.
/// `data/train-images-idx3-ubyte: wrong magic number: expected 0x00000803 (u8 values, 3 dimensions), found 0x00000801 (u8 values, 1 dimension)`.
#[derive(Debug)]
pub struct DataError {
    /// The file, or the data set's name for errors that are not about one file.
    subject: String,
    kind: DataErrorKind,
}

/// What went wrong; see [`DataError::kind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// The file could not be opened or read.
    Io(io::Error),
    /// The file starts like a gzip stream but does not decode.
    CorruptGzip(io::Error),
    /// The first four bytes are not the expected IDX magic number.
    WrongMagic {
        /// The magic number the reader needs.
        expected: u32,
        /// The magic number in the file.
        found: u32,
    },
    /// An IDX file whose values are not unsigned bytes (type code 0x08).
    UnsupportedType {
        /// The type code found (byte 2 of the magic number).
        code: u8,
    },
    /// Fewer bytes than the header promises.
    Truncated {
        /// Bytes the header promises, header included.
        expected: u64,
        /// Bytes in the (decompressed) file.
        found: u64,
    },
    /// More bytes than the header promises.
    TrailingBytes {
        /// Bytes the header promises, header included.
        expected: u64,
        /// Bytes in the (decompressed) file.
        found: u64,
    },
    /// The images file and the labels file hold different numbers of examples.
    CountMismatch {
        /// Number of images.
        images: usize,
        /// The labels file.
        labels_file: String,
        /// Number of labels.
        labels: usize,
    },
    /// A label is not below the number of classes.
    LabelOutOfRange {
        /// Position of the first bad label.
        index: usize,
        /// The label.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// The features do not hold one example of the declared shape per label.
    FeatureCount {
        /// `labels × examples' element count`.
        expected: usize,
        /// Length of the feature vector.
        found: usize,
    },
    /// A batch was asked for in a shape that does not fit the data set's examples; the error's
    /// subject is the data set's name.
    ShapeMismatch {
        /// The tensor that was asked for, e.g. `batch`.
        tensor: String,
        /// The shape of one example that was asked for.
        expected: Vec<usize>,
        /// The shape of one example in the data set.
        found: Vec<usize>,
    },
    /// Mini-batches of zero examples were asked for.
    ZeroBatchSize,
    /// A model's number of outputs is smaller than the data set's number of classes.
    TooFewOutputs {
        /// The model's outputs.
        outputs: usize,
        /// The data set's classes.
        classes: usize,
    },
    /// Standardisation was asked for with a mean that is not finite or a standard deviation
    /// that is not a positive finite number.
    BadStandardization {
        /// The mean given.
        mean: f32,
        /// The standard deviation given.
        std: f32,
    },
}

impl DataError {
    /// An error about `subject` (a file path or a data set's name).
    pub fn new(subject: impl Into<String>, kind: DataErrorKind) -> Self {
        Self {
            subject: subject.into(),
            kind,
        }
    }

    /// The file, or the data set's name, the error is about.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What went wrong.
    pub fn kind(&self) -> &DataErrorKind {
        &self.kind
    }
}

/// Describes an IDX magic number: `u8 values, 3 dimensions`.
fn describe_magic(magic: u32) -> String {
    let [zero_a, zero_b, code, dims] = magic.to_be_bytes();
    if zero_a != 0 || zero_b != 0 {
        return "not an IDX file".into();
    }
    let plural = if dims == 1 { "" } else { "s" };
    format!("{} values, {dims} dimension{plural}", type_name(code))
}

/// Whether `code` is one of the type codes the IDX format defines.
pub(crate) fn is_known_type(code: u8) -> bool {
    matches!(code, 0x08 | 0x09 | 0x0B..=0x0E)
}

/// The name IDX gives a type code.
pub(crate) fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown type",
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let DataErrorKind::ShapeMismatch {
            tensor,
            expected,
            found,
        } = &self.kind
        {
            // Not about a file: name the tensor and the data set instead.
            return write!(
                f,
                "{tensor} of {:?}: expected examples of shape {expected:?}, the data set holds {found:?}",
                self.subject
            );
        }
        write!(f, "{}: ", self.subject)?;
        match &self.kind {
            DataErrorKind::Io(err) => write!(f, "cannot read the file: {err}"),
            DataErrorKind::CorruptGzip(err) => {
                write!(f, "corrupt gzip data (the file starts with the gzip magic 1f 8b but does not decode): {err}")
            }
            DataErrorKind::WrongMagic { expected, found } => write!(
                f,
                "wrong magic number: expected {expected:#010x} ({}), found {found:#010x} ({})",
                describe_magic(*expected),
                describe_magic(*found)
            ),
            DataErrorKind::UnsupportedType { code } => write!(
                f,
                "unsupported IDX type code {code:#04x} ({}); only 0x08 (u8) is supported",
                type_name(*code)
            ),
            DataErrorKind::Truncated { expected, found } => write!(
                f,
                "truncated data: expected {expected} bytes (header and values), found {found}"
            ),
            DataErrorKind::TrailingBytes { expected, found } => write!(
                f,
                "unexpected trailing bytes: expected {expected} bytes (header and values), found {found}"
            ),
            DataErrorKind::CountMismatch {
                images,
                labels_file,
                labels,
            } => write!(
                f,
                "holds {images} images but {labels_file} holds {labels} labels"
            ),
            DataErrorKind::LabelOutOfRange {
                index,
                label,
                classes,
            } => write!(
                f,
                "label {label} at index {index} is out of range for {classes} classes (labels must be below {classes})"
            ),
            DataErrorKind::FeatureCount { expected, found } => write!(
                f,
                "expected {expected} feature values (one example per label), found {found}"
            ),
            // Written above, without the `subject: ` prefix.
            DataErrorKind::ShapeMismatch { .. } => Ok(()),
            DataErrorKind::ZeroBatchSize => write!(f, "the batch size must be at least 1"),
            DataErrorKind::TooFewOutputs { outputs, classes } => write!(
                f,
                "the model has {outputs} outputs but the data set has {classes} classes"
            ),
            DataErrorKind::BadStandardization { mean, std } => write!(
                f,
                "cannot standardise with mean {mean} and standard deviation {std}: \
                 the mean must be finite and the deviation positive and finite"
            ),
        }
    }
}

/// The underlying I/O or gzip error is part of the message and reachable through
/// [`DataError::kind`], so it is not repeated as a `source()`.
impl std::error::Error for DataError {}
