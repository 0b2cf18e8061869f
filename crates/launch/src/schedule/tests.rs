//! The scheduler driven without root, real processes or real time: a fake host whose
//! processes follow a script on a virtual clock, and a fake network that records the
//! changes it is asked for. The tests check what the loop promises: starts and events in
//! time order on their nodes, network changes with the nodes they name, each stop rule
//! with its reason and the stop of what is left, and the process records as the host
//! reported them; and for cluster mode, a share of the nodes, the caller's stop rule and
//! requests, the observer, and a time 0 on the host's clock.

use super::host::{Exit, Host, Job, Reaped};
use super::{setup, Network, Observer, Options, Outcome, Scheduler, Start, StopReason};
use crate::cpu::Ticks;
use crate::signals::Stop;
use experiment::{Experiment, NetChange};
use nix::sys::signal::Signal;
use results::{MetricSample, Process, Status};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The fake host's clock when the fake run is created (its virtual time 0).
fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// How a node's process behaves.
#[derive(Clone, Default)]
struct Script {
    /// Exits with `code` (or dies by `dies_by`) this long after it started; `None`: runs
    /// until signalled.
    runs_for: Option<Duration>,
    code: i32,
    /// A signal of its own (a crash) ends it instead of an exit.
    dies_by: Option<Signal>,
    /// SIGTERM does not end it (SIGKILL does).
    ignores_term: bool,
    /// Written to its stdout log when it starts.
    output: &'static str,
    /// Its start fails.
    fails: bool,
    /// The host reports its start this much later than asked (a busy machine).
    lags: Duration,
}

/// What the fakes saw, with the virtual time they saw it at.
#[derive(Default)]
struct Log {
    starts: Vec<(Duration, String)>,
    signals: Vec<(Duration, String, Signal)>,
    applied: Vec<(Duration, NetChange)>,
    /// `processes.csv` and `metrics.csv` as they were at the times asked for.
    files: Vec<(Duration, String, String)>,
    /// What the observer was shown, in order.
    observed: Vec<Seen>,
}

/// One call to the observer.
#[derive(Debug)]
enum Seen {
    Started(usize, u32, f64),
    /// The row's `Debug` text.
    Ended(String),
    Sample(String),
}

/// An observer that records what it is shown.
#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl Observer for Recorder {
    fn started(&self, node: usize, pid: u32, at_s: f64) {
        self.0.lock().unwrap().push(Seen::Started(node, pid, at_s));
    }
    fn ended(&self, row: &Process) {
        self.0.lock().unwrap().push(Seen::Ended(format!("{row:?}")));
    }
    fn sample(&self, sample: &MetricSample) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::Sample(format!("{sample:?}")));
    }
}

struct FakeProc {
    pid: u32,
    node: usize,
    /// When and how it ends, if it does.
    exit: Option<(Duration, Exit)>,
    ignores_term: bool,
}

struct FakeHost {
    clock: Rc<Cell<Duration>>,
    log: Rc<RefCell<Log>>,
    names: Vec<String>,
    scripts: HashMap<usize, Script>,
    procs: Vec<FakeProc>,
    /// Stop signals that arrive at a given time.
    interrupts: Vec<(Duration, i32)>,
    /// Stop requests made at a given time.
    requests: Vec<(Duration, String)>,
    stop: Stop,
    /// Time 0 of the run, on the host's clock (`epoch() + clock`).
    t0: SystemTime,
    /// The result directory, and when to read its files.
    run_dir: std::path::PathBuf,
    peeks: Vec<Duration>,
}

impl FakeHost {
    fn proc(&mut self, pid: u32) -> &mut FakeProc {
        self.procs.iter_mut().find(|p| p.pid == pid).unwrap()
    }
}

impl Host for FakeHost {
    fn start(&mut self, jobs: &[Job<'_>]) -> Vec<(std::io::Result<u32>, Duration)> {
        let (now, since_t0) = (self.clock.get(), self.now());
        jobs.iter()
            .map(|job| {
                let script = self.scripts.get(&job.node).cloned().unwrap_or_default();
                if script.fails {
                    return (
                        Err(std::io::Error::other("no such program")),
                        since_t0 + script.lags,
                    );
                }
                std::fs::write(&job.stdout, script.output).unwrap();
                let pid = 100 + self.procs.len() as u32;
                self.procs.push(FakeProc {
                    pid,
                    node: job.node,
                    exit: script.runs_for.map(|d| {
                        let how = script.dies_by.map_or(Exit::Code(script.code), Exit::Signal);
                        (now + d, how)
                    }),
                    ignores_term: script.ignores_term,
                });
                self.log
                    .borrow_mut()
                    .starts
                    .push((now, job.name.to_string()));
                (Ok(pid), since_t0 + script.lags)
            })
            .collect()
    }

    fn signal(&mut self, pid: u32, sig: Signal) {
        let now = self.clock.get();
        let p = self.proc(pid);
        let node = p.node;
        let ends = sig == Signal::SIGKILL || (sig == Signal::SIGTERM && !p.ignores_term);
        if ends && p.exit.is_none_or(|(t, _)| t > now) {
            p.exit = Some((now, Exit::Signal(sig)));
        }
        let name = self.names[node].clone();
        self.log.borrow_mut().signals.push((now, name, sig));
    }

    fn reap(&mut self, pid: u32, _block: bool) -> Reaped {
        let now = self.clock.get();
        match self.proc(pid).exit {
            Some((t, exit)) if t <= now => Reaped::Ended(exit),
            _ => Reaped::Running,
        }
    }

    fn child_ended(&mut self) -> bool {
        true
    }

    fn usage(&self, node: usize) -> cgroup::Usage {
        cgroup::Usage {
            memory_peak_bytes: Some(2048 * (node as u64 + 1)),
            ..Default::default()
        }
    }

    /// Two CPUs, busy a quarter of the time.
    fn cpu_ticks(&self) -> Option<Ticks> {
        let t = self.clock.get().as_millis() as u64;
        Some(Ticks {
            busy: 1000 + t / 2,
            total: 8000 + 2 * t,
            cpus: 2,
        })
    }

    fn kill_all(&mut self) {}

    fn now(&self) -> Duration {
        self.wall().duration_since(self.t0).unwrap()
    }

    fn sleep(&mut self, d: Duration) {
        let now = self.clock.get() + d;
        self.clock.set(now);
        for &(at, sig) in &self.interrupts {
            if at <= now && at > now - d {
                self.stop.arrived(sig);
            }
        }
        for (at, why) in &self.requests {
            if *at <= now && *at > now - d {
                self.stop.request(why.clone());
            }
        }
        for &at in self.peeks.iter().filter(|&&at| at <= now && at > now - d) {
            let read = |f| std::fs::read_to_string(self.run_dir.join(f)).unwrap();
            let files = (at, read("processes.csv"), read("metrics.csv"));
            self.log.borrow_mut().files.push(files);
        }
    }

    fn wall(&self) -> SystemTime {
        epoch() + self.clock.get()
    }

    fn begin_at(&mut self, t0: SystemTime) {
        self.t0 = t0;
    }
}

struct FakeNet {
    clock: Rc<Cell<Duration>>,
    log: Rc<RefCell<Log>>,
    nodes: usize,
    /// The network fails from this time on.
    fails_at: Option<Duration>,
}

impl Network for FakeNet {
    fn apply(&mut self, change: &NetChange) -> Result<(), String> {
        let now = self.clock.get();
        self.log.borrow_mut().applied.push((now, change.clone()));
        Ok(())
    }

    /// Each node has sent a byte and received two per millisecond so far.
    fn bytes(&mut self) -> Option<Vec<(u64, u64)>> {
        let t = self.clock.get().as_millis() as u64;
        Some(vec![(t, 2 * t); self.nodes])
    }

    fn failure(&mut self) -> Option<String> {
        self.fails_at
            .filter(|&t| self.clock.get() >= t)
            .map(|_| "the delay engine exited".into())
    }
}

/// Five nodes: `a-1`..`a-3`, `b-1`, `b-2`.
const TOPOLOGY: &str = "topology:
  profiles: {p: {up: 10mbit, down: 10mbit, latency: 1ms}}
  defaults: {profile: p}
  address_plan: {base: 10.0.0.0/16}
  groups: [{name: a, nodes: 3}, {name: b, nodes: 2}]
";

/// A run of an experiment in a scratch result directory.
struct Run {
    dir: tempfile::TempDir,
    exp: Experiment,
    scripts: HashMap<usize, Script>,
    fails_at: Option<Duration>,
    interrupts: Vec<(Duration, i32)>,
    requests: Vec<(Duration, String)>,
    peeks: Vec<Duration>,
    /// The nodes this host runs (by name); `None`: all.
    local: Option<Vec<&'static str>>,
    stop_rule_elsewhere: bool,
    start: Start,
}

impl Run {
    /// `body` is the experiment file after its topology.
    fn new(body: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exp.yaml");
        std::fs::write(&file, format!("{TOPOLOGY}{body}")).unwrap();
        let exp = experiment::load(&file).unwrap();
        Run {
            dir,
            exp,
            scripts: HashMap::new(),
            fails_at: None,
            interrupts: Vec::new(),
            requests: Vec::new(),
            peeks: Vec::new(),
            local: None,
            stop_rule_elsewhere: false,
            start: Start::Now,
        }
    }

    fn node(&self, name: &str) -> usize {
        self.exp.plan.link.node_by_name(name).unwrap()
    }

    /// Node `name`'s process behaves as `script`.
    fn script(mut self, name: &str, script: Script) -> Run {
        self.scripts.insert(self.node(name), script);
        self
    }

    /// Sets up the nodes, drives the scheduler to its end; returns what it produced and
    /// what the fakes saw.
    fn drive(&mut self) -> (Outcome, Log) {
        let run_dir = self.dir.path().join("run");
        let stop = Stop::none();
        let local: Option<Vec<usize>> = self
            .local
            .as_ref()
            .map(|names| names.iter().map(|n| self.node(n)).collect());
        let recorder = Recorder::default();
        let opts = Options {
            run_dir: run_dir.clone(),
            shim: "/nonexistent/libp2plab_shim.so".into(),
            cgroups: None,
            quiet: true,
            stop: &stop,
            local: local.as_deref(),
            run_prepare: true,
            stop_rule_elsewhere: self.stop_rule_elsewhere,
            start: self.start,
            observer: Some(&recorder),
        };
        setup::prepare(&self.exp, &opts).unwrap();
        let out = results::Writer::create(&run_dir).unwrap();
        let clock = Rc::new(Cell::new(Duration::ZERO));
        let log = Rc::new(RefCell::new(Log::default()));
        let host = FakeHost {
            clock: Rc::clone(&clock),
            log: Rc::clone(&log),
            names: self
                .exp
                .plan
                .link
                .nodes
                .iter()
                .map(|n| n.name.clone())
                .collect(),
            scripts: std::mem::take(&mut self.scripts),
            procs: Vec::new(),
            interrupts: std::mem::take(&mut self.interrupts),
            requests: std::mem::take(&mut self.requests),
            stop: stop.clone(),
            t0: epoch(),
            run_dir,
            peeks: std::mem::take(&mut self.peeks),
        };
        let mut net = FakeNet {
            clock,
            log: Rc::clone(&log),
            nodes: self.exp.plan.link.nodes.len(),
            fails_at: self.fails_at,
        };
        let outcome = Scheduler::new(&self.exp, &opts, host, out, &mut net).run(&mut net);
        drop(net);
        let mut log = Rc::try_unwrap(log).ok().unwrap().into_inner();
        log.observed = recorder.0.into_inner().unwrap();
        (outcome, log)
    }
}

fn row<'a>(outcome: &'a Outcome, node: &str) -> &'a Process {
    outcome.processes.iter().find(|p| p.node == node).unwrap()
}

fn runs_for(ms_: u64, code: i32) -> Script {
    Script {
        runs_for: Some(ms(ms_)),
        code,
        ..Script::default()
    }
}

#[test]
fn starts_and_events_come_in_time_order_to_their_nodes() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: a, command: 'true', start: {at: 1s, every: 500ms}}
stop: {after: 5s}
events:
  - {at: 3500ms, action: set_delay, from: a, to: b, delay: 80ms}
  - {at: 2s, nodes: a-2, action: pause}
  - {at: 2500ms, nodes: b, action: cut}
  - {at: 3s, nodes: a-2, action: resume}
  - {at: 4s, nodes: 'a[1-2]', action: stop}
",
    );
    let b = run.node("b-1");
    let group = |name| run.exp.plan.link.group_by_name(name).unwrap();
    let (from, to) = (group("a"), group("b"));
    let (outcome, log) = run.drive();
    assert_eq!(
        log.starts,
        [
            (ms(1000), "a-1".to_string()),
            (ms(1500), "a-2".to_string()),
            (ms(2000), "a-3".to_string()),
        ]
    );
    let signals: Vec<_> = log
        .signals
        .iter()
        .map(|(t, n, s)| (t.as_millis(), n.as_str(), *s))
        .collect();
    assert_eq!(
        signals[..4],
        [
            (2000, "a-2", Signal::SIGSTOP),
            (3000, "a-2", Signal::SIGCONT),
            (4000, "a-1", Signal::SIGTERM),
            (4000, "a-2", Signal::SIGTERM),
        ]
    );
    // At the duration cap, only a-3 was left to stop.
    assert_eq!(signals[4..], [(5000, "a-3", Signal::SIGTERM)]);
    assert_eq!(
        log.applied,
        [
            (ms(2500), NetChange::Cut(vec![b, b + 1])),
            (
                ms(3500),
                NetChange::SetDelay {
                    from,
                    to,
                    delay_us: Some(80_000),
                    loss: None
                }
            ),
        ]
    );
    assert_eq!(outcome.stop, StopReason::DurationCap);
    for (node, end) in [("a-1", 4.0), ("a-2", 4.0), ("a-3", 5.0)] {
        let p = row(&outcome, node);
        assert_eq!(
            (p.status, p.signal, p.exit_code),
            (Status::Stopped, Some(15), None),
            "{node}"
        );
        assert!(
            p.end_s.unwrap() >= end && p.end_s.unwrap() < end + 0.1,
            "{p:?}"
        );
    }
}

#[test]
fn the_stop_rule_roles_exited_stops_the_others() {
    let mut run = Run::new(
        "roles:
  - {name: seed, nodes: a-1, command: 'true'}
  - {name: helper, nodes: a-2, command: 'true'}
  - {name: leech, nodes: b, command: 'true', start: {at: 500ms}}
stop: {exited: [leech, helper], after: 1m}
",
    )
    .script("a-2", runs_for(2500, 0))
    .script("b-1", runs_for(1000, 0))
    .script("b-2", runs_for(1500, 0));
    let (outcome, log) = run.drive();
    assert_eq!(outcome.stop, StopReason::RolesExited);
    for (node, end) in [("b-1", 1.5), ("b-2", 2.0), ("a-2", 2.5)] {
        let p = row(&outcome, node);
        assert_eq!(
            (p.status, p.exit_code, p.signal, p.end_s),
            (Status::Exited, Some(0), None, Some(end))
        );
    }
    let seed = row(&outcome, "a-1");
    assert_eq!((seed.status, seed.signal), (Status::Stopped, Some(15)));
    assert_eq!(
        log.signals,
        [(ms(2500), "a-1".to_string(), Signal::SIGTERM)],
        "the seed is stopped once both roles are done, and only it"
    );
}

#[test]
fn every_process_exited_ends_a_run_without_roles_in_its_stop_rule() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: a, command: 'true'}
stop: {after: 1m}
events:
  - {at: 200ms, nodes: a-3, action: stop}
",
    )
    .script("a-1", runs_for(700, 0))
    .script("a-2", runs_for(900, 3))
    .script(
        "a-3",
        Script {
            ignores_term: true,
            ..runs_for(1000, 0)
        },
    );
    let (outcome, log) = run.drive();
    assert_eq!(outcome.stop, StopReason::AllExited);
    assert_eq!(outcome.duration_s, 1.0);
    let ended = |n| {
        let p = row(&outcome, n);
        (p.status, p.exit_code, p.signal, p.end_s)
    };
    assert_eq!(ended("a-1"), (Status::Exited, Some(0), None, Some(0.7)));
    assert_eq!(ended("a-2"), (Status::Exited, Some(3), None, Some(0.9)));
    // Sent SIGTERM by the run, it counts as stopped however it then exits.
    assert_eq!(ended("a-3"), (Status::Stopped, None, Some(15), Some(1.0)));
    assert_eq!(log.signals.len(), 1, "nothing was left to stop at the end");
}

#[test]
fn a_signal_the_run_did_not_send_is_a_failure_and_one_it_sent_a_stop() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: a, command: 'true'}
stop: {after: 1m}
events:
  - {at: 300ms, nodes: a-2, action: kill}
",
    )
    .script(
        "a-1",
        Script {
            dies_by: Some(Signal::SIGSEGV),
            ..runs_for(500, 0)
        },
    )
    .script(
        "a-3",
        Script {
            dies_by: Some(Signal::SIGABRT),
            ..runs_for(800, 0)
        },
    );
    let (outcome, _) = run.drive();
    assert_eq!(outcome.stop, StopReason::AllExited);
    let ended = |n| {
        let p = row(&outcome, n);
        (p.status, p.signal, p.end_s, p.failed())
    };
    assert_eq!(ended("a-1"), (Status::Killed, Some(11), Some(0.5), true));
    assert_eq!(ended("a-2"), (Status::Stopped, Some(9), Some(0.3), false));
    assert_eq!(ended("a-3"), (Status::Killed, Some(6), Some(0.8), true));
}

/// One process, on `b-1`, that SIGTERM does not end; the run stops `after` at the latest.
fn stubborn(after: &str) -> Run {
    Run::new(&format!(
        "roles:
  - {{name: peer, nodes: b-1, command: 'true'}}
stop: {{after: {after}}}
"
    ))
    .script(
        "b-1",
        Script {
            ignores_term: true,
            ..Script::default()
        },
    )
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut run = stubborn("1s");
    let (outcome, log) = run.drive();
    assert_eq!(outcome.stop, StopReason::DurationCap);
    let signals: Vec<_> = log
        .signals
        .iter()
        .map(|(t, _, s)| (t.as_millis(), *s))
        .collect();
    assert_eq!(
        signals,
        [
            (1000, Signal::SIGTERM),
            (3000, Signal::SIGCONT),
            (3000, Signal::SIGKILL)
        ]
    );
    let p = row(&outcome, "b-1");
    assert_eq!(
        (p.status, p.signal, p.end_s),
        (Status::Stopped, Some(9), Some(3.0))
    );
}

#[test]
fn a_stop_signal_interrupts_and_a_second_one_skips_the_grace_period() {
    for (signals, killed_at) in [(vec![15], 3000), (vec![15, 2], 1000)] {
        let mut run = stubborn("1m");
        run.interrupts = signals.iter().map(|&s| (ms(1000), s)).collect();
        let (outcome, log) = run.drive();
        assert_eq!(outcome.stop, StopReason::Interrupted(15));
        assert_eq!(outcome.stop.to_string(), "interrupted by SIGTERM");
        let kill = log.signals.iter().find(|s| s.2 == Signal::SIGKILL).unwrap();
        assert_eq!(kill.0, ms(killed_at), "after signals {signals:?}");
    }
}

#[test]
fn a_failed_start_goes_on_or_aborts_as_on_failure_says() {
    for (policy, stop) in [
        ("continue", StopReason::DurationCap),
        (
            "abort",
            StopReason::Aborted("node a-2: no such program".into()),
        ),
    ] {
        let mut run = Run::new(&format!(
            "roles:
  - {{name: peer, nodes: a, command: 'true', start: {{at: 100ms, every: 100ms}}}}
stop: {{after: 2s}}
on_failure: {policy}
"
        ))
        .script(
            "a-2",
            Script {
                fails: true,
                ..Script::default()
            },
        );
        let log_file = run.dir.path().join("run/logs/a-2.err");
        let (outcome, log) = run.drive();
        assert_eq!(outcome.stop, stop, "{policy}");
        let p = row(&outcome, "a-2");
        assert_eq!(
            (p.status, p.pid, p.start_s, p.end_s),
            (Status::FailedToStart, None, 0.2, Some(0.2))
        );
        assert_eq!(
            std::fs::read_to_string(log_file).unwrap(),
            "p2plab: no such program\n"
        );
        let started: Vec<_> = log.starts.iter().map(|(_, n)| n.as_str()).collect();
        let expected: &[&str] = if policy == "abort" {
            &["a-1"]
        } else {
            &["a-1", "a-3"]
        };
        assert_eq!(started, expected, "{policy}");
    }
}

#[test]
fn a_network_failure_ends_the_run() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: a, command: 'true'}
stop: {after: 1m}
",
    );
    run.fails_at = Some(ms(1530));
    let (outcome, log) = run.drive();
    assert_eq!(
        outcome.stop,
        StopReason::NetworkFailed("the delay engine exited".into())
    );
    // The network is watched every 100 ms.
    let stopped = log.signals[0].0;
    assert!(stopped >= ms(1530) && stopped <= ms(1640), "{stopped:?}");
    assert_eq!(log.signals.len(), 3, "every process is stopped");
}

#[test]
fn the_stop_metric_ends_the_run_once_every_node_of_its_role_reached_it() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: 'a[1-2]', command: 'true', start: {at: 0s, every: 2200ms}}
  - {name: other, nodes: b-1, command: 'true'}
stop: {metric: {name: progress, role: peer, at_least: 100}, after: 1m}
",
    )
    .script(
        "a-1",
        Script {
            output: "P2PLAB progress=100\n",
            ..Script::default()
        },
    )
    .script(
        "a-2",
        Script {
            output: "P2PLAB progress=100 peers=4\n",
            ..Script::default()
        },
    )
    .script(
        "b-1",
        Script {
            output: "P2PLAB progress=100\n",
            ..Script::default()
        },
    );
    let (outcome, log) = run.drive();
    assert_eq!(outcome.stop, StopReason::MetricReached);
    // Logs are read every 500 ms: a-2, started at 2.2 s, is seen at 2.5 s.
    assert_eq!(log.signals[0].0, ms(2500));
    let samples: Vec<_> = outcome
        .metrics
        .iter()
        .map(|m| {
            (
                m.time_s,
                m.node.as_str(),
                m.role.as_str(),
                m.name.as_str(),
                m.value,
            )
        })
        .collect();
    assert_eq!(
        samples,
        [
            (0.5, "a-1", "peer", "progress", 100.0),
            (0.5, "b-1", "other", "progress", 100.0),
            (2.5, "a-2", "peer", "progress", 100.0),
            (2.5, "a-2", "peer", "peers", 4.0),
        ]
    );
}

#[test]
fn records_hold_what_the_node_used_while_its_process_ran() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: b-2, command: 'true', start: {at: 700ms}}
stop: {after: 1m}
",
    )
    .script("b-2", runs_for(1000, 0));
    let b2 = run.node("b-2");
    let ip = run.exp.plan.link.nodes[b2].ip.to_string();
    let (outcome, _) = run.drive();
    let p = row(&outcome, "b-2");
    assert_eq!(
        (p.role.as_str(), p.group.as_str(), p.ip.as_str(), p.pid),
        ("peer", "b", ip.as_str(), Some(100))
    );
    assert_eq!((p.start_s, p.end_s), (0.7, Some(1.7)));
    // Counters are read every 500 ms: at 0.5 s before the start, at 1.5 s before the end.
    assert_eq!((p.bytes_sent, p.bytes_received), (Some(1000), Some(2000)));
    assert_eq!(p.peak_rss_kb, Some(2 * (b2 as u64 + 1)));
    assert_eq!(
        (p.cpu_user_s, p.cpu_sys_s),
        (None, None),
        "no cgroups: not measured"
    );
}

#[test]
fn each_process_records_its_planned_start_and_the_run_the_hosts_cpu() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: a, command: 'true', start: {at: 1s, every: 500ms}}
  - {name: other, nodes: b-1, command: 'true'}
stop: {after: 4s}
events:
  - {at: 2500ms, nodes: b-1, action: start}
",
    )
    .script(
        "a-2",
        Script {
            lags: ms(300),
            ..Script::default()
        },
    )
    .script("b-1", runs_for(100, 0));
    let (outcome, _) = run.drive();
    // rows come in the order the processes ended: put them in start order
    let mut planned: Vec<_> = outcome
        .processes
        .iter()
        .map(|p| (p.node.as_str(), p.planned_s, p.start_s))
        .collect();
    planned.sort_by(|a, b| a.2.total_cmp(&b.2));
    // b-1 starts on schedule at 0, then again by the event, planned at the event's time.
    assert_eq!(
        planned,
        [
            ("b-1", Some(0.0), 0.0),
            ("a-1", Some(1.0), 1.0),
            ("a-2", Some(1.5), 1.8),
            ("a-3", Some(2.0), 2.0),
            ("b-1", Some(2.5), 2.5),
        ]
    );
    let cpu = outcome.host_cpu.unwrap();
    assert_eq!((cpu.cpus, cpu.mean_busy, cpu.max_busy), (2, 0.25, 0.25));
    // About once a second (the loop reads logs every 0.5 s), and at the end, once the
    // last process was stopped (SIGTERM at 4 s, reaped a tick later).
    let times: Vec<f64> = cpu.samples.iter().map(|s| s.0).collect();
    assert_eq!(times, [1.0, 2.0, 3.0, 4.0, 4.02]);
    assert!(cpu.samples.iter().all(|s| s.1 == 0.25), "{:?}", cpu.samples);
}

/// a-1 prints a sample and exits at 1 s, a-2 runs until the end (5 s), b-1 fails to start.
fn sample_exit_and_failure() -> Run {
    Run::new(
        "roles:
  - {name: peer, nodes: 'a[1-2]', command: 'true'}
  - {name: gone, nodes: b-1, command: 'true'}
stop: {after: 5s}
",
    )
    .script(
        "a-1",
        Script {
            output: "P2PLAB progress=50\n",
            ..runs_for(1000, 0)
        },
    )
    .script(
        "b-1",
        Script {
            fails: true,
            ..Script::default()
        },
    )
}

#[test]
fn rows_and_samples_are_written_as_the_run_goes() {
    let mut run = sample_exit_and_failure();
    run.peeks = vec![ms(3000)];
    let run_dir = run.dir.path().join("run");
    let (outcome, log) = run.drive();
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect()
    };
    let (at, processes, metrics) = &log.files[0];
    assert_eq!(*at, ms(3000));
    // b-1 failed to start at 0 s, a-1 ended at 1 s; a-2 still runs.
    assert_eq!(lines(processes), ["node,role", "b-1,gone", "a-1,peer"]);
    assert_eq!(lines(metrics), ["time_s,node", "0.5,a-1"]);

    // At the end, the files hold every row, as the outcome has them.
    assert!(outcome.lost.is_empty());
    let processes = std::fs::read_to_string(run_dir.join("processes.csv")).unwrap();
    assert_eq!(
        lines(&processes),
        ["node,role", "b-1,gone", "a-1,peer", "a-2,peer"]
    );
    let nodes: Vec<&str> = outcome.processes.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes, ["b-1", "a-1", "a-2"]);
    assert_eq!(row(&outcome, "a-2").status, Status::Stopped);
    assert_eq!(outcome.metrics.len(), 1);
}

#[test]
fn a_share_runs_only_the_processes_of_its_nodes() {
    let mut run = Run::new(
        "roles:
  - {name: peer, nodes: a, command: 'true', start: {at: 1s, every: 500ms}}
  - {name: far, nodes: b, command: 'true'}
stop: {after: 4s}
events:
  - {at: 2500ms, nodes: 'b-1', action: start}
  - {at: 3s, nodes: '*', action: stop}
",
    );
    run.local = Some(vec!["a-1", "a-3"]);
    let run_dir = run.dir.path().join("run");
    let (outcome, log) = run.drive();
    // a-3 keeps its planned time: one schedule, whichever host a node is on
    assert_eq!(
        log.starts,
        [(ms(1000), "a-1".to_string()), (ms(2000), "a-3".to_string())]
    );
    let rows: Vec<_> = outcome
        .processes
        .iter()
        .map(|p| (p.node.as_str(), p.planned_s, p.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("a-1", Some(1.0), Status::Stopped),
            ("a-3", Some(2.0), Status::Stopped)
        ]
    );
    let signals: Vec<_> = log.signals.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        signals,
        ["a-1", "a-3"],
        "the stop event reached only local nodes"
    );
    let listing = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(run_dir.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing("nodes"), ["a-1", "a-3"]);
    assert_eq!(
        listing("logs"),
        ["a-1.err", "a-1.out", "a-3.err", "a-3.out"]
    );
    // role `far`, all elsewhere, does not keep the run going here
    assert_eq!(outcome.stop, StopReason::AllExited);
}

#[test]
fn with_the_stop_rule_elsewhere_only_a_request_or_the_cap_ends_the_run() {
    let body = "roles:
  - {name: peer, nodes: a-1, command: 'true', metrics: [{name: progress, regex: 'p=(\\d+)'}]}
  - {name: seed, nodes: b-1, command: 'true'}
stop: {exited: [peer], after: 10s}
";
    let peer = Script {
        output: "p=100\n",
        ..runs_for(500, 0)
    };
    // on its own, the run ends when the peer exits
    let (outcome, _) = Run::new(body).script("a-1", peer.clone()).drive();
    assert_eq!(outcome.stop, StopReason::RolesExited);
    assert_eq!(
        outcome.duration_s, 0.52,
        "the seed stopped a tick after the peer"
    );

    let mut run = Run::new(body).script("a-1", peer.clone());
    run.stop_rule_elsewhere = true;
    run.requests = vec![(ms(3000), "every host is done".into())];
    let (outcome, log) = run.drive();
    assert_eq!(
        outcome.stop,
        StopReason::Requested("every host is done".into())
    );
    assert_eq!(outcome.stop.to_string(), "every host is done");
    assert_eq!(
        log.signals,
        [(ms(3000), "b-1".to_string(), Signal::SIGTERM)],
        "stopped gracefully, like a first stop signal"
    );
    let ended = |n| {
        let p = row(&outcome, n);
        (p.status, p.exit_code, p.signal, p.end_s)
    };
    assert_eq!(ended("a-1"), (Status::Exited, Some(0), None, Some(0.5)));
    // SIGTERM at 3 s, reaped a tick later
    assert_eq!(ended("b-1"), (Status::Stopped, None, Some(15), Some(3.02)));

    // the duration cap still holds
    let mut run = Run::new(body).script("a-1", peer);
    run.stop_rule_elsewhere = true;
    let (outcome, _) = run.drive();
    assert_eq!(outcome.stop, StopReason::DurationCap);
    assert_eq!(outcome.duration_s, 10.02);
}

#[test]
fn a_stop_request_gives_the_grace_period_and_a_second_one_skips_it() {
    for (requests, killed_at) in [(1, 3000), (2, 1000)] {
        let mut run = stubborn("1m");
        run.stop_rule_elsewhere = true;
        run.requests = (0..requests).map(|_| (ms(1000), "asked".into())).collect();
        let (outcome, log) = run.drive();
        assert_eq!(outcome.stop, StopReason::Requested("asked".into()));
        let kill = log.signals.iter().find(|s| s.2 == Signal::SIGKILL).unwrap();
        assert_eq!(kill.0, ms(killed_at), "after {requests} requests");
        let p = row(&outcome, "b-1");
        assert_eq!((p.status, p.signal), (Status::Stopped, Some(9)));
    }
}

#[test]
fn the_observer_sees_every_start_end_and_sample_once() {
    let mut run = sample_exit_and_failure();
    let (outcome, log) = run.drive();
    let started: Vec<(usize, u32, f64)> = log
        .observed
        .iter()
        .filter_map(|s| match s {
            Seen::Started(node, pid, at) => Some((*node, *pid, *at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [(run.node("a-1"), 100, 0.0), (run.node("a-2"), 101, 0.0)],
        "a failed start is not started"
    );
    let texts = |f: &dyn Fn(&Seen) -> Option<String>| -> Vec<String> {
        log.observed.iter().filter_map(f).collect()
    };
    let ended = texts(&|s| match s {
        Seen::Ended(row) => Some(row.clone()),
        _ => None,
    });
    let rows: Vec<String> = outcome.processes.iter().map(|p| format!("{p:?}")).collect();
    assert_eq!(ended, rows, "every row, as written, once");
    assert_eq!(rows.len(), 3);
    let samples = texts(&|s| match s {
        Seen::Sample(m) => Some(m.clone()),
        _ => None,
    });
    let metrics: Vec<String> = outcome.metrics.iter().map(|m| format!("{m:?}")).collect();
    assert_eq!(samples, metrics);
    assert_eq!(metrics.len(), 1);
}

#[test]
fn a_start_time_ahead_is_waited_for_and_one_past_is_not() {
    let body = "roles:
  - {name: peer, nodes: a, command: 'true', start: {at: 0s, every: 1s}}
stop: {after: 5s}
";
    let started = |start: Start| {
        let mut run = Run::new(body);
        run.start = start;
        let (outcome, log) = run.drive();
        let mut rows: Vec<(String, Option<f64>, f64)> = outcome
            .processes
            .iter()
            .map(|p| (p.node.clone(), p.planned_s, p.start_s))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let at: Vec<u128> = log.starts.iter().map(|s| s.0.as_millis()).collect();
        (at, rows, outcome.duration_s)
    };
    // 2 s ahead: nothing starts before then, and the run keeps its own times; 1.5 s
    // past: what was due starts at once, late, the rest on time
    for (t0, at, start_s) in [
        (epoch() + ms(2000), [2000, 3000, 4000], [0.0, 1.0, 2.0]),
        (epoch() - ms(1500), [0, 0, 500], [1.5, 1.5, 2.0]),
    ] {
        let (started_at, rows, duration) = started(Start::At(t0));
        assert_eq!(started_at, at);
        let want: Vec<(String, Option<f64>, f64)> = ["a-1", "a-2", "a-3"]
            .into_iter()
            .zip([0.0, 1.0, 2.0])
            .zip(start_s)
            .map(|((node, planned), start)| (node.to_string(), Some(planned), start))
            .collect();
        assert_eq!(rows, want);
        assert_eq!(duration, 5.02);
    }
    // a stop request cuts the wait short: nothing starts
    let mut run = Run::new(body);
    run.start = Start::At(epoch() + ms(60_000));
    run.requests = vec![(ms(500), "abort".into())];
    let (outcome, log) = run.drive();
    assert_eq!(outcome.stop, StopReason::Requested("abort".into()));
    assert!(log.starts.is_empty() && outcome.processes.is_empty());
    assert!(outcome.duration_s < 0.1, "{}", outcome.duration_s);
}
