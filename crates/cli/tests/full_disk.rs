//! Results on a disk that fills up: each test runs `p2plab run` in a network namespace and
//! a mount namespace of its own, its results directory on a small tmpfs mounted there
//! (private, gone with the namespace). A run whose disk fills mid-run still tears down,
//! prints its summary and says in one line which files lost what, and why; what was
//! written is whole. A disk with too little room refuses the run before anything is set
//! up.

mod common;

use common::{leaves_nothing, no_cgroups_left, only_dir};
use results::{Process, RunInfo};
use std::path::Path;
use std::process::Output;

/// Experiment `name`: `nodes` nodes of group `g` in `172.31.<net>.0/24`, then `body`
/// (roles and stop rule).
fn experiment(name: &str, net: u8, nodes: usize, body: &str) -> String {
    format!(
        "name: {name}\ntopology:\n  profiles: {{p: {{up: 10mbit, down: 10mbit}}}}\n  defaults: {{profile: p}}\n  address_plan: {{base: 172.31.{net}.0/24}}\n  groups: [{{name: g, nodes: {nodes}}}]\n{body}"
    )
}

/// Runs experiment `yaml` (written as `work/exp.yaml`) with its results on a tmpfs of
/// `size` mounted on `work/disk`, in a mount namespace of its own; copies `results/` to
/// `work/saved` before the tmpfs goes away. Checks that nothing was left behind.
fn run_on_tmpfs(work: &Path, yaml: &str, size: &str) -> Output {
    for d in ["disk", "saved"] {
        std::fs::create_dir(work.join(d)).unwrap();
    }
    let command = format!(
        "unshare -m sh -c 'mount -t tmpfs -o size={size} p2plab-test disk || exit 99
\"$P2PLAB\" run --quiet --shim \"$SHIM\" --results disk/results exp.yaml; rc=$?
if [ -e disk/results ]; then cp -r disk/results saved/; fi
exit $rc'"
    );
    leaves_nothing(work, "exp.yaml", yaml, &command)
}

#[test]
fn a_disk_that_fills_mid_run_loses_rows_whole_and_the_run_says_what_and_why() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    // 26 MiB passes the free-space check (16 MiB + 64 KiB for each of 130 processes);
    // g-1's log fills it at once, and the 129 rows to come at 2 s need more than the
    // page processes.csv has.
    let yaml = experiment(
        "full-disk-run",
        61,
        130,
        "roles:
  - {name: filler, nodes: g-1, command: head -c 64M /dev/zero}
  - {name: late, nodes: 'g[2-130]', command: 'true', start: {at: 2s}}
stop: {exited: [late], after: 60s}
",
    );
    let out = run_on_tmpfs(work, &yaml, "26M");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let context = format!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{context}");
    no_cgroups_left("full-disk-run");

    // The summary, from memory: every process, although the file lost rows.
    assert!(stdout.contains("run full-disk-run:"), "{context}");
    assert!(
        stdout.contains("130 processes: 129 exited ok, 1 failed"),
        "{context}"
    );
    let lost: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("are incomplete"))
        .collect();
    assert_eq!(lost.len(), 1, "one line says what was lost: {context}");
    let lost = lost[0];
    for said in [
        "processes.csv lost its rows from the one of g-",
        "run.json still says the run is unfinished",
        "No space left on device",
    ] {
        assert!(lost.contains(said), "`{said}` in: {lost}");
    }
    assert!(!context.contains("writable"), "no hint about permissions");

    // `run.json` is the whole one written at the start; every row written is whole; no
    // temporary file.
    let saved = only_dir(&work.join("saved/results"));
    let text = std::fs::read_to_string(saved.join("run.json")).unwrap();
    let run: RunInfo = serde_json::from_str(&text).unwrap();
    assert!(run.stopped.starts_with("unfinished: "), "{}", run.stopped);
    let mut reader = csv::Reader::from_path(saved.join("processes.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>()[..4],
        ["node", "role", "group", "ip"]
    );
    let rows: Vec<Process> = reader.deserialize().map(Result::unwrap).collect();
    assert!(rows.len() < 130, "some rows were lost: {}", rows.len());
    for entry in std::fs::read_dir(&saved).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().ends_with(".tmp"),
            "{name:?} is left"
        );
    }
}

#[test]
fn a_disk_with_too_little_room_is_refused_before_anything_is_set_up() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let body = "roles:\n  - {name: r, nodes: g, command: 'true'}\nstop: {after: 10s}\n";
    let out = run_on_tmpfs(work, &experiment("no-room-run", 62, 2, body), "8M");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("only 8.0 MiB free for the results in disk/results; a run of 2 processes needs 16.1 MiB (16.0 MiB and 64 KiB per process)"),
        "{stderr}"
    );
    assert!(
        !work.join("saved/results").exists(),
        "no results directory is made"
    );
    no_cgroups_left("no-room-run");
}
