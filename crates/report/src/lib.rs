//! Reads the result directory of one `p2plab run`, computes completion-time and fairness
//! statistics, and renders them as text, JSON or a self-contained `report.html`.
//!
//! # The result directory
//!
//! `p2plab run` writes `results/<name>-<time>/`; this crate reads it and nothing else:
//!
//! - `run.json`: one object,
//!   `{"name": str, "started_unix": f64, "duration_s": f64, "topology": str (path),
//!   "backend": "netem"|"nfqueue"|"none", "kernel": str, "p2plab_version": str,
//!   "seed": u64, "stopped": str (why the run ended), "experiment": <any JSON: the inputs>}`.
//! - `processes.csv`, with this header row (columns may come in any order):
//!   `node,role,group,ip,pid,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received`.
//!   Times are seconds since the run started. `status` is one of
//!   `exited|killed|failed_to_start|running`. Empty fields mean "not applicable" or
//!   "not measured": `end_s` while still running, `exit_code` unless exited, `signal`
//!   (a signal number, e.g. `9`) unless killed, `pid` and the measurements when the
//!   process never started.
//! - `metrics.csv`, with the header row `time_s,node,role,name,value`: one sample per row,
//!   e.g. aria2c's progress percent or a `P2PLAB name=value` line of a program.
//! - `logs/<node>.out`, `logs/<node>.err`: the report links to them, never reads them.
//!
//! A bad row is an error of one line naming the file, the line and the column.
//!
//! # Definitions
//!
//! - The *completion time* of a process is `end_s - start_s`, for processes that exited
//!   with code 0 only.
//! - A process *failed* when it failed to start or exited with a non-zero code; one ended
//!   by a signal counts as *killed* (a stop rule ends seeds that way), not as failed.
//! - *Co-located identical processes* are those with the same role and group; their
//!   fairness is Jain's index and the coefficient of variation of their completion times
//!   and of their CPU times (user + system).
//! - Statistics, and which interpolation rule percentiles use: see [`stats`].

pub mod analysis;
mod charts;
mod html;
pub mod read;
pub mod stats;
mod text;
mod write;

pub use analysis::{analyse, Analysis};
pub use read::{load, Results};
pub use write::write_results;

use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Read(#[from] read::ReadError),
    #[error("cannot draw the {chart} chart: {message}")]
    Draw { chart: String, message: String },
    #[error("cannot write {}: {error}; check that the directory is writable", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The summary a person reads in a terminal.
pub fn text(analysis: &Analysis) -> String {
    text::render(analysis)
}

/// The statistics as pretty-printed JSON (the shape of [`Analysis`]).
pub fn json(analysis: &Analysis) -> String {
    serde_json::to_string_pretty(analysis).expect("the analysis holds only strings and numbers")
}

/// The whole report as one self-contained HTML page with inline SVG charts.
pub fn html(results: &Results, analysis: &Analysis) -> Result<String, Error> {
    html::render(results, analysis)
}

/// Reads `dir`, renders `dir/report.html` (replacing an older one) and returns its path.
pub fn write_html(dir: &Path) -> Result<PathBuf, Error> {
    let results = load(dir)?;
    write_page(&results, &analyse(&results))
}

/// Writes `report.html` of results already read and analysed into their directory.
pub fn write_page(results: &Results, analysis: &Analysis) -> Result<PathBuf, Error> {
    let page = html(results, analysis)?;
    let path = results.dir.join("report.html");
    std::fs::write(&path, page).map_err(|error| Error::Write {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}
