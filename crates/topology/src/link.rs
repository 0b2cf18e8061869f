//! The link model as plain data: every node's access link, every group's address block and
//! every ordered group pair's delay and loss, with the formulas that combine them for a pair
//! of nodes (see the crate documentation). A [`Plan`](crate::Plan) holds one; the network's
//! state file stores it whole (so that `down`, `status`, run-time changes and the delay
//! engine never re-read the topology), and everything that applies the model reads it here.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;

/// One virtual node: its name, address, group and access link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    /// Index into [`LinkModel::groups`].
    pub group: usize,
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

/// A group: its address block and the contiguous range of its nodes in
/// [`LinkModel::nodes`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub prefix: Ipv4Net,
    pub nodes: Range<usize>,
}

/// The link model of a whole topology. Names, addresses and groups are fixed when it is
/// made (the lookups by name and address are built then); link parameters may change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(from = "Stored")]
pub struct LinkModel {
    /// Every node, group by group.
    pub nodes: Vec<Node>,
    /// Every group, in declaration order.
    pub groups: Vec<Group>,
    /// `G(a,b)` in microseconds, row-major `a * groups + b`.
    delay_us: Vec<u64>,
    /// `q(a,b)` as fractions, row-major; empty while no pair has loss.
    pair_loss: Vec<f64>,
    /// Packet size of the emulated links in bytes (`mtu`), if the topology sets one.
    pub mtu: Option<u32>,
    #[serde(skip)]
    by_name: HashMap<String, usize>,
    /// Group indices sorted by prefix start, for address lookups.
    #[serde(skip)]
    by_prefix: Vec<usize>,
}

/// A link model as stored: the same fields without the lookups, which are rebuilt on reading.
#[derive(Deserialize)]
struct Stored {
    nodes: Vec<Node>,
    groups: Vec<Group>,
    delay_us: Vec<u64>,
    pair_loss: Vec<f64>,
    mtu: Option<u32>,
}

impl From<Stored> for LinkModel {
    fn from(s: Stored) -> Self {
        LinkModel::new(s.nodes, s.groups, s.delay_us, s.pair_loss, s.mtu)
    }
}

impl LinkModel {
    /// A model of `nodes` in `groups`, with `G` and `q` given row-major (`pair_loss` may be
    /// empty: no pair has loss). Node names are unique and group prefixes disjoint (the
    /// topology's validation sees to it).
    pub fn new(
        nodes: Vec<Node>,
        groups: Vec<Group>,
        delay_us: Vec<u64>,
        pair_loss: Vec<f64>,
        mtu: Option<u32>,
    ) -> Self {
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        Self::with_names(nodes, groups, delay_us, pair_loss, mtu, by_name)
    }

    /// [`LinkModel::new`] with the lookup by node name already made (validation makes it
    /// to find repeated names).
    pub(crate) fn with_names(
        nodes: Vec<Node>,
        groups: Vec<Group>,
        delay_us: Vec<u64>,
        mut pair_loss: Vec<f64>,
        mtu: Option<u32>,
        by_name: HashMap<String, usize>,
    ) -> Self {
        if pair_loss.iter().all(|&l| l == 0.0) {
            pair_loss.clear();
        }
        let mut by_prefix: Vec<usize> = (0..groups.len()).collect();
        by_prefix.sort_unstable_by_key(|&g| groups[g].prefix.network());
        LinkModel {
            nodes,
            groups,
            delay_us,
            pair_loss,
            mtu,
            by_name,
            by_prefix,
        }
    }

    /// A synthetic model for benchmarks and tests: `groups` groups of `per_group` nodes, all
    /// with the same rates and latency and a queue of 100 packets, group g in
    /// 10.(g+1).0.0/16 with nodes `g<g>n<k>` from .1, no group delay or loss.
    pub fn uniform(groups: usize, per_group: usize, up: u64, down: u64, latency_us: u64) -> Self {
        let nodes = (0..groups * per_group)
            .map(|i| {
                let (g, k) = (i / per_group, i % per_group + 1);
                Node {
                    name: format!("g{g}n{k}"),
                    ip: Ipv4Addr::from(0x0a00_0000 + ((g as u32 + 1) << 16) + k as u32),
                    group: g,
                    up_bps: up,
                    down_bps: down,
                    latency_us,
                    loss: 0.0,
                    queue_packets: 100,
                }
            })
            .collect();
        let groups = (0..groups)
            .map(|g| Group {
                name: format!("g{g}"),
                prefix: Ipv4Net::new(Ipv4Addr::new(10, g as u8 + 1, 0, 0), 16)
                    .expect("16 is a prefix length"),
                nodes: g * per_group..(g + 1) * per_group,
            })
            .collect::<Vec<_>>();
        let n = groups.len();
        LinkModel::new(nodes, groups, vec![0; n * n], vec![], None)
    }

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

    /// The nodes of group `g`.
    pub fn group_nodes(&self, g: usize) -> &[Node] {
        &self.nodes[self.groups[g].nodes.clone()]
    }

    /// Node `i`'s 1-based position within its group.
    pub fn index_in_group(&self, i: usize) -> usize {
        i - self.groups[self.nodes[i].group].nodes.start + 1
    }

    /// `G(a,b)`: one-way delay from group `a` to group `b`, microseconds.
    pub fn group_delay_us(&self, a: usize, b: usize) -> u64 {
        self.delay_us[a * self.groups.len() + b]
    }

    /// `q(a,b)`: loss from group `a` to group `b`, a fraction.
    pub fn group_loss(&self, a: usize, b: usize) -> f64 {
        self.pair_loss
            .get(a * self.groups.len() + b)
            .copied()
            .unwrap_or(0.0)
    }

    /// Sets `G(a,b)`, microseconds.
    pub fn set_group_delay_us(&mut self, a: usize, b: usize, delay_us: u64) {
        let n = self.groups.len();
        self.delay_us[a * n + b] = delay_us;
    }

    /// Sets `q(a,b)`, a fraction.
    pub fn set_group_loss(&mut self, a: usize, b: usize, loss: f64) {
        let n = self.groups.len();
        if self.pair_loss.is_empty() {
            if loss == 0.0 {
                return;
            }
            self.pair_loss = vec![0.0; n * n];
        }
        self.pair_loss[a * n + b] = loss;
    }

    /// One-way delay from node `s` to node `d`: `L(s) + G(g(s), g(d)) + L(d)`.
    pub fn one_way_delay_us(&self, s: usize, d: usize) -> u64 {
        let (s, d) = (&self.nodes[s], &self.nodes[d]);
        s.latency_us + self.group_delay_us(s.group, d.group) + d.latency_us
    }

    /// Loss probability from node `s` to node `d`: `1 - (1-p(s))(1-q(g(s),g(d)))(1-p(d))`.
    pub fn loss_probability(&self, s: usize, d: usize) -> f64 {
        let (s, d) = (&self.nodes[s], &self.nodes[d]);
        1.0 - (1.0 - s.loss) * (1.0 - self.group_loss(s.group, d.group)) * (1.0 - d.loss)
    }

    /// Whether any path has a delay or a loss (else rates alone need no delay stage).
    pub fn has_delay_or_loss(&self) -> bool {
        self.nodes.iter().any(|n| n.latency_us > 0 || n.loss > 0.0)
            || self.delay_us.iter().any(|&d| d > 0)
            || self.pair_loss.iter().any(|&q| q > 0.0)
    }

    /// A lookup from (source, destination) address to (one-way delay in µs, loss fraction),
    /// `None` when either address is not a node: what a delay engine asks per packet.
    pub fn lookup(
        &self,
    ) -> impl Fn(Ipv4Addr, Ipv4Addr) -> Option<(u64, f64)> + Send + Sync + 'static {
        let index: HashMap<Ipv4Addr, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.ip, i))
            .collect();
        let model = self.clone();
        move |s, d| {
            let (s, d) = (*index.get(&s)?, *index.get(&d)?);
            Some((model.one_way_delay_us(s, d), model.loss_probability(s, d)))
        }
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

    /// The first of our groups whose prefix shares an address with one of `other`'s, with
    /// that group of `other`.
    pub fn overlaps<'a>(&'a self, other: &'a LinkModel) -> Option<(&'a Group, &'a Group)> {
        self.groups.iter().find_map(|a| {
            other
                .groups
                .iter()
                .find(|b| a.prefix.contains(&b.prefix) || b.prefix.contains(&a.prefix))
                .map(|b| (a, b))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Groups a (2 nodes), b (3 nodes, 10% access loss) and c (1 node), with one-way delays
    /// a->b 20 ms, b->a 30 ms, a<->c 10 ms, 7 ms elsewhere, and 50% loss between b and c.
    const SRC: &str = "profiles:\n  p: {up: 1mbit, down: 2mbit, latency: 1ms}\n  lossy: {up: 1mbit, down: 2mbit, loss: 10%}\ndefaults: {profile: p, delay: 7ms}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: b, nodes: 3, profile: lossy, prefix: 10.9.0.0/24}\n  - {name: c, nodes: 1}\ndelays:\n  - {from: a, to: b, delay: 20ms}\n  - {from: b, to: a, delay: 30ms}\n  - {from: a, to: c, delay: 10ms}\n  - {from: b, to: c, loss: 50%}\n";

    /// The link model of a topology that is expected to be valid.
    fn plan(src: &str) -> LinkModel {
        crate::parse(Path::new("t.yaml"), src).unwrap().link
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

    #[test]
    fn delay_and_loss_follow_the_link_model() {
        let mut m = LinkModel::uniform(2, 2, 1, 1, 5_000);
        m.set_group_delay_us(0, 1, 20_000);
        m.set_group_loss(0, 1, 0.1);
        m.nodes[0].loss = 0.5;
        let f = m.lookup();
        let (d, p) = f(m.nodes[0].ip, m.nodes[2].ip).unwrap();
        assert_eq!(d, 30_000);
        assert!((p - (1.0 - 0.5 * 0.9)).abs() < 1e-12);
        assert_eq!(f(m.nodes[2].ip, m.nodes[0].ip).unwrap().0, 10_000);
        assert_eq!(f(Ipv4Addr::LOCALHOST, m.nodes[0].ip), None);
    }

    /// Two groups of two nodes with every term of the link model set, each to a distinct
    /// value: access latencies 1, 2, 3, 4 ms and losses 0.5, 0, 0.2, 0.1; G(0,1) = 20 ms,
    /// G(1,0) = 7 ms, G(0,0) = 0.5 ms; q(0,1) = 0.1, q(1,0) = 0.25.
    fn every_term_set() -> LinkModel {
        let mut m = LinkModel::uniform(2, 2, 1, 1, 0);
        for (n, (lat, loss)) in
            m.nodes
                .iter_mut()
                .zip([(1_000, 0.5), (2_000, 0.0), (3_000, 0.2), (4_000, 0.1)])
        {
            (n.latency_us, n.loss) = (lat, loss);
        }
        for (a, b, delay_us, loss) in [(0, 0, 500, 0.0), (0, 1, 20_000, 0.1), (1, 0, 7_000, 0.25)] {
            m.set_group_delay_us(a, b, delay_us);
            m.set_group_loss(a, b, loss);
        }
        m
    }

    #[test]
    fn every_term_counts_in_delay_and_loss() {
        let m = every_term_set();
        let f = m.lookup();
        let ip = |i: usize| m.nodes[i].ip;
        let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-12, "{got} != {want}");
        // L(s) + G(0,1) + L(d) = 1 + 20 + 3 ms; 1 - (1-0.5)(1-0.1)(1-0.2) = 1 - 0.36
        let (d, p) = f(ip(0), ip(2)).unwrap();
        assert_eq!(d, 24_000);
        close(p, 0.64);
        // the other way: 3 + 7 + 1 ms; 1 - (1-0.2)(1-0.25)(1-0.5) = 1 - 0.3
        let (d, p) = f(ip(2), ip(0)).unwrap();
        assert_eq!(d, 11_000);
        close(p, 0.7);
        // the destination's loss alone: 1 - (1-0)(1-0.1)(1-0.1) = 1 - 0.81
        close(m.loss_probability(1, 3), 0.19);
        assert_eq!(m.one_way_delay_us(1, 3), 26_000);
        // inside group 0: 1 + 0.5 + 2 ms; 1 - (1-0.5)(1-0)(1-0) = 0.5
        assert_eq!(m.one_way_delay_us(0, 1), 3_500);
        close(m.loss_probability(0, 1), 0.5);
        assert_eq!(f(ip(0), Ipv4Addr::new(10, 3, 0, 1)), None);
    }

    #[test]
    fn any_delay_or_loss_is_noticed() {
        let none = LinkModel::uniform(2, 2, 1, 1, 0);
        assert!(!none.has_delay_or_loss());
        let mut latency = none.clone();
        latency.nodes[3].latency_us = 1;
        let mut loss = none.clone();
        loss.nodes[3].loss = 0.01;
        let mut group_delay = none.clone();
        group_delay.set_group_delay_us(1, 0, 1);
        let mut group_loss = none.clone();
        group_loss.set_group_loss(1, 0, 0.01);
        for m in [latency, loss, group_delay, group_loss] {
            assert!(m.has_delay_or_loss(), "{m:?}");
        }
    }

    #[test]
    fn uniform_numbers_groups_and_nodes_from_one() {
        let m = LinkModel::uniform(2, 3, 64_000, 128_000, 700);
        let nodes: Vec<(String, String, usize)> = m
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.ip.to_string(), n.group))
            .collect();
        let want = [
            ("g0n1", "10.1.0.1", 0),
            ("g0n2", "10.1.0.2", 0),
            ("g0n3", "10.1.0.3", 0),
            ("g1n1", "10.2.0.1", 1),
            ("g1n2", "10.2.0.2", 1),
            ("g1n3", "10.2.0.3", 1),
        ]
        .map(|(n, ip, g)| (n.to_string(), ip.to_string(), g));
        assert_eq!(nodes, want);
        assert!(m
            .nodes
            .iter()
            .all(|n| (n.up_bps, n.down_bps, n.latency_us) == (64_000, 128_000, 700)));
        let groups: Vec<_> = m
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.prefix.to_string(), g.nodes.clone()))
            .collect();
        assert_eq!(
            groups,
            [
                ("g0", "10.1.0.0/16".to_string(), 0..3),
                ("g1", "10.2.0.0/16".to_string(), 3..6)
            ]
        );
    }

    #[test]
    fn prefixes_overlap_when_they_share_an_address() {
        let with = |prefixes: &[&str]| {
            let mut m = LinkModel::uniform(prefixes.len(), 1, 1, 1, 0);
            for (g, p) in m.groups.iter_mut().zip(prefixes) {
                g.prefix = p.parse().unwrap();
            }
            m
        };
        let overlap = |a: &str, b: &str| with(&[a]).overlaps(&with(&[b])).is_some();
        for (a, b) in [
            ("10.1.0.0/16", "10.1.2.0/24"),
            ("10.1.0.0/16", "10.1.255.255/32"),
            ("10.1.0.7/32", "10.1.0.7/32"),
            ("0.0.0.0/0", "192.168.0.0/16"),
            ("10.1.128.0/17", "10.1.200.0/24"),
        ] {
            assert!(overlap(a, b), "{a} {b}");
            assert!(overlap(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("10.1.0.0/16", "10.2.0.0/16"),
            ("10.1.0.0/16", "10.0.255.255/32"),
            ("10.1.0.0/16", "10.2.0.0/32"),
            ("10.1.0.0/17", "10.1.128.0/17"),
            ("10.1.0.7/32", "10.1.0.6/32"),
        ] {
            assert!(!overlap(a, b), "{a} {b}");
            assert!(!overlap(b, a), "{b} {a}");
        }
        let ours = with(&["10.1.0.0/16", "10.2.0.0/16"]);
        assert_eq!(ours.overlaps(&with(&["10.3.0.0/16"])), None);
        let theirs = with(&["10.3.0.0/16", "10.2.7.0/24"]);
        let (a, b) = ours.overlaps(&theirs).unwrap();
        assert_eq!((a, b), (&ours.groups[1], &theirs.groups[1]));
    }

    #[test]
    fn a_stored_model_reads_back_with_its_lookups() {
        let m = every_term_set();
        let back: LinkModel = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.node_by_name("g1n2"), Some(3));
        assert_eq!(back.node_by_ip(Ipv4Addr::new(10, 2, 0, 1)), Some(2));
        assert_eq!(back.group_loss(1, 0), 0.25);
    }
}
