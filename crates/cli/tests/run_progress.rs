//! What `p2plab run` shows of its progress on stderr when it is not a terminal (a log, CI):
//! every phase as it begins (network up, prepare, starting, running until the stop rule
//! with its countdown, ended, teardown), the real starts, and a line at least every 2 s;
//! every second with `-v`; nothing with `-q`.

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

/// Runs [`SLEEPERS`] as experiment `name` with `flags`; its stderr.
fn run(name: &str, flags: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let out = leaves_nothing(
        work.path(),
        &format!("{name}.yaml"),
        SLEEPERS,
        &format!("\"$P2PLAB\" run {flags} --shim \"$SHIM\" {name}.yaml"),
    );
    no_cgroups_left(name);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The longest time between two progress lines of `stderr`, after checking that there
/// are at least `n`.
fn longest_silence(stderr: &str, n: usize) -> f64 {
    let times = times(stderr);
    assert!(times.len() >= n, "{stderr}");
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

#[test]
fn progress_names_each_phase_and_speaks_every_two_seconds() {
    let stderr = run("cli15-progress", "");
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
    assert!(stderr.contains("or 1m (57s left)"), "{stderr}");
    // a line every 2 s (the event loop looks every 0.5 s; a busy machine adds to that)
    let silence = longest_silence(&stderr, 4);
    assert!(silence <= 3.0, "a silence of {silence} s:\n{stderr}");
}

#[test]
fn verbose_progress_speaks_every_second() {
    let stderr = run("cli15-verbose", "-v");
    let silence = longest_silence(&stderr, 6);
    assert!(silence <= 1.9, "a silence of {silence} s:\n{stderr}");
    let quiet = run("cli15-quiet", "-q");
    assert_eq!(quiet, "", "-q shows nothing on stderr");
}
