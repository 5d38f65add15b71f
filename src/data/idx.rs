//! The IDX format of MNIST: a big-endian header, then the values, optionally gzip-compressed.
//!
//! ```text
//! magic  u32  0x0000 TT DD   TT = type code (0x08 = u8), DD = number of dimensions
//! size   u32  one per dimension
//! data   TT   size₀ · size₁ · … values, row-major
//! ```
//!
//! A file is gunzipped when it starts with the gzip magic `1f 8b`, whatever its name, so both the
//! `.gz` files from the MNIST site and the unpacked ones load.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::error::{DataError, DataErrorKind};

/// The IDX type code of unsigned bytes, the only one MNIST uses.
const TYPE_U8: u8 = 0x08;
/// Magic number of a u8 IDX file with three dimensions (MNIST images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of a u8 IDX file with one dimension (MNIST labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The images of an IDX image file: `count` images of `rows × cols` bytes, one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Height of each image.
    pub rows: usize,
    /// Width of each image.
    pub cols: usize,
    /// `count · rows · cols` grey levels (0 = background), image after image, each row-major.
    pub pixels: Vec<u8>,
}

/// Reads an IDX file of u8 images (magic 0x00000803), gzip-compressed or not.
///
/// The PyTorch equivalent is what `torchvision.datasets.MNIST` does internally
/// (`read_image_file`).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    let path = path.as_ref();
    let (dims, pixels) = read_idx_u8(path, 3)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Reads an IDX file of u8 labels (magic 0x00000801), gzip-compressed or not.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let (_, labels) = read_idx_u8(path.as_ref(), 1)?;
    Ok(labels)
}

/// Reads a u8 IDX file that must have `dimensions` dimensions; returns the sizes and the values.
pub fn read_idx_u8(path: &Path, dimensions: u8) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let name = path.display().to_string();
    let bytes = read_maybe_gzipped(path).map_err(|kind| DataError::new(&name, kind))?;
    parse_idx_u8(bytes, dimensions).map_err(|kind| DataError::new(&name, kind))
}

/// The file's bytes, gunzipped when they start with the gzip magic.
fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>, DataErrorKind> {
    let raw = std::fs::read(path).map_err(DataErrorKind::Io)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut decoded = Vec::with_capacity(raw.len() * 4);
    // Multi-member: some tools write a gzip file as several concatenated members.
    MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut decoded)
        .map_err(DataErrorKind::CorruptGzip)?;
    Ok(decoded)
}

/// Checks the header of a decoded u8 IDX file and returns its sizes and values.
fn parse_idx_u8(
    mut bytes: Vec<u8>,
    dimensions: u8,
) -> Result<(Vec<usize>, Vec<u8>), DataErrorKind> {
    let expected_magic = u32::from_be_bytes([0, 0, TYPE_U8, dimensions]);
    let header_len = 4 + 4 * usize::from(dimensions);
    let Some(magic) = read_u32(&bytes, 0) else {
        return Err(DataErrorKind::Truncated {
            expected: header_len as u64,
            found: bytes.len() as u64,
        });
    };
    let [zero_a, zero_b, code, _] = magic.to_be_bytes();
    if zero_a == 0 && zero_b == 0 && code != TYPE_U8 && super::error::is_known_type(code) {
        return Err(DataErrorKind::UnsupportedType { code });
    }
    if magic != expected_magic {
        return Err(DataErrorKind::WrongMagic {
            expected: expected_magic,
            found: magic,
        });
    }
    if bytes.len() < header_len {
        return Err(DataErrorKind::Truncated {
            expected: header_len as u64,
            found: bytes.len() as u64,
        });
    }
    let dims: Vec<usize> = (0..usize::from(dimensions))
        .map(|i| read_u32(&bytes, 4 + 4 * i).map_or(0, |d| d as usize))
        .collect();
    // u64 so that a corrupt header with huge sizes is reported, not overflowed.
    let expected_len = dims
        .iter()
        .try_fold(1u64, |values, &d| values.checked_mul(d as u64))
        .and_then(|values| values.checked_add(header_len as u64))
        .unwrap_or(u64::MAX);
    let found_len = bytes.len() as u64;
    if found_len < expected_len {
        return Err(DataErrorKind::Truncated {
            expected: expected_len,
            found: found_len,
        });
    }
    if found_len > expected_len {
        return Err(DataErrorKind::TrailingBytes {
            expected: expected_len,
            found: found_len,
        });
    }
    bytes.drain(..header_len);
    Ok((dims, bytes))
}

/// The big-endian u32 at `offset`, if the bytes reach that far.
fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn parses_a_small_image_file() {
        let mut bytes = header(IMAGES_MAGIC, &[2, 2, 3]);
        bytes.extend(0..12u8);
        let (dims, values) = parse_idx_u8(bytes, 3).unwrap();
        assert_eq!(dims, [2, 2, 3]);
        assert_eq!(values, (0..12).collect::<Vec<u8>>());
    }

    #[test]
    fn huge_sizes_are_reported_as_truncation_not_overflow() {
        let bytes = header(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX]);
        match parse_idx_u8(bytes, 3) {
            Err(DataErrorKind::Truncated { expected, found }) => {
                assert_eq!(expected, u64::MAX);
                assert_eq!(found, 16);
            }
            other => panic!("expected truncation, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_file_is_truncated() {
        assert!(matches!(
            parse_idx_u8(Vec::new(), 1),
            Err(DataErrorKind::Truncated {
                expected: 8,
                found: 0
            })
        ));
    }

    #[test]
    fn unknown_type_codes_are_a_wrong_magic() {
        let bytes = header(0x0000_4203, &[0, 0, 0]);
        assert!(matches!(
            parse_idx_u8(bytes, 3),
            Err(DataErrorKind::WrongMagic { .. })
        ));
    }
}
