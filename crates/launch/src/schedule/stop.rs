//! Beginning and ending a run: the wait for time 0, the experiment's stop rule (its roles
//! exited, or every process when it names none; its metric reached on every node of its
//! role; its duration cap; only the cap when the rule is decided elsewhere), a stop signal
//! or request, and the stop of what is left (SIGTERM, a grace period, then the kill).

use super::host::Host;
use super::{Scheduler, Start, StopReason, TICK};
use nix::sys::signal::Signal;
use std::time::Duration;

/// How long processes get between SIGTERM and the kill at the end of a run.
const GRACE: Duration = Duration::from_secs(2);

impl<H: Host> Scheduler<'_, H> {
    /// Waits for time 0 as `Options::start` says (a stop signal or request cuts the wait
    /// short), then makes it the run's time 0.
    pub(super) fn wait_for_start(&mut self) {
        let Start::At(t0) = self.opts.start else {
            return;
        };
        while !self.opts.stop.stopping() {
            match t0.duration_since(self.host.wall()) {
                Ok(left) if !left.is_zero() => self.host.sleep(left.min(TICK)),
                _ => break,
            }
        }
        // cut short, the run begins now
        self.host.begin_at(t0.min(self.host.wall()));
    }

    /// Why the run must stop now that a stop signal or request arrived, if one did.
    pub(super) fn asked_to_stop(&self) -> Option<StopReason> {
        let stop = self.opts.stop;
        stop.signal().map(StopReason::Interrupted).or_else(|| {
            stop.requested()
                .map(|why| StopReason::Requested(why.to_string()))
        })
    }

    /// Whether the stop rule ends the run at `now`: `pending_by_role` counts the starts
    /// still to come, `scheduled` says every start and event is behind us.
    pub(super) fn stop_rule(
        &self,
        pending_by_role: &[usize],
        scheduled: bool,
        now: Duration,
    ) -> Option<StopReason> {
        let stop = &self.exp.stop;
        let cap = (now >= Duration::from_micros(stop.after_us)).then_some(StopReason::DurationCap);
        if self.opts.stop_rule_elsewhere {
            return cap;
        }
        let done = |r: &usize| pending_by_role[*r] == 0 && self.running_by_role[*r] == 0;
        if !stop.exited.is_empty() {
            if stop.exited.iter().all(done) {
                return Some(StopReason::RolesExited);
            }
        } else if stop.metric.is_none() && scheduled && (0..self.exp.roles.len()).all(|r| done(&r))
        {
            return Some(StopReason::AllExited);
        }
        if self.metric_reached() {
            return Some(StopReason::MetricReached);
        }
        cap
    }

    /// Whether every node of the stop metric's role reported it at the level asked.
    fn metric_reached(&self) -> bool {
        let Some(m) = &self.exp.stop.metric else {
            return false;
        };
        let nodes = &self.exp.roles[m.role].nodes;
        nodes
            .iter()
            .all(|&node| self.stop_metric[node] >= m.at_least)
    }

    /// The nodes whose process runs.
    fn running_nodes(&self) -> Vec<usize> {
        (0..self.running.len())
            .filter(|&node| self.running[node].is_some())
            .collect()
    }

    /// Stops what is left: SIGTERM, a grace period (cut short by a second stop signal),
    /// then the kill.
    pub(super) fn stop_left(&mut self) {
        let left = self.running_nodes();
        self.signal(&left, Signal::SIGTERM);
        let deadline = self.host.now() + GRACE;
        while self.running.iter().any(Option::is_some)
            && self.host.now() < deadline
            && !self.opts.stop.hurried()
        {
            self.host.sleep(TICK);
            self.reap(false);
        }
        let left = self.running_nodes();
        self.signal(&left, Signal::SIGCONT);
        self.signal(&left, Signal::SIGKILL);
        self.reap(true);
        self.host.kill_all();
    }
}
