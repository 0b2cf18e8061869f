//! Writing a result directory (`run.json`, `processes.csv`, `metrics.csv`): the runner's
//! side of the format that `read` parses, kept beside it so both change together.

use crate::rows::{MetricSample, Process, RunInfo, METRIC_COLUMNS, PROCESS_COLUMNS};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {error}; check that the directory is writable", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

fn failed(path: &Path, error: impl std::fmt::Display) -> WriteError {
    WriteError {
        path: path.to_path_buf(),
        error: std::io::Error::other(error.to_string()),
    }
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T], header: &[&str]) -> Result<(), WriteError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(|e| failed(path, e))?;
    // Written by hand so that an empty table still has its header row.
    w.write_record(header).map_err(|e| failed(path, e))?;
    for row in rows {
        w.serialize(row).map_err(|e| failed(path, e))?;
    }
    w.flush().map_err(|e| failed(path, e))
}

/// Writes the three files of a result directory into `dir` (which must exist).
pub fn write_results(
    dir: &Path,
    run: &RunInfo,
    processes: &[Process],
    metrics: &[MetricSample],
) -> Result<(), WriteError> {
    let run_path = dir.join("run.json");
    let json = serde_json::to_string_pretty(run).map_err(|e| failed(&run_path, e))?;
    std::fs::write(&run_path, json + "\n").map_err(|error| WriteError {
        path: run_path.clone(),
        error,
    })?;
    write_csv(&dir.join("processes.csv"), processes, PROCESS_COLUMNS)?;
    write_csv(&dir.join("metrics.csv"), metrics, METRIC_COLUMNS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Backend, Status};

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunInfo {
            name: "t".into(),
            started_unix: 1.5,
            duration_s: 10.0,
            topology: "t.yaml".into(),
            backend: Backend::Nfqueue,
            kernel: "6.1".into(),
            p2plab_version: "0.1.0".into(),
            seed: 3,
            stopped: "every process exited".into(),
            experiment: serde_json::json!({"roles": 1}),
            command_line: vec!["p2plab".into(), "run".into(), "t.yaml".into()],
            resolved_topology: serde_json::json!({"groups": []}),
            host_cpu: Some(crate::HostCpu {
                cpus: 2,
                mean_busy: 0.25,
                max_busy: 0.5,
                samples: vec![(1.0, 0.5), (2.0, 0.0)],
            }),
        };
        let p = Process {
            node: "a-1".into(),
            role: "peer".into(),
            group: "a".into(),
            ip: "10.0.0.1".into(),
            pid: Some(42),
            planned_s: Some(0.25),
            start_s: 0.5,
            end_s: Some(2.0),
            status: Status::Exited,
            exit_code: Some(0),
            signal: None,
            cpu_user_s: Some(0.1),
            cpu_sys_s: Some(0.0),
            peak_rss_kb: None,
            bytes_sent: Some(10),
            bytes_received: Some(20),
        };
        let m = MetricSample {
            time_s: 1.0,
            node: "a-1".into(),
            role: "peer".into(),
            name: "progress".into(),
            value: 50.0,
        };
        write_results(dir.path(), &run, &[p], &[m]).unwrap();
        let back = crate::load(dir.path()).unwrap();
        assert_eq!(back.processes.len(), 1);
        assert_eq!(back.processes[0].completion_s(), Some(1.5));
        assert_eq!(back.metrics[0].value, 50.0);
        assert_eq!(back.run.seed, 3);
        assert_eq!(back.processes[0].start_lag_s(), Some(0.25));
        assert_eq!(back.run.host_cpu, run.host_cpu);
        assert_eq!(back.run.command_line, run.command_line);
        write_results(dir.path(), &run, &[], &[]).unwrap();
        assert!(crate::load(dir.path()).unwrap().processes.is_empty());
    }
}
