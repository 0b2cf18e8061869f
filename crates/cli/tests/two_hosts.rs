//! One topology over two hosts: two network namespaces joined by a veth pair stand for two
//! machines, each runs `p2plab up --dev <its veth> --local <its group> --route <the other
//! group>=<the other host>`. Across the hosts the link model holds as on one host: the RTT
//! from a node of a to a node of b is `2 x (L(a) + G(a,b) + L(b))`, a's node downloads at
//! D(a) and uploads at U(a), the topology's packet size holds on the veth and on `lo`, and
//! after `down` each host shows what it showed before `up`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The topology both tests use (and test `netem_backend`'s two hosts in qemu).
fn topology() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/two_hosts/topology.yaml")
}

#[test]
fn the_link_model_holds_between_nodes_on_two_hosts() {
    let work = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/two_hosts");
    let out = Command::new("sh")
        .arg(here.join("hosts.sh"))
        .env("P2PLAB", env!("CARGO_BIN_EXE_p2plab"))
        .env("T", topology())
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
    // the topology's packet size holds on both devices the nodes' packets pass
    assert!(
        stdout.contains("packets va mtu 1500 gso_max_size 1500 lo mtu 1500 gso_max_size 1500\n"),
        "va's GSO, lo's MTU and GSO while up:\n{stdout}"
    );
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
        "--route a=172.31.9.2: group a has nodes on this host (--local); route only groups on other hosts\n"
    );
    assert_eq!(
        up(&["--local", "c"]),
        format!(
            "--local c: {} has no group c; its groups are a, b\n",
            topology.display()
        )
    );
    assert!(
        up(&["--route", "b=nowhere"]).contains("`nowhere` in `b=nowhere` is not an IPv4 address")
    );
}
