//! One topology over two hosts: two network namespaces joined by a veth pair stand for two
//! machines, each runs `p2plab up --dev <its veth> --local <its group> --route <the other
//! group>=<the other host>`. Across the hosts the link model holds as on one host: the RTT
//! from a node of a to a node of b is `2 x (L(a) + G(a,b) + L(b))`, a's node downloads at
//! D(a) and uploads at U(a), and after `down` each host shows what it showed before `up`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A work directory holding topology `yaml` as `t.yaml`.
fn with_topology(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let topology = work.path().join("t.yaml");
    std::fs::write(&topology, yaml).unwrap();
    (work, topology)
}

#[test]
fn the_link_model_holds_between_nodes_on_two_hosts() {
    let (work, topology) = with_topology(
        "profiles:
  pa: {up: 1mbit, down: 2mbit, latency: 5ms}
  pb: {up: 100mbit, down: 100mbit, latency: 10ms}
groups:
  - {name: a, nodes: 2, profile: pa, prefix: 10.91.1.0/24}
  - {name: b, nodes: 2, profile: pb, prefix: 10.91.2.0/24}
delays:
  - {from: a, to: b, delay: 20ms}
",
    );
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/two_hosts");
    let out = Command::new("sh")
        .arg(here.join("hosts.sh"))
        .env("P2PLAB", env!("CARGO_BIN_EXE_p2plab"))
        .env("T", &topology)
        .env("W", work.path())
        .env("HERE", &here)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let figure = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}\n{stderr}"))
    };
    let rtt = figure("rtt_ms");
    eprintln!("a1 -> b1 across hosts: RTT {rtt} ms (want 70)");
    assert!(
        (70.0..71.0).contains(&rtt),
        "RTT {rtt} ms, want 70\n{stderr}"
    );
    let down = figure("down_bytes_per_s") * 8.0 / 1e6;
    let up = figure("up_bps") / 1e6;
    eprintln!("a1 across hosts: download {down:.3} mbit/s of 2, upload {up:.3} of 1");
    assert!((1.6..=2.06).contains(&down), "download {down} mbit/s of 2");
    // TCP goodput: 1448 bytes of payload per 1514 shaped (IP, TCP and Ethernet headers)
    assert!((0.94..=1.03).contains(&up), "upload {up} mbit/s of 1");
    for line in ["download identical", "host A as before", "host B as before"] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}\n{stderr}");
    }
}

/// A placement that cannot work is refused in one line before anything changes.
#[test]
fn a_placement_without_routes_is_refused() {
    let (work, topology) = with_topology(
        "profiles: {p: {up: 1mbit, down: 1mbit, latency: 5ms}}\ndefaults: {profile: p}\ngroups:\n  - {name: a, nodes: 2, prefix: 10.92.1.0/24}\n  - {name: b, nodes: 2, prefix: 10.92.2.0/24}\n",
    );
    let up = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_p2plab"))
            .args(["up", topology.to_str().unwrap(), "--dry-run"])
            .args(args)
            .env("P2PLAB_RUN_DIR", work.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(
        up(&["--local", "a"]),
        "group b has no node on this host (--local) and no --route b=GATEWAY: its nodes would be unreachable\n"
    );
    assert_eq!(
        up(&["--local", "a", "--route", "a=172.31.9.2"]),
        "--route a=172.31.9.2: group a has nodes on this host (--local); route only groups on other hosts\n"
    );
    assert_eq!(
        up(&["--local", "c"]),
        format!(
            "--local c: {} has no group c; its groups are a, b\n",
            topology.display()
        )
    );
    assert_eq!(
        up(&["--dev", "lo0", "--shaping", "netem"]),
        "the netem backend applies delays on lo only (one host); with --dev lo0 use --shaping nfqueue\n"
    );
    assert!(
        up(&["--route", "b=nowhere"]).contains("`nowhere` in `b=nowhere` is not an IPv4 address")
    );
}
