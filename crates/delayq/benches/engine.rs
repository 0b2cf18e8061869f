//! Engine throughput and accuracy under a bounded UDP flood, in a throwaway namespace.
//!
//! For each spin setting and each offered rate (three times over, interleaved), one sender
//! floods A -> B for one second (count and time bounded) through an engine adding 5 ms
//! (the rule at PREROUTING, as p2plab's nfqueue backend has it); the receiver measures each
//! datagram's one-way time. Reported per run: the rate the sender achieved, delivered share,
//! datagrams out of order, added error (one-way time minus 5 ms: mean, p50, p99, max), the
//! engine's own lateness, and the engine thread's CPU time (getrusage RUSAGE_THREAD) as a
//! share of one core per 10k packets/s. A run is "sustained" when at least 99.9 % arrive,
//! the mean added error is under 0.5 ms and p99 - p50 is under 1 ms; the summary gives, per
//! spin, the highest rate at which every repetition was sustained.
//!
//! `cargo bench -p delayq --bench engine` writes `target/delayq-engine.json`; without
//! `--bench` (as under `cargo test --all-targets`) it runs one short smoke case.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::{flood, in_netns, quantile, realtime, receive, start_engine, udp, MEASURE};
use delayq::{EngineConfig, PairParams};
use serde_json::{json, Value};

const A: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 78, 1, 1);
const DELAY: Duration = Duration::from_millis(5);

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One flood at `pps` for `secs` through an engine with `spin`.
fn run(spin: Duration, pps: u64, secs: f64) -> Value {
    in_netns(&["10.78.0.1/32", "10.78.1.1/32"], || {
        let cfg = EngineConfig {
            queue_num: 9,
            spin,
            queue_maxlen: 1 << 18,
            ..Default::default()
        };
        let params = PairParams {
            delay_us: DELAY.as_micros() as u64,
            loss: 0.0,
        };
        let engine = start_engine(cfg, "10.78.0.0/16", move |_, _| params);
        let count = (pps as f64 * secs) as u64;
        let epoch = Instant::now();
        let rx = udp(B, 9000);
        let receiver = std::thread::spawn(move || {
            realtime(MEASURE);
            receive(
                &rx,
                count,
                epoch,
                Duration::from_millis(500),
                Duration::from_secs_f64(secs + 5.0),
            )
        });
        let to = SocketAddrV4::new(B, 9000);
        let flood_start = Instant::now();
        let sent = flood(
            A,
            to,
            count,
            pps,
            epoch,
            Duration::from_secs_f64(secs * 2.0),
        );
        let flood_secs = flood_start.elapsed().as_secs_f64();
        let achieved = sent as f64 / flood_secs;
        let got = receiver.join().unwrap();
        let done = engine.stop();
        let c = &done.counters[0];
        let mut err: Vec<Duration> = got
            .iter()
            .map(|a| a.one_way.saturating_sub(DELAY))
            .collect();
        let mean = err.iter().sum::<Duration>() / err.len().max(1) as u32;
        let (p50, p99) = (quantile(&mut err, 0.5), quantile(&mut err, 0.99));
        let max = *err.last().unwrap();
        let out_of_order = got.windows(2).filter(|w| w[0].seq >= w[1].seq).count();
        let delivered = got.len() as f64 / sent.max(1) as f64;
        let cpu_per_10k = done.cpu.as_secs_f64() / flood_secs / (achieved / 10_000.0);
        let sustained = delivered >= 0.999
            && mean < Duration::from_micros(500)
            && p99 - p50 < Duration::from_millis(1);
        json!({
            "spin_us": us(spin),
            "offered_pps": pps,
            "achieved_pps": achieved.round(),
            "sent": sent,
            "delivered": got.len(),
            "delivered_share": delivered,
            "out_of_order": out_of_order,
            "added_error_us": {"mean": us(mean), "p50": us(p50), "p99": us(p99), "max": us(max)},
            "engine_lateness_us": {
                "mean": done.sum(|c| &c.lateness_sum_ns) as f64 / done.sum(|c| &c.delayed).max(1) as f64 / 1e3,
                "p99_at_most": c.lateness_quantile(0.99).map(us),
                "max": c.max_lateness_ns.load(Relaxed) as f64 / 1e3,
            },
            "engine_cpu_s": done.cpu.as_secs_f64(),
            "engine_cpu_share_per_10k_pps": cpu_per_10k,
            "sustained": sustained,
        })
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (spins, rates, repeats, secs): (&[u64], &[u64], usize, f64) = if full {
        (
            &[0, 50, 200],
            &[10_000, 25_000, 50_000, 100_000, 125_000, 150_000],
            3,
            1.0,
        )
    } else {
        (&[200], &[5_000], 1, 0.2)
    };
    let mut runs = Vec::new();
    for _ in 0..repeats {
        for &spin in spins {
            for &pps in rates {
                let r = run(Duration::from_micros(spin), pps, secs);
                eprintln!("{r}");
                runs.push(r);
            }
        }
    }
    // Per spin: the highest offered rate at which every repetition was sustained, and the
    // lowest rate the sender achieved there.
    let best = |spin: u64| {
        rates
            .iter()
            .filter_map(|&pps| {
                let these: Vec<&Value> = runs
                    .iter()
                    .filter(|r| {
                        r["spin_us"] == json!(spin as f64) && r["offered_pps"] == json!(pps)
                    })
                    .collect();
                these
                    .iter()
                    .all(|r| r["sustained"] == json!(true))
                    .then(|| {
                        these
                            .iter()
                            .filter_map(|r| r["achieved_pps"].as_f64())
                            .fold(f64::INFINITY, f64::min)
                    })
            })
            .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))))
    };
    let summary = json!({
        "delay_ms": DELAY.as_millis() as u64,
        "repeats": repeats,
        "max_sustained_pps": spins.iter().map(|&s| json!({"spin_us": s, "pps": best(s)})).collect::<Vec<_>>(),
        "runs": runs,
    });
    println!("{summary}");
    if full {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/delayq-engine.json"
        );
        std::fs::write(path, serde_json::to_string_pretty(&summary).unwrap())
            .expect("write bench JSON");
        eprintln!("wrote {path}");
    }
}
