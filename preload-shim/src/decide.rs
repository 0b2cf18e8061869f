//! What to do with a socket call, as pure functions of the node's addresses and the
//! addresses involved. The invariant they hold: no socket of a wrapped process listens on,
//! or sends from, an address other than its own or loopback.

use crate::config::Ips;
use libc::c_int;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The outcome for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the call through unchanged.
    Keep,
    /// Bind to this address (instead of the caller's, or before the caller's call).
    Use(SocketAddr),
    /// Fail the call with this errno.
    Fail(i32),
}

/// Why an unbound socket is about to get a local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `listen`: it will accept on its local address.
    Listen,
    /// `connect` to this peer (loopback peers are left alone).
    Connect(SocketAddr),
    /// `sendto`/`sendmsg`/`sendmmsg` to this peer.
    Send(SocketAddr),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listen => f.write_str("listen"),
            Self::Connect(peer) => write!(f, "connect to {peer}"),
            Self::Send(peer) => write!(f, "send to {peer}"),
        }
    }
}

/// Loopback, including v4-mapped loopback.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `bind(addr)`: a wildcard address becomes the node's own, same port (`Some`); other
/// addresses are kept (`None`).
pub fn bind(ips: &Ips, addr: SocketAddr, v6only: impl FnOnce() -> bool) -> Option<SocketAddr> {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => own_v4(ips, false, a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => own_v6(ips, a.port(), v6only),
        SocketAddr::V6(a) if is_mapped_unspecified(a.ip()) => own_v4(ips, true, a.port()),
        _ => None,
    }
}

/// A socket whose local address is `local` is about to get one from the kernel because of
/// `trigger`: bind it to the node's own address first, when it is still unbound.
/// `portless` tells, when asked, whether the socket's "port" is not one (see
/// [`is_portless`]): then a wildcard address alone means unbound.
pub fn auto_bind(
    ips: &Ips,
    local: SocketAddr,
    trigger: Trigger,
    v6only: impl FnOnce() -> bool,
    portless: impl FnOnce() -> bool,
) -> Verdict {
    if !is_unbound(local, portless) {
        return Verdict::Keep;
    }
    let peer = match trigger {
        Trigger::Connect(peer) if is_loopback(peer.ip()) => return Verdict::Keep,
        Trigger::Connect(peer) | Trigger::Send(peer) => Some(peer.ip()),
        Trigger::Listen => None,
    };
    let own = match (local, peer) {
        (SocketAddr::V4(_), _) => own_v4(ips, false, 0),
        (SocketAddr::V6(_), None) => own_v6(ips, 0, v6only),
        (SocketAddr::V6(_), Some(IpAddr::V4(_))) => own_v4(ips, true, 0),
        (SocketAddr::V6(_), Some(IpAddr::V6(peer))) if peer.to_ipv4_mapped().is_some() => {
            own_v4(ips, true, 0)
        }
        (SocketAddr::V6(_), Some(IpAddr::V6(peer))) => match (ips.v6, ips.v4) {
            (Some(v6), _) => Some(SocketAddr::new(v6.into(), 0)),
            // No IPv6 identity: a native IPv6 peer would see the host's address.
            (None, Some(_)) if !peer.is_loopback() => return Verdict::Fail(libc::ENETUNREACH),
            (None, _) => None,
        },
    };
    own.map_or(Verdict::Keep, Verdict::Use)
}

/// Where a connect or send to a loopback address goes instead: to the node's own address,
/// same port, where a wildcard listener of the node ended up. `from` is a loopback address
/// of the same kind as `to`, for a stream socket that is not bound yet, so that the server
/// sees a loopback client, as it would on a real machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub to: SocketAddr,
    pub from: SocketAddr,
}

/// A connect or send to `peer`: when it is a loopback address and a socket of this node
/// serves its port on the node's own address (`serves`, asked only then), the [`Redirect`]
/// there. A wildcard listener answers on loopback on a real machine; under the shim it
/// listens on the node's address, so localhost reaches it only this way. The node's own
/// addresses are the only ones tried: another node's listener is never reached through
/// loopback, and a real loopback service of the host is left alone when the node serves
/// nothing on that port. `[::1]` reaches `BINDIP6`, or, on a dual-stack socket of a node
/// without one, its IPv4 listeners through the v4-mapped address.
pub fn loopback_redirect(
    ips: &Ips,
    peer: SocketAddr,
    v6only: impl FnOnce() -> bool,
    mut serves: impl FnMut(SocketAddr) -> bool,
) -> Option<Redirect> {
    let port = peer.port();
    let via = |to: IpAddr, from: IpAddr| Redirect {
        to: SocketAddr::new(to, port),
        from: SocketAddr::new(from, 0),
    };
    let mapped_lo = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
    let (first, second) = match peer.ip() {
        IpAddr::V4(lo) if lo.is_loopback() => (ips.v4.map(|v4| via(v4.into(), lo.into())), None),
        IpAddr::V6(lo) if lo.is_loopback() => (
            ips.v6.map(|v6| via(v6.into(), lo.into())),
            ips.v6
                .is_none()
                .then_some(ips.v4)
                .flatten()
                .filter(|_| !v6only())
                .map(|v4| via(v4.to_ipv6_mapped().into(), mapped_lo.into())),
        ),
        IpAddr::V6(mapped) => match mapped.to_ipv4_mapped() {
            Some(lo) if lo.is_loopback() => (
                ips.v4
                    .map(|v4| via(v4.to_ipv6_mapped().into(), mapped.into())),
                None,
            ),
            _ => return None,
        },
        IpAddr::V4(_) => return None,
    };
    [first, second]
        .into_iter()
        .flatten()
        .find(|redirect| serves(redirect.to))
}

/// Whether `getifaddrs` shows an entry: loopback and the node's own addresses only.
/// `addr` is `None` for entries without an IP address (link-layer entries).
pub fn show_interface_entry(ips: &Ips, on_lo: bool, addr: Option<IpAddr>) -> bool {
    match addr {
        None => on_lo,
        Some(ip) => {
            (on_lo && ip.is_loopback())
                || ips.v4.is_some_and(|v4| ip == IpAddr::V4(v4))
                || ips.v6.is_some_and(|v6| ip == IpAddr::V6(v6))
        }
    }
}

/// The IPv4 address `SIOCGIFADDR` shows for an interface whose address is `ip`: `ip` when
/// the node may see it ([`show_interface_entry`]), else the node's own address, as if the
/// interface were the node's (`None`: the node has no IPv4 address to show).
pub fn interface_address(ips: &Ips, on_lo: bool, ip: Ipv4Addr) -> Option<Ipv4Addr> {
    match show_interface_entry(ips, on_lo, Some(ip.into())) {
        true => Some(ip),
        false => ips.v4,
    }
}

/// An IPv6 socket's own address: `BINDIP6`, else the v4-mapped `BINDIP` on a dual-stack
/// socket. A v6-only socket without `BINDIP6` has no address of the node to take: it gets
/// loopback `[::1]` on a port of the kernel's choice, so the program starts and serves
/// through its IPv4 socket, while this one reaches nothing outside the machine; the port is
/// not kept because another node on this machine may hold `[::1]` with it, which would make
/// the bind fail, or make one node's listener answer another node's loopback clients.
fn own_v6(ips: &Ips, port: u16, v6only: impl FnOnce() -> bool) -> Option<SocketAddr> {
    match (ips.v6, ips.v4) {
        (Some(v6), _) => Some(SocketAddr::new(v6.into(), port)),
        (None, Some(_)) if v6only() => Some(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0)),
        (None, Some(v4)) => Some(SocketAddr::new(v4.to_ipv6_mapped().into(), port)),
        (None, None) => None,
    }
}

fn own_v4(ips: &Ips, mapped: bool, port: u16) -> Option<SocketAddr> {
    ips.v4.map(|v4| match mapped {
        true => SocketAddr::new(v4.to_ipv6_mapped().into(), port),
        false => SocketAddr::new(v4.into(), port),
    })
}

fn is_mapped_unspecified(ip: &Ipv6Addr) -> bool {
    ip.to_ipv4_mapped().is_some_and(|v4| v4.is_unspecified())
}

/// Whether a socket whose local address is `local` has none of its own yet (see
/// [`auto_bind`]).
pub fn is_unbound(local: SocketAddr, portless: impl FnOnce() -> bool) -> bool {
    let wildcard = match local {
        SocketAddr::V4(a) => a.ip().is_unspecified(),
        SocketAddr::V6(a) => a.ip().is_unspecified() || is_mapped_unspecified(a.ip()),
    };
    wildcard && (local.port() == 0 || portless())
}

/// Whether a socket of type `ty` and protocol `protocol` has no port, though `getsockname`
/// shows one: a raw socket shows its protocol number, an ICMP datagram ("ping") socket its
/// echo identifier.
pub fn is_portless(ty: c_int, protocol: c_int) -> bool {
    ty == libc::SOCK_RAW
        || (ty == libc::SOCK_DGRAM && matches!(protocol, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6))
}

/// Whether a host name looked up is the node's own (`P2PLAB_NODE`): host names compare
/// case-insensitively, and `node6.` (fully qualified, with its root dot) is `node6` too.
pub fn is_own_name(node: &[u8], name: &[u8]) -> bool {
    name.strip_suffix(b".")
        .unwrap_or(name)
        .eq_ignore_ascii_case(node)
}

/// What the node's own name resolves to in a lookup of `family`: its addresses of that
/// family (IPv4 first for `AF_UNSPEC`; `BINDIP` for `AF_INET6` on a node without `BINDIP6`,
/// which libc then maps or refuses per the caller's `AI_V4MAPPED`), possibly none. `None`
/// leaves the lookup to libc: a family that is not IP, or a node without addresses.
pub fn own_name_addresses(ips: &Ips, family: c_int) -> Option<[Option<IpAddr>; 2]> {
    let (v4, v6) = (ips.v4.map(IpAddr::V4), ips.v6.map(IpAddr::V6));
    match family {
        _ if !ips.active() => None,
        libc::AF_UNSPEC => Some([v4, v6]),
        libc::AF_INET => Some([v4, None]),
        libc::AF_INET6 => Some([v6.or(v4), None]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V4: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 7);

    fn v4only() -> Ips {
        Ips {
            v4: Some(V4),
            v6: None,
        }
    }

    fn both() -> Ips {
        Ips {
            v4: Some(V4),
            v6: Some("fd00::3:7".parse().unwrap()),
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn never() -> bool {
        panic!("v6only must not be asked here")
    }

    /// A TCP or UDP socket: its port is a port.
    fn tcp() -> bool {
        false
    }

    #[test]
    fn wildcard_binds_become_the_node_address() {
        assert_eq!(
            bind(&v4only(), sa("0.0.0.0:80"), never),
            Some(sa("10.0.3.7:80"))
        );
        assert_eq!(
            bind(&v4only(), sa("[::]:80"), || false),
            Some(sa("[::ffff:10.0.3.7]:80"))
        );
        // v6-only without an IPv6 address of the node: loopback, any port
        assert_eq!(bind(&v4only(), sa("[::]:80"), || true), Some(sa("[::1]:0")));
        assert_eq!(
            bind(&both(), sa("[::]:80"), never),
            Some(sa("[fd00::3:7]:80"))
        );
        assert_eq!(
            bind(&both(), sa("[::ffff:0.0.0.0]:80"), never),
            Some(sa("[::ffff:10.0.3.7]:80"))
        );
    }

    #[test]
    fn explicit_and_loopback_binds_are_kept() {
        for addr in [
            "127.0.0.1:80",
            "10.9.9.9:80",
            "[::1]:80",
            "[fd00::9]:0",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(bind(&both(), sa(addr), never), None, "{addr}");
        }
        assert_eq!(bind(&Ips::default(), sa("0.0.0.0:80"), never), None);
    }

    #[test]
    fn connect_binds_unbound_sockets_except_to_loopback() {
        let ips = v4only();
        let unbound = sa("0.0.0.0:0");
        let to = |peer| Trigger::Connect(sa(peer));
        assert_eq!(
            auto_bind(&ips, unbound, to("10.1.1.1:80"), never, tcp),
            Verdict::Use(sa("10.0.3.7:0"))
        );
        assert_eq!(
            auto_bind(&ips, unbound, to("127.0.0.1:80"), never, tcp),
            Verdict::Keep
        );
        assert_eq!(
            auto_bind(&ips, sa("10.0.3.7:0"), to("10.1.1.1:80"), never, tcp),
            Verdict::Keep
        );
        assert_eq!(
            auto_bind(&ips, sa("0.0.0.0:5000"), to("10.1.1.1:80"), never, tcp),
            Verdict::Keep
        );
    }

    #[test]
    fn ipv6_sockets_without_bindip6_stay_on_the_mapped_address() {
        let ips = v4only();
        let unbound = sa("[::]:0");
        let mapped_peer = Trigger::Connect(sa("[::ffff:10.1.1.1]:80"));
        assert_eq!(
            auto_bind(&ips, unbound, mapped_peer, never, tcp),
            Verdict::Use(sa("[::ffff:10.0.3.7]:0"))
        );
        let native = Trigger::Send(sa("[2001:db8::1]:80"));
        assert_eq!(
            auto_bind(&ips, unbound, native, never, tcp),
            Verdict::Fail(libc::ENETUNREACH)
        );
        let lo6 = Trigger::Send(sa("[::1]:80"));
        assert_eq!(auto_bind(&ips, unbound, lo6, never, tcp), Verdict::Keep);
        assert_eq!(
            auto_bind(&ips, unbound, Trigger::Listen, || true, tcp),
            Verdict::Use(sa("[::1]:0"))
        );
        assert_eq!(
            auto_bind(&both(), unbound, native, never, tcp),
            Verdict::Use(sa("[fd00::3:7]:0"))
        );
    }

    #[test]
    fn raw_and_icmp_sockets_are_unbound_whatever_their_port() {
        // getsockname shows a raw socket's protocol (1, ICMP) or a ping socket's echo
        // identifier as its port
        let ping = Trigger::Send(sa("10.1.1.1:0"));
        let raw = || true;
        for local in ["0.0.0.0:1", "0.0.0.0:0", "0.0.0.0:4711"] {
            assert_eq!(
                auto_bind(&v4only(), sa(local), ping, never, raw),
                Verdict::Use(sa("10.0.3.7:0")),
                "{local}"
            );
        }
        let connect = Trigger::Connect(sa("10.1.1.1:0"));
        assert_eq!(
            auto_bind(&v4only(), sa("0.0.0.0:1"), connect, never, raw),
            Verdict::Use(sa("10.0.3.7:0"))
        );
        // an ICMPv6 socket of a node with an IPv6 address
        assert_eq!(
            auto_bind(
                &both(),
                sa("[::]:58"),
                Trigger::Send(sa("[fd00::1]:0")),
                never,
                raw
            ),
            Verdict::Use(sa("[fd00::3:7]:0"))
        );
        // already bound to an address: left alone
        assert_eq!(
            auto_bind(&v4only(), sa("10.0.3.7:1"), ping, never, || {
                panic!("not asked for a socket bound to an address")
            }),
            Verdict::Keep
        );
    }

    #[test]
    fn raw_and_icmp_datagram_sockets_have_no_port() {
        assert!(is_portless(libc::SOCK_RAW, libc::IPPROTO_ICMP));
        assert!(is_portless(libc::SOCK_RAW, libc::IPPROTO_RAW));
        assert!(is_portless(libc::SOCK_DGRAM, libc::IPPROTO_ICMP));
        assert!(is_portless(libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6));
        assert!(!is_portless(libc::SOCK_DGRAM, libc::IPPROTO_UDP));
        assert!(!is_portless(libc::SOCK_STREAM, libc::IPPROTO_TCP));
    }

    #[test]
    fn sends_bind_even_towards_loopback() {
        let send = Trigger::Send(sa("127.0.0.1:53"));
        assert_eq!(
            auto_bind(&v4only(), sa("0.0.0.0:0"), send, never, tcp),
            Verdict::Use(sa("10.0.3.7:0"))
        );
    }

    #[test]
    fn loopback_includes_v4_mapped_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for lo in [
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.200.1.2",
        ] {
            assert!(is_loopback(ip(lo)), "{lo}");
        }
        for not in [
            "10.0.3.7",
            "0.0.0.0",
            "::",
            "::ffff:10.0.3.7",
            "::127.0.0.1",
            "fd00::1",
        ] {
            assert!(!is_loopback(ip(not)), "{not}");
        }
        // a dual-stack socket connecting to mapped loopback stays unbound, as for 127.0.0.1
        let mapped_lo = Trigger::Connect(sa("[::ffff:127.0.0.1]:80"));
        assert_eq!(
            auto_bind(&v4only(), sa("[::]:0"), mapped_lo, never, tcp),
            Verdict::Keep
        );
    }

    #[test]
    fn only_unbound_sockets_are_bound_first() {
        let ips = both();
        let send = Trigger::Send(sa("10.1.1.1:80"));
        // port 0 and a wildcard (plain or v4-mapped) address: unbound
        assert_eq!(
            auto_bind(&ips, sa("[::ffff:0.0.0.0]:0"), send, never, tcp),
            Verdict::Use(sa("[::ffff:10.0.3.7]:0"))
        );
        // a port or an address already chosen: left alone
        for bound in [
            "[::]:5000",
            "[::ffff:0.0.0.0]:5000",
            "[fd00::3:7]:0",
            "[::ffff:10.0.3.7]:0",
        ] {
            assert_eq!(
                auto_bind(&ips, sa(bound), send, never, tcp),
                Verdict::Keep,
                "{bound}"
            );
        }
    }

    #[test]
    fn ipv6_sockets_use_the_family_of_their_peer() {
        let unbound = sa("[::]:0");
        let listen = Trigger::Listen;
        assert_eq!(
            auto_bind(&both(), unbound, listen, never, tcp),
            Verdict::Use(sa("[fd00::3:7]:0"))
        );
        assert_eq!(
            auto_bind(&v4only(), unbound, listen, || false, tcp),
            Verdict::Use(sa("[::ffff:10.0.3.7]:0"))
        );
        // a dual-stack socket towards an IPv4 peer given as a plain IPv4 address
        let to_v4 = Trigger::Send(sa("10.1.1.1:80"));
        assert_eq!(
            auto_bind(&both(), unbound, to_v4, never, tcp),
            Verdict::Use(sa("[::ffff:10.0.3.7]:0"))
        );
        // nothing to enforce: every socket is left to the kernel
        let none = Ips::default();
        for trigger in [listen, to_v4, Trigger::Send(sa("[2001:db8::1]:80"))] {
            assert_eq!(
                auto_bind(&none, unbound, trigger, never, tcp),
                Verdict::Keep
            );
            assert_eq!(
                auto_bind(&none, sa("0.0.0.0:0"), trigger, never, tcp),
                Verdict::Keep
            );
        }
    }

    #[test]
    fn the_node_name_matches_as_host_names_do() {
        for name in ["node6", "NODE6", "Node6", "node6."] {
            assert!(is_own_name(b"node6", name.as_bytes()), "{name}");
        }
        for name in ["node66", "node", "node6..", "node6.lab", "localhost", ""] {
            assert!(!is_own_name(b"node6", name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn the_node_name_resolves_to_the_node_addresses_of_the_family_asked() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let (v4, v6) = (ip("10.0.3.7"), ip("fd00::3:7"));
        assert_eq!(own_name_addresses(&both(), libc::AF_UNSPEC), Some([v4, v6]));
        assert_eq!(own_name_addresses(&both(), libc::AF_INET), Some([v4, None]));
        assert_eq!(
            own_name_addresses(&both(), libc::AF_INET6),
            Some([v6, None])
        );
        assert_eq!(
            own_name_addresses(&v4only(), libc::AF_UNSPEC),
            Some([v4, None])
        );
        // libc maps BINDIP for AF_INET6 when the caller asks for AI_V4MAPPED
        assert_eq!(
            own_name_addresses(&v4only(), libc::AF_INET6),
            Some([v4, None])
        );
        let v6only = Ips {
            v4: None,
            v6: both().v6,
        };
        assert_eq!(
            own_name_addresses(&v6only, libc::AF_INET),
            Some([None, None])
        );
        assert_eq!(own_name_addresses(&both(), libc::AF_UNIX), None);
        assert_eq!(own_name_addresses(&Ips::default(), libc::AF_INET), None);
    }

    #[test]
    fn triggers_read_as_the_call_that_caused_them() {
        assert_eq!(Trigger::Listen.to_string(), "listen");
        assert_eq!(
            Trigger::Connect(sa("10.1.1.1:80")).to_string(),
            "connect to 10.1.1.1:80"
        );
        assert_eq!(
            Trigger::Send(sa("[fd00::1]:53")).to_string(),
            "send to [fd00::1]:53"
        );
    }

    #[test]
    fn interface_list_shows_loopback_and_own_addresses() {
        let ips = both();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(show_interface_entry(&ips, true, None));
        assert!(!show_interface_entry(&ips, false, None));
        assert!(show_interface_entry(&ips, true, ip("127.0.0.1")));
        assert!(show_interface_entry(&ips, true, ip("::1")));
        assert!(show_interface_entry(&ips, true, ip("10.0.3.7")));
        assert!(show_interface_entry(&ips, false, ip("fd00::3:7")));
        assert!(!show_interface_entry(&ips, true, ip("10.0.3.8")));
        assert!(!show_interface_entry(&ips, false, ip("192.168.1.2")));
    }

    #[test]
    fn an_interface_address_of_another_node_shows_as_the_own() {
        let lo = Ipv4Addr::LOCALHOST;
        let other = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(interface_address(&v4only(), true, lo), Some(lo));
        assert_eq!(interface_address(&v4only(), false, V4), Some(V4));
        assert_eq!(interface_address(&v4only(), false, other), Some(V4));
        assert_eq!(interface_address(&v4only(), true, other), Some(V4));
        let v6 = Ips {
            v4: None,
            v6: both().v6,
        };
        assert_eq!(interface_address(&v6, false, other), None);
    }

    /// The node's listeners at these addresses, for [`loopback_redirect`].
    fn listening(at: &[&str]) -> impl FnMut(SocketAddr) -> bool {
        let at: Vec<SocketAddr> = at.iter().map(|a| sa(a)).collect();
        move |to| at.contains(&to)
    }

    #[test]
    fn loopback_reaches_the_node_own_listener_from_loopback() {
        let redirect = |to: &str, from: &str| {
            Some(Redirect {
                to: sa(to),
                from: sa(from),
            })
        };
        let own = listening(&["10.0.3.7:6379"]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("127.0.0.1:6379"), never, own),
            redirect("10.0.3.7:6379", "127.0.0.1:0")
        );
        // any of 127/8, as a wildcard listener answers on all of it
        let own = listening(&["10.0.3.7:6379"]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("127.0.1.1:6379"), never, own),
            redirect("10.0.3.7:6379", "127.0.1.1:0")
        );
        // v4-mapped loopback on a dual-stack socket
        let own = listening(&["[::ffff:10.0.3.7]:80"]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("[::ffff:127.0.0.1]:80"), never, own),
            redirect("[::ffff:10.0.3.7]:80", "[::ffff:127.0.0.1]:0")
        );
        // [::1]: BINDIP6, else the v4-mapped BINDIP on a dual-stack socket
        let own = listening(&["[fd00::3:7]:80", "[::ffff:10.0.3.7]:80"]);
        assert_eq!(
            loopback_redirect(&both(), sa("[::1]:80"), never, own),
            redirect("[fd00::3:7]:80", "[::1]:0")
        );
        let own = listening(&["[::ffff:10.0.3.7]:80"]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("[::1]:80"), || false, own),
            redirect("[::ffff:10.0.3.7]:80", "[::ffff:127.0.0.1]:0")
        );
        let own = listening(&["[::ffff:10.0.3.7]:80"]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("[::1]:80"), || true, own),
            None,
            "a v6-only socket cannot reach an IPv4 listener"
        );
    }

    #[test]
    fn loopback_stays_loopback_without_a_listener_of_the_node() {
        let nothing = listening(&[]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("127.0.0.1:53"), never, nothing),
            None
        );
        // another port, or another node's address: not this node's service
        let elsewhere = listening(&["10.0.3.7:81", "10.0.3.8:80", "[::ffff:10.0.3.8]:80"]);
        assert_eq!(
            loopback_redirect(&v4only(), sa("127.0.0.1:80"), never, elsewhere),
            None
        );
        // not loopback, or a shim with nothing to enforce: nothing asked
        let asked = |_| panic!("nothing to ask for a peer that is not loopback");
        for peer in [
            "10.0.3.7:80",
            "10.9.9.9:80",
            "[fd00::1]:80",
            "[::ffff:10.0.0.1]:80",
        ] {
            assert_eq!(loopback_redirect(&both(), sa(peer), never, asked), None);
        }
        assert_eq!(
            loopback_redirect(&Ips::default(), sa("127.0.0.1:80"), never, asked),
            None
        );
    }

    fn any_sockaddr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            Just(sa("0.0.0.0:0")),
            Just(sa("[::]:0")),
        ]
    }

    fn own_or_loopback(ips: &Ips, addr: SocketAddr) -> bool {
        let ip = addr.ip();
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        is_loopback(ip)
            || ips
                .v4
                .is_some_and(|v4| ip == IpAddr::V4(v4) || mapped == Some(IpAddr::V4(v4)))
            || ips.v6.is_some_and(|v6| ip == IpAddr::V6(v6))
    }

    proptest! {
        /// Whatever a wrapped program binds to, the result is never a wildcard: either its
        /// own address (same port), an explicit address it chose, or, for a v6-only socket
        /// of a node without an IPv6 address, loopback on a port of the kernel's choice.
        #[test]
        fn bind_never_leaves_a_wildcard(addr in any_sockaddr(), v6only: bool, with6: bool) {
            let ips = if with6 { both() } else { v4only() };
            match bind(&ips, addr, || v6only) {
                Some(to) if to.ip().is_loopback() => {
                    prop_assert!(addr.is_ipv6() && v6only && !with6 && to.port() == 0)
                }
                Some(to) => prop_assert!(own_or_loopback(&ips, to) && to.port() == addr.port()),
                None => prop_assert!(!addr.ip().is_unspecified()),
            }
        }

        /// An unbound socket that sends or listens is bound to the node's own address first,
        /// or the call fails; only loopback peers may be reached from another address.
        #[test]
        fn unbound_sockets_never_send_from_another_address(
            peer in any_sockaddr(), v6 in any::<bool>(), listen in any::<bool>(), v6only: bool,
        ) {
            let ips = v4only();
            let local = if v6 { sa("[::]:0") } else { sa("0.0.0.0:0") };
            let trigger = if listen { Trigger::Listen } else { Trigger::Send(peer) };
            match auto_bind(&ips, local, trigger, || v6only, tcp) {
                Verdict::Use(to) => prop_assert!(own_or_loopback(&ips, to)),
                Verdict::Keep => prop_assert!(!listen && is_loopback(peer.ip())),
                Verdict::Fail(_) => prop_assert!(v6),
            }
        }
    }
}
