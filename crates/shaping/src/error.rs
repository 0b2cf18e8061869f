//! The one error type of shaping: every failure of bringing a network up, taking it down,
//! changing it or reading its state file, each message one line saying what to do.

use netctl::probe::Backend;
use std::path::PathBuf;

/// A failure of shaping, one line, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing privilege.
    #[error("p2plab needs CAP_NET_ADMIN to change the network: run it as root (sudo)")]
    NotAdmin,
    /// The name is taken.
    #[error("network {0} is already up; run `p2plab down {0}` first or pick another --name")]
    NameTaken(String),
    /// No such network.
    #[error("no network named {0} is up (see `p2plab status`)")]
    NotUp(String),
    /// Ranges overlap another network's.
    #[error("group {group} ({ours}) overlaps group {theirs_group} ({theirs}) of network {other}; change the prefixes or take {other} down")]
    Overlap {
        /// Our group.
        group: String,
        /// Its prefix.
        ours: String,
        /// The other network.
        other: String,
        /// Its group.
        theirs_group: String,
        /// Its prefix.
        theirs: String,
    },
    /// Something `up` would create is already there.
    #[error(
        "{0} already exists and is not p2plab's; remove it or change the topology's addresses"
    )]
    Exists(String),
    /// Another netem network's group delays hold the device's root qdisc.
    #[error("the group delays of network {other} already use {dev}'s root qdisc; take {other} down, use another --dev, or --shaping nfqueue")]
    RootTaken {
        /// The other network.
        other: String,
        /// The device.
        dev: String,
    },
    /// The device's root qdisc is someone else's.
    #[error("{dev} has a root qdisc of its own ({kind} {handle:x}:) that the netem backend's group delays would replace; delete it (tc qdisc del dev {dev} root) or use --shaping nfqueue")]
    ForeignRoot {
        /// The device.
        dev: String,
        /// The qdisc's kind.
        kind: String,
        /// Its handle's major number.
        handle: u32,
    },
    /// The kernel lacks the backend.
    #[error("shaping backend {0} is not available here: {1}")]
    Backend(Backend, String),
    /// A netlink failure.
    #[error(transparent)]
    Net(#[from] netctl::Error),
    /// The state file could not be read or written.
    #[error("state file {0}: {1}")]
    State(PathBuf, String),
    /// The delay engine's process could not be started.
    #[error(transparent)]
    EngineStart(#[from] crate::engine::StartError),
    /// The delay engine ended right after its start; its log says why.
    #[error("delay engine exited at start: {log}")]
    EngineExited {
        /// What the engine wrote.
        log: String,
    },
    /// The NFQUEUE rules could not be added or removed (what iptables said).
    #[error("{0}")]
    Rules(String),
    /// A `--route` names a node placed on this host.
    #[error(
        "--route {route}: node {node} is on this host (--local); route only nodes on other hosts"
    )]
    RoutedLocal {
        /// The route as given (`NODES=HOST`).
        route: String,
        /// The node.
        node: String,
    },
    /// Two `--route`s hold one node.
    #[error(
        "--route {first} and --route {second} both hold node {node}; name each node's host once"
    )]
    RoutedTwice {
        /// The first route (`NODES=HOST`).
        first: String,
        /// The second route.
        second: String,
        /// The node.
        node: String,
    },
    /// A whole group is neither here nor routed.
    #[error("group {0} has no node on this host (--local) and no --route {0}=GATEWAY: its nodes would be unreachable")]
    GroupUnreachable(String),
    /// A node of a group split over hosts is neither here nor routed.
    #[error("node {node} is neither on this host (--local) nor on a --route: it would be unreachable; add --route {group}[A-B]=GATEWAY for the nodes of {group} on other hosts")]
    NodeUnreachable {
        /// The node.
        node: String,
        /// Its group.
        group: String,
    },
    /// Another network set the packet size of a device this network's packets pass.
    #[error("network {other} set the packet size of {dev} (its topology's mtu); take it down first or use another --dev")]
    PacketSizeSet {
        /// The other network.
        other: String,
        /// The device.
        dev: String,
    },
    /// Setting this network's packet size would change another network's packets.
    #[error("mtu {mtu} would change the packets of network {other} on {dev} too; take it down first or use another --dev")]
    PacketSizeShared {
        /// The packet size asked for.
        mtu: u32,
        /// The other network.
        other: String,
        /// The device.
        dev: String,
    },
    /// A run-time change on a network whose `up` did not finish.
    #[error("network {0} did not come up completely; run `p2plab down {0}` and bring it up again")]
    Incomplete(String),
    /// A run-time change names a node or group the network does not have.
    #[error(transparent)]
    OutOfRange(#[from] topology::change::OutOfRange),
}
