//! `p2plab status`: the networks that are up, or one network's per-node counters, as a
//! table or (`--json`) as JSON.

use anyhow::Result;
use clap::Args;
use serde_json::json;
use shaping::Network;
use std::fmt::Write as _;

/// Show the networks that are up, or one network's per-node counters.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab status\n  p2plab status --name lab2   # bytes, packets and drops per node, upload and download\n  p2plab status --json | jq '.[].name'"
)]
pub struct StatusArgs {
    /// The network whose counters to show; without it, list every network up here.
    #[arg(long)]
    pub name: Option<String>,
    /// The network as a positional argument, as earlier releases had it (use --name).
    #[arg(hide = true, value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `status` says of a network's health.
fn health(network: &Network) -> &'static str {
    match (network.state().complete, network.engine_running()) {
        (false, _) => "incomplete (run `p2plab down` to clean up)",
        (true, Some(false)) => "up, delay engine NOT running",
        (true, _) => "up",
    }
}

pub fn status(args: &StatusArgs) -> Result<()> {
    match args.name.as_ref().or(args.positional.as_ref()) {
        Some(name) => one(&Network::open(name)?, args.json),
        None => list(args.json),
    }
}

/// Every network up here: name, device, backend, nodes and health.
fn list(json: bool) -> Result<()> {
    let networks = Network::list();
    if json {
        let rows: Vec<serde_json::Value> = networks
            .iter()
            .map(|network| {
                let n = network.state();
                json!({"name": n.name, "dev": n.dev, "backend": n.backend,
                       "nodes": n.local.len(), "state": health(network)})
            })
            .collect();
        return crate::output::emit_json(&json!(rows));
    }
    let mut s = format!(
        "{:<16} {:<8} {:<8} {:>6}  state\n",
        "NAME", "DEV", "BACKEND", "NODES"
    );
    for network in &networks {
        let n = network.state();
        let _ = writeln!(
            s,
            "{:<16} {:<8} {:<8} {:>6}  {}",
            n.name,
            n.dev,
            n.backend,
            n.local.len(),
            health(network)
        );
    }
    crate::output::emit(&s)
}

/// One network's per-node counters.
fn one(network: &Network, json: bool) -> Result<()> {
    let state = network.state();
    let cut: Vec<&str> = state
        .cut
        .iter()
        .map(|&i| state.model.nodes[i].name.as_str())
        .collect();
    let counters = network.counters()?;
    if json {
        let class = |c: &netctl::ClassStats| json!({"bytes": c.bytes, "packets": c.packets, "drops": c.drops});
        let nodes: Vec<serde_json::Value> = counters
            .iter()
            .map(|c| json!({"name": c.name, "ip": c.ip.to_string(), "up": class(&c.up), "down": class(&c.down)}))
            .collect();
        return crate::output::emit_json(&json!({
            "name": state.name, "dev": state.dev, "backend": state.backend,
            "state": health(network), "cut": cut, "nodes": nodes,
        }));
    }
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
        if cut.is_empty() {
            String::new()
        } else {
            format!(", cut off: {}", cut.join(" "))
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
    for c in counters {
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
