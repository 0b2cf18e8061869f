//! Scaffolding shared by the integration tests and the benchmark: a throwaway network
//! namespace with addresses on `lo`, an engine (and its iptables rule) running inside it,
//! and bounded UDP probes and floods whose packets carry their send time.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::ops::RangeInclusive;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use delayq::{Counters, Engine, EngineConfig, PairParams, QueueRule};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::socket::{setsockopt, sockopt::RcvBufForce};

/// Runs `cmd args`, panicking with its stderr on failure.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread inside a new network namespace with `lo` up and `addrs` (CIDR) on
/// it. The namespace, with its addresses and firewall rules, disappears when the thread
/// and everything it started are gone, also when `f` panics. One namespace at a time, so
/// that timing figures are not disturbed by another test's flood.
pub fn in_netns<T: Send>(addrs: &[&str], f: impl FnOnce() -> T + Send) -> T {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET) failed: run the tests as root");
            run("ip", &["link", "set", "lo", "up"]);
            for a in addrs {
                run("ip", &["addr", "add", a, "dev", "lo"]);
            }
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Engine threads plus the rule feeding them; [`Running::stop`] ends all (dropping it,
/// as a panicking test does, also removes the rule and tells the engines to stop).
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Duration>>,
    counters: Vec<Arc<Counters>>,
    rule: Option<QueueRule>,
}

/// What the engines of a run cost and counted.
pub struct Finished {
    /// User + system CPU time of all engine threads.
    pub cpu: Duration,
    /// Each engine's counters, in queue order.
    pub counters: Vec<Arc<Counters>>,
}

impl Finished {
    /// One counter summed over the engines.
    pub fn sum(&self, counter: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.counters.iter().map(|c| counter(c).load(Relaxed)).sum()
    }
}

fn thread_cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// Starts one engine per queue of `queues` (configured as `cfg` otherwise, in the calling
/// thread's namespace) and a rule queueing `prefix` -> `prefix` traffic to them.
pub fn start_engines(
    cfg: EngineConfig,
    queues: RangeInclusive<u16>,
    prefix: &str,
    lookup: impl Fn(Ipv4Addr, Ipv4Addr) -> PairParams + Clone + Send + 'static,
) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let (mut threads, mut counters) = (Vec::new(), Vec::new());
    for queue_num in queues.clone() {
        let (tx, rx) = mpsc::channel();
        let (flag, lookup) = (Arc::clone(&stop), lookup.clone());
        let cfg = EngineConfig { queue_num, ..cfg };
        threads.push(std::thread::spawn(move || {
            let mut engine = Engine::new(cfg, lookup).unwrap_or_else(|e| panic!("{e}"));
            tx.send(engine.counters()).unwrap();
            let before = thread_cpu();
            engine.run(&flag).unwrap_or_else(|e| panic!("{e}"));
            thread_cpu() - before
        }));
        counters.push(rx.recv().expect("engine failed to start"));
    }
    let rule = QueueRule::prerouting(queues, prefix, prefix).unwrap_or_else(|e| panic!("{e}"));
    Running {
        stop,
        threads,
        counters,
        rule: Some(rule),
    }
}

/// One engine on `cfg.queue_num`, see [`start_engines`].
pub fn start_engine(
    cfg: EngineConfig,
    prefix: &str,
    lookup: impl Fn(Ipv4Addr, Ipv4Addr) -> PairParams + Clone + Send + 'static,
) -> Running {
    start_engines(cfg, cfg.queue_num..=cfg.queue_num, prefix, lookup)
}

impl Running {
    /// Removes the rule, stops the engines and returns their cost.
    pub fn stop(mut self) -> Finished {
        let rule = self.rule.take().expect("rule present until stop");
        rule.remove().unwrap_or_else(|e| panic!("{e}"));
        self.stop.store(true, Relaxed);
        let cpu = self
            .threads
            .drain(..)
            .map(|t| t.join().expect("engine thread panicked"))
            .sum();
        Finished {
            cpu,
            counters: self.counters.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.rule.take();
        self.stop.store(true, Relaxed);
    }
}

/// `SCHED_FIFO` priority of threads that measure (below the engine's 10).
pub const MEASURE: i32 = 5;
/// `SCHED_FIFO` priority of flood senders: below the measuring threads, so that a sender
/// running flat out delays the engine and the receivers no more than the scheduler must.
pub const SEND: i32 = 1;

/// Puts the calling thread under `SCHED_FIFO` at `priority`, so that test threads wake on
/// time on a busy machine and the figures show the engine, not the scheduler.
pub fn realtime(priority: i32) {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    assert_eq!(rc, 0, "SCHED_FIFO: {}", std::io::Error::last_os_error());
}

/// A UDP socket bound to `ip:port` with a large receive buffer and a short read timeout.
pub fn udp(ip: Ipv4Addr, port: u16) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddrV4::new(ip, port)).expect("bind UDP socket");
    setsockopt(&s, RcvBufForce, &(32 << 20)).expect("SO_RCVBUFFORCE");
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s
}

/// Sends `count` datagrams (sequence number, send time in ns since `epoch`) from `from`
/// to `to` at `pps` packets/s, giving up after `max_time`; returns how many were sent.
pub fn flood(
    from: Ipv4Addr,
    to: SocketAddrV4,
    count: u64,
    pps: u64,
    epoch: Instant,
    max_time: Duration,
) -> u64 {
    realtime(SEND);
    let s = udp(from, 0);
    let start = Instant::now();
    let mut seq = 0;
    while seq < count && start.elapsed() < max_time {
        // Send what is due by now (timestamp taken just before each send), then sleep.
        let due = (start.elapsed().as_nanos() as u64 * pps / 1_000_000_000 + 1).min(count);
        while seq < due {
            let mut msg = [0u8; 16];
            msg[..8].copy_from_slice(&seq.to_be_bytes());
            msg[8..].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
            if s.send_to(&msg, to).is_err() {
                break;
            }
            seq += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    seq
}

/// One datagram of a flood as seen by the receiver.
pub struct Arrival {
    pub seq: u64,
    /// Receive time minus send time.
    pub one_way: Duration,
}

/// Receives flood datagrams on `sock` until `count` arrived, nothing came for `idle`, or
/// `max_time` passed.
pub fn receive(
    sock: &UdpSocket,
    count: u64,
    epoch: Instant,
    idle: Duration,
    max_time: Duration,
) -> Vec<Arrival> {
    let start = Instant::now();
    let mut last = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while (out.len() as u64) < count && last.elapsed() < idle && start.elapsed() < max_time {
        if let Ok(16) = sock.recv(&mut buf) {
            let now = epoch.elapsed().as_nanos() as u64;
            let sent = u64::from_be_bytes(buf[8..16].try_into().unwrap());
            out.push(Arrival {
                seq: u64::from_be_bytes(buf[..8].try_into().unwrap()),
                one_way: Duration::from_nanos(now.saturating_sub(sent)),
            });
            last = Instant::now();
        }
    }
    out
}

/// The `q`-quantile (0..=1) of `v` (sorted in place).
pub fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}
