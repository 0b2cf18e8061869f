//! `p2plab probe`: measures the round-trip time and the goodput between two nodes of a
//! network that is up (or of a running run: its network has the experiment's name), beside
//! what the link model in the network's state file says, like Mininet's `pingall` and
//! `iperf`. Both ends run in this process, on sockets bound to the two nodes' addresses: a
//! ping-pong of small messages for the RTT, then a bulk transfer from A to B for the
//! goodput, over TCP or UDP. `--all` probes one pair per ordered group pair and flags
//! those that depart from the model.

use crate::exit::bad_input;
use anyhow::{Context, Result};
use clap::Args;
use shaping::Network;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use topology::LinkModel;

/// Round trips measured per pair.
const PINGS: usize = 50;
/// Bytes of a ping message.
const PING_BYTES: usize = 16;
/// Header bytes a UDP packet adds on the emulated links (IPv4 20, UDP 8, link 14).
const UDP_HEADERS: u64 = 42;
/// Payload of a UDP bulk datagram.
const UDP_PAYLOAD: usize = 1200;
/// How long a UDP ping waits for its answer before it counts as lost.
const UDP_WAIT: Duration = Duration::from_secs(1);
/// How long a TCP end waits for the other (a node cut off, a delay engine that died)
/// before the probe fails.
const TCP_WAIT: Duration = Duration::from_secs(5);
/// `--all` flags a pair whose smallest RTT is below the model by more than
/// [`RTT_EARLY_MS`] or above it by more than [`RTT_LATE_MS`] plus [`RTT_LATE_SHARE`] of it,
/// or whose goodput is more than [`RATE_SHARE`] away from the model's rate.
const RTT_EARLY_MS: f64 = 0.1;
const RTT_LATE_MS: f64 = 1.0;
const RTT_LATE_SHARE: f64 = 0.05;
const RATE_SHARE: f64 = 0.10;

/// Measure RTT and goodput between two nodes, beside what the link model says.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab probe east-1 west-1\n  p2plab probe east-1 west-1 --udp --duration 10s\n  p2plab probe --all --duration 2s\n  p2plab probe --name swarm east-3 west-2   # the nodes of a running run\n\nThe model RTT is L(a) + G(A,B) + L(b) both ways (the smallest of 50 round trips is compared\nwith it); the model rate is the smaller of A's upload and B's download. The goodput is\nmeasured for --duration after a warm-up of a quarter of it (at most 1 s), which the\nshapers' initial bursts and TCP's slow start would otherwise skew.\n--all probes one pair per ordered group pair (the first node of each group, the second for\na group with itself) and flags any whose smallest RTT is more than 0.1 ms below the model\nor more than 1 ms + 5 % above it, or whose goodput is more than 10 % away from the rate;\nit exits 1 when one is flagged."
)]
pub struct ProbeArgs {
    /// The sending node (name).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub a: Option<String>,
    /// The receiving node (name).
    #[arg(required_unless_present = "all")]
    pub b: Option<String>,
    /// One pair per ordered group pair.
    #[arg(long)]
    pub all: bool,
    /// Measure over TCP (the default).
    #[arg(long, conflicts_with = "udp")]
    pub tcp: bool,
    /// Measure over UDP (pings that go unanswered within 1 s count as lost).
    #[arg(long)]
    pub udp: bool,
    /// How long the goodput is measured, per pair.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub net: crate::down::NetName,
}

/// What one probe measured.
struct Measured {
    /// Round trips in ms, sorted; fewer than [`PINGS`] when UDP lost some.
    rtts: Vec<f64>,
    /// Goodput in bits per second.
    goodput_bps: f64,
}

/// A pair and what the model says of it.
struct Pair {
    a: usize,
    b: usize,
    /// Round trip in ms.
    rtt_ms: f64,
    /// Bits per second.
    rate_bps: u64,
}

impl Pair {
    fn new(m: &LinkModel, a: usize, b: usize) -> Pair {
        Pair {
            a,
            b,
            rtt_ms: (m.one_way_delay_us(a, b) + m.one_way_delay_us(b, a)) as f64 / 1e3,
            rate_bps: m.nodes[a].up_bps.min(m.nodes[b].down_bps),
        }
    }

    /// Why the measurement departs from the model, if it does.
    fn departs(&self, got: &Measured) -> Option<String> {
        let Some(&min) = got.rtts.first() else {
            return Some("no ping was answered".into());
        };
        let late = RTT_LATE_MS + RTT_LATE_SHARE * self.rtt_ms;
        if min < self.rtt_ms - RTT_EARLY_MS || min > self.rtt_ms + late {
            return Some(format!(
                "RTT {min:.2} ms, model {:.2} ms (+{late:.2} ms allowed)",
                self.rtt_ms
            ));
        }
        let off = (got.goodput_bps - self.rate_bps as f64).abs() / self.rate_bps as f64;
        (self.rate_bps > 0 && off > RATE_SHARE).then(|| {
            format!(
                "goodput {} of {}",
                mbit(got.goodput_bps),
                mbit(self.rate_bps as f64)
            )
        })
    }
}

fn mbit(bps: f64) -> String {
    format!("{:.3} mbit/s", bps / 1e6)
}

/// Node `name` of `network`, which must run on this host (`probe` and `exec`).
pub(crate) fn node(network: &Network, name: &str) -> Result<usize> {
    let s = network.state();
    let i = s.model.node_by_name(name).ok_or_else(|| {
        bad_input(format!(
            "no node `{name}` in network {}: `p2plab status --name {}` lists its nodes",
            s.name, s.name
        ))
    })?;
    if !s.local.contains(&i) {
        return Err(bad_input(format!(
            "node `{name}` of network {} runs on another host: use it there",
            s.name
        )));
    }
    Ok(i)
}

pub fn probe(args: &ProbeArgs) -> Result<()> {
    let name = crate::down::required(args.net.name.as_deref(), "probe")?;
    let network = Network::open(&name)?;
    let m = &network.state().model;
    let proto = if args.udp { "udp" } else { "tcp" };
    let pairs = match (&args.a, &args.b) {
        (Some(a), Some(b)) if !args.all => {
            vec![Pair::new(m, node(&network, a)?, node(&network, b)?)]
        }
        _ => group_pairs(&network)
            .into_iter()
            .map(|(a, b)| Pair::new(m, a, b))
            .collect(),
    };
    if pairs.is_empty() {
        return Err(bad_input(format!(
            "network {name} has no two nodes on this host to probe"
        )));
    }
    let mut flagged = Vec::new();
    for pair in &pairs {
        let (na, nb) = (&m.nodes[pair.a], &m.nodes[pair.b]);
        let got = measure(na.ip, nb.ip, args.udp, args.duration, pair.rate_bps)
            .with_context(|| format!("probing {} -> {}", na.name, nb.name))?;
        let median = got
            .rtts
            .get(got.rtts.len() / 2)
            .copied()
            .unwrap_or(f64::NAN);
        let mut s = format!(
            "{} ({}) -> {} ({}), {proto}, {}:\n  rtt      min {:.3} ms, median {:.3} ms, {} of {PINGS} answered; model {:.3} ms\n  goodput  {}; model {} (the smaller of {}'s upload and {}'s download)\n",
            na.name,
            na.ip,
            nb.name,
            nb.ip,
            humantime::format_duration(args.duration),
            got.rtts.first().copied().unwrap_or(f64::NAN),
            median,
            got.rtts.len(),
            pair.rtt_ms,
            mbit(got.goodput_bps),
            mbit(pair.rate_bps as f64),
            na.name,
            nb.name,
        );
        if args.all {
            if let Some(why) = pair.departs(&got) {
                let _ = writeln!(s, "  DEPARTS from the model: {why}");
                flagged.push(format!("{} -> {}", na.name, nb.name));
            }
        }
        crate::output::emit(&s)?;
    }
    if flagged.is_empty() {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "{} of {} pairs depart from the model: {}",
        flagged.len(),
        pairs.len(),
        flagged.join(", ")
    ))
}

/// One pair per ordered group pair (a, b) with nodes on this host: the first node of a to
/// the first of b, or to the second of a when a = b (none when a has one node here).
fn group_pairs(network: &Network) -> Vec<(usize, usize)> {
    let s = network.state();
    let here = |g: usize| -> Vec<usize> {
        s.model.groups[g]
            .nodes
            .clone()
            .filter(|i| s.local.contains(i))
            .collect()
    };
    let groups: Vec<Vec<usize>> = (0..s.model.groups.len()).map(here).collect();
    let mut pairs = Vec::new();
    for (a, ga) in groups.iter().enumerate() {
        for (b, gb) in groups.iter().enumerate() {
            let b = if a == b { gb.get(1) } else { gb.first() };
            if let (Some(&a), Some(&b)) = (ga.first(), b) {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// Pings from `a` to `b` and back, then sends from `a` to `b` for `duration`.
fn measure(a: Ipv4Addr, b: Ipv4Addr, udp: bool, duration: Duration, rate: u64) -> Result<Measured> {
    if udp {
        return measure_udp(a, b, duration, rate);
    }
    let listener = TcpListener::bind((b, 0)).context("cannot listen on B's address")?;
    let to = listener.local_addr()?;
    let bind_a = SocketAddr::V4(SocketAddrV4::new(a, 0));
    // pings: B echoes every message
    let echo = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(TCP_WAIT))?;
        let mut buf = [0u8; PING_BYTES];
        for _ in 0..PINGS {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        // then the bulk transfer: count what arrives for `duration` from its first byte
        let (mut bulk, _) = listener.accept()?;
        bulk.set_read_timeout(Some(TCP_WAIT))?;
        let mut big = vec![0u8; 1 << 16];
        let mut window = Window::new(duration);
        loop {
            match bulk.read(&mut big)? {
                0 => break,
                n if window.count(n) => {}
                _ => break,
            }
        }
        Ok(window.bytes)
    });
    let mut s = connect_from(bind_a, to)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(TCP_WAIT))?;
    let mut rtts = Vec::with_capacity(PINGS);
    let mut buf = [7u8; PING_BYTES];
    for _ in 0..PINGS {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)
            .context("B did not answer a ping within 5 s")?;
        rtts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut bulk = connect_from(bind_a, to)?;
    bulk.set_write_timeout(Some(TCP_WAIT))?;
    let chunk = vec![0u8; 1 << 16];
    // the receiver stops reading after `duration`; a write that fails then ends the sender
    let sender = std::thread::spawn(move || while bulk.write_all(&chunk).is_ok() {});
    let bytes = echo
        .join()
        .map_err(|_| anyhow::anyhow!("the receiving end panicked"))??;
    let _ = sender.join();
    rtts.sort_by(f64::total_cmp);
    Ok(Measured {
        rtts,
        goodput_bps: bytes as f64 * 8.0 / duration.as_secs_f64(),
    })
}

/// The warm-up before the goodput is counted: a quarter of `duration`, at most 1 s.
fn warm_up(duration: Duration) -> Duration {
    (duration / 4).min(Duration::from_secs(1))
}

/// The receiver's count: bytes that arrive from the end of the warm-up (timed from the
/// first arrival) for `duration`.
struct Window {
    duration: Duration,
    first: Option<Instant>,
    bytes: u64,
}

impl Window {
    fn new(duration: Duration) -> Window {
        Window {
            duration,
            first: None,
            bytes: 0,
        }
    }

    /// Counts `n` bytes that just arrived; false once the window is over.
    fn count(&mut self, n: usize) -> bool {
        let since = self.first.get_or_insert_with(Instant::now).elapsed();
        let warm = warm_up(self.duration);
        if since >= warm + self.duration {
            return false;
        }
        if since >= warm {
            self.bytes += n as u64;
        }
        true
    }
}

/// A TCP connection from `from` (port chosen by the kernel) to `to`.
fn connect_from(from: SocketAddr, to: SocketAddr) -> Result<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        anyhow::bail!("IPv4 addresses only");
    };
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(from),
    )
    .context("cannot bind to A's address")?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to))
        .context("cannot connect to B")?;
    Ok(TcpStream::from(fd))
}

/// [`measure`] over UDP: B echoes pings; the bulk datagrams go at 1.05 times the model's
/// rate (as fast as they can without one), and B counts what arrives.
fn measure_udp(a: Ipv4Addr, b: Ipv4Addr, duration: Duration, rate: u64) -> Result<Measured> {
    let rx = UdpSocket::bind((b, 0)).context("cannot bind B's address")?;
    let tx = UdpSocket::bind((a, 0)).context("cannot bind A's address")?;
    tx.connect(rx.local_addr()?)?;
    rx.set_read_timeout(Some(UDP_WAIT))?;
    tx.set_read_timeout(Some(UDP_WAIT))?;
    let echo = {
        let rx = rx.try_clone()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; PING_BYTES];
            for _ in 0..PINGS {
                if let Ok((n, from)) = rx.recv_from(&mut buf) {
                    let _ = rx.send_to(&buf[..n], from);
                }
            }
        })
    };
    let mut rtts = Vec::with_capacity(PINGS);
    let mut buf = [0u8; PING_BYTES];
    for k in 0..PINGS {
        buf[0] = k as u8;
        let t = Instant::now();
        tx.send(&buf)?;
        // an answer to an earlier ping that came late is not this one's
        while let Ok(n) = tx.recv(&mut buf) {
            if n > 0 && buf[0] == k as u8 {
                rtts.push(t.elapsed().as_secs_f64() * 1e3);
                break;
            }
        }
    }
    let _ = echo.join();
    rtts.sort_by(f64::total_cmp);
    let counter = std::thread::spawn(move || {
        let mut big = vec![0u8; 65536];
        let mut window = Window::new(duration);
        while let Ok(n) = rx.recv(&mut big) {
            if !window.count(n) {
                break;
            }
        }
        window.bytes
    });
    let gap = (rate > 0).then(|| {
        Duration::from_secs_f64(
            ((UDP_PAYLOAD as u64 + UDP_HEADERS) * 8) as f64 / (rate as f64 * 1.05),
        )
    });
    let data = vec![0u8; UDP_PAYLOAD];
    let start = Instant::now();
    let mut sent = 0u32;
    // a little longer than the receiver counts, so that it sees its whole window
    while start.elapsed() < warm_up(duration) + duration + UDP_WAIT / 4 {
        let _ = tx.send(&data);
        sent += 1;
        if let Some(gap) = gap {
            let due = start + gap * sent;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    let bytes = counter
        .join()
        .map_err(|_| anyhow::anyhow!("the receiving end panicked"))?;
    Ok(Measured {
        rtts,
        goodput_bps: bytes as f64 * 8.0 / duration.as_secs_f64(),
    })
}
