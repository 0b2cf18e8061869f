//! The kernel's socket table, asked through `NETLINK_SOCK_DIAG` (what `ss` reads): whether a
//! socket of this network namespace is bound at exactly one address and port. Asked only
//! when a wrapped program connects or sends to loopback (see
//! [`crate::decide::loopback_redirect`]); the kernel filters the sockets by state and port,
//! so the answer costs about as much beside thousands of other nodes as alone.
//! This module builds the request and reads the answer, as bytes; the socket is `ffi`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `SOCK_DIAG_BY_FAMILY`, the message type of a request and of each socket answered.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `nlmsghdr` and `inet_diag_req_v2`.
const HEADER: usize = 16;
const REQUEST: usize = HEADER + 56;
/// `inet_diag_msg`, after its header: family, state, timer, retransmits, then the socket's
/// id (source port, destination port, source address, ...).
const MSG: usize = 72;
/// `TCP_LISTEN` and `TCP_CLOSE` as state bits: listening TCP sockets, unconnected UDP ones.
const LISTEN: u32 = 1 << 10;
const UNCONNECTED: u32 = 1 << 7;

/// The sockets that serve a port: listening TCP sockets, or unconnected UDP ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    Tcp,
    Udp,
}

/// A dump request for the sockets of `family` (`AF_INET` or `AF_INET6`) that serve `port`
/// as `kind`. The kernel answers only the sockets of that state and local port (and
/// [`Answer::scan`] checks both again).
pub fn request(kind: Serving, family: libc::c_int, port: u16) -> [u8; REQUEST] {
    let (protocol, states) = match kind {
        Serving::Tcp => (libc::IPPROTO_TCP, LISTEN),
        Serving::Udp => (libc::IPPROTO_UDP, UNCONNECTED),
    };
    let mut buf = [0u8; REQUEST];
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    buf[0..4].copy_from_slice(&(REQUEST as u32).to_ne_bytes());
    buf[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    buf[6..8].copy_from_slice(&flags.to_ne_bytes());
    buf[16] = family as u8;
    buf[17] = protocol as u8;
    buf[20..24].copy_from_slice(&states.to_ne_bytes());
    buf[24..26].copy_from_slice(&port.to_be_bytes());
    // no cookie: INET_DIAG_NOCOOKIE
    buf[64..72].fill(0xff);
    buf
}

/// What one read of the answer told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// A socket at the address and port asked for.
    pub found: bool,
    /// The dump ended (or failed): nothing more to read.
    pub done: bool,
}

impl Answer {
    /// Reads the messages in `buf` (one `recv` of the answer), looking for a socket whose
    /// local address is `ip` and port `port`.
    pub fn scan(buf: &[u8], ip: IpAddr, port: u16) -> Self {
        let mut answer = Self::default();
        let mut rest = buf;
        while let Some(header) = rest.get(..HEADER) {
            let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let kind = u16::from_ne_bytes([header[4], header[5]]);
            if len < HEADER {
                answer.done = true; // malformed: stop reading
                break;
            }
            match i32::from(kind) {
                libc::NLMSG_DONE | libc::NLMSG_ERROR => answer.done = true,
                _ if kind == SOCK_DIAG_BY_FAMILY => {
                    answer.found |=
                        rest.get(HEADER..HEADER + MSG).and_then(local) == Some((ip, port));
                }
                _ => {}
            }
            // messages are 4-byte aligned
            rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
        answer
    }
}

/// A socket's local address and port, from its `inet_diag_msg`.
fn local(msg: &[u8]) -> Option<(IpAddr, u16)> {
    let port = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    let src = msg.get(8..24)?;
    let ip = match i32::from(msg[0]) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(src).ok()?)),
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One answer message for a socket at `ip`:`port`.
    fn socket_msg(ip: IpAddr, port: u16) -> Vec<u8> {
        let mut msg = vec![0u8; HEADER + MSG];
        msg[0..4].copy_from_slice(&((HEADER + MSG) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        let body = &mut msg[HEADER..];
        body[4..6].copy_from_slice(&port.to_be_bytes());
        match ip {
            IpAddr::V4(v4) => {
                body[0] = libc::AF_INET as u8;
                body[8..12].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                body[0] = libc::AF_INET6 as u8;
                body[8..24].copy_from_slice(&v6.octets());
            }
        }
        msg
    }

    fn done_msg() -> Vec<u8> {
        let mut msg = vec![0u8; HEADER + 4];
        msg[0..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn requests_ask_for_listeners_of_one_port_or_unconnected_udp_sockets() {
        let tcp = request(Serving::Tcp, libc::AF_INET, 6379);
        assert_eq!(u32::from_ne_bytes(tcp[0..4].try_into().unwrap()), 72);
        // SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP
        assert_eq!(u16::from_ne_bytes(tcp[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(tcp[6..8].try_into().unwrap()), 0x301);
        assert_eq!(
            (tcp[16], tcp[17]),
            (libc::AF_INET as u8, libc::IPPROTO_TCP as u8)
        );
        // 1 << TCP_LISTEN
        assert_eq!(u32::from_ne_bytes(tcp[20..24].try_into().unwrap()), 1024);
        assert_eq!(&tcp[24..26], &6379u16.to_be_bytes());
        let udp = request(Serving::Udp, libc::AF_INET6, 53);
        assert_eq!(
            (udp[16], udp[17]),
            (libc::AF_INET6 as u8, libc::IPPROTO_UDP as u8)
        );
        // 1 << TCP_CLOSE
        assert_eq!(u32::from_ne_bytes(udp[20..24].try_into().unwrap()), 128);
        assert_eq!(&udp[24..26], &53u16.to_be_bytes());
        assert_eq!(&udp[64..72], &[0xff; 8]);
    }

    #[test]
    fn scan_finds_the_exact_address_and_port() {
        let mut buf = socket_msg(ip("10.0.0.2"), 6379);
        buf.extend(socket_msg(ip("::ffff:10.0.0.1"), 6379));
        buf.extend(socket_msg(ip("10.0.0.1"), 6380));
        let at = |a: &str, port| Answer::scan(&buf, ip(a), port);
        assert_eq!(
            at("10.0.0.2", 6379),
            Answer {
                found: true,
                done: false
            }
        );
        assert!(at("::ffff:10.0.0.1", 6379).found);
        assert!(
            !at("10.0.0.1", 6379).found,
            "a dual-stack socket is found by its v4-mapped address only"
        );
        assert!(at("10.0.0.1", 6380).found);
        assert!(!at("10.0.0.3", 6379).found);
        buf.extend(done_msg());
        assert_eq!(
            Answer::scan(&buf, ip("10.0.0.3"), 1),
            Answer {
                found: false,
                done: true
            }
        );
    }

    #[test]
    fn scan_reads_sockets_only_from_socket_messages() {
        let want = ip("10.0.0.2");
        // the same bytes in a message of another type (NLMSG_NOOP): not a socket
        let mut noop = socket_msg(want, 80);
        noop[4..6].copy_from_slice(&(libc::NLMSG_NOOP as u16).to_ne_bytes());
        assert_eq!(Answer::scan(&noop, want, 80), Answer::default());
        // a message of a header alone is skipped, not taken for the end
        let mut bare = vec![0u8; HEADER];
        bare[0..4].copy_from_slice(&(HEADER as u32).to_ne_bytes());
        bare.extend(socket_msg(want, 80));
        assert!(Answer::scan(&bare, want, 80).found);
    }

    #[test]
    fn scan_stops_at_malformed_or_short_messages() {
        let mut short = socket_msg(ip("10.0.0.2"), 80);
        short.truncate(HEADER + 10);
        assert_eq!(Answer::scan(&short, ip("10.0.0.2"), 80), Answer::default());
        let zero = [0u8; HEADER];
        assert!(Answer::scan(&zero, ip("10.0.0.2"), 80).done);
        assert_eq!(Answer::scan(&[], ip("10.0.0.2"), 80), Answer::default());
    }
}
