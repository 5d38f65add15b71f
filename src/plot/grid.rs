//! Grids of small grey images: originals above their reconstructions, or samples.

use super::error::{PlotError, PlotErrorKind};
use super::{ColorType, Image};

/// Pixels between neighbouring images, across and down.
pub const GRID_GAP: usize = 2;
/// The grey of the gaps (and of the space after a row shorter than the longest): mid grey, so
/// that it stands apart from both the black background and the white strokes of MNIST digits.
pub const GRID_BACKGROUND: u8 = 128;

/// A grey canvas tiling `rows` of images: `rows[r]` holds row `r`'s images one after another,
/// each `image_h × image_w` values row-major in `[0, 1]` (0 black, 1 white; values outside
/// are clamped, NaN is drawn black). Each image pixel becomes a `scale × scale` block, and
/// images are [`GRID_GAP`] pixels apart, so for `c` images in the longest row the canvas is
/// `c·w·scale + (c − 1)·2` pixels wide and `r·h·scale + (r − 1)·2` high.
///
/// Typical figure: `digit_grid(&[&originals, &pca_reconstructions, &autoencoder_outputs], 28, 28, 2)`.
///
/// # Errors
/// When a row is not a whole number of images, or there is nothing to draw (no rows, no
/// images, `scale`, `image_h` or `image_w` 0); the error's subject is `digit_grid`.
pub fn digit_grid(
    rows: &[&[f32]],
    image_h: usize,
    image_w: usize,
    scale: usize,
) -> Result<Image, PlotError> {
    let error = |kind| PlotError::new("digit_grid", kind);
    let image_len = image_h * image_w;
    for (row, values) in rows.iter().enumerate() {
        if image_len == 0 || values.len() % image_len != 0 {
            return Err(error(PlotErrorKind::RowLength {
                row,
                len: values.len(),
                image_h,
                image_w,
            }));
        }
    }
    let columns = rows.iter().map(|r| r.len() / image_len).max().unwrap_or(0);
    let (tile_w, tile_h) = (image_w * scale, image_h * scale);
    let width = (columns * (tile_w + GRID_GAP)).saturating_sub(GRID_GAP);
    let height = (rows.len() * (tile_h + GRID_GAP)).saturating_sub(GRID_GAP);
    if width == 0 || height == 0 {
        return Err(error(PlotErrorKind::BadSize { width, height }));
    }
    let mut canvas = Image::filled(width, height, ColorType::Gray, &[GRID_BACKGROUND]);
    for (r, values) in rows.iter().enumerate() {
        for (c, image) in values.chunks_exact(image_len).enumerate() {
            let (left, top) = (c * (tile_w + GRID_GAP), r * (tile_h + GRID_GAP));
            for (i, &value) in image.iter().enumerate() {
                let grey = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
                let (y, x) = (i / image_w, i % image_w);
                canvas.fill_rect(left + x * scale, top + y * scale, scale, scale, &[grey]);
            }
        }
    }
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_has_the_stated_size_and_places_each_pixel() {
        // Row 0: three 2×3 images; row 1: one image (the rest stays background).
        let row0: Vec<f32> = (0..18).map(|i| i as f32 / 17.0).collect();
        let row1 = [1.5f32, -1.0, f32::NAN, 0.5, 0.0, 1.0];
        let grid = digit_grid(&[&row0, &row1], 2, 3, 2).unwrap();
        assert_eq!(grid.color_type(), ColorType::Gray);
        assert_eq!((grid.width(), grid.height()), (3 * 6 + 2 * 2, 2 * 4 + 2));
        // Image 2 of row 0 starts at x = 2·(6 + 2) = 16; its pixel (y 1, x 2) is value 17/17,
        // drawn as the 2×2 block at (16 + 4, 2).
        for (x, y) in [(20, 2), (21, 2), (20, 3), (21, 3)] {
            assert_eq!(grid.pixel(x, y), [255]);
        }
        // Its pixel (0, 0) is 12/17.
        assert_eq!(grid.pixel(16, 0), [(12.0f32 / 17.0 * 255.0).round() as u8]);
        // Gaps, and the missing images of row 1.
        assert_eq!(grid.pixel(6, 0), [GRID_BACKGROUND]);
        assert_eq!(grid.pixel(0, 4), [GRID_BACKGROUND]);
        assert_eq!(grid.pixel(10, 7), [GRID_BACKGROUND]);
        // Row 1 starts at y = 6: clamped 1.5 → 255, −1 → 0, NaN → 0, 0.5 → 128.
        assert_eq!(grid.pixel(0, 6), [255]);
        assert_eq!(grid.pixel(2, 6), [0]);
        assert_eq!(grid.pixel(4, 6), [0]);
        assert_eq!(grid.pixel(0, 8), [128]);
    }

    #[test]
    fn a_row_that_is_not_whole_images_is_an_error() {
        let err = digit_grid(&[&[0.0; 784], &[0.0; 785]], 28, 28, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "digit_grid: row 1 holds 785 values, not a whole number of 28 × 28 images"
        );
        assert!(digit_grid(&[], 28, 28, 1).is_err());
    }
}
