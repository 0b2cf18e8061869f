//! The result directory of one `p2plab run`: its format, the records it holds, written
//! ([`write_results`]) and read ([`load`]). `launch` produces the records, `runner` writes
//! them, `report` reads them back to compute statistics and render the report.
//!
//! # The result directory
//!
//! `p2plab run` writes `results/<name>-<time>/`:
//!
//! - `run.json`: one object,
//!   `{"name": str, "started_unix": f64, "duration_s": f64, "topology": str (path),
//!   "backend": "netem"|"nfqueue"|"none", "kernel": str, "p2plab_version": str,
//!   "seed": u64, "stopped": str (why the run ended), "experiment": <any JSON: the inputs>}`.
//! - `processes.csv`, with this header row (columns may come in any order):
//!   `node,role,group,ip,pid,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received`.
//!   Times are seconds since the run started. `status` is one of
//!   `exited|stopped|killed|failed_to_start|running`: `stopped` when a signal p2plab sent
//!   ended the process (a stop rule, a `stop` or `kill` event, a stop signal to the run),
//!   `killed` when a signal p2plab did not send did (a crash). Empty fields mean "not
//!   applicable" or "not measured": `end_s` while still running, `exit_code` unless
//!   exited, `signal` (a signal number, e.g. `9`) unless stopped or killed, `pid` and the
//!   measurements when the process never started.
//! - `metrics.csv`, with the header row `time_s,node,role,name,value`: one sample per row,
//!   e.g. aria2c's progress percent or a `P2PLAB name=value` line of a program.
//! - `logs/<node>.out`, `logs/<node>.err`: the report links to them, never reads them.
//!
//! A bad row is an error of one line naming the file, the line and the column.

mod read;
mod rows;
mod write;

pub use read::{load, ReadError, Results};
pub use rows::{Backend, HostCpu, MetricSample, Process, RunInfo, Status};
pub use write::{write_results, WriteError};
