//! Ending a run: the experiment's stop rule (its roles exited, or every process when it
//! names none; its metric reached on every node of its role; its duration cap) and the
//! stop of what is left (SIGTERM, a grace period, then the kill).

use super::host::Host;
use super::{Scheduler, StopReason, TICK};
use nix::sys::signal::Signal;
use std::time::Duration;

/// How long processes get between SIGTERM and the kill at the end of a run.
const GRACE: Duration = Duration::from_secs(2);

impl<H: Host> Scheduler<'_, H> {
    /// Whether the stop rule ends the run at `now`: `pending_by_role` counts the starts
    /// still to come, `scheduled` says every start and event is behind us.
    pub(super) fn stop_rule(
        &self,
        pending_by_role: &[usize],
        scheduled: bool,
        now: Duration,
    ) -> Option<StopReason> {
        let stop = &self.exp.stop;
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
        (now >= Duration::from_micros(stop.after_us)).then_some(StopReason::DurationCap)
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
