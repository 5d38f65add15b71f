//! Figures as PNG files with no image crate: a minimal PNG encoder, grids of digit images
//! (originals / PCA / autoencoder reconstructions, samples), 2-D scatter plots of codes
//! coloured by class, and line charts of training curves.
//!
//! | function | makes | matplotlib |
//! |---|---|---|
//! | [`digit_grid`] | a grey [`Image`]: rows of `h × w` images in `[0, 1]`, 2-pixel gaps | `plt.subplots(rows, cols)` + `imshow(cmap="gray", vmin=0, vmax=1)` |
//! | [`scatter`] | an RGB [`Image`]: points coloured by label (tab10), a frame, a legend of swatches and digits | `plt.scatter(x, y, c=labels, cmap="tab10", s=4)` + `legend` |
//! | [`LineChart`] | an RGB [`Image`]: named series as lines with markers, ticks on both axes, a legend | `plt.plot(x, y, marker="o", label=name)` + `legend` |
//! | [`Image::paste`] | one image copied into another (panels side by side) | `plt.subplots(1, n)` |
//! | [`Image::write_png`], [`write_png`] | an 8-bit grey or RGB PNG file | `plt.savefig(path)` |
//!
//! ```no_run
//! use typednet::plot::{digit_grid, scatter};
//!
//! # fn main() -> Result<(), typednet::plot::PlotError> {
//! let originals = vec![0.5f32; 8 * 784];
//! let reconstructions = vec![0.25f32; 8 * 784];
//! digit_grid(&[&originals, &reconstructions], 28, 28, 2)?.write_png("figures/pca.png")?;
//! scatter(&[[0.0, 1.0], [2.0, -1.0]], &[3, 7], 400)?.write_png("figures/codes.png")?;
//! # Ok(())
//! # }
//! ```

mod error;
mod font;
mod grid;
mod line;
mod png;
mod scatter;

pub use error::{PlotError, PlotErrorKind};
pub use grid::{digit_grid, GRID_BACKGROUND, GRID_GAP};
pub use line::{ChartLayout, LineChart, Series};
pub use png::{crc32, encode_png, filter_scanlines, write_png, PNG_SIGNATURE};
pub use scatter::{scatter, ScatterFrame, TAB10};

use std::path::Path;

/// How a PNG pixel is stored: one byte per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorType {
    /// One grey byte per pixel (PNG colour type 0), 0 black, 255 white.
    Gray,
    /// Red, green, blue bytes per pixel (PNG colour type 2).
    Rgb,
}

impl ColorType {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            ColorType::Gray => 1,
            ColorType::Rgb => 3,
        }
    }

    /// The colour type byte of PNG's IHDR chunk.
    pub fn png_code(self) -> u8 {
        match self {
            ColorType::Gray => 0,
            ColorType::Rgb => 2,
        }
    }
}

/// An 8-bit image in memory, row-major from the top-left pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    width: usize,
    height: usize,
    color: ColorType,
    pixels: Vec<u8>,
}

impl Image {
    /// A `width × height` image filled with `fill` (one byte per channel: `[g]` or `[r, g, b]`).
    ///
    /// # Panics
    /// When `fill` does not have `color.channels()` bytes.
    pub fn filled(width: usize, height: usize, color: ColorType, fill: &[u8]) -> Image {
        assert_eq!(
            fill.len(),
            color.channels(),
            "fill has one byte per channel"
        );
        Image {
            width,
            height,
            color,
            pixels: fill.repeat(width * height),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Grey or RGB.
    pub fn color_type(&self) -> ColorType {
        self.color
    }

    /// All pixels, row-major, `channels` bytes each.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The bytes of pixel (`x`, `y`), `x` from the left and `y` from the top.
    ///
    /// # Panics
    /// When the pixel is outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> &[u8] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside {}×{}",
            self.width,
            self.height
        );
        let c = self.color.channels();
        let start = (y * self.width + x) * c;
        &self.pixels[start..start + c]
    }

    /// Sets pixel (`x`, `y`) to `value` (one byte per channel); a pixel outside the image is
    /// ignored, so shapes may be drawn across the border.
    pub fn set_pixel(&mut self, x: usize, y: usize, value: &[u8]) {
        let c = self.color.channels();
        if x < self.width && y < self.height && value.len() == c {
            let start = (y * self.width + x) * c;
            self.pixels[start..start + c].copy_from_slice(value);
        }
    }

    /// Fills the `w × h` rectangle whose top-left pixel is (`x`, `y`), clipped to the image.
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, value: &[u8]) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.set_pixel(xx, yy, value);
            }
        }
    }

    /// Copies `other` into this image with its top-left pixel at (`x`, `y`), clipped to this
    /// image; e.g. two charts side by side on a canvas twice as wide.
    ///
    /// # Panics
    /// When the two images have different colour types.
    pub fn paste(&mut self, other: &Image, x: usize, y: usize) {
        assert_eq!(
            self.color, other.color,
            "paste needs images of one colour type"
        );
        for row in 0..other.height {
            for col in 0..other.width {
                self.set_pixel(x + col, y + row, other.pixel(col, row));
            }
        }
    }

    /// The image as a PNG file in memory ([`encode_png`]).
    pub fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        encode_png(self.width, self.height, &self.pixels, self.color)
    }

    /// Writes the image to `path` as a PNG ([`write_png`]); the error names the file.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<(), PlotError> {
        write_png(path, self.width, self.height, &self.pixels, self.color)
    }
}
