//! Real traffic through the engine, each test in its own network namespace: the fastest
//! round trip equals the configured delays (never less, at most 1 ms more), the engine
//! releases held packets on time by its own lateness counters, loss follows the configured
//! rate, a pair's packets stay in order while its delay changes, and nothing is left once
//! the engine is gone.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    flood, in_netns, quantile, realtime, receive, run, start_engine, start_engines, udp, Arrival,
    MEASURE,
};
use delayq::{Counters, Engine, EngineConfig, PairParams, LATENESS_UNIT};

const A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const ADDRS: [&str; 2] = ["10.77.0.1/32", "10.77.1.1/32"];
const PREFIX: &str = "10.77.0.0/16";
/// A probe counts as lost only after this long: this shared machine sometimes stalls
/// every thread for a few hundred milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest any helper thread of a test lives.
const MAX_LIFE: Duration = Duration::from_secs(60);

/// Echoes datagrams on `ip:port` back to their sender until `stop` is set.
fn echo_server(ip: Ipv4Addr, port: u16, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let s = udp(ip, port);
    std::thread::spawn(move || {
        realtime(MEASURE);
        let mut buf = [0u8; 64];
        let start = Instant::now();
        while !stop.load(Relaxed) && start.elapsed() < MAX_LIFE {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                s.send_to(&buf[..n], from).unwrap();
            }
        }
    })
}

/// Round-trip times of `n` probes from `from` to the echo server at `to`, one at a time,
/// each waiting at most `timeout`; lost probes are left out.
fn rtts(from: Ipv4Addr, to: SocketAddrV4, n: u32, timeout: Duration) -> Vec<Duration> {
    realtime(MEASURE);
    let s = udp(from, 0);
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    for seq in 0..n {
        let sent = Instant::now();
        s.send_to(&seq.to_be_bytes(), to).unwrap();
        while sent.elapsed() < timeout {
            if let Ok(4) = s.recv(&mut buf) {
                if buf[..4] == seq.to_be_bytes() {
                    out.push(sent.elapsed());
                    break;
                }
            }
        }
    }
    out
}

/// Asserts that the fastest of `rtts` is `want`: never less (the engine never releases a
/// packet early), at most 1 ms more. The minimum is what the engine added: a probe thread
/// that waits for a core on a busy machine only makes other round trips slower.
fn assert_min_rtt(rtts: &[Duration], want: Duration) {
    let min = *rtts.iter().min().expect("no probe came back");
    eprintln!("fastest round trip {min:?} (want {want:?})");
    assert!(
        min >= want - Duration::from_micros(50) && min < want + Duration::from_millis(1),
        "fastest round trip {min:?}, want {want:?} to {want:?} + 1 ms"
    );
}

/// Asserts the engine's own lateness (when it released each held packet minus when the
/// packet was due, which no probe thread's scheduling enters): half of the held packets
/// within 0.5 ms of their due time, 99 % within 1.05 ms (a bucket bound of its histogram).
fn assert_on_time(c: &Counters) {
    let delayed = c.delayed.load(Relaxed);
    let (p50, p99) = (c.lateness_quantile(0.5), c.lateness_quantile(0.99));
    eprintln!(
        "engine lateness over {delayed} held packets: mean {} ns, max {} ns, p50 <= {p50:?}, p99 <= {p99:?}",
        c.lateness_sum_ns.load(Relaxed) / delayed.max(1),
        c.max_lateness_ns.load(Relaxed),
    );
    let (p50, p99) = (p50.expect("no packet held"), p99.expect("no packet held"));
    assert!(
        p50 < Duration::from_micros(500) && p99 <= LATENESS_UNIT * 64,
        "engine late: p50 <= {p50:?} (want < 0.5 ms), p99 <= {p99:?} (want <= 1.05 ms)"
    );
}

fn cfg(queue_num: u16) -> EngineConfig {
    EngineConfig {
        queue_num,
        ..Default::default()
    }
}

/// The flood's datagrams at `rx`, waiting at most 300 ms for each and 10 s in all.
fn receive_all(rx: &UdpSocket, count: u64, epoch: Instant) -> Vec<Arrival> {
    let (idle, max) = (Duration::from_millis(300), Duration::from_secs(10));
    receive(rx, count, epoch, idle, max)
}

fn constant(p: PairParams) -> impl Fn(Ipv4Addr, Ipv4Addr) -> PairParams + Clone + Send + 'static {
    move |_, _| p
}

#[test]
fn rtt_is_the_sum_of_both_directions_delays() {
    in_netns(&ADDRS, || {
        // A -> B 7 ms, B -> A 13 ms: the round trip must take 20 ms.
        let engine = start_engine(cfg(1), PREFIX, |s, _| PairParams {
            delay_us: if s == A { 7_000 } else { 13_000 },
            loss: 0.0,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let echo = echo_server(B, 7000, Arc::clone(&stop));
        let mut rtt = rtts(A, SocketAddrV4::new(B, 7000), 100, PROBE_TIMEOUT);
        stop.store(true, Relaxed);
        echo.join().unwrap();
        let done = engine.stop();
        assert_eq!(
            rtt.len(),
            100,
            "probes lost without configured loss; engine {:?}",
            done.counters[0]
        );
        eprintln!("rtt p50 {:?} max {:?}", quantile(&mut rtt, 0.5), rtt[99]);
        assert_min_rtt(&rtt, Duration::from_millis(20));
        assert_on_time(&done.counters[0]);
        assert_eq!(done.sum(|c| &c.delayed), 200);
    });
}

#[test]
fn loss_rate_is_within_binomial_bounds() {
    in_netns(&ADDRS, || {
        let engine = start_engine(
            cfg(2),
            PREFIX,
            constant(PairParams {
                delay_us: 1_000,
                loss: 0.2,
            }),
        );
        let rx = udp(B, 7001);
        let epoch = Instant::now();
        // received while the flood goes on, so that a datagram's one-way time is the
        // engine's hold, not its wait in the socket for the flood to end
        let receiver = std::thread::spawn(move || {
            realtime(MEASURE);
            receive_all(&rx, 2000, epoch)
        });
        let sent = flood(
            A,
            SocketAddrV4::new(B, 7001),
            2000,
            20_000,
            epoch,
            Duration::from_secs(5),
        );
        let got = receiver.join().unwrap();
        let done = engine.stop();
        assert_eq!(sent, 2000);
        // n = 2000, p = 0.8 delivered: mean 1600, sd 17.9; accept +-5 sd.
        let n = got.len() as i64;
        let fastest = got.iter().map(|a| a.one_way).min().unwrap();
        eprintln!("delivered {n} of 2000 at 20 % loss, the fastest in {fastest:?} (want 1 ms)");
        assert!(
            (1600 - 90..=1600 + 90).contains(&n),
            "delivered {n} of 2000, expected 1600 +- 90"
        );
        assert_eq!(done.sum(|c| &c.dropped) as i64, 2000 - n);
        assert!(
            fastest >= Duration::from_micros(1_000 - 17) && fastest < Duration::from_millis(2),
            "the fastest datagram took {fastest:?}, want 1 ms to 2 ms"
        );
    });
}

#[test]
fn pair_order_is_kept_while_its_delay_changes() {
    in_netns(&ADDRS, || {
        let params = Arc::new(RwLock::new(PairParams::default()));
        let shared = Arc::clone(&params);
        let engine = start_engine(cfg(3), PREFIX, move |_, _| *shared.read().unwrap());
        let rx = udp(B, 7002);
        let epoch = Instant::now();
        let sender = std::thread::spawn(move || {
            flood(
                A,
                SocketAddrV4::new(B, 7002),
                3000,
                10_000,
                epoch,
                Duration::from_secs(5),
            )
        });
        // Alternate 30 ms and 0 ms every 20 ms while the flood runs: without the per-pair
        // rule, packets sent at 0 ms would overtake those held for 30 ms.
        let start = Instant::now();
        while !sender.is_finished() && start.elapsed() < Duration::from_secs(5) {
            let d = params.read().unwrap().delay_us;
            params.write().unwrap().delay_us = if d == 0 { 30_000 } else { 0 };
            std::thread::sleep(Duration::from_millis(20));
        }
        let sent = sender.join().unwrap();
        let got = receive_all(&rx, sent, epoch);
        let done = engine.stop();
        assert_eq!(
            got.len() as u64,
            sent,
            "datagrams lost without configured loss"
        );
        let seqs: Vec<u64> = got.iter().map(|a| a.seq).collect();
        let first_bad = seqs.windows(2).position(|w| w[0] >= w[1]);
        assert_eq!(first_bad, None, "order broken at {first_bad:?}");
        assert!(done.sum(|c| &c.delayed) > 0);
        eprintln!("{sent} datagrams in order; engine CPU {:?}", done.cpu);
    });
}

#[test]
fn nothing_is_left_once_the_engine_is_gone() {
    in_netns(&ADDRS, || {
        let rules_before = run("iptables", &["-t", "mangle", "-S"]);
        let engine = start_engine(
            cfg(4),
            PREFIX,
            constant(PairParams {
                delay_us: 5_000,
                loss: 0.0,
            }),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let echo = echo_server(B, 7003, Arc::clone(&stop));
        let to = SocketAddrV4::new(B, 7003);
        let shaped = rtts(A, to, 5, PROBE_TIMEOUT);
        let bound =
            std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue").unwrap();
        let done = engine.stop();
        let unshaped = rtts(A, to, 5, PROBE_TIMEOUT);
        stop.store(true, Relaxed);
        echo.join().unwrap();
        assert_eq!(
            shaped.len(),
            5,
            "probes lost; engine {:?}",
            done.counters[0]
        );
        assert_min_rtt(&shaped, Duration::from_millis(10));
        assert_on_time(&done.counters[0]);
        assert!(
            bound
                .lines()
                .any(|l| l.split_whitespace().next() == Some("4")),
            "queue 4 not bound: {bound}"
        );
        assert_eq!(
            run("iptables", &["-t", "mangle", "-S"]),
            rules_before,
            "a rule outlived the engine"
        );
        let queues =
            std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue").unwrap();
        assert_eq!(queues, "", "a queue stayed bound after the engine stopped");
        eprintln!("unshaped rtts {unshaped:?}");
        assert_eq!(
            unshaped.len(),
            5,
            "traffic blocked after the engine stopped"
        );
        assert!(
            unshaped.iter().all(|r| *r < Duration::from_millis(5)),
            "still delayed: {unshaped:?}"
        );
        // Dropped without `stop`, as when a test or its caller panics: the rule goes too.
        drop(start_engine(
            cfg(4),
            PREFIX,
            constant(PairParams::default()),
        ));
        assert_eq!(
            run("iptables", &["-t", "mangle", "-S"]),
            rules_before,
            "a rule outlived a dropped engine"
        );
    });
}

#[test]
fn a_queue_taken_by_another_engine_is_refused_in_one_line() {
    in_netns(&ADDRS, || {
        let first = Engine::new(cfg(5), constant(PairParams::default())).unwrap();
        let second = Engine::new(cfg(5), constant(PairParams::default()));
        let msg = second
            .err()
            .expect("second engine on queue 5 must fail")
            .to_string();
        drop(first);
        assert!(!msg.contains('\n'), "not one line: {msg}");
        assert!(msg.starts_with("NFQUEUE queue 5: bind failed"), "{msg}");
        assert!(msg.contains("another process may be bound"), "{msg}");
        // Once the first engine is gone the queue is free again.
        assert!(Engine::new(cfg(5), constant(PairParams::default())).is_ok());
    });
}

#[test]
fn balanced_queues_share_the_pairs_and_keep_each_in_order() {
    const PAIRS: u8 = 16;
    let addrs: Vec<String> = (1..=PAIRS)
        .map(|i| format!("10.77.0.{i}/32"))
        .chain(["10.77.1.1/32".to_string()])
        .collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    in_netns(&addrs, || {
        let params = PairParams {
            delay_us: 2_000,
            loss: 0.0,
        };
        let engines = start_engines(cfg(20), 20..=21, PREFIX, constant(params));
        let epoch = Instant::now();
        let flows: Vec<_> = (1..=PAIRS)
            .map(|i| {
                let (src, port) = (Ipv4Addr::new(10, 77, 0, i), 7100 + u16::from(i));
                let rx = udp(B, port);
                let receiver = std::thread::spawn(move || {
                    realtime(MEASURE);
                    receive_all(&rx, 200, epoch)
                });
                let to = SocketAddrV4::new(B, port);
                let sender = std::thread::spawn(move || {
                    flood(src, to, 200, 2_000, epoch, Duration::from_secs(5))
                });
                (sender, receiver)
            })
            .collect();
        for (i, (sender, receiver)) in flows.into_iter().enumerate() {
            let sent = sender.join().unwrap();
            let seqs: Vec<u64> = receiver.join().unwrap().iter().map(|a| a.seq).collect();
            assert_eq!(
                seqs,
                (0..sent).collect::<Vec<_>>(),
                "pair {i}: lost or out of order"
            );
        }
        let done = engines.stop();
        let per_queue: Vec<u64> = done
            .counters
            .iter()
            .map(|c| c.packets.load(Relaxed))
            .collect();
        assert_eq!(per_queue.iter().sum::<u64>(), 200 * u64::from(PAIRS));
        assert!(
            per_queue.iter().all(|&n| n > 0),
            "one queue got nothing: {per_queue:?}"
        );
    });
}
