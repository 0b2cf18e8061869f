//! Host network over netlink for p2plab: address aliases, IFB devices, qdiscs, HTB classes,
//! u32 filters with hash tables, mirred redirects and routes, created and deleted in
//! pipelined batches ([`Host::apply`]), with every kernel refusal reported against the
//! object that caused it. Also class counters ([`Host::class_stats`]), the capability
//! probe behind `p2plab doctor` ([`probe`]) and the one way p2plab runs `iptables`
//! ([`iptables`]).

pub mod iptables;
pub mod object;
pub mod probe;
pub mod request;
pub mod scratch;
pub mod socket;
pub mod tcopt;

pub use object::{Field, Handle, Object, PacketSize, Parent, QdiscKind, Target, U32};
pub use request::Op;
pub use socket::{Failure, Netlink};

use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::tc::{TcAttribute, TcStats2};
use netlink_packet_route::RouteNetlinkMessage;
use std::collections::{HashMap, HashSet};
use std::io;

/// What went wrong, in words, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netlink socket could not be opened or used.
    #[error("netlink socket: {0}; is this Linux with rtnetlink?")]
    Socket(#[source] io::Error),
    /// A device the objects refer to does not exist.
    #[error("device {0} not found; check `ip link` or pass another --dev")]
    NoDevice(String),
    /// The kernel refused a request.
    #[error("{verb} `{object}` failed: {reason}{more}")]
    Refused {
        /// "creating", "deleting", "changing" or "replacing with".
        verb: &'static str,
        /// The object, as its equivalent command.
        object: String,
        /// The kernel's reason.
        reason: String,
        /// How many more requests failed after it.
        more: String,
        /// Positive errno.
        errno: i32,
    },
}

impl Error {
    /// The errno the kernel gave, if this is a refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Refused { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// One qdisc on a device, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdiscInfo {
    /// Its kind (`htb`, `noqueue`, `clsact`, ...).
    pub kind: String,
    /// Its handle; 0 for the kernel's default root qdisc of a device.
    pub handle: u32,
    /// Whether it is the device's root qdisc.
    pub root: bool,
}

/// Counters of one HTB class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Class id.
    pub classid: u32,
    /// Bytes sent.
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped.
    pub drops: u64,
}

/// errnos that mean "already gone" when deleting.
const GONE: [i32; 5] = [
    libc::ENOENT,
    libc::ENODEV,
    libc::EADDRNOTAVAIL,
    libc::ESRCH,
    libc::EINVAL,
];

/// The host's network stack, as seen through one netlink socket.
pub struct Host {
    nl: Netlink,
    ifindex: HashMap<String, u32>,
}

impl Host {
    /// Opens the netlink socket.
    pub fn open() -> Result<Self, Error> {
        Ok(Host {
            nl: Netlink::new().map_err(Error::Socket)?,
            ifindex: HashMap::new(),
        })
    }

    /// The index of device `name`, or `None` if it does not exist.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, Error> {
        if let Some(i) = self.ifindex.get(name) {
            return Ok(Some(*i));
        }
        match self.nl.query(request::get_link(name), false) {
            Ok(replies) => {
                let idx = replies.into_iter().find_map(|m| match m {
                    RouteNetlinkMessage::NewLink(LinkMessage { header, .. }) => Some(header.index),
                    _ => None,
                });
                if let Some(i) = idx {
                    self.ifindex.insert(name.to_string(), i);
                }
                Ok(idx)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(Error::Socket(e)),
        }
    }

    /// Creates, changes or replaces (in order) or deletes (in reverse order) `objs`. IFB
    /// devices are handled first on create and last on delete. Creating stops at the first
    /// window holding a refusal and reports the first refused object; deleting ignores
    /// objects already gone. Changes apply to qdiscs and classes (`tc ... change`),
    /// replacements to qdiscs (`tc qdisc replace`).
    pub fn apply(&mut self, objs: &[Object], op: Op) -> Result<(), Error> {
        let (links, rest): (Vec<&Object>, Vec<&Object>) =
            objs.iter().partition(|o| matches!(o, Object::Ifb { .. }));
        match op {
            Op::Create | Op::Change | Op::Replace => {
                self.run(&links, op)?;
                self.run(&rest, op)
            }
            Op::Delete => {
                let rest: Vec<&Object> = rest.into_iter().rev().collect();
                self.run(&rest, op)?;
                // one request per IFB group deletes the whole group
                let mut groups = HashSet::new();
                let links: Vec<&Object> = links
                    .into_iter()
                    .filter(|o| matches!(o, Object::Ifb { group, .. } if *group == 0 || groups.insert(*group)))
                    .collect();
                self.run(&links, op)
            }
        }
    }

    fn run(&mut self, objs: &[&Object], op: Op) -> Result<(), Error> {
        if objs.is_empty() {
            return Ok(());
        }
        self.ifindex.clear();
        for o in objs {
            let mut names = vec![o.dev()];
            if let Object::Filter {
                u32:
                    U32::Entry {
                        target: Target::Redirect(d),
                        ..
                    },
                ..
            } = o
            {
                names.push(d);
            }
            for n in names {
                if matches!(o, Object::Ifb { .. }) {
                    continue;
                }
                if self.link_index(n)?.is_none() {
                    if op == Op::Delete {
                        continue; // its device is gone, so is it
                    }
                    return Err(Error::NoDevice(n.to_string()));
                }
            }
        }
        let idx = &self.ifindex;
        let live: Vec<&&Object> = objs
            .iter()
            .filter(|o| matches!(o, Object::Ifb { .. }) || idx.contains_key(o.dev()))
            .collect();
        let lookup = |n: &str| idx.get(n).copied().unwrap_or(0);
        let msgs: Vec<RouteNetlinkMessage> = live
            .iter()
            .map(|o| request::message(o, op, &lookup))
            .collect();
        let failures = self.nl.batch(msgs, op.flags()).map_err(Error::Socket)?;
        let failures: Vec<&Failure> = failures
            .iter()
            .filter(|f| !(op == Op::Delete && GONE.contains(&f.errno)))
            .collect();
        match failures.first() {
            None => Ok(()),
            Some(f) => Err(Error::Refused {
                verb: match op {
                    Op::Create => "creating",
                    Op::Delete => "deleting",
                    Op::Change => "changing",
                    Op::Replace => "replacing with",
                },
                object: live[f.index].command(op),
                reason: f.describe(),
                more: match failures.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} later requests)"),
                },
                errno: f.errno,
            }),
        }
    }

    /// Every IPv4 address on the host (any device).
    pub fn ipv4_addrs(&mut self) -> Result<HashSet<std::net::Ipv4Addr>, Error> {
        let replies = self
            .nl
            .query(request::dump_addrs(), true)
            .map_err(Error::Socket)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    a.attributes.into_iter().find_map(|a| match a {
                        AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Some(ip),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// The names of every network device.
    pub fn link_names(&mut self) -> Result<HashSet<String>, Error> {
        let replies = self
            .nl
            .query(request::dump_links(), true)
            .map_err(Error::Socket)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// The packet size device `dev` has now.
    pub fn packet_size(&mut self, dev: &str) -> Result<PacketSize, Error> {
        let replies =
            self.nl
                .query(request::get_link(dev), false)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENODEV) => Error::NoDevice(dev.to_string()),
                    _ => Error::Socket(e),
                })?;
        let mut size = PacketSize::plain(0);
        for m in replies {
            if let RouteNetlinkMessage::NewLink(l) = m {
                for a in l.attributes {
                    match a {
                        LinkAttribute::Mtu(v) => size.mtu = v,
                        LinkAttribute::GsoMaxSize(v) => size.gso_max_size = v,
                        LinkAttribute::GsoMaxSegs(v) => size.gso_max_segs = v,
                        _ => {}
                    }
                }
            }
        }
        Ok(size)
    }

    /// The qdiscs attached to device `dev`, root and children.
    pub fn qdiscs(&mut self, dev: &str) -> Result<Vec<QdiscInfo>, Error> {
        let index = self
            .link_index(dev)?
            .ok_or_else(|| Error::NoDevice(dev.to_string()))?;
        let replies = self
            .nl
            .query(request::dump_qdiscs(), true)
            .map_err(Error::Socket)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewQueueDiscipline(tc) if tc.header.index == index as i32 => {
                    Some(QdiscInfo {
                        handle: u32::from(tc.header.handle),
                        root: u32::from(tc.header.parent) == Parent::Root.raw(),
                        kind: tc.attributes.into_iter().find_map(|a| match a {
                            TcAttribute::Kind(k) => Some(k),
                            _ => None,
                        })?,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Byte, packet and drop counters of every class on device `dev`.
    pub fn class_stats(&mut self, dev: &str) -> Result<Vec<ClassStats>, Error> {
        let index = self
            .link_index(dev)?
            .ok_or_else(|| Error::NoDevice(dev.to_string()))?;
        let replies = self
            .nl
            .query(request::dump_classes(index), true)
            .map_err(Error::Socket)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewTrafficClass(tc) => Some(tc),
                _ => None,
            })
            .map(|tc| {
                let mut s = ClassStats {
                    classid: u32::from(tc.header.handle),
                    ..Default::default()
                };
                for a in &tc.attributes {
                    if let TcAttribute::Stats2(v) = a {
                        for st in v {
                            match st {
                                TcStats2::Basic(b) => {
                                    s.bytes = b.bytes;
                                    s.packets = b.packets as u64;
                                }
                                TcStats2::Queue(q) => s.drops = q.drops as u64,
                                _ => {}
                            }
                        }
                    }
                }
                s
            })
            .collect())
    }
}
