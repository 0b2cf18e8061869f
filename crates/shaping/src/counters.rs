//! Per-node traffic counters of a network: bytes, packets and drops of each node's upload
//! and download classes, read from the kernel's class statistics.

use crate::error::Error;
use crate::objects::{node_classes, NodeClass};
use crate::state::State;
use netctl::{Field, Host};

/// Counters of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCounters {
    /// Node name.
    pub name: String,
    /// Address.
    pub ip: std::net::Ipv4Addr,
    /// Upload class: bytes, packets, drops.
    pub up: netctl::ClassStats,
    /// Download class: bytes, packets, drops.
    pub down: netctl::ClassStats,
}

/// Per-node counters of network `state`, from its class statistics.
pub(crate) fn counters(state: &State) -> Result<Vec<NodeCounters>, Error> {
    let mut host = Host::open()?;
    let layout = state.layout();
    let places = node_classes(&state.model, &state.local);
    let ncells = places.iter().map(|p| p.cell + 1).max().unwrap_or(0);
    let mut stats = |field| -> Result<Vec<Vec<netctl::ClassStats>>, Error> {
        (0..ncells)
            .map(|c| Ok(host.class_stats(&layout.ifb(field, c))?))
            .collect()
    };
    let (up, down) = (stats(Field::Src)?, stats(Field::Dst)?);
    let find = |v: &[netctl::ClassStats], p: &NodeClass| {
        v.iter()
            .find(|c| c.classid == p.class.0)
            .copied()
            .unwrap_or_default()
    };
    Ok(state
        .local
        .iter()
        .zip(&places)
        .map(|(&i, p)| NodeCounters {
            name: state.model.nodes[i].name.clone(),
            ip: state.model.nodes[i].ip,
            up: find(&up[p.cell], p),
            down: find(&down[p.cell], p),
        })
        .collect())
}
