//! The validated, planned topology: profiles, groups with their address blocks, every
//! node with its address and link parameters, and the group-to-group delay/loss table.
//! Queries answer the link model of DESIGN §3 for any ordered pair of nodes.

use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;

/// A named set of link parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// Upload rate `U(v)`, bits per second.
    pub up_bps: u64,
    /// Download rate `D(v)`, bits per second.
    pub down_bps: u64,
    /// Access latency `L(v)`, one way, microseconds.
    pub latency_us: u64,
    /// Access loss `p(v)`, a fraction in `0..=1`.
    pub loss: f64,
    /// Queue limit of each direction, packets.
    pub queue_packets: u32,
}

/// A group: its address block and the contiguous range of its nodes in `Plan::nodes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub prefix: Ipv4Net,
    /// Index into `Plan::profiles`.
    pub profile: usize,
    pub nodes: Range<usize>,
}

/// A virtual node with its address and its group's link parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    /// Index into `Plan::groups`.
    pub group: usize,
    /// 1-based position within the group.
    pub index: usize,
    pub up_bps: u64,
    pub down_bps: u64,
    pub latency_us: u64,
    pub loss: f64,
    pub queue_packets: u32,
}

/// A whole planned topology.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Packet size of the emulated links in bytes (`mtu`), if the topology sets one.
    pub mtu: Option<u32>,
    pub profiles: Vec<Profile>,
    pub groups: Vec<Group>,
    pub nodes: Vec<Node>,
    /// `G(a,b)` in microseconds, row-major `a * groups + b`.
    pub(crate) delay_us: Vec<u64>,
    /// `q(a,b)` as fractions, row-major; empty when no pair has loss.
    pub(crate) pair_loss: Vec<f64>,
    pub(crate) by_name: HashMap<String, usize>,
    /// Group indices sorted by prefix start, for address lookups.
    pub(crate) by_prefix: Vec<usize>,
}

impl Plan {
    /// The node that has `ip`, if any.
    pub fn node_by_ip(&self, ip: Ipv4Addr) -> Option<usize> {
        let ip_u = u32::from(ip);
        let pos = self
            .by_prefix
            .partition_point(|&g| u32::from(self.groups[g].prefix.network()) <= ip_u);
        let group = &self.groups[*self.by_prefix.get(pos.checked_sub(1)?)?];
        let k = ip_u.checked_sub(u32::from(group.prefix.network()))? as usize;
        (k >= 1 && k <= group.nodes.len()).then(|| group.nodes.start + k - 1)
    }

    /// The node called `name`, if any.
    pub fn node_by_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The group called `name`, if any.
    pub fn group_by_name(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// `G(a,b)`: one-way delay from group `a` to group `b`, microseconds.
    pub fn group_delay_us(&self, a: usize, b: usize) -> u64 {
        self.delay_us[a * self.groups.len() + b]
    }

    /// `q(a,b)`: loss between group `a` and group `b`, a fraction.
    pub fn group_loss(&self, a: usize, b: usize) -> f64 {
        self.pair_loss
            .get(a * self.groups.len() + b)
            .copied()
            .unwrap_or(0.0)
    }

    /// One-way delay from node `s` to node `d`: `L(s) + G(g(s), g(d)) + L(d)`.
    pub fn one_way_delay_us(&self, s: usize, d: usize) -> u64 {
        let (s, d) = (&self.nodes[s], &self.nodes[d]);
        s.latency_us + self.group_delay_us(s.group, d.group) + d.latency_us
    }

    /// Loss probability from node `s` to node `d`: `1 - (1-p(s))(1-q)(1-p(d))`.
    pub fn loss_probability(&self, s: usize, d: usize) -> f64 {
        let (s, d) = (&self.nodes[s], &self.nodes[d]);
        1.0 - (1.0 - s.loss) * (1.0 - self.group_loss(s.group, d.group)) * (1.0 - d.loss)
    }

    /// The nodes of group `g`.
    pub fn group_nodes(&self, g: usize) -> &[Node] {
        &self.nodes[self.groups[g].nodes.clone()]
    }

    /// Minimum, median and maximum of `G(a,b)` over ordered pairs of distinct groups (the
    /// one group's own delay when there is only one), microseconds.
    pub fn delay_summary_us(&self) -> (u64, u64, u64) {
        let n = self.groups.len();
        let mut values: Vec<u64> = if n == 1 {
            self.delay_us.clone()
        } else {
            (0..n * n)
                .filter(|i| i / n != i % n)
                .map(|i| self.delay_us[i])
                .collect()
        };
        if values.is_empty() {
            return (0, 0, 0);
        }
        let mid = values.len() / 2;
        let (_, median, _) = values.select_nth_unstable(mid);
        let median = *median;
        let min = *values.iter().min().unwrap_or(&0);
        let max = *values.iter().max().unwrap_or(&0);
        (min, median, max)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::Path;

    /// Groups a (2 nodes), b (3 nodes, 10% access loss) and c (1 node), with one-way delays
    /// a->b 20 ms, b->a 30 ms, a<->c 10 ms, 7 ms elsewhere, and 50% loss between b and c.
    const SRC: &str = "profiles:\n  p: {up: 1mbit, down: 2mbit, latency: 1ms}\n  lossy: {up: 1mbit, down: 2mbit, loss: 10%}\ndefaults: {profile: p, delay: 7ms}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: b, nodes: 3, profile: lossy, prefix: 10.9.0.0/24}\n  - {name: c, nodes: 1}\ndelays:\n  - {from: a, to: b, delay: 20ms}\n  - {from: b, to: a, delay: 30ms}\n  - {from: a, to: c, delay: 10ms}\n  - {from: b, to: c, loss: 50%}\n";

    /// The plan of a topology that is expected to be valid.
    fn plan(src: &str) -> super::Plan {
        crate::parse(Path::new("t.yaml"), src).unwrap()
    }

    #[test]
    fn delay_summary_is_over_pairs_of_distinct_groups() {
        // Off the diagonal: 20, 10, 30, 7, 10, 7 -> sorted 7 7 10 10 20 30, median the 4th.
        assert_eq!(plan(SRC).delay_summary_us(), (7_000, 10_000, 30_000));
        let one = "profiles: {p: {up: 1mbit, down: 1mbit}}\ndefaults: {profile: p}\ngroups: [{name: a, nodes: 2}]\ndelays: [{from: a, to: a, delay: 3ms}]\n";
        assert_eq!(plan(one).delay_summary_us(), (3_000, 3_000, 3_000));
        let none = "profiles: {p: {up: 1mbit, down: 1mbit}}\ngroups: []\n";
        assert_eq!(plan(none).delay_summary_us(), (0, 0, 0));
    }

    #[test]
    fn nodes_are_found_by_address_name_and_group() {
        let p = plan(SRC);
        assert_eq!(p.group_by_name("b"), Some(1));
        assert_eq!(p.group_by_name("d"), None);
        let names: Vec<&str> = p.group_nodes(1).iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b-1", "b-2", "b-3"]);
        let b = |last: u8| p.node_by_ip(Ipv4Addr::new(10, 9, 0, last));
        // The network address and the addresses past the last node belong to no node.
        assert_eq!(
            [b(0), b(1), b(3), b(4), b(255)],
            [None, Some(2), Some(4), None, None]
        );
        assert_eq!(p.node_by_ip(Ipv4Addr::new(10, 0, 0, 2)), Some(1));
        assert_eq!(p.node_by_ip(Ipv4Addr::new(9, 255, 255, 255)), None);
        assert_eq!(p.node_by_name("c-1"), Some(5));
    }

    #[test]
    fn loss_combines_both_access_links_and_the_group_pair() {
        let p = plan(SRC);
        let (a1, b1, b2, c1) = (0, 2, 3, 5);
        assert_eq!(p.group_loss(1, 2), 0.5);
        assert_eq!(p.group_loss(2, 1), 0.5);
        assert_eq!(p.group_loss(0, 1), 0.0);
        assert_eq!(p.loss_probability(a1, a1), 0.0);
        // 1 - 0.9 * 0.9 and 1 - 0.9 * 0.5.
        assert!((p.loss_probability(b1, b2) - 0.19).abs() < 1e-12);
        assert!((p.loss_probability(c1, b1) - 0.55).abs() < 1e-12);
        // Without pair loss the table is empty and every pair has none.
        let plain = plan(&SRC.replace("  - {from: b, to: c, loss: 50%}\n", ""));
        assert_eq!(plain.group_loss(1, 2), 0.0);
        assert_eq!(plain.one_way_delay_us(0, 2), 1_000 + 20_000);
        assert_eq!(plain.one_way_delay_us(5, 0), 1_000 + 10_000 + 1_000);
    }
}
