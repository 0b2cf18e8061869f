//! Typed request builders: an [`Object`] becomes the rtnetlink message that creates or
//! deletes it (netavark style: one small function per message kind).

use crate::object::{Field, Handle, Object, PacketSize, Parent, QdiscKind, Target, U32};
use crate::tcopt;
use netlink_packet_core::DefaultNla;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionGeneric, TcActionMirrorOption, TcActionOption,
    TcActionType, TcAttribute, TcFilterU32Option, TcHandle, TcMessage, TcMirror,
    TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};

/// `ETH_P_IP` in network byte order, as `tcm_info`'s low half wants it.
const ETH_P_IP_BE: u32 = (libc::ETH_P_IP as u16).to_be() as u32;
/// `TCA_OPTIONS`, for options that are a raw struct rather than nested attributes.
const TCA_OPTIONS: u16 = 2;

/// Whether a message creates, changes or deletes its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `NLM_F_CREATE | NLM_F_EXCL`: fails if the object exists.
    Create,
    /// Delete; filters are deleted by whole priority.
    Delete,
    /// New parameters for an existing qdisc or class (no create flags: `tc ... change`);
    /// fails if it does not exist.
    Change,
    /// `NLM_F_CREATE | NLM_F_REPLACE` (`tc qdisc replace`): a qdisc with a new handle is
    /// created and grafted in place of the parent's current one, which is destroyed.
    Replace,
}

impl Op {
    /// The `nlmsg_flags` besides `NLM_F_REQUEST | NLM_F_ACK`.
    pub fn flags(self) -> u16 {
        use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
        match self {
            Op::Create => NLM_F_CREATE | NLM_F_EXCL,
            Op::Delete | Op::Change => 0,
            Op::Replace => NLM_F_CREATE | NLM_F_REPLACE,
        }
    }

    /// The verb of the equivalent command (`add`, `del`, `change`, `replace`).
    pub fn verb(self) -> &'static str {
        match self {
            Op::Create => "add",
            Op::Delete => "del",
            Op::Change => "change",
            Op::Replace => "replace",
        }
    }
}

/// Builds the message for `op` on `obj`; `ifindex` resolves device names.
pub fn message(obj: &Object, op: Op, ifindex: &dyn Fn(&str) -> u32) -> RouteNetlinkMessage {
    use RouteNetlinkMessage as M;
    // every op but a delete carries the object's parameters
    let create = op != Op::Delete;
    match obj {
        Object::Addr { dev, ip, len } => {
            let m = addr_msg(ifindex(dev), *ip, *len);
            if create {
                M::NewAddress(m)
            } else {
                M::DelAddress(m)
            }
        }
        Object::Ifb {
            name,
            txqueuelen,
            group,
        } => {
            let m = ifb_msg(name, *txqueuelen, *group, create);
            if create {
                M::NewLink(m)
            } else {
                M::DelLink(m)
            }
        }
        Object::Qdisc {
            dev,
            parent,
            handle,
            kind,
        } => {
            let m = qdisc_msg(ifindex(dev), *parent, *handle, kind, create);
            if create {
                M::NewQueueDiscipline(m)
            } else {
                M::DelQueueDiscipline(m)
            }
        }
        Object::HtbClass {
            dev,
            classid,
            parent,
            rate_bps,
        } => {
            let m = class_msg(ifindex(dev), *classid, *parent, *rate_bps, create);
            if create {
                M::NewTrafficClass(m)
            } else {
                M::DelTrafficClass(m)
            }
        }
        Object::Filter {
            dev,
            parent,
            prio,
            u32,
        } => {
            if create {
                M::NewTrafficFilter(filter_msg(ifindex(dev), *parent, *prio, u32, ifindex))
            } else {
                M::DelTrafficFilter(tc_msg(ifindex(dev), *parent, Handle(0), filter_info(*prio)))
            }
        }
        Object::PacketSize { dev, set, restore } => M::SetLink(packet_size_msg(
            ifindex(dev),
            if create { set } else { restore },
        )),
        Object::Route { dst, via, dev } => {
            let m = route_msg(*dst, *via, ifindex(dev));
            if create {
                M::NewRoute(m)
            } else {
                M::DelRoute(m)
            }
        }
    }
}

/// `RTM_SETLINK` of a device's MTU and GSO limits.
fn packet_size_msg(index: u32, size: &PacketSize) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.extend([
        LinkAttribute::Mtu(size.mtu),
        LinkAttribute::GsoMaxSize(size.gso_max_size),
        LinkAttribute::GsoMaxSegs(size.gso_max_segs),
    ]);
    m
}

/// `RTM_GETLINK` for one device by name.
pub fn get_link(name: &str) -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    RouteNetlinkMessage::GetLink(m)
}

/// `RTM_GETTCLASS` dump of one device's classes.
pub fn dump_classes(ifindex: u32) -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetTrafficClass(tc_msg(ifindex, Parent::Of(Handle(0)), Handle(0), 0))
}

/// `RTM_GETADDR` dump of IPv4 addresses.
pub fn dump_addrs() -> RouteNetlinkMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    RouteNetlinkMessage::GetAddress(m)
}

/// `RTM_GETLINK` dump.
pub fn dump_links() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetLink(LinkMessage::default())
}

/// `RTM_GETQDISC` dump (the kernel returns every device's qdiscs).
pub fn dump_qdiscs() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default())
}

fn addr_msg(index: u32, ip: Ipv4Addr, len: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = len;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
    m
}

fn ifb_msg(name: &str, txqueuelen: u32, group: u32, create: bool) -> LinkMessage {
    let mut m = LinkMessage::default();
    if !create && group != 0 {
        m.attributes.push(LinkAttribute::Group(group));
        return m;
    }
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    if create {
        m.attributes.push(LinkAttribute::Group(group));
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]));
        m.attributes.push(LinkAttribute::TxQueueLen(txqueuelen));
    }
    m
}

fn tc_msg(index: u32, parent: Parent, handle: Handle, info: u32) -> TcMessage {
    let mut m = TcMessage::default();
    m.header.family = AddressFamily::Unspec;
    m.header.index = index as i32;
    m.header.parent = TcHandle::from(parent.raw());
    m.header.handle = TcHandle::from(handle.0);
    m.header.info = info;
    m
}

fn qdisc_msg(index: u32, parent: Parent, major: u16, kind: &QdiscKind, create: bool) -> TcMessage {
    let handle = match parent {
        Parent::Clsact => Handle::new(0xffff, 0),
        _ => Handle::new(major, 0),
    };
    let mut m = tc_msg(index, parent, handle, 0);
    if !create {
        return m;
    }
    m.attributes
        .push(TcAttribute::Kind(kind.kind().to_string()));
    match kind {
        QdiscKind::Htb { direct_qlen } => m.attributes.push(TcAttribute::Options(vec![
            TcOption::Other(DefaultNla::new(tcopt::TCA_HTB_INIT, tcopt::htb_glob())),
            TcOption::Other(DefaultNla::new(
                tcopt::TCA_HTB_DIRECT_QLEN,
                direct_qlen.to_ne_bytes().to_vec(),
            )),
        ])),
        QdiscKind::Clsact => {}
        QdiscKind::Pfifo { limit } => m.attributes.push(TcAttribute::Other(DefaultNla::new(
            TCA_OPTIONS,
            tcopt::fifo_opt(*limit),
        ))),
        QdiscKind::Netem {
            delay_us,
            loss,
            limit,
        } => m.attributes.push(TcAttribute::Other(DefaultNla::new(
            TCA_OPTIONS,
            tcopt::netem_opt(*delay_us, *loss, *limit),
        ))),
    }
    m
}

fn class_msg(
    index: u32,
    classid: Handle,
    parent: Handle,
    rate_bps: u64,
    create: bool,
) -> TcMessage {
    let mut m = tc_msg(index, Parent::Of(parent), classid, 0);
    if !create {
        return m;
    }
    let p = tcopt::HtbClassParams::new(rate_bps);
    let mut opts = vec![TcOption::Other(DefaultNla::new(
        tcopt::TCA_HTB_PARMS,
        p.opt(),
    ))];
    if let Some(r) = p.rate64() {
        for kind in [tcopt::TCA_HTB_RATE64, tcopt::TCA_HTB_CEIL64] {
            opts.push(TcOption::Other(DefaultNla::new(
                kind,
                r.to_ne_bytes().to_vec(),
            )));
        }
    }
    m.attributes.push(TcAttribute::Kind("htb".into()));
    m.attributes.push(TcAttribute::Options(opts));
    m
}

fn filter_info(prio: u16) -> u32 {
    ((prio as u32) << 16) | ETH_P_IP_BE
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// The u32 selector matching `field` against `net`, hashing on `hash` if given.
fn selector(
    field: Field,
    net: (Ipv4Addr, u8),
    hash: Option<(Field, u32)>,
    terminal: bool,
) -> TcU32Selector {
    let mask = prefix_mask(net.1);
    let mut key = TcU32Key::default();
    key.mask = mask;
    key.val = u32::from(net.0) & mask;
    key.off = field.offset();
    let mut sel = TcU32Selector::default();
    if terminal {
        sel.flags = TcU32SelectorFlags::Terminal;
    }
    sel.nkeys = 1;
    sel.keys = vec![key];
    if let Some((f, m)) = hash {
        sel.hoff = f.offset() as i16;
        sel.hmask = m; // host order: the crate emits it big-endian
    }
    sel
}

fn u32_handle(table: u16, bucket: u8, node: u16) -> u32 {
    ((table as u32) << 20) | ((bucket as u32) << 12) | node as u32
}

fn filter_msg(
    index: u32,
    parent: Parent,
    prio: u16,
    f: &U32,
    ifindex: &dyn Fn(&str) -> u32,
) -> TcMessage {
    let (handle, opts) = match f {
        U32::Table { id, divisor } => (
            u32_handle(*id, 0, 0),
            vec![TcFilterU32Option::Divisor(*divisor)],
        ),
        U32::Entry {
            ht,
            node,
            field,
            net,
            target,
        } => {
            // Without TCA_U32_HASH the kernel inserts into this priority's root table.
            let (handle, mut opts) = match ht {
                Some((t, b)) => (
                    u32_handle(*t, *b, *node),
                    vec![TcFilterU32Option::Hash(u32_handle(*t, *b, 0))],
                ),
                None => (0, vec![]),
            };
            match target {
                Target::Class(c) => {
                    opts.push(TcFilterU32Option::ClassId(TcHandle::from(c.0)));
                    opts.push(TcFilterU32Option::Selector(selector(
                        *field, *net, None, true,
                    )));
                }
                Target::Link { table, key, mask } => {
                    opts.push(TcFilterU32Option::Link(u32_handle(*table, 0, 0)));
                    opts.push(TcFilterU32Option::Selector(selector(
                        *field,
                        *net,
                        Some((*key, *mask)),
                        false,
                    )));
                }
                Target::Redirect(dev) => {
                    opts.push(TcFilterU32Option::Selector(selector(
                        *field, *net, None, true,
                    )));
                    opts.push(TcFilterU32Option::Action(vec![redirect(ifindex(dev))]));
                }
            }
            (handle, opts)
        }
    };
    let mut m = tc_msg(index, parent, Handle(handle), filter_info(prio));
    m.attributes.push(TcAttribute::Kind("u32".into()));
    m.attributes.push(TcAttribute::Options(
        opts.into_iter().map(TcOption::U32).collect(),
    ));
    m
}

/// `action mirred egress redirect dev IFINDEX`.
fn redirect(ifindex: u32) -> TcAction {
    let mut generic = TcActionGeneric::default();
    generic.action = TcActionType::Stolen;
    let mut parms = TcMirror::default();
    parms.generic = generic;
    parms.eaction = TcMirrorActionType::EgressRedir;
    parms.ifindex = ifindex;
    let mut a = TcAction::default();
    a.attributes = vec![
        TcActionAttribute::Kind("mirred".into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
            parms,
        ))]),
    ];
    a
}

fn route_msg(dst: (Ipv4Addr, u8), via: Ipv4Addr, oif: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.destination_prefix_length = dst.1;
    m.header.table = libc::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(dst.0)));
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(via)));
    m.attributes.push(RouteAttribute::Oif(oif));
    m
}
