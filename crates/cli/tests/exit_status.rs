//! `p2plab`'s exit statuses for input it refuses, as the README states them: 2 for bad
//! input or usage (a topology or experiment file, a value on the command line, a node name
//! that is not in the network), 1 when the machine or its state refuses (a network that is
//! not up). Each command runs in a network namespace of its own, so that nothing it might
//! wrongly do reaches this machine.

use std::path::Path;
use std::process::Command;

/// A valid topology of two nodes in 172.31.27.0/24.
const TOPOLOGY: &str = "profiles: {p: {up: 1mbit, down: 1mbit}}\ndefaults: {profile: p}\naddress_plan: {base: 172.31.27.0/24}\ngroups: [{name: g, nodes: 2}]\n";

/// The exit status of `script` run by `sh` in a new network namespace (lo up) in `dir`,
/// with `$P2PLAB` the binary and state files under `dir/state`; and its stderr.
fn status(dir: &Path, script: &str) -> (Option<i32>, String) {
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &format!("ip link set lo up && {script}")])
        .env("P2PLAB", env!("CARGO_BIN_EXE_p2plab"))
        .env("P2PLAB_RUN_DIR", dir.join("state"))
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_exits_2_and_a_refusal_of_the_machine_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.yaml"), TOPOLOGY).unwrap();
    std::fs::write(d.join("bad.yaml"), TOPOLOGY.replace("nodes: 2", "nodes: 0")).unwrap();
    std::fs::write(
        d.join("exp.yaml"),
        "topology: t.yaml\nroles:\n  - {name: r, nodes: g, command: echo a: b}\n",
    )
    .unwrap();
    let two = [
        "\"$P2PLAB\" check bad.yaml",
        "\"$P2PLAB\" plan bad.yaml",
        "\"$P2PLAB\" up bad.yaml",
        "\"$P2PLAB\" run exp.yaml",
        "\"$P2PLAB\" up t.yaml --local nosuch",
        "\"$P2PLAB\" no-such-command",
        "\"$P2PLAB\" up t.yaml >/dev/null && \"$P2PLAB\" change cut nosuch",
        "\"$P2PLAB\" up t.yaml >/dev/null && \"$P2PLAB\" change set_link g up=fast",
    ];
    for script in two {
        let (code, stderr) = status(d, script);
        assert_eq!(code, Some(2), "{script}: {stderr}");
    }
    let (code, stderr) = status(d, "\"$P2PLAB\" change --name nosuch cut g-1");
    assert_eq!(code, Some(1), "{stderr}");
    let (code, stderr) = status(d, "\"$P2PLAB\" check t.yaml");
    assert_eq!(code, Some(0), "{stderr}");
}
