//! `p2plab run` as a user runs it, each in a network namespace of its own: the quick-start
//! and BitTorrent example swarms deliver identical files, no node moves more bytes than its
//! links allow, the swarms keep their links busy and every leecher completes within bounds
//! from both sides; every stop signal keeps the results and a second one hurries; a dead delay engine stops the run within the
//! README's half second and the report says why; after `kill -9` of the controller,
//! `p2plab down` ends every process and leaves the network exactly as it found it; nothing
//! is left behind. A `set_link` event halves a saturated TCP sender's upload rate mid-run,
//! and the fairness example's identical CPU work gets a Jain's index near 1. The programs
//! these experiments run are in `tests/run/`.

mod common;

use common::{no_cgroups_left, no_state_left, only_dir, succeeded};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of the helper programs the experiments run.
fn programs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/run")
}

/// Shell functions for the scripts: `run_pids NAME PID` prints the pids in the cgroups of
/// run NAME whose controller is PID, in every cgroup hierarchy mounted; `alive PID...`
/// prints those of the PIDs that still exist and are not zombies; `engine_pid NAME` prints
/// the delay engine's pid from network NAME's state file.
const SH_FUNCTIONS: &str = r#"
run_pids() { find $(awk '/ - cgroup2? / {print $5}' /proc/self/mountinfo) -path "*/p2plab/$1-$2/*" -name cgroup.procs -exec cat {} + | sort -un; }
alive() { for p in "$@"; do s=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && echo $p; done; true; }
engine_pid() { sed -n 's/.*"engine_pid":\([0-9]*\).*/\1/p' "$P2PLAB_RUN_DIR"/netns-*/"$1.json"; }
"#;

/// [`common::in_netns`], with the functions of [`SH_FUNCTIONS`] defined.
fn in_netns(script: &str, state: &Path, cwd: &Path) -> Output {
    common::in_netns(&format!("{SH_FUNCTIONS}{script}"), state, cwd)
}

/// The number after `prefix` on the line of `stdout` that starts with it.
fn figure(stdout: &str, prefix: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` figure in: {stdout}"))
}

/// Bits an HTB class may pass beyond its rate over a life: its burst and the packet that
/// overdraws it (a 64 KB segment on `lo` without an MTU), with room to spare.
const SLACK_BITS: f64 = 2.0 * 65_536.0 * 8.0;

/// An example swarm and the links it is held to.
struct Swarm<'a> {
    example: &'a str,
    /// The shared file's size in bytes.
    bytes: usize,
    /// Each group's upload and download rate (bit/s), as its topology declares them.
    links: &'a [(&'a str, f64, f64)],
    /// The leecher roles, each with the metric whose first sample marks its download done
    /// (`None`: its process exiting with code 0 does).
    leechers: &'a [(&'a str, Option<&'a str>)],
    /// The longest a download may take (seconds after the leecher started): a bound a
    /// starved machine keeps, which rates far too low break.
    within_s: f64,
}

/// The upload and download rate (bit/s) `links` gives `group`.
fn link(links: &[(&str, f64, f64)], group: &str) -> (f64, f64) {
    let &(_, up, down) = links
        .iter()
        .find(|l| l.0 == group)
        .unwrap_or_else(|| panic!("no links given for group {group}"));
    (up, down)
}

/// Checks every process's traffic (its node's HTB class counters over its life) against
/// its links: no process sent or received more than its rates allow in that time (the
/// counters are read every 0.5 s, which can only undercount a life). Returns the largest
/// fraction of its upload rate any process used over its life.
fn links_used(results: &results::Results, links: &[(&str, f64, f64)]) -> f64 {
    let mut busiest: f64 = 0.0;
    for p in &results.processes {
        let (up, down) = link(links, &p.group);
        let life = p.end_s.unwrap() - p.start_s;
        let bits =
            |b: Option<u64>| b.unwrap_or_else(|| panic!("no byte count: {p:?}")) as f64 * 8.0;
        let (sent, received) = (bits(p.bytes_sent), bits(p.bytes_received));
        for (what, bits, bps) in [("upload", sent, up), ("download", received, down)] {
            assert!(
                bits <= bps * life + SLACK_BITS,
                "{}: {bits} bits in {life:.2} s through its {bps} bit/s {what}: {:.2} times its rate",
                p.node,
                bits / (bps * life)
            );
        }
        eprintln!(
            "{:10} {:8} life {life:6.2} s, upload {:.2}, download {:.2} of its rate",
            p.node,
            p.role,
            sent / (up * life),
            received / (down * life)
        );
        busiest = busiest.max(sent / (up * life));
    }
    busiest
}

/// Runs an example swarm and checks what its users would: every leecher's file is the
/// source byte for byte; no process moved more bytes than its links allow (a rate too high
/// breaks this where a link is busy); some process used more than 0.55 of its upload rate
/// over its life (rates halved could not); every leecher's download took at least the
/// file's time on its download link and at most `within_s`; the report is written and
/// nothing is left behind. Returns the results.
fn swarm_delivers(swarm: &Swarm<'_>) -> results::Results {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let example = root().join(swarm.example);
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
    assert_eq!(source.len(), swarm.bytes);
    let results = results::load(&dir).unwrap();
    let busiest = links_used(&results, swarm.links);
    assert!(
        busiest > 0.55,
        "no process used more than 0.55 of its upload over its life ({busiest:.2}): rates too low, or a swarm that does not test its links"
    );
    for (role, done_metric) in swarm.leechers {
        for p in results.processes.iter().filter(|p| p.role == *role) {
            let got = std::fs::read(dir.join("nodes").join(&p.node).join("data.bin")).unwrap();
            assert!(got == source, "{}: file differs from the source", p.node);
            let took = match done_metric {
                None => p.completion_s(),
                Some(name) => results
                    .metrics
                    .iter()
                    .find(|m| m.node == p.node && m.name == *name)
                    .map(|m| m.time_s - p.start_s),
            }
            .unwrap_or_else(|| panic!("{} did not complete: {p:?}", p.node));
            let fastest = swarm.bytes as f64 * 8.0 / link(swarm.links, &p.group).1;
            assert!(
                (fastest..=swarm.within_s).contains(&took),
                "{} downloaded in {took:.2} s; its download link needs {fastest:.2} s, the bound is {} s",
                p.node,
                swarm.within_s
            );
            assert!(p.bytes_received.unwrap() >= swarm.bytes as u64, "{p:?}");
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 2);
    no_state_left(&state);
    no_cgroups_left(&results.run.name);
    results
}

#[test]
fn the_quickstart_swarm_delivers_identical_files_at_a_possible_speed() {
    // Every link is 20 mbit: the 16 MB file needs 6.4 s on one. The lone seed's upload is
    // what the swarm waits for (it is busy about 0.7 of its life, and would pass 1.3 times
    // its rate were the rates doubled). Five times the download link's time (32 s, twice
    // the slowest seen on a busy machine) meets rates far too low.
    let results = swarm_delivers(&Swarm {
        example: "examples/quickstart.yaml",
        bytes: 16_000_000,
        links: &[("east", 20e6, 20e6), ("west", 20e6, 20e6)],
        leechers: &[("leecher", None)],
        within_s: 5.0 * 6.4,
    });
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
    // Leechers upload at 1 mbit and the seeds at 2: a 2 MB file takes 16 s to pass one
    // leecher's upload link, and the swarm waits for those (the busiest uses 0.7-0.85 of its
    // upload over its life, and would pass its rate were the rates doubled). Leechers took
    // up to 33 s on a busy machine; four times 16 s meets rates far too low. A ctorrent's
    // download is done at its completion hook's metric (it stays until its next tracker
    // contact).
    let results = swarm_delivers(&Swarm {
        example: "examples/bittorrent/ci.yaml",
        bytes: 2_000_000,
        links: &[
            ("tracker", 2e6, 20e6),
            ("seed", 2e6, 20e6),
            ("leech", 1e6, 8e6),
            ("leech-ct", 1e6, 8e6),
        ],
        leechers: &[("leecher", None), ("ctorrent", Some("complete"))],
        within_s: 4.0 * 16.0,
    });
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

/// [`SLEEPERS`] with a 5 ms access latency, which the nfqueue backend's delay engine adds.
fn delayed_sleepers() -> String {
    SLEEPERS.replace("down: 1mbit}", "down: 1mbit, latency: 5ms}")
}

/// Runs [`SLEEPERS`] (with `command` changed by `sleepers`) in a fresh namespace and sends
/// p2plab `signals` (`kill` names), the first 3 s after its start, the others 0.5 s apart;
/// returns p2plab's exit status and its results, after checking that no address, state
/// file or cgroup of the run is left and that it said why it ended. The experiment is
/// named after the signals, so that tests running side by side tell their cgroups apart.
fn signalled(sleepers: &str, signals: &[&str]) -> (i32, results::Results) {
    let work = tempfile::tempdir().unwrap();
    let name = format!("{}-stop", signals.concat().to_lowercase());
    std::fs::write(work.path().join(format!("{name}.yaml")), sleepers).unwrap();
    let kills: Vec<String> = signals.iter().map(|s| format!("kill -{s} $pid")).collect();
    let out = in_netns(
        &format!(
            "\"$P2PLAB\" run --quiet --shim \"$SHIM\" {name}.yaml & pid=$!; sleep 3; {}; wait $pid; echo \"exit: $?\"
            ip -4 -o addr show dev lo | grep -c 172.31.0. || true",
            kills.join("; sleep 0.5; ")
        ),
        &work.path().join("state"),
        work.path(),
    );
    let (stdout, stderr) = (succeeded(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().last(), Some("0"), "addresses left: {stdout}");
    let first = format!("SIG{}", signals[0]);
    assert!(
        stderr.contains(&format!(
            "the run was interrupted by {first}; its results are in"
        )),
        "{stderr}"
    );
    no_state_left(&work.path().join("state"));
    no_cgroups_left(&name);
    let results = results::load(&only_dir(&work.path().join("results"))).unwrap();
    assert_eq!(results.run.stopped, format!("interrupted by {first}"));
    assert_eq!(results.processes.len(), 4);
    (figure(&stdout, "exit: ") as i32, results)
}

/// Every way a run can be told to stop (Ctrl-C's SIGINT, SIGTERM, SIGHUP from a closed
/// terminal or a dropped SSH session, SIGQUIT) stops it gracefully: every process gets
/// SIGTERM, the results are kept, the network is taken down, and p2plab exits with 128 +
/// the signal's number.
#[test]
fn every_stop_signal_stops_the_run_and_keeps_its_results() {
    for (sig, number) in [("INT", 2), ("TERM", 15), ("HUP", 1), ("QUIT", 3)] {
        let (code, results) = signalled(SLEEPERS, &[sig]);
        assert_eq!(code, 128 + number, "SIG{sig}");
        for p in &results.processes {
            assert_eq!(
                (p.status, p.signal),
                (results::Status::Stopped, Some(15)),
                "SIG{sig}: {p:?}"
            );
            // The signal came 3 s after the run started (its clock starts once the
            // network is up); `sleep` ends at SIGTERM.
            assert!((2.5..4.5).contains(&p.end_s.unwrap()), "SIG{sig}: {p:?}");
        }
    }
}

/// A second stop signal hurries the stop: processes that ignore SIGTERM are killed at once
/// instead of after the 2 s grace period, and the teardown still happens.
#[test]
fn a_second_stop_signal_kills_at_once_and_still_tears_down() {
    let stubborn = SLEEPERS.replace("sh -c 'sleep", "sh -c 'trap \"\" TERM; sleep");
    let (code, results) = signalled(&stubborn, &["TERM", "TERM"]);
    assert_eq!(code, 128 + 15);
    for p in &results.processes {
        assert_eq!(
            (p.status, p.signal),
            (results::Status::Stopped, Some(9)),
            "{p:?}"
        );
        // The first SIGTERM came at 2.5-3 s of the run's clock: without the second one
        // they would have lived 2 s more.
        assert!(p.end_s.unwrap() < 4.3, "killed too late: {p:?}");
    }
}

/// The delay engine killed mid-run: the run's processes end within the README's half
/// second (117-139 ms beside two busy loops: the run asks every 100 ms) and the run, torn
/// down, within 1.5 s; it
/// says why, records it in `run.json` and in its report (HTML and text), keeps its results
/// and leaves nothing behind.
#[test]
fn a_run_whose_delay_engine_dies_stops_and_says_so() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("sleepers.yaml"), delayed_sleepers()).unwrap();
    let out = in_netns(
        r#""$P2PLAB" run --quiet --shim "$SHIM" --shaping nfqueue sleepers.yaml & pid=$!; sleep 3
        pids=$(run_pids sleepers $pid); echo "pids:" $pids
        t0=$(date +%s%N); kill -9 $(engine_pid sleepers)
        while [ -n "$(alive $pids)" ] && [ $(( $(date +%s%N) - t0 )) -lt 20000000000 ]; do sleep 0.01; done
        echo "processes ended: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
        wait $pid; echo "exit: $?"
        echo "run ended: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
        ip -4 -o addr show dev lo | grep -c 172.31.0. || true"#,
        &work.path().join("state"),
        work.path(),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("exit: 1\n"), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().last(), Some("0"), "addresses left: {stdout}");
    let pids = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids:"))
        .unwrap();
    assert_eq!(pids.split_whitespace().count(), 12, "{stdout}");
    let (ended_ms, run_ms) = (
        figure(&stdout, "processes ended: "),
        figure(&stdout, "run ended: "),
    );
    eprintln!("after the engine's kill: processes ended in {ended_ms} ms, the run in {run_ms} ms");
    assert!(
        ended_ms <= 500.0,
        "processes ended {ended_ms} ms after the engine died"
    );
    assert!(
        run_ms <= 1500.0,
        "the run ended {run_ms} ms after the engine died"
    );
    assert!(
        stderr.contains("its network failed: the delay engine of network sleepers exited"),
        "{stderr}"
    );
    let dir = only_dir(&work.path().join("results"));
    let results = results::load(&dir).unwrap();
    let why = "the network failed: the delay engine of network sleepers exited";
    assert!(
        results.run.stopped.starts_with(why),
        "{}",
        results.run.stopped
    );
    assert_eq!(results.processes.len(), 4);
    for p in &results.processes {
        assert_eq!(p.status, results::Status::Stopped, "{p:?}");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(&format!("stopped: <b>{why}")), "{html}");
    let text = Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .arg("report")
        .arg(&dir)
        .args(["--format", "text"])
        .output()
        .unwrap();
    let text = succeeded(&text);
    assert!(text.contains(&format!("\nstopped: {why}")), "{text}");
    no_state_left(&work.path().join("state"));
    no_cgroups_left("sleepers");
}

/// `kill -9` of a run's controller, then `p2plab down`: every process of the run (read from
/// its cgroups before the kill) and its delay engine have ended, and the namespace's
/// addresses, links (MTU and GSO limits of `lo`, IFBs), qdiscs and mangle rules are exactly
/// as before the run, which had changed each of them.
#[test]
fn down_ends_the_processes_of_a_run_whose_controller_was_killed() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let exp = delayed_sleepers().replace("topology:\n", "topology:\n  mtu: 1500\n");
    std::fs::write(w.join("sleepers.yaml"), exp).unwrap();
    let out = in_netns(
        r#"snap() { ip -d addr show; tc qdisc show; iptables-save -t mangle | grep '^[-:]' | grep -Ev '^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) '; }
        snap > before
        "$P2PLAB" run --quiet --shim "$SHIM" --shaping nfqueue sleepers.yaml & pid=$!; sleep 3
        snap > during
        pids=$(run_pids sleepers $pid); engine=$(engine_pid sleepers)
        echo "pids:" $pids; echo "engine: $engine"
        kill -9 $pid; wait $pid
        "$P2PLAB" down sleepers || exit 1
        snap > after
        echo "alive:" $(alive $pids $engine)"#,
        &w.join("state"),
        w,
    );
    let stdout = succeeded(&out);
    let pids = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids:"))
        .unwrap();
    assert_eq!(
        pids.split_whitespace().count(),
        12,
        "sh and two sleeps on each of 4 nodes: {pids}"
    );
    assert!(figure(&stdout, "engine: ") > 0.0, "{stdout}");
    assert!(
        stdout.contains("processes of run sleepers ended"),
        "{stdout}"
    );
    assert!(stdout.contains("\nalive:\n"), "{stdout}");
    let snap = |name: &str| std::fs::read_to_string(w.join(name)).unwrap();
    let during = snap("during");
    for made in ["mtu 1500 ", "gso_max_segs 1 ", "ifb", "clsact", "NFQUEUE"] {
        assert!(
            during.contains(made),
            "no `{made}` during the run: {during}"
        );
    }
    assert_eq!(snap("after"), snap("before"), "during the run:\n{during}");
    no_state_left(&w.join("state"));
    no_cgroups_left("sleepers");
    // The result directory of the killed run still reads: run.json from its start.
    let results = results::load(&only_dir(&w.join("results"))).unwrap();
    assert!(
        results.run.stopped.starts_with("unfinished: "),
        "{}",
        results.run.stopped
    );
}

/// Jain's index of `xs`: `(Σx)² / (n Σx²)`.
fn jain(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>().powi(2) / (xs.len() as f64 * xs.iter().map(|x| x * x).sum::<f64>())
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
    let results = results::load(&only_dir(&work.path().join("results"))).unwrap();
    assert_eq!(results.processes.len(), 6);
    let completion: Vec<f64> = results
        .processes
        .iter()
        .map(|p| p.completion_s().unwrap_or_else(|| panic!("{p:?}")))
        .collect();
    let cpu: Vec<f64> = results
        .processes
        .iter()
        .map(|p| p.cpu_s().unwrap())
        .collect();
    let mut sorted = cpu.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[3];
    // The same work in every process: the cgroups account about the same CPU time, so
    // Jain's index of the CPU times is close to 1 (0.95: a coefficient of variation up
    // to 0.23, for a busy machine).
    assert!(
        cpu.iter().all(|c| (0.6 * median..1.6 * median).contains(c)),
        "{cpu:?}"
    );
    assert!(jain(&cpu) > 0.95, "Jain's index {} of {cpu:?}", jain(&cpu));
    // Each process reported its own run time through the line protocol.
    assert_eq!(
        results
            .metrics
            .iter()
            .filter(|m| m.name == "seconds")
            .count(),
        6
    );
    // The report's figures are Jain's index of those times.
    let analysis = report::analyse(&results);
    assert_eq!(analysis.fairness.len(), 1);
    let fair = &analysis.fairness[0];
    assert_eq!(fair.processes, 6);
    for (spread, times) in [(&fair.completion, &completion), (&fair.cpu, &cpu)] {
        let spread = spread.as_ref().unwrap();
        let reported = spread.jain.unwrap();
        assert_eq!(spread.n, 6);
        assert!(
            (reported - jain(times)).abs() < 1e-9,
            "reported {reported}, Jain's index of {times:?} is {}",
            jain(times)
        );
    }
}

/// A `set_link` event at 5 s halves a saturated sender's 4 mbit upload: the wire rate of
/// what arrives is within 3 % (the shaper's promise) of 4 mbit before and of 2 mbit after,
/// with the sender's data shown waiting for the link throughout both measurements. (Beside
/// two busy loops a saturated link once read 2.4 % low: the IFBs' softirq work waits for a
/// core too.)
#[test]
fn a_set_link_event_halves_the_upload_rate_mid_run() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // A TCP sender that always has data waiting in its upload queue and never overflows
    // it (see tcp_send.py); the receiver measures the wire rate of what arrives before and
    // after the event.
    let exp = format!(
        "topology:\n  mtu: 1500\n  profiles: {{p: {{up: 4mbit, down: 100mbit}}}}\n  defaults: {{profile: p}}\n  address_plan: {{base: 172.31.1.0/24}}\n  groups: [{{name: g, nodes: 2}}]\nroles:\n  - {{name: receiver, nodes: g-1, command: '/usr/bin/python3 {d}/tcp_recv.py 9.5 {{run_dir}}/start'}}\n  - {{name: sender, nodes: g-2, command: '/usr/bin/python3 {d}/tcp_send.py {{receiver.ip}} 8.6 {{run_dir}}/start', start: {{at: 500ms}}}}\nevents:\n  - {{at: 5s, nodes: g-2, action: set_link, up: 2mbit}}\nstop: {{exited: [receiver], after: 30s}}\n",
        d = programs().display()
    );
    std::fs::write(w.join("halve.yaml"), exp).unwrap();
    let out = in_netns(
        "\"$P2PLAB\" run --quiet --shim \"$SHIM\" halve.yaml",
        &w.join("state"),
        w,
    );
    succeeded(&out);
    let results = results::load(&only_dir(&w.join("results"))).unwrap();
    let metric = |role: &str, name: &str| {
        results
            .metrics
            .iter()
            .find(|m| m.name == name && m.role == role)
            .unwrap_or_else(|| panic!("no {name} metric: {:?}", results.metrics))
            .value
    };
    let (before, after) = (metric("receiver", "before"), metric("receiver", "after"));
    let held = metric("sender", "unacknowledged");
    eprintln!(
        "upload before the event {before:.0} bit/s, after {after:.0} bit/s; the sender held at least {held} bytes unacknowledged"
    );
    assert!(
        held >= 65536.0,
        "the sender held only {held} bytes unacknowledged: the link may have idled"
    );
    assert!(
        (before / 4e6 - 1.0).abs() < 0.03,
        "before: {before:.0} bit/s"
    );
    assert!((after / 2e6 - 1.0).abs() < 0.03, "after: {after:.0} bit/s");
    no_state_left(&w.join("state"));
    no_cgroups_left("halve");
}
