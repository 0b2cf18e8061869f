//! The running network as the launch engine sees it: run-time changes (cut, restore,
//! set_link, set_delay) through `shaping::Network`, traffic counters per node from the
//! shaping classes, and whether its delay engine still runs.

use experiment::NetChange;
use shaping::Network;

/// A network that is up; its model is the experiment plan's, so node indices are the
/// same in both.
pub struct Shaped {
    pub network: Network,
}

impl launch::Network for Shaped {
    fn apply(&mut self, change: &NetChange) -> Result<(), String> {
        self.network.change(change).map_err(|e| e.to_string())
    }

    fn bytes(&mut self) -> Option<Vec<(u64, u64)>> {
        let counters = self.network.counters().ok()?;
        let state = self.network.state();
        let mut out = vec![(0, 0); state.model.nodes.len()];
        for (c, &i) in counters.iter().zip(&state.local) {
            out[i] = (c.up.bytes, c.down.bytes);
        }
        Some(out)
    }

    fn failure(&mut self) -> Option<String> {
        self.network.health()
    }
}
