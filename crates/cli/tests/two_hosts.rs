//! One topology over two hosts: two network namespaces joined by a veth pair stand for two
//! machines, each runs `p2plab up --dev <its veth> --local <its nodes> --route <the other
//! host's nodes>=<the other host>`, whole groups per host or groups split over both. Across
//! the hosts the link model holds as on one host: the RTT from a node of a to a node of b is
//! `2 x (L(a) + G(a,b) + L(b))` and between two nodes of a `2 x 2 L(a)`, a's node downloads
//! at D(a) and uploads at U(a), the topology's packet size holds on the veth and on `lo`,
//! and after `down` each host shows what it showed before `up`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The topology both tests use (and test `netem_backend`'s two hosts in qemu).
fn topology() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/two_hosts/topology.yaml")
}

/// Runs `hosts.sh` with each host's `--local` and `--route` options (a-1 on host A, b-1 on
/// host B) and checks what it measured; one at a time (they measure delays and rates).
fn link_model_holds(place_a: &str, place_b: &str) {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/two_hosts");
    let out = Command::new("sh")
        .arg(here.join("hosts.sh"))
        .env("P2PLAB", env!("CARGO_BIN_EXE_p2plab"))
        .env("T", topology())
        .env("W", work.path())
        .env("HERE", &here)
        .env("PLACE_A", place_a)
        .env("PLACE_B", place_b)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let figure = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}\n{stderr}"))
    };
    // the topology's packet size holds on both devices the nodes' packets pass
    assert!(
        stdout.contains("packets va mtu 1500 gso_max_size 1500 lo mtu 1500 gso_max_size 1500\n"),
        "va's GSO, lo's MTU and GSO while up:\n{stdout}"
    );
    for (key, pair, want) in [
        ("rtt_ms", "a-1 -> b-1", 70.0),
        ("rtt_in_group_ms", "a-1 -> a-2", 20.0),
    ] {
        let rtt = figure(key);
        eprintln!("{pair}: RTT {rtt} ms (want {want})");
        assert!(
            (want..want + 1.0).contains(&rtt),
            "{pair}: RTT {rtt} ms, want {want}\n{stderr}"
        );
    }
    let down = figure("down_bytes_per_s") * 8.0 / 1e6;
    let up = figure("up_bps") / 1e6;
    eprintln!("a-1 with b-1: download {down:.3} mbit/s of 2, upload {up:.3} of 1");
    assert!((1.6..=2.06).contains(&down), "download {down} mbit/s of 2");
    // TCP goodput: 1448 bytes of payload per 1514 shaped (IP, TCP and Ethernet headers)
    assert!((0.94..=1.03).contains(&up), "upload {up} mbit/s of 1");
    for line in ["download identical", "host A as before", "host B as before"] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}\n{stderr}");
    }
}

#[test]
fn the_link_model_holds_between_nodes_on_two_hosts() {
    link_model_holds(
        "--local a --route b=172.31.9.2",
        "--local b --route a=172.31.9.1",
    );
}

#[test]
fn the_link_model_holds_with_groups_split_over_two_hosts() {
    link_model_holds(
        "--local a[1],b[2] --route a[2],b[1]=172.31.9.2",
        "--local a[2],b[1] --route a[1],b[2]=172.31.9.1",
    );
}

/// A placement that cannot work is refused in one line before anything changes.
#[test]
fn a_placement_without_routes_is_refused() {
    let (work, topology) = (tempfile::tempdir().unwrap(), topology());
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
        "--route a=172.31.9.2: node a-1 is on this host (--local); route only nodes on other hosts\n"
    );
    assert_eq!(
        up(&["--local", "c"]),
        format!(
            "--local c ({}): `c` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`\n",
            topology.display()
        )
    );
    // a group split over hosts: each node of it elsewhere needs a route
    assert_eq!(
        up(&["--local", "a,b[1]"]),
        "node b-2 is neither on this host (--local) nor on a --route: it would be unreachable; add --route b[A-B]=GATEWAY for the nodes of b on other hosts\n"
    );
    assert_eq!(
        up(&["--local", "a", "--route", "b=172.31.9.2", "--route", "b[2]=172.31.9.3"]),
        "--route b=172.31.9.2 and --route b[2]=172.31.9.3 both hold node b-2; name each node's host once\n"
    );
    assert_eq!(
        up(&["--local", "a", "--route", "b[3]=172.31.9.2"]),
        "--route b[3]=172.31.9.2: `b[3]` is not a range of 1..2; write `b[A-B]` with 1 <= A <= B <= 2\n"
    );
    assert!(
        up(&["--route", "b=nowhere"]).contains("`nowhere` in `b=nowhere` is not an IPv4 address")
    );
}
