//! The run as the controller follows it, from the start to the last host's `done`: every
//! start, end and metric sample the agents report, written to the one result directory as
//! they come (each row with its host); the experiment's stop rule, decided here for every
//! host at once (a host's own processes ending says nothing about the others'); lost
//! hosts, whose processes are recorded failed, then the run goes on or stops as the
//! experiment's `on_host_failure` says; and the stop, sent to every host, after which
//! their last rows and `done` are gathered.
//!
//! The stop rule counts as the one-host scheduler does: a role is done when every start
//! the schedule planned for it was reported (ended, or failed to start) and none of its
//! processes runs; `exited: [roles]` waits for those roles, a rule without roles or metric
//! for every role, a metric for every node of its role (on hosts not lost).

use super::agents::{Agents, Event};
use crate::protocol::{FromAgent, ToAgent};
use experiment::{Experiment, FailurePolicy};
use results::{HostCpu, Loss, MetricSample, Process, Status, Writer};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the controller waits between looks at the stop rule.
const TICK: Duration = Duration::from_millis(50);
/// How long hosts get to stop, tear down and say `done` after the stop.
const STOPPING: Duration = Duration::from_secs(60);

/// What a host said at its end.
#[derive(Debug, Clone)]
pub struct HostEnd {
    pub host_cpu: Option<HostCpu>,
    /// What its result directory lost, in words (empty: nothing).
    pub lost: String,
}

/// What a run left, once followed to its end.
pub struct Collected {
    /// As they were written to `processes.csv`.
    pub rows: Vec<Process>,
    pub metrics: Vec<MetricSample>,
    /// What `processes.csv` and `metrics.csv` lost.
    pub lost: Vec<Loss>,
    /// What each host said at its end, if it did.
    pub ends: Vec<Option<HostEnd>>,
    /// Why each host failed, if it did.
    pub failures: Vec<Option<String>>,
}

/// The run followed from the start.
pub struct Collect<'a> {
    exp: &'a Experiment,
    names: &'a [String],
    /// The host of each node.
    host_of: Vec<usize>,
    /// The role each node runs, if any.
    role_of: Vec<Option<usize>>,
    planned_by_role: Vec<usize>,
    reported_by_role: Vec<usize>,
    running_by_role: Vec<usize>,
    /// Each running node's pid and start time.
    running: HashMap<usize, (u32, f64)>,
    /// The nodes whose planned start was reported.
    reported: Vec<bool>,
    stop_metric: Vec<f64>,
    rows: Vec<Process>,
    metrics: Vec<MetricSample>,
    out: Writer,
    ends: Vec<Option<HostEnd>>,
    failures: Vec<Option<String>>,
    t0: Instant,
    /// Whether the stop was sent.
    stopping: bool,
    /// Rows of processes that ended well (exited 0, or stopped by p2plab), and of others.
    done: usize,
    failed: usize,
    progress: launch::progress::Progress,
}

impl<'a> Collect<'a> {
    /// Follows `exp` placed as `placed` (nodes per host) on hosts `names`, time 0 being
    /// `t0`, writing rows to `out`.
    pub fn new(
        exp: &'a Experiment,
        names: &'a [String],
        placed: &[Vec<usize>],
        out: Writer,
        t0: Instant,
        quiet: bool,
    ) -> Self {
        let n = exp.plan.link.nodes.len();
        let mut host_of = vec![0; n];
        for (h, nodes) in placed.iter().enumerate() {
            for &node in nodes {
                host_of[node] = h;
            }
        }
        let mut planned_by_role = vec![0; exp.roles.len()];
        let mut role_of = vec![None; n];
        for s in &exp.starts {
            planned_by_role[s.role] += 1;
            role_of[s.node] = Some(s.role);
        }
        Collect {
            exp,
            names,
            host_of,
            role_of,
            planned_by_role,
            reported_by_role: vec![0; exp.roles.len()],
            running_by_role: vec![0; exp.roles.len()],
            running: HashMap::new(),
            reported: vec![false; n],
            stop_metric: vec![f64::NEG_INFINITY; n],
            rows: Vec::with_capacity(exp.starts.len()),
            metrics: Vec::new(),
            out,
            ends: vec![None; names.len()],
            failures: vec![None; names.len()],
            t0,
            stopping: false,
            done: 0,
            failed: 0,
            progress: launch::progress::Progress::new(exp.starts.len(), exp, quiet),
        }
    }

    /// Follows the run until its stop rule (or `interrupted` says a stop signal came), then
    /// stops every host and gathers their ends; why the run stopped.
    pub fn run(&mut self, agents: &mut Agents, interrupted: &dyn Fn() -> Option<String>) -> String {
        let reason = loop {
            if let Some(why) = interrupted() {
                break why;
            }
            if let Some(why) = self.stop_rule() {
                break why;
            }
            if let Some(event) = agents.next(TICK) {
                if let Some(why) = self.event(event) {
                    break why;
                }
            }
            self.progress_update(agents.alive().len());
        };
        self.stopping = true;
        agents.broadcast(&ToAgent::Stop {
            reason: reason.clone(),
        });
        let waiting: Vec<usize> = agents
            .alive()
            .into_iter()
            .filter(|&h| self.ends[h].is_none())
            .collect();
        let answers = agents.gather(
            &waiting,
            STOPPING,
            |_, m| match m {
                FromAgent::Done { .. } => Ok(m),
                m => Err(m),
            },
            |h, m| {
                self.message(h, m);
            },
        );
        for (&h, answer) in waiting.iter().zip(answers) {
            match answer {
                Ok(m) => {
                    self.message(h, m);
                }
                Err(why) => self.fail(h, why),
            }
        }
        self.out.flush();
        self.progress.finish();
        reason
    }

    /// What the run left.
    pub fn finish(self) -> Collected {
        Collected {
            rows: self.rows,
            metrics: self.metrics,
            lost: self.out.finish(),
            ends: self.ends,
            failures: self.failures,
        }
    }

    /// Takes in one event; a reason to stop the run, if it gives one.
    fn event(&mut self, event: Event) -> Option<String> {
        match event {
            Event::Message(h, m) => self.message(h, m),
            Event::Lost(h, why) => {
                self.fail(h, why.clone());
                self.host_failure(h, &why)
            }
        }
    }

    /// Takes in what host `h` said; a reason to stop the run, if it gives one.
    fn message(&mut self, h: usize, m: FromAgent) -> Option<String> {
        match m {
            FromAgent::Started { node, pid, at_s } => {
                if let Some(role) = self.role_of[node] {
                    self.running.insert(node, (pid, at_s));
                    self.running_by_role[role] += 1;
                }
            }
            FromAgent::Ended { mut row } => {
                let node = self.exp.plan.link.node_by_name(&row.node);
                if let Some(node) = node {
                    self.end(node);
                }
                row.host = Some(self.names[h].clone());
                let failed_start = row.status == Status::FailedToStart;
                self.record(*row);
                if failed_start && self.exp.on_failure == FailurePolicy::Abort {
                    return Some(format!(
                        "a process failed to start on {} (on_failure: abort)",
                        self.names[h]
                    ));
                }
            }
            FromAgent::Sample { sample } => {
                if let Some(m) = &self.exp.stop.metric {
                    if sample.name == m.name && sample.role == self.exp.roles[m.role].name {
                        if let Some(node) = self.exp.plan.link.node_by_name(&sample.node) {
                            self.stop_metric[node] = self.stop_metric[node].max(sample.value);
                        }
                    }
                }
                self.out.metric(&sample);
                self.metrics.push(sample);
            }
            FromAgent::Done {
                stop,
                host_cpu,
                lost,
                ..
            } => {
                self.ends[h] = Some(HostEnd { host_cpu, lost });
                // Before the stop: the host's run ended by itself (its network failed, its
                // duration cap came first), so its nodes no longer take part.
                if !self.stopping {
                    let why = format!("its run ended before the others': {stop}");
                    self.fail(h, why.clone());
                    return self.host_failure(h, &why);
                }
            }
            FromAgent::Failed { error } => {
                self.fail(h, error.clone());
                return self.host_failure(h, &error);
            }
            _ => {}
        }
        None
    }

    /// Node `node`'s process (or its start) was reported ended.
    fn end(&mut self, node: usize) {
        let Some(role) = self.role_of[node] else {
            return;
        };
        if self.running.remove(&node).is_some() {
            self.running_by_role[role] -= 1;
        }
        if !self.reported[node] {
            self.reported[node] = true;
            self.reported_by_role[role] += 1;
        }
    }

    fn record(&mut self, row: Process) {
        if row.completion_s().is_some() || row.status == Status::Stopped {
            self.done += 1;
        } else {
            self.failed += 1;
        }
        self.out.process(&row);
        self.rows.push(row);
    }

    /// Host `h` failed for `why`: recorded, and every process of it that was running or
    /// still to start is recorded failed (`killed`, or `failed_to_start`).
    fn fail(&mut self, h: usize, why: String) {
        if self.failures[h].is_some() {
            return;
        }
        self.failures[h] = Some(why);
        let now = self.t0.elapsed().as_secs_f64();
        let starts: Vec<(usize, usize, u64)> = self
            .exp
            .starts
            .iter()
            .filter(|s| {
                self.host_of[s.node] == h
                    && (!self.reported[s.node] || self.running.contains_key(&s.node))
            })
            .map(|s| (s.node, s.role, s.at_us))
            .collect();
        for (node, role, at_us) in starts {
            let running = self.running.get(&node).copied();
            self.end(node);
            let n = &self.exp.plan.link.nodes[node];
            let planned = at_us as f64 / 1e6;
            self.record(Process {
                node: n.name.clone(),
                role: self.exp.roles[role].name.clone(),
                group: self.exp.plan.link.groups[n.group].name.clone(),
                ip: n.ip.to_string(),
                pid: running.map(|r| r.0),
                planned_s: Some(planned),
                start_s: running.map_or(planned, |r| r.1),
                end_s: running.map(|_| now),
                status: if running.is_some() {
                    Status::Killed
                } else {
                    Status::FailedToStart
                },
                exit_code: None,
                signal: None,
                cpu_user_s: None,
                cpu_sys_s: None,
                peak_rss_kb: None,
                bytes_sent: None,
                bytes_received: None,
                host: Some(self.names[h].clone()),
            });
        }
    }

    /// What a failure of host `h` does to the run: a reason to stop it, under
    /// `on_host_failure: abort`.
    fn host_failure(&self, h: usize, why: &str) -> Option<String> {
        (self.exp.on_host_failure == FailurePolicy::Abort).then(|| {
            format!(
                "host {} failed ({why}) and on_host_failure is abort",
                self.names[h]
            )
        })
    }

    /// Whether the stop rule ends the run now, and why.
    fn stop_rule(&self) -> Option<String> {
        let stop = &self.exp.stop;
        let done = |r: &usize| {
            self.reported_by_role[*r] >= self.planned_by_role[*r] && self.running_by_role[*r] == 0
        };
        if !stop.exited.is_empty() {
            if stop.exited.iter().all(done) {
                return Some(launch::StopReason::RolesExited.to_string());
            }
        } else if stop.metric.is_none() && (0..self.exp.roles.len()).all(|r| done(&r)) {
            return Some(launch::StopReason::AllExited.to_string());
        }
        if let Some(m) = &stop.metric {
            let nodes = &self.exp.roles[m.role].nodes;
            if nodes.iter().all(|&node| {
                self.failures[self.host_of[node]].is_some() || self.stop_metric[node] >= m.at_least
            }) {
                return Some(launch::StopReason::MetricReached.to_string());
            }
        }
        (self.t0.elapsed() >= Duration::from_micros(stop.after_us))
            .then(|| launch::StopReason::DurationCap.to_string())
    }

    fn progress_update(&mut self, alive: usize) {
        let counts = launch::progress::Counts {
            started: self.rows.len() + self.running.len(),
            running: self.running.len(),
            done: self.done,
            failed: self.failed,
            hosts: Some((alive, self.names.len())),
        };
        self.progress.update(self.t0.elapsed(), counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{Incoming, Link};
    use crate::protocol;
    use std::sync::mpsc::{Receiver, Sender};

    /// Four nodes: a seed on a-1, leechers on a-2..a-4; host h1 runs a-1 and a-2, h2 a-3
    /// and a-4.
    fn experiment(dir: &std::path::Path, policy: &str) -> Experiment {
        let file = dir.join("exp.yaml");
        std::fs::write(
            &file,
            format!(
                "name: collect
topology:
  profiles: {{p: {{up: 1mbit, down: 1mbit}}}}
  defaults: {{profile: p}}
  groups: [{{name: a, nodes: 4}}]
roles:
  - {{name: seed, nodes: a-1, command: 'true'}}
  - {{name: leecher, nodes: 'a[2-4]', command: 'true'}}
stop: {{exited: [leecher], after: 1m}}
on_host_failure: {policy}
"
            ),
        )
        .unwrap();
        experiment::load(&file).unwrap()
    }

    /// A host played by the test: what it says, what it hears.
    struct Fake {
        says: Sender<Incoming>,
        hears: Receiver<String>,
    }

    impl Fake {
        fn say(&self, m: &FromAgent) {
            self.says.send(Incoming::Line(protocol::line(m))).unwrap();
        }

        fn ended(&self, node: &str, role: &str, status: Status, code: Option<i32>) {
            self.say(&FromAgent::Ended {
                row: Box::new(Process {
                    node: node.into(),
                    role: role.into(),
                    group: "a".into(),
                    ip: "10.0.0.1".into(),
                    pid: Some(7),
                    planned_s: Some(0.0),
                    start_s: 0.0,
                    end_s: Some(1.0),
                    status,
                    exit_code: code,
                    signal: None,
                    cpu_user_s: None,
                    cpu_sys_s: None,
                    peak_rss_kb: None,
                    bytes_sent: None,
                    bytes_received: None,
                    host: None,
                }),
            });
        }

        /// Waits for the stop, does `last` (its last rows), then says `done`.
        fn stop(&self, last: impl FnOnce(&Fake)) -> String {
            loop {
                let line = self.hears.recv().unwrap();
                if let Ok(ToAgent::Stop { reason }) = protocol::parse(&line) {
                    last(self);
                    self.say(&FromAgent::Done {
                        stop: reason.clone(),
                        duration_s: 1.0,
                        host_cpu: None,
                        lost: String::new(),
                    });
                    return reason;
                }
            }
        }
    }

    fn hosts(n: usize) -> (Agents, Vec<Fake>) {
        let (links, fakes): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                let (link, says, hears) = Link::pair();
                (Ok(link), Fake { says, hears })
            })
            .unzip();
        (Agents::new(links), fakes)
    }

    /// Follows `exp` on two fake hosts played by `play`; the stop reason and the rows.
    fn follow(
        exp: &Experiment,
        play: impl FnOnce(Vec<Fake>) + Send + 'static,
    ) -> (String, Collected) {
        let dir = tempfile::tempdir().unwrap();
        let names = ["h1".to_string(), "h2".to_string()];
        let placed = [vec![0, 1], vec![2, 3]];
        let (mut agents, fakes) = hosts(2);
        let player = std::thread::spawn(move || play(fakes));
        let out = Writer::create(dir.path()).unwrap();
        let mut c = Collect::new(exp, &names, &placed, out, Instant::now(), true);
        let reason = c.run(&mut agents, &|| None);
        player.join().unwrap();
        (reason, c.finish())
    }

    #[test]
    fn the_stop_rule_waits_for_the_roles_on_every_host_and_rows_name_their_host() {
        let dir = tempfile::tempdir().unwrap();
        let exp = experiment(dir.path(), "abort");
        let (reason, got) = follow(&exp, |fakes| {
            let (h1, h2) = (&fakes[0], &fakes[1]);
            for (fake, node) in [(h1, 0), (h1, 1), (h2, 2)] {
                fake.say(&FromAgent::Started {
                    node,
                    pid: 7,
                    at_s: 0.0,
                });
            }
            // h1's leecher is done: h2's still run, and the run goes on.
            h1.ended("a-2", "leecher", Status::Exited, Some(0));
            std::thread::sleep(Duration::from_millis(300));
            let early = h1.hears.try_iter().any(|l| l.contains(r#""type":"stop""#));
            assert!(!early, "stopped while h2's leechers ran");
            h2.ended("a-3", "leecher", Status::Exited, Some(0));
            h2.ended("a-4", "leecher", Status::FailedToStart, None);
            let stopped = [
                h1.stop(|h1| h1.ended("a-1", "seed", Status::Stopped, None)),
                h2.stop(|_| {}),
            ];
            assert_eq!(stopped[0], stopped[1]);
        });
        assert_eq!(reason, launch::StopReason::RolesExited.to_string());
        let hosts: Vec<(&str, &str)> = got
            .rows
            .iter()
            .map(|r| (r.node.as_str(), r.host.as_deref().unwrap()))
            .collect();
        assert_eq!(
            hosts,
            [("a-2", "h1"), ("a-3", "h2"), ("a-4", "h2"), ("a-1", "h1")]
        );
        assert!(got.ends.iter().all(Option::is_some));
        assert!(got.failures.iter().all(Option::is_none));
    }

    #[test]
    fn a_lost_host_fails_its_nodes_then_the_run_goes_on_or_stops_as_the_experiment_says() {
        for (policy, stops_at_once) in [("continue", false), ("abort", true)] {
            let dir = tempfile::tempdir().unwrap();
            let exp = experiment(dir.path(), policy);
            let (reason, got) = follow(&exp, move |fakes| {
                let (h1, h2) = (&fakes[0], &fakes[1]);
                h2.say(&FromAgent::Started {
                    node: 2,
                    pid: 9,
                    at_s: 0.5,
                });
                std::thread::sleep(Duration::from_millis(100));
                h2.says
                    .send(Incoming::Closed("connection lost".into()))
                    .unwrap();
                if !stops_at_once {
                    std::thread::sleep(Duration::from_millis(200));
                    h1.ended("a-2", "leecher", Status::Exited, Some(0));
                }
                h1.stop(|_| {});
            });
            if stops_at_once {
                assert!(
                    reason.contains("host h2 failed (connection lost)"),
                    "{reason}"
                );
            } else {
                assert_eq!(reason, launch::StopReason::RolesExited.to_string());
            }
            let h2: Vec<(&str, Status, Option<u32>)> = got
                .rows
                .iter()
                .filter(|r| r.host.as_deref() == Some("h2"))
                .map(|r| (r.node.as_str(), r.status, r.pid))
                .collect();
            // a-3 ran and is killed with the host; a-4 never started.
            assert_eq!(
                h2,
                [
                    ("a-3", Status::Killed, Some(9)),
                    ("a-4", Status::FailedToStart, None)
                ],
                "{policy}"
            );
            assert_eq!(got.failures[1].as_deref(), Some("connection lost"));
        }
    }
}
