//! Reads the result directory of one `p2plab run`, computes completion-time and fairness
//! statistics, and renders them as text, JSON or a self-contained `report.html`; compares
//! several runs ([`compare`]: CDFs, medians, KS distance between each pair) and the runs of
//! a virtualization-ratio sweep ([`sweep`]).
//!
//! The result directory it reads (`run.json`, `processes.csv`, `metrics.csv`, `logs/`) and
//! its format are the `results` crate's; the report reads that directory and nothing else.
//!
//! # Definitions
//!
//! - The *completion time* of a process is `end_s - start_s`, for processes that exited
//!   with code 0 only.
//! - A process *failed* when it failed to start, exited with a non-zero code, or was
//!   *killed* by a signal p2plab did not send (a crash: SIGSEGV, SIGABRT). One ended by a
//!   signal p2plab sent (a stop rule ends seeds that way, a `stop` or `kill` event, a stop
//!   signal to the run) was *stopped*, not failed.
//! - *Co-located identical processes* are those with the same role and group; their
//!   fairness is Jain's index and the coefficient of variation of their completion times
//!   and of their CPU times (user + system).
//! - The *start lag* of a process is `start_s - planned_s` (when the schedule said it
//!   should start); the report gives its median, p99 and maximum over the run.
//! - The host's *load* is the busy share of all its CPUs together over the run, mean and
//!   maximum, and the seconds it was at least 90 % busy (*saturated*). Lag and load are the
//!   first signs that a machine hosts too many peers for its figures to hold.
//! - A run over several machines adds a row per *host*: its processes (the rows of
//!   `processes.csv` naming it) and how they ended, its *folding ratio* (the nodes placed
//!   on it), how busy its CPUs were (mean and max), the median and Jain's index of its
//!   processes' completion times, its clock offset (its clock minus the controller's) and
//!   why it was lost, if it was. A run on one host has no such rows.
//! - The processes *expected to complete* are those of the roles that end by themselves
//!   (at least one of their processes exited or failed): roles p2plab stops, such as
//!   trackers and seeds, are left out. The report's completion-time CDF and a comparison
//!   of runs ([`compare`]) are over them, so that a curve ends below 1 by the share that
//!   did not complete.
//! - A metric's bands, beyond a few nodes, are over the nodes that have reported by then,
//!   a node that stopped reporting keeping its last value.
//! - Statistics, and which interpolation rule percentiles use: see [`stats`].

pub mod analysis;
mod charts;
pub mod compare;
mod html;
mod page;
pub mod stats;
pub mod sweep;
mod text;
mod topology;

pub use analysis::{analyse, Analysis};
pub use compare::{compare, Comparison};
pub use sweep::{sweep, write_sweep, Sweep, SweepRun, Thresholds};

use results::Results;
use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Read(#[from] results::ReadError),
    #[error("cannot draw the {chart} chart: {message}")]
    Draw { chart: String, message: String },
    #[error(transparent)]
    Write(#[from] results::WriteError),
    #[error("a sweep needs at least one run: give at least one ratio")]
    NoRuns,
    #[error("{0}")]
    Thresholds(String),
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
    let results = results::load(dir)?;
    write_page(&results, &analyse(&results))
}

/// Writes `report.html` of results already read and analysed into their directory,
/// atomically: a reader sees the old page or the new one, whole.
pub fn write_page(results: &Results, analysis: &Analysis) -> Result<PathBuf, Error> {
    let page = html(results, analysis)?;
    let path = results.dir.join("report.html");
    results::write_atomically(&path, page.as_bytes()).map_err(|error| results::WriteError {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}
