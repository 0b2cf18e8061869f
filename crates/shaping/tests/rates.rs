//! Real traffic through a network brought up by `shaping::up` in a scratch namespace:
//! UDP flows between co-located nodes (aliases on `lo`) arrive at the configured upload
//! and download rates within 3 %, several at once, and a download limit holds when four
//! senders share it. Rates count bytes on the wire: payload + UDP + IPv4 + Ethernet headers.

use netctl::scratch::in_new_netns;
use nix::sys::socket::{setsockopt, sockopt};
use shaping::model::{Group, Model, Node};
use shaping::{Backend, Shaping, UpOptions};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// Headers counted by the shaper: UDP, IPv4, Ethernet (lo has an Ethernet header).
const HEADERS: usize = 8 + 20 + 14;
const SEND_FOR: Duration = Duration::from_millis(5500);
const WARMUP: Duration = Duration::from_millis(1000);

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

fn model() -> Model {
    let nodes = vec![
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
    ];
    Model {
        nodes,
        groups: vec![Group {
            name: "g".into(),
            prefix: (Ipv4Addr::new(10, 9, 0, 0), 24),
        }],
        group_delay_us: vec![vec![0]],
        group_loss: vec![vec![0.0]],
    }
}

/// Sends full-size datagrams from `src` to `dst:port` as fast as the socket allows.
fn blast(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let s = UdpSocket::bind(SocketAddrV4::new(src, 0)).unwrap();
        // enough in flight to fill the class's queue: a sender descheduled on a busy
        // machine must not let the shaper run dry
        setsockopt(&s, sockopt::SndBufForce, &(16 << 20)).unwrap();
        let buf = vec![7u8; payload];
        let end = Instant::now() + SEND_FOR;
        while Instant::now() < end {
            let _ = s.send_to(&buf, SocketAddrV4::new(dst, port));
        }
    })
}

/// Receives on `dst:port` and returns the wire rate in bit/s seen after the warm-up.
fn measure(dst: Ipv4Addr, port: u16, payload: usize) -> std::thread::JoinHandle<f64> {
    let s = UdpSocket::bind(SocketAddrV4::new(dst, port)).unwrap();
    // a busy test machine must not drop at the receiving socket what the shaper let through
    setsockopt(&s, sockopt::RcvBufForce, &(16 << 20)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let start = Instant::now();
        let (mut first, mut last, mut n) = (None, start, 0u64);
        while start.elapsed() < SEND_FOR {
            if let Ok(len) = s.recv(&mut buf) {
                assert_eq!(len, payload);
                let now = Instant::now();
                if now - start >= WARMUP {
                    first.get_or_insert(now);
                    last = now;
                    n += 1;
                }
            }
        }
        let span = (last - first.expect("no packet arrived")).as_secs_f64();
        (n - 1) as f64 * ((payload + HEADERS) * 8) as f64 / span
    })
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

#[test]
fn upload_and_download_rates_within_3_percent() {
    let failures = in_new_netns(|| {
        sh("ip link set lo up");
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("P2PLAB_RUN_DIR", dir.path());
        let m = model();
        let ip = |k: usize| m.nodes[k - 1].ip;
        let opts = UpOptions {
            name: "rates".into(),
            dev: "lo".into(),
            shaping: Shaping::Force(Backend::Nfqueue),
            local: None,
        };
        shaping::up(m.clone(), &opts, &|_| Err("no engine needed".into())).unwrap();
        // (label, expected bit/s, sender nodes, receiver node)
        let flows: Vec<(&str, u64, Vec<usize>, usize)> = vec![
            ("upload 128kbit", 128_000, vec![1], 7),
            ("upload 2mbit", 2_000_000, vec![2], 7),
            ("upload 100mbit", 100_000_000, vec![3], 7),
            ("download 128kbit", 128_000, vec![8], 4),
            ("download 2mbit", 2_000_000, vec![9], 5),
            ("download 100mbit", 100_000_000, vec![10], 6),
            ("upload 2mbit while downloading", 2_000_000, vec![12], 7),
            ("download 128kbit while uploading", 128_000, vec![11], 12),
            (
                "download 2mbit shared by 4 senders",
                2_000_000,
                vec![8, 9, 10, 11],
                13,
            ),
        ];
        let mut meters = vec![];
        let mut senders = vec![];
        for (f, (_, want, from, to)) in flows.iter().enumerate() {
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
        assert!(shaping::down("rates").unwrap());
        let mut failures = vec![];
        for ((label, want, _, _), got) in flows.iter().zip(rates) {
            let err = (got - *want as f64) / *want as f64;
            eprintln!("{label}: {got:.0} bit/s ({:+.2} %)", err * 100.0);
            if err.abs() > 0.03 {
                failures.push(format!(
                    "{label}: {got:.0} bit/s, {:+.2} % off",
                    err * 100.0
                ));
            }
        }
        failures
    })
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}
