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
