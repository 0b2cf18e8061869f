//! The C functions the shim interposes. Each one only reads its arguments, asks [`ffi`] what
//! to do, and calls the real libc function; `send`, `recv`, `read` and `write` are not
//! interposed, so the data path is untouched.

use crate::addr::{self, Raw};
use crate::decide::Trigger;
use crate::ffi::{self, config, fail, guard, guard_or};
use crate::iflist;
use libc::{
    addrinfo, c_char, c_int, c_uint, c_ulong, c_void, hostent, ifaddrs, mmsghdr, msghdr, size_t,
    sockaddr, socklen_t, ssize_t, utsname,
};

/// `socket`: remembered, so that its first `connect` needs no `getsockname`.
///
/// # Safety
/// As socket(2).
#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(|| {
        let Some(real) = ffi::SOCKET.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: the caller's own arguments.
        let fd = unsafe { real(domain, ty, protocol) };
        ffi::created(fd, domain, ty, protocol);
        fd
    })
}

/// `bind`: a wildcard address becomes the node's own.
///
/// # Safety
/// As bind(2): `addr` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    guard(|| {
        let Some(real) = ffi::BIND.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: per bind(2), `addr` holds `len` bytes.
        let asked = unsafe { addr::read(addr, len) };
        match asked.and_then(|asked| ffi::bind_to(fd, asked)) {
            // SAFETY: the caller's own arguments, unchanged.
            None => unsafe { real(fd, addr, len) },
            Some(to) => {
                let raw = Raw::from(to);
                // SAFETY: `raw` holds a valid address of `raw.len()` bytes.
                unsafe { real(fd, raw.as_ptr(), raw.len()) }
            }
        }
    })
}

/// `connect`: an unbound socket is bound to the node's address first (not for loopback);
/// loopback reaches the node's own listener of that port, if any.
///
/// # Safety
/// As connect(2).
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    guard(|| {
        let Some(real) = ffi::CONNECT.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: per connect(2), `addr` holds `len` bytes.
        let peer = unsafe { addr::read(addr, len) };
        let to = peer.and_then(|peer| ffi::loopback_redirect(fd, peer));
        let raw = to.map(Raw::from);
        let (addr, len) = raw.as_ref().map_or((addr, len), |r| (r.as_ptr(), r.len()));
        // SAFETY: the caller's own arguments, or the address it asked for redirected.
        ffi::after_auto_bind(fd, to.or(peer).map(Trigger::Connect), || unsafe {
            real(fd, addr, len)
        })
    })
}

/// `listen`: an unbound socket listens on the node's address.
///
/// # Safety
/// As listen(2).
#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    guard(|| {
        let Some(real) = ffi::LISTEN.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: the caller's own arguments.
        ffi::after_auto_bind(fd, Some(Trigger::Listen), || unsafe { real(fd, backlog) })
    })
}

/// `sendto`: an unbound socket sending to an IP peer is bound to the node's address first.
///
/// # Safety
/// As sendto(2).
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    guard(|| {
        let Some(real) = ffi::SENDTO.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: per sendto(2), `addr` is null or holds `len` bytes.
        let peer = unsafe { addr::read(addr, len) };
        let to = peer.and_then(|peer| ffi::loopback_redirect(fd, peer));
        let raw = to.map(Raw::from);
        let (addr, len) = raw.as_ref().map_or((addr, len), |r| (r.as_ptr(), r.len()));
        // SAFETY: the caller's own arguments, or the address it asked for redirected.
        ffi::after_auto_bind(fd, to.or(peer).map(Trigger::Send), || unsafe {
            real(fd, buf, n, flags, addr, len)
        })
    })
}

/// `sendmsg`: as `sendto`, for the message's name.
///
/// # Safety
/// As sendmsg(2).
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    guard(|| {
        let Some(real) = ffi::SENDMSG.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: per sendmsg(2), `msg` is a valid header.
        let peer = unsafe { ffi::msg_peer(msg) };
        let to = peer.and_then(|peer| ffi::loopback_redirect(fd, peer));
        let raw = to.map(Raw::from);
        // SAFETY: `msg` is valid (a peer was read from it); the copy names `raw` instead.
        let redirected = raw.as_ref().and_then(|raw| unsafe {
            msg.as_ref().map(|m| msghdr {
                msg_name: raw.as_ptr().cast_mut().cast(),
                msg_namelen: raw.len(),
                ..*m
            })
        });
        let msg = redirected.as_ref().map_or(msg, |m| m as *const msghdr);
        // SAFETY: the caller's own arguments, or its message to the address redirected.
        ffi::after_auto_bind(fd, to.or(peer).map(Trigger::Send), || unsafe {
            real(fd, msg, flags)
        })
    })
}

/// `sendmmsg`: as `sendto`, for the first named message.
///
/// # Safety
/// As sendmmsg(2).
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    count: c_uint,
    flags: c_int,
) -> c_int {
    guard(|| {
        let Some(real) = ffi::SENDMMSG.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: per sendmmsg(2), `msgs` holds `count` headers.
        let peer = unsafe { ffi::first_peer(msgs, count) };
        // SAFETY: the caller's own arguments.
        ffi::after_auto_bind(fd, peer.map(Trigger::Send), || unsafe {
            real(fd, msgs, count, flags)
        })
    })
}

/// `getifaddrs`: only loopback and the node's own addresses.
///
/// # Safety
/// As getifaddrs(3).
#[no_mangle]
pub unsafe extern "C" fn getifaddrs(list: *mut *mut ifaddrs) -> c_int {
    guard(|| {
        let Some(real) = ffi::GETIFADDRS.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: the caller's own argument.
        let rc = unsafe { real(list) };
        let ips = &config().ips;
        if rc == 0 && ips.active() && !list.is_null() {
            // SAFETY: on success `*list` is a fresh list owned by the caller; it is freed
            // with the real freeifaddrs when nothing is left of it.
            unsafe { iflist::retain_own(ips, list, |l| libc::freeifaddrs(l)) };
        }
        rc
    })
}

/// `ioctl`: the interface list (`SIOCGIFCONF`) shows only loopback and the node's own
/// address, and an interface's address (`SIOCGIFADDR`) is the node's; every other request
/// passes through. Defined with a fixed third argument: glibc's is variadic, but every
/// ioctl argument is one integer or pointer, passed in the same register either way on the
/// x86_64 and aarch64 Linux ABIs.
///
/// # Safety
/// As ioctl(2).
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    guard(|| {
        let Some(real) = ffi::IOCTL.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: the caller's own arguments.
        let rc = unsafe { real(fd, request, arg) };
        if rc != 0 || !matches!(request, libc::SIOCGIFCONF | libc::SIOCGIFADDR) {
            return rc;
        }
        // SAFETY: `arg` is the caller's argument for `request`, which succeeded.
        match unsafe { ffi::after_ioctl(request, arg) } {
            Ok(()) => rc,
            Err(e) => fail(e),
        }
    })
}

/// `gethostname`: `P2PLAB_NODE` when set.
///
/// # Safety
/// As gethostname(2).
#[no_mangle]
pub unsafe extern "C" fn gethostname(name: *mut c_char, len: size_t) -> c_int {
    guard(|| match &config().node {
        // SAFETY: per gethostname(2), `name` is writable for `len` bytes.
        Some(node) => unsafe { ffi::copy_node_name(node.as_bytes(), name, len) },
        None => match ffi::GETHOSTNAME.get() {
            // SAFETY: the caller's own arguments.
            Some(real) => unsafe { real(name, len) },
            None => fail(libc::ENOSYS),
        },
    })
}

/// `uname`: `P2PLAB_NODE` as the node name when set.
///
/// # Safety
/// As uname(2).
#[no_mangle]
pub unsafe extern "C" fn uname(buf: *mut utsname) -> c_int {
    guard(|| {
        let Some(real) = ffi::UNAME.get() else {
            return fail(libc::ENOSYS);
        };
        // SAFETY: the caller's own argument.
        let rc = unsafe { real(buf) };
        // SAFETY: on success `buf` is a valid, filled `utsname`.
        if let (0, Some(node), Some(buf)) = (rc, &config().node, unsafe { buf.as_mut() }) {
            ffi::set_nodename(buf, node.as_bytes());
        }
        rc
    })
}

/// `getaddrinfo`: the node's own name (`P2PLAB_NODE`) resolves to its addresses.
///
/// # Safety
/// As getaddrinfo(3).
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    name: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    guard(|| {
        let Some(real) = ffi::GETADDRINFO.get() else {
            return libc::EAI_SYSTEM;
        };
        // SAFETY: the caller's own arguments, valid per getaddrinfo(3).
        unsafe {
            ffi::getaddrinfo_own(real, name, service, hints, res)
                .unwrap_or_else(|| real(name, service, hints, res))
        }
    })
}

/// `gethostbyname`: the node's own name resolves to `BINDIP`.
///
/// # Safety
/// As gethostbyname(3).
#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    guard_or(
        || {
            // SAFETY: the caller's own argument, valid per gethostbyname(3).
            let own = unsafe { ffi::gethostbyname_own(name, libc::AF_INET) };
            own.or_else(|| {
                ffi::GETHOSTBYNAME.get().map(|real| {
                    // SAFETY: the caller's own argument.
                    unsafe { real(name) }
                })
            })
            .unwrap_or(std::ptr::null_mut())
        },
        || {
            ffi::host_not_found();
            std::ptr::null_mut()
        },
    )
}

/// `gethostbyname2`: the node's own name resolves to its address of `family`.
///
/// # Safety
/// As gethostbyname2(3).
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, family: c_int) -> *mut hostent {
    guard_or(
        || {
            // SAFETY: the caller's own arguments, valid per gethostbyname2(3).
            let own = unsafe { ffi::gethostbyname_own(name, family) };
            own.or_else(|| {
                ffi::GETHOSTBYNAME2.get().map(|real| {
                    // SAFETY: the caller's own arguments.
                    unsafe { real(name, family) }
                })
            })
            .unwrap_or(std::ptr::null_mut())
        },
        || {
            ffi::host_not_found();
            std::ptr::null_mut()
        },
    )
}

/// `gethostbyname_r`: as `gethostbyname`, into the caller's buffers.
///
/// # Safety
/// As gethostbyname_r(3).
#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    guard(|| {
        let out = ffi::HostentBufs {
            ret,
            buf,
            len,
            result,
            h_errnop,
        };
        // SAFETY: the caller's own arguments, valid per gethostbyname_r(3).
        let own = unsafe { ffi::gethostbyname_r_own(name, out) };
        own.or_else(|| {
            ffi::GETHOSTBYNAME_R.get().map(|real| {
                // SAFETY: the caller's own arguments.
                unsafe { real(name, ret, buf, len, result, h_errnop) }
            })
        })
        .unwrap_or(libc::ENOSYS)
    })
}
