//! The virtualization-ratio sweep: the same experiment run with its nodes folded onto
//! fewer and fewer hosts (the *ratio* is nodes per host), each ratio once or several
//! times, compared with the least-folded ratio to find how many nodes one machine hosts
//! before its results drift, as P2PLab did.
//!
//! Per ratio, over the processes of all its runs pooled:
//! - the completion times (as in a run's report: `end_s - start_s` of the processes that
//!   exited with code 0), their median and p90, and how many of the processes completed;
//! - the two-sample Kolmogorov–Smirnov distance between its completion times and those of
//!   the least-folded ratio (the smallest), a process that did not complete (failed,
//!   stopped, still running) counting as one that never completes: so that a ratio whose
//!   processes fail, or are cut off by the stop rule because they got slower, drifts
//!   instead of looking faster. When every process completes it is the usual distance
//!   between the completion times; the share that did not complete is a lower bound of
//!   it;
//! - the median shift: its median completion time over the least-folded ratio's, minus 1
//!   (`0.2`: 20 % slower);
//! - how busy the hosts' CPUs were: the mean of the hosts' mean busy shares (`run.json`'s
//!   `hosts[].host_cpu`, or `host_cpu` for a run on one host), over its runs, and the
//!   largest busy share of one sample.
//!
//! A ratio is *within* the thresholds when its distance is at most `max_ks` and its median
//! shift, either way, at most `max_median_shift`. The machine's *virtualization ratio* is
//! the largest ratio that is within them, every smaller ratio being within them too; none
//! when no process of the least-folded ratio completed.

use crate::analysis::completions;
use crate::stats::{self, Distribution};
use crate::text::{figure, table};
use crate::Error;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One run of the sweep: the result directory of the experiment run at `ratio` nodes per
/// host (several per ratio with `--repeat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRun {
    pub ratio: u32,
    pub dir: PathBuf,
}

/// How far a ratio's completion times may drift from the least-folded ratio's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// The largest Kolmogorov–Smirnov distance, `0..=1`.
    pub max_ks: f64,
    /// The largest median shift either way, as a fraction (`0.05`: 5 %).
    pub max_median_shift: f64,
}

/// The sweep's findings, in the shape `sweep.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub thresholds: Thresholds,
    /// The least-folded ratio, which the others are compared with.
    pub baseline: u32,
    /// One entry per ratio, ascending.
    pub ratios: Vec<RatioSummary>,
    /// The largest ratio within the thresholds, every smaller one being within them too.
    pub virtualization_ratio: Option<u32>,
}

/// The runs of one ratio, pooled.
#[derive(Debug, Clone, Serialize)]
pub struct RatioSummary {
    pub ratio: u32,
    /// Its result directories.
    pub runs: Vec<PathBuf>,
    pub processes: usize,
    /// Processes that exited with code 0.
    pub completed: usize,
    /// Their completion times (s).
    pub completion_s: Option<Distribution>,
    /// Kolmogorov–Smirnov distance to the least-folded ratio (0 for that one); `None`
    /// when either has no process.
    pub ks_distance: Option<f64>,
    /// Its median completion time over the least-folded ratio's, minus 1; `None` when
    /// either has no completion time, or the least-folded one's median is 0.
    pub median_shift: Option<f64>,
    /// The mean of its hosts' mean CPU busy shares, over its runs, when recorded.
    pub cpu_mean_busy: Option<f64>,
    /// The largest busy share of one sample of one of its hosts.
    pub cpu_max_busy: Option<f64>,
    /// Both the distance and the median shift within the thresholds.
    pub within: bool,
    /// The completion times (s), ascending: the distribution the plot draws.
    pub completion_times_s: Vec<f64>,
}

impl RatioSummary {
    /// The completion times with one infinite time per process that did not complete: the
    /// sample the distance is measured on.
    fn censored(&self) -> Vec<f64> {
        stats::censored(&self.completion_times_s, self.processes)
    }
}

/// Reads every run's result directory and compares each ratio with the least-folded one.
pub fn sweep(runs: &[SweepRun], t: &Thresholds) -> Result<Sweep, Error> {
    if !(0.0..=1.0).contains(&t.max_ks) {
        return Err(Error::Thresholds(format!(
            "the KS distance threshold {} is not a distance: give --max-ks a number from 0 to 1",
            t.max_ks
        )));
    }
    if !(t.max_median_shift >= 0.0 && t.max_median_shift.is_finite()) {
        return Err(Error::Thresholds(format!(
            "the median shift threshold {} is not a share: give --max-median-shift a percentage, 0% or more",
            t.max_median_shift
        )));
    }
    let mut ratios: Vec<u32> = runs.iter().map(|r| r.ratio).collect();
    ratios.sort_unstable();
    ratios.dedup();
    let Some(&baseline) = ratios.first() else {
        return Err(Error::NoRuns);
    };
    let mut summaries = Vec::with_capacity(ratios.len());
    for ratio in ratios {
        let dirs: Vec<&SweepRun> = runs.iter().filter(|r| r.ratio == ratio).collect();
        summaries.push(pool(ratio, &dirs)?);
    }
    let base_sample = summaries[0].censored();
    let base_median = summaries[0].completion_s.as_ref().map(|d| d.p50);
    for s in &mut summaries {
        s.ks_distance = stats::ks_distance(&s.censored(), &base_sample);
        let median = s.completion_s.as_ref().map(|d| d.p50);
        s.median_shift = match (median, base_median) {
            (Some(m), Some(b)) if m == b => Some(0.0),
            (Some(m), Some(b)) if b != 0.0 => Some(m / b - 1.0),
            _ => None,
        };
        s.within = s.ks_distance.is_some_and(|d| d <= t.max_ks)
            && s.median_shift
                .is_some_and(|m| m.abs() <= t.max_median_shift);
    }
    let virtualization_ratio = summaries
        .iter()
        .take_while(|s| s.within)
        .last()
        .map(|s| s.ratio);
    Ok(Sweep {
        thresholds: *t,
        baseline,
        ratios: summaries,
        virtualization_ratio,
    })
}

/// The runs of one ratio read and pooled; the comparison with the baseline is left empty.
fn pool(ratio: u32, runs: &[&SweepRun]) -> Result<RatioSummary, Error> {
    let (mut processes, mut times) = (0, Vec::new());
    let (mut busy, mut cpu_max_busy) = (Vec::new(), None::<f64>);
    for run in runs {
        let r = results::load(&run.dir)?;
        processes += r.processes.len();
        times.extend(completions(&r.processes.iter().collect::<Vec<_>>()));
        let cpus: Vec<_> = if r.run.hosts.is_empty() {
            r.run.host_cpu.iter().collect()
        } else {
            r.run
                .hosts
                .iter()
                .filter_map(|h| h.host_cpu.as_ref())
                .collect()
        };
        busy.extend(stats::mean(
            &cpus.iter().map(|c| c.mean_busy).collect::<Vec<_>>(),
        ));
        for c in cpus {
            cpu_max_busy = Some(cpu_max_busy.map_or(c.max_busy, |m| m.max(c.max_busy)));
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(RatioSummary {
        ratio,
        runs: runs.iter().map(|r| r.dir.clone()).collect(),
        processes,
        completed: times.len(),
        completion_s: stats::describe(&times),
        ks_distance: None,
        median_shift: None,
        cpu_mean_busy: stats::mean(&busy),
        cpu_max_busy,
        within: false,
        completion_times_s: times,
    })
}

/// Writes `sweep.json` (the [`Sweep`]) and `sweep.svg` (the completion-time CDF of each
/// ratio, and the distance and median shift against the ratio with their thresholds)
/// into `out_dir`, made if missing; each file whole or not at all.
pub fn write_sweep(out_dir: &Path, sweep: &Sweep) -> Result<(), Error> {
    let svg = crate::charts::sweep(sweep).map_err(|message| Error::Draw {
        chart: "sweep".into(),
        message,
    })?;
    let json =
        serde_json::to_string_pretty(sweep).expect("the sweep holds only strings and numbers");
    std::fs::create_dir_all(out_dir).map_err(|error| results::WriteError {
        path: out_dir.to_path_buf(),
        error,
    })?;
    for (name, bytes) in [("sweep.json", json + "\n"), ("sweep.svg", svg)] {
        let path = out_dir.join(name);
        results::write_atomically(&path, bytes.as_bytes())
            .map_err(|error| results::WriteError { path, error })?;
    }
    Ok(())
}

impl fmt::Display for Sweep {
    /// A row per ratio, then the virtualization ratio.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.thresholds;
        writeln!(
            f,
            "sweep of {} ratios (nodes per host) against {}, the least folded: KS distance at most {:.3}, median shift at most {:.1}%",
            self.ratios.len(),
            self.baseline,
            t.max_ks,
            t.max_median_shift * 100.0
        )?;
        let rows: Vec<Vec<String>> = self
            .ratios
            .iter()
            .map(|r| {
                let d = r.completion_s.as_ref();
                vec![
                    r.ratio.to_string(),
                    r.runs.len().to_string(),
                    format!("{}/{}", r.completed, r.processes),
                    figure(d.map(|d| d.p50), 2),
                    figure(d.map(|d| d.p90), 2),
                    figure(r.ks_distance, 3),
                    r.median_shift
                        .map_or_else(|| "-".into(), |m| format!("{:+.1}%", m * 100.0)),
                    r.cpu_mean_busy
                        .map_or_else(|| "-".into(), |b| format!("{:.0}%", b * 100.0)),
                    if r.within { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        let mut out = String::new();
        table(
            &mut out,
            &[
                "ratio",
                "runs",
                "completed",
                "median_s",
                "p90_s",
                "ks",
                "median_shift",
                "cpu_busy",
                "within",
            ],
            &rows,
            0,
        );
        f.write_str(&out)?;
        match self.virtualization_ratio {
            Some(r) => writeln!(
                f,
                "virtualization ratio: {r} (the largest ratio within both thresholds, every smaller one within them too)"
            ),
            None => writeln!(
                f,
                "virtualization ratio: none (no process of ratio {}, the least folded, completed)",
                self.baseline
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    const HEADER: &str = "node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received,host\n";

    /// Forty completion times, 10 to 19.75 s by 0.25 s, each times `factor`: `None` for
    /// the first `failed`.
    fn times(factor: f64, failed: u32) -> Vec<Option<f64>> {
        (0..40)
            .map(|i| (i >= failed).then(|| (10.0 + 0.25 * f64::from(i)) * factor))
            .collect()
    }

    /// Writes the result directory `parent/name` of a run on two hosts, each `busy` busy
    /// on average, whose processes complete in `times` (`None`: exited with code 1).
    fn run_dir(parent: &Path, name: &str, times: &[Option<f64>], busy: f64) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let host = |h: usize| {
            format!(
                r#"{{"name": "h{h}", "address": "172.31.9.1{h}", "nodes": 20, "backend": "nfqueue",
                "kernel": "6.1", "clock_offset_ms": 0.5, "host_cpu": {{"cpus": 1,
                "mean_busy": {busy}, "max_busy": {}, "samples": [[1, {busy}]]}}}}"#,
                busy + 0.05 * h as f64
            )
        };
        let run = format!(
            r#"{{"name": "{name}", "started_unix": 0, "duration_s": 30, "topology": "t.yaml",
            "backend": "nfqueue", "kernel": "6.1", "p2plab_version": "0", "seed": 1,
            "experiment": null, "hosts": [{}, {}]}}"#,
            host(1),
            host(2)
        );
        std::fs::write(dir.join("run.json"), run).unwrap();
        let mut processes = HEADER.to_string();
        for (i, t) in times.iter().enumerate() {
            let (end, code) = t.map_or((1.0, 1), |t| (1.0 + t, 0));
            let _ = writeln!(
                processes,
                "p-{i},peer,p,10.0.0.{i},{i},1,1,{end},exited,{code},,,,,,,h{}",
                1 + i % 2
            );
        }
        std::fs::write(dir.join("processes.csv"), processes).unwrap();
        std::fs::write(dir.join("metrics.csv"), "time_s,node,role,name,value\n").unwrap();
        dir
    }

    /// Runs at 10 (twice), 20 and 40 nodes per host, whose completion times are those of
    /// ratio 10 times `factors[0]` at 20 and `factors[1]` at 40; the hosts get busier.
    fn runs(parent: &Path, factors: [f64; 2]) -> Vec<SweepRun> {
        let run = |ratio, name, factor, busy| SweepRun {
            ratio,
            dir: run_dir(parent, name, &times(factor, 0), busy),
        };
        vec![
            run(40, "r40", factors[1], 0.9),
            run(10, "r10-1", 1.0, 0.25),
            run(20, "r20", factors[0], 0.5),
            run(10, "r10-2", 1.0, 0.35),
        ]
    }

    const USUAL: Thresholds = Thresholds {
        max_ks: 0.1,
        max_median_shift: 0.05,
    };

    fn close(a: Option<f64>, b: f64) {
        assert!(a.is_some_and(|a| (a - b).abs() < 1e-9), "{a:?} != {b}");
    }

    #[test]
    fn a_ratio_that_drifts_by_a_fifth_ends_the_virtualization_ratio_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sweep(&runs(tmp.path(), [1.01, 1.2]), &USUAL).unwrap();
        assert_eq!(s.baseline, 10);
        assert_eq!(s.virtualization_ratio, Some(20));
        let [r10, r20, r40] = &s.ratios[..] else {
            panic!("three ratios: {s:?}");
        };
        assert_eq!(
            (r10.ratio, r10.runs.len(), r10.processes, r10.completed),
            (10, 2, 80, 80)
        );
        assert_eq!(
            (r20.ratio, r40.ratio, r40.processes, r40.completed),
            (20, 40, 40, 40)
        );
        // Ratio 10's median: 14.875 s (40 values twice); 1 % and 20 % slower beyond.
        close(r10.completion_s.as_ref().map(|d| d.p50), 14.875);
        close(r10.ks_distance, 0.0);
        close(r10.median_shift, 0.0);
        // 1 % later moves each time less than the 0.25 s between two: by one in 40.
        close(r20.ks_distance, 1.0 / 40.0);
        close(r20.median_shift, 0.01);
        close(r40.median_shift, 0.2);
        // At 19.75 s all of ratio 10 has completed, 26 in 40 of ratio 40 (up to 16.46 s).
        close(r40.ks_distance, 0.35);
        let within: Vec<bool> = s.ratios.iter().map(|r| r.within).collect();
        assert_eq!(within, [true, true, false]);
        // Ratio 10's hosts: 0.25 busy on average in one run, 0.35 in the other, and
        // h2's busiest sample 0.35 + 0.1.
        close(r10.cpu_mean_busy, 0.3);
        close(r10.cpu_max_busy, 0.45);
        close(r40.cpu_mean_busy, 0.9);
    }

    #[test]
    fn the_thresholds_and_every_smaller_ratio_decide() {
        let tmp = tempfile::tempdir().unwrap();
        let drifting = runs(tmp.path(), [1.01, 1.2]);
        let found = |max_ks, max_median_shift| {
            let t = Thresholds {
                max_ks,
                max_median_shift,
            };
            sweep(&drifting, &t).unwrap().virtualization_ratio
        };
        assert_eq!(found(1.0, 0.25), Some(40));
        assert_eq!(found(1.0, 0.2 - 1e-6), Some(20));
        // Ratio 20 is 1 % slower and one in 40 apart.
        assert_eq!(found(0.1, 0.005), Some(10));
        assert_eq!(found(0.02, 0.05), Some(10));
        // The same times as ratio 10's: within thresholds of 0, which are included.
        let exact = Thresholds {
            max_ks: 0.0,
            max_median_shift: 0.0,
        };
        let same = runs(&tmp.path().join("same"), [1.0, 1.2]);
        assert_eq!(sweep(&same, &exact).unwrap().virtualization_ratio, Some(20));

        // Ratio 40 is within, but ratio 20, before it, drifts.
        let s = sweep(&runs(&tmp.path().join("back"), [1.2, 1.0]), &USUAL).unwrap();
        let within: Vec<bool> = s.ratios.iter().map(|r| r.within).collect();
        assert_eq!(within, [true, false, true]);
        assert_eq!(s.virtualization_ratio, Some(10));
    }

    #[test]
    fn processes_that_did_not_complete_are_drift() {
        let tmp = tempfile::tempdir().unwrap();
        let mut runs = runs(tmp.path(), [1.0, 1.0]);
        // At ratio 20, the 12 fastest fail: the others complete as at ratio 10.
        runs[2].dir = run_dir(tmp.path(), "r20-failing", &times(1.0, 12), 0.5);
        let s = sweep(&runs, &USUAL).unwrap();
        let r20 = &s.ratios[1];
        assert_eq!((r20.processes, r20.completed), (40, 28));
        close(r20.ks_distance, 12.0 / 40.0);
        assert!(!r20.within);
        assert_eq!(s.virtualization_ratio, Some(10));
    }

    #[test]
    fn the_table_the_json_and_the_plot() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sweep(&runs(tmp.path(), [1.01, 1.2]), &USUAL).unwrap();
        assert_eq!(
            s.to_string(),
            "\
sweep of 3 ratios (nodes per host) against 10, the least folded: KS distance at most 0.100, median shift at most 5.0%
ratio  runs  completed  median_s  p90_s     ks  median_shift  cpu_busy  within
   10     2      80/80     14.88  18.91  0.000         +0.0%       30%     yes
   20     1      40/40     15.02  19.10  0.025         +1.0%       50%     yes
   40     1      40/40     17.85  22.69  0.350        +20.0%       90%      no
virtualization ratio: 20 (the largest ratio within both thresholds, every smaller one within them too)
"
        );

        let out = tmp.path().join("sweep-out");
        write_sweep(&out, &s).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap())
                .unwrap();
        assert_eq!(json["virtualization_ratio"], 20);
        assert_eq!(json["thresholds"]["max_ks"], 0.1);
        assert_eq!(json["ratios"][2]["ratio"], 40);
        assert_eq!(json["ratios"][2]["within"], false);
        assert_eq!(
            json["ratios"][0]["completion_times_s"]
                .as_array()
                .unwrap()
                .len(),
            80
        );
        let svg = std::fs::read_to_string(out.join("sweep.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for shown in [
            "Completion time CDF per ratio (nodes per host)",
            "ratio 40 (40/40 completed)",
            "Drift from ratio 10: KS distance and median shift",
            "max KS (0.1)",
            "max median shift (0.05)",
            "virtualization ratio 20",
        ] {
            assert!(svg.contains(shown), "missing {shown:?}");
        }
    }

    #[test]
    fn no_runs_a_missing_run_and_bad_thresholds_are_refused() {
        let e = |runs: &[SweepRun], t: &Thresholds| sweep(runs, t).unwrap_err().to_string();
        assert_eq!(
            e(&[], &USUAL),
            "a sweep needs at least one run: give at least one ratio"
        );
        let missing = [SweepRun {
            ratio: 10,
            dir: "/nonexistent/r10".into(),
        }];
        let unread = e(&missing, &USUAL);
        assert!(
            unread.starts_with("cannot read /nonexistent/r10/run.json: "),
            "{unread}"
        );
        let bad_ks = Thresholds {
            max_ks: 1.5,
            ..USUAL
        };
        assert_eq!(
            e(&missing, &bad_ks),
            "the KS distance threshold 1.5 is not a distance: give --max-ks a number from 0 to 1"
        );
        let bad_shift = Thresholds {
            max_median_shift: -0.05,
            ..USUAL
        };
        assert!(e(&missing, &bad_shift).starts_with("the median shift threshold -0.05"));
    }
}
