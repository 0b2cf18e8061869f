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

    #[test]
    fn overlap() {
        assert!(prefixes_overlap(
            (Ipv4Addr::new(10, 1, 0, 0), 16),
            (Ipv4Addr::new(10, 1, 2, 0), 24)
        ));
        assert!(!prefixes_overlap(
            (Ipv4Addr::new(10, 1, 0, 0), 16),
            (Ipv4Addr::new(10, 2, 0, 0), 16)
        ));
    }
}
