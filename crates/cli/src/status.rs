//! `p2plab status`: the networks that are up, or one network's per-node counters.

use anyhow::Result;
use clap::Args;
use shaping::Network;
use std::fmt::Write as _;

/// Show the networks that are up, or one network's per-node counters.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab status\n  p2plab status lab2   # bytes, packets and drops per node, upload and download"
)]
pub struct StatusArgs {
    /// Network name; without it, list all networks.
    pub name: Option<String>,
}

pub fn status(args: &StatusArgs) -> Result<()> {
    let Some(name) = &args.name else {
        let mut s = format!(
            "{:<16} {:<8} {:<8} {:>6}  state\n",
            "NAME", "DEV", "BACKEND", "NODES"
        );
        for network in Network::list() {
            let n = network.state();
            let state = match (n.complete, network.engine_running()) {
                (false, _) => "incomplete (run `p2plab down` to clean up)",
                (true, Some(false)) => "up, delay engine NOT running",
                (true, _) => "up",
            };
            let _ = writeln!(
                s,
                "{:<16} {:<8} {:<8} {:>6}  {state}",
                n.name,
                n.dev,
                n.backend,
                n.local.len()
            );
        }
        return crate::output::emit(&s);
    };
    let network = Network::open(name)?;
    let state = network.state();
    let mut s = format!(
        "network {}: {} nodes on {}, backend {}{}{}\n{:<16} {:<15} {:>12} {:>9} {:>7} {:>12} {:>9} {:>7}\n",
        state.name,
        state.local.len(),
        state.dev,
        state.backend,
        match network.engine_running() {
            Some(false) => ", delay engine NOT running",
            _ => "",
        },
        if state.cut.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = state
                .cut
                .iter()
                .map(|&i| state.model.nodes[i].name.as_str())
                .collect();
            format!(", cut off: {}", names.join(" "))
        },
        "NODE",
        "IP",
        "UP_BYTES",
        "UP_PKTS",
        "UP_DROP",
        "DOWN_BYTES",
        "DOWN_PKTS",
        "DN_DROP"
    );
    for c in network.counters()? {
        let _ = writeln!(
            s,
            "{:<16} {:<15} {:>12} {:>9} {:>7} {:>12} {:>9} {:>7}",
            c.name,
            c.ip,
            c.up.bytes,
            c.up.packets,
            c.up.drops,
            c.down.bytes,
            c.down.packets,
            c.down.drops
        );
    }
    crate::output::emit(&s)
}
