//! README promises of `p2plab run` ("The experiment format") checked through real runs of
//! tiny experiments, each in a network namespace of its own: run-time events from the
//! experiment and from a ProtoPeer scenario file pause, stop, kill and start processes; a
//! stop metric ends the run once every node of its role reaches it, and not before; metrics
//! are read every half second; every process gets `BINDIP`, `P2PLAB_NODE` and its role's
//! `env` in its node's directory; processes start on schedule; CPU and memory limits hold;
//! `on_failure` goes on or aborts; a static program, a missing shim, missing root, a network
//! already up and a backend the kernel lacks are refused before anything is set up; and
//! `run.json` names the backend used, and records the command line, the resolved
//! topology, the host's CPU and each process's planned start.

mod common;

use common::{in_netns, leaves_nothing, no_cgroups_left, only_dir, succeeded};
use results::Results;
use results::{Backend, Process, Status};
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// How the tests start `p2plab run` (the shell of [`in_netns`] sets both variables).
const RUN: &str = "\"$P2PLAB\" run --quiet --shim \"$SHIM\"";

/// How the tests run their Python scripts, which they write beside the experiment.
const PYTHON: &str = "/usr/bin/python3 {experiment_dir}";

/// Appends `time.monotonic()` to `./ticks` every 100 ms, for ever.
const TICKER: &str = "import time
with open('ticks', 'a') as f:
    while True:
        print(time.monotonic(), file=f, flush=True)
        time.sleep(0.1)
";

/// Writes its environment's `BINDIP`, `P2PLAB_NODE`, `GREETING` and `LD_PRELOAD` to
/// `./env.txt`, then prints `P2PLAB n=1`, `n=2`, ... every argv[1] x 50 ms, for ever.
const COUNTER: &str = "import os, sys, time
with open('env.txt', 'w') as f:
    for k in ('BINDIP', 'P2PLAB_NODE', 'GREETING', 'LD_PRELOAD'):
        print(f'{k}={os.environ.get(k, \"\")}', file=f)
interval, n = 0.05 * int(sys.argv[1]), 0
while True:
    n += 1
    print(f'P2PLAB n={n}', flush=True)
    time.sleep(interval)
";

/// Keeps one core busy for argv[1] seconds of wall time, then exits 0.
const SPIN: &str = "import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
";

/// Fills argv[1] MiB with non-zero bytes (so that they are resident), holds them for half a
/// second, then exits 0.
const HOG: &str = "import sys, time
block = bytearray(b'\\x01') * (int(sys.argv[1]) << 20)
time.sleep(0.5)
";

/// An experiment: `body` (roles, stop rule, ...) on an inline topology of groups `(name,
/// nodes)` with addresses from `base` and 10 mbit links with one-way latency `latency`.
fn experiment(base: &str, latency: &str, groups: &[(&str, usize)], body: &str) -> String {
    let groups: Vec<String> = groups
        .iter()
        .map(|(g, n)| format!("{{name: {g}, nodes: {n}}}"))
        .collect();
    format!(
        "topology:\n  profiles: {{p: {{up: 10mbit, down: 10mbit, latency: {latency}}}}}\n  defaults: {{profile: p}}\n  address_plan: {{base: {base}}}\n  groups: [{}]\n{body}",
        groups.join(", ")
    )
}

/// Writes `scripts` (file name, contents) into `work` and runs the experiment `yaml`,
/// written as `file` (a path relative to `work`, as a user would type it), with `args`;
/// checks that the run left nothing behind (no address, state file or cgroup). Returns
/// what `p2plab run` printed and its results.
fn run(
    work: &Path,
    file: &str,
    yaml: &str,
    args: &str,
    scripts: &[(&str, &str)],
) -> (Output, Results) {
    for (script, text) in scripts {
        std::fs::write(work.join(script), text).unwrap();
    }
    let out = leaves_nothing(work, file, yaml, &format!("{RUN} {args} {file}"));
    let results = results::load(&only_dir(&work.join("results"))).unwrap();
    no_cgroups_left(&results.run.name);
    (out, results)
}

/// [`run`] of an experiment that must succeed (exit status 0) and end for the reason
/// `stopped` (as `run.json` gives it): its results.
fn run_ok(work: &Path, file: &str, yaml: &str, scripts: &[(&str, &str)], stopped: &str) -> Results {
    let (out, results) = run(work, file, yaml, "", scripts);
    succeeded(&out);
    assert_eq!(results.run.stopped, stopped);
    results
}

/// The process record of node `node`.
fn process<'a>(results: &'a Results, node: &str) -> &'a Process {
    results
        .processes
        .iter()
        .find(|p| p.node == node)
        .unwrap_or_else(|| panic!("no process on {node}: {:?}", results.processes))
}

/// Checks that `p` was stopped by signal `signal` (sent by an event or by the end of the
/// run) between `from` and `to` seconds after the run started.
fn stopped_between(p: &Process, signal: i32, from: f64, to: f64) {
    assert_eq!(
        (p.status, p.signal),
        (Status::Stopped, Some(signal)),
        "{p:?}"
    );
    let end = p.end_s.unwrap();
    assert!(
        (from..=to).contains(&end),
        "ended at {end:.3} s, not in {from}..{to}: {p:?}"
    );
}

/// The gaps between consecutive `time.monotonic()` lines [`TICKER`] wrote on node `node`.
fn tick_gaps(results: &Results, node: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(results.dir.join("nodes").join(node).join("ticks")).unwrap();
    let ticks: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
    ticks.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Checks that the ticker on `node` ran before and after a pause of about one second (from
/// 1 s to 2 s of the run), and was never held otherwise.
fn paused_for_a_second(results: &Results, node: &str) {
    let gaps = tick_gaps(results, node);
    let long: Vec<f64> = gaps.iter().copied().filter(|&g| g > 0.5).collect();
    assert_eq!(
        long.len(),
        1,
        "{node}: one pause, ticks every 0.1 s otherwise: {gaps:?}"
    );
    assert!(
        (0.8..=1.5).contains(&long[0]),
        "{node}: paused for {:.3} s, not about 1 s",
        long[0]
    );
}

#[test]
fn events_and_a_scenario_file_pause_stop_kill_and_start_processes() {
    let work = tempfile::tempdir().unwrap();
    let yaml = experiment(
        "172.31.20.0/24",
        "0ms",
        &[("g", 5)],
        &format!(
            "roles:\n\
             - {{name: ticker, nodes: 'g[1-4]', command: '{PYTHON}/ticker.py'}}\n\
             - {{name: late, nodes: g-5, command: '{PYTHON}/ticker.py', start: {{at: 1h}}}}\n\
             events:\n\
             - {{at: 1s, nodes: g-1, action: pause}}\n\
             - {{at: 2s, nodes: g-1, action: resume}}\n\
             - {{at: 1500ms, nodes: g-2, action: stop}}\n\
             scenario: churn.txt\n\
             stop: {{after: 3500ms}}\n"
        ),
    );
    // ProtoPeer form, 0-based node indices: g-3 killed, g-4 paused, g-5 started.
    let scenario = "# nodes time action\n2 1.5 kill\n3 1s pause\n3 2000ms resume\n4 1500ms start\n";
    let results = run_ok(
        work.path(),
        "./events.yaml",
        &yaml,
        &[("ticker.py", TICKER), ("churn.txt", scenario)],
        "the duration cap was reached",
    );
    assert_eq!(results.processes.len(), 5, "{:?}", results.processes);
    paused_for_a_second(&results, "g-1");
    paused_for_a_second(&results, "g-4");
    stopped_between(process(&results, "g-2"), 15, 1.5, 2.0);
    stopped_between(process(&results, "g-3"), 9, 1.5, 2.0);
    // Started by the scenario long before its role's own start time, then ended with the
    // rest by the end of the run.
    let late = process(&results, "g-5");
    assert!((1.5..=1.8).contains(&late.start_s), "{late:?}");
    assert!(
        tick_gaps(&results, "g-5").len() >= 5,
        "g-5 ran from 1.5 s to 3.5 s"
    );
    for node in ["g-1", "g-4", "g-5"] {
        stopped_between(process(&results, node), 15, 3.5, 4.5);
    }
}

/// `{experiment_dir}` is the experiment file's folder, also when `run` is given the file's
/// bare name from that folder.
#[test]
fn experiment_dir_is_the_folder_of_an_experiment_named_from_it() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("marker.txt"), "here\n").unwrap();
    let yaml = experiment(
        "172.31.27.0/24",
        "0ms",
        &[("g", 1)],
        "roles:\n\
         - {name: copy, nodes: g, command: '/bin/cp {experiment_dir}/marker.txt .'}\n\
         stop: {after: 10s}\n",
    );
    let results = run_ok(work.path(), "bare.yaml", &yaml, &[], "every process exited");
    let copy = process(&results, "g-1");
    assert!(copy.completion_s().is_some(), "{copy:?}");
    let copied = results.dir.join("nodes/g-1/marker.txt");
    assert_eq!(std::fs::read_to_string(copied).unwrap(), "here\n");
}

#[test]
fn a_stop_metric_ends_the_run_once_every_node_reaches_it() {
    let work = tempfile::tempdir().unwrap();
    // g-1 counts every 50 ms, g-2 every 100 ms: n reaches 40 after 1.95 s and 3.9 s.
    let yaml = experiment(
        "172.31.21.0/24",
        "1ms",
        &[("g", 2)],
        &format!(
            "roles:\n\
             - {{name: counter, nodes: g, command: '{PYTHON}/count.py {{index}}', env: {{GREETING: hello}}}}\n\
             stop: {{metric: {{name: n, role: counter, at_least: 40}}, after: 30s}}\n"
        ),
    );
    let results = run_ok(
        work.path(),
        "./metric.yaml",
        &yaml,
        &[("count.py", COUNTER)],
        "the stop metric was reached",
    );
    assert_eq!(results.run.backend, Backend::Nfqueue);
    // When each node's metric, read from its log, first reached 40.
    let reached = |node: &str| {
        results
            .metrics
            .iter()
            .filter(|m| m.node == node && m.name == "n" && m.value >= 40.0)
            .map(|m| m.time_s)
            .fold(f64::INFINITY, f64::min)
    };
    let (fast, slow) = (reached("g-1"), reached("g-2"));
    let slow_start = process(&results, "g-2").start_s;
    assert!(
        (slow_start + 3.9..=slow_start + 6.5).contains(&slow),
        "g-2 counted to 40 from {slow_start:.2} s to {slow:.2} s"
    );
    assert!(
        fast < slow - 1.0,
        "g-1 reached 40 at {fast:.2} s, g-2 at {slow:.2} s"
    );
    // Not before the slower node reached it, and at once when it did.
    for p in &results.processes {
        stopped_between(p, 15, slow, slow + 0.5);
    }

    // Metrics are read every 0.5 s: g-1's lines (one every 50 ms) come in batches stamped
    // half a second apart (the last batch is the final read at the end of the run).
    let mut times: Vec<f64> = results
        .metrics
        .iter()
        .filter(|m| m.node == "g-1")
        .map(|m| m.time_s)
        .collect();
    let lines = times.len();
    times.dedup();
    assert!(
        lines >= 5 * times.len(),
        "{lines} lines in {} reads",
        times.len()
    );
    let mut gaps: Vec<f64> = times[..times.len() - 1]
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    gaps.sort_by(f64::total_cmp);
    assert!(gaps.len() >= 5, "{times:?}");
    assert!(
        gaps[0] >= 0.49 && gaps[gaps.len() - 1] <= 0.8,
        "reads {gaps:?} apart"
    );
    let median = gaps[gaps.len() / 2];
    assert!(
        (0.5..=0.6).contains(&median),
        "reads {median:.3} s apart (median)"
    );

    // Every process runs in its node's directory with its address, its name and its
    // role's environment, under the shim.
    for p in &results.processes {
        let env = std::fs::read_to_string(results.dir.join("nodes").join(&p.node).join("env.txt"))
            .unwrap();
        let want = format!("BINDIP={}\nP2PLAB_NODE={}\nGREETING=hello\n", p.ip, p.node);
        assert!(env.starts_with(&want), "{env}");
        assert!(env.contains("libp2plab_shim.so"), "{env}");
    }
}

#[test]
fn processes_start_on_schedule_within_their_cpu_and_memory_limits() {
    let work = tempfile::tempdir().unwrap();
    let yaml = experiment(
        "172.31.22.0/24",
        "0ms",
        &[("s", 5), ("c", 2), ("m", 2)],
        &format!(
            "roles:\n\
             - {{name: sched, nodes: s, command: /bin/sleep 0.1, start: {{at: 1s, every: 250ms}}}}\n\
             - {{name: spin, nodes: c-1, command: '{PYTHON}/spin.py 3', cpu: 20%}}\n\
             - {{name: free, nodes: c-2, command: '{PYTHON}/spin.py 3'}}\n\
             - {{name: small, nodes: m-1, command: '{PYTHON}/hog.py 16', memory: 64M}}\n\
             - {{name: big, nodes: m-2, command: '{PYTHON}/hog.py 256', memory: 64M}}\n\
             stop: {{exited: [sched, spin, free, small, big], after: 30s}}\n"
        ),
    );
    let (out, results) = run(
        work.path(),
        "./limits.yaml",
        &yaml,
        "",
        &[("spin.py", SPIN), ("hog.py", HOG)],
    );
    // The kernel's OOM kill of the big process is a failure of the run (exit status 1).
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(results.run.stopped, "the stop rule's roles exited");
    // Without delays or loss no engine runs, but the backend is still the one picked.
    assert_eq!(results.run.backend, Backend::Nfqueue);

    // At or after the planned time, in the declared order, and not much later.
    for i in 0..5 {
        let p = process(&results, &format!("s-{}", i + 1));
        let planned = 1.0 + 0.25 * i as f64;
        assert!(
            (planned..=planned + 0.25).contains(&p.start_s),
            "planned at {planned} s: {p:?}"
        );
        assert!(p.completion_s().is_some(), "{p:?}");
    }

    // A fifth of a core at most, whatever else runs on the machine (a limit well below
    // what a busy machine still gives a loop, so that a weaker limit shows); and not
    // starved: the loop without a limit beside it shows what the machine had to give.
    let share = |node: &str| {
        let p = process(&results, node);
        let wall = p.completion_s().unwrap_or_else(|| panic!("{p:?}"));
        assert!(wall >= 3.0, "{p:?}");
        p.cpu_s().unwrap() / wall
    };
    let (limited, free) = (share("c-1"), share("c-2"));
    eprintln!("cpu: 20%: {limited:.3} of a core; without a limit: {free:.3}");
    assert!(limited <= 0.24, "{limited:.3} of a core for cpu: 20%");
    assert!(
        limited >= 0.25 * free.min(0.2),
        "{limited:.3} of a core for cpu: 20%, {free:.3} without a limit"
    );

    // Within the limit a process runs to its end; beyond it the OOM killer ends it.
    let mib = |p: &Process| p.peak_rss_kb.unwrap() as f64 / 1024.0;
    let small = process(&results, "m-1");
    assert!(small.completion_s().is_some(), "{small:?}");
    assert!((16.0..=64.0).contains(&mib(small)), "{small:?}");
    let big = process(&results, "m-2");
    assert_eq!(
        (big.status, big.signal),
        (Status::Killed, Some(9)),
        "{big:?}"
    );
    assert!((48.0..=64.0).contains(&mib(big)), "{big:?}");
}

/// Runs an experiment whose second `late` node's program is missing when it is due (1 s),
/// under `on_failure: <policy>`: a sleeper runs from the start, the first `late` node's
/// program exits 0 at 0.5 s, and a `tail` node is due at 2 s.
fn failing_run(policy: &str) -> (Output, Results) {
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("g-2"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(bin.join("g-2"), Permissions::from_mode(0o755)).unwrap();
    let yaml = experiment(
        "172.31.23.0/24",
        "0ms",
        &[("g", 4)],
        &format!(
            "roles:\n\
             - {{name: sleeper, nodes: g-1, command: /bin/sleep 30}}\n\
             - {{name: late, nodes: ['g-2', 'g-3'], command: '{{experiment_dir}}/bin/{{name}}', start: {{at: 500ms, every: 500ms}}}}\n\
             - {{name: tail, nodes: g-4, command: /bin/sleep 0.2, start: {{at: 2s}}}}\n\
             stop: {{exited: [late, tail], after: 30s}}\n\
             on_failure: {policy}\n"
        ),
    );
    let (out, results) = run(work.path(), &format!("./{policy}.yaml"), &yaml, "", &[]);
    let first = process(&results, "g-2");
    assert!(first.completion_s().is_some(), "{first:?}");
    let missing = process(&results, "g-3");
    assert_eq!(
        (missing.status, missing.pid),
        (Status::FailedToStart, None),
        "{missing:?}"
    );
    (out, results)
}

/// Under `continue` the run goes on past the failure, and p2plab's exit status (1) and
/// its last line still say that a process failed.
#[test]
fn on_failure_continue_records_the_failure_and_goes_on() {
    let (out, results) = failing_run("continue");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 4 processes failed (did not start, exited with a non-zero code or were killed by a signal p2plab did not send)"),
        "{stderr}"
    );
    assert_eq!(results.run.stopped, "the stop rule's roles exited");
    assert!(process(&results, "g-4").completion_s().is_some());
    stopped_between(process(&results, "g-1"), 15, 2.2, 3.5);
}

#[test]
fn on_failure_abort_stops_the_run_at_the_failure() {
    let (out, results) = failing_run("abort");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        results.run.stopped.starts_with("aborted: "),
        "{}",
        results.run.stopped
    );
    assert!(
        results.processes.iter().all(|p| p.node != "g-4"),
        "{:?}",
        results.processes
    );
    stopped_between(process(&results, "g-1"), 15, 1.0, 1.5);
}

/// A process a signal of its own ends (a crash) failed: its row is `killed` with the
/// signal, and p2plab exits with 1 and says so; the seed p2plab stops at the end is
/// `stopped`, not failed.
#[test]
fn a_crash_fails_the_run_and_a_stop_at_the_end_does_not() {
    let work = tempfile::tempdir().unwrap();
    let yaml = experiment(
        "172.31.28.0/24",
        "0ms",
        &[("g", 2)],
        "roles:\n\
         - {name: crash, nodes: g-1, command: \"sh -c 'sleep 0.3; kill -SEGV $$'\"}\n\
         - {name: seed, nodes: g-2, command: /bin/sleep 30}\n\
         stop: {exited: [crash], after: 30s}\n",
    );
    let (out, results) = run(work.path(), "crash.yaml", &yaml, "", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 of 2 processes failed"), "{stderr}");
    let crash = process(&results, "g-1");
    assert_eq!(
        (crash.status, crash.signal),
        (Status::Killed, Some(11)),
        "{crash:?}"
    );
    assert!(crash.failed());
    stopped_between(process(&results, "g-2"), 15, 0.2, 2.0);
}

#[test]
fn run_json_records_the_command_line_topology_host_cpu_and_planned_starts() {
    let work = tempfile::tempdir().unwrap();
    // Groups a (172.31.29.1-2) and b (.5), 5 ms from a to b and back.
    let yaml = format!(
        "topology:\n  profiles: {{p: {{up: 10mbit, down: 10mbit, latency: 1ms}}}}\n  \
         defaults: {{profile: p}}\n  address_plan: {{base: 172.31.29.0/24}}\n  \
         groups: [{{name: a, nodes: 2}}, {{name: b, nodes: 1}}]\n  \
         delays: [{{from: a, to: b, delay: 5ms}}]\n\
         roles:\n\
         - {{name: peer, nodes: a, command: /bin/sleep 0.2, start: {{at: 500ms, every: 250ms}}}}\n\
         - {{name: spin, nodes: b, command: '{PYTHON}/spin.py 1.5'}}\n\
         stop: {{exited: [peer, spin], after: 30s}}\n"
    );
    let (out, results) = run(
        work.path(),
        "./record.yaml",
        &yaml,
        "",
        &[("spin.py", SPIN)],
    );
    let stdout = succeeded(&out);
    let run = &results.run;

    let args = &run.command_line;
    assert!(args[0].ends_with("p2plab"), "{args:?}");
    assert_eq!(args[1], "run", "{args:?}");
    assert_eq!(args.last().unwrap(), "./record.yaml", "{args:?}");

    let topology = &run.resolved_topology;
    let a = &topology["groups"][0];
    assert_eq!(
        (&a["name"], &a["nodes"]),
        (&"a".into(), &2.into()),
        "{topology}"
    );
    assert_eq!(
        (&a["first_ip"], &a["last_ip"]),
        (&"172.31.29.1".into(), &"172.31.29.2".into())
    );
    // G(a,b) and G(b,a), microseconds.
    assert_eq!(a["delay_us"], serde_json::json!([0, 5000]), "{topology}");
    assert_eq!(
        topology["groups"][1]["delay_us"],
        serde_json::json!([5000, 0])
    );
    assert_eq!(topology["profiles"][0]["latency_us"], 1000, "{topology}");

    let cpu = run.host_cpu.as_ref().expect("the host's CPU is recorded");
    assert!(cpu.cpus >= 1, "{cpu:?}");
    // About one sample a second over a run of about 1.5 s, and one at its end.
    assert!(!cpu.samples.is_empty(), "{cpu:?}");
    let busy = |x: f64| (0.0..=1.0).contains(&x);
    assert!(busy(cpu.mean_busy) && busy(cpu.max_busy), "{cpu:?}");
    assert!(
        cpu.samples
            .iter()
            .all(|&(t, b)| busy(b) && b <= cpu.max_busy && t > 0.0 && t <= run.duration_s + 0.1),
        "{cpu:?}"
    );

    // Every process is planned as scheduled and starts at or after its plan, soon after
    // (half a second leaves room for a busy machine).
    for (node, planned) in [("a-1", 0.5), ("a-2", 0.75), ("b-1", 0.0)] {
        let p = process(&results, node);
        assert_eq!(p.planned_s, Some(planned), "{p:?}");
        let lag = p.start_lag_s().unwrap();
        assert!((0.0..0.5).contains(&lag), "started {lag:.3} s late: {p:?}");
    }
    for line in ["start lag: median ", "host CPU: "] {
        assert!(stdout.contains(line), "no {line:?} in {stdout}");
    }
}

/// The experiment the refusals try to run: `program` on two nodes of 172.31.25.0/24.
fn refused_experiment(program: &str) -> String {
    experiment(
        "172.31.25.0/24",
        "0ms",
        &[("g", 2)],
        &format!(
            "roles:\n\
             - {{name: r, nodes: g, command: {program}}}\n\
             stop: {{after: 5s}}\n"
        ),
    )
}

/// Runs `command` (shell command lines whose only output on stderr is that of `p2plab
/// run` of `refusals.yaml`, its exit status that of the run) with `yaml` as
/// `refusals.yaml` in `work`, and checks that the run was refused before anything was set
/// up: exit status `code` (2 for what the experiment asks, 1 for the machine), no address,
/// no state file and no result directory afterwards. Returns the one line the refusal
/// printed.
fn refused(work: &Path, yaml: &str, code: i32, command: &str) -> String {
    let out = leaves_nothing(work, "refusals.yaml", yaml, command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        !work.join("results").exists(),
        "a result directory was made"
    );
    stderr.trim_end().to_string()
}

#[test]
fn run_refuses_before_setting_anything_up() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plain = refused_experiment("/bin/true");

    std::fs::write(w.join("static.c"), "int main(void) { return 0; }\n").unwrap();
    let gcc = std::process::Command::new("gcc")
        .args(["-static", "-o"])
        .arg(w.join("static"))
        .arg(w.join("static.c"))
        .status()
        .unwrap();
    assert!(gcc.success());
    let program = w.join("static").display().to_string();
    let line = refused(
        w,
        &refused_experiment(&program),
        2,
        &format!("{RUN} refusals.yaml"),
    );
    assert!(
        line.contains(&program) && line.contains("statically linked"),
        "{line}"
    );

    let line = refused(
        w,
        &plain,
        1,
        "\"$P2PLAB\" run --quiet --shim /nonexistent/libp2plab_shim.so refusals.yaml",
    );
    assert!(line.contains("/nonexistent/libp2plab_shim.so"), "{line}");

    // As nobody, without capabilities: the files must be readable to it.
    std::fs::set_permissions(w, Permissions::from_mode(0o755)).unwrap();
    let line = refused(
        w,
        &plain,
        1,
        &format!("setpriv --reuid=65534 --regid=65534 --clear-groups {RUN} refusals.yaml"),
    );
    assert!(line.contains("CAP_NET_ADMIN"), "{line}");

    // A network of the experiment's name is up (on other addresses); it stays as it was.
    std::fs::write(
        w.join("other.yaml"),
        "profiles: {p: {up: 1mbit, down: 1mbit}}\ndefaults: {profile: p}\naddress_plan: {base: 172.31.26.0/24}\ngroups: [{name: g, nodes: 2}]\n",
    )
    .unwrap();
    let line = refused(
        w,
        &plain,
        1,
        &format!(
            "\"$P2PLAB\" up other.yaml --name refusals >/dev/null || exit 9; {RUN} refusals.yaml; rc=$?;
             [ \"$(ip -4 -o addr show dev lo | grep -c ' 172\\.31\\.26\\.')\" = 2 ] || exit 8;
             \"$P2PLAB\" down refusals >/dev/null || exit 7; (exit $rc)"
        ),
    );
    assert!(line.contains("already up"), "{line}");

    // A backend the kernel lacks is named, never silently replaced.
    let netem = in_netns("\"$P2PLAB\" doctor", &w.join("state"), w);
    let doctor = succeeded(&netem);
    let has_netem = doctor
        .lines()
        .any(|l| l.starts_with("  netem") && l.ends_with("yes"));
    if has_netem {
        eprintln!("this kernel has sch_netem: `--shaping netem` cannot be refused here");
        let (_, results) = run(w, "./netem.yaml", &plain, "--shaping netem", &[]);
        assert_eq!(results.run.backend, Backend::Netem);
    } else {
        let line = refused(
            w,
            &plain,
            1,
            &format!("{RUN} --shaping netem refusals.yaml"),
        );
        assert!(
            line.contains("netem is not available") && line.contains("sch_netem"),
            "{line}"
        );
    }
}
