//! The running network as the launch engine sees it: run-time changes (cut, restore,
//! set_link, set_delay) through `shaping::runtime`, traffic counters per node from the
//! shaping classes, and whether its delay engine still runs.

use experiment::NetChange;
use shaping::State;

/// A network that is up; its model is the experiment plan's, so node indices are the
/// same in both.
pub struct Shaped {
    pub state: State,
}

impl launch::Network for Shaped {
    fn apply(&mut self, change: &NetChange) -> Result<(), String> {
        self.state = shaping::runtime::apply(&self.state.name, change, &shaping::engine::spawn)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn bytes(&mut self) -> Option<Vec<(u64, u64)>> {
        let counters = shaping::lifecycle::counters(&self.state).ok()?;
        let mut out = vec![(0, 0); self.state.model.nodes.len()];
        for (c, &i) in counters.iter().zip(&self.state.local) {
            out[i] = (c.up.bytes, c.down.bytes);
        }
        Some(out)
    }

    fn failure(&mut self) -> Option<String> {
        shaping::lifecycle::engine_failure(&self.state)
    }
}
