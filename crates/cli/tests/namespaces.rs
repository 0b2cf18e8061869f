//! A network namespace is a world of its own: two namespaces hold networks of the same
//! name and the same addresses side by side, with one state directory base for both.
//! `status` in one lists only its own networks, `down` in one leaves the other's addresses,
//! qdiscs, rules and delay engine exactly as they were (the other's nodes still ping each
//! other through its engine, and its own `down` then removes everything, its namespace's
//! state directory included), and runs of one experiment in two namespaces at once both
//! finish and leave nothing behind.

mod common;

use common::{entries, in_netns, no_cgroups_left, no_state_left, only_dir, succeeded};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_p2plab");

/// Two nodes in 10.77.0.0/24 with a 5 ms access latency (so the nfqueue backend runs a
/// delay engine).
const TOPOLOGY: &str = "address_plan: {base: 10.77.0.0/24}\nprofiles: {p: {up: 10mbit, down: 10mbit, latency: 5ms}}\ndefaults: {profile: p}\ngroups: [{name: a, nodes: 2}]\n";

/// Two named network namespaces (`lo` up in each); every network still up in them is
/// taken down and both are deleted when this is dropped, also after a failed assertion.
struct Twins {
    names: [String; 2],
    base: tempfile::TempDir,
}

impl Twins {
    fn new(tag: &str) -> Twins {
        let names = [format!("p2plab-{tag}-a"), format!("p2plab-{tag}-b")];
        for n in &names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
            run("ip", &["netns", "add", n]);
            run("ip", &["-n", n, "link", "set", "lo", "up"]);
        }
        Twins {
            names,
            base: tempfile::tempdir().unwrap(),
        }
    }

    /// `p2plab ARGS` in namespace `i`, with the one state directory base of both.
    fn p2plab(&self, i: usize, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.names[i]))
            .arg(BIN)
            .args(args)
            .env("P2PLAB_RUN_DIR", self.base.path())
            .output()
            .unwrap()
    }

    /// `CMD ARGS` in namespace `i`, checked to succeed; its output.
    fn exec(&self, i: usize, cmd: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.names[i], cmd];
        all.extend(args);
        run("ip", &all)
    }

    /// Everything `up` may touch in namespace `i`, as the stock tools print it.
    fn snapshot(&self, i: usize) -> String {
        [
            ("ip", &["-d", "addr", "show"][..]),
            ("ip", &["-d", "link", "show"]),
            ("tc", &["qdisc", "show"]),
            ("iptables", &["-w", "-t", "mangle", "-S"]),
        ]
        .iter()
        .map(|(cmd, args)| self.exec(i, cmd, args))
        .collect()
    }
}

impl Drop for Twins {
    fn drop(&mut self) {
        for (i, n) in self.names.iter().enumerate() {
            let _ = self.p2plab(i, &["down", "twin"]);
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `cmd args`, checked to succeed; its stdout.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    ok(out)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names in the network list of `p2plab status`.
fn listed(status: &str) -> Vec<String> {
    status
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn networks_of_one_name_and_range_in_two_namespaces_never_meet() {
    let twins = Twins::new("ns");
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("t.yaml");
    std::fs::write(&topology, TOPOLOGY).unwrap();
    let topology = topology.to_str().unwrap();
    let before = [twins.snapshot(0), twins.snapshot(1)];
    for i in 0..2 {
        let up = ["up", topology, "--name", "twin", "--shaping", "nfqueue"];
        ok(twins.p2plab(i, &up));
    }
    for i in 0..2 {
        assert_eq!(listed(&ok(twins.p2plab(i, &["status"]))), ["twin"]);
    }
    let a_up = twins.snapshot(0);
    assert_ne!(a_up, before[0]);

    ok(twins.p2plab(1, &["down", "twin"]));
    assert_eq!(twins.snapshot(1), before[1]);
    assert!(listed(&ok(twins.p2plab(1, &["status"]))).is_empty());
    assert_eq!(
        twins.snapshot(0),
        a_up,
        "down in one namespace changed the other"
    );
    assert_eq!(listed(&ok(twins.p2plab(0, &["status"]))), ["twin"]);
    // the other namespace's delay engine still runs: its nodes reach each other, 2 x 10 ms
    let ping = twins.exec(
        0,
        "ping",
        &["-c", "3", "-i", "0.2", "-I", "10.77.0.1", "10.77.0.2"],
    );
    let min: f64 = ping
        .split(" = ")
        .nth(1)
        .and_then(|v| v.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no RTT in ping's output: {ping}"));
    assert!((20.0..21.0).contains(&min), "RTT {min} ms, want 20");

    ok(twins.p2plab(0, &["down", "twin"]));
    assert_eq!(twins.snapshot(0), before[0]);
    no_state_left(twins.base.path());
    // each namespace's directory went with its last network (engine logs included)
    assert_eq!(left_in(twins.base.path()), [".lock"]);
}

/// The names of the entries of directory `dir`, sorted.
fn left_in(dir: &Path) -> Vec<String> {
    let names = entries(dir)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_owned()));
    names.map(|n| n.to_string_lossy().into_owned()).collect()
}

#[test]
fn runs_of_one_experiment_in_two_namespaces_both_finish() {
    let state = tempfile::tempdir().unwrap();
    let work = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let experiment = format!(
        "name: twin-run\ntopology:\n{}roles:\n  - {{name: sleeper, nodes: a, command: sleep 1}}\nstop: {{exited: [sleeper], after: 60s}}\n",
        TOPOLOGY
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    for w in &work {
        std::fs::write(w.path().join("exp.yaml"), &experiment).unwrap();
    }
    let run = |cwd: &Path| {
        in_netns(
            "\"$P2PLAB\" run --quiet --shim \"$SHIM\" --shaping nfqueue exp.yaml",
            state.path(),
            cwd,
        )
    };
    let outs = std::thread::scope(|s| {
        let runs: Vec<_> = work.iter().map(|w| s.spawn(|| run(w.path()))).collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (out, w) in outs.iter().zip(&work) {
        succeeded(out);
        let results = results::load(&only_dir(&w.path().join("results"))).unwrap();
        let codes: Vec<Option<i32>> = results.processes.iter().map(|p| p.exit_code).collect();
        assert_eq!(codes, [Some(0), Some(0)]);
    }
    no_state_left(state.path());
    no_cgroups_left("twin-run");
    assert_eq!(left_in(state.path()), [".lock"]);
}
