//! The link model of DESIGN §3 as plain data: what shaping needs from a topology, stored
//! whole in the state file so that `down`, `status` and the delay engine never re-read the
//! topology.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// One virtual node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Node {
    /// Name, for status output.
    pub name: String,
    /// Virtual address.
    pub ip: Ipv4Addr,
    /// Group index.
    pub group: usize,
    /// Upload rate U(v), bits per second.
    pub up_bps: u64,
    /// Download rate D(v), bits per second.
    pub down_bps: u64,
    /// Access latency L(v), one way, microseconds.
    pub latency_us: u64,
    /// Access loss p(v), fraction.
    pub loss: f64,
    /// Queue limit in packets.
    pub queue_packets: u32,
}

/// One group: its address prefix.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Prefix address and length.
    pub prefix: (Ipv4Addr, u8),
}

/// Nodes, groups and the group-to-group delay and loss matrices.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Model {
    /// All nodes.
    pub nodes: Vec<Node>,
    /// All groups.
    pub groups: Vec<Group>,
    /// G(a,b), one way, microseconds: `group_delay_us[a][b]`.
    pub group_delay_us: Vec<Vec<u64>>,
    /// q(a,b), fraction.
    pub group_loss: Vec<Vec<f64>>,
    /// Packet size of the links in bytes, set on the device while the network is up.
    #[serde(default)]
    pub mtu: Option<u32>,
}

impl Model {
    /// The link model of a planned topology.
    pub fn from_plan(plan: &topology::Plan) -> Self {
        let ng = plan.groups.len();
        Model {
            nodes: plan
                .nodes
                .iter()
                .map(|n| Node {
                    name: n.name.clone(),
                    ip: n.ip,
                    group: n.group,
                    up_bps: n.up_bps,
                    down_bps: n.down_bps,
                    latency_us: n.latency_us,
                    loss: n.loss,
                    queue_packets: n.queue_packets,
                })
                .collect(),
            groups: plan
                .groups
                .iter()
                .map(|g| Group {
                    name: g.name.clone(),
                    prefix: (g.prefix.network(), g.prefix.prefix_len()),
                })
                .collect(),
            group_delay_us: (0..ng)
                .map(|a| (0..ng).map(|b| plan.group_delay_us(a, b)).collect())
                .collect(),
            group_loss: (0..ng)
                .map(|a| (0..ng).map(|b| plan.group_loss(a, b)).collect())
                .collect(),
            mtu: plan.mtu,
        }
    }

    /// One-way delay s -> d: `L(s) + G(g(s), g(d)) + L(d)`.
    pub fn one_way_delay_us(&self, s: usize, d: usize) -> u64 {
        let (s, d) = (&self.nodes[s], &self.nodes[d]);
        s.latency_us + self.group_delay_us[s.group][d.group] + d.latency_us
    }

    /// Loss probability s -> d: `1 - (1-p(s))(1-q(g(s),g(d)))(1-p(d))`.
    pub fn loss_probability(&self, s: usize, d: usize) -> f64 {
        let (s, d) = (&self.nodes[s], &self.nodes[d]);
        1.0 - (1.0 - s.loss) * (1.0 - self.group_loss[s.group][d.group]) * (1.0 - d.loss)
    }

    /// Whether any path has a delay or a loss (else rates alone need no engine or netem).
    pub fn has_delay_or_loss(&self) -> bool {
        self.nodes.iter().any(|n| n.latency_us > 0 || n.loss > 0.0)
            || self.group_delay_us.iter().flatten().any(|d| *d > 0)
            || self.group_loss.iter().flatten().any(|q| *q > 0.0)
    }

    /// A lookup from (source, destination) address to (one-way delay in µs, loss fraction),
    /// `None` when either address is not a node: what the NFQUEUE engine asks per packet.
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

    /// A synthetic model for benchmarks and tests: `groups` groups of `per_group` nodes, all
    /// with the same rates and latency, group g in 10.(g+1).0.0/16, no group delay or loss.
    pub fn uniform(groups: usize, per_group: usize, up: u64, down: u64, latency_us: u64) -> Model {
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
        Model {
            nodes,
            groups: (0..groups)
                .map(|g| Group {
                    name: format!("g{g}"),
                    prefix: (Ipv4Addr::new(10, g as u8 + 1, 0, 0), 16),
                })
                .collect(),
            group_delay_us: vec![vec![0; groups]; groups],
            group_loss: vec![vec![0.0; groups]; groups],
            mtu: None,
        }
    }

    /// Whether any of our group prefixes overlaps one of `other`'s.
    pub fn overlaps(&self, other: &Model) -> Option<(&Group, Group)> {
        self.groups.iter().find_map(|a| {
            other
                .groups
                .iter()
                .find(|b| prefixes_overlap(a.prefix, b.prefix))
                .map(|b| (a, b.clone()))
        })
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// Whether two IPv4 prefixes share an address.
pub fn prefixes_overlap(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_and_loss_follow_the_link_model() {
        let mut m = Model::uniform(2, 2, 1, 1, 5_000);
        m.group_delay_us[0][1] = 20_000;
        m.group_loss[0][1] = 0.1;
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
    fn every_term_set() -> Model {
        let mut m = Model::uniform(2, 2, 1, 1, 0);
        for (n, (lat, loss)) in
            m.nodes
                .iter_mut()
                .zip([(1_000, 0.5), (2_000, 0.0), (3_000, 0.2), (4_000, 0.1)])
        {
            (n.latency_us, n.loss) = (lat, loss);
        }
        m.group_delay_us = vec![vec![500, 20_000], vec![7_000, 0]];
        m.group_loss = vec![vec![0.0, 0.1], vec![0.25, 0.0]];
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
        let none = Model::uniform(2, 2, 1, 1, 0);
        assert!(!none.has_delay_or_loss());
        let mut latency = none.clone();
        latency.nodes[3].latency_us = 1;
        let mut loss = none.clone();
        loss.nodes[3].loss = 0.01;
        let mut group_delay = none.clone();
        group_delay.group_delay_us[1][0] = 1;
        let mut group_loss = none.clone();
        group_loss.group_loss[1][0] = 0.01;
        for m in [latency, loss, group_delay, group_loss] {
            assert!(m.has_delay_or_loss(), "{m:?}");
        }
    }

    #[test]
    fn uniform_numbers_groups_and_nodes_from_one() {
        let m = Model::uniform(2, 3, 64_000, 128_000, 700);
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
            .map(|g| (g.name.as_str(), g.prefix))
            .collect();
        assert_eq!(
            groups,
            [
                ("g0", (Ipv4Addr::new(10, 1, 0, 0), 16)),
                ("g1", (Ipv4Addr::new(10, 2, 0, 0), 16))
            ]
        );
    }

    #[test]
    fn overlap() {
        let p = |s: &str| {
            let (ip, len) = s.split_once('/').unwrap();
            (ip.parse::<Ipv4Addr>().unwrap(), len.parse::<u8>().unwrap())
        };
        for (a, b) in [
            ("10.1.0.0/16", "10.1.2.0/24"),
            ("10.1.0.0/16", "10.1.255.255/32"),
            ("10.1.0.7/32", "10.1.0.7/32"),
            ("0.0.0.0/0", "192.168.0.0/16"),
            ("10.1.128.0/17", "10.1.200.0/24"),
        ] {
            assert!(prefixes_overlap(p(a), p(b)), "{a} {b}");
            assert!(prefixes_overlap(p(b), p(a)), "{b} {a}");
        }
        for (a, b) in [
            ("10.1.0.0/16", "10.2.0.0/16"),
            ("10.1.0.0/16", "10.0.255.255/32"),
            ("10.1.0.0/16", "10.2.0.0/32"),
            ("10.1.0.0/17", "10.1.128.0/17"),
            ("10.1.0.7/32", "10.1.0.6/32"),
        ] {
            assert!(!prefixes_overlap(p(a), p(b)), "{a} {b}");
            assert!(!prefixes_overlap(p(b), p(a)), "{b} {a}");
        }
        let ours = Model::uniform(2, 1, 1, 1, 0);
        let mut theirs = Model::uniform(1, 1, 1, 1, 0);
        theirs.groups[0].prefix = p("10.3.0.0/16");
        assert_eq!(ours.overlaps(&theirs), None);
        theirs.groups[0].prefix = p("10.2.7.0/24");
        let (a, b) = ours.overlaps(&theirs).unwrap();
        assert_eq!((a, b), (&ours.groups[1], theirs.groups[0].clone()));
    }
}
