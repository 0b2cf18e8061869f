//! Running an experiment on this host: prepare commands and files, then start every node's
//! process on schedule, carry out events (signals here, network changes through the
//! `Network` the caller gives), follow metrics, apply the stop rule, stop what is left
//! (SIGTERM, then the cgroup kill) and return one record per process and every metric
//! sample. Single-threaded: one loop wakes for the next start, event or poll.

use crate::progress::{Counts, Progress};
use crate::signals::{self, Stop};
use crate::spawn::{Launcher, Spec};
use crate::tail::{Sample, Tail};
use cgroup::{NodeGroup, RunGroup};
use experiment::{Action, Experiment, FailurePolicy};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use results::{MetricSample, Process, Status};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest sleep of the main loop.
const TICK: Duration = Duration::from_millis(20);
/// How often logs are read for metrics and network counters refreshed.
const POLL: Duration = Duration::from_millis(500);
/// How often the network is asked whether it still emulates the topology (a dead delay
/// engine stops the run within half a second, scheduling included).
const WATCH: Duration = Duration::from_millis(100);
/// How long processes get between SIGTERM and the kill at the end of a run.
const GRACE: Duration = Duration::from_secs(2);

/// The network side of a run: shaping changes at run time and traffic counters.
pub trait Network {
    /// Carries out `cut`, `restore`, `set_link` (on `nodes`) or `set_delay`.
    fn apply(&mut self, action: &Action, nodes: &[usize]) -> Result<(), String>;
    /// Bytes sent and received by every node of the plan so far, if measured.
    fn bytes(&mut self) -> Option<Vec<(u64, u64)>>;
    /// Why the network no longer emulates the topology (its delay engine exited), if so.
    fn failure(&mut self) -> Option<String>;
}

/// How to run.
pub struct Options<'a> {
    /// The result directory; `logs/` and `nodes/` are made in it.
    pub run_dir: PathBuf,
    pub shim: PathBuf,
    /// The run's cgroups, when this host has them (created by the caller, which records
    /// them so that `p2plab down` can end the run's processes after a crash).
    pub cgroups: Option<&'a RunGroup>,
    pub quiet: bool,
    /// The stop signals, installed by the caller before it set anything up.
    pub stop: &'a Stop,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Every process of the stop rule's roles exited.
    RolesExited,
    /// Every process exited (no stop rule named roles or a metric).
    AllExited,
    MetricReached,
    DurationCap,
    /// A stop signal (its number) arrived.
    Interrupted(i32),
    /// A process failed to start under `on_failure: abort`.
    Aborted(String),
    /// The emulated network failed: what followed would not have been measured on it.
    NetworkFailed(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::RolesExited => f.write_str("the stop rule's roles exited"),
            StopReason::AllExited => f.write_str("every process exited"),
            StopReason::MetricReached => f.write_str("the stop metric was reached"),
            StopReason::DurationCap => f.write_str("the duration cap was reached"),
            StopReason::Interrupted(sig) => write!(f, "interrupted by {}", signals::name(*sig)),
            StopReason::Aborted(why) => write!(f, "aborted: {why}"),
            StopReason::NetworkFailed(why) => write!(f, "the network failed: {why}"),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub processes: Vec<Process>,
    pub metrics: Vec<MetricSample>,
    pub duration_s: f64,
    pub stop: StopReason,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up {path}: {error}")]
    Setup {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("prepare command `{command}` failed ({status}); its output is in {log}")]
    Prepare {
        command: String,
        status: String,
        log: PathBuf,
    },
    #[error("role `{role}`: {error}")]
    Cgroup { role: String, error: std::io::Error },
}

/// Spawner threads for a large batch of starts, and the batch size that uses them.
const SPAWNERS: usize = 4;
const PARALLEL_FROM: usize = 16;

/// A process about to be started.
struct Job {
    role: usize,
    node: usize,
    argv: Vec<String>,
    dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// One started (or failed) process.
struct Proc {
    role: usize,
    node: usize,
    pid: Option<u32>,
    start: Duration,
    end: Option<Duration>,
    status: Status,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// SIGTERM or SIGKILL sent by the run (an event or the end of the run): the process
    /// counts as killed however it then exits.
    ended_by: Option<Signal>,
    usage_at_start: cgroup::Usage,
    usage_at_end: Option<cgroup::Usage>,
    bytes_at_start: (u64, u64),
    bytes_at_end: Option<(u64, u64)>,
}

fn setup_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |error| RunError::Setup {
        path: path.to_path_buf(),
        error,
    }
}

/// `logs/<node>.<ext>` of a run.
fn log_path(exp: &Experiment, run_dir: &Path, node: usize, ext: &str) -> PathBuf {
    run_dir
        .join("logs")
        .join(format!("{}.{ext}", exp.plan.nodes[node].name))
}

/// Links (or, across file systems, copies) `from` to `to`.
fn place_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        return Ok(());
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

struct Engine<'a> {
    exp: &'a Experiment,
    opts: &'a Options<'a>,
    launcher: Launcher,
    groups: Vec<Option<NodeGroup>>,
    procs: Vec<Proc>,
    /// Index in `procs` of each node's running process.
    running: Vec<Option<usize>>,
    /// Whether a process was ever started on each node.
    started: Vec<bool>,
    /// How many processes of each role run.
    running_by_role: Vec<usize>,
    /// Latest value of the stop rule's metric for each node (NEG_INFINITY before any).
    stop_metric: Vec<f64>,
    bytes: Vec<(u64, u64)>,
    tail: Tail,
    samples: Vec<(Duration, Sample)>,
    t0: Instant,
}

impl Engine<'_> {
    fn log(&self, node: usize, ext: &str) -> PathBuf {
        log_path(self.exp, &self.opts.run_dir, node, ext)
    }

    fn usage(&self, node: usize) -> cgroup::Usage {
        self.groups[node]
            .as_ref()
            .map(NodeGroup::usage)
            .unwrap_or_default()
    }

    /// Starts role `role` on node `node`, unless the node runs a process already.
    fn start(&mut self, role: usize, node: usize) -> Result<(), String> {
        self.start_all(&[(role, node)]).into_iter().collect()
    }

    /// Starts every `(role, node)` of `due` (skipping nodes that already run a process).
    /// Large batches are spawned from several threads: a spawn waits until its child has
    /// exec'd, and on a busy machine that wait, not our work, bounds the launch rate.
    fn start_all(&mut self, due: &[(usize, usize)]) -> Vec<Result<(), String>> {
        let exp = self.exp;
        let mut seen = std::collections::HashSet::new();
        let jobs: Vec<Job> = due
            .iter()
            .filter(|&&(_, node)| self.running[node].is_none() && seen.insert(node))
            .map(|&(role, node)| Job {
                role,
                node,
                argv: exp.command(role, node, &self.opts.run_dir),
                dir: exp.node_dir(&self.opts.run_dir, node),
                stdout: self.log(node, "out"),
                stderr: self.log(node, "err"),
            })
            .collect();
        let t0 = self.t0;
        let spawn = |job: &Job| {
            let pid = self.launcher.start(&Spec {
                argv: &job.argv,
                env: &exp.roles[job.role].env,
                ip: exp.plan.nodes[job.node].ip,
                node: &exp.plan.nodes[job.node].name,
                dir: &job.dir,
                stdout: &job.stdout,
                stderr: &job.stderr,
                cgroup: self.groups[job.node].as_ref(),
            });
            (pid, t0.elapsed())
        };
        let results: Vec<(std::io::Result<u32>, Duration)> = if jobs.len() < PARALLEL_FROM {
            jobs.iter().map(spawn).collect()
        } else {
            let chunk = jobs.len().div_ceil(SPAWNERS);
            std::thread::scope(|scope| {
                let workers: Vec<_> = jobs
                    .chunks(chunk)
                    .map(|part| scope.spawn(move || part.iter().map(spawn).collect::<Vec<_>>()))
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap_or_default())
                    .collect()
            })
        };
        jobs.into_iter()
            .zip(results)
            .map(|(job, (started, start))| self.record_start(job, started, start))
            .collect()
    }

    /// Records a spawn made `start` after the run began.
    fn record_start(
        &mut self,
        job: Job,
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
            start,
            end: None,
            status: Status::FailedToStart,
            exit_code: None,
            signal: None,
            ended_by: None,
            // A node's cgroup has used nothing before its first process.
            usage_at_start: if usage_known {
                self.usage(node)
            } else {
                cgroup::Usage::default()
            },
            usage_at_end: None,
            bytes_at_start: self.bytes.get(node).copied().unwrap_or_default(),
            bytes_at_end: None,
        };
        match started {
            Ok(pid) => {
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
                self.procs.push(p);
                let _ = std::fs::write(&stderr, format!("p2plab: {e}\n"));
                Err(format!("node {}: {e}", self.exp.plan.nodes[node].name))
            }
        }
    }

    fn finish(&mut self, i: usize, status: WaitStatus) {
        let now = self.t0.elapsed();
        let node = self.procs[i].node;
        let usage = self.usage(node);
        let bytes = self.bytes.get(node).copied().unwrap_or_default();
        let p = &mut self.procs[i];
        p.end = Some(now);
        p.usage_at_end = Some(usage);
        p.bytes_at_end = Some(bytes);
        match (status, p.ended_by) {
            (WaitStatus::Exited(..), Some(sig)) => {
                p.status = Status::Killed;
                p.signal = Some(sig as i32);
            }
            (WaitStatus::Exited(_, code), None) => {
                p.status = Status::Exited;
                p.exit_code = Some(code);
            }
            (WaitStatus::Signaled(_, sig, _), _) => {
                p.status = Status::Killed;
                p.signal = Some(sig as i32);
            }
            _ => return,
        }
        self.ended(node);
    }

    /// Node `node`'s process is no longer running.
    fn ended(&mut self, node: usize) {
        if let Some(i) = self.running[node].take() {
            self.running_by_role[self.procs[i].role] -= 1;
        }
    }

    /// Collects the processes that ended; `block` waits for each still running one.
    fn reap(&mut self, block: bool) {
        for node in 0..self.running.len() {
            let Some(i) = self.running[node] else {
                continue;
            };
            let Some(pid) = self.procs[i].pid else {
                continue;
            };
            let flags = if block {
                None
            } else {
                Some(WaitPidFlag::WNOHANG)
            };
            match waitpid(Pid::from_raw(pid as i32), flags) {
                Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => self.finish(i, s),
                Ok(_) => {}
                // Not our child any more (reaped elsewhere): it has ended, how is unknown.
                Err(_) => {
                    self.ended(node);
                    self.procs[i].end = Some(self.t0.elapsed());
                    self.procs[i].status = Status::Killed;
                }
            }
        }
    }

    fn signal(&mut self, nodes: &[usize], sig: Signal) {
        for &n in nodes {
            let Some(i) = self.running[n] else { continue };
            if let Some(pid) = self.procs[i].pid {
                if matches!(sig, Signal::SIGTERM | Signal::SIGKILL) {
                    self.procs[i].ended_by.get_or_insert(sig);
                }
                let _ = killpg(Pid::from_raw(pid as i32), sig);
            }
        }
    }

    fn counts(&self) -> Counts {
        let mut c = Counts {
            started: self.procs.len(),
            ..Counts::default()
        };
        for p in &self.procs {
            match p.status {
                Status::Running => c.running += 1,
                Status::Exited if p.exit_code == Some(0) => c.done += 1,
                Status::Exited | Status::FailedToStart => c.failed += 1,
                Status::Killed => c.done += 1,
            }
        }
        c
    }

    fn poll(&mut self, net: &mut dyn Network) {
        if let Some(b) = net.bytes() {
            self.bytes = b;
        }
        let mut found = Vec::new();
        let exp = self.exp;
        self.tail
            .poll(|role| &exp.roles[role].metrics[..], &mut found);
        let now = self.t0.elapsed();
        if let Some(m) = &exp.stop.metric {
            for s in found
                .iter()
                .filter(|s| s.role == m.role && s.name == m.name)
            {
                self.stop_metric[s.node] = s.value;
            }
        }
        self.samples.extend(found.into_iter().map(|s| (now, s)));
    }

    fn metric_reached(&self) -> bool {
        let Some(m) = &self.exp.stop.metric else {
            return false;
        };
        let nodes = &self.exp.roles[m.role].nodes;
        nodes
            .iter()
            .all(|&node| self.stop_metric[node] >= m.at_least)
    }

    fn record(&self, p: &Proc) -> Process {
        let exp = self.exp;
        let node = &exp.plan.nodes[p.node];
        let usage = p.usage_at_end.unwrap_or_else(|| self.usage(p.node));
        let bytes = p
            .bytes_at_end
            .unwrap_or_else(|| self.bytes.get(p.node).copied().unwrap_or_default());
        let measured = p.pid.is_some();
        let secs = |us: u64| us as f64 / 1e6;
        Process {
            node: node.name.clone(),
            role: exp.roles[p.role].name.clone(),
            group: exp.plan.groups[node.group].name.clone(),
            ip: node.ip.to_string(),
            pid: p.pid,
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
        }
    }
}

/// Runs the prepare commands, in the run directory, each to completion.
fn prepare(exp: &Experiment, run_dir: &Path) -> Result<(), RunError> {
    for (i, argv) in exp.prepare_commands(run_dir).iter().enumerate() {
        let log = run_dir.join("logs").join(format!("prepare-{i}.log"));
        let out = std::fs::File::create(&log).map_err(setup_err(&log))?;
        let err = out.try_clone().map_err(setup_err(&log))?;
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(run_dir)
            .stdout(out)
            .stderr(err)
            .status();
        let status = match status {
            Ok(s) if s.success() => continue,
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        return Err(RunError::Prepare {
            command: argv.join(" "),
            status,
            log,
        });
    }
    Ok(())
}

/// Runs `exp` to its stop rule. Interrupted by a stop signal (see [`signals`]), it stops
/// gracefully (hurried by a second one) and still returns every record.
pub fn run(exp: &Experiment, opts: &Options, net: &mut dyn Network) -> Result<Outcome, RunError> {
    let logs = opts.run_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(setup_err(&logs))?;
    let _ = crate::spawn::raise_nofile();
    prepare(exp, &opts.run_dir)?;

    let n = exp.plan.nodes.len();
    let mut groups: Vec<Option<NodeGroup>> = (0..n).map(|_| None).collect();
    for role in &exp.roles {
        for &node in &role.nodes {
            if let Some(run) = opts.cgroups {
                let g = run
                    .node(
                        &exp.plan.nodes[node].name,
                        role.cpu_percent,
                        role.memory_bytes,
                    )
                    .map_err(|error| RunError::Cgroup {
                        role: role.name.clone(),
                        error,
                    })?;
                groups[node] = Some(g);
            }
            let dir = exp.node_dir(&opts.run_dir, node);
            std::fs::create_dir_all(&dir).map_err(setup_err(&dir))?;
            // Made now, not at the start: creating files costs the file system more than
            // starting the process does.
            for ext in ["out", "err"] {
                let log = log_path(exp, &opts.run_dir, node, ext);
                std::fs::File::create(&log).map_err(setup_err(&log))?;
            }
            for file in &role.files {
                let (from, to) = (
                    opts.run_dir.join(file),
                    dir.join(file.file_name().unwrap_or(file.as_os_str())),
                );
                place_file(&from, &to).map_err(setup_err(&from))?;
            }
        }
    }

    let mut e = Engine {
        exp,
        opts,
        launcher: Launcher::new(&opts.shim),
        groups,
        procs: Vec::with_capacity(exp.starts.len()),
        running: vec![None; n],
        started: vec![false; n],
        running_by_role: vec![0; exp.roles.len()],
        stop_metric: vec![f64::NEG_INFINITY; n],
        bytes: net.bytes().unwrap_or_default(),
        tail: Tail::default(),
        samples: Vec::new(),
        t0: Instant::now(),
    };
    // Reap when a child has ended (SIGCHLD), and at every poll in case a signal merged.
    let child_ended = Arc::new(AtomicBool::new(true));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGCHLD, Arc::clone(&child_ended));
    let mut pending_by_role = vec![0usize; exp.roles.len()];
    for s in &exp.starts {
        pending_by_role[s.role] += 1;
    }
    let mut progress = Progress::new(exp.starts.len(), opts.quiet);
    let (mut next_start, mut next_event) = (0, 0);
    let mut last_poll = Instant::now();
    let mut last_watch = Instant::now();
    let cap = Duration::from_micros(exp.stop.after_us);
    let stop = loop {
        let now = e.t0.elapsed();
        if let Some(sig) = opts.stop.signal() {
            break StopReason::Interrupted(sig);
        }
        let mut aborted = None;
        let first_due = next_start;
        while exp
            .starts
            .get(next_start)
            .is_some_and(|s| s.at_us <= now.as_micros() as u64)
        {
            pending_by_role[exp.starts[next_start].role] -= 1;
            next_start += 1;
        }
        let due: Vec<(usize, usize)> = exp.starts[first_due..next_start]
            .iter()
            .map(|s| (s.role, s.node))
            .collect();
        if !due.is_empty() {
            let failed = e.start_all(&due).into_iter().find_map(Result::err);
            if let (Some(why), FailurePolicy::Abort) = (failed, exp.on_failure) {
                aborted = Some(why);
            }
        }
        if let Some(why) = aborted {
            break StopReason::Aborted(why);
        }
        while let Some(ev) = exp
            .events
            .get(next_event)
            .filter(|ev| ev.at_us <= now.as_micros() as u64)
        {
            next_event += 1;
            match &ev.action {
                Action::Start => {
                    for &node in &ev.nodes {
                        if let Some(role) = exp.roles_of(node).next() {
                            let _ = e.start(role, node);
                        }
                    }
                }
                Action::Stop => e.signal(&ev.nodes, Signal::SIGTERM),
                Action::Kill => e.signal(&ev.nodes, Signal::SIGKILL),
                Action::Pause => e.signal(&ev.nodes, Signal::SIGSTOP),
                Action::Resume => e.signal(&ev.nodes, Signal::SIGCONT),
                network => {
                    if let Err(why) = net.apply(network, &ev.nodes) {
                        eprintln!(
                            "p2plab: event at {:.3}s failed: {why}",
                            ev.at_us as f64 / 1e6
                        );
                    }
                }
            }
        }
        let polling = last_poll.elapsed() >= POLL;
        if child_ended.swap(false, Ordering::Relaxed) || polling {
            e.reap(false);
        }
        if polling {
            last_poll = Instant::now();
            e.poll(net);
            progress.update(now, e.counts());
        }
        if last_watch.elapsed() >= WATCH {
            last_watch = Instant::now();
            if let Some(why) = net.failure() {
                break StopReason::NetworkFailed(why);
            }
        }

        let all_started = next_start == exp.starts.len();
        let done = |r: &usize| pending_by_role[*r] == 0 && e.running_by_role[*r] == 0;
        if !exp.stop.exited.is_empty() {
            if exp.stop.exited.iter().all(done) {
                break StopReason::RolesExited;
            }
        } else if exp.stop.metric.is_none()
            && all_started
            && next_event == exp.events.len()
            && (0..exp.roles.len()).all(|r| done(&r))
        {
            break StopReason::AllExited;
        }
        if e.metric_reached() {
            break StopReason::MetricReached;
        }
        if now >= cap {
            break StopReason::DurationCap;
        }
        let next = [
            exp.starts.get(next_start).map(|s| s.at_us),
            exp.events.get(next_event).map(|ev| ev.at_us),
        ]
        .into_iter()
        .flatten()
        .map(|us| Duration::from_micros(us).saturating_sub(now))
        .fold(TICK, Duration::min);
        std::thread::sleep(next);
    };

    // Stop what is left: SIGTERM, a grace period (cut short by a second stop signal), then
    // the kill.
    let left: Vec<usize> = (0..n).filter(|&node| e.running[node].is_some()).collect();
    e.signal(&left, Signal::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while e.running.iter().any(Option::is_some) && Instant::now() < deadline && !opts.stop.hurried()
    {
        std::thread::sleep(TICK);
        e.reap(false);
    }
    let left: Vec<usize> = (0..n).filter(|&node| e.running[node].is_some()).collect();
    e.signal(&left, Signal::SIGCONT);
    e.signal(&left, Signal::SIGKILL);
    e.reap(true);
    if let Some(run) = opts.cgroups {
        let _ = run.kill_all();
    }
    e.poll(net);
    progress.finish();

    let duration_s = e.t0.elapsed().as_secs_f64();
    let processes = e.procs.iter().map(|p| e.record(p)).collect();
    let metrics = e
        .samples
        .iter()
        .map(|(t, s)| MetricSample {
            time_s: t.as_secs_f64(),
            node: exp.plan.nodes[s.node].name.clone(),
            role: exp.roles[s.role].name.clone(),
            name: s.name.clone(),
            value: s.value,
        })
        .collect();
    Ok(Outcome {
        processes,
        metrics,
        duration_s,
        stop,
    })
}
