//! The nfqueue backend end to end, as a user runs it: `p2plab up` starts the delay engine
//! and the NFQUEUE rules in a scratch namespace; a UDP echo between nodes sees
//! `RTT = 2 x (L(s) + G(a,b) + L(d))` within 1 ms, inside a group and across groups; loss
//! follows `1 - (1-p(s))(1-p(d))` within binomial bounds; `down` stops the engine and
//! removes the rules.

use netctl::scratch::in_new_netns;
use std::net::UdpSocket;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_p2plab");

fn topology(latency: &str, loss: &str) -> String {
    format!(
        "address_plan:\n  base: 10.70.0.0/16\nprofiles:\n  p:\n    up: 100mbit\n    down: 100mbit\n    latency: {latency}\n    loss: {loss}\n    queue: 1000\ndefaults:\n  profile: p\n  delay: 10ms\ngroups:\n  - name: a\n    nodes: 2\n  - name: b\n    nodes: 2\n"
    )
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Median UDP round trip from `src` to an echo on `dst`, in ms.
fn rtt_ms(src: &str, dst: &str) -> f64 {
    let echo = UdpSocket::bind(format!("{dst}:9000")).unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..20 {
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            echo.send_to(&buf[..n], from).unwrap();
        }
    });
    let s = UdpSocket::bind(format!("{src}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut v = vec![];
    for i in 0..20u8 {
        let start = Instant::now();
        s.send_to(&[i], format!("{dst}:9000")).unwrap();
        s.recv(&mut [0u8; 64]).unwrap();
        v.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    t.join().unwrap();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn scratch(f: impl FnOnce(&std::path::Path, &std::path::Path) + Send + 'static) {
    in_new_netns(move || {
        assert!(Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        let run = tempfile::tempdir().unwrap();
        let topo = tempfile::tempdir().unwrap();
        f(run.path(), topo.path())
    })
    .expect("tests run as root");
}

#[test]
fn rtt_is_twice_the_one_way_delay() {
    scratch(|run, dir| {
        let t = dir.join("t.yaml");
        std::fs::write(&t, topology("2ms", "0%")).unwrap();
        let p2plab = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .env("P2PLAB_RUN_DIR", run)
                .output()
                .unwrap()
        };
        let before = ok(Command::new("iptables")
            .args(["-w", "-t", "mangle", "-S"])
            .output()
            .unwrap());
        ok(p2plab(&["up", t.to_str().unwrap(), "--shaping", "nfqueue"]));
        // nodes: a = 10.70.0.1, .2; b = 10.70.0.5, .6 (group prefixes /30)
        let across = rtt_ms("10.70.0.1", "10.70.0.5");
        let inside = rtt_ms("10.70.0.1", "10.70.0.2");
        eprintln!(
            "RTT across groups {across:.2} ms (want 28), inside a group {inside:.2} ms (want 8)"
        );
        assert!((across - 28.0).abs() < 1.0, "across {across}");
        assert!((inside - 8.0).abs() < 1.0, "inside {inside}");
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("default.json")).unwrap()).unwrap();
        let pid = state["engine_pid"].as_u64().unwrap();
        ok(p2plab(&["down"]));
        // gone, or a zombie waiting for whoever inherited it (`up` has exited)
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "engine still running: {status}"
        );
        let after = ok(Command::new("iptables")
            .args(["-w", "-t", "mangle", "-S"])
            .output()
            .unwrap());
        assert_eq!(after, before);
    });
}

#[test]
fn loss_within_binomial_bounds() {
    scratch(|run, dir| {
        let t = dir.join("t.yaml");
        std::fs::write(&t, topology("0ms", "10%")).unwrap();
        let p2plab = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .env("P2PLAB_RUN_DIR", run)
                .output()
                .unwrap()
        };
        ok(p2plab(&["up", t.to_str().unwrap(), "--shaping", "nfqueue"]));
        let rx = UdpSocket::bind("10.70.0.5:9001").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let counter = std::thread::spawn(move || {
            let mut got = 0u32;
            while rx.recv(&mut [0u8; 16]).is_ok() {
                got += 1;
            }
            got
        });
        let tx = UdpSocket::bind("10.70.0.1:0").unwrap();
        const N: u32 = 4000;
        for i in 0..N {
            tx.send_to(&i.to_be_bytes(), "10.70.0.5:9001").unwrap();
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(2)); // stay below every queue limit
            }
        }
        let got = counter.join().unwrap();
        ok(p2plab(&["down"]));
        // one way: 1 - (1 - 0.1)(1 - 0)(1 - 0.1) = 0.19 lost; ±5 standard deviations
        let p = 0.81;
        let (mean, sd) = (N as f64 * p, (N as f64 * p * (1.0 - p)).sqrt());
        eprintln!("received {got} of {N} (expected {mean:.0} ± {sd:.1})");
        assert!(
            (got as f64 - mean).abs() < 5.0 * sd,
            "received {got}, expected {mean:.0} ± {:.0}",
            5.0 * sd
        );
    });
}
