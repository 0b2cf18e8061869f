//! Real traffic through a network brought up by `shaping::Network::up` in a scratch namespace:
//! UDP flows between co-located nodes (aliases on `lo`) arrive at the configured upload
//! and download rates within 3 %, several at once, and a download limit holds when four
//! senders share it; a rate changed at run time (`Network::change`) holds from then on.
//! Rates count bytes on the wire: payload + UDP + IPv4 + Ethernet headers. A rate is judged
//! too slow only when `tc -s class show` proves its class saturated while it was measured
//! (packets queued in every sample, and drops), so a sender starved on a busy machine is
//! reported as such, not as a shaping error.

use ipnet::Ipv4Net;
use netctl::scratch::in_new_netns;
use netctl::Field;
use nix::sys::socket::{setsockopt, sockopt};
use shaping::{Backend, EngineBinary, Network, Shaping, UpOptions};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use topology::{Group, LinkModel, Node};

/// Headers counted by the shaper: UDP, IPv4, Ethernet (lo has an Ethernet header).
const HEADERS: usize = 8 + 20 + 14;
const SEND_FOR: Duration = Duration::from_millis(5500);
const WARMUP: Duration = Duration::from_millis(1000);

/// The state directory of every test here (`P2PLAB_RUN_DIR` is process-wide), set once.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("P2PLAB_RUN_DIR", d.path());
        d
    })
    .path()
}

fn node(k: u8, up_bps: u64, down_bps: u64) -> Node {
    Node {
        name: format!("n{k}"),
        ip: Ipv4Addr::new(10, 9, 0, k),
        group: 0,
        up_bps,
        down_bps,
        latency_us: 0,
        loss: 0.0,
        queue_packets: 100,
    }
}

const G: u64 = 1_000_000_000;

/// One group in 10.`net`.0.0/24 holding `nodes` (moved there).
fn model(net: u8, mut nodes: Vec<Node>) -> LinkModel {
    for n in &mut nodes {
        n.ip = Ipv4Addr::new(10, net, 0, n.ip.octets()[3]);
    }
    let group = Group {
        name: "g".into(),
        prefix: Ipv4Net::new(Ipv4Addr::new(10, net, 0, 0), 24).unwrap(),
        nodes: 0..nodes.len(),
    };
    LinkModel::new(nodes, vec![group], vec![0], vec![], None)
}

fn rates_model() -> LinkModel {
    model(
        9,
        vec![
            node(1, 128_000, G),     // upload 128 kbit
            node(2, 2_000_000, G),   // upload 2 mbit
            node(3, 100_000_000, G), // upload 100 mbit
            node(4, G, 128_000),     // download 128 kbit
            node(5, G, 2_000_000),   // download 2 mbit
            node(6, G, 100_000_000), // download 100 mbit
            node(7, G, G),           // fast receiver
            node(8, G, G),           // fast senders
            node(9, G, G),
            node(10, G, G),
            node(11, G, G),
            node(12, 2_000_000, 128_000), // both directions at once
            node(13, G, 2_000_000),       // shared download
        ],
    )
}

/// Sends full-size datagrams from `src` to `dst:port` as fast as the socket allows, for
/// `SEND_FOR`.
fn blast(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: usize) -> JoinHandle<()> {
    blast_for(src, dst, port, payload, SEND_FOR)
}

fn blast_for(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    port: u16,
    payload: usize,
    send_for: Duration,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let s = UdpSocket::bind(SocketAddrV4::new(src, 0)).unwrap();
        // enough in flight to fill the class's queue: a sender descheduled on a busy
        // machine must not let the shaper run dry
        setsockopt(&s, sockopt::SndBufForce, &(16 << 20)).unwrap();
        let buf = vec![7u8; payload];
        let end = Instant::now() + send_for;
        while Instant::now() < end {
            let _ = s.send_to(&buf, SocketAddrV4::new(dst, port));
        }
    })
}

/// Receives on `dst:port` and returns the wire rate in bit/s seen after the warm-up.
fn measure(dst: Ipv4Addr, port: u16, payload: usize) -> JoinHandle<f64> {
    let arrived = arrivals(dst, port, payload, SEND_FOR);
    std::thread::spawn(move || {
        let (start, times) = arrived.join().unwrap();
        rate(&times, start + WARMUP, start + SEND_FOR, payload)
    })
}

/// Receives on `dst:port` for `listen_for`: the start time and every datagram's arrival time.
fn arrivals(
    dst: Ipv4Addr,
    port: u16,
    payload: usize,
    listen_for: Duration,
) -> JoinHandle<(Instant, Vec<Instant>)> {
    let s = UdpSocket::bind(SocketAddrV4::new(dst, port)).unwrap();
    // a busy test machine must not drop at the receiving socket what the shaper let through
    setsockopt(&s, sockopt::RcvBufForce, &(16 << 20)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        realtime();
        let mut buf = vec![0u8; 65536];
        let start = Instant::now();
        let mut times = vec![];
        while start.elapsed() < listen_for {
            if let Ok(len) = s.recv(&mut buf) {
                assert_eq!(len, payload);
                times.push(Instant::now());
            }
        }
        (start, times)
    })
}

/// Puts the calling thread under `SCHED_FIFO`, so that it timestamps each datagram when it
/// arrives: a receiver waiting for a core on a busy machine would read a burst late and
/// see a rate above the link's.
fn realtime() {
    use nix::libc;
    let param = libc::sched_param { sched_priority: 5 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    assert_eq!(rc, 0, "SCHED_FIFO: {}", std::io::Error::last_os_error());
}

/// The wire rate in bit/s of the datagrams that arrived between `from` and `to`.
fn rate(times: &[Instant], from: Instant, to: Instant, payload: usize) -> f64 {
    let inside: Vec<&Instant> = times.iter().filter(|&&t| t >= from && t < to).collect();
    assert!(inside.len() >= 2, "too few packets arrived");
    let span = (*inside[inside.len() - 1] - *inside[0]).as_secs_f64();
    (inside.len() - 1) as f64 * ((payload + HEADERS) * 8) as f64 / span
}

/// A node's upload (`Field::Src`) or download (`Field::Dst`) class in network `name`: its
/// IFB and its class id as `tc` writes them.
fn class_of(name: &str, node: usize, field: Field) -> (String, String) {
    let network = Network::open(name).unwrap();
    let state = network.state();
    let places = shaping::objects::node_classes(&state.model, &state.local);
    let at = state.local.iter().position(|&i| i == node).unwrap();
    let place = places[at];
    (
        state.layout().ifb(field, place.cell),
        place.class.to_string(),
    )
}

/// Dropped and queued packets of every class of `dev`, by class id, as
/// `tc -s class show` prints them.
fn class_counters(dev: &str) -> HashMap<String, (u64, u64)> {
    let out = Command::new("tc")
        .args(["-s", "class", "show", "dev", dev])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let count = |block: &str, word: &str, nth: usize| -> u64 {
        block
            .split(word)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().nth(nth))
            .and_then(|n| n.trim_end_matches([',', 'p']).parse().ok())
            .unwrap_or_else(|| panic!("no `{word}` in {block}"))
    };
    text.split("class ")
        .skip(1)
        .map(|block| {
            let id = block.split_whitespace().nth(1).unwrap().to_string();
            (
                id,
                (count(block, "(dropped ", 0), count(block, "backlog ", 1)),
            )
        })
        .collect()
}

/// Whether a class's queue stayed full while a rate was measured: a class whose queue
/// never ran dry and that dropped packets sent all it could; the rate it let through is
/// the shaper's. A sender starved on a busy machine shows as samples without a queue.
#[derive(Debug, Default, Clone, Copy)]
struct Saturation {
    /// Samples in which the class had packets queued.
    queued: usize,
    /// Samples taken.
    samples: usize,
    /// Packets the class dropped between the first and the last sample.
    drops: u64,
}

/// Samples the `classes` (IFB, class id) every 100 ms from `from` to `to` after `start`.
fn watch(
    classes: Vec<(String, String)>,
    start: Instant,
    from: Duration,
    to: Duration,
) -> JoinHandle<Vec<Saturation>> {
    std::thread::spawn(move || {
        std::thread::sleep((start + from).saturating_duration_since(Instant::now()));
        let mut sat = vec![Saturation::default(); classes.len()];
        let mut first_drops = vec![None; classes.len()];
        while start.elapsed() < to {
            let mut devs: HashMap<&str, HashMap<String, (u64, u64)>> = HashMap::new();
            for (k, (dev, id)) in classes.iter().enumerate() {
                let all = devs.entry(dev).or_insert_with(|| class_counters(dev));
                let (drops, queued) = all[id];
                let first = *first_drops[k].get_or_insert(drops);
                sat[k].drops = drops - first;
                sat[k].queued += usize::from(queued > 0);
                sat[k].samples += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        sat
    })
}

/// Judges a measured rate: `None` when `got` is within 3 % of `want` on a saturated link,
/// else what is wrong. Too fast is the shaper's fault whatever the sender did; too slow is
/// only when the link was saturated, else the message says the sender was starved.
fn judge(label: &str, got: f64, want: f64, sat: Saturation) -> Option<String> {
    let err = (got - want) / want;
    eprintln!("{label}: {got:.0} bit/s ({:+.2} %), {sat:?}", err * 100.0);
    let saturated = sat.samples >= 5 && sat.queued == sat.samples && sat.drops > 0;
    if err > 0.03 || (saturated && err < -0.03) {
        Some(format!(
            "{label}: {got:.0} bit/s, {:+.2} % off",
            err * 100.0
        ))
    } else if !saturated {
        Some(format!("{label}: link not saturated ({sat:?}): the sender was starved, {got:.0} bit/s says nothing"))
    } else {
        None
    }
}

/// Brings `m` up as network `name` on `lo` (rates only: no delay engine).
fn up(m: &LinkModel, name: &str) {
    let opts = UpOptions {
        name: name.into(),
        dev: "lo".into(),
        shaping: Shaping::Force(Backend::Nfqueue),
        local: None,
        routes: vec![],
        engine: no_engine(),
    };
    Network::up(m.clone(), &opts).unwrap();
}

/// A delay engine that cannot start: these networks need none.
fn no_engine() -> EngineBinary {
    EngineBinary::at("/nonexistent/no engine needed")
}

fn sh(cmd: &str) {
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .unwrap()
            .success(),
        "{cmd}"
    );
}

/// One measured flow: label, expected bit/s, sender nodes, receiver node, and the class
/// that limits it (a node and `Field::Src` for its upload, `Field::Dst` for its download).
type Flow = (&'static str, u64, Vec<usize>, usize, (usize, Field));

#[test]
fn upload_and_download_rates_within_3_percent() {
    let failures = in_new_netns(|| {
        sh("ip link set lo up");
        run_dir();
        let m = rates_model();
        let ip = |k: usize| m.nodes[k - 1].ip;
        up(&m, "rates");
        let (up_of, down_of) = (|k| (k, Field::Src), |k| (k, Field::Dst));
        let flows: Vec<Flow> = vec![
            ("upload 128kbit", 128_000, vec![1], 7, up_of(1)),
            ("upload 2mbit", 2_000_000, vec![2], 7, up_of(2)),
            ("upload 100mbit", 100_000_000, vec![3], 7, up_of(3)),
            ("download 128kbit", 128_000, vec![8], 4, down_of(4)),
            ("download 2mbit", 2_000_000, vec![9], 5, down_of(5)),
            ("download 100mbit", 100_000_000, vec![10], 6, down_of(6)),
            (
                "upload 2mbit while downloading",
                2_000_000,
                vec![12],
                7,
                up_of(12),
            ),
            (
                "download 128kbit while uploading",
                128_000,
                vec![11],
                12,
                down_of(12),
            ),
            (
                "download 2mbit shared by 4 senders",
                2_000_000,
                vec![8, 9, 10, 11],
                13,
                down_of(13),
            ),
        ];
        let classes = flows
            .iter()
            .map(|(.., (k, field))| class_of("rates", k - 1, *field))
            .collect();
        let saturation = watch(classes, Instant::now(), WARMUP, SEND_FOR);
        let mut meters = vec![];
        let mut senders = vec![];
        for (f, (_, want, from, to, _)) in flows.iter().enumerate() {
            let port = 5000 + f as u16;
            // like TCP over lo (64 kB segments), fast flows use large datagrams: fewer packets
            let payload = if *want >= 10_000_000 { 30_000 } else { 1000 };
            meters.push(measure(ip(*to), port, payload));
            for s in from {
                senders.push(blast(ip(*s), ip(*to), port, payload));
            }
        }
        let rates: Vec<f64> = meters.into_iter().map(|h| h.join().unwrap()).collect();
        senders.into_iter().for_each(|h| h.join().unwrap());
        let saturation = saturation.join().unwrap();
        assert!(Network::down("rates").unwrap());
        flows
            .iter()
            .zip(rates)
            .zip(saturation)
            .filter_map(|(((label, want, ..), got), sat)| judge(label, got, *want as f64, sat))
            .collect::<Vec<_>>()
    })
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn rates_changed_mid_flow_hold_from_then_on() {
    let (before, after, before_sat, after_sat) = in_new_netns(|| {
        sh("ip link set lo up");
        run_dir();
        // n1 uploads at 2 mbit, then 1 mbit; n4 downloads at 1 mbit, then 4 mbit
        let m = model(
            8,
            vec![
                node(1, 2_000_000, G),
                node(2, G, G),
                node(3, G, G),
                node(4, G, 1_000_000),
            ],
        );
        let ip = |k: usize| m.nodes[k - 1].ip;
        up(&m, "change");
        let (payload, total) = (1000, Duration::from_millis(7000));
        let change_at = Duration::from_millis(3500);
        let classes = || {
            vec![
                class_of("change", 0, Field::Src),
                class_of("change", 3, Field::Dst),
            ]
        };
        let start = Instant::now();
        let saturation = [
            watch(classes(), start, Duration::from_millis(1000), change_at),
            watch(classes(), start, Duration::from_millis(4000), total),
        ];
        let meters = [
            arrivals(ip(2), 6000, payload, total),
            arrivals(ip(4), 6001, payload, total),
        ];
        let senders = [
            blast_for(ip(1), ip(2), 6000, payload, total),
            blast_for(ip(3), ip(4), 6001, payload, total),
        ];
        std::thread::sleep(change_at);
        let change = |nodes, up_bps, down_bps| topology::NetChange::SetLink {
            nodes,
            link: topology::LinkChange {
                up_bps,
                down_bps,
                latency_us: None,
                loss: None,
            },
        };
        let mut network = Network::open("change").unwrap().with_engine(no_engine());
        network
            .change(&change(vec![0], Some(1_000_000), None))
            .unwrap();
        network
            .change(&change(vec![3], None, Some(4_000_000)))
            .unwrap();
        let got: Vec<(Instant, Vec<Instant>)> =
            meters.into_iter().map(|h| h.join().unwrap()).collect();
        senders.into_iter().for_each(|h| h.join().unwrap());
        let [before_sat, after_sat] = saturation.map(|h| h.join().unwrap());
        let network = Network::open("change").unwrap();
        let state = network.state();
        assert_eq!(
            (state.model.nodes[0].up_bps, state.model.nodes[3].down_bps),
            (1_000_000, 4_000_000)
        );
        assert!(Network::down("change").unwrap());
        let window = |(start, times): &(Instant, Vec<Instant>), from: u64, to: u64| {
            rate(
                times,
                *start + Duration::from_millis(from),
                *start + Duration::from_millis(to),
                payload,
            )
        };
        // before: 1.0-3.5 s; after: from 4.0 s (the change, then 0.5 s of margin) to the end
        let before: Vec<f64> = got.iter().map(|g| window(g, 1000, 3500)).collect();
        let after: Vec<f64> = got.iter().map(|g| window(g, 4000, 7000)).collect();
        (before, after, before_sat, after_sat)
    })
    .unwrap();
    let want = [
        ("upload", 2_000_000.0, 1_000_000.0),
        ("download", 1_000_000.0, 4_000_000.0),
    ];
    let mut failures = vec![];
    for (k, (label, old, new)) in want.iter().enumerate() {
        for (when, got, wanted, sat) in [
            ("before", before[k], old, before_sat[k]),
            ("after", after[k], new, after_sat[k]),
        ] {
            failures.extend(judge(
                &format!("{label} {when} the change"),
                got,
                *wanted,
                sat,
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
