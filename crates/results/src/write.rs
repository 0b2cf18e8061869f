//! Writing a result directory: `processes.csv` and `metrics.csv` row by row while the run
//! goes ([`Writer`]), `run.json` atomically ([`write_run`]), and, when a file cannot be
//! written (a full disk, an I/O error), what it lost ([`Loss`]). The runner's side of the
//! format that `read` parses, kept beside it so both change together.
//!
//! A row is in its file whole or not at all: a write the disk refused half-way is cut back
//! to the last whole row, and the file then takes no more rows, so what it holds is a
//! valid table of the first rows it was given.

use crate::rows::{MetricSample, Process, RunInfo, METRIC_COLUMNS, PROCESS_COLUMNS};
use serde::Serialize;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {error}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// What one file of a result directory lost, and the error that caused it.
#[derive(Debug)]
pub struct Loss {
    /// The file's name in the result directory (`processes.csv`, `run.json`, ...).
    pub file: String,
    /// What it lost, as said after its name: `was not written`, `lost its rows from ...`.
    pub what: String,
    pub error: io::Error,
}

/// The losses of a run in one line: each file and what it lost, grouped by the error
/// that caused it, e.g. `processes.csv lost its rows from the one of g-5 (ended at 2.51 s)
/// on (1 of 9 kept), run.json was not written: No space left on device (os error 28)`.
pub fn describe_losses(losses: &[Loss]) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for l in losses {
        let error = l.error.to_string();
        let item = format!("{} {}", l.file, l.what);
        match groups.iter_mut().find(|(e, _)| *e == error) {
            Some((_, items)) => items.push(item),
            None => groups.push((error, vec![item])),
        }
    }
    let groups: Vec<String> = groups
        .into_iter()
        .map(|(error, items)| format!("{}: {error}", items.join(", ")))
        .collect();
    groups.join("; ")
}

/// Writes `bytes` as `path` so that a reader sees the whole file or none: a temporary
/// file in the same directory, synced, then renamed over `path` (and the directory
/// synced, so that the rename survives a crash). Nothing is left behind on failure.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `dir/run.json` atomically (see [`write_atomically`]).
pub fn write_run(dir: &Path, run: &RunInfo) -> Result<(), WriteError> {
    let path = dir.join("run.json");
    serde_json::to_string_pretty(run)
        .map_err(io::Error::other)
        .and_then(|json| write_atomically(&path, (json + "\n").as_bytes()))
        .map_err(|error| WriteError { path, error })
}

/// Where a table's bytes go: its file, or in tests a disk that fills up.
trait Sink: Write {
    /// Cuts the file back to its first `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Waits until what was written is on the disk.
    fn sync(&mut self) -> io::Result<()>;
}

impl Sink for File {
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

/// One CSV file written row by row: rows are kept in memory until [`Table::flush`], and
/// a failed write is cut back to the last whole row, after which the file takes no more.
struct Table<S> {
    /// The file's name in the result directory.
    file: &'static str,
    /// `None` once a write failed.
    sink: Option<S>,
    /// Rows not written yet.
    buf: Vec<u8>,
    /// Where each row in `buf` ends, and how to name it in a [`Loss`].
    pending: Vec<(usize, String)>,
    /// Bytes in the file: whole rows only.
    len: u64,
    /// Rows in the file, and rows given (the header row not counted).
    kept: usize,
    given: usize,
    /// The first row lost and why.
    lost: Option<(String, io::Error)>,
}

impl<S: Sink> Table<S> {
    /// A table writing to `sink`, its header row `header` written already.
    fn new(file: &'static str, sink: S, header: &[&str]) -> io::Result<Table<S>> {
        let mut t = Table {
            file,
            sink: Some(sink),
            buf: Vec::new(),
            pending: Vec::new(),
            len: 0,
            kept: 0,
            given: 0,
            lost: None,
        };
        t.append(header, || "its header row".into())?;
        t.flush();
        // The header row is not a row of the table.
        t.kept = 0;
        match t.lost.take() {
            Some((_, error)) => Err(error),
            None => Ok(t),
        }
    }

    /// Serializes `row` (named by `name` should it be lost) after the rows pending.
    fn append(&mut self, row: impl Serialize, name: impl FnOnce() -> String) -> io::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .buffer_capacity(256)
            .from_writer(&mut self.buf);
        w.serialize(row).map_err(io::Error::other)?;
        w.flush()?;
        drop(w);
        self.pending.push((self.buf.len(), name()));
        Ok(())
    }

    /// Adds `row`, named by `name` should it be lost.
    fn row(&mut self, row: impl Serialize, name: impl FnOnce() -> String) {
        self.given += 1;
        if self.sink.is_some() {
            if let Err(error) = self.append(row, name) {
                self.lost = Some(("a row that could not be written as CSV".into(), error));
                self.sink = None;
            }
        }
    }

    /// Writes the pending rows. A failure cuts the file back to its last whole row and
    /// ends the table.
    fn flush(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let pending = std::mem::take(&mut self.pending);
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let mut done = 0;
        let result = loop {
            if done == buf.len() {
                break Ok(());
            }
            match sink.write(&buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let whole = pending.iter().take_while(|(end, _)| *end <= done).count();
        let whole_end = whole.checked_sub(1).map_or(0, |i| pending[i].0);
        self.len += whole_end as u64;
        self.kept += whole;
        if let Err(error) = result {
            if done > whole_end {
                let _ = sink.truncate(self.len);
            }
            self.lost = Some((pending[whole].1.clone(), error));
            self.sink = None;
        }
    }

    /// Writes what is left and waits for the disk; says what the file lost, if anything.
    fn finish(mut self) -> Option<Loss> {
        self.flush();
        if let Some(sink) = self.sink.as_mut() {
            if let Err(error) = sink.sync() {
                return Some(Loss {
                    file: self.file.into(),
                    what: format!(
                        "may have lost rows: the disk did not confirm them ({} rows written)",
                        self.kept
                    ),
                    error,
                });
            }
        }
        let (first, error) = self.lost?;
        Some(Loss {
            file: self.file.into(),
            what: format!(
                "lost its rows from {first} on ({} of {} kept)",
                self.kept, self.given
            ),
            error,
        })
    }
}

/// `processes.csv` and `metrics.csv` of a result directory, written as the run goes: a
/// process's row when it ends, metric samples as they are read. Rows are written at each
/// [`Writer::flush`] (the scheduler flushes every half second), so a crash of p2plab loses
/// at most the rows given since the last one.
pub struct Writer {
    processes: Table<File>,
    metrics: Table<File>,
}

impl Writer {
    /// Creates `processes.csv` and `metrics.csv` in `dir` (which must exist), each with
    /// its header row.
    pub fn create(dir: &Path) -> Result<Writer, WriteError> {
        let table = |file: &'static str, header: &[&str]| {
            let path = dir.join(file);
            File::create(&path)
                .and_then(|f| Table::new(file, f, header))
                .map_err(|error| WriteError { path, error })
        };
        Ok(Writer {
            processes: table("processes.csv", PROCESS_COLUMNS)?,
            metrics: table("metrics.csv", METRIC_COLUMNS)?,
        })
    }

    /// Adds the row of a process (that ended, or that runs as the run ends).
    pub fn process(&mut self, p: &Process) {
        self.processes.row(p, || match p.end_s {
            Some(end) => format!("the one of {} (ended at {end:.2} s)", p.node),
            None => format!("the one of {} (still running)", p.node),
        });
    }

    /// Adds a metric sample.
    pub fn metric(&mut self, m: &MetricSample) {
        self.metrics.row(m, || {
            format!("the sample of {} at {:.2} s", m.node, m.time_s)
        });
    }

    /// Writes the rows given so far; a file whose write fails takes no more rows.
    pub fn flush(&mut self) {
        self.processes.flush();
        self.metrics.flush();
    }

    /// Writes the rows left and waits for the disk; returns what each file lost.
    pub fn finish(self) -> Vec<Loss> {
        [self.processes.finish(), self.metrics.finish()]
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Backend, Status};
    use std::cell::RefCell;
    use std::rc::Rc;

    fn run_info() -> RunInfo {
        RunInfo {
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
            hosts: vec![],
        }
    }

    fn process(node: &str, end_s: f64) -> Process {
        Process {
            node: node.into(),
            role: "peer".into(),
            group: "a".into(),
            ip: "10.0.0.1".into(),
            pid: Some(42),
            planned_s: Some(0.25),
            start_s: 0.5,
            end_s: Some(end_s),
            status: Status::Exited,
            exit_code: Some(0),
            signal: None,
            cpu_user_s: Some(0.1),
            cpu_sys_s: Some(0.0),
            peak_rss_kb: None,
            bytes_sent: Some(10),
            bytes_received: Some(20),
            host: None,
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let m = MetricSample {
            time_s: 1.0,
            node: "a-1".into(),
            role: "peer".into(),
            name: "progress".into(),
            value: 50.0,
        };
        let mut w = Writer::create(dir.path()).unwrap();
        w.process(&process("a-1", 2.0));
        w.metric(&m);
        assert!(w.finish().is_empty());
        write_run(dir.path(), &run_info()).unwrap();
        let back = crate::load(dir.path()).unwrap();
        assert_eq!(back.processes.len(), 1);
        assert_eq!(back.processes[0].completion_s(), Some(1.5));
        assert_eq!(back.metrics[0].value, 50.0);
        assert_eq!(back.run.seed, 3);
        assert_eq!(back.processes[0].start_lag_s(), Some(0.25));
        assert_eq!(back.run.host_cpu, run_info().host_cpu);
        assert_eq!(back.run.command_line, run_info().command_line);
        assert!(Writer::create(dir.path()).unwrap().finish().is_empty());
        assert!(crate::load(dir.path()).unwrap().processes.is_empty());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "no temporary file is left: {names:?}");
    }

    #[test]
    fn a_run_over_hosts_reads_back_and_a_run_on_one_host_names_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(dir.path()).unwrap();
        w.process(&process("a-1", 2.0));
        w.process(&Process {
            host: Some("h2".into()),
            ..process("a-2", 3.0)
        });
        assert!(w.finish().is_empty());
        write_run(dir.path(), &run_info()).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("processes.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].ends_with(",bytes_received,host"), "{csv}");
        assert!(
            lines[1].ends_with(",10,20,"),
            "one host: empty `host`: {csv}"
        );
        assert!(lines[2].ends_with(",10,20,h2"), "{csv}");
        let json = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
        assert!(!json.contains("\"hosts\""), "one host: no `hosts`: {json}");

        let host = crate::HostRun {
            name: "h2".into(),
            address: "172.31.9.12".into(),
            nodes: 40,
            backend: Backend::Netem,
            kernel: "6.12".into(),
            clock_offset_ms: 0.25,
            host_cpu: run_info().host_cpu,
            failure: None,
        };
        let run = RunInfo {
            hosts: vec![host.clone()],
            ..run_info()
        };
        write_run(dir.path(), &run).unwrap();
        let back = crate::load(dir.path()).unwrap();
        assert_eq!(back.run.hosts, [host]);
        let hosts: Vec<Option<&str>> = back.processes.iter().map(|p| p.host.as_deref()).collect();
        assert_eq!(hosts, [None, Some("h2")]);
    }

    /// A file's bytes, shared by the disk and the test.
    type Bytes = Rc<RefCell<Vec<u8>>>;

    /// A disk with room for `room` bytes, holding the file `bytes`: a write beyond it
    /// writes what fits, the next one fails as a full disk does.
    struct SmallDisk {
        bytes: Bytes,
        room: usize,
    }

    impl Write for SmallDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.borrow_mut();
            let n = buf.len().min(self.room - bytes.len());
            if n == 0 && !buf.is_empty() {
                return Err(io::Error::from_raw_os_error(28));
            }
            bytes.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for SmallDisk {
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.bytes.borrow_mut().truncate(len as usize);
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A table on a [`SmallDisk`] of `room` bytes, and the file's bytes.
    fn table(room: usize) -> io::Result<(Table<SmallDisk>, Bytes)> {
        let bytes = Rc::new(RefCell::new(Vec::new()));
        let disk = SmallDisk {
            bytes: Rc::clone(&bytes),
            room,
        };
        Ok((Table::new("processes.csv", disk, PROCESS_COLUMNS)?, bytes))
    }

    /// The nodes of the rows of a `processes.csv` file: every row must read back.
    fn nodes(bytes: &[u8]) -> Vec<String> {
        let mut reader = csv::Reader::from_reader(bytes);
        let rows = reader.deserialize::<Process>();
        rows.map(|p| p.unwrap().node).collect()
    }

    #[test]
    fn a_full_disk_keeps_whole_rows_and_says_from_which_row_it_lost_them() {
        let (mut roomy, bytes) = table(1 << 20).unwrap();
        roomy.row(process("a-1", 2.0), String::new);
        roomy.flush();
        let one_row = bytes.borrow().len();

        // The second row fits in part, the third not at all; the fourth comes later.
        let (mut t, bytes) = table(one_row + 30).unwrap();
        t.row(process("a-1", 2.0), String::new);
        t.flush();
        t.row(process("a-2", 3.0), || "the one of a-2".into());
        t.row(process("a-3", 3.5), || "the one of a-3".into());
        t.flush();
        t.row(process("a-4", 4.0), String::new);
        t.flush();
        assert_eq!(nodes(&bytes.borrow()), ["a-1"], "the cut row is removed");
        let loss = t.finish().unwrap();
        assert_eq!(loss.file, "processes.csv");
        assert_eq!(
            loss.what,
            "lost its rows from the one of a-2 on (1 of 4 kept)"
        );
        assert_eq!(loss.error.raw_os_error(), Some(28));
        assert!(table(10).is_err(), "no room for the header row");
    }

    #[test]
    fn losses_are_told_in_one_line_grouped_by_their_error() {
        let full = || io::Error::from_raw_os_error(28);
        let line = describe_losses(&[
            Loss {
                file: "processes.csv".into(),
                what: "lost its rows from the one of a-2 on (1 of 4 kept)".into(),
                error: full(),
            },
            Loss {
                file: "run.json".into(),
                what: "was not written".into(),
                error: full(),
            },
            Loss {
                file: "report.html".into(),
                what: "was not written".into(),
                error: io::Error::from_raw_os_error(5),
            },
        ]);
        assert_eq!(
            line,
            "processes.csv lost its rows from the one of a-2 on (1 of 4 kept), run.json was not written: No space left on device (os error 28); report.html was not written: Input/output error (os error 5)"
        );
    }
}
