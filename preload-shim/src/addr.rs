//! Conversions between C `sockaddr` buffers and `std::net::SocketAddr`, on the stack.

use libc::{c_char, sa_family_t, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, socklen_t};
use std::fmt::{self, Write};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Reads an IPv4 or IPv6 socket address; `None` for a null pointer, a short buffer or
/// another family.
///
/// # Safety
/// `addr` is null or points to at least `len` readable bytes.
pub unsafe fn read(addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    let len = usize::try_from(len).ok()?;
    if addr.is_null() || len < size_of::<sa_family_t>() {
        return None;
    }
    // SAFETY: the caller guarantees `len` readable bytes, and `len` covers the family field.
    let family = unsafe { addr.cast::<sa_family_t>().read_unaligned() };
    match i32::from(family) {
        libc::AF_INET if len >= size_of::<sockaddr_in>() => {
            // SAFETY: `len` covers a whole `sockaddr_in`; read unaligned as callers may pack it.
            let sin = unsafe { addr.cast::<sockaddr_in>().read_unaligned() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<sockaddr_in6>() => {
            // SAFETY: `len` covers a whole `sockaddr_in6`.
            let sin6 = unsafe { addr.cast::<sockaddr_in6>().read_unaligned() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// A socket address laid out for the kernel.
pub struct Raw {
    storage: sockaddr_storage,
    len: socklen_t,
}

impl Raw {
    pub fn as_ptr(&self) -> *const sockaddr {
        std::ptr::addr_of!(self.storage).cast()
    }

    pub fn len(&self) -> socklen_t {
        self.len
    }

    /// An empty buffer for `getsockname` to fill.
    pub fn empty() -> Self {
        Self {
            // SAFETY: `sockaddr_storage` is plain old data; all zeroes is a valid value.
            storage: unsafe { zeroed() },
            len: socklen_of::<sockaddr_storage>(),
        }
    }

    pub fn as_mut_parts(&mut self) -> (*mut sockaddr, &mut socklen_t) {
        (std::ptr::addr_of_mut!(self.storage).cast(), &mut self.len)
    }

    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        // SAFETY: `storage` is readable for its whole size, which bounds `len` when the kernel
        // filled it, and `len` never exceeds it when we did.
        unsafe {
            read(
                self.as_ptr(),
                self.len.min(socklen_of::<sockaddr_storage>()),
            )
        }
    }
}

impl From<SocketAddr> for Raw {
    fn from(addr: SocketAddr) -> Self {
        let mut raw = Self::empty();
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: all-zero is a valid `sockaddr_in`.
                let mut sin: sockaddr_in = unsafe { zeroed() };
                sin.sin_family = libc::AF_INET as sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in`.
                unsafe {
                    std::ptr::addr_of_mut!(raw.storage)
                        .cast::<sockaddr_in>()
                        .write(sin)
                };
                raw.len = socklen_of::<sockaddr_in>();
            }
            SocketAddr::V6(a) => {
                // SAFETY: all-zero is a valid `sockaddr_in6`.
                let mut sin6: sockaddr_in6 = unsafe { zeroed() };
                sin6.sin6_family = libc::AF_INET6 as sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in6`.
                unsafe {
                    std::ptr::addr_of_mut!(raw.storage)
                        .cast::<sockaddr_in6>()
                        .write(sin6)
                };
                raw.len = socklen_of::<sockaddr_in6>();
            }
        }
        raw
    }
}

/// An IP address as a NUL-terminated numeric string (`10.0.3.7`, `fd00::3:7`), on the stack,
/// for the libc functions that take a host name.
pub struct Numeric {
    buf: [u8; NUMERIC_MAX],
    len: usize,
}

/// Longest numeric address with its NUL (`INET6_ADDRSTRLEN`).
const NUMERIC_MAX: usize = 46;

impl Numeric {
    pub fn new(ip: IpAddr) -> Self {
        let mut text = Self {
            buf: [0; NUMERIC_MAX],
            len: 0,
        };
        // Every address fits, and the last byte stays NUL.
        let _ = write!(text, "{ip}");
        text
    }

    pub fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

impl Write for Numeric {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .filter(|_| end < NUMERIC_MAX);
        dst.ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The size of a socket address type, as `socklen_t` (all of them fit).
pub const fn socklen_of<T>() -> socklen_t {
    size_of::<T>() as socklen_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "10.0.3.7:80",
            "0.0.0.0:0",
            "[fd00::3:7]:443",
            "[::ffff:10.0.3.7]:1",
        ] {
            let addr: SocketAddr = s.parse().unwrap();
            let raw = Raw::from(addr);
            assert_eq!(raw.to_socket_addr(), Some(addr));
            let want = if addr.is_ipv4() {
                size_of::<sockaddr_in>()
            } else {
                size_of::<sockaddr_in6>()
            };
            assert_eq!(raw.len() as usize, want);
        }
    }

    #[test]
    fn numeric_addresses_end_with_nul() {
        for s in [
            "10.0.3.7",
            "255.255.255.255",
            "fd00::3:7",
            "::ffff:10.0.3.7",
        ] {
            let text = Numeric::new(s.parse().unwrap());
            // SAFETY: `Numeric` always holds a NUL within its buffer.
            let c = unsafe { std::ffi::CStr::from_ptr(text.as_ptr()) };
            assert_eq!(c.to_str().unwrap(), s);
        }
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        let text = Numeric::new(longest);
        assert_eq!(text.buf[text.len], 0);
        assert_eq!(text.len, longest.to_string().len());
    }

    #[test]
    fn rejects_short_null_and_foreign() {
        let raw = Raw::from("10.0.3.7:80".parse::<SocketAddr>().unwrap());
        // SAFETY: the pointer covers `len` bytes, and shorter lengths are in bounds too.
        unsafe {
            assert_eq!(read(raw.as_ptr(), 4), None);
            assert_eq!(read(std::ptr::null(), 16), None);
        }
        let mut unix = Raw::empty();
        // SAFETY: writes the family field inside the storage.
        unsafe {
            (unix.as_mut_parts().0)
                .cast::<sa_family_t>()
                .write(libc::AF_UNIX as sa_family_t)
        };
        assert_eq!(unix.to_socket_addr(), None);
    }
}
