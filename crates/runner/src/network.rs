//! The running network as the launch engine sees it: run-time changes (cut, restore,
//! set_link, set_delay) through `shaping::Network`, traffic counters per node from the
//! shaping classes, and whether its delay engine still runs.

use experiment::Action;
use shaping::{Change, Network};

/// A network that is up; its model is the experiment plan's, so node indices are the
/// same in both.
pub struct Shaped {
    pub network: Network,
}

impl Shaped {
    fn change(&self, action: &Action, nodes: &[usize]) -> Option<Change> {
        let nodes = nodes.to_vec();
        Some(match action {
            Action::Cut => Change::Cut(nodes),
            Action::Restore => Change::Restore(nodes),
            Action::SetLink(l) => Change::Link {
                nodes,
                up_bps: l.up_bps,
                down_bps: l.down_bps,
                latency_us: l.latency_us,
                loss: l.loss,
            },
            Action::SetDelay {
                from,
                to,
                delay_us,
                loss,
            } => Change::Delay {
                from: *from,
                to: *to,
                delay_us: *delay_us,
                loss: *loss,
            },
            _ => return None,
        })
    }
}

impl launch::Network for Shaped {
    fn apply(&mut self, action: &Action, nodes: &[usize]) -> Result<(), String> {
        let change = self
            .change(action, nodes)
            .ok_or_else(|| format!("{action:?} does not change the network"))?;
        self.network.change(&change).map_err(|e| e.to_string())
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
