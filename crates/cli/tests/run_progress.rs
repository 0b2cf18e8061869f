//! What `p2plab run` shows of its progress on stderr when it is not a terminal (a log, CI):
//! every phase as it begins (network up, prepare, starting, running until the stop rule
//! with its countdown, ended, teardown), the real starts, and a line at least every 2 s.

mod common;

use common::{leaves_nothing, no_cgroups_left};

/// 12 nodes that each sleep 5 s, all started at once; stopped when they have exited.
const SLEEPERS: &str = "topology:\n  profiles: {p: {up: 1mbit, down: 1mbit}}\n  defaults: {profile: p}\n  address_plan: {base: 172.31.215.0/24}\n  groups: [{name: g, nodes: 12}]\nroles:\n  - {name: sleeper, nodes: g, command: sleep 5}\nstop: {exited: [sleeper], after: 1m}\n";

/// The times of the `[   2.0s] ...` lines of `stderr`.
fn times(stderr: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split_once("s]"))
        .map(|(t, _)| t.trim().parse().unwrap())
        .collect()
}

#[test]
fn progress_names_each_phase_and_speaks_every_two_seconds() {
    let work = tempfile::tempdir().unwrap();
    let out = leaves_nothing(
        work.path(),
        "cli15-progress.yaml",
        SLEEPERS,
        "\"$P2PLAB\" run --shim \"$SHIM\" cli15-progress.yaml",
    );
    no_cgroups_left("cli15-progress");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let at = |what: &str| {
        stderr
            .find(what)
            .unwrap_or_else(|| panic!("no `{what}` in:\n{stderr}"))
    };
    let phases = [
        "p2plab: network up: 12 nodes",
        "p2plab: prepare: ",
        "] starting: 0/12 started",
        "] running until every sleeper exited, or 1m (",
        "] ended: 12/12 started, 0 running, 12 done, 0 failed",
        "p2plab: teardown",
    ];
    let places: Vec<usize> = phases.iter().map(|p| at(p)).collect();
    assert!(places.is_sorted(), "phases out of order:\n{stderr}");
    // the countdown counts down
    assert!(stderr.contains("or 1m (59s left)"), "{stderr}");
    let times = times(&stderr);
    assert!(times.len() >= 3, "{stderr}");
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] <= 2.6, "a silence of {pair:?}:\n{stderr}");
    }
}
