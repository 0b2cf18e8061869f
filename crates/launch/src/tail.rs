//! Metrics from the processes' output: their log files are read as they grow, lines split
//! on `\n` or `\r` (progress bars), and each line matched against its role's metric regexes
//! (first capture group, as a number) and the `P2PLAB name=value ...` line protocol.

use experiment::Metric;
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

/// At most this much new output is read from one file per poll.
const READ_LIMIT: u64 = 1 << 20;
/// A line longer than this is cut (its start is kept) rather than buffered forever.
const LINE_LIMIT: usize = 64 << 10;

/// One value read from a process's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub node: usize,
    pub role: usize,
    pub name: String,
    pub value: f64,
}

struct Watched {
    node: usize,
    role: usize,
    path: PathBuf,
    file: Option<File>,
    partial: Vec<u8>,
}

/// The log files being followed.
#[derive(Default)]
pub struct Tail {
    watched: Vec<Watched>,
    paths: HashSet<PathBuf>,
}

/// Values in one line of output.
pub fn parse_line(line: &str, metrics: &[Metric], mut found: impl FnMut(&str, f64)) {
    if let Some(rest) = line.split_once("P2PLAB ").map(|(_, r)| r) {
        for (name, value) in rest.split_whitespace().filter_map(|kv| kv.split_once('=')) {
            if let Ok(v) = value.parse::<f64>() {
                found(name, v);
            }
        }
    }
    for m in metrics {
        let last = m
            .regex
            .captures_iter(line)
            .filter_map(|c| c.get(1)?.as_str().parse::<f64>().ok())
            .last();
        if let Some(v) = last {
            found(&m.name, v);
        }
    }
}

impl Tail {
    /// Follows `path` (which may not exist yet) for `node` of `role`.
    pub fn watch(&mut self, node: usize, role: usize, path: PathBuf) {
        if self.paths.insert(path.clone()) {
            self.watched.push(Watched {
                node,
                role,
                path,
                file: None,
                partial: Vec::new(),
            });
        }
    }

    /// Reads what the files gained since the last poll.
    pub fn poll<'a>(&mut self, metrics_of: impl Fn(usize) -> &'a [Metric], out: &mut Vec<Sample>) {
        let mut buf = Vec::new();
        for w in &mut self.watched {
            if w.file.is_none() {
                w.file = File::open(&w.path).ok();
            }
            let Some(file) = w.file.as_mut() else {
                continue;
            };
            buf.clear();
            if file.take(READ_LIMIT).read_to_end(&mut buf).is_err() || buf.is_empty() {
                continue;
            }
            w.partial.extend_from_slice(&buf);
            let complete = w
                .partial
                .iter()
                .rposition(|b| matches!(b, b'\n' | b'\r'))
                .map_or(0, |i| i + 1);
            let metrics = metrics_of(w.role);
            for line in w.partial[..complete].split(|b| matches!(b, b'\n' | b'\r')) {
                if line.is_empty() {
                    continue;
                }
                parse_line(&String::from_utf8_lossy(line), metrics, |name, value| {
                    out.push(Sample {
                        node: w.node,
                        role: w.role,
                        name: name.to_string(),
                        value,
                    });
                });
            }
            w.partial.drain(..complete);
            w.partial.truncate(LINE_LIMIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn progress() -> Metric {
        Metric {
            name: "progress".into(),
            regex: regex::Regex::new(r"\((\d+)%\)").unwrap(),
        }
    }

    #[test]
    fn lines_give_regex_and_protocol_values() {
        let mut got = Vec::new();
        parse_line(
            "[#2089b0 400KiB/1.9MiB(20%) CN:1]  P2PLAB peers=3 rtt_ms=1.5 bad=x",
            &[progress()],
            |n, v| got.push((n.to_string(), v)),
        );
        assert_eq!(
            got,
            [
                ("peers".into(), 3.0),
                ("rtt_ms".into(), 1.5),
                ("progress".into(), 20.0)
            ]
        );
    }

    #[test]
    fn growing_files_are_read_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.out");
        let mut tail = Tail::default();
        tail.watch(4, 1, path.clone());
        let metrics = [progress()];
        let mut out = Vec::new();
        tail.poll(|_| &metrics[..], &mut out);
        assert!(out.is_empty(), "no file yet");
        let mut f = File::create(&path).unwrap();
        write!(f, "(10%)\r(20%)\n(3").unwrap();
        tail.poll(|_| &metrics[..], &mut out);
        writeln!(f, "0%)").unwrap();
        tail.poll(|_| &metrics[..], &mut out);
        let values: Vec<f64> = out.iter().map(|s| s.value).collect();
        assert_eq!(values, [10.0, 20.0, 30.0]);
        assert!(out.iter().all(|s| s.node == 4 && s.role == 1));
    }
}
