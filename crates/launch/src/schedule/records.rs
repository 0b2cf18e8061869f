//! What the scheduler keeps of each process (start, end, how it ended, CPU, memory and
//! bytes at its start and end) and the records it turns them into: the rows of
//! `processes.csv`, each written when its process ends, and the counts the progress line
//! shows.

use super::host::{Exit, Host, Job};
use super::{Outcome, Scheduler, StopReason};
use crate::progress::Counts;
use nix::sys::signal::Signal;
use results::{Process, Status};
use std::time::Duration;

/// One started (or failed) process.
pub(super) struct Proc {
    role: usize,
    pub node: usize,
    pub pid: Option<u32>,
    /// When the schedule said it should start.
    planned: Duration,
    start: Duration,
    end: Option<Duration>,
    status: Status,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// SIGTERM or SIGKILL sent by the run (an event or the end of the run): the process
    /// counts as stopped however it then exits.
    pub ended_by: Option<Signal>,
    usage_at_start: cgroup::Usage,
    usage_at_end: Option<cgroup::Usage>,
    bytes_at_start: (u64, u64),
    bytes_at_end: Option<(u64, u64)>,
}

impl<H: Host> Scheduler<'_, H> {
    /// Records a spawn planned for `planned` and made `start` after the run began; a failed
    /// one says why, in the node's stderr log too.
    pub(super) fn record_start(
        &mut self,
        job: Job<'_>,
        planned: Duration,
        started: std::io::Result<u32>,
        start: Duration,
    ) -> Result<(), String> {
        let Job {
            role,
            node,
            stdout,
            stderr,
            ..
        } = job;
        let usage_known = std::mem::replace(&mut self.started[node], true);
        let mut p = Proc {
            role,
            node,
            pid: None,
            planned,
            start,
            end: None,
            status: Status::FailedToStart,
            exit_code: None,
            signal: None,
            ended_by: None,
            // A node's cgroup has used nothing before its first process.
            usage_at_start: if usage_known {
                self.host.usage(node)
            } else {
                cgroup::Usage::default()
            },
            usage_at_end: None,
            bytes_at_start: self.bytes.get(node).copied().unwrap_or_default(),
            bytes_at_end: None,
        };
        match started {
            Ok(pid) => {
                if let Some(o) = self.opts.observer {
                    o.started(node, pid, start.as_secs_f64());
                }
                p.pid = Some(pid);
                p.status = Status::Running;
                self.running[node] = Some(self.procs.len());
                self.running_by_role[role] += 1;
                self.procs.push(p);
                self.tail.watch(node, role, stdout);
                self.tail.watch(node, role, stderr);
                Ok(())
            }
            Err(e) => {
                p.end = Some(start);
                self.write(self.record(&p));
                self.procs.push(p);
                let _ = std::fs::write(&stderr, format!("p2plab: {e}\n"));
                Err(format!("node {}: {e}", self.exp.plan.link.nodes[node].name))
            }
        }
    }

    /// Records how process `i` ended.
    pub(super) fn finish(&mut self, i: usize, exit: Exit) {
        let p = self.stamp_end(i);
        match (exit, p.ended_by) {
            (Exit::Signal(sig), Some(_)) | (Exit::Code(_), Some(sig)) => {
                p.status = Status::Stopped;
                p.signal = Some(sig as i32);
            }
            (Exit::Signal(sig), None) => {
                p.status = Status::Killed;
                p.signal = Some(sig as i32);
            }
            (Exit::Code(code), None) => {
                p.status = Status::Exited;
                p.exit_code = Some(code);
            }
        }
        self.ended(i);
    }

    /// Process `i` is no longer our child: it has ended, how is unknown (stopped if the run
    /// signalled it, else killed).
    pub(super) fn gone(&mut self, i: usize) {
        let p = self.stamp_end(i);
        p.status = match p.ended_by {
            Some(_) => Status::Stopped,
            None => Status::Killed,
        };
        self.ended(i);
    }

    /// Process `i`, its end time and what its node used until then recorded.
    fn stamp_end(&mut self, i: usize) -> &mut Proc {
        let now = self.host.now();
        let node = self.procs[i].node;
        let usage = self.host.usage(node);
        let bytes = self.bytes.get(node).copied().unwrap_or_default();
        let p = &mut self.procs[i];
        p.end = Some(now);
        p.usage_at_end = Some(usage);
        p.bytes_at_end = Some(bytes);
        p
    }

    /// Process `i`, whose end is recorded, no longer runs: its row is written.
    fn ended(&mut self, i: usize) {
        let node = self.procs[i].node;
        if let Some(i) = self.running[node].take() {
            self.running_by_role[self.procs[i].role] -= 1;
        }
        self.write(self.record(&self.procs[i]));
    }

    /// Writes a process's row (and shows it to the observer).
    fn write(&mut self, row: Process) {
        self.out.process(&row);
        if let Some(o) = self.opts.observer {
            o.ended(&row);
        }
        self.rows.push(row);
    }

    /// The counts the progress line shows.
    pub(super) fn counts(&self) -> Counts {
        let mut c = Counts {
            started: self.procs.len(),
            ..Counts::default()
        };
        for p in &self.procs {
            match p.status {
                Status::Running => c.running += 1,
                Status::Exited if p.exit_code == Some(0) => c.done += 1,
                Status::Exited | Status::FailedToStart | Status::Killed => c.failed += 1,
                Status::Stopped => c.done += 1,
            }
        }
        c
    }

    /// The `processes.csv` row of `p`: its CPU, memory and bytes are what its node used
    /// while it ran, when measured.
    fn record(&self, p: &Proc) -> Process {
        let exp = self.exp;
        let node = &exp.plan.link.nodes[p.node];
        let usage = p.usage_at_end.unwrap_or_else(|| self.host.usage(p.node));
        let bytes = p
            .bytes_at_end
            .unwrap_or_else(|| self.bytes.get(p.node).copied().unwrap_or_default());
        let measured = p.pid.is_some();
        let secs = |us: u64| us as f64 / 1e6;
        Process {
            node: node.name.clone(),
            role: exp.roles[p.role].name.clone(),
            group: exp.plan.link.groups[node.group].name.clone(),
            ip: node.ip.to_string(),
            pid: p.pid,
            planned_s: Some(p.planned.as_secs_f64()),
            start_s: p.start.as_secs_f64(),
            end_s: p.end.map(|d| d.as_secs_f64()),
            status: p.status,
            exit_code: p.exit_code,
            signal: p.signal,
            cpu_user_s: (measured && self.opts.cgroups.is_some()).then(|| {
                secs(
                    usage
                        .cpu_user_us
                        .saturating_sub(p.usage_at_start.cpu_user_us),
                )
            }),
            cpu_sys_s: (measured && self.opts.cgroups.is_some()).then(|| {
                secs(
                    usage
                        .cpu_system_us
                        .saturating_sub(p.usage_at_start.cpu_system_us),
                )
            }),
            peak_rss_kb: usage
                .memory_peak_bytes
                .filter(|_| measured)
                .map(|b| b / 1024),
            bytes_sent: (measured && !self.bytes.is_empty())
                .then(|| bytes.0.saturating_sub(p.bytes_at_start.0)),
            bytes_received: (measured && !self.bytes.is_empty())
                .then(|| bytes.1.saturating_sub(p.bytes_at_start.1)),
            // One host: a run over several machines names the host of each row.
            host: None,
        }
    }

    /// What the run produced, once it stopped for `stop`: the rows of the processes still
    /// running are written, then every file is finished.
    pub(super) fn outcome(mut self, stop: StopReason) -> Outcome {
        let duration_s = self.host.now().as_secs_f64();
        let procs = std::mem::take(&mut self.procs);
        for p in procs.iter().filter(|p| p.status == Status::Running) {
            self.write(self.record(p));
        }
        Outcome {
            processes: self.rows,
            metrics: self.metrics,
            lost: self.out.finish(),
            duration_s,
            stop,
            host_cpu: self.cpu.finish(),
        }
    }
}
