//! The report's SVG charts, drawn with `plotters` into strings: completion-time CDF per
//! group, per-process timeline, one chart per metric (a line per node for a few nodes,
//! percentile bands across nodes beyond that), the host's CPU busy share over time and
//! each process's start lag against its planned start; and the sweep's (completion-time
//! CDF per ratio, drift against the ratio).

use crate::stats;
use crate::sweep::{RatioSummary, Sweep};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use results::{MetricSample, Process, Status};
use std::ops::Range;

const WIDTH: u32 = 960;
/// More lines than this in one chart are unreadable: the CDF keeps the largest groups,
/// metric charts switch to percentile bands.
pub(crate) const MAX_LINES: usize = 12;
/// Start lags drawn one point each up to this many processes, in as many bins beyond.
const LAG_POINTS: usize = 300;
/// Time bins of a metric's percentile bands.
const BINS: usize = 200;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Failure = DrawingAreaErrorKind<std::io::Error>;
type Drawn = Result<(), Failure>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Runs `draw` on a white `height`-pixel-high SVG canvas and returns the SVG text.
fn svg(height: u32, draw: impl FnOnce(&Area<'_>) -> Drawn) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn color(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(i).rgb();
    RGBColor(r, g, b)
}

/// The legend's sample of a line in colour `c`.
fn legend(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
}

/// A captioned chart over `x` × `y`, with `y_labels` pixels left of it for the y labels.
fn plot<'a, 'b>(
    root: &'a Area<'b>,
    caption: String,
    y_labels: u32,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<Chart<'a, 'b>, Failure> {
    ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(y_labels)
        .build_cartesian_2d(x, y)
}

/// Draws the legend of the labelled series at `position`.
fn legend_box<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}

/// Upper end of an axis that must show `values`: a little above the largest, never 0.
fn axis_end(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0, f64::max);
    if max > 0.0 {
        max * 1.05
    } else {
        1.0
    }
}

/// Completion-time CDF, one step line per group (the `MAX_LINES` largest groups).
pub(crate) fn completion_cdf(groups: &[(String, Vec<f64>)]) -> Result<String, String> {
    // The largest groups, drawn in their own order so colours follow the topology.
    let mut shown: Vec<usize> = (0..groups.len())
        .filter(|&i| !groups[i].1.is_empty())
        .collect();
    let total = shown.len();
    shown.sort_by_key(|&i| std::cmp::Reverse(groups[i].1.len()));
    shown.truncate(MAX_LINES);
    shown.sort_unstable();
    let shown: Vec<&(String, Vec<f64>)> = shown.into_iter().map(|i| &groups[i]).collect();
    let caption = if shown.len() < total {
        format!(
            "Completion time CDF ({} largest of {total} groups)",
            shown.len()
        )
    } else {
        "Completion time CDF".to_string()
    };
    let lines: Vec<CdfLine<'_>> = shown
        .iter()
        .map(|(group, times)| CdfLine {
            label: format!("{group} (n={})", times.len()),
            times,
            total: times.len(),
        })
        .collect();
    svg(420, |root| {
        cdf(root, caption, "fraction of completed processes", &lines)
    })
}

/// One step line of a CDF chart: each of `times` counts as one of `total`, so that the
/// line ends below 1 when some of the `total` have no time.
struct CdfLine<'a> {
    label: String,
    times: &'a [f64],
    total: usize,
}

/// Empirical CDFs of completion times on `root`, one step line per [`CdfLine`].
fn cdf(root: &Area<'_>, caption: String, y_desc: &str, lines: &[CdfLine<'_>]) -> Drawn {
    let x_end = axis_end(lines.iter().flat_map(|l| l.times.iter().copied()));
    let mut chart = plot(root, caption, 50, 0.0..x_end, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("completion time (s)")
        .y_desc(y_desc)
        .draw()?;
    for (i, line) in lines.iter().enumerate() {
        let share = line.times.len() as f64 / line.total.max(1) as f64;
        let mut points = vec![(0.0, 0.0)];
        for (x, fraction) in stats::ecdf(line.times) {
            let below = points.last().map_or(0.0, |p| p.1);
            points.extend([(x, below), (x, fraction * share)]);
        }
        points.push((x_end, points.last().map_or(0.0, |p| p.1)));
        chart
            .draw_series(LineSeries::new(points, color(i).stroke_width(2)))?
            .label(line.label.as_str())
            .legend(legend(color(i)));
    }
    legend_box(&mut chart, SeriesLabelPosition::LowerRight)
}

/// The sweep's two charts, one above the other: the completion-time CDF of each ratio,
/// and the KS distance and the median shift against the ratio, with their thresholds and
/// the virtualization ratio.
pub(crate) fn sweep(s: &Sweep) -> Result<String, String> {
    let lines: Vec<CdfLine<'_>> = s
        .ratios
        .iter()
        .map(|r| CdfLine {
            label: format!(
                "ratio {} ({}/{} completed)",
                r.ratio, r.completed, r.processes
            ),
            times: &r.completion_times_s,
            total: r.processes,
        })
        .collect();
    let x_end = axis_end(s.ratios.iter().map(|r| f64::from(r.ratio)));
    let t = &s.thresholds;
    let distances = |value: fn(&RatioSummary) -> Option<f64>| -> Vec<(f64, f64)> {
        s.ratios
            .iter()
            .filter_map(|r| Some((f64::from(r.ratio), value(r)?)))
            .collect()
    };
    let ks = distances(|r| r.ks_distance);
    let shift = distances(|r| r.median_shift.map(f64::abs));
    let y_end = axis_end(
        ks.iter()
            .chain(&shift)
            .map(|p| p.1)
            .chain([t.max_ks, t.max_median_shift]),
    );
    svg(780, |root| {
        let (top, bottom) = root.split_vertically(420);
        cdf(
            &top,
            "Completion time CDF per ratio (nodes per host)".into(),
            "fraction of processes completed",
            &lines,
        )?;
        let caption = format!(
            "Drift from ratio {}: KS distance and median shift",
            s.baseline
        );
        let mut chart = plot(&bottom, caption, 50, 0.0..x_end, 0.0..y_end)?;
        chart
            .configure_mesh()
            .x_desc("ratio (nodes per host)")
            .y_desc("distance, |median shift|")
            .draw()?;
        let (blue, orange) = (RGBColor(31, 119, 180), RGBColor(255, 127, 14));
        for (c, label, points, threshold, limit) in [
            (blue, "KS distance", &ks, "max KS", t.max_ks),
            (
                orange,
                "|median shift|",
                &shift,
                "max median shift",
                t.max_median_shift,
            ),
        ] {
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(label)
                .legend(legend(c));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, limit), (x_end, limit)],
                    6,
                    4,
                    c.mix(0.7).stroke_width(1),
                ))?
                .label(format!("{threshold} ({limit})"))
                .legend(legend(c));
        }
        if let Some(r) = s.virtualization_ratio {
            let green = RGBColor(44, 160, 44);
            chart
                .draw_series(LineSeries::new(
                    [(f64::from(r), 0.0), (f64::from(r), y_end)],
                    green.stroke_width(2),
                ))?
                .label(format!("virtualization ratio {r}"))
                .legend(legend(green));
        }
        legend_box(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// How a process appears on the timeline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
    Stopped,
    Running,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Stopped,
        Outcome::Running,
    ];

    fn of(p: &Process) -> Outcome {
        match p.status {
            _ if p.failed() => Outcome::Failed,
            Status::Stopped => Outcome::Stopped,
            Status::Running => Outcome::Running,
            Status::Exited | Status::FailedToStart | Status::Killed => Outcome::Ok,
        }
    }

    fn style(self) -> (RGBColor, &'static str) {
        match self {
            Outcome::Ok => (RGBColor(31, 119, 180), "exited ok"),
            Outcome::Failed => (RGBColor(214, 39, 40), "failed"),
            Outcome::Stopped => (RGBColor(255, 127, 14), "stopped by p2plab"),
            Outcome::Running => (RGBColor(150, 150, 150), "still running"),
        }
    }
}

/// One bar per process from start to end (to the run's end while running), ordered by
/// start time; failed ones red. A process that never started gets a sliver at its start.
pub(crate) fn timeline(processes: &[Process], duration_s: f64) -> Result<String, String> {
    let mut rows: Vec<&Process> = processes.iter().collect();
    rows.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let n = rows.len();
    let x_end = axis_end(
        rows.iter()
            .map(|p| p.end_s.unwrap_or(p.start_s))
            .chain([duration_s]),
    );
    let sliver = x_end / 400.0;
    let top = |i: usize| (n - 1 - i) as f64;
    let label = |y: &f64| {
        let i = n as f64 - 1.0 - y.round();
        if (y - y.round()).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
            rows[i as usize].node.clone()
        } else {
            String::new()
        }
    };
    let height = (n as u32)
        .saturating_mul(14)
        .saturating_add(100)
        .clamp(220, 1400);
    svg(height, |root| {
        let mut chart = plot(
            root,
            format!("Process timeline ({n} processes)"),
            if n <= 40 { 110 } else { 20 },
            0.0..x_end,
            -0.5..(n.max(1) as f64 - 0.5),
        )?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(if n <= 40 { n } else { 0 })
            .y_label_formatter(&label)
            .x_desc("time since the run started (s)")
            .draw()?;
        for outcome in Outcome::ALL {
            let (c, name) = outcome.style();
            let bars: Vec<_> = rows
                .iter()
                .enumerate()
                .filter(|(_, p)| Outcome::of(p) == outcome)
                .map(|(i, p)| {
                    let end = p.end_s.unwrap_or(if p.status == Status::Running {
                        x_end
                    } else {
                        p.start_s
                    });
                    let end = end.max(p.start_s + sliver);
                    Rectangle::new([(p.start_s, top(i) - 0.4), (end, top(i) + 0.4)], c.filled())
                })
                .collect();
            if !bars.is_empty() {
                chart.draw_series(bars)?.label(name).legend(legend(c));
            }
        }
        legend_box(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// The host's CPU busy share (percent) over the run, each sample a step over the time
/// since the one before.
pub(crate) fn host_cpu(samples: &[(f64, f64)], cpus: u32) -> Result<String, String> {
    let x_end = axis_end(samples.iter().map(|s| s.0));
    let mut steps = Vec::with_capacity(2 * samples.len());
    let mut before = 0.0;
    for &(t, busy) in samples {
        steps.extend([(before, busy * 100.0), (t, busy * 100.0)]);
        before = t;
    }
    let saturated = crate::analysis::SATURATED * 100.0;
    svg(300, |root| {
        let caption = format!("Host CPU busy ({cpus} CPUs)");
        let mut chart = plot(root, caption, 50, 0.0..x_end, 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc("busy (%)")
            .draw()?;
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(LineSeries::new(
                [(0.0, saturated), (x_end, saturated)],
                red.mix(0.6).stroke_width(1),
            ))?
            .label(format!("saturated ({saturated:.0}%)"))
            .legend(legend(red));
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(steps, blue.stroke_width(2)))?
            .label("all CPUs")
            .legend(legend(blue));
        legend_box(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Each process's start lag (s) against its planned start: one point per process up to
/// `LAG_POINTS` processes; beyond, the median and the largest lag of each run of
/// consecutive planned starts (`LAG_POINTS` of them), so that the page stays small.
pub(crate) fn start_lag(lags: &[(f64, f64)]) -> Result<String, String> {
    let mut sorted = lags.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let binned: Vec<(f64, f64, f64)> = sorted
        .chunks(lags.len().div_ceil(LAG_POINTS).max(1))
        .map(|chunk| {
            let values: Vec<f64> = chunk.iter().map(|l| l.1).collect();
            let median = stats::percentile(&values, 50.0).unwrap_or(0.0);
            (
                chunk[0].0,
                median,
                values.iter().copied().fold(0.0, f64::max),
            )
        })
        .collect();
    let x_end = axis_end(lags.iter().map(|l| l.0));
    let y_end = axis_end(lags.iter().map(|l| l.1));
    svg(300, |root| {
        let caption = format!("Start lag ({} scheduled starts)", lags.len());
        let mut chart = plot(root, caption, 60, 0.0..x_end, 0.0..y_end)?;
        chart
            .configure_mesh()
            .x_desc("planned start (s since the run started)")
            .y_desc("start lag (s)")
            .draw()?;
        let blue = RGBColor(31, 119, 180);
        if lags.len() <= LAG_POINTS {
            chart.draw_series(
                lags.iter()
                    .map(|&(t, lag)| Circle::new((t, lag.max(0.0)), 2, blue.filled())),
            )?;
            return Ok(());
        }
        let red = RGBColor(214, 39, 40);
        for (c, label, value) in [
            (
                red,
                "largest",
                (|b: &(f64, f64, f64)| b.2) as fn(&(f64, f64, f64)) -> f64,
            ),
            (blue, "median", |b| b.1),
        ] {
            chart
                .draw_series(LineSeries::new(
                    binned.iter().map(|b| (b.0, value(b).max(0.0))),
                    c.stroke_width(2),
                ))?
                .label(format!(
                    "{label} of each {} starts",
                    lags.len().div_ceil(LAG_POINTS)
                ))
                .legend(legend(c));
        }
        legend_box(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// A metric's spread across nodes in one time bin.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Band {
    pub time_s: f64,
    pub min: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

/// Percentile bands of many series (each sorted by time) over `bins` equal time bins. In
/// a bin, every series that was reporting then (its first sample at or before the bin's
/// end, its last at or after the bin's start) contributes its latest value at the bin's
/// end.
pub(crate) fn bands(series: &[Vec<(f64, f64)>], bins: usize) -> Vec<Band> {
    let first = series
        .iter()
        .filter_map(|s| s.first())
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min);
    let last = series
        .iter()
        .filter_map(|s| s.last())
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max);
    if series.iter().all(|s| s.is_empty()) {
        return Vec::new();
    }
    let width = (last - first) / bins as f64;
    let mut next = vec![0usize; series.len()];
    let mut out = Vec::with_capacity(bins);
    for k in 0..bins {
        let start = first + k as f64 * width;
        let end = if k + 1 == bins { last } else { start + width };
        let mut values = Vec::new();
        for (s, i) in series.iter().zip(next.iter_mut()) {
            while *i < s.len() && s[*i].0 <= end {
                *i += 1;
            }
            let reporting = s.last().is_some_and(|l| l.0 >= start);
            if *i > 0 && reporting {
                values.push(s[*i - 1].1);
            }
        }
        let p = |q| stats::percentile(&values, q);
        if let (Some(min), Some(p10), Some(p50), Some(p90), Some(max)) =
            (p(0.0), p(10.0), p(50.0), p(90.0), p(100.0))
        {
            out.push(Band {
                time_s: end,
                min,
                p10,
                p50,
                p90,
                max,
            });
        }
    }
    out
}

/// One metric over time: a line per node for up to `MAX_LINES` nodes, else the min–max
/// and p10–p90 bands across nodes with their median.
pub(crate) fn metric(name: &str, samples: &[&MetricSample]) -> Result<String, String> {
    let by_node = crate::analysis::group_by(samples.iter().copied(), |m| {
        (m.node.clone(), m.role.clone())
    });
    let series: Vec<(String, Vec<(f64, f64)>)> = by_node
        .into_iter()
        .map(|((node, _), mut s)| {
            s.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
            (node, s.iter().map(|m| (m.time_s, m.value)).collect())
        })
        .collect();
    let times = || samples.iter().map(|m| m.time_s);
    let values = || samples.iter().map(|m| m.value);
    let x_range = times().fold(f64::INFINITY, f64::min)..times().fold(f64::NEG_INFINITY, f64::max);
    let y_range =
        values().fold(f64::INFINITY, f64::min)..values().fold(f64::NEG_INFINITY, f64::max);
    let pad = |r: Range<f64>| {
        let margin = if r.end > r.start {
            (r.end - r.start) * 0.05
        } else {
            1.0
        };
        (r.start - margin)..(r.end + margin)
    };
    let caption = format!(
        "{name}: {} samples from {} nodes{}",
        samples.len(),
        series.len(),
        if series.len() > MAX_LINES {
            " (spread across nodes)"
        } else {
            ""
        }
    );
    svg(380, |root| {
        let mut chart = plot(root, caption, 60, pad(x_range), pad(y_range))?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc(name)
            .draw()?;
        if series.len() <= MAX_LINES {
            for (i, (node, points)) in series.iter().enumerate() {
                chart
                    .draw_series(LineSeries::new(points.clone(), color(i).stroke_width(2)))?
                    .label(node.as_str())
                    .legend(legend(color(i)));
            }
        } else {
            let points: Vec<Vec<(f64, f64)>> = series.into_iter().map(|s| s.1).collect();
            let bands = bands(&points, BINS);
            let blue = RGBColor(31, 119, 180);
            let area = |lo: fn(&Band) -> f64, hi: fn(&Band) -> f64| {
                let mut outline: Vec<(f64, f64)> =
                    bands.iter().map(|b| (b.time_s, hi(b))).collect();
                outline.extend(bands.iter().rev().map(|b| (b.time_s, lo(b))));
                outline
            };
            for (lo, hi, alpha, label) in [
                (
                    (|b: &Band| b.min) as fn(&Band) -> f64,
                    (|b: &Band| b.max) as fn(&Band) -> f64,
                    0.15,
                    "min to max",
                ),
                (|b: &Band| b.p10, |b: &Band| b.p90, 0.35, "p10 to p90"),
            ] {
                let style = blue.mix(alpha).filled();
                chart
                    .draw_series(std::iter::once(Polygon::new(area(lo, hi), style)))?
                    .label(label)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], style));
            }
            chart
                .draw_series(LineSeries::new(
                    bands.iter().map(|b| (b.time_s, b.p50)),
                    blue.stroke_width(2),
                ))?
                .label("median")
                .legend(legend(blue));
        }
        legend_box(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_take_each_reporting_series_latest_value() {
        // Two bins: [0, 5] and (5, 10]. In the first, a, b and c hold 1, 2 and 20. In
        // the second only b reports: a's and c's last samples (0 and 4) precede its start.
        let series = vec![
            vec![(0.0, 1.0)],
            vec![(0.0, 2.0), (6.0, 4.0), (10.0, 6.0)],
            vec![(1.0, 10.0), (4.0, 20.0)],
        ];
        let b = bands(&series, 2);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].time_s, b[0].min, b[0].p50, b[0].max),
            (5.0, 1.0, 2.0, 20.0)
        );
        assert_eq!((b[1].time_s, b[1].min, b[1].max), (10.0, 6.0, 6.0));
        assert!(bands(&[], 10).is_empty());
    }
}
