//! `p2plab run` as a user runs it, each in a network namespace of its own: the quick-start
//! BitTorrent swarm delivers identical files no faster than the links allow and writes its
//! report; Ctrl-C keeps the results; after `kill -9` of the controller, `p2plab down` ends
//! every process of the run; nothing is left behind. A `set_link` event halves a sender's
//! upload rate mid-run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shim cargo built beside this test (preload-shim is a dev-dependency).
fn shim() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .with_file_name("libp2plab_shim.so")
}

/// Runs `script` with `sh` in a new network namespace (lo up), `$P2PLAB` set to the
/// binary with `--shim`, state files in `state`.
fn in_netns(script: &str, state: &Path, cwd: &Path) -> Output {
    Command::new("unshare")
        .args(["-n", "sh", "-c", &format!("ip link set lo up && {script}")])
        .env("P2PLAB", env!("CARGO_BIN_EXE_p2plab"))
        .env("SHIM", shim())
        .env("P2PLAB_RUN_DIR", state)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// The script's stdout, after checking that it succeeded.
fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn only_dir(parent: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// No cgroup of a p2plab run is left in any hierarchy of this host.
fn no_cgroups_left(name: &str) {
    for h in ["unified", "cpu", "cpuacct", "memory", "freezer", "pids"] {
        let mut stack = vec![PathBuf::from("/sys/fs/cgroup").join(h)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let p = e.path();
                    assert!(
                        !p.to_string_lossy().contains(&format!("p2plab/{name}-")),
                        "left behind: {}",
                        p.display()
                    );
                    if p.components().count() < 12 {
                        stack.push(p);
                    }
                }
            }
        }
    }
}

/// Runs a BitTorrent example and checks what its users would: every leecher's file is the
/// source byte for byte, no completion beats the download link (`bytes` at `down_bps`),
/// the report is written, and nothing is left behind. Returns the results.
fn swarm_delivers(
    example: &str,
    bytes: usize,
    down_bps: f64,
    leechers: &[&str],
) -> report::Results {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let example = root().join(example);
    let out = in_netns(
        &format!(
            "\"$P2PLAB\" run --quiet --shim \"$SHIM\" {}",
            example.display()
        ),
        &state,
        work.path(),
    );
    let stdout = succeeded(&out);
    let dir = only_dir(&work.path().join("results"));
    assert!(
        stdout.contains(&format!("report:  {}", dir.join("report.html").display())),
        "{stdout}"
    );

    let source = std::fs::read(dir.join("data.bin")).unwrap();
    assert_eq!(source.len(), bytes);
    let results = report::load(&dir).unwrap();
    let lower_bound = bytes as f64 * 8.0 / down_bps;
    let done: Vec<_> = results
        .processes
        .iter()
        .filter(|p| leechers.contains(&p.role.as_str()))
        .collect();
    assert!(!done.is_empty());
    for p in &done {
        let got = std::fs::read(dir.join("nodes").join(&p.node).join("data.bin")).unwrap();
        assert!(got == source, "{}: file differs from the source", p.node);
        let t = p
            .completion_s()
            .unwrap_or_else(|| panic!("{} did not complete: {p:?}", p.node));
        assert!(
            t >= lower_bound,
            "{} finished in {t:.2} s, faster than its download link allows ({lower_bound:.2} s)",
            p.node
        );
        assert!(p.bytes_received.unwrap() >= bytes as u64, "{p:?}");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 2);
    let state_files = std::fs::read_dir(&state).into_iter().flatten().flatten();
    assert_eq!(
        state_files
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count(),
        0
    );
    no_cgroups_left(&results.run.name);
    results
}

#[test]
fn the_quickstart_swarm_delivers_identical_files_at_a_possible_speed() {
    let results = swarm_delivers("examples/quickstart.yaml", 4_000_000, 20e6, &["leecher"]);
    assert_eq!(
        results
            .processes
            .iter()
            .filter(|p| p.role == "leecher")
            .count(),
        18
    );
    // aria2c's progress, read from its output while it ran (it exits at once when done,
    // so its last summary may say 99 %).
    let progress: Vec<f64> = results
        .metrics
        .iter()
        .filter(|m| m.name == "progress")
        .map(|m| m.value)
        .collect();
    assert!(
        progress.iter().all(|v| (0.0..=100.0).contains(v)) && progress.iter().any(|&v| v >= 90.0),
        "{progress:?}"
    );
}

#[test]
fn the_bittorrent_example_mixes_aria2c_and_ctorrent_leechers() {
    let results = swarm_delivers(
        "examples/bittorrent/ci.yaml",
        2_000_000,
        8e6,
        &["leecher", "ctorrent"],
    );
    let count = |role: &str| results.processes.iter().filter(|p| p.role == role).count();
    assert_eq!((count("leecher"), count("ctorrent")), (22, 6));
    // every ctorrent said `P2PLAB complete=1` through its completion hook
    let complete = results
        .metrics
        .iter()
        .filter(|m| m.name == "complete" && m.role == "ctorrent")
        .count();
    assert_eq!(complete, 6);
}

const SLEEPERS: &str = "topology:\n  profiles: {p: {up: 1mbit, down: 1mbit}}\n  defaults: {profile: p}\n  address_plan: {base: 172.31.0.0/24}\n  groups: [{name: g, nodes: 4}]\nroles:\n  - {name: sleeper, nodes: g, command: sh -c 'sleep 300 & sleep 300'}\nstop: {after: 5m}\n";

#[test]
fn ctrl_c_stops_the_run_and_keeps_its_results() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("sleepers.yaml"), SLEEPERS).unwrap();
    let out = in_netns(
        "\"$P2PLAB\" run --quiet --shim \"$SHIM\" sleepers.yaml & pid=$!; sleep 3; kill -INT $pid; wait $pid",
        &work.path().join("state"),
        work.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = report::load(&only_dir(&work.path().join("results"))).unwrap();
    assert_eq!(results.run.stopped, "interrupted");
    assert_eq!(results.processes.len(), 4);
    for p in &results.processes {
        assert_eq!(
            (p.status, p.signal),
            (report::read::Status::Killed, Some(15)),
            "{p:?}"
        );
        assert!(p.end_s.unwrap() >= 2.5, "{p:?}");
    }
    no_cgroups_left("sleepers");
}

/// The delay engine killed mid-run: the run stops at once (its traffic would otherwise wait
/// in the queue for ever), says why, keeps its results and leaves nothing behind.
#[test]
fn a_run_whose_delay_engine_dies_stops_and_says_so() {
    let work = tempfile::tempdir().unwrap();
    let delayed = SLEEPERS.replace("down: 1mbit}", "down: 1mbit, latency: 5ms}");
    std::fs::write(work.path().join("sleepers.yaml"), delayed).unwrap();
    let out = in_netns(
        "\"$P2PLAB\" run --quiet --shim \"$SHIM\" --shaping nfqueue sleepers.yaml & pid=$!; sleep 3;
         kill -9 $(sed -n 's/.*\"engine_pid\":\\([0-9]*\\).*/\\1/p' \"$P2PLAB_RUN_DIR/sleepers.json\");
         wait $pid; echo \"exit: $?\"; ip -4 -o addr show dev lo | grep -c 172.31.0. || true",
        &work.path().join("state"),
        work.path(),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("exit: 1\n0\n"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("its network failed: the delay engine of network sleepers exited"),
        "{stderr}"
    );
    let results = report::load(&only_dir(&work.path().join("results"))).unwrap();
    assert!(
        results.run.stopped.starts_with("the network failed"),
        "{}",
        results.run.stopped
    );
    for p in &results.processes {
        assert!(p.end_s.unwrap() < 10.0, "stopped promptly: {p:?}");
    }
    no_cgroups_left("sleepers");
}

#[test]
fn down_ends_the_processes_of_a_run_whose_controller_was_killed() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("sleepers.yaml"), SLEEPERS).unwrap();
    // The processes' pids are read from their cgroup before the kill; after `down`, none
    // of them may exist.
    let out = in_netns(
        "\"$P2PLAB\" run --quiet --shim \"$SHIM\" sleepers.yaml & pid=$!; sleep 3;
         pids=$(cat /sys/fs/cgroup/unified/p2plab/sleepers-$pid/*/cgroup.procs);
         echo pids: $pids; kill -9 $pid; wait $pid;
         \"$P2PLAB\" down sleepers || exit 1;
         for p in $pids; do [ -e /proc/$p ] && [ \"$(cut -d' ' -f3 /proc/$p/stat)\" != Z ] && echo \"alive: $p\"; done;
         ip -4 -o addr show dev lo | grep -c 172.31.0. || true",
        &work.path().join("state"),
        work.path(),
    );
    let stdout = succeeded(&out);
    let pids = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .unwrap();
    assert_eq!(
        pids.split_whitespace().count(),
        12,
        "sh and two sleeps on each of 4 nodes: {pids}"
    );
    assert!(
        stdout.contains("processes of run sleepers ended"),
        "{stdout}"
    );
    assert!(!stdout.contains("alive:"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("0"),
        "addresses left on lo: {stdout}"
    );
    no_cgroups_left("sleepers");
}

#[test]
fn the_fairness_example_accounts_identical_cpu_work() {
    let work = tempfile::tempdir().unwrap();
    let example = root().join("examples/fairness/ci.yaml");
    let out = in_netns(
        &format!(
            "\"$P2PLAB\" run --quiet --shim \"$SHIM\" {}",
            example.display()
        ),
        &work.path().join("state"),
        work.path(),
    );
    succeeded(&out);
    let results = report::load(&only_dir(&work.path().join("results"))).unwrap();
    assert_eq!(results.processes.len(), 6);
    let mut cpu: Vec<f64> = results
        .processes
        .iter()
        .map(|p| {
            assert!(p.completion_s().is_some(), "{p:?}");
            p.cpu_s().unwrap()
        })
        .collect();
    cpu.sort_by(f64::total_cmp);
    let median = cpu[3];
    // The same work in every process: the cgroups account about the same CPU time.
    assert!(
        cpu.iter().all(|c| (0.6 * median..1.6 * median).contains(c)),
        "{cpu:?}"
    );
    // Each process reported its own run time through the line protocol.
    assert_eq!(
        results
            .metrics
            .iter()
            .filter(|m| m.name == "seconds")
            .count(),
        6
    );
    let analysis = report::analyse(&results);
    let fair = &analysis.fairness[0];
    let jain = fair.completion.as_ref().and_then(|s| s.jain).unwrap();
    assert!(
        (fair.processes, fair.completion.as_ref().unwrap().n) == (6, 6)
            && jain > 0.0
            && jain <= 1.0
    );
}

/// Receives UDP on port 7000 for argv[1] seconds, then prints the wire rates (payload plus
/// UDP, IPv4 and Ethernet headers) over 1.5-4.5 s and 5.5-8.5 s after its start.
const RECEIVER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7000))
s.settimeout(0.2)
start, times = time.monotonic(), []
while time.monotonic() - start < float(sys.argv[1]):
    try:
        s.recv(2048)
        times.append(time.monotonic() - start)
    except socket.timeout:
        pass
def rate(a, b):
    t = [x for x in times if a <= x < b]
    return (len(t) - 1) * (1000 + 8 + 20 + 14) * 8 / (t[-1] - t[0])
print(f"P2PLAB before={rate(1.5, 4.5):.0f} after={rate(5.5, 8.5):.0f}", flush=True)
"#;

/// Sends 1000-byte datagrams to argv[1]:7000 at about 8 mbit for argv[2] seconds.
const SENDER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
s.connect((sys.argv[1], 7000))
buf, end = bytes(1000), time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for _ in range(10):
        try:
            s.send(buf)
        except OSError:
            pass
    time.sleep(0.01)
"#;

#[test]
fn a_set_link_event_halves_the_upload_rate_mid_run() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("recv.py"), RECEIVER).unwrap();
    std::fs::write(w.join("send.py"), SENDER).unwrap();
    let exp = format!(
        "topology:\n  profiles: {{p: {{up: 4mbit, down: 100mbit}}}}\n  defaults: {{profile: p}}\n  address_plan: {{base: 172.31.1.0/24}}\n  groups: [{{name: g, nodes: 2}}]\nroles:\n  - {{name: receiver, nodes: g-1, command: /usr/bin/python3 {d}/recv.py 9.5}}\n  - {{name: sender, nodes: g-2, command: '/usr/bin/python3 {d}/send.py {{receiver.ip}} 9', start: {{at: 500ms}}}}\nevents:\n  - {{at: 5s, nodes: g-2, action: set_link, up: 2mbit}}\nstop: {{exited: [receiver], after: 30s}}\n",
        d = w.display()
    );
    std::fs::write(w.join("halve.yaml"), exp).unwrap();
    let out = in_netns(
        "\"$P2PLAB\" run --quiet --shim \"$SHIM\" halve.yaml",
        &w.join("state"),
        w,
    );
    succeeded(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("failed"), "{stderr}");
    let results = report::load(&only_dir(&w.join("results"))).unwrap();
    let metric = |name: &str| {
        results
            .metrics
            .iter()
            .find(|m| m.name == name && m.role == "receiver")
            .unwrap_or_else(|| panic!("no {name} metric: {:?}", results.metrics))
            .value
    };
    let (before, after) = (metric("before"), metric("after"));
    eprintln!("upload before the event {before:.0} bit/s, after {after:.0} bit/s");
    assert!(
        (before / 4e6 - 1.0).abs() < 0.03,
        "before: {before:.0} bit/s"
    );
    assert!((after / 2e6 - 1.0).abs() < 0.03, "after: {after:.0} bit/s");
    no_cgroups_left("halve");
}
