//! Training curves: the loss and accuracy per epoch as a PNG figure.

use std::path::Path;

use super::metrics::EpochMetrics;
use crate::plot::{ColorType, Image, LineChart, PlotError};

/// Size of each of the two panels of [`metrics_chart`].
const PANEL_WIDTH: usize = 400;
const PANEL_HEIGHT: usize = 300;

/// The training curves of a run as one RGB image of two 400 × 300 panels side by side: on the
/// left the train and test loss per epoch, on the right the train and test accuracy in percent
/// ([`LineChart`]s; train in tab10 blue, test in orange, x the epoch). A test series that is
/// NaN throughout (no test set) is left out.
///
/// **matplotlib**: `fig, (a, b) = plt.subplots(1, 2)`, `a.plot(epochs, train_loss, label=…)`, ….
///
/// # Errors
/// When `history` is empty or a value is infinite; the error's subject is `line_chart`.
pub fn metrics_chart(history: &[EpochMetrics]) -> Result<Image, PlotError> {
    let column =
        |value: fn(&EpochMetrics) -> f64| -> Vec<f64> { history.iter().map(value).collect() };
    let points = |values: Vec<f64>| -> Vec<(f64, f64)> {
        history.iter().map(|m| m.epoch as f64).zip(values).collect()
    };
    let panel = |train: Vec<f64>, test: Vec<f64>, what: &str| {
        let mut chart = LineChart::new(PANEL_WIDTH, PANEL_HEIGHT)
            .series_xy(format!("train {what}"), points(train));
        if test.iter().any(|v| !v.is_nan()) {
            chart = chart.series_xy(format!("test {what}"), points(test));
        }
        chart.draw()
    };
    let loss = panel(column(|m| m.train_loss), column(|m| m.test_loss), "loss")?;
    let accuracy = panel(
        column(|m| 100.0 * m.train_accuracy),
        column(|m| 100.0 * m.test_accuracy),
        "accuracy %",
    )?;
    let mut figure = Image::filled(2 * PANEL_WIDTH, PANEL_HEIGHT, ColorType::Rgb, &[255; 3]);
    figure.paste(&loss, 0, 0);
    figure.paste(&accuracy, PANEL_WIDTH, 0);
    Ok(figure)
}

/// Writes [`metrics_chart`] of `history` to `path` as a PNG; the error names the file (or
/// `line_chart` when the history cannot be drawn).
///
/// **matplotlib**: the curves of [`metrics_chart`], then `plt.savefig(path)`.
///
/// ```
/// use typednet::train::{plot_metrics, EpochMetrics};
///
/// let history: Vec<EpochMetrics> = (1..=5)
///     .map(|epoch| EpochMetrics {
///         epoch,
///         train_loss: 1.0 / epoch as f64,
///         train_accuracy: 1.0 - 0.5 / epoch as f64,
///         test_loss: 1.2 / epoch as f64,
///         test_accuracy: 1.0 - 0.6 / epoch as f64,
///         seconds: 1.0,
///     })
///     .collect();
/// plot_metrics(&history, std::env::temp_dir().join("typednet_curves_doctest.png"))?;
/// # Ok::<(), typednet::plot::PlotError>(())
/// ```
pub fn plot_metrics(history: &[EpochMetrics], path: impl AsRef<Path>) -> Result<(), PlotError> {
    metrics_chart(history)?.write_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::TAB10;

    fn epoch(epoch: usize, test: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: 0.5 + 0.1 * epoch as f64,
            test_loss: test,
            test_accuracy: test,
            seconds: 0.1,
        }
    }

    #[test]
    fn two_panels_with_the_curves_in_their_colours() {
        let history = [epoch(1, 0.7), epoch(2, 0.75), epoch(3, 0.8)];
        let figure = metrics_chart(&history).unwrap();
        assert_eq!((figure.width(), figure.height()), (800, 300));
        let loss = LineChart::new(400, 300)
            .series("train loss", &[1.0, 0.5, 1.0 / 3.0])
            .series("test loss", &[0.7, 0.75, 0.8]);
        let layout = loss.layout().unwrap();
        let (x, y) = layout.to_pixel(1.0, 1.0);
        assert_eq!(figure.pixel(x, y), TAB10[0]);
        let (x, y) = layout.to_pixel(3.0, 0.8);
        assert_eq!(figure.pixel(x, y), TAB10[1]);
        let accuracy = LineChart::new(400, 300)
            .series("train accuracy %", &[60.0, 70.0, 80.0])
            .series("test accuracy %", &[70.0, 75.0, 80.0]);
        let (x, y) = accuracy.layout().unwrap().to_pixel(1.0, 60.0);
        assert_eq!(figure.pixel(400 + x, y), TAB10[0]);
    }

    #[test]
    fn a_missing_test_set_leaves_its_curves_out_and_no_history_is_an_error() {
        let history = [epoch(1, f64::NAN), epoch(2, f64::NAN)];
        assert!(metrics_chart(&history).is_ok());
        assert_eq!(
            metrics_chart(&[]).unwrap_err().to_string(),
            "line_chart: series \"train loss\" has no finite value to draw"
        );
    }
}
