//! What the shim remembers of a descriptor, so that a wrapped `connect` needs no
//! `getsockname`: IP sockets that `socket()` returned and that nothing has given an address
//! since. An entry is only a hint, never trusted to skip a bind: the shim binds such a
//! socket straight away, and when that bind fails (the number now names another file, a
//! socket bound behind the shim's back, through a `dup`, in another process after `fork`,
//! or a descriptor received over a unix socket) it asks the kernel as for any unknown
//! descriptor. So the table needs no `close`, `dup` or `fork` hooks to stay right, and
//! starts empty after `exec`, where every inherited descriptor is unknown. Entries are
//! atomics: no lock on the hot path.

use crate::decide;
use libc::c_int;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

/// An IP socket as `socket()` created it: no address yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fresh {
    pub v6: bool,
    pub ty: c_int,
    pub protocol: c_int,
}

const PRESENT: u64 = 1 << 63;
const V6: u64 = 1 << 62;

impl Fresh {
    /// The socket `socket(domain, ty, protocol)` returns, when it is an IP one.
    pub fn of(domain: c_int, ty: c_int, protocol: c_int) -> Option<Self> {
        let v6 = match domain {
            libc::AF_INET => false,
            libc::AF_INET6 => true,
            _ => return None,
        };
        // The type without SOCK_NONBLOCK and SOCK_CLOEXEC.
        let ty = ty & 0xf;
        Some(Self { v6, ty, protocol })
    }

    /// Its local address: the wildcard of its family, no port.
    pub fn local(self) -> SocketAddr {
        match self.v6 {
            false => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            true => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
        }
    }

    pub fn portless(self) -> bool {
        decide::is_portless(self.ty, self.protocol)
    }

    fn encode(self) -> u64 {
        let v6 = if self.v6 { V6 } else { 0 };
        let ty = u64::from(self.ty as u8) << 32;
        PRESENT | v6 | ty | u64::from(self.protocol as u32)
    }

    fn decode(bits: u64) -> Option<Self> {
        (bits & PRESENT != 0).then(|| Self {
            v6: bits & V6 != 0,
            ty: c_int::from((bits >> 32) as u8),
            protocol: bits as u32 as c_int,
        })
    }
}

/// One entry per descriptor number below `N`.
pub struct Table<const N: usize> {
    slots: [AtomicU64; N],
}

impl<const N: usize> Table<N> {
    pub const fn new() -> Self {
        Self {
            slots: [const { AtomicU64::new(0) }; N],
        }
    }

    /// `fd` is now `socket` (or, with `None`, anything else).
    pub fn set(&self, fd: c_int, socket: Option<Fresh>) {
        if let Some(slot) = self.slot(fd) {
            slot.store(socket.map_or(0, Fresh::encode), Ordering::Relaxed);
        }
    }

    /// What was known of `fd`, forgotten: the call about to be made gives it an address.
    pub fn take(&self, fd: c_int) -> Option<Fresh> {
        let slot = self.slot(fd)?;
        if slot.load(Ordering::Relaxed) == 0 {
            return None; // the common case for a known socket: no write
        }
        Fresh::decode(slot.swap(0, Ordering::Relaxed))
    }

    fn slot(&self, fd: c_int) -> Option<&AtomicU64> {
        self.slots.get(usize::try_from(fd).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_sockets_are_remembered() {
        let tcp = Fresh::of(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0).unwrap();
        assert_eq!(
            (tcp.v6, tcp.ty, tcp.protocol),
            (false, libc::SOCK_STREAM, 0)
        );
        assert_eq!(tcp.local(), "0.0.0.0:0".parse().unwrap());
        let ping = Fresh::of(libc::AF_INET6, libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6).unwrap();
        assert_eq!(ping.local(), "[::]:0".parse().unwrap());
        assert!(ping.portless() && !tcp.portless());
        assert_eq!(Fresh::of(libc::AF_UNIX, libc::SOCK_STREAM, 0), None);
        assert_eq!(Fresh::of(libc::AF_NETLINK, libc::SOCK_RAW, 0), None);
    }

    #[test]
    fn entries_are_taken_once() {
        let table = Table::<4>::new();
        let mptcp = Fresh::of(libc::AF_INET6, libc::SOCK_STREAM, libc::IPPROTO_MPTCP).unwrap();
        table.set(3, Some(mptcp));
        assert_eq!(table.take(3), Some(mptcp));
        assert_eq!(table.take(3), None);
        // a number reused for something else forgets the socket
        table.set(2, Some(mptcp));
        table.set(2, None);
        assert_eq!(table.take(2), None);
        // numbers out of the table are never known
        table.set(4, Some(mptcp));
        assert_eq!(table.take(4), None);
        assert_eq!(table.take(-1), None);
    }
}
