//! Launch rate and controller cost: `p2plab run` starts 1,000 processes (`sleep`, under the
//! shim, each in its cgroup) all due at once, in a scratch network namespace, and they run
//! for a while. Reported as JSON (also written to target/launch-rate.json): processes
//! started per second (from the runs's own start times), and the controller's CPU time and
//! peak memory over the whole run (`/usr/bin/time`). Target: >= 500 processes/s.
//!
//! `cargo bench -p cli --bench launch_rate` (root).

mod common;

const PROCESSES: usize = 1000;
const RUN_S: u64 = 15;

fn main() {
    if std::env::args().all(|a| a != "--bench") {
        return; // `cargo test` runs benches once without --bench: nothing to smoke-test here
    }
    let work = tempfile::tempdir().unwrap();
    let exp = work.path().join("launch.yaml");
    std::fs::write(
        &exp,
        format!(
            "topology:\n  address_plan: {{base: 10.90.0.0/16}}\n  profiles: {{lan: {{up: 100mbit, down: 100mbit}}}}\n  defaults: {{profile: lan}}\n  groups: [{{name: n, nodes: {PROCESSES}}}]\nroles:\n  - {{name: sleeper, nodes: n, command: sleep {RUN_S}}}\nstop: {{exited: [sleeper], after: 5m}}\n"
        ),
    )
    .unwrap();
    let timing = work.path().join("time.txt");
    let results = common::run(
        &exp,
        work.path(),
        &format!("/usr/bin/time -f '%e %U %S %M' -o {}", timing.display()),
    );
    let starts: Vec<f64> = results.processes.iter().map(|p| p.start_s).collect();
    let first = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let last = starts.iter().copied().fold(0.0, f64::max);
    let all_ran = results.processes.iter().all(|p| p.completion_s().is_some());
    let t: Vec<f64> = std::fs::read_to_string(&timing)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let json = serde_json::json!({
        "processes": PROCESSES,
        "all_exited_ok": all_ran,
        "launch_span_s": last - first,
        "launch_rate_per_s": (PROCESSES - 1) as f64 / (last - first),
        "controller_wall_s": t[0],
        "controller_cpu_user_s": t[1],
        "controller_cpu_sys_s": t[2],
        "controller_cpu_share_of_one_core": (t[1] + t[2]) / t[0],
        "controller_peak_rss_mb": t[3] / 1024.0,
        "run_s": RUN_S,
    });
    common::publish("launch-rate", &json);
}
