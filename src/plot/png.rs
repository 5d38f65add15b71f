//! A minimal PNG encoder: 8-bit grey or RGB, no interlacing, every scanline with the Sub
//! filter, all the compressed data in one IDAT chunk (zlib, by `flate2`).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use super::error::{PlotError, PlotErrorKind};
use super::ColorType;

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

/// PNG's largest width or height.
const MAX_SIDE: usize = (1 << 31) - 1;

/// Filter type 1 (Sub): each byte minus the byte one pixel to its left.
const FILTER_SUB: u8 = 1;

/// The CRC-32 of PNG (and zlib, gzip): polynomial `0xEDB88320` (reflected), one table entry
/// per byte value.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// The CRC-32 of the concatenated `parts` (as PNG computes over a chunk's type and data).
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &byte in *part {
            crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    crc ^ 0xFFFF_FFFF
}

fn check_image(
    width: usize,
    height: usize,
    pixels: &[u8],
    color: ColorType,
) -> Result<(), PlotErrorKind> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(PlotErrorKind::BadSize { width, height });
    }
    let channels = color.channels();
    if Some(pixels.len())
        != width
            .checked_mul(height)
            .and_then(|p| p.checked_mul(channels))
    {
        return Err(PlotErrorKind::PixelCount {
            width,
            height,
            channels,
            found: pixels.len(),
        });
    }
    Ok(())
}

/// The scanlines as PNG stores them before compression: each row preceded by its filter type
/// byte (1, Sub) and holding `raw[i] − raw[i − channels]` (wrapping; the first pixel as is).
/// `pixels` holds whole rows (a partial last row is left out).
pub fn filter_scanlines(width: usize, pixels: &[u8], color: ColorType) -> Vec<u8> {
    let channels = color.channels();
    let stride = width * channels;
    if stride == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(pixels.len() + pixels.len() / stride);
    for row in pixels.chunks_exact(stride) {
        out.push(FILTER_SUB);
        out.extend_from_slice(&row[..channels]);
        out.extend(
            row[channels..]
                .iter()
                .zip(row)
                .map(|(&x, &left)| x.wrapping_sub(left)),
        );
    }
    out
}

fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // A chunk is at most 2³¹ − 1 bytes; an image of up to a few hundred MB compresses below.
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// The PNG file of a `width × height` image, `pixels` row-major from the top-left, one byte
/// per channel (`width · height · channels` bytes).
///
/// # Errors
/// When the buffer's length is wrong or a side is 0 (PNG has no empty images); the error's
/// subject is `png`.
pub fn encode_png(
    width: usize,
    height: usize,
    pixels: &[u8],
    color: ColorType,
) -> Result<Vec<u8>, PlotError> {
    check_image(width, height, pixels, color).map_err(|kind| PlotError::new("png", kind))?;
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let compressed = zlib
        .write_all(&filter_scanlines(width, pixels, color))
        .and_then(|()| zlib.finish())
        .map_err(|err| PlotError::new("png", PlotErrorKind::Io(err)))?;

    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&(width as u32).to_be_bytes());
    header.extend_from_slice(&(height as u32).to_be_bytes());
    // Bit depth 8, colour type, compression 0 (deflate), filter method 0, no interlace.
    header.extend_from_slice(&[8, color.png_code(), 0, 0, 0]);

    let mut png = Vec::with_capacity(compressed.len() + 64);
    png.extend_from_slice(&PNG_SIGNATURE);
    write_chunk(&mut png, b"IHDR", &header);
    write_chunk(&mut png, b"IDAT", &compressed);
    write_chunk(&mut png, b"IEND", &[]);
    Ok(png)
}

/// Writes a `width × height` image (row-major from the top-left, one byte per channel) to
/// `path` as an 8-bit PNG; the file is created or replaced. See [`encode_png`].
///
/// # Errors
/// As [`encode_png`], and when the file cannot be written; the error names the file.
pub fn write_png(
    path: impl AsRef<Path>,
    width: usize,
    height: usize,
    pixels: &[u8],
    color: ColorType,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    let name = || path.display().to_string();
    let png = encode_png(width, height, pixels, color).map_err(|err| err.about(name()))?;
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(&png)?;
        file.flush()
    };
    write().map_err(|err| PlotError::new(name(), PlotErrorKind::Io(err)))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::ZlibDecoder;

    use super::*;

    /// The chunks of a PNG file as `(type, data)`, checking each CRC.
    fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        assert_eq!(png[..8], PNG_SIGNATURE);
        let mut rest = &png[8..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = rest[4..8].try_into().unwrap();
            let data = rest[8..8 + len].to_vec();
            let crc = u32::from_be_bytes(rest[8 + len..12 + len].try_into().unwrap());
            assert_eq!(crc, crc32(&[&kind, &data]), "CRC of {kind:?}");
            out.push((kind, data));
            rest = &rest[12 + len..];
        }
        out
    }

    #[test]
    fn crc32_of_iend_is_the_one_every_png_ends_with() {
        assert_eq!(crc32(&[b"IEND"]), 0xAE42_6082);
        // The standard check value of CRC-32.
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    }

    #[test]
    fn idat_decompresses_to_the_filtered_scanlines_and_unfilters_to_the_pixels() {
        for (color, width, height) in [(ColorType::Gray, 5, 3), (ColorType::Rgb, 4, 6)] {
            let len = width * height * color.channels();
            let pixels: Vec<u8> = (0..len).map(|i| (i * 97 % 251) as u8).collect();
            let png = encode_png(width, height, &pixels, color).unwrap();
            let chunks = chunks(&png);
            let kinds: Vec<&[u8; 4]> = chunks.iter().map(|(k, _)| k).collect();
            assert_eq!(kinds, [b"IHDR", b"IDAT", b"IEND"]);
            let mut scanlines = Vec::new();
            ZlibDecoder::new(&chunks[1].1[..])
                .read_to_end(&mut scanlines)
                .unwrap();
            assert_eq!(scanlines, filter_scanlines(width, &pixels, color));
            // Undo the Sub filter as a decoder would.
            let stride = width * color.channels();
            let mut decoded = Vec::new();
            for line in scanlines.chunks_exact(stride + 1) {
                assert_eq!(line[0], FILTER_SUB);
                let start = decoded.len();
                for (i, &byte) in line[1..].iter().enumerate() {
                    let left = if i >= color.channels() {
                        decoded[start + i - color.channels()]
                    } else {
                        0
                    };
                    decoded.push(byte.wrapping_add(left));
                }
            }
            assert_eq!(decoded, pixels);
        }
    }

    #[test]
    fn a_written_file_has_the_signature_and_the_ihdr_fields() {
        let dir = std::env::temp_dir().join(format!("typednet-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rgb.png");
        let pixels = vec![200u8; 7 * 3 * 3];
        write_png(&path, 7, 3, &pixels, ColorType::Rgb).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bytes[..8], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        // IHDR: length 13, type, width 7, height 3, depth 8, colour type 2, 0, 0, 0.
        assert_eq!(bytes[8..16], [0, 0, 0, 13, b'I', b'H', b'D', b'R']);
        assert_eq!(bytes[16..29], [0, 0, 0, 7, 0, 0, 0, 3, 8, 2, 0, 0, 0]);
        assert_eq!(
            bytes[bytes.len() - 12..],
            [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let err = write_png("/nonexistent-dir/x.png", 2, 2, &[0; 4], ColorType::Gray).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("/nonexistent-dir/x.png: cannot write the file: "));
        let err = write_png("a.png", 2, 2, &[0; 5], ColorType::Rgb).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.png: expected 2 × 2 × 3 = 12 pixel bytes (width × height × channels), found 5"
        );
        let err = encode_png(0, 2, &[], ColorType::Gray).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("png: an image of 0 × 2 pixels cannot be written"));
    }
}
