//! Reading `run.json`, `processes.csv` and `metrics.csv` into typed records. Every
//! problem becomes one [`ReadError`] line naming the file, the line and the column.

use crate::rows::{
    MetricSample, Process, RunInfo, Status, LATER_PROCESS_COLUMNS, METRIC_COLUMNS, PROCESS_COLUMNS,
};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Everything a result directory holds that a report uses.
#[derive(Debug, Clone)]
pub struct Results {
    pub dir: PathBuf,
    pub run: RunInfo,
    pub processes: Vec<Process>,
    pub metrics: Vec<MetricSample>,
}

/// A result directory that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {error}; is {} the result directory of a p2plab run?", path.display(), path.parent().unwrap_or(Path::new(".")).display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}: column {column} `{field}`: {message}", path.display())]
    Row {
        path: PathBuf,
        line: u64,
        column: usize,
        field: String,
        message: String,
    },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// The values an enum column may hold, checked before parsing: serde's own error for an
/// unknown variant would not say which column it is about.
const STATUSES: &[&str] = &["exited", "stopped", "killed", "failed_to_start", "running"];

/// Reads the result directory `dir`.
pub fn load(dir: &Path) -> Result<Results, ReadError> {
    let run = read_run(&dir.join("run.json"))?;
    let required: Vec<&str> = PROCESS_COLUMNS
        .iter()
        .copied()
        .filter(|c| !LATER_PROCESS_COLUMNS.contains(c))
        .collect();
    let processes = read_csv(
        &dir.join("processes.csv"),
        &required,
        &[("status", STATUSES)],
        check_process,
    )?;
    let metrics = read_csv(
        &dir.join("metrics.csv"),
        METRIC_COLUMNS,
        &[],
        |m: &MetricSample| {
            finite("time_s", m.time_s)?;
            finite("value", m.value)
        },
    )?;
    Ok(Results {
        dir: dir.to_path_buf(),
        run,
        processes,
        metrics,
    })
}

fn read_run(path: &Path) -> Result<RunInfo, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|error| ReadError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        // serde_json's message ends with " at line L column C"; the prefix says it already.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        ReadError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: message.to_string(),
        }
    })
}

/// A row that parsed but does not make sense: the column it is about and why.
type RowProblem = (&'static str, String);

/// Reads a CSV file with a header row holding at least `columns`. In each row, the
/// columns named in `choices` must hold one of their listed values; `check` looks at the
/// parsed row.
fn read_csv<T: DeserializeOwned>(
    path: &Path,
    columns: &[&str],
    choices: &[(&'static str, &[&str])],
    check: impl Fn(&T) -> Result<(), RowProblem>,
) -> Result<Vec<T>, ReadError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| csv_error(path, e, None))?;
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, e, None))?
        .clone();
    if let Some(missing) = columns.iter().find(|c| !headers.iter().any(|h| h == **c)) {
        return Err(ReadError::Line {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "the header row has no column `{missing}`; it must name the columns {}",
                columns.join(",")
            ),
        });
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| csv_error(path, e, Some(&headers)))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let problem = |(field, message): RowProblem| ReadError::Row {
            path: path.to_path_buf(),
            line,
            column: headers.iter().position(|h| h == field).map_or(0, |c| c + 1),
            field: field.to_string(),
            message,
        };
        for &(field, allowed) in choices {
            let value = headers
                .iter()
                .position(|h| h == field)
                .and_then(|i| record.get(i))
                .unwrap_or_default();
            if !allowed.contains(&value) {
                return Err(problem((
                    field,
                    format!("`{value}` is not one of {}", allowed.join(", ")),
                )));
            }
        }
        let row: T = record
            .deserialize(Some(&headers))
            .map_err(|e| csv_error(path, e, Some(&headers)))?;
        check(&row).map_err(problem)?;
        rows.push(row);
    }
    Ok(rows)
}

fn csv_error(path: &Path, e: csv::Error, headers: Option<&csv::StringRecord>) -> ReadError {
    let line = e.position().map_or(1, |p| p.line());
    let message = e.to_string();
    let path = path.to_path_buf();
    match e.into_kind() {
        csv::ErrorKind::Io(error) => ReadError::Io { path, error },
        csv::ErrorKind::Deserialize { err, .. } => {
            let message = format!("{}; fix the value or remove the row", err.kind());
            match err.field().map(|f| f as usize) {
                Some(column) => ReadError::Row {
                    path,
                    line,
                    column: column + 1,
                    field: headers.and_then(|h| h.get(column)).unwrap_or("?").to_string(),
                    message,
                },
                None => ReadError::Line {
                    path,
                    line,
                    message,
                },
            }
        }
        csv::ErrorKind::Utf8 { err, .. } => ReadError::Row {
            path,
            line,
            column: err.field() + 1,
            field: headers.and_then(|h| h.get(err.field())).unwrap_or("?").to_string(),
            message: "not valid UTF-8; write the file as UTF-8".into(),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ReadError::Line {
            path,
            line,
            message: format!(
                "the row has {len} fields but the header row has {expected_len}; fix or remove the row"
            ),
        },
        _ => ReadError::Line {
            path,
            line,
            message,
        },
    }
}

/// NaN and infinities parse as numbers but mean nothing in a chart or a statistic.
fn finite(field: &'static str, x: f64) -> Result<(), RowProblem> {
    if x.is_finite() {
        Ok(())
    } else {
        Err((field, format!("`{x}` is not a finite number")))
    }
}

/// The rules of a `processes.csv` row that types alone do not say.
fn check_process(p: &Process) -> Result<(), RowProblem> {
    finite("start_s", p.start_s)?;
    for (field, x) in [
        ("planned_s", p.planned_s),
        ("end_s", p.end_s),
        ("cpu_user_s", p.cpu_user_s),
        ("cpu_sys_s", p.cpu_sys_s),
    ] {
        x.map_or(Ok(()), |x| finite(field, x))?;
    }
    match (p.status, p.end_s) {
        (Status::Exited | Status::Stopped | Status::Killed, None) => {
            return Err((
                "end_s",
                "empty, but the process has ended (status exited, stopped or killed); give the end time"
                    .into(),
            ))
        }
        (_, Some(end)) if end < p.start_s => {
            return Err((
                "end_s",
                format!(
                    "{end} is before start_s {}; times are seconds since the run started",
                    p.start_s
                ),
            ))
        }
        _ => {}
    }
    if p.status == Status::Exited && p.exit_code.is_none() {
        return Err((
            "exit_code",
            "empty, but the status is exited; give the exit code".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    /// `run.json` as results written before the command line, the resolved topology, the
    /// host's CPU and the hosts of a run over several machines were recorded.
    const OLD_RUN: &str = r#"{"name": "old", "started_unix": 1.0, "duration_s": 2.0,
        "topology": "t.yaml", "backend": "netem", "kernel": "6.1", "p2plab_version": "0.1.0",
        "seed": 1, "experiment": null}"#;

    fn dir_with(run: &str, processes: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.json"), run).unwrap();
        std::fs::write(dir.path().join("processes.csv"), processes).unwrap();
        std::fs::write(
            dir.path().join("metrics.csv"),
            "time_s,node,role,name,value\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn older_results_without_planned_starts_host_records_or_hosts_read() {
        let dir = dir_with(
            OLD_RUN,
            "node,role,group,ip,pid,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received\n\
             a-1,peer,a,10.0.0.1,7,0.5,1.5,exited,0,,,,,,\n",
        );
        let r = load(dir.path()).unwrap();
        assert_eq!(r.processes[0].planned_s, None);
        assert_eq!(r.processes[0].start_lag_s(), None);
        assert_eq!(r.processes[0].start_s, 0.5);
        assert!(r.run.command_line.is_empty());
        assert_eq!(r.run.resolved_topology, serde_json::Value::Null);
        assert_eq!(r.run.host_cpu, None);
        assert_eq!(r.processes[0].host, None);
        assert!(r.run.hosts.is_empty());
    }

    #[test]
    fn planned_starts_host_records_and_hosts_read_in_any_column_order() {
        let run = r#"{"name": "new", "started_unix": 1.0, "duration_s": 2.0,
            "topology": "inline", "backend": "nfqueue", "kernel": "6.1",
            "p2plab_version": "0.1.0", "seed": 1, "experiment": null,
            "command_line": ["p2plab", "run", "e.yaml"],
            "resolved_topology": {"groups": [{"name": "a", "first_ip": "10.0.0.1"}]},
            "host_cpu": {"cpus": 4, "mean_busy": 0.5, "max_busy": 0.75,
                         "samples": [[1.0, 0.25], [1.5, 0.75]]},
            "hosts": [{"name": "h1", "address": "172.31.9.11", "nodes": 2,
                       "backend": "nfqueue", "kernel": "6.1", "clock_offset_ms": -1.5,
                       "host_cpu": null, "failure": "the agent's channel closed"}]}"#;
        let dir = dir_with(
            run,
            "status,start_s,host,planned_s,node,role,group,ip,pid,end_s,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received\n\
             exited,2.25,h1,2,a-1,peer,a,10.0.0.1,7,3,0,,,,,,\n\
             exited,1,,,a-2,peer,a,10.0.0.2,8,3,0,,,,,,\n",
        );
        let r = load(dir.path()).unwrap();
        assert_eq!(r.processes[0].planned_s, Some(2.0));
        assert_eq!(r.processes[0].start_lag_s(), Some(0.25));
        assert_eq!(r.processes[1].planned_s, None);
        assert_eq!(r.run.command_line, ["p2plab", "run", "e.yaml"]);
        assert_eq!(r.run.resolved_topology["groups"][0]["first_ip"], "10.0.0.1");
        let cpu = r.run.host_cpu.unwrap();
        assert_eq!((cpu.cpus, cpu.mean_busy, cpu.max_busy), (4, 0.5, 0.75));
        assert_eq!(cpu.samples, [(1.0, 0.25), (1.5, 0.75)]);
        assert_eq!(r.processes[0].host.as_deref(), Some("h1"));
        assert_eq!(r.processes[1].host, None);
        let h = &r.run.hosts[0];
        assert_eq!(
            (h.name.as_str(), h.nodes, h.backend),
            ("h1", 2, Backend::Nfqueue)
        );
        assert_eq!((h.clock_offset_ms, h.host_cpu.as_ref()), (-1.5, None));
        assert_eq!(h.failure.as_deref(), Some("the agent's channel closed"));
    }

    #[test]
    fn a_planned_start_that_is_not_a_number_names_its_line_and_column() {
        let dir = dir_with(
            OLD_RUN,
            "node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received\n\
             a-1,peer,a,10.0.0.1,7,inf,0.5,1.5,exited,0,,,,,,\n",
        );
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("processes.csv:2: column 6 `planned_s`: `inf` is not a finite number"),
            "{e}"
        );
    }
}
