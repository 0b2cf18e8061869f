//! The netem shaping backend on a real kernel: this host's kernel has no `sch_netem`, so
//! `p2plab up --shaping netem` runs inside Debian's stock kernel under qemu. Asserted: the
//! HTB/netem tree exists, the RTT between nodes of two groups is twice the configured one-way
//! delay (and within groups twice the access latencies only), run-time changes (`p2plab
//! change`: a pair's delay, a node's latency, cut and restore) take effect, and `down` leaves the
//! addresses, links and qdiscs as they were before `up`.
//! The kernel comes from `.ci/vmtest-kernel` (run by `.ci/install`); see crate `vmtest`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use vmtest::{Rtt, Vm};

/// Access latency 5 ms at each end, 20 ms between groups a and b, none within a group.
const TOPOLOGY: &str = "\
address_plan:
  base: 10.60.0.0/16
profiles:
  p:
    up: 2mbit
    down: 8mbit
    latency: 5ms
    loss: 0%
    queue: 100
defaults:
  profile: p
  delay: 20ms
groups:
  - name: a
    nodes: 2
  - name: b
    nodes: 2
";
/// One-way delays the link model gives: L(s) + G(a,b) + L(d), and L(s) + L(d).
const BETWEEN_GROUPS_MS: f64 = 30.0;
const WITHIN_GROUP_MS: f64 = 10.0;
/// After `change set_delay from=a to=b delay=60ms` (one direction) and `change set_link a-1
/// latency=10ms`: a-1 -> b-1 is 10 + 60 + 5 ms, back 5 + 20 + 10 ms.
const CHANGED_RTT_MS: f64 = 110.0;
/// TCG timing is coarse: how far above the configured RTT a minimum may lie.
const SLACK_MS: f64 = 40.0;

/// Runs the script's commands, each output under a `== name` line. The address plan puts
/// a-1, a-2 at 10.60.0.1, .2 and b-1 at 10.60.0.5 (`p2plab plan`).
const SCRIPT: &str = r#"
section() { name=$1; shift; echo "== $name"; "$@" 2>&1 || echo "!! $name failed: exit $?"; }
net_state() { ip -o addr show; ip -o link show; tc qdisc show; }
section before net_state
section doctor p2plab doctor
section up p2plab up /root/topo.yaml --shaping netem
section status p2plab status default
section qdiscs tc qdisc show
section classes sh -c 'for dev in $(ls /sys/class/net); do tc class show dev $dev; done'
section between ping -c 5 -i 0.2 -I 10.60.0.1 10.60.0.5
section within ping -c 5 -i 0.2 -I 10.60.0.1 10.60.0.2
section change sh -c 'p2plab change set_delay from=a to=b delay=60ms && p2plab change set_link a-1 latency=10ms'
section changed ping -c 5 -i 0.2 -I 10.60.0.1 10.60.0.5
section cut sh -c 'p2plab change cut a-1 && { ping -c 3 -W 1 -I 10.60.0.1 10.60.0.5; true; }'
section restored sh -c 'p2plab change restore a-1 && ping -c 3 -i 0.2 -I 10.60.0.1 10.60.0.5'
section down p2plab down default
section after net_state
"#;

#[test]
fn netem_backend_builds_the_tree_and_delays_by_the_link_model() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topo.yaml");
    std::fs::write(&topology, TOPOLOGY).unwrap();
    let out = Vm::builder()
        .binary(p2plab())
        .binary("/usr/sbin/tc")
        .binary("/usr/sbin/ip")
        .file(&topology, "/root/topo.yaml")
        .script(SCRIPT)
        .timeout(Duration::from_secs(180))
        .run()
        .unwrap();
    let s = sections(&out.stdout);
    let failed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("!! "))
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", out.stdout);

    assert!(
        s["doctor"].contains("will use the netem backend"),
        "{}",
        s["doctor"]
    );
    assert!(s["status"].contains("backend netem"), "{}", s["status"]);
    assert!(s["qdiscs"].contains("qdisc htb"), "no HTB: {}", s["qdiscs"]);
    assert!(
        s["qdiscs"].contains("qdisc netem"),
        "no netem: {}",
        s["qdiscs"]
    );
    // Every node has its own upload (2 mbit) and download (8 mbit) class.
    for rate in ["rate 2Mbit ", "rate 8Mbit "] {
        let classes = s["classes"].lines().filter(|l| l.contains(rate)).count();
        assert_eq!(classes, 4, "HTB classes with {rate}: {}", s["classes"]);
    }

    for (section, configured) in [
        ("between", 2.0 * BETWEEN_GROUPS_MS),
        ("within", 2.0 * WITHIN_GROUP_MS),
        ("changed", CHANGED_RTT_MS),
    ] {
        let rtt = Rtt::from_ping(&s[section]).expect(&s[section]);
        println!("{section}: configured RTT {configured} ms, measured {rtt:?}");
        assert!(
            rtt.min_ms >= configured,
            "{section}: RTT below {configured} ms: {rtt:?}"
        );
        assert!(
            rtt.min_ms < configured + SLACK_MS,
            "{section}: RTT far above {configured} ms: {rtt:?}"
        );
    }
    // A cut node answers nothing; restored, it answers again.
    let replies = |section: &str| s[section].matches("bytes from").count();
    assert_eq!(replies("cut"), 0, "{}", s["cut"]);
    assert_eq!(replies("restored"), 3, "{}", s["restored"]);
    assert_eq!(s["after"], s["before"], "down left something behind");
}

/// The p2plab binary to put into the guest: this package's, built for this test.
fn p2plab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_p2plab"))
}

/// `== name` headed sections of the script's output.
fn sections(stdout: &str) -> HashMap<&str, String> {
    let mut map: HashMap<&str, String> = HashMap::new();
    let mut current = "";
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = name;
        } else {
            map.entry(current)
                .or_default()
                .push_str(&format!("{line}\n"));
        }
    }
    map
}
