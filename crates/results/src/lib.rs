//! The result directory of one `p2plab run`: its format, the records it holds, written
//! ([`Writer`], [`write_run`]) and read ([`load`]). `launch` produces the records and
//! writes the rows as the run goes, `runner` writes `run.json` at the end, `report` reads
//! them back to compute statistics and render the report.
//!
//! # The result directory
//!
//! `p2plab run` writes `results/<name>-<time>/`:
//!
//! - `run.json`: one object,
//!   `{"name": str, "started_unix": f64, "duration_s": f64, "topology": str (path),
//!   "backend": "netem"|"nfqueue"|"none", "kernel": str, "p2plab_version": str,
//!   "seed": u64, "stopped": str (why the run ended), "experiment": <any JSON: the inputs>,
//!   "command_line": [str] (`p2plab` first), "resolved_topology": <JSON>, "host_cpu":
//!   {"cpus": u32, "mean_busy": f64, "max_busy": f64, "samples": [[time_s, busy]]} | null}`.
//!   `resolved_topology` is the topology as the run planned it, before any event changed
//!   it (`topology::resolved_json`): `nodes` (a count), `mtu`, `profiles` (name, rates in
//!   bit/s, latency in µs, loss as a fraction, queue in packets), `groups` (name, prefix,
//!   nodes, first and last address, profile, `delay_us` and `loss`: its row of
//!   group-to-group delays and losses; `node_names` where not `<group>-<k>`) and
//!   `delay_summary_us` (min, median, max); node `k` of a group has the prefix's address +
//!   `k` and the group's profile. `host_cpu` is the busy share of all the host's CPUs
//!   together (`/proc/stat`: every process on the machine, not only the run's), each
//!   sample over the interval that ends at its `time_s` (about one a second, and one at the
//!   end), `mean_busy` over the whole run. `command_line`, `resolved_topology` and
//!   `host_cpu` are absent from older results (read as empty, `null` and none).
//!
//!   A run over several machines (`p2plab run --hosts`) adds `"hosts": [{"name": str,
//!   "address": str, "nodes": usize, "backend": "netem"|"nfqueue"|"none", "kernel": str,
//!   "clock_offset_ms": f64, "host_cpu": <as above> | null, "failure": str | null}]`, one
//!   per host in the inventory's order: its name and the address the controller reached
//!   it at, the nodes placed on it (its folding ratio), its backend and kernel, its clock
//!   minus the controller's as measured before the run, how busy its CPUs were, and why
//!   it was lost during the run, if it was. On one host, and in older results, `hosts` is
//!   absent (read as empty).
//! - `processes.csv`, with this header row (columns may come in any order):
//!   `node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received,host`.
//!   Times are seconds since the run started. `planned_s` is when the schedule said the
//!   process should start (its role's `start`, jitter included, or the time of the `start`
//!   event that started it), so `start_s - planned_s` is its start lag; older results have
//!   no `planned_s` column, and read without it. `host` is the name of the host (in
//!   `run.json`'s `hosts`) the process ran on: empty on one host, and absent from older
//!   results (read as empty). `status` is one of
//!   `exited|stopped|killed|failed_to_start|running`: `stopped` when a signal p2plab sent
//!   ended the process (a stop rule, a `stop` or `kill` event, a stop signal to the run),
//!   `killed` when a signal p2plab did not send did (a crash). Empty fields mean "not
//!   applicable" or "not measured": `end_s` while still running, `exit_code` unless
//!   exited, `signal` (a signal number, e.g. `9`) unless stopped or killed, `pid` and the
//!   measurements when the process never started. A process that did not start still has
//!   its `start_s` (when the start was tried) and `planned_s`.
//! - `metrics.csv`, with the header row `time_s,node,role,name,value`: one sample per row,
//!   e.g. aria2c's progress percent or a `P2PLAB name=value` line of a program.
//! - `logs/<node>.out`, `logs/<node>.err`: the report links to them, never reads them.
//!
//! Rows are written while the run goes: a process's row when it ends (the rows of those
//! still running when the run ends, then), metric samples as they are read; so rows come
//! in the order they were written, not by start. `run.json` is written once the run has
//! ended, atomically: it is whole or absent. A file the disk refuses (full, I/O error)
//! keeps the whole rows written before and takes no more; the run says which rows were
//! lost and why.
//!
//! A bad row is an error of one line naming the file, the line and the column.

mod read;
mod rows;
mod write;

pub use read::{load, ReadError, Results};
pub use rows::{Backend, HostCpu, HostRun, MetricSample, Process, RunInfo, Status};
pub use write::{describe_losses, write_atomically, write_run, Loss, WriteError, Writer};
