//! The running network as the launch engine sees it: traffic counters per node from the
//! shaping classes. Run-time changes (cut, set_link, set_delay) are refused before a run
//! starts (see `check`), so `apply` is never reached with them.

use experiment::Action;
use shaping::State;

pub struct Shaped {
    pub state: State,
    /// For each entry of `state.local`, the node's index in the experiment's plan.
    pub plan_index: Vec<usize>,
    pub nodes: usize,
}

impl launch::Network for Shaped {
    fn apply(&mut self, action: &Action, _nodes: &[usize]) -> Result<(), String> {
        Err(format!(
            "{action:?}: run-time shaping changes are not supported yet"
        ))
    }

    fn bytes(&mut self) -> Option<Vec<(u64, u64)>> {
        let counters = shaping::lifecycle::counters(&self.state).ok()?;
        let mut out = vec![(0, 0); self.nodes];
        for (c, &i) in counters.iter().zip(&self.plan_index) {
            out[i] = (c.up.bytes, c.down.bytes);
        }
        Some(out)
    }
}
