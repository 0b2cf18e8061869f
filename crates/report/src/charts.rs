//! The report's SVG charts, drawn with `plotters` into strings: completion-time CDF per
//! group (ending below 1 by the share that did not complete), per-process timeline for a
//! few processes and processes over time per group beyond, one chart per metric (a line
//! per node for a few nodes, percentile bands across nodes beyond that), the host's CPU
//! busy share over time and each process's start lag against its planned start; the
//! sweep's (completion-time CDF per ratio, drift against the ratio) and the comparison's
//! (a CDF per run).
//!
//! Conventions: axes start near the data; colours are colour-blind-safe and red
//! ([`FAILURE`]) means failure only; a report chart's legend is returned beside its SVG
//! ([`Figure`]) and drawn by the page below the chart, never over data; every line is
//! thinned to about a point per pixel, so that a chart of thousands of processes stays
//! small.

use crate::stats;
use crate::sweep::{RatioSummary, Sweep};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use results::{MetricSample, Process, Status};
use std::ops::Range;

const WIDTH: u32 = 960;
/// The column of a standalone SVG's legends, right of its charts.
const LEGEND_WIDTH: u32 = 240;
/// More lines than this in one chart are unreadable: the CDF keeps the largest groups,
/// metric charts switch to percentile bands, the processes-over-time chart the largest
/// groups.
pub(crate) const MAX_LINES: usize = 12;
/// Processes up to this many get one bar each on the timeline; beyond, the
/// processes-over-time chart per group replaces it.
pub(crate) const TIMELINE_BARS: usize = 48;
/// Start lags drawn one point each up to this many processes, in as many bins beyond.
const LAG_POINTS: usize = 300;
/// Time bins of a metric's percentile bands, and time points of the processes-over-time
/// chart.
const BINS: usize = 200;
/// Steps a CDF line keeps at most: one per 1/`CDF_STEPS` of its height (a pixel or less),
/// so that a line of thousands of processes stays small.
const CDF_STEPS: usize = 400;

/// The palette of series (Okabe and Ito's colour-blind-safe colours, then Paul Tol's),
/// without red: red means failure only ([`FAILURE`]).
const SERIES: [RGBColor; 11] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(0, 0, 0),
    RGBColor(51, 34, 136),
    RGBColor(68, 170, 153),
    RGBColor(153, 153, 51),
    RGBColor(170, 68, 153),
    RGBColor(119, 119, 119),
];
/// Failure, and nothing else (Okabe and Ito's vermillion).
pub(crate) const FAILURE: RGBColor = RGBColor(213, 94, 0);
const GREY: RGBColor = RGBColor(150, 150, 150);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Failure = DrawingAreaErrorKind<std::io::Error>;
type Drawn = Result<(), Failure>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Line,
    Dashed,
    Area,
    Cross,
}

/// One entry of a chart's legend, which the page draws below the chart, never over data.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub color: RGBColor,
    pub label: String,
    pub mark: Mark,
}

fn key(color: RGBColor, label: impl Into<String>, mark: Mark) -> Key {
    Key {
        color,
        label: label.into(),
        mark,
    }
}

/// A chart of the report: its SVG and its legend.
pub(crate) struct Figure {
    pub svg: String,
    pub legend: Vec<Key>,
}

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

pub(crate) fn color(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

/// `c` at opacity `alpha` over white, as an opaque colour.
fn tint(c: RGBColor, alpha: f64) -> RGBColor {
    let mix = |v: u8| (255.0 - (255.0 - f64::from(v)) * alpha).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
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

/// Draws `keys` in `area`, a column beside a chart of a standalone SVG (the sweep's), one
/// entry a line, so that no legend covers data there either.
fn side_legend(area: &Area<'_>, keys: &[Key]) -> Drawn {
    for (i, k) in keys.iter().enumerate() {
        let y = 50 + 22 * i as i32;
        let line = |from: i32, to: i32| {
            PathElement::new(vec![(from, y), (to, y)], k.color.stroke_width(3))
        };
        match k.mark {
            Mark::Dashed => {
                area.draw(&line(4, 11))?;
                area.draw(&line(17, 24))?;
            }
            _ => area.draw(&line(4, 24))?,
        }
        area.draw(&Text::new(k.label.clone(), (30, y - 7), ("sans-serif", 13)))?;
    }
    Ok(())
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

/// An axis near `values`: from a little below the smallest to a little above the largest
/// (never below `floor`), so that the data fills the chart instead of starting at 0.
fn near(values: impl Iterator<Item = f64>, floor: f64) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return floor..floor + 1.0;
    }
    let margin = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
    (lo - margin).max(floor)..hi + margin
}

/// Draws a light mesh with the axes' descriptions.
fn mesh<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, x_desc: &str, y_desc: &str) -> Drawn {
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
}

/// One line of the completion-time CDF: a group's completion times out of the `total`
/// processes that were expected to complete.
pub(crate) struct CdfGroup<'a> {
    pub group: &'a str,
    pub times: Vec<f64>,
    pub total: usize,
}

/// Completion-time CDF, one step line per group (the `MAX_LINES` largest groups), each
/// over its `total` processes: it ends below 1 by the share that did not complete.
pub(crate) fn completion_cdf(groups: &[CdfGroup<'_>]) -> Result<Figure, String> {
    // The largest groups, drawn in their own order so colours follow the topology.
    // A group none of whose processes completed keeps its line, flat at 0.
    let mut shown: Vec<usize> = (0..groups.len()).filter(|&i| groups[i].total > 0).collect();
    let total = shown.len();
    shown.sort_by_key(|&i| std::cmp::Reverse(groups[i].total));
    shown.truncate(MAX_LINES);
    shown.sort_unstable();
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
        .map(|&i| {
            let g = &groups[i];
            CdfLine {
                label: format!("{}: {} of {} completed", g.group, g.times.len(), g.total),
                times: &g.times,
                total: g.total,
            }
        })
        .collect();
    let svg = svg(420, |root| {
        cdf(root, caption, "fraction of the group's processes", &lines)
    })?;
    Ok(Figure {
        svg,
        legend: line_keys(&lines),
    })
}

/// The completion-time CDF of several runs overlaid, one line per run.
pub(crate) fn comparison(lines: &[CdfLine<'_>]) -> Result<Figure, String> {
    let svg = svg(420, |root| {
        cdf(
            root,
            "Completion time CDF per run".into(),
            "fraction of the run's processes",
            lines,
        )
    })?;
    Ok(Figure {
        svg,
        legend: line_keys(lines),
    })
}

/// One step line of a CDF chart: each of `times` counts as one of `total`, so that the
/// line ends below 1 when some of the `total` have no time.
pub(crate) struct CdfLine<'a> {
    pub label: String,
    pub times: &'a [f64],
    pub total: usize,
}

/// The legend of CDF lines, in their colours.
pub(crate) fn line_keys(lines: &[CdfLine<'_>]) -> Vec<Key> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| key(color(i), l.label.clone(), Mark::Line))
        .collect()
}

/// The steps of one CDF line, thinned to one per `1/CDF_STEPS` of height.
fn cdf_points(line: &CdfLine<'_>, x: &Range<f64>) -> Vec<(f64, f64)> {
    let share = line.times.len() as f64 / line.total.max(1) as f64;
    let ecdf = stats::ecdf(line.times);
    let mut points = vec![(x.start, 0.0)];
    let mut drawn = 0.0;
    for (k, &(t, fraction)) in ecdf.iter().enumerate() {
        let y = fraction * share;
        let last = k + 1 == ecdf.len();
        if !last && y - drawn < 1.0 / CDF_STEPS as f64 {
            continue;
        }
        points.extend([(t, drawn), (t, y)]);
        drawn = y;
    }
    points.push((x.end, drawn));
    points
}

/// Empirical CDFs of completion times on `root`, one step line per [`CdfLine`], over an
/// x axis near the times (their legend: [`line_keys`]).
pub(crate) fn cdf(root: &Area<'_>, caption: String, y_desc: &str, lines: &[CdfLine<'_>]) -> Drawn {
    let x = near(lines.iter().flat_map(|l| l.times.iter().copied()), 0.0);
    let mut chart = plot(root, caption, 50, x.clone(), 0.0..1.0)?;
    mesh(&mut chart, "completion time (s)", y_desc)?;
    for (i, line) in lines.iter().enumerate() {
        chart.draw_series(LineSeries::new(
            cdf_points(line, &x),
            color(i).stroke_width(2),
        ))?;
    }
    Ok(())
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
    let (blue, orange, green) = (SERIES[0], SERIES[1], SERIES[2]);
    let drifts = [
        (blue, "KS distance", &ks, "max KS", t.max_ks),
        (
            orange,
            "|median shift|",
            &shift,
            "max median shift",
            t.max_median_shift,
        ),
    ];
    let mut drift_keys: Vec<Key> = drifts
        .iter()
        .flat_map(|(c, label, _, threshold, limit)| {
            [
                key(*c, *label, Mark::Line),
                key(*c, format!("{threshold} ({limit})"), Mark::Dashed),
            ]
        })
        .collect();
    if let Some(r) = s.virtualization_ratio {
        drift_keys.push(key(green, format!("virtualization ratio {r}"), Mark::Line));
    }
    svg(780, |root| {
        let (top, bottom) = root.split_vertically(420);
        let (top, top_legend) = top.split_horizontally(WIDTH - LEGEND_WIDTH);
        cdf(
            &top,
            "Completion time CDF per ratio (nodes per host)".into(),
            "fraction of processes completed",
            &lines,
        )?;
        side_legend(&top_legend, &line_keys(&lines))?;
        let (bottom, bottom_legend) = bottom.split_horizontally(WIDTH - LEGEND_WIDTH);
        let caption = format!(
            "Drift from ratio {}: KS distance and median shift",
            s.baseline
        );
        let mut chart = plot(&bottom, caption, 50, 0.0..x_end, 0.0..y_end)?;
        mesh(
            &mut chart,
            "ratio (nodes per host)",
            "distance, |median shift|",
        )?;
        for (c, _, points, _, limit) in drifts {
            chart.draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
            chart.draw_series(DashedLineSeries::new(
                [(0.0, limit), (x_end, limit)],
                6,
                4,
                c.mix(0.7).stroke_width(1),
            ))?;
        }
        if let Some(r) = s.virtualization_ratio {
            chart.draw_series(LineSeries::new(
                [(f64::from(r), 0.0), (f64::from(r), y_end)],
                green.stroke_width(2),
            ))?;
        }
        side_legend(&bottom_legend, &drift_keys)
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
            Outcome::Ok => (SERIES[0], "exited ok"),
            Outcome::Failed => (FAILURE, "failed"),
            Outcome::Stopped => (SERIES[3], "stopped by p2plab (intended)"),
            Outcome::Running => (GREY, "still running at the end"),
        }
    }
}

/// One bar per process from start to end (to the run's end while running), ordered by
/// start time; failed ones red. A process that never started gets a sliver at its start.
/// For up to [`TIMELINE_BARS`] processes.
pub(crate) fn timeline(processes: &[Process], duration_s: f64) -> Result<Figure, String> {
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
    let height = (n as u32).saturating_mul(16).saturating_add(100).max(220);
    let present: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|o| rows.iter().any(|p| Outcome::of(p) == *o))
        .collect();
    let svg = svg(height, |root| {
        let mut chart = plot(
            root,
            format!("Process timeline ({n} processes)"),
            110,
            0.0..x_end,
            -0.5..(n.max(1) as f64 - 0.5),
        )?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(n)
            .y_label_formatter(&label)
            .x_desc("time since the run started (s)")
            .draw()?;
        for &outcome in &present {
            let (c, _) = outcome.style();
            chart.draw_series(
                rows.iter()
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
                    }),
            )?;
        }
        Ok(())
    })?;
    Ok(Figure {
        svg,
        legend: present
            .into_iter()
            .map(|o| {
                let (c, label) = o.style();
                key(c, label, Mark::Area)
            })
            .collect(),
    })
}

/// How many processes of a group had started, were running, had completed and had
/// failed, at each of [`BINS`] times over the run: one panel per group (the
/// [`MAX_LINES`] largest), in place of one bar per process.
pub(crate) fn processes_over_time(
    groups: &[(String, Vec<&Process>)],
    duration_s: f64,
) -> Result<Figure, String> {
    let mut shown: Vec<usize> = (0..groups.len()).collect();
    shown.sort_by_key(|&i| std::cmp::Reverse(groups[i].1.len()));
    shown.truncate(MAX_LINES);
    shown.sort_unstable();
    let all: Vec<&Process> = groups.iter().flat_map(|g| g.1.iter().copied()).collect();
    let x_end = axis_end(
        all.iter()
            .map(|p| p.end_s.unwrap_or(p.start_s))
            .chain([duration_s]),
    );
    let lines: [(RGBColor, &str); 4] = [
        (SERIES[3], "started"),
        (SERIES[0], "running"),
        (SERIES[2], "completed (exited with code 0)"),
        (FAILURE, "failed"),
    ];
    let panel = 150;
    let svg = svg(panel * shown.len().max(1) as u32 + 30, |root| {
        let panels = root.split_evenly((shown.len().max(1), 1));
        for (area, &g) in panels.iter().zip(&shown) {
            let (name, members) = &groups[g];
            // The times (ascending) at which the members that `keep` selects did `at`.
            let times = |keep: fn(&Process) -> bool, at: fn(&Process) -> Option<f64>| {
                let mut times: Vec<f64> = members
                    .iter()
                    .filter(|p| keep(p))
                    .filter_map(|p| at(p))
                    .collect();
                times.sort_by(f64::total_cmp);
                times
            };
            let ran = |p: &Process| p.status != Status::FailedToStart;
            let started = times(ran, |p| Some(p.start_s));
            let ended = times(ran, |p| p.end_s);
            let done = times(|p| p.completion_s().is_some(), |p| p.end_s);
            let failed = times(Process::failed, |p| Some(p.end_s.unwrap_or(p.start_s)));
            let by = |times: &[f64], t: f64| times.partition_point(|&x| x <= t) as f64;
            let grid: Vec<f64> = (0..=BINS).map(|k| x_end * k as f64 / BINS as f64).collect();
            let caption = format!("{name}: {} processes", members.len());
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 14))
                .margin(6)
                .x_label_area_size(24)
                .y_label_area_size(50)
                .build_cartesian_2d(
                    0.0..x_end,
                    0.0..axis_end([members.len() as f64].into_iter()),
                )?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .y_labels(4)
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()?;
            for (k, (c, _)) in lines.iter().enumerate() {
                let count = |t: f64| match k {
                    0 => by(&started, t),
                    1 => by(&started, t) - by(&ended, t),
                    2 => by(&done, t),
                    _ => by(&failed, t),
                };
                chart.draw_series(LineSeries::new(
                    grid.iter().map(|&t| (t, count(t))),
                    c.stroke_width(2),
                ))?;
            }
        }
        Ok(())
    })?;
    let mut legend: Vec<Key> = lines.iter().map(|(c, l)| key(*c, *l, Mark::Line)).collect();
    if shown.len() < groups.len() {
        legend.push(key(
            GREY,
            format!("({} largest of {} groups shown)", shown.len(), groups.len()),
            Mark::Area,
        ));
    }
    Ok(Figure { svg, legend })
}

/// The host's CPU busy share (percent) over the run, each sample a step over the time
/// since the one before.
pub(crate) fn host_cpu(samples: &[(f64, f64)], cpus: u32) -> Result<Figure, String> {
    let x_end = axis_end(samples.iter().map(|s| s.0));
    let mut steps = Vec::with_capacity(2 * samples.len());
    let mut before = 0.0;
    for &(t, busy) in samples {
        steps.extend([(before, busy * 100.0), (t, busy * 100.0)]);
        before = t;
    }
    let saturated = crate::analysis::SATURATED * 100.0;
    let svg = svg(300, |root| {
        let caption = format!("Host CPU busy ({cpus} CPUs)");
        let mut chart = plot(root, caption, 50, 0.0..x_end, 0.0..100.0)?;
        mesh(&mut chart, "time since the run started (s)", "busy (%)")?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, saturated), (x_end, saturated)],
            6,
            4,
            BLACK.mix(0.6).stroke_width(1),
        ))?;
        chart.draw_series(LineSeries::new(steps, SERIES[0].stroke_width(2)))?;
        Ok(())
    })?;
    Ok(Figure {
        svg,
        legend: vec![
            key(SERIES[0], "all CPUs", Mark::Line),
            key(BLACK, format!("saturated ({saturated:.0}%)"), Mark::Dashed),
        ],
    })
}

/// Which value of a bin of start lags (`(planned start, median, largest)`) a line draws.
type LagValue = fn(&(f64, f64, f64)) -> f64;

/// Each process's start lag (s) against its planned start: one point per process up to
/// `LAG_POINTS` processes; beyond, the median and the largest lag of each run of
/// consecutive planned starts (`LAG_POINTS` of them), so that the page stays small.
pub(crate) fn start_lag(lags: &[(f64, f64)]) -> Result<Figure, String> {
    let mut sorted = lags.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let per_bin = lags.len().div_ceil(LAG_POINTS).max(1);
    let binned: Vec<(f64, f64, f64)> = sorted
        .chunks(per_bin)
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
    let x = near(lags.iter().map(|l| l.0), 0.0);
    let y = near(lags.iter().map(|l| l.1.max(0.0)), 0.0);
    let points = lags.len() <= LAG_POINTS;
    let series: [(RGBColor, String, LagValue); 2] = [
        (
            SERIES[1],
            format!("largest of each {per_bin} starts"),
            |b| b.2,
        ),
        (SERIES[0], format!("median of each {per_bin} starts"), |b| {
            b.1
        }),
    ];
    let svg = svg(300, |root| {
        let caption = format!("Start lag ({} scheduled starts)", lags.len());
        let mut chart = plot(root, caption, 60, x, y)?;
        mesh(
            &mut chart,
            "planned start (s since the run started)",
            "start lag (s)",
        )?;
        if points {
            chart.draw_series(
                lags.iter()
                    .map(|&(t, lag)| Circle::new((t, lag.max(0.0)), 2, SERIES[0].filled())),
            )?;
            return Ok(());
        }
        for (c, _, value) in &series {
            chart.draw_series(LineSeries::new(
                binned.iter().map(|b| (b.0, value(b).max(0.0))),
                c.stroke_width(2),
            ))?;
        }
        Ok(())
    })?;
    let legend = if points {
        vec![key(SERIES[0], "one process", Mark::Line)]
    } else {
        series
            .into_iter()
            .map(|(c, label, _)| key(c, label, Mark::Line))
            .collect()
    };
    Ok(Figure { svg, legend })
}

/// A metric's spread across nodes in one time bin.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Band {
    pub time_s: f64,
    pub nodes: usize,
    pub min: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

/// Percentile bands of many series (each sorted by time) over `bins` equal time bins.
/// The population of a bin is every series that has reported by the bin's end, each with
/// its latest value then: a node that stopped reporting (its process ended) keeps its
/// last value, so that nodes that finished do not drop out of the bands.
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
            if *i > 0 {
                values.push(s[*i - 1].1);
            }
        }
        values.sort_by(f64::total_cmp);
        let p = |q| stats::percentile(&values, q);
        if let (Some(min), Some(p10), Some(p50), Some(p90), Some(max)) =
            (p(0.0), p(10.0), p(50.0), p(90.0), p(100.0))
        {
            out.push(Band {
                time_s: end,
                nodes: values.len(),
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

/// One metric recorded by the nodes.
pub(crate) struct Metric<'a> {
    pub name: &'a str,
    /// Its unit, when the experiment says it (a `%` after the regex's capture group).
    pub unit: Option<&'a str>,
    pub samples: &'a [&'a MetricSample],
    /// When each node's process ended (`None`: it was still running at the end).
    pub ends: &'a std::collections::HashMap<&'a str, Option<f64>>,
}

/// One metric over time: a line per node for up to `MAX_LINES` nodes, each holding its
/// last value until its process ended (a cross marks the end), else the min–max and
/// p10–p90 bands across the nodes that have reported, with their median (see [`bands`]).
pub(crate) fn metric(m: &Metric<'_>) -> Result<Figure, String> {
    let by_node = crate::analysis::group_by(m.samples.iter().copied(), |s| {
        (s.node.clone(), s.role.clone())
    });
    let series: Vec<(String, Vec<(f64, f64)>)> = by_node
        .into_iter()
        .map(|((node, _), mut s)| {
            s.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
            (node, s.iter().map(|m| (m.time_s, m.value)).collect())
        })
        .collect();
    let x_range = near(
        m.samples.iter().map(|s| s.time_s).chain(
            series
                .iter()
                .filter_map(|(node, _)| m.ends.get(node.as_str()).copied().flatten()),
        ),
        0.0,
    );
    let y_range = near(m.samples.iter().map(|s| s.value), f64::NEG_INFINITY);
    let y_desc = match m.unit {
        Some(unit) => format!("{} ({unit})", m.name),
        None => format!("{} (as the program printed it)", m.name),
    };
    let few = series.len() <= MAX_LINES;
    let caption = format!(
        "{}: {} samples from {} nodes{}",
        m.name,
        m.samples.len(),
        series.len(),
        if few {
            ""
        } else {
            " (spread across the nodes that have reported, each holding its last value)"
        }
    );
    let blue = SERIES[0];
    let svg = svg(380, |root| {
        let mut chart = plot(root, caption, 60, x_range.clone(), y_range)?;
        mesh(&mut chart, "time since the run started (s)", &y_desc)?;
        if few {
            for (i, (node, points)) in series.iter().enumerate() {
                let mut points = points.clone();
                let last = *points.last().expect("a node's series has a sample");
                let end = m.ends.get(node.as_str()).copied().flatten();
                points.push((end.unwrap_or(x_range.end).max(last.0), last.1));
                chart.draw_series(LineSeries::new(points, color(i).stroke_width(2)))?;
                if let Some(end) = end {
                    chart.draw_series([Cross::new((end.max(last.0), last.1), 5, color(i))])?;
                }
            }
            return Ok(());
        }
        let points: Vec<Vec<(f64, f64)>> = series.iter().map(|s| s.1.clone()).collect();
        let bands = bands(&points, BINS);
        let area = |lo: fn(&Band) -> f64, hi: fn(&Band) -> f64| {
            let mut outline: Vec<(f64, f64)> = bands.iter().map(|b| (b.time_s, hi(b))).collect();
            outline.extend(bands.iter().rev().map(|b| (b.time_s, lo(b))));
            outline
        };
        for (lo, hi, alpha) in [
            (
                (|b: &Band| b.min) as fn(&Band) -> f64,
                (|b: &Band| b.max) as fn(&Band) -> f64,
                0.15,
            ),
            (|b: &Band| b.p10, |b: &Band| b.p90, 0.35),
        ] {
            chart.draw_series(std::iter::once(Polygon::new(
                area(lo, hi),
                blue.mix(alpha).filled(),
            )))?;
        }
        chart.draw_series(LineSeries::new(
            bands.iter().map(|b| (b.time_s, b.p50)),
            blue.stroke_width(2),
        ))?;
        Ok(())
    })?;
    let legend = if few {
        let mut keys: Vec<Key> = series
            .iter()
            .enumerate()
            .map(|(i, (node, _))| key(color(i), node.as_str(), Mark::Line))
            .collect();
        keys.push(key(
            BLACK,
            "the node's process ended (its last value held until then)",
            Mark::Cross,
        ));
        keys
    } else {
        vec![
            key(tint(blue, 0.15), "min to max", Mark::Area),
            key(tint(blue, 0.35), "p10 to p90", Mark::Area),
            key(blue, "median", Mark::Line),
        ]
    };
    Ok(Figure { svg, legend })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_hold_the_last_value_of_series_that_stopped_reporting() {
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
            (b[0].time_s, b[0].nodes, b[0].min, b[0].p50, b[0].max),
            (5.0, 3, 1.0, 2.0, 20.0)
        );
        // a and c stopped reporting (their processes ended) but keep their last values:
        // the median stays 6, it does not fall to b's alone.
        assert_eq!(
            (b[1].time_s, b[1].nodes, b[1].min, b[1].p50, b[1].max),
            (10.0, 3, 1.0, 6.0, 20.0)
        );
        assert!(bands(&[], 10).is_empty());
    }
}
