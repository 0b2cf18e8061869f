//! Filtering the interface lists a program reads (`getifaddrs`, the `SIOCGIFCONF` and
//! `SIOCGIFADDR` ioctls), in place and without allocating, so that a wrapped process sees
//! loopback and its own address only.

use crate::addr;
use crate::config::Ips;
use crate::decide;
use libc::{ifaddrs, ifreq, sockaddr, sockaddr_in, sockaddr_in6};
use std::ffi::CStr;
use std::net::SocketAddr;
use std::ptr;

/// Unlinks from the list at `*head` every entry the node must not see.
///
/// The head node is never unlinked: glibc frees the whole list through it, so when it must
/// go, the first visible entry is copied over it. An empty result frees the list through
/// `free_list` and stores null.
///
/// # Safety
/// `*head` is null or a well-formed list from `getifaddrs`, owned by the caller.
pub unsafe fn retain_own(ips: &Ips, head: *mut *mut ifaddrs, free_list: impl FnOnce(*mut ifaddrs)) {
    // SAFETY: the caller passes a valid pointer to the list head.
    let first = unsafe { *head };
    // SAFETY: every node reached is a node of the caller's list.
    let shown = |node: *mut ifaddrs| unsafe { visible(ips, &*node) };
    let mut kept = first;
    while !kept.is_null() && !shown(kept) {
        // SAFETY: `kept` is a non-null node of the caller's list.
        kept = unsafe { (*kept).ifa_next };
    }
    if kept.is_null() {
        if !first.is_null() {
            free_list(first);
        }
        // SAFETY: `head` is valid for writes.
        unsafe { *head = ptr::null_mut() };
        return;
    }
    if kept != first {
        // SAFETY: both are distinct nodes of the list; the copy keeps pointing into `kept`'s
        // storage, which stays allocated with the list.
        unsafe { ptr::copy_nonoverlapping(kept, first, 1) };
    }
    let mut last = first;
    // SAFETY: `first` is a node; the loop follows `ifa_next` links until null and relinks
    // only nodes of the same list.
    unsafe {
        let mut node = (*first).ifa_next;
        while !node.is_null() {
            let next = (*node).ifa_next;
            if shown(node) {
                (*last).ifa_next = node;
                last = node;
            }
            node = next;
        }
        (*last).ifa_next = ptr::null_mut();
    }
}

/// # Safety
/// `entry` comes from `getifaddrs`: its name is a C string and its address null or valid.
unsafe fn visible(ips: &Ips, entry: &ifaddrs) -> bool {
    // SAFETY: per the contract, the name is a NUL-terminated string (or null).
    let on_lo = !entry.ifa_name.is_null() && unsafe { CStr::from_ptr(entry.ifa_name) } == c"lo";
    // SAFETY: an entry's address buffer holds a whole address of its family; `read` reads at
    // most a `sockaddr_in6`, and only for IPv6 entries.
    let addr = unsafe { addr::read(entry.ifa_addr, addr::socklen_of::<sockaddr_in6>()) };
    let has_ip_family = !entry.ifa_addr.is_null()
        // SAFETY: a non-null address starts with its family field.
        && matches!(i32::from(unsafe { (*entry.ifa_addr).sa_family }), libc::AF_INET | libc::AF_INET6);
    if has_ip_family && addr.is_none() {
        return false;
    }
    decide::show_interface_entry(ips, on_lo, addr.map(|a| a.ip()))
}

/// Keeps, at the front of `entries` (what `SIOCGIFCONF` filled) and in order, the entries
/// the node may see; returns how many.
pub fn retain_ifreqs(ips: &Ips, entries: &mut [ifreq]) -> usize {
    let mut kept = 0;
    for i in 0..entries.len() {
        if ifreq_visible(ips, &entries[i]) {
            entries.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

/// Makes the IPv4 address `SIOCGIFADDR` filled into `entry` one the node may see (see
/// [`decide::interface_address`]); false when the node has none to show.
pub fn own_ifreq_address(ips: &Ips, entry: &mut ifreq) -> bool {
    let Some(SocketAddr::V4(found)) = ifreq_addr(entry) else {
        return true; // not IPv4: nothing this ioctl reports
    };
    let on_lo = ifreq_name(entry) == b"lo";
    let Some(shown) = decide::interface_address(ips, on_lo, *found.ip()) else {
        return false;
    };
    let raw = addr::Raw::from(SocketAddr::new(shown.into(), 0));
    // SAFETY: `raw` holds a `sockaddr_in`, which `ifru_addr` (a `sockaddr`, the same size)
    // holds whole.
    unsafe { entry.ifr_ifru.ifru_addr = raw.as_ptr().cast::<sockaddr>().read_unaligned() };
    true
}

fn ifreq_visible(ips: &Ips, entry: &ifreq) -> bool {
    let on_lo = ifreq_name(entry) == b"lo";
    ifreq_addr(entry).is_some_and(|a| decide::show_interface_entry(ips, on_lo, Some(a.ip())))
}

fn ifreq_name(entry: &ifreq) -> &[u8] {
    // SAFETY: `c_char` and `u8` have the same size and alignment; the slice stays within
    // the name array.
    let name = unsafe {
        std::slice::from_raw_parts(entry.ifr_name.as_ptr().cast::<u8>(), entry.ifr_name.len())
    };
    name.split(|&b| b == 0).next().unwrap_or_default()
}

fn ifreq_addr(entry: &ifreq) -> Option<SocketAddr> {
    // SAFETY: every field of the union is plain data, and `ifru_addr` spans a whole
    // `sockaddr_in`, the most `read` takes of an AF_INET address (others are refused as
    // too short).
    unsafe {
        addr::read(
            ptr::addr_of!(entry.ifr_ifru.ifru_addr),
            addr::socklen_of::<sockaddr_in>(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::net::IpAddr;

    /// Builds a list of `(interface, address)` entries laid out like glibc's, in one Vec.
    struct List {
        nodes: Vec<ifaddrs>,
        _names: Vec<CString>,
        _addrs: Vec<addr::Raw>,
    }

    impl List {
        fn new(entries: &[(&str, Option<&str>)]) -> Self {
            let names: Vec<CString> = entries
                .iter()
                .map(|(n, _)| CString::new(*n).unwrap())
                .collect();
            let addrs: Vec<addr::Raw> = entries
                .iter()
                .map(|(_, a)| match a {
                    Some(a) => addr::Raw::from(SocketAddr::new(a.parse().unwrap(), 0)),
                    None => addr::Raw::empty(),
                })
                .collect();
            let mut nodes: Vec<ifaddrs> = entries
                .iter()
                .enumerate()
                .map(|(i, (_, a))| {
                    // SAFETY: all-zero `ifaddrs` is a valid value (null pointers).
                    let mut node: ifaddrs = unsafe { std::mem::zeroed() };
                    node.ifa_name = names[i].as_ptr().cast_mut();
                    if a.is_some() {
                        node.ifa_addr = addrs[i].as_ptr().cast_mut();
                    }
                    node
                })
                .collect();
            let base = nodes.as_mut_ptr();
            for i in 1..nodes.len() {
                // SAFETY: `i` is in bounds of the Vec, which is not resized afterwards.
                nodes[i - 1].ifa_next = unsafe { base.add(i) };
            }
            Self {
                nodes,
                _names: names,
                _addrs: addrs,
            }
        }

        /// Runs `retain_own` on the list and returns what a caller walking it then sees.
        /// Checks that the list was freed exactly when nothing is left, and that a non-empty
        /// result still starts at the original first node (glibc frees the list through it).
        fn filtered(mut self, ips: &Ips) -> Vec<(String, Option<SocketAddr>)> {
            let first = self.nodes.as_mut_ptr();
            let mut head = first;
            let mut freed = false;
            // SAFETY: `head` is the well-formed list built above.
            unsafe { retain_own(ips, &mut head, |_| freed = true) };
            assert!(
                head.is_null() || head == first,
                "the list must keep its first node"
            );
            let mut out = Vec::new();
            while !head.is_null() {
                // SAFETY: nodes of the list built above, alive in `self`.
                let node = unsafe { &*head };
                // SAFETY: names are the CStrings above; addresses are Raw buffers or null.
                let name = unsafe { CStr::from_ptr(node.ifa_name) }
                    .to_string_lossy()
                    .into_owned();
                // SAFETY: the address is null or a Raw buffer above.
                let addr = unsafe { addr::read(node.ifa_addr, addr::socklen_of::<sockaddr_in6>()) };
                out.push((name, addr));
                head = node.ifa_next;
            }
            assert_eq!(freed, out.is_empty());
            out
        }
    }

    fn ips() -> Ips {
        Ips {
            v4: Some("10.0.0.2".parse().unwrap()),
            v6: None,
        }
    }

    #[test]
    fn keeps_loopback_and_own_address_in_place() {
        let list = List::new(&[
            ("lo", None),
            ("eth0", None),
            ("lo", Some("127.0.0.1")),
            ("lo", Some("10.0.0.1")),
            ("lo", Some("10.0.0.2")),
            ("eth0", Some("192.168.1.5")),
            ("lo", Some("::1")),
        ]);
        let shown: Vec<_> = list
            .filtered(&ips())
            .into_iter()
            .map(|(n, a)| (n, a.map(|a| a.ip().to_string())))
            .collect();
        let want = [
            ("lo", None),
            ("lo", Some("127.0.0.1")),
            ("lo", Some("10.0.0.2")),
            ("lo", Some("::1")),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(n, a)| (n.to_string(), a.map(String::from)))
            .collect();
        assert_eq!(shown, want);
    }

    #[test]
    fn hidden_head_is_replaced_by_first_visible_entry() {
        let list = List::new(&[
            ("eth0", None),
            ("eth0", Some("192.168.1.5")),
            ("lo", Some("10.0.0.2")),
        ]);
        let shown = list.filtered(&ips());
        assert_eq!(
            shown,
            vec![("lo".to_string(), Some("10.0.0.2:0".parse().unwrap()))]
        );
    }

    /// An `ifreq` as `SIOCGIFCONF` fills it.
    fn ifreq_of(name: &str, ip: &str) -> ifreq {
        // SAFETY: all-zero `ifreq` is a valid value.
        let mut entry: ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in entry.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        let raw = addr::Raw::from(SocketAddr::new(ip.parse().unwrap(), 0));
        // SAFETY: a `sockaddr_in` fits the `sockaddr` of the union.
        unsafe { entry.ifr_ifru.ifru_addr = raw.as_ptr().cast::<sockaddr>().read_unaligned() };
        entry
    }

    fn shown(entries: &[ifreq]) -> Vec<(String, IpAddr)> {
        entries
            .iter()
            .map(|e| {
                let name = String::from_utf8_lossy(ifreq_name(e)).into_owned();
                (name, ifreq_addr(e).unwrap().ip())
            })
            .collect()
    }

    #[test]
    fn ifconf_keeps_loopback_and_own_address_in_order() {
        let mut entries = [
            ifreq_of("lo", "127.0.0.1"),
            ifreq_of("eth0", "192.168.1.5"),
            ifreq_of("v0", "10.0.0.1"),
            ifreq_of("v0", "10.0.0.2"),
            ifreq_of("lo", "10.0.0.3"),
        ];
        let kept = retain_ifreqs(&ips(), &mut entries);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            shown(&entries[..kept]),
            [
                ("lo".to_string(), ip("127.0.0.1")),
                ("v0".to_string(), ip("10.0.0.2"))
            ]
        );
        let mut none = [ifreq_of("eth0", "192.168.1.5")];
        assert_eq!(retain_ifreqs(&ips(), &mut none), 0);
    }

    #[test]
    fn ifaddr_of_another_address_shows_the_own() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (name, found, want) in [
            ("v0", "10.0.0.1", "10.0.0.2"),
            ("eth0", "192.168.1.5", "10.0.0.2"),
            ("v0", "10.0.0.2", "10.0.0.2"),
            ("lo", "127.0.0.1", "127.0.0.1"),
        ] {
            let mut entry = ifreq_of(name, found);
            assert!(own_ifreq_address(&ips(), &mut entry));
            assert_eq!(shown(&[entry]), [(name.to_string(), ip(want))]);
        }
        let v6only = Ips {
            v4: None,
            v6: Some("fd00::2".parse().unwrap()),
        };
        assert!(!own_ifreq_address(&v6only, &mut ifreq_of("v0", "10.0.0.1")));
    }

    #[test]
    fn nothing_visible_frees_the_list() {
        let list = List::new(&[("eth0", None), ("eth0", Some("192.168.1.5"))]);
        assert!(list.filtered(&ips()).is_empty());
    }
}
