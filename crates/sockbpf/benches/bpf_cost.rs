//! What cgroup BPF isolation costs (as root), side by side in one run inside a private
//! network namespace: a TCP `connect`+`close` and an unbound UDP `sendto`, from this
//! process outside any node cgroup and inside one with the programs attached, in
//! alternating rounds (medians over rounds); and the time to load and attach a run's
//! program set and to detach it. Without `--bench` (as under `cargo test --benches`) it runs
//! a few iterations only, as a smoke test. The shim's figures for the same loops come from
//! `cargo bench -p preload-shim --bench shim_cost`.

use cgroup::{Hierarchies, RunGroup};
use sockbpf::Isolation;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Instant;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const NODE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nanoseconds per `connect`+`close` to `to` (closed with a reset, as `SO_LINGER` 0 does,
/// so that no port waits in `TIME_WAIT` and the loop never runs out of them).
fn connects(to: SocketAddrV4, n: u32) -> f64 {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let start = Instant::now();
    for _ in 0..n {
        let s = TcpStream::connect(to).expect("connect");
        // SAFETY: `linger` is a valid `struct linger` of the size given; `s` is open.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            )
        };
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Nanoseconds per `sendto` from a socket never bound.
fn sends(to: SocketAddrV4, n: u32) -> f64 {
    // SAFETY: plain socket(2); the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    assert!(fd >= 0, "socket");
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: `addr` is a valid sockaddr_in of the size given; the buffer is 1 byte.
        let r = unsafe {
            libc::sendto(
                fd,
                b"x".as_ptr().cast(),
                1,
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 1, "sendto");
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    ns
}

fn sh(script: &str) {
    let ok = Command::new("sh")
        .args(["-c", script])
        .status()
        .expect("sh");
    assert!(ok.success(), "{script}");
}

/// Moves this whole process into the v2 cgroup directory `dir`.
fn enter(dir: &std::path::Path) {
    std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).expect("move");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, rounds, attaches) = if full { (2_000, 7, 21) } else { (50, 1, 1) };
    // SAFETY: called before any thread starts.
    let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(unshared, 0, "unshare (root?)");
    sh(&format!(
        "ip link set lo up && ip addr add {SERVER}/8 dev lo && ip addr add {NODE}/8 dev lo"
    ));
    let listener = TcpListener::bind((SERVER, 0)).unwrap();
    let tcp = SocketAddrV4::new(SERVER, listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    let sink = UdpSocket::bind((SERVER, 0)).unwrap();
    let udp = SocketAddrV4::new(SERVER, sink.local_addr().unwrap().port());

    /// The bench's cgroups, removed however the bench ends (a failed assertion included),
    /// the bench first back in its own cgroup (`remove` ends what is left in them).
    struct Removed(RunGroup, std::path::PathBuf);
    impl Drop for Removed {
        fn drop(&mut self) {
            enter(&self.1);
            if let Err(e) = self.0.remove() {
                eprintln!("cannot remove the bench's cgroups: {e}");
            }
        }
    }
    impl std::ops::Deref for Removed {
        type Target = RunGroup;
        fn deref(&self) -> &RunGroup {
            &self.0
        }
    }
    let h = Hierarchies::detect().unwrap();
    let group = RunGroup::create(&h, &format!("bench-bpf-{}", std::process::id())).unwrap();
    let run_dir = sockbpf::v2_dir(&group).unwrap().to_path_buf();
    let own = run_dir
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_path_buf();
    let run = Removed(group, own.clone());
    let mut attach_ns = Vec::new();
    let mut detach_ns = Vec::new();
    for _ in 0..attaches {
        let t = Instant::now();
        let isolation = Isolation::attach(&run_dir).unwrap();
        attach_ns.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        isolation.detach().unwrap();
        detach_ns.push(t.elapsed().as_nanos() as f64);
    }
    run.node("node", None, None).unwrap();
    let isolation = Isolation::attach(&run_dir).unwrap();
    isolation.assign(&run_dir.join("node"), NODE).unwrap();
    let (mut plain, mut bpf) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    let node = run_dir.join("node");
    for round in 0..rounds {
        for inside in [round % 2 == 0, round % 2 != 0] {
            enter(if inside { &node } else { &own });
            // the programs are at work inside the node cgroup, and only there
            let local = TcpStream::connect(tcp).unwrap().local_addr().unwrap();
            assert_eq!(local.ip(), if inside { NODE } else { SERVER });
            let (c, s) = (connects(tcp, n), sends(udp, n));
            let into = if inside { &mut bpf } else { &mut plain };
            into.0.push(c);
            into.1.push(s);
        }
    }
    enter(&own);
    isolation.detach().unwrap();
    drop(run);
    let (pc, ps) = (median(plain.0), median(plain.1));
    let (bc, bs) = (median(bpf.0), median(bpf.1));
    println!(
        "{{\"connect_close_ns\": {{\"none\": {pc:.0}, \"bpf\": {bc:.0}, \"added\": {:.0}}}, \
         \"sendto_ns\": {{\"none\": {ps:.0}, \"bpf\": {bs:.0}, \"added\": {:.0}}}, \
         \"attach_us\": {:.0}, \"detach_us\": {:.0}, \"iterations\": {n}, \"rounds\": {rounds}}}",
        bc - pc,
        bs - ps,
        median(attach_ns) / 1e3,
        median(detach_ns) / 1e3
    );
}
