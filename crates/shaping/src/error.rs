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
    /// The NFQUEUE rules or the engine failed.
    #[error("{0}")]
    Engine(String),
    /// The placement on this host and the routes to other hosts do not fit together.
    #[error("{0}")]
    Cluster(String),
    /// The device's packet size cannot be set (or kept) for this network: another network
    /// on the device would see it change.
    #[error("{0}")]
    PacketSize(String),
    /// A run-time change cannot be made.
    #[error("{0}")]
    Change(String),
}
