//! Cluster mode on a real SSH cluster made of network namespaces on this machine
//! (`cluster/ns-cluster`): each host a namespace with its own sshd, the controller in a
//! namespace of its own (`nsenter --net`), agents started over SSH. A BitTorrent swarm
//! (opentracker, aria2c) over 4 hosts with every group on several: every file identical,
//! every completion within its download link's bound, the RTT between nodes on two hosts
//! the link model's; preflight refusing an unknown host key, a host without the program
//! and a clock 10 s off, with nothing changed; a clock 10 s off within the bound corrected
//! for, so that a node starts on the one schedule; a host killed mid-run reported with its
//! nodes failed and every other host clean; `kill -9` of the controller then `down
//! --hosts` leaving every host as it was; a two-ratio sweep's table and plot. The hosts'
//! work directory is the test's own (`P2PLAB_HOST_DIR`); one test at a time (they share
//! two cores).

mod common;
#[allow(dead_code)]
#[path = "../../cluster/tests/common/mod.rs"]
mod ns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One cluster test at a time.
static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A namespace cluster with a work directory for its hosts and one for the controller.
struct Lab {
    cluster: ns::NsCluster,
    work: tempfile::TempDir,
}

impl Lab {
    fn up(hosts: usize, subnet: &str, extra: &[&str]) -> Lab {
        Lab {
            cluster: ns::NsCluster::up(hosts, subnet, extra),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self) -> &Path {
        self.cluster.dir.path()
    }

    fn inventory(&self) -> PathBuf {
        self.dir().join("hosts.yaml")
    }

    /// The hosts' work directory (`P2PLAB_HOST_DIR`).
    fn host_dir(&self) -> PathBuf {
        self.work.path().join("hosts")
    }

    /// Host `k`'s network namespace.
    fn netns(&self, k: usize) -> String {
        let id = std::fs::read_to_string(self.dir().join("id")).unwrap();
        format!("p2pc-{}-h{k}", id.trim())
    }

    /// `p2plab ARGS` in the controller's namespace, from the work directory.
    fn p2plab(&self, args: &[&str]) -> Command {
        let ctl = std::fs::read_to_string(self.dir().join("ctl")).unwrap();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", ctl.trim()))
            .arg(env!("CARGO_BIN_EXE_p2plab"))
            .args(args)
            .env("P2PLAB_SHIM", common::shim())
            .env("P2PLAB_HOST_DIR", self.host_dir())
            .current_dir(self.work.path());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.p2plab(args).output().unwrap()
    }

    /// What an experiment could change on host `k`: addresses, routes, qdiscs, firewall
    /// rules, and the processes in its namespace.
    fn snapshot(&self, k: usize) -> String {
        let ns = self.netns(k);
        let sh = "ip -4 -o addr; ip route; tc qdisc; iptables-save | grep -e '^-A' || true";
        let net = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .args(["sh", "-c", sh])
            .output()
            .unwrap();
        // Listed from outside, so that these commands are not among them.
        let pids = Command::new("ip")
            .args(["netns", "pids", &ns])
            .output()
            .unwrap();
        let mut comms: Vec<String> = String::from_utf8_lossy(&pids.stdout)
            .split_whitespace()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
            .map(|c| c.trim().to_string())
            .filter(|c| c != "sshd")
            .collect();
        comms.sort();
        format!(
            "{}{}",
            String::from_utf8_lossy(&net.stdout),
            comms.join("\n")
        )
    }

    fn snapshots(&self, hosts: usize) -> Vec<String> {
        (1..=hosts).map(|k| self.snapshot(k)).collect()
    }

    /// Writes `name` in the work directory.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// stdout and stderr of `out`, for messages.
fn said(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn rows(dir: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(dir.join("processes.csv")).unwrap();
    r.records().map(Result::unwrap).collect()
}

fn column(dir: &Path, name: &str) -> usize {
    let mut r = csv::Reader::from_path(dir.join("processes.csv")).unwrap();
    r.headers().unwrap().iter().position(|h| h == name).unwrap()
}

/// The topology of the swarm test: two groups of 6 nodes, 4 mbit links with 2 ms of
/// access latency, 10 ms between the groups.
const TOPOLOGY: &str = "
address_plan: {base: 10.77.0.0/16}
profiles:
  p: {up: 4mbit, down: 4mbit, latency: 2ms, queue: 200}
defaults: {profile: p, delay: 10ms}
groups:
  - {name: a, nodes: 6}
  - {name: b, nodes: 6}
";

#[test]
fn a_swarm_over_four_hosts_gets_every_file_whole_at_the_links_rates_and_the_models_rtt() {
    let _alone = alone();
    let lab = Lab::up(4, "172.31.232", &[]);
    let before = lab.snapshots(4);
    lab.write("topology.yaml", TOPOLOGY);
    let prepare =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bittorrent/prepare.sh");
    // Placed round robin: a-1 h1, a-2 h2, a-3 h3, a-4 h4, a-5 h1, a-6 h2, b-1 h3 ... b-6 h4.
    let exp = lab.write(
        "swarm.yaml",
        &format!(
            "name: cluster-swarm
topology: topology.yaml
prepare:
  - sh {} {{run_dir}} 1000000 http://{{tracker.ip}}:{{tracker.port}}/announce
roles:
  - name: tracker
    nodes: a-1
    port: 6969
    command: opentracker -i {{ip}} -p {{port}} -P {{port}} -f {{run_dir}}/opentracker.conf
  - name: seed
    nodes: a-2
    files: [data.bin, data.torrent]
    command: >-
      aria2c --seed-ratio=0 --check-integrity=true --bt-seed-unverified=true
      --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false
      --listen-port=6881 -d {{dir}} {{dir}}/data.torrent
    start: {{at: 1s}}
  - name: leecher
    nodes: ['a[3-6]', 'b[1-5]']
    files: [data.torrent]
    command: >-
      aria2c --seed-time=0 --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false
      --listen-port=6881 --file-allocation=none -d {{dir}} {{dir}}/data.torrent
    start: {{at: 2s, every: 200ms}}
  - name: pinger
    nodes: b-6
    command: ping -c 20 -i 0.2 {{tracker.ip}}
    start: {{at: 2s}}
stop: {{exited: [leecher, pinger], after: 2m}}
",
            prepare.display()
        ),
    );
    let out = lab.run(&[
        "run",
        exp.to_str().unwrap(),
        "--hosts",
        lab.inventory().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", said(&out));
    let dir = common::only_dir(&lab.work.path().join("results"));
    let rows = rows(&dir);
    let (node, status, code, start, end, host) = (
        column(&dir, "node"),
        column(&dir, "status"),
        column(&dir, "exit_code"),
        column(&dir, "start_s"),
        column(&dir, "end_s"),
        column(&dir, "host"),
    );
    assert_eq!(rows.len(), 12, "{}", said(&out));
    let hosts: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[host]).collect();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        ["h1", "h2", "h3", "h4"]
    );

    // Every leecher has the seed's file, byte for byte, in its node directory on its host;
    // none finished faster than its 4 mbit download link allows (1 MB: 2 s).
    let data = std::fs::read(dir.join("data.bin")).unwrap();
    let run_id = dir.file_name().unwrap();
    for r in &rows {
        if ["a-1", "a-2"].contains(&&r[node]) {
            assert_eq!(&r[status], "stopped", "tracker and seed: {r:?}");
            continue;
        }
        assert_eq!(
            (&r[status], &r[code]),
            ("exited", "0"),
            "{r:?}\n{}",
            said(&out)
        );
        if &r[node] == "b-6" {
            continue;
        }
        let took: f64 = r[end].parse::<f64>().unwrap() - r[start].parse::<f64>().unwrap();
        assert!((2.0..60.0).contains(&took), "{} took {took} s", &r[node]);
        let got = lab
            .host_dir()
            .join("runs")
            .join(run_id)
            .join(&r[host])
            .join("results/nodes")
            .join(&r[node])
            .join("data.bin");
        assert!(
            std::fs::read(&got).unwrap() == data,
            "{} differs",
            got.display()
        );
    }

    // b-6 (host h4) to a-1 (host h1): 2 x (2 + 10 + 2) ms, measured as the fastest of 20.
    let ping = std::fs::read_to_string(dir.join("logs/b-6.out")).unwrap();
    let min: f64 = ping
        .lines()
        .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
        .and_then(|v| v.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no rtt in:\n{ping}"));
    assert!(
        (28.0..29.0).contains(&min),
        "RTT {min} ms across hosts, want 28"
    );

    assert_eq!(lab.snapshots(4), before, "every host as before");
    common::no_cgroups_left("cluster-swarm");
}

#[test]
fn preflight_refuses_an_unknown_host_key_a_missing_program_and_a_clock_10_s_off_changing_nothing() {
    let _alone = alone();
    let tools = tempfile::tempdir().unwrap();
    let program = tools.path().join("peer");
    std::fs::write(&program, "#!/bin/sh\nsleep 1\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let hide = format!("h2={}", tools.path().display());
    let lab = Lab::up(3, "172.31.233", &["--hide", &hide, "--faketime", "h3=+10s"]);
    // h1's key is forgotten.
    let known = lab.dir().join("known_hosts");
    let keys = std::fs::read_to_string(&known).unwrap();
    let rest: Vec<&str> = keys
        .lines()
        .filter(|l| !l.starts_with("172.31.233.11 "))
        .collect();
    std::fs::write(&known, rest.join("\n") + "\n").unwrap();
    let before = lab.snapshots(3);
    let exp = lab.write(
        "refused.yaml",
        &format!(
            "name: cluster-refused
topology:
  profiles: {{p: {{up: 1mbit, down: 1mbit}}}}
  defaults: {{profile: p}}
  groups: [{{name: a, nodes: 3}}]
prepare: ['touch {{run_dir}}/prepared']
roles: [{{name: peer, nodes: a, command: {}}}]
stop: {{after: 10s}}
",
            program.display()
        ),
    );
    let out = lab.run(&[
        "run",
        exp.to_str().unwrap(),
        "--hosts",
        lab.inventory().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let row = |host: &str, what: &str| {
        err.lines()
            .any(|l| l.starts_with(&format!("{host} ")) && l.contains(what))
    };
    assert!(row("h1", "unknown host key"), "{err}");
    assert!(row("h2", &program.display().to_string()), "{err}");
    assert!(row("h3", "clock is +"), "{err}");
    assert!(!row("h2", "clock"), "{err}");
    // Nothing changed: the hosts, their work directory, the controller's results.
    assert_eq!(lab.snapshots(3), before);
    let runs = lab.host_dir().join("runs");
    assert!(
        !runs.exists() || common::entries(&runs).is_empty(),
        "{:?}",
        common::entries(&runs)
    );
    let results = lab.work.path().join("results");
    assert!(
        !results.exists() || common::entries(&results).is_empty(),
        "{:?}",
        common::entries(&results)
    );
}

/// The experiment of the failure tests: every node sleeps `secs` seconds.
fn sleepers(lab: &Lab, name: &str, nodes: usize, secs: u32, policy: &str) -> PathBuf {
    lab.write(
        &format!("{name}.yaml"),
        &format!(
            "name: {name}
topology:
  profiles: {{p: {{up: 1mbit, down: 1mbit, latency: 1ms}}}}
  defaults: {{profile: p}}
  address_plan: {{base: 10.78.0.0/16}}
  groups: [{{name: a, nodes: {nodes}}}]
roles: [{{name: peer, nodes: a, command: sleep {secs}}}]
stop: {{exited: [peer], after: 2m}}
on_host_failure: {policy}
"
        ),
    )
}

/// Waits (at most 60 s) until every host of `lab` runs a `sleep`.
fn wait_until_sleeping(lab: &Lab, hosts: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(1..=hosts).all(|k| lab.snapshot(k).lines().any(|l| l == "sleep")) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the controller ended early"
        );
        assert!(
            Instant::now() < deadline,
            "not every host started its nodes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_host_lost_mid_run_is_reported_with_its_nodes_failed_and_the_others_cleaned() {
    let _alone = alone();
    let lab = Lab::up(3, "172.31.234", &[]);
    let before = lab.snapshots(3);
    let exp = sleepers(&lab, "cluster-lost", 6, 8, "continue");
    let mut child = lab
        .p2plab(&[
            "run",
            exp.to_str().unwrap(),
            "--hosts",
            lab.inventory().to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_sleeping(&lab, 3, &mut child);
    // h2 crashes: its sshd, its agent and its nodes' processes, all at once.
    let pids = Command::new("ip")
        .args(["netns", "pids", &lab.netns(2)])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("h2"),
        "{}",
        said(&out)
    );
    let dir = common::only_dir(&lab.work.path().join("results"));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let failures: Vec<bool> = run["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["failure"].is_string())
        .collect();
    assert_eq!(failures, [false, true, false], "{run}");
    let (status, host) = (column(&dir, "status"), column(&dir, "host"));
    let rows = rows(&dir);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let want = if &r[host] == "h2" { "killed" } else { "exited" };
        assert_eq!(&r[status], want, "{r:?}");
    }
    // Every other host as it was; h2, as a crashed machine, is cleaned by `down` there.
    assert_eq!(lab.snapshot(1), before[0]);
    assert_eq!(lab.snapshot(3), before[2]);
    let down = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.netns(2)))
        .args([
            env!("CARGO_BIN_EXE_p2plab"),
            "down",
            "--name",
            "cluster-lost",
        ])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", said(&down));
    assert_eq!(lab.snapshot(2), before[1]);
    // h2's delay engine was killed with it, so `down` kept its log for the post-mortem, in
    // the state directory of h2's namespace: the test's own leftover, removed.
    for dir in common::entries(Path::new("/run/p2plab")) {
        if std::fs::remove_file(dir.join("cluster-lost.engine.log")).is_ok() {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    common::no_cgroups_left("cluster-lost");
}

#[test]
fn kill_9_of_the_controller_then_down_hosts_leaves_every_host_as_it_was() {
    let _alone = alone();
    let lab = Lab::up(3, "172.31.235", &[]);
    let before = lab.snapshots(3);
    let exp = sleepers(&lab, "cluster-kill9", 6, 100, "abort");
    let inventory = lab.inventory();
    let mut child = lab
        .p2plab(&[
            "run",
            exp.to_str().unwrap(),
            "--hosts",
            inventory.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_sleeping(&lab, 3, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let out = lab.run(&[
        "down",
        "--hosts",
        inventory.to_str().unwrap(),
        "--name",
        "cluster-kill9",
    ]);
    assert!(out.status.success(), "{}", said(&out));
    // The agents also stop by themselves once their channel closes: whichever is first,
    // every host ends as it was.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.snapshots(3) != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(lab.snapshots(3), before);
    common::no_cgroups_left("cluster-kill9");
}

#[test]
fn a_sweep_over_two_ratios_writes_its_table_and_plot() {
    let _alone = alone();
    let lab = Lab::up(2, "172.31.236", &[]);
    let exp = sleepers(&lab, "cluster-sweep", 4, 1, "abort");
    let out = lab.run(&[
        "sweep",
        exp.to_str().unwrap(),
        "--hosts",
        lab.inventory().to_str().unwrap(),
        "--ratios",
        "2,4",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", said(&out));
    let sweep = common::only_dir(&lab.work.path().join("results"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("sweep.json")).unwrap()).unwrap();
    let text = json.to_string();
    assert!(
        text.contains("\"ratio\":2") && text.contains("\"ratio\":4"),
        "{text}"
    );
    let svg = std::fs::read_to_string(sweep.join("sweep.svg")).unwrap();
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sweep: "), "{stdout}");
}

#[test]
fn a_hosts_clock_offset_is_corrected_so_a_nodes_start_does_not_depend_on_its_host() {
    let _alone = alone();
    // h2's clock reads 10 s ahead; the bound lets it through.
    let lab = Lab::up(2, "172.31.238", &["--faketime", "h2=+10s"]);
    let listen = lab.write(
        "listen.py",
        "import socket, sys, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind((sys.argv[1], 9000))\n\
         t0 = time.monotonic()\n\
         s.recv(100)\n\
         print('arrived %.3f' % (time.monotonic() - t0), flush=True)\n",
    );
    let send = lab.write(
        "send.py",
        "import socket, sys\n\
         socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hi', (sys.argv[1], 9000))\n",
    );
    // a-1 (h1) listens from time 0, a-2 (h2) sends at 3 s of the one schedule.
    let exp = lab.write(
        "clock.yaml",
        &format!(
            "name: cluster-clock
topology:
  profiles: {{p: {{up: 10mbit, down: 10mbit}}}}
  defaults: {{profile: p}}
  address_plan: {{base: 10.79.0.0/16}}
  groups: [{{name: a, nodes: 2}}]
roles:
  - {{name: listener, nodes: a-1, command: 'python3 {} {{ip}}'}}
  - {{name: sender, nodes: a-2, command: 'python3 {} {{listener.ip}}', start: {{at: 3s}}}}
stop: {{exited: [listener], after: 30s}}
",
            listen.display(),
            send.display()
        ),
    );
    let out = lab.run(&[
        "run",
        exp.to_str().unwrap(),
        "--hosts",
        lab.inventory().to_str().unwrap(),
        "--max-clock-offset",
        "20s",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", said(&out));
    let dir = common::only_dir(&lab.work.path().join("results"));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let offset = run["hosts"][1]["clock_offset_ms"].as_f64().unwrap();
    assert!(
        (9_000.0..11_000.0).contains(&offset),
        "h2's offset {offset} ms"
    );
    let heard = std::fs::read_to_string(dir.join("logs/a-1.out")).unwrap();
    let arrived: f64 = heard
        .trim()
        .strip_prefix("arrived ")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a-1 said: {heard}"));
    // 3 s after the listener started, give or take the start lag and this busy machine.
    assert!(
        (2.8..3.6).contains(&arrived),
        "a-2's datagram came {arrived} s after a-1 started"
    );
}
