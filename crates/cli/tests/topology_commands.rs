//! `p2plab check`, `plan` and `completions` as a user runs them: exit codes, the error
//! lines on stderr, and the JSON that scripts read.

use std::path::PathBuf;
use std::process::{Command, Output};

fn p2plab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap()
}

#[test]
fn check_accepts_every_shipped_topology() {
    for file in ["quickstart", "p2plab-bittorrent", "p2plab-5760"] {
        let out = p2plab(&["check", &format!("topologies/{file}.yaml")]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("valid"), "{text}");
    }
    let out = p2plab(&["check", "topologies/p2plab-5760.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("8 groups, 5760 nodes"), "{text}");
    assert!(text.contains("min 15ms, median 80ms, max 160ms"), "{text}");
}

#[test]
fn check_fails_with_every_error_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "profiles:\n  p: {up: 1mbit, down: 2mbit}\ngroups:\n  - {name: a, nodes: 2, profile: x}\n  - {name: b, nodes: 0, profile: p}\n").unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let f = file.display();
    assert_eq!(
        lines,
        [
            format!("{f}:4:34: groups[0].profile: unknown profile `x`; use one of: p"),
            format!("{f}:5:22: groups[1].nodes: expected a node count of at least 1 or a list of node names; write e.g. `nodes: 10` or `nodes: [tracker, seed]`"),
            format!("2 errors in {f}"),
        ]
    );
}

#[test]
fn plan_json_lists_every_node() {
    let out = p2plab(&["plan", "topologies/quickstart.yaml", "--format", "json"]);
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    assert_eq!(
        nodes[0],
        serde_json::json!({"name": "east-1", "ip": "10.10.0.1", "group": "east", "up_bps": 20_000_000,
            "down_bps": 20_000_000, "latency_us": 500, "loss": 0.0, "queue_packets": 1000})
    );
    assert_eq!(plan["groups"][1]["name"], "west");
    assert_eq!(
        plan["groups"][1]["delay_us"],
        serde_json::json!([10_000, 0])
    );
}

#[test]
fn plan_table_has_one_line_per_node_and_completions_work() {
    let out = p2plab(&["plan", "topologies/p2plab-bittorrent.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1 + 165);
    assert!(text
        .lines()
        .any(|l| l.starts_with("tracker ") && l.contains("10.20.0.1 ")));
    let out = p2plab(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("p2plab"));
}

#[test]
fn check_validates_an_experiment_with_its_topology() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.yaml");
    let topo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../topologies/quickstart.yaml");
    let body = format!("topology: {}\nroles:\n  - {{name: peer, nodes: west, command: 'sleep {{index}}', start: {{every: 1s}}}}\nstop: {{after: 1m}}\n", topo.display());
    std::fs::write(&file, &body).unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("role peer             10 processes, starting 0.00s .. 9.00s"),
        "{text}"
    );

    std::fs::write(&file, body.replace("sleep", "no-such-program-p2plab")).unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(":3:40: roles[0].command: program `no-such-program-p2plab` is not installed"),
        "{err}"
    );
}
