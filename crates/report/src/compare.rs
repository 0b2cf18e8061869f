//! Comparing runs: `p2plab report DIR1 DIR2 ...` overlays several runs (a parameter
//! sweep, a before and after, a simulated against an emulated run): per run its
//! completion times over the processes expected to complete (those of roles that end by
//! themselves, as in a run's report), their median and p90; between each pair of runs the
//! two-sample Kolmogorov–Smirnov distance of those samples, a process that did not
//! complete counting as one that never does (as in [`crate::sweep`]).

use crate::analysis::{completions, expected_to_complete};
use crate::charts::{self, CdfLine};
use crate::page::{esc, escaped_row, figure, head, open};
use crate::stats::{self, Distribution};
use crate::text::{figure as number, table};
use crate::Error;
use serde::Serialize;
use std::fmt::{self, Write};
use std::path::{Path, PathBuf};

/// The runs compared, in the shape `p2plab report DIR1 DIR2 --format json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// One entry per result directory, in the order given.
    pub runs: Vec<RunSummary>,
    /// One entry per pair of runs (`a` before `b` in the order given).
    pub pairs: Vec<Pair>,
}

/// One run of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `run.json`'s name.
    pub name: String,
    pub dir: PathBuf,
    /// Its processes expected to complete.
    pub processes: usize,
    /// Those that exited with code 0.
    pub completed: usize,
    pub completion_s: Option<Distribution>,
    /// The completion times (s), ascending: the distribution the chart draws.
    #[serde(skip)]
    pub completion_times_s: Vec<f64>,
}

/// Two runs compared.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// Indices into `runs`.
    pub a: usize,
    pub b: usize,
    /// Kolmogorov–Smirnov distance between their completion times, `None` when either has
    /// no process expected to complete.
    pub ks_distance: Option<f64>,
    /// `b`'s median completion time over `a`'s, minus 1.
    pub median_shift: Option<f64>,
}

/// Reads every result directory and compares each pair.
pub fn compare(dirs: &[PathBuf]) -> Result<Comparison, Error> {
    let runs = dirs
        .iter()
        .map(|dir| summary(dir))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut pairs = Vec::new();
    for a in 0..runs.len() {
        for b in a + 1..runs.len() {
            let sample = |r: &RunSummary| stats::censored(&r.completion_times_s, r.processes);
            let median = |r: &RunSummary| r.completion_s.as_ref().map(|d| d.p50);
            pairs.push(Pair {
                a,
                b,
                ks_distance: stats::ks_distance(&sample(&runs[a]), &sample(&runs[b])),
                median_shift: match (median(&runs[a]), median(&runs[b])) {
                    (Some(x), Some(y)) if x > 0.0 => Some(y / x - 1.0),
                    _ => None,
                },
            });
        }
    }
    Ok(Comparison { runs, pairs })
}

fn summary(dir: &Path) -> Result<RunSummary, Error> {
    let r = results::load(dir)?;
    let expected = expected_to_complete(&r.processes);
    let mut times = completions(&expected);
    times.sort_by(f64::total_cmp);
    Ok(RunSummary {
        name: r.run.name,
        dir: dir.to_path_buf(),
        processes: expected.len(),
        completed: times.len(),
        completion_s: stats::describe(&times),
        completion_times_s: times,
    })
}

impl Comparison {
    /// A run's label: its number (from 1, in the order given) and name.
    fn label(&self, i: usize) -> String {
        format!("{} {}", i + 1, self.runs[i].name)
    }

    fn run_rows(&self) -> Vec<Vec<String>> {
        self.runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let d = r.completion_s.as_ref();
                vec![
                    self.label(i),
                    r.dir.display().to_string(),
                    format!("{} of {}", r.completed, r.processes),
                    number(d.map(|d| d.p50), 2),
                    number(d.map(|d| d.p90), 2),
                ]
            })
            .collect()
    }

    fn pair_rows(&self) -> Vec<Vec<String>> {
        self.pairs
            .iter()
            .map(|p| {
                vec![
                    self.label(p.a),
                    self.label(p.b),
                    number(p.ks_distance, 3),
                    p.median_shift
                        .map_or_else(|| "-".into(), |s| format!("{:+.1}%", s * 100.0)),
                ]
            })
            .collect()
    }

    /// The comparison as pretty-printed JSON (the shape of [`Comparison`]).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the comparison holds only strings and numbers")
    }

    /// The comparison as one self-contained HTML page: the runs, the pairs and the
    /// completion-time CDF of every run overlaid.
    pub fn html(&self) -> Result<String, Error> {
        let mut out = open(&format!("p2plab comparison of {} runs", self.runs.len()));
        out.push_str(
            "<p>Completion times over each run's processes expected to complete (those of \
             roles that end by themselves); a curve ends below 1 by the share that did not \
             complete, and the KS distance counts them as never completing.</p>\n",
        );
        for (columns, rows) in [
            (&RUN_COLUMNS[..], self.run_rows()),
            (&PAIR_COLUMNS[..], self.pair_rows()),
        ] {
            head(&mut out, &columns.iter().map(|c| c.1).collect::<Vec<_>>());
            for row in rows {
                escaped_row(&mut out, "", &row);
            }
            out.push_str("</table>\n");
        }
        let lines: Vec<CdfLine<'_>> = self
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| CdfLine {
                label: format!(
                    "{}: {} of {} completed",
                    self.label(i),
                    r.completed,
                    r.processes
                ),
                times: &r.completion_times_s,
                total: r.processes,
            })
            .collect();
        if lines.iter().any(|l| !l.times.is_empty()) {
            figure(
                &mut out,
                "chart-compare",
                "comparison CDF",
                charts::comparison(&lines),
            )?;
        } else {
            out.push_str("<p>No process of these runs exited with code 0.</p>\n");
        }
        for (i, r) in self.runs.iter().enumerate() {
            let _ = writeln!(
                out,
                "<p>{}: <a href=\"{}\">report</a></p>",
                esc(&self.label(i)),
                esc(&std::fs::canonicalize(&r.dir)
                    .unwrap_or_else(|_| r.dir.clone())
                    .join("report.html")
                    .display()
                    .to_string())
            );
        }
        out.push_str("</body></html>\n");
        Ok(out)
    }
}

/// The columns of the runs' table: in the text, and in the HTML page.
const RUN_COLUMNS: [(&str, &str); 5] = [
    ("run", "run"),
    ("dir", "result directory"),
    ("completed", "completed"),
    ("median_s", "median completion (s)"),
    ("p90_s", "p90 completion (s)"),
];
/// The columns of the pairs' table.
const PAIR_COLUMNS: [(&str, &str); 4] = [
    ("run", "run"),
    ("against", "against"),
    ("ks", "KS distance"),
    ("median_shift", "median shift"),
];

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        table(&mut out, &RUN_COLUMNS.map(|c| c.0), &self.run_rows(), 2);
        out.push_str("\nbetween runs (KS distance of completion times, a process that did not complete counting as never completing; median shift of the second against the first):\n");
        table(&mut out, &PAIR_COLUMNS.map(|c| c.0), &self.pair_rows(), 2);
        f.write_str(&out)
    }
}
