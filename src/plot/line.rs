//! Line charts of named series (loss and accuracy per epoch): a frame, numeric ticks on both
//! axes, a legend of swatches and names.

use super::error::{PlotError, PlotErrorKind};
use super::font::{draw_text, text_width, GLYPH_HEIGHT};
use super::scatter::TAB10;
use super::{ColorType, Image};

const WHITE: [u8; 3] = [255; 3];
const FRAME: [u8; 3] = [200; 3];
const TEXT: [u8; 3] = [60; 3];
/// Blank pixels around the figure.
const MARGIN: usize = 8;
/// Pixels between the frame and the outermost data points, so markers clear the frame.
const PADDING: usize = 6;
/// Length of a tick mark outside the frame, and the gap between it and its label.
const TICK: usize = 3;
const TICK_GAP: usize = 3;
/// Text is the 3 × 5 font at twice its size.
const FONT_SCALE: usize = 2;
const TEXT_HEIGHT: usize = GLYPH_HEIGHT * FONT_SCALE;
/// Legend rows: an 8 × 8 swatch, 4 pixels, then the series' name.
const SWATCH: usize = 8;
const LEGEND_ROW: usize = 14;
/// Marker radius: a data point is the disc of pixels within this distance of its centre.
const RADIUS: isize = 2;
/// The fewest pixels between the outermost data points, each way.
const MIN_SPAN: usize = 20;
/// Ticks the axes aim for (the nice step may give a few more or fewer).
const TARGET_TICKS: usize = 5;

/// One named series of a [`LineChart`]: its points `(x, y)` in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The points; a NaN `y` is a gap in the line (as in matplotlib).
    pub points: Vec<(f64, f64)>,
}

/// A line chart of one or more named series, drawn as an RGB [`Image`] by [`LineChart::draw`]:
/// a white canvas, a light grey frame, tick marks with numeric labels on the left (y) and bottom
/// (x) axes at "nice" values (1, 2 or 5 times a power of ten), each series a 1-pixel line
/// through its points, with a small disc (radius 2) on each point, in the `tab10` colour of its
/// position ([`TAB10`], series `i` → `TAB10[i % 10]`, matplotlib's default colour cycle), and
/// above the frame a legend with one swatch and name per series. Both axes are scaled to the
/// bounding box of the finite points ([`ChartLayout`]).
///
/// The font has digits, letters (drawn as capitals) and `. , : - + _ / % ( ) =`; other
/// characters are blanks.
///
/// **matplotlib**: `plt.plot(x, y, marker="o", label=name)` per series, then `plt.legend()`.
///
/// ```
/// use typednet::plot::{LineChart, TAB10};
///
/// let chart = LineChart::new(400, 300)
///     .series("train loss", &[0.9, 0.5, 0.3, 0.25])
///     .series("test loss", &[0.8, 0.55, 0.4, 0.38]);
/// let image = chart.draw()?;
/// // The first point of the train loss (epoch 1, 0.9) is drawn in tab10 blue.
/// let (x, y) = chart.layout()?.to_pixel(1.0, 0.9);
/// assert_eq!(image.pixel(x, y), TAB10[0]);
/// # image.write_png(std::env::temp_dir().join("typednet_line_chart_doctest.png"))?;
/// # Ok::<(), typednet::plot::PlotError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    width: usize,
    height: usize,
    series: Vec<Series>,
    markers: bool,
}

impl LineChart {
    /// An empty `width × height` chart, with markers on the points.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            series: Vec::new(),
            markers: true,
        }
    }

    /// Adds a series whose `i`-th value is at `x = i + 1` (an epoch, counted from 1).
    #[must_use]
    pub fn series(self, name: impl Into<String>, values: &[f64]) -> Self {
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &y)| ((i + 1) as f64, y))
            .collect();
        self.series_xy(name, points)
    }

    /// Adds a series of `(x, y)` points, drawn in the given order.
    #[must_use]
    pub fn series_xy(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
        });
        self
    }

    /// Whether to draw a disc on each point (default `true`); off for long series such as a
    /// loss per step.
    #[must_use]
    pub fn markers(mut self, markers: bool) -> Self {
        self.markers = markers;
        self
    }

    /// The series, in legend order.
    pub fn series_list(&self) -> &[Series] {
        &self.series
    }

    /// Where the chart's points land: checks the series and computes the frame, the ticks and
    /// the map from data to pixels.
    ///
    /// # Errors
    /// When there is no series, a series has no point with a finite `y` (empty, or NaN only),
    /// an `x` is not finite or a `y` is infinite, or the canvas is too small for the margins,
    /// the legend and the tick labels; the error's subject is `line_chart`.
    pub fn layout(&self) -> Result<ChartLayout, PlotError> {
        let error = |kind| PlotError::new("line_chart", kind);
        if self.series.is_empty() {
            return Err(error(PlotErrorKind::NoSeries));
        }
        let mut bounds = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for series in &self.series {
            let mut finite = 0;
            for (index, &(x, y)) in series.points.iter().enumerate() {
                if !x.is_finite() || y.is_infinite() {
                    return Err(error(PlotErrorKind::NonFiniteValue {
                        series: series.name.clone(),
                        index,
                    }));
                }
                if y.is_nan() {
                    continue;
                }
                finite += 1;
                bounds = [
                    bounds[0].min(x),
                    bounds[1].min(y),
                    bounds[2].max(x),
                    bounds[3].max(y),
                ];
            }
            if finite == 0 {
                return Err(error(PlotErrorKind::EmptySeries {
                    series: series.name.clone(),
                }));
            }
        }
        let integer_x = self
            .series
            .iter()
            .flat_map(|s| &s.points)
            .all(|&(x, _)| x.fract() == 0.0);
        let x_ticks = nice_ticks(bounds[0], bounds[2], integer_x);
        let y_ticks = nice_ticks(bounds[1], bounds[3], false);
        let y_label_width = y_ticks
            .iter()
            .map(|t| text_width(&t.1, FONT_SCALE))
            .max()
            .unwrap_or(0);
        let last_x_label = x_ticks.last().map_or(0, |t| text_width(&t.1, FONT_SCALE));
        let left = MARGIN + y_label_width + TICK_GAP + TICK;
        let top = MARGIN + self.series.len() * LEGEND_ROW + 4;
        // The last x label is centred on its tick, which may sit at the frame's right edge.
        let right = self.width.checked_sub(1 + MARGIN + last_x_label / 2);
        let bottom = self
            .height
            .checked_sub(1 + MARGIN + TEXT_HEIGHT + TICK_GAP + TICK);
        let min_width = left + 2 * PADDING + MIN_SPAN + 1 + MARGIN + last_x_label / 2;
        let min_height = top + 2 * PADDING + MIN_SPAN + 1 + MARGIN + TEXT_HEIGHT + TICK_GAP + TICK;
        match (right, bottom) {
            (Some(right), Some(bottom))
                if right >= left + 2 * PADDING + MIN_SPAN
                    && bottom >= top + 2 * PADDING + MIN_SPAN =>
            {
                Ok(ChartLayout {
                    frame: [left, top, right, bottom],
                    bounds,
                    x_ticks,
                    y_ticks,
                })
            }
            _ => Err(error(PlotErrorKind::CanvasTooSmall {
                width: self.width,
                height: self.height,
                min_width,
                min_height,
            })),
        }
    }

    /// Draws the chart; see [`LineChart`] for what it shows and [`LineChart::layout`] for the
    /// errors.
    pub fn draw(&self) -> Result<Image, PlotError> {
        let layout = self.layout()?;
        let mut image = Image::filled(self.width, self.height, ColorType::Rgb, &WHITE);
        let [left, top, right, bottom] = layout.frame;
        image.fill_rect(left, top, right - left + 1, 1, &FRAME);
        image.fill_rect(left, bottom, right - left + 1, 1, &FRAME);
        image.fill_rect(left, top, 1, bottom - top + 1, &FRAME);
        image.fill_rect(right, top, 1, bottom - top + 1, &FRAME);

        for (value, label) in &layout.y_ticks {
            let (_, y) = layout.to_pixel(layout.bounds[0], *value);
            image.fill_rect(left - TICK, y, TICK, 1, &TEXT);
            let width = text_width(label, FONT_SCALE);
            let x = left - TICK - TICK_GAP - width;
            draw_text(
                &mut image,
                x,
                y.saturating_sub(TEXT_HEIGHT / 2),
                label,
                FONT_SCALE,
                &TEXT,
            );
        }
        for (value, label) in &layout.x_ticks {
            let (x, _) = layout.to_pixel(*value, layout.bounds[1]);
            image.fill_rect(x, bottom + 1, 1, TICK, &TEXT);
            let width = text_width(label, FONT_SCALE);
            draw_text(
                &mut image,
                x.saturating_sub(width / 2),
                bottom + 1 + TICK + TICK_GAP,
                label,
                FONT_SCALE,
                &TEXT,
            );
        }

        for (i, series) in self.series.iter().enumerate() {
            let color = TAB10[i % TAB10.len()];
            let mut previous = None;
            for &(x, y) in &series.points {
                if y.is_nan() {
                    previous = None;
                    continue;
                }
                let point = layout.to_pixel(x, y);
                if let Some(from) = previous {
                    draw_line(&mut image, from, point, &color);
                }
                previous = Some(point);
            }
            if self.markers {
                for &(x, y) in series.points.iter().filter(|(_, y)| !y.is_nan()) {
                    draw_disc(&mut image, layout.to_pixel(x, y), &color);
                }
            }
            let y = MARGIN + i * LEGEND_ROW;
            image.fill_rect(left, y + 1, SWATCH, SWATCH, &color);
            // Names wider than the canvas are clipped by `set_pixel`.
            draw_text(
                &mut image,
                left + SWATCH + 4,
                y,
                &series.name,
                FONT_SCALE,
                &TEXT,
            );
        }
        Ok(image)
    }
}

/// Where the points of a [`LineChart`] land: the frame, the data's bounding box and the ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartLayout {
    /// The frame's left, top, right and bottom pixel columns/rows (inclusive).
    pub frame: [usize; 4],
    /// The bounding box of the finite points: `[x_min, y_min, x_max, y_max]`.
    pub bounds: [f64; 4],
    /// The x ticks: value and label.
    pub x_ticks: Vec<(f64, String)>,
    /// The y ticks: value and label.
    pub y_ticks: Vec<(f64, String)>,
}

impl ChartLayout {
    /// The pixel (`x` from the left, `y` from the top) of a data point: the bounding box maps
    /// onto the pixels 6 inside the frame, `y` up. A coordinate whose range is 0 (every point
    /// shares it) maps to the middle.
    pub fn to_pixel(&self, x: f64, y: f64) -> (usize, usize) {
        let [left, top, right, bottom] = self.frame;
        let (x0, x1) = (left + PADDING, right - PADDING);
        let (y0, y1) = (top + PADDING, bottom - PADDING);
        let fraction = |v: f64, min: f64, max: f64| {
            if max > min {
                ((v - min) / (max - min)).clamp(0.0, 1.0)
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

/// Ticks at the multiples of a nice step (1, 2 or 5 × 10ᵏ, at least 1 for whole-number data)
/// within `[min, max]`, about [`TARGET_TICKS`] of them, each with its label (as many decimals
/// as the step needs); one tick at the value when `min == max`.
fn nice_ticks(min: f64, max: f64, whole_numbers: bool) -> Vec<(f64, String)> {
    if max <= min {
        let decimals = if whole_numbers { 0 } else { 3 };
        return vec![(min, label(min, decimals))];
    }
    let raw = (max - min) / (TARGET_TICKS - 1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let nice = if normalised < 1.5 {
        1.0
    } else if normalised < 3.0 {
        2.0
    } else if normalised < 7.0 {
        5.0
    } else {
        10.0
    };
    let mut step = nice * magnitude;
    if whole_numbers {
        step = step.max(1.0);
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    // A bound a rounding error away from a multiple of the step still gets its tick
    // (1.2 / 0.2 = 5.999…).
    let slack = 1e-9;
    let first = (min / step - slack).ceil() as i64;
    let last = (max / step + slack).floor() as i64;
    (first..=last)
        .map(|k| {
            let value = k as f64 * step;
            (value, label(value, decimals))
        })
        .collect()
}

/// `value` with `decimals` decimals, never `-0`.
fn label(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_string()
    } else {
        text
    }
}

/// A 1-pixel line from `from` to `to` (Bresenham), both ends included.
fn draw_line(image: &mut Image, from: (usize, usize), to: (usize, usize), color: &[u8]) {
    let (mut x, mut y) = (from.0 as isize, from.1 as isize);
    let (x1, y1) = (to.0 as isize, to.1 as isize);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        image.set_pixel(x as usize, y as usize, color);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// The disc of radius [`RADIUS`] around `centre`.
fn draw_disc(image: &mut Image, (cx, cy): (usize, usize), color: &[u8]) {
    for dy in -RADIUS..=RADIUS {
        for dx in -RADIUS..=RADIUS {
            if dx * dx + dy * dy <= RADIUS * RADIUS {
                let (x, y) = (cx as isize + dx, cy as isize + dy);
                image.set_pixel(x as usize, y as usize, color);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_lines_and_legend_land_where_the_layout_says() {
        let chart = LineChart::new(300, 200)
            .series("train", &[1.0, 0.5, 0.25])
            .series("test", &[0.75, f64::NAN, 0.5]);
        let layout = chart.layout().unwrap();
        let image = chart.draw().unwrap();
        assert_eq!((image.width(), image.height()), (300, 200));
        // Two legend rows: the frame starts at 8 + 2·14 + 4 = 40. The y labels are "0.2" …
        // "1.0" (3 characters, 22 pixels wide), so the frame's left is 8 + 22 + 3 + 3 = 36.
        let [left, top, right, bottom] = layout.frame;
        assert_eq!((left, top), (36, 40));
        // x labels "1" "2" "3" (6 px, half 3): right = 300 − 1 − 8 − 3; bottom = 200 − 1 − 8 − 10 − 3 − 3.
        assert_eq!((right, bottom), (288, 175));
        assert_eq!(layout.bounds, [1.0, 0.25, 3.0, 1.0]);
        let xs: Vec<&str> = layout.x_ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(xs, ["1", "2", "3"]);
        let ys: Vec<&str> = layout.y_ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(ys, ["0.4", "0.6", "0.8", "1.0"]);

        // Corners of the bounding box, 6 pixels inside the frame.
        assert_eq!(layout.to_pixel(1.0, 1.0), (42, 46));
        assert_eq!(layout.to_pixel(3.0, 0.25), (282, 169));
        assert_eq!(image.pixel(42, 46), TAB10[0]);
        assert_eq!(image.pixel(282, 169), TAB10[0]);
        // The middle point of the train series: x 162, y 169 − round(0.25/0.75 · 123) = 128.
        assert_eq!(layout.to_pixel(2.0, 0.5), (162, 128));
        assert_eq!(image.pixel(162, 128), TAB10[0]);
        assert_eq!(image.pixel(164, 128), TAB10[0]); // the marker's radius
                                                     // The line between the first two train points passes through their midpoint.
        assert_eq!(image.pixel(102, 87), TAB10[0]);
        // The test series: its NaN is a gap, so no line runs from (1, 0.75) to (3, 0.5); its
        // two points are drawn.
        let (ax, ay) = layout.to_pixel(1.0, 0.75);
        let (bx, by) = layout.to_pixel(3.0, 0.5);
        assert_eq!(image.pixel(ax, ay), TAB10[1]);
        assert_eq!(image.pixel(bx, by), TAB10[1]);
        assert_eq!(image.pixel((ax + bx) / 2, (ay + by) / 2), WHITE);
        // Frame, legend swatches (second row 14 lower), background.
        assert_eq!(image.pixel(left, 100), FRAME);
        assert_eq!(image.pixel(right, bottom), FRAME);
        assert_eq!(image.pixel(left + 3, 8 + 4), TAB10[0]);
        assert_eq!(image.pixel(left + 3, 8 + 14 + 4), TAB10[1]);
        assert_eq!(image.pixel(250, 60), WHITE);
        // A y tick mark left of the frame at 0.5? No: ticks are at 0.4, 0.6, …; the mark of
        // 1.0 is on the row of the top point.
        assert_eq!(image.pixel(left - 1, 46), TEXT);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let message = |chart: LineChart| chart.draw().unwrap_err().to_string();
        assert_eq!(
            message(LineChart::new(300, 200)),
            "line_chart: there is no series to draw"
        );
        assert_eq!(
            message(LineChart::new(300, 200).series("loss", &[])),
            "line_chart: series \"loss\" has no finite value to draw"
        );
        assert_eq!(
            message(LineChart::new(300, 200).series("loss", &[f64::NAN, f64::NAN])),
            "line_chart: series \"loss\" has no finite value to draw"
        );
        assert_eq!(
            message(LineChart::new(300, 200).series("loss", &[1.0, f64::INFINITY])),
            "line_chart: value 1 of series \"loss\" is infinite, or its x is not finite"
        );
        assert!(
            message(LineChart::new(40, 30).series("loss", &[1.0, 2.0])).starts_with(
                "line_chart: a canvas of 40 × 30 pixels is too small; the figure needs at least "
            )
        );
        assert!(LineChart::new(0, 0).series("loss", &[1.0]).draw().is_err());
    }

    #[test]
    fn a_single_point_or_a_flat_series_is_drawn_in_the_middle() {
        let chart = LineChart::new(200, 150).series("flat", &[2.0, 2.0]);
        let layout = chart.layout().unwrap();
        let image = chart.draw().unwrap();
        let [_, top, _, bottom] = layout.frame;
        let (x, y) = layout.to_pixel(1.0, 2.0);
        let (y0, y1) = (top + PADDING, bottom - PADDING);
        assert_eq!(y, y1 - ((y1 - y0) as f64 / 2.0).round() as usize);
        assert_eq!(image.pixel(x, y), TAB10[0]);
        assert_eq!(layout.y_ticks, [(2.0, "2.000".to_string())]);
        let one = LineChart::new(200, 150).series("one", &[0.5]);
        let image = one.draw().unwrap();
        let (x, y) = one.layout().unwrap().to_pixel(1.0, 0.5);
        assert_eq!(image.pixel(x, y), TAB10[0]);
    }

    #[test]
    fn ticks_are_nice_numbers() {
        let labels = |min, max, whole| -> Vec<String> {
            nice_ticks(min, max, whole)
                .into_iter()
                .map(|t| t.1)
                .collect()
        };
        assert_eq!(labels(1.0, 10.0, true), ["2", "4", "6", "8", "10"]);
        assert_eq!(labels(1.0, 2.0, true), ["1", "2"]);
        assert_eq!(
            labels(0.2, 1.2, false),
            ["0.2", "0.4", "0.6", "0.8", "1.0", "1.2"]
        );
        assert_eq!(
            labels(0.93, 0.987, false),
            ["0.93", "0.94", "0.95", "0.96", "0.97", "0.98"]
        );
        assert_eq!(
            labels(-0.5, 0.5, false),
            ["-0.4", "-0.2", "0.0", "0.2", "0.4"]
        );
        assert_eq!(
            labels(0.0, 2500.0, false),
            ["0", "500", "1000", "1500", "2000", "2500"]
        );
    }
}
