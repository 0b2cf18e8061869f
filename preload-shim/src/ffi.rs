//! Glue between the interposed C surface and the pure logic: the configuration, read once;
//! the real libc symbols, resolved once with `dlsym(RTLD_NEXT)`; errno; logging; the panic
//! guard; and the constructor that refuses a bad `BINDIP` before `main` runs.

use crate::addr::{self, Raw};
use crate::config::{Config, RawEnv};
use crate::decide::{self, Trigger, Verdict};
use crate::diag::{self, Answer, Serving};
use crate::fds::{Fresh, Table};
use crate::iflist;
use crate::log::Line;
use libc::{
    addrinfo, c_char, c_int, c_uint, c_ulong, c_void, hostent, ifaddrs, ifconf, ifreq, mmsghdr,
    msghdr, size_t, sockaddr, socklen_t, ssize_t, utsname,
};
use std::ffi::CStr;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Exit code of a process whose shim settings are unusable (as `env` and `timeout` use 125
/// for their own failures).
const BAD_SETTINGS_EXIT: c_int = 125;

/// A libc function found with `dlsym(RTLD_NEXT)` on first use and cached.
pub struct Real<F> {
    name: &'static CStr,
    addr: AtomicUsize,
    _type: PhantomData<F>,
}

impl<F: Copy> Real<F> {
    /// # Safety
    /// `F` is the `unsafe extern "C" fn` pointer type of the C function `name`.
    pub const unsafe fn new(name: &'static CStr) -> Self {
        Self {
            name,
            addr: AtomicUsize::new(0),
            _type: PhantomData,
        }
    }

    /// The real function, or `None` when libc does not have it.
    pub fn get(&self) -> Option<F> {
        let mut addr = self.addr.load(Ordering::Relaxed);
        if addr == 0 {
            // SAFETY: `name` is NUL-terminated; RTLD_NEXT finds the next definition after ours.
            addr = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) } as usize;
            self.addr.store(addr, Ordering::Relaxed);
        }
        // SAFETY: `new`'s contract makes `F` a function pointer type (pointer-sized) for
        // this very symbol, and `addr` is that symbol's non-null address.
        (addr != 0).then(|| unsafe { std::mem::transmute_copy::<usize, F>(&addr) })
    }
}

type AddrFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type SendtoFn = unsafe extern "C" fn(
    c_int,
    *const c_void,
    size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> ssize_t;

// SAFETY: the type is the C prototype of bind(2).
pub static BIND: Real<AddrFn> = unsafe { Real::new(c"bind") };
// SAFETY: the type is the C prototype of connect(2).
pub static CONNECT: Real<AddrFn> = unsafe { Real::new(c"connect") };
// SAFETY: the type is the C prototype of socket(2).
pub static SOCKET: Real<unsafe extern "C" fn(c_int, c_int, c_int) -> c_int> =
    unsafe { Real::new(c"socket") };
// SAFETY: the type is the C prototype of listen(2).
pub static LISTEN: Real<unsafe extern "C" fn(c_int, c_int) -> c_int> =
    unsafe { Real::new(c"listen") };
// SAFETY: the type is the C prototype of sendto(2).
pub static SENDTO: Real<SendtoFn> = unsafe { Real::new(c"sendto") };
// SAFETY: the type is the C prototype of sendmsg(2).
pub static SENDMSG: Real<unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t> =
    unsafe { Real::new(c"sendmsg") };
// SAFETY: the type is the C prototype of sendmmsg(2).
pub static SENDMMSG: Real<unsafe extern "C" fn(c_int, *mut mmsghdr, c_uint, c_int) -> c_int> =
    unsafe { Real::new(c"sendmmsg") };
// SAFETY: the type is the C prototype of getifaddrs(3).
pub static GETIFADDRS: Real<unsafe extern "C" fn(*mut *mut ifaddrs) -> c_int> =
    unsafe { Real::new(c"getifaddrs") };
// SAFETY: the type is the C prototype of gethostname(2).
pub static GETHOSTNAME: Real<unsafe extern "C" fn(*mut c_char, size_t) -> c_int> =
    unsafe { Real::new(c"gethostname") };
// SAFETY: the type is the C prototype of uname(2).
pub static UNAME: Real<unsafe extern "C" fn(*mut utsname) -> c_int> =
    unsafe { Real::new(c"uname") };

/// getaddrinfo(3).
pub type GetaddrinfoFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;
type GethostbynameRFn = unsafe extern "C" fn(
    *const c_char,
    *mut hostent,
    *mut c_char,
    size_t,
    *mut *mut hostent,
    *mut c_int,
) -> c_int;

// SAFETY: the type is the C prototype of getaddrinfo(3).
pub static GETADDRINFO: Real<GetaddrinfoFn> = unsafe { Real::new(c"getaddrinfo") };
// SAFETY: the type is the C prototype of gethostbyname(3).
pub static GETHOSTBYNAME: Real<unsafe extern "C" fn(*const c_char) -> *mut hostent> =
    unsafe { Real::new(c"gethostbyname") };
// SAFETY: the type is the C prototype of gethostbyname2(3).
pub static GETHOSTBYNAME2: Real<unsafe extern "C" fn(*const c_char, c_int) -> *mut hostent> =
    unsafe { Real::new(c"gethostbyname2") };
// SAFETY: the type is the C prototype of gethostbyname_r(3).
pub static GETHOSTBYNAME_R: Real<GethostbynameRFn> = unsafe { Real::new(c"gethostbyname_r") };

// SAFETY: the type is the C prototype of ioctl(2), as glibc declares it.
pub static IOCTL: Real<unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int> =
    unsafe { Real::new(c"ioctl") };

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = init;

/// Runs when the shim is loaded: checks the settings (exiting on a bad one) and resolves
/// every real symbol, so that no socket call pays for it later.
extern "C" fn init() {
    let _ = panic::catch_unwind(|| {
        config();
        let _ = (
            SOCKET.get(),
            BIND.get(),
            CONNECT.get(),
            LISTEN.get(),
            SENDTO.get(),
            SENDMSG.get(),
        );
        let _ = (
            SENDMMSG.get(),
            GETIFADDRS.get(),
            GETHOSTNAME.get(),
            UNAME.get(),
        );
        let _ = (
            GETADDRINFO.get(),
            GETHOSTBYNAME.get(),
            GETHOSTBYNAME2.get(),
            GETHOSTBYNAME_R.get(),
        );
        let _ = IOCTL.get();
    });
}

/// The settings, read from the environment on first use.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        // SAFETY: read before any thread of ours changes the environment; `parse` copies
        // what it keeps.
        let env = unsafe {
            RawEnv {
                bindip: getenv(c"BINDIP"),
                bindip6: getenv(c"BINDIP6"),
                node: getenv(c"P2PLAB_NODE"),
                log: getenv(c"P2PLAB_SHIM_LOG"),
            }
        };
        Config::parse(env).unwrap_or_else(|err| {
            let value = std::str::from_utf8(err.value).unwrap_or("<not UTF-8>");
            emit(format_args!(
                "{}={value:?} is not {}; refusing to run with the host's address",
                err.var, err.expected
            ));
            // SAFETY: ends the process at once, as intended: it must not run unshimmed.
            unsafe { libc::_exit(BAD_SETTINGS_EXIT) }
        })
    })
}

/// # Safety
/// The environment is not modified while the returned slice is in use.
unsafe fn getenv<'a>(name: &CStr) -> Option<&'a [u8]> {
    // SAFETY: `name` is NUL-terminated.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: a non-null getenv result is a NUL-terminated string, alive per the contract.
    (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_bytes())
}

/// Logs one rewrite when `P2PLAB_SHIM_LOG=1`.
pub fn log(args: fmt::Arguments<'_>) {
    if config().log {
        emit(args);
    }
}

/// Writes one line to stderr, without allocating.
fn emit(args: fmt::Arguments<'_>) {
    // SAFETY: getpid has no preconditions.
    let line = Line::format(unsafe { libc::getpid() }, args);
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        // SAFETY: `rest` is a live byte slice.
        let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => rest = rest.get(n..).unwrap_or_default(),
            _ => break,
        }
    }
}

/// Runs an interposed function's body; a panic becomes a failed call (errno `EIO`) instead
/// of unwinding into C.
pub fn guard<R: From<i8>>(body: impl FnOnce() -> R) -> R {
    guard_or(body, || fail(libc::EIO))
}

/// Runs an interposed function's body; a panic returns `failed()` instead of unwinding
/// into C.
pub fn guard_or<R>(body: impl FnOnce() -> R, failed: impl FnOnce() -> R) -> R {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| failed())
}

/// Sets errno and returns the C failure value.
pub fn fail<R: From<i8>>(errno: c_int) -> R {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
    R::from(-1)
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// The address `bind(fd, asked)` should use instead of `asked`, if any.
pub fn bind_to(fd: c_int, asked: SocketAddr) -> Option<SocketAddr> {
    let ips = &config().ips;
    if !ips.active() {
        return None;
    }
    // The program gives the socket its address itself.
    FRESH.take(fd);
    let to = decide::bind(ips, asked, || v6only(fd))?;
    log(format_args!("bind fd {fd}: {asked} -> {to}"));
    Some(to)
}

/// The fresh sockets of this process, by descriptor number (below 65536; higher ones are
/// always asked about).
static FRESH: Table<{ 1 << 16 }> = Table::new();

/// Records what `socket(domain, ty, protocol)` returned.
pub fn created(fd: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    if fd >= 0 && config().ips.active() {
        FRESH.set(fd, Fresh::of(domain, ty, protocol));
    }
}

/// Before `trigger` gives socket `fd` a local address, binds it to the node's own address
/// if it is still unbound; `Err(errno)` when that is impossible. A socket fresh from
/// `socket()` is bound at once (one system call); any other, or one whose bind fails, is
/// asked for its address first.
pub fn auto_bind(fd: c_int, trigger: Trigger) -> Result<(), c_int> {
    let ips = &config().ips;
    if !ips.active() {
        return Ok(());
    }
    if let Some(fresh) = FRESH.take(fd) {
        let portless = || fresh.portless();
        match decide::auto_bind(ips, fresh.local(), trigger, || v6only(fd), portless) {
            Verdict::Keep => return Ok(()),
            Verdict::Use(to) if bind_own(fd, trigger, to).is_ok() => return Ok(()),
            // Not as fresh as remembered, or refused: the kernel's view decides.
            Verdict::Use(_) | Verdict::Fail(_) => {}
        }
    }
    let Some(local) = local_addr(fd) else {
        return Ok(()); // not an IP socket: the real call reports it, or needs nothing
    };
    match decide::auto_bind(ips, local, trigger, || v6only(fd), || portless(fd)) {
        Verdict::Keep => Ok(()),
        Verdict::Fail(e) => {
            log(format_args!(
                "{trigger} on fd {fd} refused (errno {e}): no address of this node for it"
            ));
            Err(e)
        }
        Verdict::Use(to) => bind_own(fd, trigger, to).inspect_err(|e| {
            log(format_args!(
                "{trigger} on fd {fd}: binding {to} failed (errno {e})"
            ))
        }),
    }
}

/// The local address of IP socket `fd` (`None` for anything else).
fn local_addr(fd: c_int) -> Option<SocketAddr> {
    let mut local = Raw::empty();
    let (ptr, len) = local.as_mut_parts();
    // SAFETY: `ptr` and `len` describe a writable `sockaddr_storage`.
    if unsafe { libc::getsockname(fd, ptr, len) } != 0 {
        return None;
    }
    local.to_socket_addr()
}

/// Where a connect or send on `fd` to `peer` goes instead: for a loopback `peer`, the
/// node's own address when a socket of this node serves that port there (see
/// [`decide::loopback_redirect`]). A TCP socket not bound yet is bound to loopback first,
/// so that the server sees a loopback client; a UDP one is bound as for any peer, to the
/// node's address, so that it can still reach other nodes afterwards. `None`: `peer` as
/// asked, the only answer for a peer that is not loopback, found without a system call.
pub fn loopback_redirect(fd: c_int, peer: SocketAddr) -> Option<SocketAddr> {
    if !decide::is_loopback(peer.ip()) {
        return None;
    }
    let ips = &config().ips;
    if !ips.active() {
        return None;
    }
    let kind = match int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE)? {
        libc::SOCK_STREAM => Serving::Tcp,
        libc::SOCK_DGRAM
            if int_option(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL)? == libc::IPPROTO_UDP =>
        {
            Serving::Udp
        }
        _ => return None,
    };
    let redirect = decide::loopback_redirect(ips, peer, || v6only(fd), |to| node_serves(kind, to))?;
    log(format_args!(
        "fd {fd}: {peer} -> {} (this node serves it)",
        redirect.to
    ));
    let unbound = || local_addr(fd).is_some_and(|local| decide::is_unbound(local, || false));
    if kind == Serving::Tcp && unbound() {
        FRESH.take(fd);
        set_bind_address_no_port(fd);
        if let Some(bind) = BIND.get() {
            let raw = Raw::from(redirect.from);
            // SAFETY: `raw` holds a valid socket address of `raw.len()` bytes. A failure
            // leaves the source to the kernel: the node's own address.
            unsafe { bind(fd, raw.as_ptr(), raw.len()) };
        }
    }
    Some(redirect.to)
}

/// Whether a socket of this namespace serves `to` as `kind` (TCP: listens; UDP: is bound,
/// unconnected). An IPv4 address is served by IPv4 sockets and by dual-stack IPv6 sockets
/// bound to its v4-mapped form alike.
fn node_serves(kind: Serving, to: SocketAddr) -> bool {
    let v4 = match to.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match v4 {
        Some(v4) => {
            socket_at(kind, libc::AF_INET, v4.into(), to.port())
                || socket_at(kind, libc::AF_INET6, v4.to_ipv6_mapped().into(), to.port())
        }
        None => socket_at(kind, libc::AF_INET6, to.ip(), to.port()),
    }
}

/// `NETLINK_SOCK_DIAG`, the netlink family of socket diagnostics (what `ss` reads).
const NETLINK_SOCK_DIAG: c_int = 4;

/// Whether the kernel's table of `family` sockets has one serving `ip`:`port` as `kind`.
fn socket_at(kind: Serving, family: c_int, ip: IpAddr, port: u16) -> bool {
    let Some(socket) = SOCKET.get() else {
        return false;
    };
    let flags = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) has no memory preconditions.
    let fd = unsafe { socket(libc::AF_NETLINK, flags, NETLINK_SOCK_DIAG) };
    if fd < 0 {
        return false;
    }
    let request = diag::request(kind, family, port);
    // SAFETY: `request` is a live buffer of its length.
    let sent = unsafe { libc::send(fd, request.as_ptr().cast(), request.len(), 0) };
    let found = usize::try_from(sent) == Ok(request.len()) && read_answer(fd, ip, port);
    // SAFETY: `fd` is the socket opened above, closed once.
    unsafe { libc::close(fd) };
    found
}

/// Reads a socket-diagnostics answer from `fd` until it names `ip`:`port` or ends. The
/// kernel queues each part of the answer before the call that asks for it returns, so
/// reads never wait.
fn read_answer(fd: c_int, ip: IpAddr, port: u16) -> bool {
    let mut buf = [0u8; 8192];
    // Bounded: a dump of a million sockets takes about 10,000 reads of this size.
    for _ in 0..100_000 {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        let Some(read) = usize::try_from(n).ok().and_then(|n| buf.get(..n)) else {
            return false;
        };
        match Answer::scan(read, ip, port) {
            Answer { found: true, .. } => return true,
            Answer { done: true, .. } => return false,
            _ if read.is_empty() => return false,
            _ => {}
        }
    }
    false
}

/// After `request` succeeded on `arg`: an interface list (`SIOCGIFCONF`) keeps only what
/// the node may see, and an interface's address (`SIOCGIFADDR`) is one the node may see;
/// `Err(errno)` when there is none to show.
///
/// # Safety
/// `arg` is what `ioctl(2)` was given for `request`, and the call succeeded.
pub unsafe fn after_ioctl(request: c_ulong, arg: *mut c_void) -> Result<(), c_int> {
    let ips = &config().ips;
    if !ips.active() || arg.is_null() {
        return Ok(());
    }
    match request {
        libc::SIOCGIFCONF => {
            // SAFETY: for SIOCGIFCONF, `arg` is the caller's `ifconf`.
            let conf = unsafe { &mut *arg.cast::<ifconf>() };
            // SAFETY: both union fields are the same pointer.
            let entries = unsafe { conf.ifc_ifcu.ifcu_req };
            let count = usize::try_from(conf.ifc_len).unwrap_or(0) / size_of::<ifreq>();
            if !entries.is_null() {
                // SAFETY: on success the kernel filled `ifc_len` bytes of whole entries at
                // `entries`, the caller's buffer.
                let entries = unsafe { std::slice::from_raw_parts_mut(entries, count) };
                let kept = iflist::retain_ifreqs(ips, entries);
                conf.ifc_len = (kept * size_of::<ifreq>()) as c_int;
            }
            Ok(())
        }
        libc::SIOCGIFADDR => {
            // SAFETY: for SIOCGIFADDR, `arg` is the caller's `ifreq`, filled by the kernel.
            let entry = unsafe { &mut *arg.cast::<ifreq>() };
            match iflist::own_ifreq_address(ips, entry) {
                true => Ok(()),
                false => Err(libc::EADDRNOTAVAIL),
            }
        }
        _ => Ok(()),
    }
}

/// Binds `fd` to `to` for `trigger`; `Err(errno)` when the kernel refuses.
fn bind_own(fd: c_int, trigger: Trigger, to: SocketAddr) -> Result<(), c_int> {
    if matches!(trigger, Trigger::Connect(_)) {
        set_bind_address_no_port(fd);
    }
    let bind = BIND.get().ok_or(libc::ENOSYS)?;
    let raw = Raw::from(to);
    // SAFETY: `raw` holds a valid socket address of `raw.len()` bytes.
    if unsafe { bind(fd, raw.as_ptr(), raw.len()) } != 0 {
        return Err(errno());
    }
    log(format_args!("{trigger} on fd {fd}: bound to {to} first"));
    Ok(())
}

/// Runs `call` once socket `fd` is bound for `trigger` (if any), or fails instead when it
/// cannot be bound to an address of this node.
pub fn after_auto_bind<R: From<i8>>(
    fd: c_int,
    trigger: Option<Trigger>,
    call: impl FnOnce() -> R,
) -> R {
    match trigger.map_or(Ok(()), |trigger| auto_bind(fd, trigger)) {
        Ok(()) => call(),
        Err(e) => fail(e),
    }
}

/// The first IP peer named in a `sendmmsg` vector.
///
/// # Safety
/// `msgs` points to `count` valid `mmsghdr` (or is null).
pub unsafe fn first_peer(msgs: *const mmsghdr, count: c_uint) -> Option<SocketAddr> {
    if msgs.is_null() {
        return None;
    }
    // The kernel never sends more than UIO_MAXIOV messages per call.
    (0..count.min(1024) as usize).find_map(|i| {
        // SAFETY: `i < count`, so the element is valid per the contract.
        let hdr = unsafe { &(*msgs.add(i)).msg_hdr };
        // SAFETY: a message's name buffer holds `msg_namelen` bytes.
        unsafe { addr::read(hdr.msg_name.cast(), hdr.msg_namelen) }
    })
}

/// The peer named by a `sendmsg` header, if any.
///
/// # Safety
/// `msg` is null or a valid `msghdr`.
pub unsafe fn msg_peer(msg: *const msghdr) -> Option<SocketAddr> {
    // SAFETY: `msg` is null or valid, and its name buffer holds `msg_namelen` bytes.
    unsafe {
        msg.as_ref()
            .and_then(|m| addr::read(m.msg_name.cast(), m.msg_namelen))
    }
}

/// Fills `name` with the node name for `gethostname`.
///
/// # Safety
/// `name` is writable for `len` bytes.
pub unsafe fn copy_node_name(node: &[u8], name: *mut c_char, len: size_t) -> c_int {
    if name.is_null() || len <= node.len() {
        return fail(libc::ENAMETOOLONG);
    }
    // SAFETY: `len > node.len()`, so the name and its NUL fit in the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(node.as_ptr(), name.cast::<u8>(), node.len());
        *name.add(node.len()) = 0;
    }
    0
}

/// When `name` is the node's own name (see [`decide::is_own_name`]), what a lookup of
/// `family` resolves instead: the node's addresses as numeric strings (`None` when the
/// lookup is left to libc; no address when the node has none of that family).
///
/// # Safety
/// `name` is null or a NUL-terminated string.
pub unsafe fn own_name(name: *const c_char, family: c_int) -> Option<[Option<addr::Numeric>; 2]> {
    let cfg = config();
    let node = cfg.node.as_ref()?;
    // SAFETY: `name` is null or NUL-terminated, per the contract.
    let name = unsafe { name.as_ref().map(|n| CStr::from_ptr(n)) }?;
    if !decide::is_own_name(node.as_bytes(), name.to_bytes()) {
        return None;
    }
    let ips = decide::own_name_addresses(&cfg.ips, family)?;
    log(format_args!(
        "lookup of the node's own name {name:?}: {ips:?}"
    ));
    Some(ips.map(|ip| ip.map(addr::Numeric::new)))
}

/// `getaddrinfo` of the node's own name: each of its addresses resolved by the real
/// `getaddrinfo` as a numeric host, with the caller's service and hints, the lists chained
/// (glibc's `freeaddrinfo` frees entry by entry, so the caller frees the chain as one list);
/// a canonical name asked for is the node's. `None` when the name is not the node's own, or
/// the caller asked for numeric hosts only.
///
/// # Safety
/// As getaddrinfo(3).
pub unsafe fn getaddrinfo_own(
    real: GetaddrinfoFn,
    name: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> Option<c_int> {
    // SAFETY: per getaddrinfo(3), `hints` is null or a valid `addrinfo`; null means
    // AF_UNSPEC and no flags, which zeroes say.
    let mut numeric: addrinfo = unsafe { hints.as_ref().copied().unwrap_or(std::mem::zeroed()) };
    if numeric.ai_flags & libc::AI_NUMERICHOST != 0 || res.is_null() {
        return None; // the caller refuses names: libc says so
    }
    // SAFETY: `name` is null or NUL-terminated, per getaddrinfo(3).
    let ips = unsafe { own_name(name, numeric.ai_family) }?;
    numeric.ai_flags |= libc::AI_NUMERICHOST;
    numeric.ai_canonname = std::ptr::null_mut();
    numeric.ai_addr = std::ptr::null_mut();
    numeric.ai_next = std::ptr::null_mut();
    let mut head: *mut addrinfo = std::ptr::null_mut();
    let mut tail: *mut *mut addrinfo = &mut head;
    let mut error = libc::EAI_NONAME;
    for ip in ips.iter().flatten() {
        let mut list = std::ptr::null_mut();
        // SAFETY: a NUL-terminated numeric host, the caller's service, valid hints.
        match unsafe { real(ip.as_ptr(), service, &numeric, &mut list) } {
            // SAFETY: `list` is libc's fresh list, its canonical name libc's allocation;
            // `tail` points to the last link of the list built so far (or to `head`), and
            // walking its `ai_next` links reaches the end of the list just returned.
            0 => unsafe {
                // Only the first entry of the whole list carries the canonical name.
                if !head.is_null() {
                    if let Some(entry) = list.as_mut() {
                        libc::free(entry.ai_canonname.cast());
                        entry.ai_canonname = std::ptr::null_mut();
                    }
                }
                *tail = list;
                while let Some(entry) = (*tail).as_mut() {
                    tail = &mut entry.ai_next;
                }
            },
            rc if error == libc::EAI_NONAME => error = rc,
            _ => {}
        }
    }
    if head.is_null() {
        return Some(error);
    }
    // SAFETY: `head` is the first entry of the list just built.
    let first = unsafe { &mut *head };
    if numeric.ai_flags & libc::AI_CANONNAME != 0 {
        if let Some(node) = config().node.as_ref() {
            // SAFETY: the old name is libc's own allocation (or null); the new one is made
            // with libc's allocator, so that freeaddrinfo frees it.
            unsafe { first.ai_canonname = replace_with_copy(first.ai_canonname, node.as_bytes()) };
        }
    }
    // SAFETY: `res` is non-null and writable per getaddrinfo(3).
    unsafe { *res = head };
    Some(0)
}

/// Frees `old` with libc's `free` and returns a `malloc`ed, NUL-terminated copy of `text`
/// (`old` itself when out of memory).
///
/// # Safety
/// `old` is null or allocated by libc's `malloc`.
unsafe fn replace_with_copy(old: *mut c_char, text: &[u8]) -> *mut c_char {
    // SAFETY: malloc has no preconditions.
    let new = unsafe { libc::malloc(text.len() + 1) }.cast::<c_char>();
    if new.is_null() {
        return old;
    }
    // SAFETY: `new` holds `text.len() + 1` bytes; `old` is libc's, per the contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), new.cast::<u8>(), text.len());
        *new.add(text.len()) = 0;
        libc::free(old.cast());
    }
    new
}

/// The numeric host a `gethostbyname` family lookup of `family` resolves instead of `name`:
/// `Some(None)` when the node has no address of that family (the lookup fails with
/// `HOST_NOT_FOUND`), `None` when libc resolves `name` itself.
///
/// # Safety
/// `name` is null or a NUL-terminated string.
pub unsafe fn hostent_own(name: *const c_char, family: c_int) -> Option<Option<addr::Numeric>> {
    // SAFETY: per the contract.
    let [first, _] = unsafe { own_name(name, family) }?;
    Some(first)
}

/// `h_errno` of a name without an address (netdb.h).
pub const HOST_NOT_FOUND: c_int = 1;

/// `gethostbyname2(name, family)` for the node's own name; `None` for another name.
///
/// # Safety
/// As gethostbyname2(3).
pub unsafe fn gethostbyname_own(name: *const c_char, family: c_int) -> Option<*mut hostent> {
    // SAFETY: per the contract.
    let numeric = unsafe { hostent_own(name, family) }?;
    Some(match (numeric, GETHOSTBYNAME2.get()) {
        // SAFETY: a NUL-terminated numeric host.
        (Some(ip), Some(real)) => named(unsafe { real(ip.as_ptr(), family) }),
        _ => {
            host_not_found();
            std::ptr::null_mut()
        }
    })
}

/// The caller's buffers of a `gethostbyname_r` call.
#[derive(Clone, Copy)]
pub struct HostentBufs {
    pub ret: *mut hostent,
    pub buf: *mut c_char,
    pub len: size_t,
    pub result: *mut *mut hostent,
    pub h_errnop: *mut c_int,
}

/// `gethostbyname_r(name, ...)` for the node's own name; `None` for another name.
///
/// # Safety
/// As gethostbyname_r(3).
pub unsafe fn gethostbyname_r_own(name: *const c_char, out: HostentBufs) -> Option<c_int> {
    // SAFETY: per the contract.
    let numeric = unsafe { hostent_own(name, libc::AF_INET) }?;
    let HostentBufs {
        ret,
        buf,
        len,
        result,
        h_errnop,
    } = out;
    Some(match (numeric, GETHOSTBYNAME_R.get()) {
        (Some(ip), Some(real)) => {
            // SAFETY: a NUL-terminated numeric host, the caller's buffers.
            let rc = unsafe { real(ip.as_ptr(), ret, buf, len, result, h_errnop) };
            // SAFETY: per gethostbyname_r(3), `result` is writable and readable.
            if let Some(result) = unsafe { result.as_mut() } {
                *result = named(*result);
            }
            rc
        }
        _ => {
            // SAFETY: per gethostbyname_r(3), both are writable (or null).
            unsafe {
                if let Some(result) = result.as_mut() {
                    *result = std::ptr::null_mut();
                }
                if let Some(h_errnop) = h_errnop.as_mut() {
                    *h_errnop = HOST_NOT_FOUND;
                }
            }
            libc::ENOENT
        }
    })
}

/// A host entry of the node's own name, found by its numeric address: its official name is
/// the node's (a string of the shim's own, alive for the whole process).
fn named(entry: *mut hostent) -> *mut hostent {
    // SAFETY: `entry` is null or a host entry libc just filled, ours to write.
    if let (Some(entry), Some(node)) = (unsafe { entry.as_mut() }, config().node.as_ref()) {
        entry.h_name = node.as_c_str().as_ptr().cast_mut();
    }
    entry
}

/// Sets `h_errno` for a failed `gethostbyname`.
pub fn host_not_found() {
    extern "C" {
        fn __h_errno_location() -> *mut c_int;
    }
    // SAFETY: glibc's __h_errno_location returns this thread's h_errno slot.
    unsafe { *__h_errno_location() = HOST_NOT_FOUND };
}

/// Replaces `uname`'s node name.
pub fn set_nodename(buf: &mut utsname, node: &[u8]) {
    buf.nodename.fill(0);
    for (dst, src) in buf.nodename.iter_mut().zip(node) {
        *dst = *src as c_char;
    }
}

fn v6only(fd: c_int) -> bool {
    int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).is_some_and(|on| on != 0)
}

/// Whether `fd` is a raw or ICMP socket, whose `getsockname` port is not a port.
fn portless(fd: c_int) -> bool {
    let ty = int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE);
    let protocol = int_option(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL);
    ty.zip(protocol)
        .is_some_and(|(ty, protocol)| decide::is_portless(ty, protocol))
}

/// An int socket option of `fd`, `None` when it cannot be read.
fn int_option(fd: c_int, level: c_int, name: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = addr::socklen_of::<c_int>();
    // SAFETY: `value` and `len` are writable and sized for an int option.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            std::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

fn set_bind_address_no_port(fd: c_int) {
    let on: c_int = 1;
    // SAFETY: `on` is a readable int, as the option expects. A failure only costs a port.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(on).cast(),
            addr::socklen_of::<c_int>(),
        )
    };
}
