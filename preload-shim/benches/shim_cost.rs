//! What the shim costs, side by side in one run inside a private network namespace:
//! `connect`+`close` and `bind`+`close` loops, and bulk TCP throughput over loopback, each
//! measured in a child process started with and without the shim, back to back (in
//! alternating order) in each round; figures are medians over rounds (per-op medians inside a round for the loops).
//! Prints JSON (also written to `target/shim_cost.json`). Without `--bench` (as under
//! `cargo test --benches`) it runs a few iterations only, as a smoke test.

#[path = "../tests/shim/netns.rs"]
mod netns;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Instant;

const WORKER_ENV: &str = "P2PLAB_BENCH_WORKER";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const NODE: &str = "10.0.0.2";
const CONNECT_PORT: u16 = 7001;
const BULK_PORT: u16 = 7002;
const CHUNK: usize = 256 * 1024;

/// Iteration counts: (connects, binds, bulk bytes, rounds).
fn sizes(full: bool) -> (u64, u64, u64, usize) {
    if full {
        (5_000, 5_000, 128 << 20, 21)
    } else {
        (200, 200, 8 << 20, 1)
    }
}

fn main() {
    if let Ok(job) = std::env::var(WORKER_ENV) {
        let n: u64 = std::env::var("P2PLAB_BENCH_N")
            .ok()
            .and_then(|n| n.parse().ok())
            .expect("count");
        let value = match job.as_str() {
            "connect" => connect_loop(n),
            "bind" => bind_loop(n),
            _ => bulk(n),
        };
        println!("{value}");
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (connects, binds, bytes, rounds) = sizes(full);
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let shim = netns::shim();
    serve_connects();
    serve_bulk();

    // Each round runs every job without and then with the shim, back to back, so that the
    // per-round differences and ratios cancel the load drift of a shared machine.
    let jobs = [("connect", connects), ("bind", binds), ("bulk", bytes)];
    let mut pairs: [Vec<(f64, f64)>; 3] = Default::default();
    for round in 0..rounds {
        for ((job, n), store) in jobs.iter().zip(pairs.iter_mut()) {
            // Alternate which goes first, so that neither gains from running second.
            let (with, without) = if round % 2 == 0 {
                let without = run_worker(job, *n, None);
                (run_worker(job, *n, Some(&shim)), without)
            } else {
                let with = run_worker(job, *n, Some(&shim));
                (with, run_worker(job, *n, None))
            };
            store.push((without, with));
        }
    }
    let [connect, bind, bulk] = pairs.map(|runs| Stats::of(&runs));
    let report = serde_json::json!({
        "rounds": rounds,
        "connect_close_ns": connect.json("added", connects),
        "bind_close_ns": bind.json("added", binds),
        "bulk_tcp_mbit_s": bulk.json("ratio", bytes),
    });
    let text = serde_json::to_string_pretty(&report).expect("json");
    println!("{text}");
    if let Some(target) = shim.ancestors().nth(3) {
        let _ = std::fs::write(target.join("shim_cost.json"), format!("{text}\n"));
    }
}

/// Runs one measurement in a fresh child process, with the shim preloaded or not.
fn run_worker(job: &str, n: u64, shim: Option<&std::path::Path>) -> f64 {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.env(WORKER_ENV, job)
        .env("P2PLAB_BENCH_N", n.to_string());
    if let Some(shim) = shim {
        cmd.env("LD_PRELOAD", shim).env("BINDIP", NODE);
    }
    let out = cmd.output().expect("run worker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{job} worker: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("worker result")
}

/// Medians over rounds of (without, with) pairs.
struct Stats {
    without: f64,
    with: f64,
    paired_difference: f64,
    paired_ratio: f64,
}

impl Stats {
    fn of(pairs: &[(f64, f64)]) -> Self {
        let column = |f: fn(&(f64, f64)) -> f64| median(pairs.iter().map(f).collect());
        Self {
            without: column(|p| p.0),
            with: column(|p| p.1),
            paired_difference: column(|p| p.1 - p.0),
            paired_ratio: column(|p| p.1 / p.0),
        }
    }

    /// JSON with the per-round figure named `figure` ("added": difference, "ratio": ratio).
    fn json(&self, figure: &str, size: u64) -> serde_json::Value {
        let paired = if figure == "ratio" {
            self.paired_ratio
        } else {
            self.paired_difference
        };
        serde_json::json!({
            "without_shim": self.without,
            "with_shim": self.with,
            figure: paired,
            "size": size,
        })
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Accepts and drops connections forever (the process ends with the benchmark).
fn serve_connects() {
    let listener = TcpListener::bind(SocketAddrV4::new(SERVER, CONNECT_PORT)).expect("listen");
    // A deep accept queue, so that a briefly descheduled acceptor drops no SYN.
    // SAFETY: listen(2) again on our own listening socket only resizes its queue.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    std::thread::spawn(move || loop {
        let _ = listener.accept();
    });
}

/// Reads each connection to its end, then answers one byte.
fn serve_bulk() {
    let listener = TcpListener::bind(SocketAddrV4::new(SERVER, BULK_PORT)).expect("listen");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        for mut conn in listener.incoming().flatten() {
            while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            let _ = conn.write_all(b"k");
        }
    });
}

/// Median nanoseconds of `socket`+`op`+`close` over `n` runs; `op` must return 0.
fn socket_loop(n: u64, what: &str, op: impl Fn(libc::c_int) -> libc::c_int) -> f64 {
    let times = (0..n)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: socket(2) has no memory preconditions.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
            assert!(fd >= 0, "socket");
            assert_eq!(op(fd), 0, "{what}: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` is ours and closed once.
            unsafe { libc::close(fd) };
            start.elapsed().as_nanos() as f64
        })
        .collect();
    median(times)
}

/// Median nanoseconds of `socket`+`connect`+`close` (closed with RST, so no TIME_WAIT
/// piles up).
fn connect_loop(n: u64) -> f64 {
    let addr = raw_addr(SERVER, CONNECT_PORT);
    let len = size_of_val(&addr) as libc::socklen_t;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let linger_len = size_of_val(&linger) as libc::socklen_t;
    socket_loop(n, "connect", |fd| {
        // SAFETY: `addr` and `linger` are live locals of the given sizes.
        unsafe {
            let rc = libc::connect(fd, std::ptr::addr_of!(addr).cast(), len);
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(linger).cast(),
                linger_len,
            );
            rc
        }
    })
}

/// Median nanoseconds of `socket`+`bind(0.0.0.0:0)`+`close`.
fn bind_loop(n: u64) -> f64 {
    let addr = raw_addr(Ipv4Addr::UNSPECIFIED, 0);
    let len = size_of_val(&addr) as libc::socklen_t;
    // SAFETY: `addr` is a live local of `len` bytes.
    socket_loop(n, "bind", |fd| unsafe {
        libc::bind(fd, std::ptr::addr_of!(addr).cast(), len)
    })
}

/// Mbit/s of one TCP stream sending `bytes` to the sink and waiting for its answer.
fn bulk(bytes: u64) -> f64 {
    let chunk = vec![7u8; CHUNK];
    let mut conn = TcpStream::connect(SocketAddrV4::new(SERVER, BULK_PORT)).expect("connect");
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        conn.write_all(&chunk).expect("send");
        sent += CHUNK as u64;
    }
    conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack).expect("answer");
    sent as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e6
}

fn raw_addr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    }
}
