//! A progress bar for long loops, on stderr: redrawn in place on a terminal, a few plain lines
//! in logs.

use std::io::{IsTerminal, Stderr, Write};
use std::time::{Duration, Instant};

/// How a [`ProgressBar`] draws itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// One line redrawn with `\r`, at most ten times a second (for a terminal).
    Redraw,
    /// A plain line at each tenth of the work, at most ten lines (for CI logs and pipes).
    Lines,
    /// Nothing.
    Hidden,
}

impl ProgressStyle {
    /// [`Redraw`](Self::Redraw) when stderr is a terminal, [`Lines`](Self::Lines) otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Redraw
        } else {
            Self::Lines
        }
    }
}

/// Shortest time between two redraws, so a fast loop does not spend its time printing.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// Width of the bar, in characters.
const BAR_WIDTH: usize = 24;

/// Shows `label [#####·····] i/n loss … elapsed … eta …` for a loop of `n` steps.
///
/// Writing is best effort: a closed or full stderr never stops the work being measured.
///
/// ```
/// use typednet::train::{ProgressBar, ProgressStyle};
///
/// let mut bar = ProgressBar::with_writer("epoch 1/1", 50, Vec::new(), ProgressStyle::Lines);
/// for i in 1..=50 {
///     bar.set(i, Some(1.0 / i as f64));
/// }
/// bar.finish();
/// let log = String::from_utf8(bar.into_inner()).unwrap();
/// assert_eq!(log.lines().count(), 10);
/// assert!(log.ends_with("50/50 loss 0.0200 elapsed 0.0s eta 0.0s\n"), "{log}");
/// ```
#[derive(Debug)]
pub struct ProgressBar<W: Write = Stderr> {
    label: String,
    total: usize,
    done: usize,
    loss: Option<f64>,
    start: Instant,
    style: ProgressStyle,
    out: W,
    last_draw: Option<Instant>,
    /// Tenths of the work already reported in [`ProgressStyle::Lines`].
    tenths_shown: usize,
    /// Length of the line last drawn in [`ProgressStyle::Redraw`], to blank what is left of it.
    drawn_len: usize,
}

impl ProgressBar<Stderr> {
    /// A bar on stderr for `total` steps, in the style that suits it
    /// ([`ProgressStyle::for_stderr`]).
    pub fn stderr(label: impl Into<String>, total: usize) -> Self {
        Self::with_writer(label, total, std::io::stderr(), ProgressStyle::for_stderr())
    }

    /// A bar that draws nothing.
    pub fn hidden(label: impl Into<String>, total: usize) -> Self {
        Self::with_writer(label, total, std::io::stderr(), ProgressStyle::Hidden)
    }
}

impl<W: Write> ProgressBar<W> {
    /// A bar for `total` steps drawn on `out` in `style`; the clock starts now.
    pub fn with_writer(
        label: impl Into<String>,
        total: usize,
        out: W,
        style: ProgressStyle,
    ) -> Self {
        Self {
            label: label.into(),
            total,
            done: 0,
            loss: None,
            start: Instant::now(),
            style,
            out,
            last_draw: None,
            tenths_shown: 0,
            drawn_len: 0,
        }
    }

    /// Records that `done` of the steps are finished, with the running loss if there is one,
    /// and draws the bar if it is time to.
    pub fn set(&mut self, done: usize, loss: Option<f64>) {
        self.done = done.min(self.total);
        self.loss = loss;
        match self.style {
            ProgressStyle::Hidden => {}
            ProgressStyle::Lines => {
                let tenths = self.tenths();
                if tenths > self.tenths_shown {
                    self.tenths_shown = tenths;
                    let line = self.line();
                    let _ = writeln!(self.out, "{line}");
                    let _ = self.out.flush();
                }
            }
            ProgressStyle::Redraw => {
                let now = Instant::now();
                let due = self
                    .last_draw
                    .is_none_or(|last| now.duration_since(last) >= REDRAW_INTERVAL);
                if due || self.done == self.total {
                    self.last_draw = Some(now);
                    self.redraw();
                }
            }
        }
    }

    /// Ends the bar: a redrawn bar is drawn complete and the line ended; a line-style bar
    /// prints its last line if the loop stopped short of a tenth.
    pub fn finish(&mut self) {
        match self.style {
            ProgressStyle::Hidden => {}
            ProgressStyle::Lines => {
                if self.tenths_shown < 10 && self.done > 0 {
                    self.tenths_shown = 10;
                    let line = self.line();
                    let _ = writeln!(self.out, "{line}");
                }
            }
            ProgressStyle::Redraw => {
                self.redraw();
                let _ = writeln!(self.out);
            }
        }
        let _ = self.out.flush();
    }

    /// Ends the bar and, when it was redrawn in place, blanks its line so that the next
    /// message takes its place.
    pub fn finish_and_clear(&mut self) {
        if self.style == ProgressStyle::Redraw {
            let blank = " ".repeat(self.drawn_len);
            let _ = write!(self.out, "\r{blank}\r");
            let _ = self.out.flush();
            self.drawn_len = 0;
        } else {
            self.finish();
        }
    }

    /// Time since the bar was made.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The writer, e.g. to read what a test bar wrote.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Whole tenths of the work done (10 when there is nothing to do).
    fn tenths(&self) -> usize {
        (self.done * 10).checked_div(self.total).unwrap_or(10)
    }

    fn redraw(&mut self) {
        let line = self.line();
        let len = line.chars().count();
        let blank = " ".repeat(self.drawn_len.saturating_sub(len));
        let _ = write!(self.out, "\r{line}{blank}");
        let _ = self.out.flush();
        self.drawn_len = len;
    }

    /// `label [#####·····] i/n loss 0.1234 elapsed 3.2s eta 1.1s`.
    fn line(&self) -> String {
        let filled = (self.done * BAR_WIDTH)
            .checked_div(self.total)
            .unwrap_or(BAR_WIDTH);
        let bar: String = "#".repeat(filled) + &"·".repeat(BAR_WIDTH - filled);
        let elapsed = self.start.elapsed();
        let loss = self
            .loss
            .map_or_else(String::new, |loss| format!(" loss {loss:.4}"));
        let eta = if self.done == 0 {
            "?".to_string()
        } else {
            let left = (self.total - self.done) as f64 / self.done as f64;
            format_duration(elapsed.mul_f64(left))
        };
        format!(
            "{} [{bar}] {}/{}{loss} elapsed {} eta {eta}",
            self.label,
            self.done,
            self.total,
            format_duration(elapsed)
        )
    }
}

/// `3.2s`, `2m05s` or `1h02m`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let whole = seconds as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        let whole = seconds as u64;
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(style: ProgressStyle, total: usize, steps: usize) -> String {
        let mut bar = ProgressBar::with_writer("epoch 1/2", total, Vec::new(), style);
        for i in 1..=steps {
            bar.set(i, Some(0.5));
        }
        bar.finish();
        String::from_utf8(bar.into_inner()).unwrap()
    }

    #[test]
    fn lines_are_at_most_one_per_tenth() {
        let log = run(ProgressStyle::Lines, 1000, 1000);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 10);
        assert!(lines[0].starts_with("epoch 1/2 [##"), "{}", lines[0]);
        assert!(
            lines[0].contains(" 100/1000 loss 0.5000 elapsed "),
            "{}",
            lines[0]
        );
        assert!(lines[9].contains(" 1000/1000 "), "{}", lines[9]);
        assert!(!log.contains('\r'));
    }

    #[test]
    fn few_steps_give_few_lines() {
        assert_eq!(run(ProgressStyle::Lines, 3, 3).lines().count(), 3);
    }

    #[test]
    fn a_loop_that_stops_early_still_reports_where_it_stopped() {
        let log = run(ProgressStyle::Lines, 100, 5);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains(" 5/100 "), "{}", lines[0]);
    }

    #[test]
    fn redraw_returns_to_the_line_start_and_ends_the_line() {
        let log = run(ProgressStyle::Redraw, 1000, 1000);
        assert!(log.starts_with("\repoch 1/2 "));
        assert!(log.ends_with('\n'));
        assert_eq!(log.matches('\n').count(), 1);
        // Throttled: far fewer redraws than steps.
        assert!(log.matches('\r').count() < 20, "{log:?}");
    }

    #[test]
    fn hidden_writes_nothing() {
        assert!(run(ProgressStyle::Hidden, 10, 10).is_empty());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(3240)), "3.2s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
    }
}
