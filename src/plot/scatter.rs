//! Scatter plots of 2-D points (codes of an autoencoder or PCA) coloured by class.

use super::error::{PlotError, PlotErrorKind};
use super::font::draw_number;
use super::{ColorType, Image};

/// matplotlib's `tab10` palette; label `l` is drawn in `TAB10[l % 10]`.
pub const TAB10: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

const WHITE: [u8; 3] = [255; 3];
const FRAME: [u8; 3] = [200; 3];
const TEXT: [u8; 3] = [60; 3];
/// Blank pixels outside the frame.
const MARGIN: usize = 8;
/// Pixels between the frame and the outermost point centres, so markers clear the frame.
const PADDING: usize = 6;
/// Marker radius: a point is the disc of pixels within this distance of its centre.
const RADIUS: isize = 2;
/// The strip right of the frame that holds the legend.
const LEGEND_WIDTH: usize = 40;
/// Legend rows: an 8 × 8 swatch, then the label in the 3 × 5 font at twice its size.
const SWATCH: usize = 8;
const FONT_SCALE: usize = 2;
const LEGEND_ROW: usize = 14;
/// The smallest canvas [`scatter`] draws on.
const MIN_SIZE: usize = LEGEND_WIDTH + 2 * MARGIN + 2 * PADDING + 16;

/// Where the points of a [`scatter`] plot land: the frame, and the affine map from the points'
/// bounding box onto the pixels inside it (`y` up, as in a plot).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScatterFrame {
    /// The frame's left, top, right and bottom pixel columns/rows (inclusive).
    pub frame: [usize; 4],
    /// The points' bounding box: `[x_min, y_min, x_max, y_max]`.
    pub bounds: [f32; 4],
}

impl ScatterFrame {
    /// The frame of a `size × size` scatter plot of `points`: it spans from 8
    /// pixels from the left, top and bottom edges to 8 pixels left of the 40-pixel legend strip,
    /// and the bounding box maps onto the pixels 6 inside it.
    pub fn new(points: &[[f32; 2]], size: usize) -> ScatterFrame {
        let mut bounds = [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ];
        for &[x, y] in points {
            bounds = [
                bounds[0].min(x),
                bounds[1].min(y),
                bounds[2].max(x),
                bounds[3].max(y),
            ];
        }
        if points.is_empty() {
            bounds = [0.0, 0.0, 1.0, 1.0];
        }
        let frame = [
            MARGIN,
            MARGIN,
            size - LEGEND_WIDTH - MARGIN,
            size - 1 - MARGIN,
        ];
        ScatterFrame { frame, bounds }
    }

    /// The pixel (`x` from the left, `y` from the top) of a point's centre. A coordinate whose
    /// range is 0 (all points share it) maps to the middle.
    pub fn to_pixel(&self, [x, y]: [f32; 2]) -> (usize, usize) {
        let [left, top, right, bottom] = self.frame;
        let (x0, x1) = (left + PADDING, right - PADDING);
        let (y0, y1) = (top + PADDING, bottom - PADDING);
        let fraction = |v: f32, min: f32, max: f32| {
            if max > min {
                f64::from(v - min) / f64::from(max - min)
            } else {
                0.5
            }
        };
        let fx = fraction(x, self.bounds[0], self.bounds[2]);
        let fy = fraction(y, self.bounds[1], self.bounds[3]);
        let px = x0 + (fx * (x1 - x0) as f64).round() as usize;
        let py = y1 - (fy * (y1 - y0) as f64).round() as usize;
        (px, py)
    }
}

/// A `size × size` RGB scatter plot: a white canvas, a light grey frame, each point a small
/// disc (radius 2) in the `tab10` colour of its label ([`TAB10`], label `l` → `TAB10[l % 10]`),
/// drawn in order (later points over earlier), auto-scaled to the points' bounding box
/// ([`ScatterFrame`]); right of the frame a legend with one swatch and the number per distinct
/// label, ascending (as many as fit the height).
///
/// **matplotlib**: `plt.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=4)` with a legend.
///
/// # Errors
/// When `labels` and `points` differ in length, a coordinate is not finite, or `size` is too
/// small for the margins and the legend (below 84); the error's subject is `scatter`.
pub fn scatter(points: &[[f32; 2]], labels: &[usize], size: usize) -> Result<Image, PlotError> {
    let error = |kind| PlotError::new("scatter", kind);
    if points.len() != labels.len() {
        return Err(error(PlotErrorKind::LabelCount {
            points: points.len(),
            labels: labels.len(),
        }));
    }
    if let Some(index) = points.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
        return Err(error(PlotErrorKind::NonFinitePoint { index }));
    }
    if size < MIN_SIZE {
        return Err(error(PlotErrorKind::TooSmall {
            size,
            minimum: MIN_SIZE,
        }));
    }
    let mut image = Image::filled(size, size, ColorType::Rgb, &WHITE);
    let layout = ScatterFrame::new(points, size);
    let [left, top, right, bottom] = layout.frame;
    image.fill_rect(left, top, right - left + 1, 1, &FRAME);
    image.fill_rect(left, bottom, right - left + 1, 1, &FRAME);
    image.fill_rect(left, top, 1, bottom - top + 1, &FRAME);
    image.fill_rect(right, top, 1, bottom - top + 1, &FRAME);

    for (&point, &label) in points.iter().zip(labels) {
        let (cx, cy) = layout.to_pixel(point);
        let color = TAB10[label % TAB10.len()];
        for dy in -RADIUS..=RADIUS {
            for dx in -RADIUS..=RADIUS {
                if dx * dx + dy * dy <= RADIUS * RADIUS {
                    let (x, y) = (cx as isize + dx, cy as isize + dy);
                    image.set_pixel(x as usize, y as usize, &color);
                }
            }
        }
    }

    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let legend_left = size - LEGEND_WIDTH + 4;
    for (row, &label) in distinct.iter().enumerate() {
        let y = top + row * LEGEND_ROW;
        if y + LEGEND_ROW > size {
            break;
        }
        image.fill_rect(
            legend_left,
            y + 1,
            SWATCH,
            SWATCH,
            &TAB10[label % TAB10.len()],
        );
        // Labels wider than the strip are clipped by `set_pixel`.
        draw_number(
            &mut image,
            legend_left + SWATCH + 4,
            y,
            label,
            FONT_SCALE,
            &TEXT,
        );
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_of_label_3_lands_in_its_colour_where_the_layout_says() {
        // size 200: frame x 8..=152, y 8..=191; point centres x 14..=146, y 14..=185.
        let points = [[0.0, 0.0], [4.0, 2.0], [1.0, 0.5]];
        let image = scatter(&points, &[0, 1, 3], 200).unwrap();
        assert_eq!((image.width(), image.height()), (200, 200));
        assert_eq!(image.color_type(), ColorType::Rgb);
        // (1, 0.5) is a quarter of the way across and up: x 14 + 33, y 185 − 43.
        assert_eq!(
            ScatterFrame::new(&points, 200).to_pixel([1.0, 0.5]),
            (47, 142)
        );
        assert_eq!(image.pixel(47, 142), [214, 39, 40]);
        assert_eq!(image.pixel(49, 142), [214, 39, 40]); // the disc's radius
        assert_eq!(image.pixel(47, 140), [214, 39, 40]);
        assert_eq!(image.pixel(49, 144), WHITE); // outside the disc
                                                 // The corners of the bounding box.
        assert_eq!(image.pixel(14, 185), TAB10[0]);
        assert_eq!(image.pixel(146, 14), TAB10[1]);
        // Background, frame, legend swatch of label 3 (third legend row).
        assert_eq!(image.pixel(100, 60), WHITE);
        assert_eq!(image.pixel(8, 100), FRAME);
        assert_eq!(image.pixel(152, 191), FRAME);
        assert_eq!(image.pixel(164 + 2, 8 + 2 * 14 + 3), TAB10[3]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = scatter(&[[0.0, 1.0]], &[], 200).unwrap_err();
        assert_eq!(err.to_string(), "scatter: 1 points but 0 labels");
        let err = scatter(&[[0.0, f32::NAN]], &[0], 200).unwrap_err();
        assert_eq!(
            err.to_string(),
            "scatter: point 0 has a coordinate that is not finite"
        );
        assert!(scatter(&[], &[], 50).is_err());
        // One point, or points on a line: no division by a zero range.
        let image = scatter(&[[1.0, 1.0]], &[2], 100).unwrap();
        let (x, y) = ScatterFrame::new(&[[1.0, 1.0]], 100).to_pixel([1.0, 1.0]);
        assert_eq!(image.pixel(x, y), TAB10[2]);
    }
}
