//! Renderings of a plan for people and scripts: the `check` summary, the `plan` table,
//! the `plan` JSON (`{"nodes":[..],"groups":[..]}`, the format later commands read), and
//! the compact record of a plan a run keeps in its `run.json` ([`resolved_json`]).

use crate::plan::Plan;
use crate::units::{format_rate, format_time_us};
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
struct NodeRecord<'a> {
    name: &'a str,
    ip: String,
    group: &'a str,
    up_bps: u64,
    down_bps: u64,
    latency_us: u64,
    /// Access loss `p(v)` as a fraction.
    loss: f64,
    queue_packets: u32,
}

#[derive(Serialize)]
struct GroupRecord<'a> {
    name: &'a str,
    prefix: String,
    nodes: usize,
    first_ip: String,
    last_ip: String,
    profile: &'a str,
    /// One-way delays `G(this, other)` in microseconds, in group order (left out of the
    /// compact record of a plan with more than `MAX_DELAY_ROWS` groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_us: Option<Vec<u64>>,
    /// Losses `q(this, other)` as fractions, in group order: in the compact record, when
    /// some pair has loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<Vec<f64>>,
    /// The node names, in the compact record, when they are not `<group>-<k>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    node_names: Option<Vec<&'a str>>,
}

/// The compact record of a plan gives the group-to-group delays and losses row by row up
/// to this many groups (10,000 pairs), and their minimum, median and maximum beyond.
const MAX_DELAY_ROWS: usize = 100;

#[derive(Serialize)]
struct ResolvedRecord<'a> {
    nodes: usize,
    mtu: Option<u32>,
    profiles: &'a [crate::Profile],
    groups: Vec<GroupRecord<'a>>,
    /// `[min, median, max]` of `G(a,b)` over pairs of distinct groups, microseconds.
    delay_summary_us: [u64; 3],
}

#[derive(Serialize)]
struct PlanRecord<'a> {
    nodes: Vec<NodeRecord<'a>>,
    groups: Vec<GroupRecord<'a>>,
}

/// The whole plan as JSON text.
pub fn plan_json(plan: &Plan) -> String {
    let nodes: Vec<NodeRecord<'_>> = plan
        .link
        .nodes
        .iter()
        .map(|n| NodeRecord {
            name: &n.name,
            ip: n.ip.to_string(),
            group: &plan.link.groups[n.group].name,
            up_bps: n.up_bps,
            down_bps: n.down_bps,
            latency_us: n.latency_us,
            loss: n.loss,
            queue_packets: n.queue_packets,
        })
        .collect();
    let groups = group_records(plan, false);
    serde_json::to_string(&PlanRecord { nodes, groups }).expect("plain records serialize")
}

/// Every group of `plan` with its addresses, profile and delays; `compact` for a run's
/// record (see [`resolved_json`]).
fn group_records(plan: &Plan, compact: bool) -> Vec<GroupRecord<'_>> {
    let link = &plan.link;
    let n = link.groups.len();
    let rows = !compact || n <= MAX_DELAY_ROWS;
    let has_loss = (0..n * n).any(|i| link.group_loss(i / n, i % n) > 0.0);
    link.groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let nodes = link.group_nodes(g);
            let numbered = nodes
                .iter()
                .enumerate()
                .all(|(k, node)| node.name == format!("{}-{}", group.name, k + 1));
            GroupRecord {
                name: &group.name,
                prefix: group.prefix.to_string(),
                nodes: nodes.len(),
                first_ip: nodes[0].ip.to_string(),
                last_ip: nodes[nodes.len() - 1].ip.to_string(),
                profile: &plan.profiles[plan.group_profiles[g]].name,
                delay_us: rows.then(|| (0..n).map(|o| link.group_delay_us(g, o)).collect()),
                loss: (compact && rows && has_loss)
                    .then(|| (0..n).map(|o| link.group_loss(g, o)).collect()),
                node_names: (compact && !numbered)
                    .then(|| nodes.iter().map(|node| node.name.as_str()).collect()),
            }
        })
        .collect()
}

/// The plan as a run records it in `run.json`: the profiles, each group with its address
/// block, first and last address, profile and its row of group-to-group delays (and of
/// losses, when some pair has loss), node names only where they are not `<group>-<k>`, and
/// the delays' minimum, median and maximum. Node `k` of a group has the block's network
/// address + `k` and its group's profile, so every node's link follows; this stays a few
/// kilobytes for 5,000 nodes in 50 groups. Beyond 100 groups (a large delay matrix) the
/// rows are left out: the topology file has them.
pub fn resolved_json(plan: &Plan) -> serde_json::Value {
    let (min, median, max) = plan.link.delay_summary_us();
    serde_json::to_value(ResolvedRecord {
        nodes: plan.link.nodes.len(),
        mtu: plan.link.mtu,
        profiles: &plan.profiles,
        groups: group_records(plan, true),
        delay_summary_us: [min, median, max],
    })
    .expect("plain records serialize")
}

/// Width of a table column: its widest entry or its header.
fn column_width(lengths: impl Iterator<Item = usize>, header: &str) -> usize {
    lengths.max().unwrap_or(0).max(header.len())
}

/// One line per node.
pub fn plan_table(plan: &Plan) -> String {
    let width = column_width(plan.link.nodes.iter().map(|n| n.name.len()), "NAME");
    let gwidth = column_width(plan.link.groups.iter().map(|g| g.name.len()), "GROUP");
    let mut out = format!(
        "{:<width$}  {:<15}  {:<gwidth$}  {:>9}  {:>9}  {:>9}  {:>6}\n",
        "NAME", "IP", "GROUP", "UP", "DOWN", "LATENCY", "LOSS"
    );
    for n in &plan.link.nodes {
        let _ = writeln!(
            out,
            "{:<width$}  {:<15}  {:<gwidth$}  {:>9}  {:>9}  {:>9}  {:>5}%",
            n.name,
            n.ip.to_string(),
            plan.link.groups[n.group].name,
            format_rate(n.up_bps),
            format_rate(n.down_bps),
            format_time_us(n.latency_us),
            n.loss * 100.0
        );
    }
    out
}

/// The short summary `p2plab check` prints.
pub fn summary(plan: &Plan) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut out = format!(
        "{}, {}, {}{}\n",
        count(plan.link.groups.len(), "group"),
        count(plan.link.nodes.len(), "node"),
        count(plan.profiles.len(), "profile"),
        plan.link
            .mtu
            .map(|m| format!(", packets of {m} bytes"))
            .unwrap_or_default()
    );
    for (g, group) in plan.link.groups.iter().enumerate() {
        let nodes = plan.link.group_nodes(g);
        let p = &plan.profiles[plan.group_profiles[g]];
        let _ = writeln!(
            out,
            "  {:<12} {:>6} nodes  {:<18} {} - {}  profile {} (up {}, down {}, latency {}, loss {}%)",
            group.name,
            nodes.len(),
            group.prefix.to_string(),
            nodes[0].ip,
            nodes[nodes.len() - 1].ip,
            p.name,
            format_rate(p.up_bps),
            format_rate(p.down_bps),
            format_time_us(p.latency_us),
            p.loss * 100.0
        );
    }
    let (min, median, max) = plan.link.delay_summary_us();
    let _ = writeln!(
        out,
        "group-to-group delay: min {}, median {}, max {}",
        format_time_us(min),
        format_time_us(median),
        format_time_us(max)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Groups a (2 nodes, allocated) and b (1 node, own prefix), a->b 20 ms, b->a 30 ms.
    fn plan() -> Plan {
        let src = "mtu: 1500\nprofiles:\n  p: {up: 2mbit, down: 1500kbit, latency: 1.5ms, loss: 0.5%}\ndefaults: {profile: p}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: b, nodes: 1, prefix: 10.9.0.0/30}\ndelays:\n  - {from: a, to: b, delay: 20ms}\n  - {from: b, to: a, delay: 30ms}\n";
        crate::parse(Path::new("t.yaml"), src).unwrap()
    }

    #[test]
    fn the_json_lists_nodes_and_groups_with_their_delays() {
        let node = |name: &str, ip: &str, group: &str| {
            format!(
                r#"{{"name":"{name}","ip":"{ip}","group":"{group}","up_bps":2000000,"down_bps":1500000,"latency_us":1500,"loss":0.005,"queue_packets":1000}}"#
            )
        };
        let expected = format!(
            r#"{{"nodes":[{},{},{}],"groups":[{},{}]}}"#,
            node("a-1", "10.0.0.1", "a"),
            node("a-2", "10.0.0.2", "a"),
            node("b-1", "10.9.0.1", "b"),
            r#"{"name":"a","prefix":"10.0.0.0/30","nodes":2,"first_ip":"10.0.0.1","last_ip":"10.0.0.2","profile":"p","delay_us":[0,20000]}"#,
            r#"{"name":"b","prefix":"10.9.0.0/30","nodes":1,"first_ip":"10.9.0.1","last_ip":"10.9.0.1","profile":"p","delay_us":[30000,0]}"#,
        );
        assert_eq!(plan_json(&plan()), expected);
    }

    #[test]
    fn the_resolved_record_gives_profiles_groups_addresses_delays_and_losses() {
        let src = "profiles:\n  p: {up: 2mbit, down: 1mbit, latency: 5ms}\n  q: {up: 1mbit, down: 1mbit}\ndefaults: {profile: p}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: s, nodes: [tracker, seed], profile: q, prefix: 10.9.0.0/29}\ndelays:\n  - {from: a, to: s, delay: 20ms, loss: 1%}\n";
        let plan = crate::parse(Path::new("t.yaml"), src).unwrap();
        let expected = serde_json::json!({
            "nodes": 4,
            "mtu": null,
            "profiles": [
                {"name": "p", "up_bps": 2_000_000, "down_bps": 1_000_000, "latency_us": 5000, "loss": 0.0, "queue_packets": 1000},
                {"name": "q", "up_bps": 1_000_000, "down_bps": 1_000_000, "latency_us": 0, "loss": 0.0, "queue_packets": 1000},
            ],
            "groups": [
                {"name": "a", "prefix": "10.0.0.0/30", "nodes": 2, "first_ip": "10.0.0.1", "last_ip": "10.0.0.2",
                 "profile": "p", "delay_us": [0, 20000], "loss": [0.0, 0.01]},
                {"name": "s", "prefix": "10.9.0.0/29", "nodes": 2, "first_ip": "10.9.0.1", "last_ip": "10.9.0.2",
                 "profile": "q", "delay_us": [20000, 0], "loss": [0.01, 0.0], "node_names": ["tracker", "seed"]},
            ],
            "delay_summary_us": [20000, 20000, 20000],
        });
        assert_eq!(resolved_json(&plan), expected);
    }

    #[test]
    fn the_resolved_record_of_many_groups_summarises_their_delays() {
        let groups: String = (0..=MAX_DELAY_ROWS)
            .map(|g| format!("  - {{name: g{g}, nodes: 50}}\n"))
            .collect();
        let src = format!("profiles: {{p: {{up: 1mbit, down: 1mbit}}}}\ndefaults: {{profile: p, delay: 10ms}}\naddress_plan: {{base: 10.0.0.0/8}}\ngroups:\n{groups}");
        let plan = crate::parse(Path::new("t.yaml"), &src).unwrap();
        let record = resolved_json(&plan);
        assert_eq!(record["nodes"], 50 * (MAX_DELAY_ROWS + 1));
        assert_eq!(record["groups"][0].get("delay_us"), None);
        assert_eq!(record["groups"][0]["last_ip"], "10.0.0.50");
        assert_eq!(
            record["delay_summary_us"],
            serde_json::json!([10000, 10000, 10000])
        );
        assert!(
            record.to_string().len() < 20_000,
            "{}",
            record.to_string().len()
        );
    }

    #[test]
    fn the_table_has_a_line_per_node_in_aligned_columns() {
        assert_eq!(
            plan_table(&plan()),
            "NAME  IP               GROUP         UP       DOWN    LATENCY    LOSS\n\
             a-1   10.0.0.1         a          2mbit   1500kbit      1.5ms    0.5%\n\
             a-2   10.0.0.2         a          2mbit   1500kbit      1.5ms    0.5%\n\
             b-1   10.9.0.1         b          2mbit   1500kbit      1.5ms    0.5%\n"
        );
    }

    #[test]
    fn the_summary_counts_and_describes_each_group() {
        assert_eq!(
            summary(&plan()),
            "2 groups, 3 nodes, 1 profile, packets of 1500 bytes\n  \
             a                 2 nodes  10.0.0.0/30        10.0.0.1 - 10.0.0.2  profile p (up 2mbit, down 1500kbit, latency 1.5ms, loss 0.5%)\n  \
             b                 1 nodes  10.9.0.0/30        10.9.0.1 - 10.9.0.1  profile p (up 2mbit, down 1500kbit, latency 1.5ms, loss 0.5%)\n\
             group-to-group delay: min 20ms, median 30ms, max 30ms\n"
        );
    }
}
