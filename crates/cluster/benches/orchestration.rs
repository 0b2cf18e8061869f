//! The controller's own cost at cluster scale, on paper: `controller::run_on` drives H fake
//! hosts (H = 2 ... 200) through a whole run of N nodes (5,000 by default), each host an
//! agent played by a local process (this binary again) that speaks the protocol exactly
//! over its pipes, so that the 180-machine run is sized before anyone books a cluster.
//!
//! The controller runs in a child process of its own (this binary in its `controller`
//! role), so that its CPU time and peak memory (`getrusage(RUSAGE_SELF)` at its end) are
//! its alone, not the fake agents'. Per H it reports each phase's wall time (`Timings`:
//! deploy, preflight, ready, to time 0), the last start's `start_s`, the run's length past
//! the last planned end, the controller's CPU time and peak RSS, and the cost per host: the
//! marginal CPU time of one more host between successive H, and a straight-line fit.
//!
//! A fake agent answers `hello`, `clock` (its own clock), `preflight` (no problems, backend
//! `nfqueue`) and `setup` (`ready` with its nodes' count), and from time 0 reports, for
//! each of its nodes in the order of their planned starts (`start: {at: 0s, every: 1ms}`),
//! `started` at the planned time, two metric `sample`s during its life and its `ended` row
//! (exited 0) [`LIFE`] after its start; it sends `heartbeat` every second, and answers
//! `stop` with `done`. What it leaves out: no SSH (connections, authentication, copying
//! the binaries, starting the agent: the deploy phase here is one local process spawn per
//! host), no network set-up, cgroups or processes on the hosts, no real preflight checks,
//! and no logs to pull; so the figures are the controller's side of the conversation
//! alone: parsing and writing messages, the barrier, the stop rule, the rows written as
//! they come, `run.json` and the report.
//!
//! `cargo bench -p cluster --bench orchestration` (no root needed; about two minutes). Prints a
//! table, and writes JSON to `$P2PLAB_BENCH_OUT`, or `bench-orchestration.json` in the
//! target directory. `P2PLAB_BENCH_NODES` and `P2PLAB_BENCH_HOSTS` (comma-separated)
//! change N and the host counts.

use cluster::controller::{self, Carrier, Deployed, Payload, RunArgs};
use cluster::inventory::HostEntry;
use cluster::link::Link;
use cluster::protocol::{self, FromAgent, ToAgent, HEARTBEAT, VERSION};
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which part this process plays: unset (the benchmark), `controller` or `agent`.
const ROLE: &str = "P2PLAB_BENCH_ROLE";
/// The benchmark's work directory (experiment, inventories, results), for the controller.
const WORK: &str = "P2PLAB_BENCH_WORK";
/// How many hosts the controller drives.
const HOSTS: &str = "P2PLAB_BENCH_HOST_COUNT";

const DEFAULT_HOSTS: &[usize] = &[2, 4, 8, 16, 50, 100, 200];
const DEFAULT_NODES: usize = 5000;
/// One start every this long, in node order, from time 0.
const EVERY: Duration = Duration::from_millis(1);
/// How long each fake process lives.
const LIFE: Duration = Duration::from_secs(2);
/// Metric samples per fake process.
const SAMPLES: u32 = 2;
/// The nodes' block: node k (1-based) has the block's address + k.
const NODE_BLOCK: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 0);

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("agent") => std::process::exit(fake_agent()),
        Ok("controller") => return run_controller(),
        _ => {}
    }
    if std::env::args().all(|a| a != "--bench") {
        return; // `cargo test` runs benches once without --bench: nothing to smoke-test here
    }
    bench();
}

/// The count in `var`, or `default`.
fn from_env<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench() {
    let nodes: usize = from_env("P2PLAB_BENCH_NODES", DEFAULT_NODES);
    let host_counts: Vec<usize> = std::env::var("P2PLAB_BENCH_HOSTS").map_or_else(
        |_| DEFAULT_HOSTS.to_vec(),
        |v| v.split(',').filter_map(|h| h.trim().parse().ok()).collect(),
    );
    let work = tempfile::tempdir().unwrap();
    // The shim is never used: nothing runs under it. The controller only checks it exists.
    std::fs::write(work.path().join("libp2plab_shim.so"), "").unwrap();
    std::fs::write(work.path().join("exp.yaml"), experiment(nodes)).unwrap();
    let mut rows = Vec::new();
    for &h in &host_counts {
        std::fs::write(work.path().join(format!("hosts{h}.yaml")), inventory(h)).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "controller")
            .env(WORK, work.path())
            .env(HOSTS, h.to_string())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "the controller of {h} hosts failed");
        let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!("{h} hosts: {row}");
        rows.push(row);
    }
    let table = table(&rows);
    print!("{table}");
    let json = serde_json::json!({
        "nodes": nodes,
        "start_every_ms": EVERY.as_secs_f64() * 1e3,
        "process_life_s": LIFE.as_secs_f64(),
        "samples_per_process": SAMPLES,
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "runs": rows,
        "cpu_fit": fit(&rows),
    });
    let out = std::env::var_os("P2PLAB_BENCH_OUT").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(
                    || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                    PathBuf::from,
                )
                .join("bench-orchestration.json")
        },
        PathBuf::from,
    );
    let _ = std::fs::create_dir_all(out.parent().unwrap_or(Path::new(".")));
    std::fs::write(&out, format!("{json:#}\n")).unwrap();
    println!("written to {}", out.display());
}

/// N nodes in one group, one role whose process is `true`, one start per [`EVERY`].
fn experiment(nodes: usize) -> String {
    format!(
        "name: bench-orchestration
topology:
  address_plan: {{base: 10.64.0.0/16}}
  profiles: {{lan: {{up: 100mbit, down: 100mbit}}}}
  defaults: {{profile: lan}}
  groups: [{{name: n, nodes: {nodes}}}]
roles:
  - name: peer
    nodes: n
    command: 'true'
    start: {{at: 0s, every: {}ms, jitter: 0ms, order: declared}}
stop: {{exited: [peer], after: 10m}}
",
        EVERY.as_millis()
    )
}

/// H hosts at distinct addresses (nothing is ever sent to them), placed round robin.
fn inventory(hosts: usize) -> String {
    let mut s = String::from("hosts:\n");
    for h in 0..hosts {
        s += &format!(
            "  - {{name: f{}, address: 10.250.{}.{}, dev: eth0}}\n",
            h + 1,
            h / 250,
            h % 250 + 1
        );
    }
    s + "placement: round_robin\n"
}

/// The table printed at the end: a row per host count.
fn table(rows: &[serde_json::Value]) -> String {
    let mut t = String::from(
        "hosts  deploy_s  preflight_s  ready_s  to_t0_s  last_start_s  overhang_s  cpu_s  cpu_ms_per_host  marginal_ms_per_host  peak_rss_mb\n",
    );
    let mut prev: Option<(f64, f64)> = None;
    for r in rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let (h, cpu) = (f("hosts"), f("cpu_s"));
        let marginal = prev.map_or("-".to_string(), |(ph, pc)| {
            format!("{:.2}", (cpu - pc) / (h - ph) * 1e3)
        });
        t += &format!(
            "{h:>5}  {:>8.3}  {:>11.3}  {:>7.3}  {:>7.3}  {:>12.3}  {:>10.3}  {cpu:>5.2}  {:>15.2}  {marginal:>20}  {:>11.1}\n",
            f("deploy_s"),
            f("preflight_s"),
            f("ready_s"),
            f("to_t0_s"),
            f("last_start_s"),
            f("overhang_s"),
            cpu / h * 1e3,
            f("peak_rss_mb"),
        );
        prev = Some((h, cpu));
    }
    let fit = fit(rows);
    t + &format!(
        "controller CPU ~ {:.3} s + {:.2} ms per host (least squares over these runs; r² {:.3})\n",
        fit["fixed_s"].as_f64().unwrap_or(f64::NAN),
        fit["per_host_ms"].as_f64().unwrap_or(f64::NAN),
        fit["r2"].as_f64().unwrap_or(f64::NAN),
    )
}

/// The straight line `cpu_s = fixed + per_host * hosts` through the runs.
fn fit(rows: &[serde_json::Value]) -> serde_json::Value {
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r["hosts"].as_f64()?, r["cpu_s"].as_f64()?)))
        .collect();
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    serde_json::json!({
        "fixed_s": my - slope * mx,
        "per_host_ms": slope * 1e3,
        "r2": sxy * sxy / (sxx * syy),
    })
}

/// The controller's part: one run over the fake hosts, then one JSON line on stdout.
fn run_controller() {
    let work = PathBuf::from(std::env::var_os(WORK).expect("the work directory"));
    let hosts: usize = from_env(HOSTS, 0);
    let args = RunArgs {
        experiment: work.join("exp.yaml"),
        inventory: work.join(format!("hosts{hosts}.yaml")),
        shaping: "auto".into(),
        results: work.join("results"),
        shim: Some(work.join("libp2plab_shim.so")),
        quiet: true,
        accept_new_host_keys: false,
        max_clock_offset: Duration::from_millis(50),
        hosts: None,
    };
    let carrier = Local(Mutex::new(Vec::new()));
    let began = Instant::now();
    let done = controller::run_on(&args, &carrier).unwrap_or_else(|e| panic!("{e}"));
    let wall = began.elapsed().as_secs_f64();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let (user, sys) = (secs(usage.user_time()), secs(usage.system_time()));
    for mut agent in carrier.0.into_inner().unwrap() {
        let _ = agent.wait();
    }
    let results = results::load(&done.dir).unwrap();
    let last_start = results
        .processes
        .iter()
        .map(|p| p.start_s)
        .fold(0.0, f64::max);
    let last_planned_end = results
        .processes
        .iter()
        .filter_map(|p| p.planned_s)
        .fold(0.0, f64::max)
        + LIFE.as_secs_f64();
    let t = &done.timings;
    let row = serde_json::json!({
        "hosts": hosts,
        "processes": results.processes.len(),
        "exited_ok": results.processes.iter().filter(|p| p.completion_s().is_some()).count(),
        "failed_hosts": done.failed_hosts.len(),
        "deploy_s": t.deployed_s,
        "preflight_s": t.preflight_s - t.deployed_s,
        "ready_s": t.ready_s - t.preflight_s,
        "to_t0_s": t.start_s,
        "last_start_s": last_start,
        "run_s": results.run.duration_s,
        "overhang_s": results.run.duration_s - last_planned_end,
        "wall_s": wall,
        "cpu_user_s": user,
        "cpu_sys_s": sys,
        "cpu_s": user + sys,
        // ru_maxrss is in KiB on Linux.
        "peak_rss_mb": usage.max_rss() as f64 / 1024.0,
    });
    println!("{row}");
}

/// Hosts played by local processes: this binary in its `agent` role, over its pipes.
struct Local(Mutex<Vec<Child>>);

impl Carrier for Local {
    fn deploy(
        &self,
        hosts: &[HostEntry],
        _payload: &Payload,
        done: &(dyn Fn() + Sync),
    ) -> Vec<Result<Deployed, String>> {
        let exe = std::env::current_exe().unwrap();
        hosts
            .iter()
            .map(|host| {
                let started = Instant::now();
                let mut cmd = Command::new(&exe);
                cmd.env(ROLE, "agent").env_remove(WORK);
                let (link, child) = Link::local(cmd).map_err(|e| e.to_string())?;
                self.0.lock().unwrap().push(child);
                done();
                Ok(Deployed {
                    link,
                    run_dir: format!("/nonexistent/{}", host.name),
                    shim: "/nonexistent/libp2plab_shim.so".into(),
                    copied: false,
                    took: started.elapsed(),
                })
            })
            .collect()
    }

    fn pull_logs(
        &self,
        hosts: &[HostEntry],
        _run_dirs: &[Option<String>],
        _into: &Path,
    ) -> Vec<Result<u64, String>> {
        hosts.iter().map(|_| Ok(0)).collect()
    }
}

/// The fake agent's way out: one line per message, flushed, never mixed.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn send(&self, m: &FromAgent) {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(w, "{}", protocol::line(m)).and_then(|()| w.flush());
    }
}

/// Plays one host over stdin and stdout until `stop` (or the controller is gone); the
/// exit status.
fn fake_agent() -> i32 {
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(m) = line
                .map_err(|e| e.to_string())
                .and_then(|l| protocol::parse(&l))
            else {
                break;
            };
            if tx.send(m).is_err() {
                return;
            }
        }
    });
    let beat = out.clone();
    // Bounded: an hour of heartbeats, far beyond any run here; the process exits first.
    std::thread::spawn(move || {
        for _ in 0..3600 {
            std::thread::sleep(HEARTBEAT);
            beat.send(&FromAgent::Heartbeat);
        }
    });
    let mut local: Vec<usize> = Vec::new();
    loop {
        let Ok(m) = rx.recv() else { return 1 };
        match m {
            ToAgent::Hello { host, .. } => out.send(&FromAgent::Hello {
                version: VERSION,
                host,
                kernel: "fake".into(),
                cpus: 1,
                pid: std::process::id(),
            }),
            ToAgent::Clock { seq } => out.send(&FromAgent::Clock {
                seq,
                unix_us: unix_us(SystemTime::now()),
            }),
            ToAgent::Preflight { .. } => out.send(&FromAgent::Preflight {
                backend: Some("nfqueue".into()),
                problems: vec![],
            }),
            ToAgent::Setup { job } => {
                local = job.local;
                out.send(&FromAgent::Ready {
                    processes: local.len(),
                    backend: "nfqueue".into(),
                });
            }
            ToAgent::Start { at_unix_us } => return fake_run(&out, &rx, &local, at_unix_us),
            ToAgent::Stop { .. } => return 0,
            ToAgent::Heartbeat => {}
        }
    }
}

/// What a fake node does, at a time from time 0.
enum Step {
    Start,
    Sample(u32),
    End,
}

/// The run of `local` nodes from time 0 at `at_unix_us`, then `done` at the stop.
fn fake_run(out: &Out, rx: &Receiver<ToAgent>, local: &[usize], at_unix_us: i64) -> i32 {
    let ahead = Duration::from_micros((at_unix_us - unix_us(SystemTime::now())).max(0) as u64);
    let t0 = Instant::now() + ahead;
    let mut steps: Vec<(Duration, usize, Step)> = Vec::new();
    for &node in local {
        let planned = EVERY * node as u32;
        steps.push((planned, node, Step::Start));
        for k in 1..=SAMPLES {
            steps.push((planned + LIFE * k / (SAMPLES + 1), node, Step::Sample(k)));
        }
        steps.push((planned + LIFE, node, Step::End));
    }
    steps.sort_by_key(|s| s.0);
    let mut started = vec![0.0; local.iter().max().map_or(0, |&m| m + 1)];
    for (at, node, step) in steps {
        // Waits for the step's time; a stop (or the controller's loss) ends the run early.
        loop {
            let left = (t0 + at).saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(ToAgent::Stop { .. }) => return done(out, t0),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return 1,
            }
        }
        let now = t0.elapsed().as_secs_f64();
        let name = format!("n-{}", node + 1);
        match step {
            Step::Start => {
                started[node] = now;
                out.send(&FromAgent::Started {
                    node,
                    pid: 100_000 + node as u32,
                    at_s: now,
                });
            }
            Step::Sample(k) => out.send(&FromAgent::Sample {
                sample: results::MetricSample {
                    time_s: now,
                    node: name,
                    role: "peer".into(),
                    name: "progress".into(),
                    value: f64::from(k * 100 / (SAMPLES + 1)),
                },
            }),
            Step::End => out.send(&FromAgent::Ended {
                row: Box::new(results::Process {
                    node: name,
                    role: "peer".into(),
                    group: "n".into(),
                    ip: Ipv4Addr::from(u32::from(NODE_BLOCK) + node as u32 + 1).to_string(),
                    pid: Some(100_000 + node as u32),
                    planned_s: Some((EVERY * node as u32).as_secs_f64()),
                    start_s: started[node],
                    end_s: Some(now),
                    status: results::Status::Exited,
                    exit_code: Some(0),
                    signal: None,
                    cpu_user_s: None,
                    cpu_sys_s: None,
                    peak_rss_kb: None,
                    bytes_sent: None,
                    bytes_received: None,
                    host: None,
                }),
            }),
        }
    }
    // Every process ended: the controller's stop rule sends the stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(ToAgent::Stop { .. }) => return done(out, t0),
            Ok(_) => {}
            Err(_) => return 1,
        }
    }
}

/// Says the run here is over.
fn done(out: &Out, t0: Instant) -> i32 {
    out.send(&FromAgent::Done {
        stop: "stopped by the controller".into(),
        duration_s: t0.elapsed().as_secs_f64(),
        host_cpu: None,
        lost: String::new(),
    });
    0
}

/// `t` in µs since the Unix epoch.
fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
