//! The event loop: each turn starts the processes that are due, carries out the events
//! that are due (signals to nodes, network changes), reaps what ended, reads the logs for
//! metrics (and the host's CPU counters, about once a second), watches the network,
//! applies the stop rule, then sleeps until the next start, event or tick.

use super::host::{Host, Reaped};
use super::{setup, Network, Scheduler, StopReason, CPU_SAMPLE, TICK};
use experiment::{Action, Event, FailurePolicy, ProcessAction};
use nix::sys::signal::Signal;
use results::MetricSample;
use std::time::Duration;

/// How often logs are read for metrics and network counters refreshed.
const POLL: Duration = Duration::from_millis(500);
/// How often the network is asked whether it still emulates the topology (a dead delay
/// engine stops the run within half a second, scheduling included).
const WATCH: Duration = Duration::from_millis(100);

impl<H: Host> Scheduler<'_, H> {
    /// Runs the schedule until a stop rule, a stop signal, an abort or the network ends
    /// it; returns why.
    pub(super) fn schedule(&mut self, net: &mut dyn Network) -> StopReason {
        let exp = self.exp;
        let mut pending_by_role = vec![0usize; exp.roles.len()];
        for s in exp.starts.iter().filter(|s| self.here[s.node]) {
            pending_by_role[s.role] += 1;
        }
        let (mut next_start, mut next_event) = (0, 0);
        let mut last_poll = self.host.now();
        let mut last_watch = self.host.now();
        loop {
            let now = self.host.now();
            if let Some(reason) = self.asked_to_stop() {
                return reason;
            }
            let first_due = next_start;
            while exp
                .starts
                .get(next_start)
                .is_some_and(|s| s.at_us <= now.as_micros() as u64)
            {
                let s = &exp.starts[next_start];
                if self.here[s.node] {
                    pending_by_role[s.role] -= 1;
                }
                next_start += 1;
            }
            // other hosts start the other nodes
            let due: Vec<(usize, usize, u64)> = exp.starts[first_due..next_start]
                .iter()
                .filter(|s| self.here[s.node])
                .map(|s| (s.role, s.node, s.at_us))
                .collect();
            if !due.is_empty() {
                let failed = self.start_all(&due).into_iter().find_map(Result::err);
                // shown at once, at the time they took: 1,000 starts can take seconds
                self.progress.update(self.host.now(), self.counts());
                if let (Some(why), FailurePolicy::Abort) = (failed, exp.on_failure) {
                    return StopReason::Aborted(why);
                }
            }
            while let Some(ev) = exp
                .events
                .get(next_event)
                .filter(|ev| ev.at_us <= now.as_micros() as u64)
            {
                next_event += 1;
                self.carry_out(ev, net);
            }
            let polling = self.host.now().saturating_sub(last_poll) >= POLL;
            if self.host.child_ended() || polling {
                self.reap(false);
            }
            if polling {
                last_poll = self.host.now();
                self.poll(net);
                self.progress.update(self.host.now(), self.counts());
            }
            if self.host.now().saturating_sub(last_watch) >= WATCH {
                last_watch = self.host.now();
                if let Some(why) = net.failure() {
                    return StopReason::NetworkFailed(why);
                }
            }

            let scheduled = next_start == exp.starts.len() && next_event == exp.events.len();
            if let Some(reason) = self.stop_rule(&pending_by_role, scheduled, now) {
                return reason;
            }
            let next = [
                exp.starts.get(next_start).map(|s| s.at_us),
                exp.events.get(next_event).map(|ev| ev.at_us),
            ]
            .into_iter()
            .flatten()
            .map(|us| Duration::from_micros(us).saturating_sub(now))
            .fold(TICK, Duration::min);
            self.host.sleep(next);
        }
    }

    /// Carries out one event: a start or a signal here, anything else on the network.
    fn carry_out(&mut self, ev: &Event, net: &mut dyn Network) {
        match &ev.action {
            Action::Process(ProcessAction::Start, nodes) => {
                for &node in nodes {
                    // another host's node is started there
                    if !self.here[node] {
                        continue;
                    }
                    if let Some(role) = self.exp.roles_of(node).next() {
                        let _ = self.start_all(&[(role, node, ev.at_us)]);
                    }
                }
            }
            Action::Process(ProcessAction::Stop, nodes) => self.signal(nodes, Signal::SIGTERM),
            Action::Process(ProcessAction::Kill, nodes) => self.signal(nodes, Signal::SIGKILL),
            Action::Process(ProcessAction::Pause, nodes) => self.signal(nodes, Signal::SIGSTOP),
            Action::Process(ProcessAction::Resume, nodes) => self.signal(nodes, Signal::SIGCONT),
            Action::Net(change) => {
                if let Err(why) = net.apply(change) {
                    eprintln!(
                        "p2plab: event at {:.3}s failed: {why}",
                        ev.at_us as f64 / 1e6
                    );
                }
            }
        }
    }

    /// Starts every `(role, node, planned µs)` of `due` (skipping nodes that already run a
    /// process).
    fn start_all(&mut self, due: &[(usize, usize, u64)]) -> Vec<Result<(), String>> {
        let exp = self.exp;
        let mut seen = std::collections::HashSet::new();
        let (jobs, planned): (Vec<_>, Vec<_>) = due
            .iter()
            .filter(|&&(_, node, _)| self.running[node].is_none() && seen.insert(node))
            .map(|&(role, node, at_us)| {
                (
                    setup::job(exp, &self.opts.run_dir, role, node),
                    Duration::from_micros(at_us),
                )
            })
            .unzip();
        let results = self.host.start(&jobs);
        jobs.into_iter()
            .zip(planned)
            .zip(results)
            .map(|((job, planned), (started, start))| {
                self.record_start(job, planned, started, start)
            })
            .collect()
    }

    /// Sends `sig` to the running processes of `nodes`.
    pub(super) fn signal(&mut self, nodes: &[usize], sig: Signal) {
        for &n in nodes {
            let Some(i) = self.running[n] else { continue };
            if let Some(pid) = self.procs[i].pid {
                if matches!(sig, Signal::SIGTERM | Signal::SIGKILL) {
                    self.procs[i].ended_by.get_or_insert(sig);
                }
                self.host.signal(pid, sig);
            }
        }
    }

    /// Collects the processes that ended; `block` waits for each still running one.
    pub(super) fn reap(&mut self, block: bool) {
        for node in 0..self.running.len() {
            let Some(i) = self.running[node] else {
                continue;
            };
            let Some(pid) = self.procs[i].pid else {
                continue;
            };
            match self.host.reap(pid, block) {
                Reaped::Ended(exit) => self.finish(i, exit),
                Reaped::Running => {}
                Reaped::Gone => self.gone(i),
            }
        }
    }

    /// Reads the network counters and the metrics the logs gained; writes the rows and
    /// samples given since the last poll.
    pub(super) fn poll(&mut self, net: &mut dyn Network) {
        if let Some(b) = net.bytes() {
            self.bytes = b;
        }
        let mut found = Vec::new();
        let exp = self.exp;
        self.tail
            .poll(|role| &exp.roles[role].metrics[..], &mut found);
        let now = self.host.now();
        if let Some(m) = &exp.stop.metric {
            for s in found
                .iter()
                .filter(|s| s.role == m.role && s.name == m.name)
            {
                self.stop_metric[s.node] = s.value;
            }
        }
        for s in found {
            let sample = MetricSample {
                time_s: now.as_secs_f64(),
                node: exp.plan.link.nodes[s.node].name.clone(),
                role: exp.roles[s.role].name.clone(),
                name: s.name,
                value: s.value,
            };
            self.out.metric(&sample);
            if let Some(o) = self.opts.observer {
                o.sample(&sample);
            }
            self.metrics.push(sample);
        }
        self.out.flush();
        if self.cpu.due(now, CPU_SAMPLE) {
            self.sample_cpu();
        }
    }

    /// Reads the host's CPU counters.
    pub(super) fn sample_cpu(&mut self) {
        if let Some(ticks) = self.host.cpu_ticks() {
            self.cpu.add(self.host.now(), ticks);
        }
    }
}
