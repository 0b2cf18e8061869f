//! The validated, planned topology: the profiles it declares, which profile each group
//! uses, and the link model they make (every node with its address and access link, every
//! group with its address block, the group-to-group delay and loss table).

use crate::link::LinkModel;

/// A named set of link parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

/// A whole planned topology.
#[derive(Debug, Clone)]
pub struct Plan {
    pub profiles: Vec<Profile>,
    /// The profile of each group: an index into `profiles`.
    pub group_profiles: Vec<usize>,
    /// Nodes, groups, addresses, delays and losses.
    pub link: LinkModel,
}
