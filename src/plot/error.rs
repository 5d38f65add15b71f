//! The error every plotting function returns.

use std::fmt;
use std::io;

/// Why an image could not be made or written; its message names the file (or the function) and
/// the problem, e.g.
/// `figures/grid.png: cannot write the file: No such file or directory (os error 2)`.
#[derive(Debug)]
pub struct PlotError {
    /// The file, or the function for errors that are not about a file (`digit_grid`, `png`).
    subject: String,
    kind: PlotErrorKind,
}

/// What went wrong; see [`PlotError::kind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum PlotErrorKind {
    /// The file could not be created or written.
    Io(io::Error),
    /// The pixel buffer does not hold `width × height × channels` bytes.
    PixelCount {
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
        /// Bytes per pixel (1 grey, 3 RGB).
        channels: usize,
        /// The buffer's length.
        found: usize,
    },
    /// A width or height of 0, or above PNG's limit of 2³¹ − 1.
    BadSize {
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// A row of a [`digit_grid`](super::digit_grid) is not a whole number of images.
    RowLength {
        /// The row.
        row: usize,
        /// Its length.
        len: usize,
        /// Image height.
        image_h: usize,
        /// Image width.
        image_w: usize,
    },
    /// [`scatter`](super::scatter) got a different number of labels than points.
    LabelCount {
        /// Points given.
        points: usize,
        /// Labels given.
        labels: usize,
    },
    /// A point with a NaN or infinite coordinate.
    NonFinitePoint {
        /// Its index.
        index: usize,
    },
    /// A [`LineChart`](super::LineChart) with no series.
    NoSeries,
    /// A series of a [`LineChart`](super::LineChart) with no point to draw: empty, or every
    /// value NaN.
    EmptySeries {
        /// The series' name.
        series: String,
    },
    /// A point of a [`LineChart`](super::LineChart) series whose `y` is infinite or whose `x`
    /// is not finite (a NaN `y` is a gap, not an error).
    NonFiniteValue {
        /// The series' name.
        series: String,
        /// The point's index in the series.
        index: usize,
    },
    /// A canvas too small for a [`LineChart`](super::LineChart)'s margins, legend and tick
    /// labels.
    CanvasTooSmall {
        /// The width asked for.
        width: usize,
        /// The height asked for.
        height: usize,
        /// The smallest width that fits.
        min_width: usize,
        /// The smallest height that fits.
        min_height: usize,
    },
    /// A canvas too small for the figure's fixed margins.
    TooSmall {
        /// The size asked for.
        size: usize,
        /// The smallest size that fits.
        minimum: usize,
    },
}

impl PlotError {
    /// An error about `subject` (a file path or a function's name).
    pub fn new(subject: impl Into<String>, kind: PlotErrorKind) -> Self {
        Self {
            subject: subject.into(),
            kind,
        }
    }

    /// The file, or the function, the error is about.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What went wrong.
    pub fn kind(&self) -> &PlotErrorKind {
        &self.kind
    }

    /// The same error about another subject (the file a failed encoding was meant for).
    pub(crate) fn about(self, subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            ..self
        }
    }
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.subject)?;
        match &self.kind {
            PlotErrorKind::Io(err) => write!(f, "cannot write the file: {err}"),
            PlotErrorKind::PixelCount {
                width,
                height,
                channels,
                found,
            } => write!(
                f,
                "expected {width} × {height} × {channels} = {} pixel bytes (width × height × channels), found {found}",
                width * height * channels
            ),
            PlotErrorKind::BadSize { width, height } => write!(
                f,
                "an image of {width} × {height} pixels cannot be written; PNG needs 1 to 2147483647 pixels each way"
            ),
            PlotErrorKind::RowLength {
                row,
                len,
                image_h,
                image_w,
            } => write!(
                f,
                "row {row} holds {len} values, not a whole number of {image_h} × {image_w} images"
            ),
            PlotErrorKind::LabelCount { points, labels } => {
                write!(f, "{points} points but {labels} labels")
            }
            PlotErrorKind::NonFinitePoint { index } => {
                write!(f, "point {index} has a coordinate that is not finite")
            }
            PlotErrorKind::NoSeries => write!(f, "there is no series to draw"),
            PlotErrorKind::EmptySeries { series } => {
                write!(f, "series {series:?} has no finite value to draw")
            }
            PlotErrorKind::NonFiniteValue { series, index } => write!(
                f,
                "value {index} of series {series:?} is infinite, or its x is not finite"
            ),
            PlotErrorKind::CanvasTooSmall {
                width,
                height,
                min_width,
                min_height,
            } => write!(
                f,
                "a canvas of {width} × {height} pixels is too small; the figure needs at least {min_width} × {min_height}"
            ),
            PlotErrorKind::TooSmall { size, minimum } => {
                write!(f, "a canvas of {size} pixels is too small; the figure needs at least {minimum}")
            }
        }
    }
}

/// The underlying I/O error is part of the message and reachable through
/// [`PlotError::kind`], so it is not repeated as a `source()`.
impl std::error::Error for PlotError {}
