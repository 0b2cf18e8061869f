//! The kernel objects p2plab creates, as plain typed values.
//!
//! An [`Object`] is what a state file records, what `--dry-run` prints (its `Display` is the
//! equivalent `ip`/`tc` command line) and what [`crate::request`] turns into netlink
//! messages. Devices are named, not indexed: indexes are resolved when a batch is applied.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// A tc handle or class id, `major:minor`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u32);

impl Handle {
    /// `major:minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Handle(((major as u32) << 16) | minor as u32)
    }
    /// The major number.
    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// The minor number.
    pub const fn minor(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x}", self.major(), self.minor())
    }
}

/// Where a qdisc or filter is attached.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Parent {
    /// The device's root (egress) qdisc.
    Root,
    /// The clsact qdisc itself (`tc qdisc add dev D clsact`).
    Clsact,
    /// The ingress hook of a clsact qdisc.
    Ingress,
    /// The egress hook of a clsact qdisc.
    Egress,
    /// A class or classful qdisc, by handle.
    Of(Handle),
}

impl Parent {
    /// The kernel's `tcm_parent` value.
    pub fn raw(self) -> u32 {
        match self {
            Parent::Root => 0xffff_ffff,
            Parent::Clsact => 0xffff_fff1,
            Parent::Ingress => 0xffff_fff2,
            Parent::Egress => 0xffff_fff3,
            Parent::Of(h) => h.0,
        }
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parent::Root => f.write_str("root"),
            Parent::Clsact => f.write_str("clsact"),
            Parent::Ingress => f.write_str("ingress"),
            Parent::Egress => f.write_str("egress"),
            Parent::Of(h) => write!(f, "parent {h}"),
        }
    }
}

/// A queueing discipline and its parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QdiscKind {
    /// HTB; unclassified packets go out directly (default class 0), unshaped.
    Htb {
        /// Queue length of the direct (unclassified) queue, in packets.
        direct_qlen: u32,
    },
    /// clsact: ingress and egress filter hooks, no queue.
    Clsact,
    /// A plain packet FIFO.
    Pfifo {
        /// Queue limit in packets.
        limit: u32,
    },
    /// netem delay and loss.
    Netem {
        /// One-way delay in microseconds.
        delay_us: u64,
        /// Loss probability, 0..=1.
        loss: f64,
        /// Queue limit in packets.
        limit: u32,
    },
}

impl QdiscKind {
    /// The kernel's name for the qdisc (`TCA_KIND`).
    pub fn kind(&self) -> &'static str {
        match self {
            QdiscKind::Htb { .. } => "htb",
            QdiscKind::Clsact => "clsact",
            QdiscKind::Pfifo { .. } => "pfifo",
            QdiscKind::Netem { .. } => "netem",
        }
    }
}

/// Which IPv4 header field a u32 match or hash key looks at.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Source address (offset 12).
    Src,
    /// Destination address (offset 16).
    Dst,
}

impl Field {
    /// Byte offset of the field in the IPv4 header.
    pub fn offset(self) -> i32 {
        match self {
            Field::Src => 12,
            Field::Dst => 16,
        }
    }
    fn word(self) -> &'static str {
        match self {
            Field::Src => "src",
            Field::Dst => "dst",
        }
    }
}

/// What a matching u32 entry does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Put the packet in this class.
    Class(Handle),
    /// Continue in hash table `link` (a u32 table id, `N:`), hashing on `key` masked by `mask`.
    Link {
        /// Table id (the `N` of `N:`).
        table: u16,
        /// The field whose value picks the bucket.
        key: Field,
        /// Mask applied to the field (host order); the bucket is `(field & mask) >> ctz(mask)`.
        mask: u32,
    },
    /// `action mirred egress redirect dev DEV`.
    Redirect(String),
}

/// A u32 filter: either a hash table (`divisor`) or an entry matching one IPv4 prefix.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum U32 {
    /// `handle N: u32 divisor D` — creates hash table `N:`.
    Table {
        /// Table id.
        id: u16,
        /// Number of buckets (1..=256).
        divisor: u32,
    },
    /// `[handle T:B:I] [ht T:B:] match ip FIELD NET/LEN ...` — an entry.
    Entry {
        /// The table and bucket to insert into; `None` means the root table of this priority.
        ht: Option<(u16, u8)>,
        /// Node id within the bucket (`I` of `T:B:I`), 0 to let the kernel choose.
        node: u16,
        /// The field to match.
        field: Field,
        /// Matched prefix: address and length (0 matches every IPv4 packet).
        net: (Ipv4Addr, u8),
        /// What a match does.
        target: Target,
    },
}

/// How large a device's packets are: its MTU, and the largest packet the stack may build
/// for it by GSO, in bytes and in segments.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSize {
    /// MTU in bytes.
    pub mtu: u32,
    /// Largest GSO packet in bytes.
    pub gso_max_size: u32,
    /// Largest GSO packet in segments.
    pub gso_max_segs: u32,
}

impl PacketSize {
    /// Packets of `mtu` bytes and no larger: GSO builds nothing bigger than one segment.
    pub fn plain(mtu: u32) -> PacketSize {
        PacketSize {
            mtu,
            gso_max_size: mtu,
            gso_max_segs: 1,
        }
    }
}

impl fmt::Display for PacketSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mtu {} gso_max_size {} gso_max_segs {}",
            self.mtu, self.gso_max_size, self.gso_max_segs
        )
    }
}

/// One kernel object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum Object {
    /// An IPv4 address alias, `ip addr add IP/LEN dev DEV`.
    Addr {
        /// Device name.
        dev: String,
        /// Address.
        ip: Ipv4Addr,
        /// Prefix length.
        len: u8,
    },
    /// An IFB device, created up.
    Ifb {
        /// Device name.
        name: String,
        /// Transmit queue length: the limit of the pfifo HTB gives each new class.
        txqueuelen: u32,
        /// Device group. Non-zero groups must hold only IFBs of one owner: deleting IFBs
        /// deletes their whole groups, in one batch (one RCU grace period, not one each).
        group: u32,
    },
    /// A qdisc.
    Qdisc {
        /// Device name.
        dev: String,
        /// Attachment point.
        parent: Parent,
        /// Handle major (`N:`); ignored for clsact.
        handle: u16,
        /// Kind and parameters.
        kind: QdiscKind,
    },
    /// An HTB class with `rate == ceil`.
    HtbClass {
        /// Device name.
        dev: String,
        /// Class id.
        classid: Handle,
        /// Parent qdisc or class.
        parent: Handle,
        /// Rate in bits per second.
        rate_bps: u64,
    },
    /// An IPv4 u32 filter.
    Filter {
        /// Device name.
        dev: String,
        /// Attachment point.
        parent: Parent,
        /// Priority.
        prio: u16,
        /// Table or entry.
        u32: U32,
    },
    /// The packet size of an existing device, `ip link set dev DEV mtu ...`; deleting it
    /// sets `restore` (what the device had before) back.
    PacketSize {
        /// Device name.
        dev: String,
        /// What creating it sets.
        set: PacketSize,
        /// What deleting it sets.
        restore: PacketSize,
    },
    /// A route for a virtual prefix via a gateway (cluster mode).
    Route {
        /// Destination prefix.
        dst: (Ipv4Addr, u8),
        /// Gateway.
        via: Ipv4Addr,
        /// Output device.
        dev: String,
    },
}

impl U32 {
    /// The entry that sends every IPv4 packet into `table`, bucket chosen by `key & mask`.
    pub fn hash_all(field: Field, table: u16, mask: u32) -> U32 {
        U32::Entry {
            ht: None,
            node: 0,
            field,
            net: (Ipv4Addr::UNSPECIFIED, 0),
            target: Target::Link {
                table,
                key: field,
                mask,
            },
        }
    }
}

impl Object {
    /// The clsact qdisc of `dev`.
    pub fn clsact(dev: &str) -> Object {
        Object::Qdisc {
            dev: dev.to_string(),
            parent: Parent::Clsact,
            handle: 0,
            kind: QdiscKind::Clsact,
        }
    }

    /// An HTB root qdisc `1:` on `dev` whose unclassified packets go out unshaped.
    pub fn htb_root(dev: &str, direct_qlen: u32) -> Object {
        Object::Qdisc {
            dev: dev.to_string(),
            parent: Parent::Root,
            handle: 1,
            kind: QdiscKind::Htb { direct_qlen },
        }
    }

    /// The equivalent command line of `op` on the object (`Display` gives the `add` form),
    /// e.g. `tc qdisc change dev p2p0u0 parent 1:2 handle 3: netem ...`.
    pub fn command(&self, op: crate::Op) -> String {
        match (self, op) {
            (Object::PacketSize { dev, restore, .. }, crate::Op::Delete) => {
                format!("ip link set dev {dev} {restore}")
            }
            _ => self
                .to_string()
                .replacen(" add ", &format!(" {} ", op.verb()), 1),
        }
    }

    /// The device the object lives on (for an IFB, the IFB itself).
    pub fn dev(&self) -> &str {
        match self {
            Object::Ifb { name, .. } => name,
            Object::Addr { dev, .. }
            | Object::Qdisc { dev, .. }
            | Object::HtbClass { dev, .. }
            | Object::Filter { dev, .. }
            | Object::PacketSize { dev, .. }
            | Object::Route { dev, .. } => dev,
        }
    }
}

fn fmt_u32_handle(table: u16, bucket: u8, node: u16) -> String {
    format!("{table:x}:{bucket:x}:{node:x}")
}

impl fmt::Display for U32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            U32::Table { id, divisor } => {
                write!(f, "handle {id:x}: protocol ip u32 divisor {divisor}")
            }
            U32::Entry {
                ht,
                node,
                field,
                net,
                target,
            } => {
                if let Some((t, b)) = ht {
                    write!(
                        f,
                        "handle {} protocol ip u32 ht {t:x}:{b:x}: ",
                        fmt_u32_handle(*t, *b, *node)
                    )?;
                } else {
                    f.write_str("protocol ip u32 ")?;
                }
                if net.1 == 0 {
                    write!(f, "match u32 0 0 at {}", field.offset())?;
                } else {
                    write!(f, "match ip {} {}/{}", field.word(), net.0, net.1)?;
                }
                match target {
                    Target::Class(h) => write!(f, " flowid {h}"),
                    Target::Link { table, key, mask } => {
                        write!(
                            f,
                            " hashkey mask 0x{mask:08x} at {} link {table:x}:",
                            key.offset()
                        )
                    }
                    Target::Redirect(dev) => write!(f, " action mirred egress redirect dev {dev}"),
                }
            }
        }
    }
}

impl fmt::Display for Object {
    /// The equivalent command line (`ip ...` or `tc ...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Addr { dev, ip, len } => write!(f, "ip addr add {ip}/{len} dev {dev}"),
            Object::Ifb {
                name,
                txqueuelen,
                group,
            } => {
                write!(
                    f,
                    "ip link add {name} txqueuelen {txqueuelen} group {group} up type ifb"
                )
            }
            Object::Qdisc {
                dev,
                parent,
                handle,
                kind,
            } => {
                write!(f, "tc qdisc add dev {dev} ")?;
                match parent {
                    Parent::Clsact => return f.write_str("clsact"),
                    p => write!(f, "{p} handle {handle:x}: ")?,
                }
                match kind {
                    QdiscKind::Htb { direct_qlen } => write!(f, "htb direct_qlen {direct_qlen}"),
                    QdiscKind::Clsact => f.write_str("clsact"),
                    QdiscKind::Pfifo { limit } => write!(f, "pfifo limit {limit}"),
                    QdiscKind::Netem {
                        delay_us,
                        loss,
                        limit,
                    } => {
                        write!(f, "netem limit {limit} delay {delay_us}us")?;
                        if *loss > 0.0 {
                            write!(f, " loss {}%", loss * 100.0)?;
                        }
                        Ok(())
                    }
                }
            }
            Object::HtbClass {
                dev,
                classid,
                parent,
                rate_bps,
            } => {
                let r = topology::format_rate(*rate_bps);
                let tc = crate::tcopt::HtbClassParams::new(*rate_bps);
                write!(
                    f,
                    "tc class add dev {dev} parent {parent} classid {classid} htb rate {r} ceil {r} burst {}b cburst {}b quantum {}",
                    tc.burst_bytes, tc.burst_bytes, tc.quantum
                )
            }
            Object::Filter {
                dev,
                parent,
                prio,
                u32,
            } => {
                write!(f, "tc filter add dev {dev} {parent} prio {prio} {u32}")
            }
            Object::PacketSize { dev, set, .. } => write!(f, "ip link set dev {dev} {set}"),
            Object::Route { dst, via, dev } => {
                write!(f, "ip route add {}/{} via {via} dev {dev}", dst.0, dst.1)
            }
        }
    }
}
