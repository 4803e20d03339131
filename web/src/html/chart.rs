//! The task page's chart of accuracy and loss per round, drawn on the server
//! as inline SVG: no script, no external asset, readable in any browser.
//!
//! Accuracy (a fraction, shown in percent) runs on the left axis, loss on the
//! right one, rounds along the bottom. Each axis spans the data widened to
//! "nice" tick multiples (1, 2 or 5 times a power of ten), kept inside the
//! quantity's natural bounds (accuracy in `[0, 1]`, loss `≥ 0`) when the data
//! is. Missing, NaN and infinite values are skipped and break the line; a
//! single measured round is one point in the middle of the plot. The same
//! numbers are in the round table under the chart, for screen readers and
//! for copying.

use maud::{Markup, html};

use crate::format;
use crate::views::RoundRecord;

/// Size of the drawing in SVG user units; it scales to the page's width.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 300.0;
/// The plot area, inside the margins that hold the ticks and axis labels.
const PLOT_LEFT: f64 = 72.0;
const PLOT_RIGHT: f64 = WIDTH - 72.0;
const PLOT_TOP: f64 = 16.0;
const PLOT_BOTTOM: f64 = HEIGHT - 48.0;
/// About how many ticks an axis should have.
const X_TICKS: usize = 8;
const Y_TICKS: usize = 5;

/// Colours of the two series (and of their legend keys in the page's CSS).
const ACCURACY_COLOUR: &str = "#1f6feb";
const LOSS_COLOUR: &str = "#d1490f";

/// A linear map from data values (the domain) to SVG coordinates (the range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    domain: (f64, f64),
    range: (f64, f64),
}

impl Scale {
    /// Maps `domain.0` to `range.0` and `domain.1` to `range.1`. The domain
    /// must not be empty (`domain.0 != domain.1`); the axes below never build
    /// one that is.
    pub(crate) fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        debug_assert!(domain.0 != domain.1, "empty domain {domain:?}");
        Self { domain, range }
    }

    /// Where `value` lands.
    pub(crate) fn map(&self, value: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        r0 + (value - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// A "nice" tick step for `span` split into about `target` parts: 1, 2 or 5
/// times a power of ten (Heckbert, "Nice numbers for graph labels", 1990).
pub(crate) fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let exponent = raw.log10().floor() as i32;
    let nice = match raw / 10f64.powi(exponent) {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    // Dividing by an exact power of ten gives the double nearest to, say,
    // 0.05, where multiplying by 0.01 could land one bit off.
    if exponent < 0 { nice / 10f64.powi(-exponent) } else { nice * 10f64.powi(exponent) }
}

/// Decimals needed to write multiples of `step` exactly (0 for steps ≥ 1).
fn decimals(step: f64) -> usize {
    // The small bias keeps 0.1 (log10 = -0.99999…) from needing two digits.
    let exponent = (step.log10() + 1e-9).floor();
    if exponent >= 0.0 { 0 } else { -exponent as usize }
}

/// The multiples of `step` in `[lo, hi]`, rounded to the step's decimals so
/// that 0.1 + 0.2 prints as 0.3.
pub(crate) fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let slack = step * 1e-9;
    let first = ((lo - slack) / step).ceil() as i64;
    let last = ((hi + slack) / step).floor() as i64;
    let unit = 10f64.powi(decimals(step) as i32);
    (first..=last).map(|k| (k as f64 * step * unit).round() / unit).collect()
}

/// One axis: its scale and ticks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    /// Data to coordinates.
    pub(crate) scale: Scale,
    /// The data values to mark, ascending.
    pub(crate) ticks: Vec<f64>,
    /// The distance between ticks.
    pub(crate) step: f64,
}

/// The rounds axis: from the first round to the last one, or half a round
/// either side of a lone round so that it sits in the middle. Ticks are
/// whole rounds.
pub(crate) fn round_axis(first: u32, last: u32) -> Axis {
    let (lo, hi) = if first == last {
        (f64::from(first) - 0.5, f64::from(first) + 0.5)
    } else {
        (f64::from(first.min(last)), f64::from(first.max(last)))
    };
    let step = nice_step(hi - lo, X_TICKS).max(1.0);
    Axis { scale: Scale::new((lo, hi), (PLOT_LEFT, PLOT_RIGHT)), ticks: ticks(lo, hi, step), step }
}

/// A value axis over `values` (finite, at least one), widened to tick
/// multiples and kept within `bounds` when every value is.
pub(crate) fn value_axis(values: &[f64], bounds: (f64, f64)) -> Axis {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = (min, max);
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo, hi) = (lo - pad, hi + pad);
    }
    let step = nice_step(hi - lo, Y_TICKS);
    lo = (lo / step).floor() * step;
    hi = (hi / step).ceil() * step;
    if min >= bounds.0 {
        lo = lo.max(bounds.0);
    }
    if max <= bounds.1 {
        hi = hi.min(bounds.1);
    }
    Axis { scale: Scale::new((lo, hi), (PLOT_BOTTOM, PLOT_TOP)), ticks: ticks(lo, hi, step), step }
}

/// One plotted point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Marker {
    /// The round it belongs to.
    pub(crate) round: u32,
    /// The measured value.
    pub(crate) value: f64,
    /// Its position in SVG coordinates.
    pub(crate) x: f64,
    /// Its position in SVG coordinates.
    pub(crate) y: f64,
}

/// A series' points, split into runs of consecutive measured rounds: a
/// missing value ends a run, so the line is not drawn across it.
pub(crate) fn runs(points: &[(u32, Option<f64>)], x: &Axis, y: &Axis) -> Vec<Vec<Marker>> {
    let mut runs = vec![Vec::new()];
    for &(round, value) in points {
        match format::finite(value) {
            Some(value) => runs.last_mut().expect("never empty").push(Marker {
                round,
                value,
                x: x.scale.map(f64::from(round)),
                y: y.scale.map(value),
            }),
            None if runs.last().is_some_and(|run| !run.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    runs.retain(|run| !run.is_empty());
    runs
}

/// A series as drawn: its name, colour, axis side and how its values read.
struct Series {
    name: &'static str,
    colour: &'static str,
    points: Vec<(u32, Option<f64>)>,
    bounds: (f64, f64),
    /// The value in a tooltip, written as the round table writes it.
    value_text: fn(Option<f64>) -> String,
    /// A tick label, given the tick and the axis' step.
    tick_text: fn(f64, f64) -> String,
}

/// The chart of `history`, or a sentence saying there is nothing to draw yet.
pub(crate) fn round_chart(history: &[RoundRecord]) -> Markup {
    let accuracy = Series {
        name: "accuracy",
        colour: ACCURACY_COLOUR,
        points: history.iter().map(|r| (r.round.get(), r.accuracy)).collect(),
        bounds: (0.0, 1.0),
        value_text: format::accuracy,
        tick_text: |tick, step| format!("{:.*}%", decimals(step * 100.0), tick * 100.0),
    };
    let loss = Series {
        name: "loss",
        colour: LOSS_COLOUR,
        points: history.iter().map(|r| (r.round.get(), r.loss)).collect(),
        bounds: (0.0, f64::INFINITY),
        value_text: format::loss,
        tick_text: |tick, step| format!("{:.*}", decimals(step), tick),
    };
    let measured = |series: &Series| -> Vec<f64> {
        series.points.iter().filter_map(|&(_, value)| format::finite(value)).collect()
    };
    let (accuracy_values, loss_values) = (measured(&accuracy), measured(&loss));
    let (Some(first), Some(last)) =
        (history.iter().map(|r| r.round.get()).min(), history.iter().map(|r| r.round.get()).max())
    else {
        return empty();
    };
    if accuracy_values.is_empty() && loss_values.is_empty() {
        return empty();
    }
    let x = round_axis(first, last);
    let left = (!accuracy_values.is_empty()).then(|| value_axis(&accuracy_values, accuracy.bounds));
    let right = (!loss_values.is_empty()).then(|| value_axis(&loss_values, loss.bounds));

    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                role="img" aria-labelledby="chart-title" font-size="12" font-family="system-ui, sans-serif" {
                title id="chart-title" { "Accuracy and loss of the global model per round" }
                (x_axis(&x))
                @if let Some(axis) = &left { (y_axis(axis, &accuracy, Side::Left)) }
                @if let Some(axis) = &right { (y_axis(axis, &loss, Side::Right)) }
                rect x=(px(PLOT_LEFT)) y=(px(PLOT_TOP)) width=(px(PLOT_RIGHT - PLOT_LEFT))
                    height=(px(PLOT_BOTTOM - PLOT_TOP)) fill="none" stroke="#888" {}
                @if let Some(axis) = &left { (series(&accuracy, &x, axis)) }
                @if let Some(axis) = &right { (series(&loss, &x, axis)) }
            }
            figcaption {
                span.key.accuracy { "Accuracy (left axis)" }
                " "
                span.key.loss { "Loss (right axis)" }
                " — hover a point for its value; the table below lists every round."
            }
        }
    }
}

/// What the chart shows before any round is measured.
fn empty() -> Markup {
    html! { p.empty { "No round has been measured yet: the chart appears once validators report a global model's accuracy or loss." } }
}

/// Which side a value axis is drawn on.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

/// The rounds axis: ticks, labels and its title.
fn x_axis(x: &Axis) -> Markup {
    html! {
        g.axis {
            @for &tick in &x.ticks {
                @let at = x.scale.map(tick);
                line x1=(px(at)) x2=(px(at)) y1=(px(PLOT_BOTTOM)) y2=(px(PLOT_BOTTOM + 5.0)) stroke="#888" {}
                text x=(px(at)) y=(px(PLOT_BOTTOM + 18.0)) text-anchor="middle" { (format!("{tick:.0}")) }
            }
            text x=(px((PLOT_LEFT + PLOT_RIGHT) / 2.0)) y=(px(HEIGHT - 8.0)) text-anchor="middle" { "round" }
        }
    }
}

/// A value axis: grid lines (left axis only, so they do not double up),
/// ticks, labels and its title, in the series' colour.
fn y_axis(axis: &Axis, series: &Series, side: Side) -> Markup {
    let (edge, outward, anchor) = match side {
        Side::Left => (PLOT_LEFT, -1.0, "end"),
        Side::Right => (PLOT_RIGHT, 1.0, "start"),
    };
    let title_x = edge + outward * 60.0;
    let title_y = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
    html! {
        g.axis fill=(series.colour) {
            @for &tick in &axis.ticks {
                @let at = axis.scale.map(tick);
                @if side == Side::Left {
                    line x1=(px(PLOT_LEFT)) x2=(px(PLOT_RIGHT)) y1=(px(at)) y2=(px(at)) stroke="#e4e4e4" {}
                }
                line x1=(px(edge)) x2=(px(edge + outward * 5.0)) y1=(px(at)) y2=(px(at)) stroke=(series.colour) {}
                text x=(px(edge + outward * 8.0)) y=(px(at + 4.0)) text-anchor=(anchor) {
                    ((series.tick_text)(tick, axis.step))
                }
            }
            text x=(px(title_x)) y=(px(title_y)) text-anchor="middle"
                transform=(format!("rotate(-90 {} {})", px(title_x), px(title_y))) { (series.name) }
        }
    }
}

/// A series: one line per run of measured rounds, and a point with a
/// tooltip for each measured round.
fn series(series: &Series, x: &Axis, y: &Axis) -> Markup {
    let runs = runs(&series.points, x, y);
    // Smaller points once they would crowd each other.
    let radius = if series.points.len() > 30 { "2.5" } else { "4" };
    html! {
        g.series stroke=(series.colour) fill=(series.colour) {
            @for run in &runs {
                @if run.len() > 1 {
                    path fill="none" stroke-width="2" d=(line_path(run)) {}
                }
            }
            @for marker in runs.iter().flatten() {
                circle cx=(px(marker.x)) cy=(px(marker.y)) r=(radius) {
                    title { "round " (marker.round) ": " (series.name) " " ((series.value_text)(Some(marker.value))) }
                }
            }
        }
    }
}

/// SVG path data through the markers, e.g. `M64.0,200.0 L576.0,16.0`.
fn line_path(run: &[Marker]) -> String {
    run.iter()
        .enumerate()
        .map(|(i, m)| format!("{}{},{}", if i == 0 { "M" } else { "L" }, px(m.x), px(m.y)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A coordinate with one decimal: enough for a 640-unit drawing.
fn px(value: f64) -> String {
    format!("{value:.1}")
}

#[cfg(test)]
mod tests {
    use starling_protocol::RoundNumber;

    use super::*;

    fn record(round: u32, accuracy: Option<f64>, loss: Option<f64>) -> RoundRecord {
        RoundRecord { round: RoundNumber::new(round), accuracy, loss, accepted: 0, rejected: 0, global_model: None }
    }

    /// Whether `step` is 1, 2 or 5 times a power of ten.
    fn is_nice(step: f64) -> bool {
        let mantissa = step / 10f64.powf(step.log10().floor());
        [1.0, 2.0, 5.0, 10.0].iter().any(|n| (mantissa - n).abs() < 1e-9)
    }

    #[test]
    fn scales_map_the_domain_ends_to_the_plot_edges() {
        let scale = Scale::new((0.25, 0.75), (PLOT_BOTTOM, PLOT_TOP));
        assert_eq!(scale.map(0.25), PLOT_BOTTOM);
        assert_eq!(scale.map(0.75), PLOT_TOP);
        assert_eq!(scale.map(0.5), (PLOT_BOTTOM + PLOT_TOP) / 2.0);

        let x = round_axis(3, 12);
        assert_eq!(x.scale.map(3.0), PLOT_LEFT);
        assert_eq!(x.scale.map(12.0), PLOT_RIGHT);

        let y = value_axis(&[0.42, 0.97, 0.61], (0.0, 1.0));
        let (lo, hi) = (y.ticks[0], *y.ticks.last().unwrap());
        assert_eq!((lo, hi), (0.4, 1.0), "{y:?}");
        assert!((y.scale.map(lo) - PLOT_BOTTOM).abs() < 1e-9);
        assert!((y.scale.map(hi) - PLOT_TOP).abs() < 1e-9);
        // Every value lies inside the plot.
        for v in [0.42, 0.97, 0.61] {
            let at = y.scale.map(v);
            assert!((PLOT_TOP..=PLOT_BOTTOM).contains(&at), "{v} at {at}");
        }
    }

    #[test]
    fn ticks_are_round_numbers() {
        for (span, target) in [(0.37, 5), (1.0, 5), (7.3, 8), (1234.0, 5), (0.0042, 5), (99.0, 8)] {
            let step = nice_step(span, target);
            assert!(is_nice(step), "{span}/{target}: step {step}");
            assert!(step * target as f64 >= span * 0.5 && step <= span, "{span}/{target}: step {step}");
        }
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(0.37, 5), 0.1);
        assert_eq!(ticks(0.1, 0.3, 0.1), [0.1, 0.2, 0.3]);
        assert_eq!(ticks(0.05, 0.31, 0.1), [0.1, 0.2, 0.3]);
        assert_eq!(ticks(-1.0, 1.0, 0.5), [-1.0, -0.5, 0.0, 0.5, 1.0]);

        let loss = value_axis(&[2.31, 0.47, 1.12], (0.0, f64::INFINITY));
        assert_eq!(loss.ticks, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        for tick in &loss.ticks {
            assert!(((tick / loss.step).round() - tick / loss.step).abs() < 1e-9, "{tick}");
        }
        let rounds = round_axis(0, 49);
        assert_eq!(rounds.step, 10.0);
        assert_eq!(rounds.ticks, [0.0, 10.0, 20.0, 30.0, 40.0]);
        // Rounds are whole: never a tick at 0.5.
        assert_eq!(round_axis(0, 2).ticks, [0.0, 1.0, 2.0]);
    }

    #[test]
    fn axes_stay_within_natural_bounds_unless_the_data_leaves_them() {
        let accuracy = value_axis(&[0.0], (0.0, 1.0));
        assert_eq!(accuracy.ticks.first(), Some(&0.0));
        assert_eq!(accuracy.ticks.last(), Some(&1.0));
        let perfect = value_axis(&[1.0, 1.0], (0.0, 1.0));
        assert_eq!(perfect.ticks.last(), Some(&1.0));
        assert!(perfect.ticks[0] < 1.0);
        // A nonsense accuracy of 1.3 is still drawn inside the plot.
        let odd = value_axis(&[0.9, 1.3], (0.0, 1.0));
        assert!(odd.scale.map(1.3) >= PLOT_TOP - 1e-9);
    }

    #[test]
    fn missing_and_nan_values_are_skipped_and_break_the_line() {
        let x = round_axis(0, 4);
        let y = value_axis(&[0.5, 0.6, 0.7], (0.0, 1.0));
        let points = [(0, Some(0.5)), (1, Some(0.6)), (2, None), (3, Some(f64::NAN)), (4, Some(0.7))];
        let runs = runs(&points, &x, &y);
        let rounds: Vec<Vec<u32>> = runs.iter().map(|run| run.iter().map(|m| m.round).collect()).collect();
        assert_eq!(rounds, [vec![0, 1], vec![4]]);
        assert_eq!(runs[0][0].x, PLOT_LEFT);
        assert_eq!(runs[1][0].x, PLOT_RIGHT);

        let svg = round_chart(&[
            record(0, Some(0.5), Some(1.25)),
            record(1, Some(f64::NAN), None),
            record(2, Some(0.7), Some(f64::INFINITY)),
        ])
        .into_string();
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(!svg.contains("<path"), "no two consecutive rounds are measured: {svg}");
    }

    #[test]
    fn a_single_round_is_one_point_in_the_middle() {
        let svg = round_chart(&[record(0, Some(0.5), Some(1.25))]).into_string();
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        let middle = format!("cx=\"{}\"", px((PLOT_LEFT + PLOT_RIGHT) / 2.0));
        assert_eq!(svg.matches(&middle).count(), 2, "{svg}");
        assert!(svg.contains("<title>round 0: accuracy 50.00%</title>"), "{svg}");
        assert!(svg.contains("<title>round 0: loss 1.2500</title>"), "{svg}");
        // The lone value sits mid-axis too, and the only x tick is round 0.
        let y = value_axis(&[0.5], (0.0, 1.0));
        assert!((y.scale.map(0.5) - (PLOT_TOP + PLOT_BOTTOM) / 2.0).abs() < 1e-9);
        assert_eq!(round_axis(0, 0).ticks, [0.0]);
    }

    #[test]
    fn nothing_measured_draws_no_chart() {
        for history in [vec![], vec![record(0, None, None), record(1, Some(f64::NAN), None)]] {
            let html = round_chart(&history).into_string();
            assert!(!html.contains("<svg") && html.contains("No round has been measured yet"), "{html}");
        }
    }

    #[test]
    fn two_series_with_their_own_axes() {
        let svg =
            round_chart(&[record(0, Some(0.5), Some(1.25)), record(1, Some(0.75), Some(0.5)), record(2, None, None)])
                .into_string();
        assert_eq!(svg.matches("<path").count(), 2, "{svg}");
        assert!(svg.contains("<title>round 1: accuracy 75.00%</title>"), "{svg}");
        assert!(svg.contains("<title>round 1: loss 0.5000</title>"), "{svg}");
        // Left ticks in percent, right ticks as losses, rounds 0 to 2 below.
        assert!(svg.contains(">50%</text>") && svg.contains(">75%</text>"), "{svg}");
        assert!(svg.contains(">0.4</text>") && svg.contains(">1.4</text>"), "{svg}");
        assert!(svg.contains(">2</text>"), "{svg}");
        // Accuracy starts at the bottom of its axis (0.5) and ends at the top (0.75).
        assert!(svg.contains(&format!("M{},{}", px(PLOT_LEFT), px(PLOT_BOTTOM))), "{svg}");
        let x1 = px(round_axis(0, 2).scale.map(1.0));
        assert!(svg.contains(&format!("cx=\"{x1}\" cy=\"{}\"", px(PLOT_TOP))), "{svg}");
    }
}
