//! Filtering the list `getifaddrs` returns, in place and without allocating, so that a
//! wrapped process sees loopback and its own address only.

use crate::addr;
use crate::config::Ips;
use crate::decide;
use libc::{ifaddrs, sockaddr_in6};
use std::ffi::CStr;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::net::SocketAddr;

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

    #[test]
    fn nothing_visible_frees_the_list() {
        let list = List::new(&[("eth0", None), ("eth0", Some("192.168.1.5"))]);
        assert!(list.filtered(&ips()).is_empty());
    }
}
