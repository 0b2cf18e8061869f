//! Cluster mode on a real SSH cluster: a namespace cluster of 16 hosts on this machine
//! (`cluster/ns-cluster`, subnet 172.31.201), real sshds, the real `p2plab agent` on every
//! host, and the controller in the cluster's controller namespace. It measures:
//!
//! - **(a)** the time from the command to every process started, for 1,000 nodes (`sleep`,
//!   all due at time 0, the run stopped by its duration) on 8 hosts: the controller's
//!   `Timings` (deploy, preflight, barrier, time 0) and the last start's `start_s`;
//! - **(b)** each host's deploy time, cold (the binaries' checksum directories that p2plab
//!   made under `/var/tmp/p2plab/bin` removed first: the hosts share this machine's file
//!   system, so every host copies them at once) and warm (already there);
//! - **(c)** the controller's CPU time and peak RSS on 2, 4, 8 and 16 hosts, same
//!   experiment, warm;
//! - **(d)** `p2plab sweep` of a small CPU-bound experiment at ratios 3 and 12, and its table;
//! - what every SSH command costs here: this machine's root `~/.bashrc` runs for each
//!   (sshd starts commands and SFTP through the login shell), timed as `ssh h1 true` and as
//!   sourcing it locally.
//!
//! The controller is this binary again in a `controller` role, in the controller
//! namespace, calling the same code as `p2plab run --hosts` (`controller::run_on` over SSH)
//! with the `p2plab` binary of this package as what is deployed; its CPU time and peak
//! RSS are its own `getrusage(RUSAGE_SELF)`, the agents' and sshds' not included.
//!
//! `cargo bench -p cli --bench cluster` (root; about three minutes). Prints a summary, and
//! writes JSON to target/bench-cluster.json.

use cluster::controller::{self, Carrier, Deployed, Payload, RunArgs, Ssh};
use cluster::inventory::HostEntry;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which part this process plays: unset (the benchmark) or `controller`.
const ROLE: &str = "P2PLAB_BENCH_ROLE";
const SUBNET: &str = "172.31.201";
const HOSTS: usize = 16;
const NODES: usize = 1000;
/// How long each `sleep` lasts, and when the run is stopped.
const SLEEP_S: u64 = 20;
const STOP_S: u64 = 12;

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("controller") {
        return run_controller();
    }
    if std::env::args().all(|a| a != "--bench") {
        return; // `cargo test` runs benches once without --bench: nothing to smoke-test here
    }
    bench();
}

/// A namespace cluster, removed (`ns-cluster down`) on drop.
struct NsCluster(tempfile::TempDir);

impl NsCluster {
    fn up(hosts: usize) -> NsCluster {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(script())
            .arg("up")
            .arg(dir.path())
            .arg(hosts.to_string())
            .args(["--subnet", SUBNET])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let cluster = NsCluster(dir);
        assert!(status.success(), "ns-cluster up failed");
        cluster
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.path().join(file)
    }

    /// `command` in the controller namespace.
    fn in_ctl(&self, program: &Path) -> Command {
        let ctl = std::fs::read_to_string(self.path("ctl")).unwrap();
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", ctl.trim()))
            .arg(program);
        c
    }
}

impl Drop for NsCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("down")
            .arg(self.0.path())
            .status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/ns-cluster")
}

fn p2plab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_p2plab"))
}

fn shim() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .with_file_name("libp2plab_shim.so")
}

/// 1,000 nodes in 4 groups at modest rates, each `sleep`ing, all due at time 0, the run
/// stopped by its duration.
fn experiment() -> String {
    format!(
        "name: bench-cluster
topology:
  address_plan: {{base: 10.96.0.0/16}}
  profiles: {{dsl: {{up: 1mbit, down: 8mbit, latency: 10ms}}}}
  defaults: {{profile: dsl, delay: 20ms}}
  groups:
    - {{name: a, nodes: {q}}}
    - {{name: b, nodes: {q}}}
    - {{name: c, nodes: {q}}}
    - {{name: d, nodes: {q}}}
roles:
  - {{name: sleeper, nodes: '*', command: 'sleep {SLEEP_S}'}}
stop: {{after: {STOP_S}s}}
",
        q = NODES / 4
    )
}

/// The sweep's experiment: 24 nodes, each a fixed amount of shell arithmetic (about a
/// second of one core's time alone), one start every 100 ms.
const SWEEP: &str = "name: bench-sweep
topology:
  address_plan: {base: 10.97.0.0/16}
  profiles: {lan: {up: 10mbit, down: 10mbit, latency: 5ms}}
  defaults: {profile: lan}
  groups: [{name: w, nodes: 24}]
roles:
  - name: work
    nodes: w
    command: sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'
    start: {at: 0s, every: 100ms}
stop: {exited: [work], after: 5m}
";

/// One controller run of `exp` on the first `hosts` hosts of `cluster`; its JSON row.
fn controller_run(
    cluster: &NsCluster,
    exp: &Path,
    hosts: usize,
    results: &Path,
) -> serde_json::Value {
    let out = cluster
        .in_ctl(&std::env::current_exe().unwrap())
        .env(ROLE, "controller")
        .env("BENCH_EXPERIMENT", exp)
        .env("BENCH_INVENTORY", cluster.path("hosts.yaml"))
        .env("BENCH_HOSTS", hosts.to_string())
        .env("BENCH_RESULTS", results)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the controller on {hosts} hosts failed"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The controller's part: one run, then one JSON line on stdout.
fn run_controller() {
    let var = |v: &str| PathBuf::from(std::env::var_os(v).unwrap());
    let hosts: usize = std::env::var("BENCH_HOSTS").unwrap().parse().unwrap();
    let args = RunArgs {
        experiment: var("BENCH_EXPERIMENT"),
        inventory: var("BENCH_INVENTORY"),
        shaping: "auto".into(),
        results: var("BENCH_RESULTS"),
        shim: Some(shim()),
        quiet: true,
        accept_new_host_keys: false,
        max_clock_offset: Duration::from_millis(50),
        hosts: Some(hosts),
    };
    let inv = cluster::inventory::load(&args.inventory).unwrap();
    let carrier = Deploying(Ssh(controller::ssh_config(&inv, false)));
    let began = Instant::now();
    let began_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let done = controller::run_on(&args, &carrier).unwrap_or_else(|e| panic!("{e}"));
    let wall = began.elapsed().as_secs_f64();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let results = results::load(&done.dir).unwrap();
    let starts: Vec<f64> = results.processes.iter().map(|p| p.start_s).collect();
    let t = &done.timings;
    let row = serde_json::json!({
        "hosts": hosts,
        "processes": results.processes.len(),
        "failed": done.totals.failed,
        "failed_hosts": done.failed_hosts,
        "deploy_s": t.deployed_s,
        "preflight_s": t.preflight_s - t.deployed_s,
        "ready_s": t.ready_s - t.preflight_s,
        "to_t0_s": t.start_s,
        "deploy_per_host_s": t.deploy.iter().map(|d| d.map(|d| d.0)).collect::<Vec<_>>(),
        "copied": t.deploy.iter().map(|d| d.is_some_and(|d| d.1)).collect::<Vec<_>>(),
        "first_start_s": starts.iter().copied().fold(f64::INFINITY, f64::min),
        "last_start_s": starts.iter().copied().fold(0.0, f64::max),
        // From the command (this process's call) to the last start.
        "to_all_started_s": results.run.started_unix - began_unix
            + starts.iter().copied().fold(0.0, f64::max),
        "wall_s": wall,
        "cpu_user_s": secs(usage.user_time()),
        "cpu_sys_s": secs(usage.system_time()),
        "cpu_s": secs(usage.user_time()) + secs(usage.system_time()),
        // ru_maxrss is in KiB on Linux.
        "peak_rss_mb": usage.max_rss() as f64 / 1024.0,
    });
    println!("{row}");
}

/// SSH, deploying this package's `p2plab` rather than the running binary (this benchmark).
struct Deploying(Ssh);

impl Carrier for Deploying {
    fn deploy(
        &self,
        hosts: &[HostEntry],
        payload: &Payload,
        done: &(dyn Fn() + Sync),
    ) -> Vec<Result<Deployed, String>> {
        let payload = Payload {
            p2plab: p2plab(),
            shim: payload.shim.clone(),
            inputs: payload.inputs.clone(),
            results: payload.results.clone(),
            prepared: payload.prepared.clone(),
            run_id: payload.run_id.clone(),
        };
        self.0.deploy(hosts, &payload, done)
    }

    fn pull_logs(
        &self,
        hosts: &[HostEntry],
        run_dirs: &[Option<String>],
        into: &Path,
    ) -> Vec<Result<u64, String>> {
        self.0.pull_logs(hosts, run_dirs, into)
    }
}

/// Removes the checksum directories p2plab made for `files` under the hosts' shared
/// `/var/tmp/p2plab/bin`, so that the next deploy is cold.
fn make_cold(files: &[PathBuf]) {
    for f in files {
        let out = Command::new("sha256sum").arg(f).output().unwrap();
        let digest: String = String::from_utf8_lossy(&out.stdout)
            .chars()
            .take(16)
            .collect();
        let dir = Path::new(controller::WORK_DIR).join("bin").join(&digest);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes what the hosts kept of the runs whose results are under `results` (their
/// `/var/tmp/p2plab/runs/<run>/`, on the file system they share with this machine): the
/// runs, and a sweep's (`<sweep>/ratio-R-i/<run>`), `depth` levels down at most.
fn forget_runs(results: &Path, depth: u32) {
    if results.join("run.json").exists() {
        if let Some(name) = results.file_name() {
            let runs = Path::new(controller::WORK_DIR).join("runs");
            let _ = std::fs::remove_dir_all(runs.join(name));
        }
        return;
    }
    if depth == 0 {
        return;
    }
    for entry in std::fs::read_dir(results).into_iter().flatten().flatten() {
        forget_runs(&entry.path(), depth - 1);
    }
}

/// The median wall time of `runs` runs of `command`, and the CPU time of its children.
fn timed(runs: u32, mut command: impl FnMut() -> Command) -> (f64, f64) {
    let children = || {
        let u =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        secs(u.user_time()) + secs(u.system_time())
    };
    let mut walls = Vec::new();
    let cpu0 = children();
    for _ in 0..runs {
        let t = Instant::now();
        let status = command().stdout(Stdio::null()).status().unwrap();
        assert!(status.success());
        walls.push(t.elapsed().as_secs_f64());
    }
    walls.sort_by(f64::total_cmp);
    (
        walls[walls.len() / 2],
        (children() - cpu0) / f64::from(runs),
    )
}

fn bench() {
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("results");
    let exp = work.path().join("bench-cluster.yaml");
    std::fs::write(&exp, experiment()).unwrap();
    let cluster = NsCluster::up(HOSTS);

    // What the login shell costs each SSH command.
    let (ssh_wall, _) = timed(5, || {
        let mut c = cluster.in_ctl(Path::new("ssh"));
        c.args([
            "-F",
            "/dev/null",
            "-n",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            cluster.path("known_hosts").display()
        ))
        .arg("-i")
        .arg(cluster.path("id_ed25519"))
        .args([&format!("root@{SUBNET}.11"), "true"]);
        c
    });
    let (bashrc_wall, bashrc_cpu) = timed(5, || {
        let mut c = Command::new("bash");
        c.args(["-c", ". ~/.bashrc"]);
        c
    });
    eprintln!("ssh h1 true: {ssh_wall:.3} s; sourcing ~/.bashrc: {bashrc_wall:.3} s wall, {bashrc_cpu:.3} s CPU");

    // (a) and (b): 8 hosts, cold then warm.
    make_cold(&[p2plab(), shim()]);
    let cold = controller_run(&cluster, &exp, 8, &results);
    eprintln!("8 hosts, cold: {cold}");
    let warm = controller_run(&cluster, &exp, 8, &results);
    eprintln!("8 hosts, warm: {warm}");

    // (c): the controller's cost against hosts.
    let mut scaling = Vec::new();
    for hosts in [2, 4, 8, 16] {
        let row = if hosts == 8 {
            warm.clone()
        } else {
            let row = controller_run(&cluster, &exp, hosts, &results);
            eprintln!("{hosts} hosts: {row}");
            row
        };
        scaling.push(row);
    }

    // (d): a sweep, with the real `p2plab`.
    let sweep_exp = work.path().join("bench-sweep.yaml");
    std::fs::write(&sweep_exp, SWEEP).unwrap();
    let sweep = cluster
        .in_ctl(&p2plab())
        .arg("sweep")
        .arg(&sweep_exp)
        .arg("--hosts")
        .arg(cluster.path("hosts.yaml"))
        .args(["--ratios", "3,12", "--quiet", "--shim"])
        .arg(shim())
        .arg("--results")
        .arg(&results)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let sweep_table = String::from_utf8_lossy(&sweep.stdout).into_owned();
    eprintln!("sweep (exit {}):\n{sweep_table}", sweep.status);

    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let per_host = |r: &serde_json::Value| {
        let d: Vec<f64> = r["deploy_per_host_s"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        (
            d.iter().sum::<f64>() / d.len() as f64,
            d.iter().copied().fold(0.0, f64::max),
        )
    };
    let mut summary = format!(
        "(a) {NODES} nodes on 8 hosts, warm: deploy {:.2} s, preflight {:.2} s, setup to ready {:.2} s, time 0 at {:.2} s, last start {:.2} s after it: all started {:.2} s after the command; preflight + deploy + start {:.2} s (target < 10 s)\n",
        f(&warm, "deploy_s"),
        f(&warm, "preflight_s"),
        f(&warm, "ready_s"),
        f(&warm, "to_t0_s"),
        f(&warm, "last_start_s"),
        f(&warm, "to_all_started_s"),
        f(&warm, "to_all_started_s"),
    );
    let (cold_mean, cold_max) = per_host(&cold);
    let (warm_mean, warm_max) = per_host(&warm);
    summary += &format!(
        "(b) deploy per host on 8 hosts: cold mean {cold_mean:.2} s, max {cold_max:.2} s; warm mean {warm_mean:.2} s, max {warm_max:.2} s\n(c) hosts  cpu_s  cpu_ms_per_host  peak_rss_mb  to_all_started_s\n"
    );
    for r in &scaling {
        summary += &format!(
            "    {:>5}  {:>5.2}  {:>15.1}  {:>11.1}  {:>16.2}\n",
            f(r, "hosts"),
            f(r, "cpu_s"),
            f(r, "cpu_s") / f(r, "hosts") * 1e3,
            f(r, "peak_rss_mb"),
            f(r, "to_all_started_s"),
        );
    }
    summary += &format!(
        "(d) p2plab sweep --ratios 3,12 (24 CPU-bound nodes on 8 then 2 hosts, one machine):\n{sweep_table}\nSSH: `ssh h1 true` takes {ssh_wall:.3} s; root's ~/.bashrc alone {bashrc_wall:.3} s wall, {bashrc_cpu:.3} s CPU per command\n"
    );
    forget_runs(&results, 3);
    print!("{summary}");
    let json = serde_json::json!({
        "nodes": NODES,
        "cold_8": cold,
        "warm_8": warm,
        "scaling": scaling,
        "sweep": {"ratios": [3, 12], "exit": sweep.status.code(), "table": sweep_table},
        "ssh_true_s": ssh_wall,
        "bashrc_wall_s": bashrc_wall,
        "bashrc_cpu_s": bashrc_cpu,
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    // Beside the other benchmarks' JSON (`common::publish`), in the workspace's target/.
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-cluster.json");
    let _ = std::fs::create_dir_all(out.parent().unwrap());
    std::fs::write(&out, format!("{json:#}\n")).unwrap();
    println!("written to {}", out.display());
}
