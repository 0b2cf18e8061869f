//! A cluster host's share of a run, as the agent drives it: `runner::prepare` then
//! `Prepared::run` with 2 of 4 nodes here (the other 2 routed through a made-up gateway on
//! a veth), a result directory given and filled before (the prepare commands ran
//! elsewhere), time 0 on the host's clock and the stop requested by the caller. Root, in a
//! network namespace of its own: the test runs itself again under `unshare -n`.

use results::Status;
use runner::{Observer, RunArgs, Share, Start, Stop, StopReason};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Set in the copy of this test that runs in the new network namespace.
const INSIDE: &str = "P2PLAB_SHARE_TEST_INSIDE";
/// The experiment's name, used by no other test (its cgroups are `p2plab/<name>-<pid>`).
const NAME: &str = "runner-share-two-of-four";
/// The host's own address on the veth, and the made-up gateway to the other host.
const HOST: &str = "172.31.61.1/24";
const GATEWAY: &str = "172.31.61.2";

/// Four nodes, 172.31.62.1 to .4; `prepare` would fail if it ran here; each process reads
/// the file put in the result directory before, and runs until stopped.
const EXPERIMENT: &str = "name: runner-share-two-of-four
topology:
  profiles: {p: {up: 10mbit, down: 10mbit}}
  defaults: {profile: p}
  address_plan: {base: 172.31.62.0/24}
  groups: [{name: g, nodes: 4}]
prepare: ['false']
roles:
  - name: peer
    nodes: g
    files: [data.txt]
    command: sh -c 'cat data.txt > got.txt && exec sleep 30'
stop: {after: 1m}
";

/// Runs `script` with `sh -c`, returning its stdout; panics if it fails.
fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The IPv4 addresses of this namespace in 172.31.62.0/24, sorted.
fn node_addresses() -> Vec<String> {
    let mut addrs: Vec<String> = sh("ip -4 -o addr show")
        .split_whitespace()
        .filter(|w| w.starts_with("172.31.62."))
        .map(String::from)
        .collect();
    addrs.sort();
    addrs
}

/// Every cgroup directory of a run of this experiment, in every hierarchy mounted.
fn run_cgroups() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut stack: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let point = mount.split(' ').nth(4)?;
            matches!(fs.split(' ').next()?, "cgroup" | "cgroup2").then(|| PathBuf::from(point))
        })
        .collect();
    assert!(!stack.is_empty(), "no cgroup hierarchy is mounted");
    let mut found = vec![];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if p.to_string_lossy().contains(&format!("p2plab/{NAME}-")) {
                found.push(p);
            } else if p.components().count() < 12 {
                stack.push(p);
            }
        }
    }
    found
}

/// Asks for the stop once both local processes started; remembers when each did.
struct StopOnceStarted {
    stop: Stop,
    started: Mutex<Vec<(usize, SystemTime)>>,
}

impl Observer for StopOnceStarted {
    fn started(&self, node: usize, _pid: u32, _at_s: f64) {
        let mut started = self.started.lock().unwrap();
        started.push((node, SystemTime::now()));
        if started.len() == 2 {
            self.stop
                .request("the controller saw every host start".into());
        }
    }
    fn ended(&self, _row: &results::Process) {}
    fn sample(&self, _sample: &results::MetricSample) {}
}

#[test]
fn a_share_of_two_of_four_nodes_runs_only_them_and_leaves_nothing() {
    if std::env::var_os(INSIDE).is_none() {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new("unshare")
            .arg("-n")
            .arg(std::env::current_exe().unwrap())
            .args([
                "a_share_of_two_of_four_nodes_runs_only_them_and_leaves_nothing",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INSIDE, "1")
            .env("P2PLAB_RUN_DIR", state.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    inside(Path::new(&std::env::var_os("P2PLAB_RUN_DIR").unwrap()));
}

/// The test proper, in the new network namespace with state files in `state`.
fn inside(state: &Path) {
    sh(&format!(
        "ip link set lo up && ip link add va type veth peer name vb && ip addr add {HOST} dev va && ip link set va up && ip link set vb up"
    ));
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("exp.yaml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let exp = runner::load(&file).unwrap();
    // what the controller did before: the result directory, with the roles' files
    let dir = work.path().join("from-controller");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("data.txt"), "shared\n").unwrap();

    let node = |name: &str| exp.plan.link.node_by_name(name).unwrap();
    let (local, elsewhere) = (
        vec![node("g-1"), node("g-3")],
        vec![node("g-2"), node("g-4")],
    );
    let args = RunArgs {
        experiment: file.clone(),
        shaping: shaping::Shaping::Auto,
        dev: "va".into(),
        results: work.path().join("unused"),
        shim: Some(
            std::env::current_exe()
                .unwrap()
                .with_file_name("libp2plab_shim.so"),
        ),
        quiet: true,
        share: Some(Share {
            local,
            routes: vec![shaping::RemoteNodes {
                what: "g[2],g[4]".into(),
                nodes: elsewhere,
                via: GATEWAY.parse().unwrap(),
            }],
        }),
        results_dir: Some(dir.clone()),
        run_prepare: false,
        stop_rule_elsewhere: true,
    };
    let prepared = runner::prepare(&args, exp).unwrap();
    assert_eq!(prepared.processes(), 2);
    assert_eq!(prepared.dir(), dir.canonicalize().unwrap());
    assert_eq!(node_addresses(), ["172.31.62.1/32", "172.31.62.3/32"]);
    let routes = sh("ip -4 route show");
    for other in ["172.31.62.2", "172.31.62.4"] {
        assert!(
            routes.contains(&format!("{other} via {GATEWAY} dev va")),
            "{routes}"
        );
    }
    assert!(
        !run_cgroups().is_empty(),
        "no cgroup while the run is set up"
    );

    let observer = StopOnceStarted {
        stop: prepared.stop().clone(),
        started: Mutex::new(vec![]),
    };
    let t0 = SystemTime::now() + Duration::from_millis(1500);
    let done = prepared.run(Start::At(t0), Some(&observer)).unwrap();

    assert_eq!(
        done.stop,
        StopReason::Requested("the controller saw every host start".into())
    );
    let started = observer.started.into_inner().unwrap();
    assert_eq!(started.len(), 2, "{started:?}");
    assert!(
        started.iter().all(|(_, at)| *at >= t0),
        "a process started before time 0"
    );
    // the rows, in the directory given, of the 2 local nodes only, stopped by the run
    let written = results::load(&dir).unwrap();
    let mut rows: Vec<(&str, Status)> = written
        .processes
        .iter()
        .map(|p| (p.node.as_str(), p.status))
        .collect();
    rows.sort_by_key(|r| r.0);
    assert_eq!(rows, [("g-1", Status::Stopped), ("g-3", Status::Stopped)]);
    assert_eq!(written.run.stopped, "the controller saw every host start");
    for n in ["g-1", "g-3"] {
        let got = std::fs::read_to_string(dir.join("nodes").join(n).join("got.txt")).unwrap();
        assert_eq!(got, "shared\n", "{n} read the file put there before");
    }
    for n in ["g-2", "g-4"] {
        assert!(!dir.join("nodes").join(n).exists(), "{n} is elsewhere");
    }
    assert!(!dir.join("logs/prepare-0.log").exists(), "prepare ran here");

    // everything is gone: addresses, routes, cgroups, state files
    assert!(node_addresses().is_empty());
    let routes = sh("ip -4 route show");
    assert!(!routes.contains("172.31.62."), "{routes}");
    assert_eq!(run_cgroups(), Vec::<PathBuf>::new());
    let left: Vec<PathBuf> = walk(state)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(left.is_empty(), "state files left: {left:?}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
