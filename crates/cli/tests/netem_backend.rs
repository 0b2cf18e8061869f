//! The netem shaping backend on a real kernel: this host's kernel has no `sch_netem`, so
//! `p2plab up --shaping netem` runs inside Debian's stock kernel under qemu. Asserted: the
//! HTB/netem tree exists, the RTT between nodes of two groups is twice the configured one-way
//! delay (and within groups twice the access latencies only), run-time changes (`p2plab
//! change`: a pair's delay, a node's latency, cut and restore) take effect, and `down` leaves the
//! addresses, links and qdiscs as they were before `up`; and the same over two hosts (two
//! namespaces of the guest joined by a veth pair), where traffic to the other host gets its
//! group delay in the pair stage on the veth's root.
//! The kernel comes from `.ci/vmtest-kernel` (run by `.ci/install`); see crate `vmtest`.

use std::collections::HashMap;
use std::path::Path;
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
/// How far above the configured RTT the smallest of 10 pings may lie: TCG and the guest's
/// scheduling added 1.0-2.5 ms here with the host at load 12, while a delay 5 ms too long
/// one way (10 ms on the round trip) or a group delay applied twice must fail.
const SLACK_MS: f64 = 5.0;

/// Runs the script's commands, each output under a `== name` line. The address plan puts
/// a-1, a-2 at 10.60.0.1, .2 and b-1 at 10.60.0.5 (`p2plab plan`).
const SCRIPT: &str = r#"
net_state() { ip -o addr show; ip -o link show; tc qdisc show; }
section before net_state
section doctor p2plab doctor
section up p2plab up /root/topo.yaml --shaping netem
section status p2plab status default
section qdiscs tc qdisc show
section classes sh -c 'for dev in $(ls /sys/class/net); do tc class show dev $dev; done'
section between ping -c 10 -i 0.2 -I 10.60.0.1 10.60.0.5
section within ping -c 10 -i 0.2 -I 10.60.0.1 10.60.0.2
section change sh -c 'p2plab change set_delay from=a to=b delay=60ms && p2plab change set_link a-1 latency=10ms'
section changed ping -c 10 -i 0.2 -I 10.60.0.1 10.60.0.5
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
    let s = boot(&topology, &[], SCRIPT);
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

    assert_rtts(
        &s,
        &[
            ("between", 2.0 * BETWEEN_GROUPS_MS),
            ("within", 2.0 * WITHIN_GROUP_MS),
            ("changed", CHANGED_RTT_MS),
        ],
    );
    // A cut node answers nothing; restored, it answers again.
    let replies = |section: &str| s[section].matches("bytes from").count();
    assert_eq!(replies("cut"), 0, "{}", s["cut"]);
    assert_eq!(replies("restored"), 3, "{}", s["restored"]);
    assert_eq!(s["after"], s["before"], "down left something behind");
}

/// One topology over two hosts (two network namespaces of the guest joined by a veth pair),
/// test `two_hosts`'s: groups a (`L` 5 ms) and b (`L` 10 ms) 20 ms apart, both split over the
/// hosts: a-1 and b-2 on host A, a-2 and b-1 on host B (`--dev <its veth> --local <its
/// nodes> --route <the other host's nodes>=<the other host>`).
const TWO_HOSTS_TOPOLOGY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/two_hosts/topology.yaml");
/// a-1 -> b-1 (across the hosts) and a-1 -> b-2 (both on host A): 5 + 20 + 10 ms each way;
/// a-1 -> a-2 (across): 5 + 5.
const BETWEEN_GROUPS_RTT_MS: f64 = 70.0;
const IN_GROUP_RTT_MS: f64 = 20.0;
/// After `change set_delay from=a to=b delay=40ms` on host A: 5 + 40 + 10 there, 35 back.
const CHANGED_BETWEEN_GROUPS_RTT_MS: f64 = 90.0;

/// Hosts A and B, `p2plab up` on each, pings from a-1 (10.91.1.1) to b-1 (10.91.2.1), a-2
/// (10.91.1.2) and b-2 (10.91.2.2), a run-time change of G(a,b) on A, `down` on each; each
/// host's addresses, routes, qdiscs and links before `up` and after `down`.
const TWO_HOSTS_SCRIPT: &str = r#"
on() { h=$1; shift; P2PLAB_RUN_DIR=/run/p2plab-$h ip netns exec $h "$@"; }
snap() { on $1 sh -c 'ip -4 -o addr show; ip -4 route show table all; tc qdisc show; ip -o link show | cut -d" " -f2,3,5'; }
ip netns add A && ip netns add B || echo "!! namespaces failed"
ip link add va netns A type veth peer name vb netns B || echo "!! veth failed"
ip -n A addr add 172.31.9.1/24 dev va
ip -n B addr add 172.31.9.2/24 dev vb
for h in A B; do ip -n $h link set lo up; done
ip -n A link set va up
ip -n B link set vb up
# the snapshots show link flags: wait (at most 5 s) until both ends have their carrier
for i in $(seq 50); do ip -n B link show vb | grep -q NO-CARRIER || break; sleep 0.1; done
section before_a snap A
section before_b snap B
up_a() { on A p2plab up /root/topo.yaml --name hosts --dev va --local 'a[1],b[2]' --route 'a[2],b[1]=172.31.9.2' --shaping netem; }
refused() { "$@" && echo "!! accepted: $*"; true; }
on A tc qdisc add dev va root handle 5: htb
section foreign_root refused up_a
on A tc qdisc del dev va root
section up_a up_a
section up_b on B p2plab up /root/topo.yaml --name hosts --dev vb --local 'a[2],b[1]' --route 'a[1],b[2]=172.31.9.1' --shaping netem
section va_qdiscs on A tc qdisc show dev va
section across on A ping -c 10 -i 0.2 -I 10.91.1.1 10.91.2.1
section in_group_across on A ping -c 10 -i 0.2 -I 10.91.1.1 10.91.1.2
section on_a on A ping -c 10 -i 0.2 -I 10.91.1.1 10.91.2.2
section change on A p2plab change --name hosts set_delay from=a to=b delay=40ms
section across_changed on A ping -c 10 -i 0.2 -I 10.91.1.1 10.91.2.1
section on_a_changed on A ping -c 10 -i 0.2 -I 10.91.1.1 10.91.2.2
section down_a on A p2plab down hosts
section down_b on B p2plab down hosts
section after_a snap A
section after_b snap B
"#;

#[test]
fn netem_backend_delays_by_the_link_model_across_two_hosts() {
    let s = boot(Path::new(TWO_HOSTS_TOPOLOGY), &["veth"], TWO_HOSTS_SCRIPT);
    // someone else's root qdisc is not replaced (down would delete it)
    assert!(
        s["foreign_root"].contains("va has a root qdisc of its own (htb 5:) that the netem backend's group delays would replace; delete it (tc qdisc del dev va root) or use --shaping nfqueue"),
        "{}",
        s["foreign_root"]
    );
    // the group delays of traffic leaving for host B are in va's root qdisc
    for kind in ["qdisc htb 1: root", "qdisc netem"] {
        assert!(s["va_qdiscs"].contains(kind), "{}", s["va_qdiscs"]);
    }
    assert_rtts(
        &s,
        &[
            ("across", BETWEEN_GROUPS_RTT_MS),
            ("in_group_across", IN_GROUP_RTT_MS),
            ("on_a", BETWEEN_GROUPS_RTT_MS),
            ("across_changed", CHANGED_BETWEEN_GROUPS_RTT_MS),
            ("on_a_changed", CHANGED_BETWEEN_GROUPS_RTT_MS),
        ],
    );
    assert_eq!(s["after_a"], s["before_a"], "down left something on host A");
    assert_eq!(s["after_b"], s["before_b"], "down left something on host B");
}

/// Put before every script: `section NAME CMD...` prints `== NAME`, then the command's
/// output, and `!! ` if it failed.
const SECTION: &str = r#"section() { name=$1; shift; echo "== $name"; "$@" 2>&1 || echo "!! $name failed: exit $?"; }"#;

/// Boots a guest holding p2plab (this package's, built for this test), `tc`, `ip`, the
/// extra kernel `modules` and `topology` as `/root/topo.yaml`, runs `script` (after
/// [`SECTION`]), and returns its sections; fails if a section says it failed (`!! `).
fn boot(topology: &Path, modules: &[&str], script: &str) -> HashMap<String, String> {
    let vm = modules.iter().fold(
        Vm::builder()
            .binary(env!("CARGO_BIN_EXE_p2plab"))
            .binary("/usr/sbin/tc")
            .binary("/usr/sbin/ip"),
        |vm, m| vm.module(m),
    );
    let out = vm
        .file(topology, "/root/topo.yaml")
        .script(&format!("{SECTION}\n{script}"))
        .timeout(Duration::from_secs(180))
        .run()
        .unwrap();
    let failed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("!! "))
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", out.stdout);
    sections(&out.stdout)
}

/// Each (section, configured RTT) pair: the section's ping has its minimum RTT at or
/// above the configured RTT, and less than `SLACK_MS` above it.
fn assert_rtts(s: &HashMap<String, String>, cases: &[(&str, f64)]) {
    for &(section, configured) in cases {
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
}

/// `== name` headed sections of the script's output.
fn sections(stdout: &str) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut current = "";
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = name;
        } else {
            map.entry(current.to_string())
                .or_default()
                .push_str(&format!("{line}\n"));
        }
    }
    map
}
