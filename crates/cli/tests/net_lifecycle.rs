//! `p2plab up` / `down` / `status` as a user runs them, inside scratch network namespaces:
//! what `ip`, `tc` and `iptables` show before `up` equals what they show after `down`,
//! also after a failed `up` and after `up` was killed with SIGKILL half-way; overlapping
//! ranges and missing devices are refused before anything changes; without
//! CAP_NET_ADMIN the error is one line; `doctor` names the backend `up` then uses. The
//! nfqueue backend end to end: the fastest of 20 UDP echoes sees
//! `RTT = 2 x (L(s) + G(a,b) + L(d))`, never less and less than 1 ms more, inside a group
//! and across groups, and so does `ping`, also wrapped without `-I`; loss follows
//! `1 - (1-p(s))(1-p(d))` and a group pair's `q(a,b)`, in its direction only, within
//! binomial bounds; TCP with 1500-byte packets fills a 2 mbit link and no more; `down`
//! stops the engine and removes the NFQUEUE rules. Changes while a network runs
//! (`shaping::Network::change`): new group delays and node latencies show in the RTT, a
//! cut node sends and receives nothing while the others go on, restore brings it back, a
//! network without delays gets its engine, and `down` after all that leaves nothing
//! behind.

use netctl::scratch::in_new_netns;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use shaping::{EngineBinary, Network};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};
use topology::{LinkChange, NetChange};

const BIN: &str = env!("CARGO_BIN_EXE_p2plab");

/// A topology of `groups` groups of `per_group` nodes, rates only (no delay or loss).
fn topology(dir: &Path, file: &str, base: &str, groups: usize, per_group: usize) -> PathBuf {
    let mut y = format!(
        "address_plan:\n  base: {base}\nprofiles:\n  p:\n    up: 2mbit\n    down: 8mbit\n    latency: 0ms\n    loss: 0%\n    queue: 100\ndefaults:\n  profile: p\n  delay: 0ms\ngroups:\n"
    );
    for g in 0..groups {
        y += &format!("  - name: g{g}\n    nodes: {per_group}\n");
    }
    topology_file(dir, file, &y)
}

/// Writes topology `yaml` to `dir/file` and returns its path.
fn topology_file(dir: &Path, file: &str, yaml: &str) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, yaml).unwrap();
    p
}

fn p2plab(run_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("P2PLAB_RUN_DIR", run_dir)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: Output) -> String {
    assert!(
        !out.status.success(),
        "unexpected success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything `up` may touch, as the stock tools print it.
fn snapshot() -> String {
    let cmds = [
        "ip -d addr show",
        "ip -d link show",
        "tc qdisc show",
        "tc filter show dev lo ingress",
        "tc filter show dev lo egress",
        "iptables -w -t mangle -S",
    ];
    cmds.iter()
        .map(|c| {
            let o = Command::new("sh").arg("-c").arg(c).output().unwrap();
            format!("$ {c}\n{}", String::from_utf8_lossy(&o.stdout))
        })
        .collect()
}

/// How a test shares this machine with the others of this file: the ones that measure
/// delays run alone (on 2 busy cores the IFBs' softirq work and the measuring threads wait
/// for a core, which adds tenths of a millisecond to a round trip), the others side by side.
#[derive(Clone, Copy)]
enum Share {
    Together,
    Alone,
}

static MACHINE: RwLock<()> = RwLock::new(());

/// Runs `f(run_dir, topology_dir)` in a fresh namespace with `lo` up.
fn scratch(f: impl FnOnce(&Path, &Path) + Send + 'static) {
    scratch_as(Share::Together, f)
}

/// [`scratch`], running `share`-wise.
fn scratch_as(share: Share, f: impl FnOnce(&Path, &Path) + Send + 'static) {
    with_lo(share, move || {
        let run = tempfile::tempdir().unwrap();
        let topo = tempfile::tempdir().unwrap();
        downing_all(run.path(), || f(run.path(), topo.path()))
    })
}

/// Like [`scratch_as`], with [`shared_run_dir`] as the run directory.
fn scratch_shared(share: Share, f: impl FnOnce(&Path, &Path) + Send + 'static) {
    with_lo(share, move || {
        let (_one, run) = shared_run_dir();
        let topo = tempfile::tempdir().unwrap();
        downing_all(run, || f(run, topo.path()))
    })
}

/// Runs `f`, then, also when it panics, takes down every network still recorded in `run`:
/// a failed test must not leave a delay engine running (it would keep its namespace alive).
fn downing_all(run: &Path, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let states = std::fs::read_dir(shaping::netns_run_dir(run))
            .into_iter()
            .flatten()
            .flatten();
        for state in states.map(|e| e.path()) {
            let name = state
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"));
            if let Some(name) = name.filter(|n| !n.contains('.')) {
                let _ = p2plab(run, &["down", name]);
            }
        }
        std::panic::resume_unwind(panic);
    }
}

/// Runs `f` in a fresh namespace with `lo` up, `share`-wise.
fn with_lo(share: Share, f: impl FnOnce() + Send + 'static) {
    let (_together, _alone);
    match share {
        Share::Together => _together = MACHINE.read().unwrap_or_else(PoisonError::into_inner),
        Share::Alone => _alone = MACHINE.write().unwrap_or_else(PoisonError::into_inner),
    }
    in_new_netns(move || {
        assert!(Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        f()
    })
    .expect("tests run as root");
}

#[test]
fn up_status_down_leaves_nothing_behind() {
    scratch(|run, dir| {
        let t = topology(dir, "a.yaml", "10.20.0.0/16", 2, 3);
        let before = snapshot();
        let out = ok(p2plab(run, &["up", t.to_str().unwrap(), "--name", "a"]));
        assert_eq!(
            out,
            "network a is up: 6 nodes on lo, backend nfqueue, 45 kernel objects\n"
        );
        let during = snapshot();
        assert!(
            during.contains("inet 10.20.0.1/32 scope global lo"),
            "{during}"
        );
        assert!(during.contains("p2p0u0"), "{during}");
        // 10 datagrams of 1000 bytes from the first node to the second show in the counters
        let rx = UdpSocket::bind("10.20.0.2:7000").unwrap();
        let tx = UdpSocket::bind("10.20.0.1:0").unwrap();
        for _ in 0..10 {
            tx.send_to(&[0u8; 1000], "10.20.0.2:7000").unwrap();
            rx.recv(&mut [0u8; 2000]).unwrap();
        }
        let status = ok(p2plab(run, &["status", "a"]));
        let row = |ip: &str| -> Vec<String> {
            let line = status
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(ip))
                .unwrap();
            line.split_whitespace()
                .skip(2)
                .map(str::to_string)
                .collect()
        };
        // bytes on the wire: 1000 + UDP 8 + IPv4 20 + Ethernet 14
        assert_eq!(
            row("10.20.0.1"),
            ["10420", "10", "0", "0", "0", "0"],
            "{status}"
        );
        assert_eq!(
            row("10.20.0.2"),
            ["0", "0", "0", "10420", "10", "0"],
            "{status}"
        );
        assert!(
            status.starts_with("network a: 6 nodes on lo, backend nfqueue\n"),
            "{status}"
        );
        assert_eq!(status.lines().count(), 2 + 6);
        let list = ok(p2plab(run, &["status"]));
        let row: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row, ["a", "lo", "nfqueue", "6", "up"], "{list}");
        assert_eq!(ok(p2plab(run, &["down", "a"])), "network a is down\n");
        assert_eq!(snapshot(), before);
        assert_eq!(
            ok(p2plab(run, &["down", "a"])),
            "network a was not up; nothing to do\n"
        );
    });
}

#[test]
fn two_disjoint_networks_coexist_and_overlap_is_refused() {
    scratch(|run, dir| {
        let a = topology(dir, "a.yaml", "10.30.0.0/16", 2, 2);
        let b = topology(dir, "b.yaml", "10.31.0.0/16", 2, 2);
        let c = topology(dir, "c.yaml", "10.30.0.0/20", 1, 2);
        let before = snapshot();
        ok(p2plab(run, &["up", a.to_str().unwrap(), "--name", "a"]));
        ok(p2plab(run, &["up", b.to_str().unwrap(), "--name", "b"]));
        let with_both = snapshot();
        let e = err(p2plab(run, &["up", c.to_str().unwrap(), "--name", "c"]));
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with("group g0 (10.30.0.0/30) overlaps group g0 (10.30.0.0/30) of network a;"),
            "{e}"
        );
        let e = err(p2plab(run, &["up", a.to_str().unwrap(), "--name", "a"]));
        assert_eq!(
            e,
            "network a is already up; run `p2plab down a` first or pick another --name\n"
        );
        let e = err(p2plab(
            run,
            &["up", c.to_str().unwrap(), "--name", "c", "--dev", "nosuch0"],
        ));
        assert_eq!(
            e,
            "device nosuch0 not found; check `ip link` or pass another --dev\n"
        );
        assert_eq!(snapshot(), with_both, "a refused up changed something");
        // a goes first: the clsact qdisc b still uses must stay
        ok(p2plab(run, &["down", "a"]));
        assert!(snapshot().contains("qdisc clsact ffff: dev lo"));
        ok(p2plab(run, &["down", "b"]));
        assert_eq!(snapshot(), before);
    });
}

#[test]
fn failed_up_rolls_back() {
    scratch(|run, dir| {
        // quickstart has delays, so the nfqueue backend installs NFQUEUE rules after the
        // whole tree and the engine; an iptables-restore that refuses makes `up` fail last
        let fake = dir.join("bin");
        std::fs::create_dir(&fake).unwrap();
        std::fs::write(
            fake.join("iptables-restore"),
            "#!/bin/sh\necho refused >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(
            fake.join("iptables-restore"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
        let before = snapshot();
        let quick = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../topologies/quickstart.yaml"
        );
        let out = Command::new(BIN)
            .args(["up", quick, "--shaping", "nfqueue"])
            .env("P2PLAB_RUN_DIR", run)
            .env("PATH", path)
            .output()
            .unwrap();
        let e = err(out);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert_eq!(snapshot(), before);
        let states = std::fs::read_dir(run)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"));
        assert_eq!(states.count(), 0);
    });
}

#[test]
fn existing_address_is_refused_and_kept() {
    scratch(|run, dir| {
        let t = topology(dir, "a.yaml", "10.45.0.0/16", 1, 3);
        assert!(Command::new("ip")
            .args(["addr", "add", "10.45.0.2/32", "dev", "lo"])
            .status()
            .unwrap()
            .success());
        let before = snapshot();
        let e = err(p2plab(run, &["up", t.to_str().unwrap()]));
        assert_eq!(e, "address 10.45.0.2 already exists and is not p2plab's; remove it or change the topology's addresses\n");
        assert_eq!(snapshot(), before);
    });
}

#[test]
fn kill_9_mid_up_then_down_leaves_nothing_behind() {
    scratch(|run, dir| {
        let t = topology(dir, "big.yaml", "10.40.0.0/16", 50, 100);
        let before = snapshot();
        let mut child = Command::new(BIN)
            .args(["up", t.to_str().unwrap(), "--name", "big"])
            .env("P2PLAB_RUN_DIR", run)
            .spawn()
            .unwrap();
        let state = shaping::netns_run_dir(run).join("big.json");
        let start = Instant::now();
        while !state.exists() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let recorded: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert_eq!(
            recorded["complete"], false,
            "up finished before the kill; the test did not test a half-way up"
        );
        assert_ne!(snapshot(), before, "nothing was created before the kill");
        ok(p2plab(run, &["down", "big"]));
        assert_eq!(snapshot(), before);
    });
}

/// `p2plab ARGS` as user nobody, without capabilities.
fn unprivileged(run: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            BIN,
        ])
        .args(args)
        .env("P2PLAB_RUN_DIR", run)
        .output()
        .unwrap()
}

#[test]
fn without_cap_net_admin_one_line_and_no_change() {
    scratch(|run, dir| {
        let t = topology(dir, "a.yaml", "10.50.0.0/16", 1, 2);
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let before = snapshot();
        for args in [vec!["up", t.to_str().unwrap()], vec!["down", "x"]] {
            let e = err(unprivileged(run, &args));
            assert_eq!(
                e,
                "p2plab needs CAP_NET_ADMIN to change the network: run it as root (sudo)\n"
            );
        }
        assert_eq!(snapshot(), before);
    });
}

/// Whether this kernel takes a netem qdisc, tried by hand on this namespace's `lo`.
fn netem_works_here() -> bool {
    let tc = |args: &[&str]| Command::new("tc").args(args).output().unwrap().status;
    let works = tc(&["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]).success();
    if works {
        assert!(tc(&["qdisc", "del", "dev", "lo", "root"]).success());
    }
    works
}

/// `p2plab doctor` on this host: exit status 0, every rate feature there, the backend it
/// names is netem exactly when this kernel takes a netem qdisc (else nfqueue), and `up`
/// then uses that backend; without root it refuses in one line.
#[test]
fn doctor_names_the_backend_up_then_uses() {
    scratch(|run, dir| {
        let report = ok(p2plab(run, &["doctor"]));
        eprintln!("{report}");
        for feature in [
            "HTB qdisc and classes",
            "IFB devices",
            "clsact + u32 + mirred",
            "u32 hash tables",
        ] {
            let line = report.lines().find(|l| l.trim_start().starts_with(feature));
            assert!(
                line.is_some_and(|l| l.ends_with(" yes")),
                "{feature}: {report}"
            );
        }
        let named = report
            .lines()
            .find_map(|l| {
                l.strip_prefix("`p2plab up` will use the ")?
                    .strip_suffix(" backend")
            })
            .unwrap_or_else(|| panic!("no backend named: {report}"));
        let want = if netem_works_here() {
            "netem"
        } else {
            "nfqueue"
        };
        assert_eq!(named, want, "{report}");
        let t = topology(dir, "doc.yaml", "10.75.0.0/16", 1, 2);
        let up = ok(p2plab(run, &["up", t.to_str().unwrap(), "--name", "doc"]));
        assert!(up.contains(&format!(", backend {named}, ")), "{up}");
        ok(p2plab(run, &["down", "doc"]));
        let out = unprivileged(run, &["doctor"]);
        assert_eq!(out.status.code(), Some(1));
        let e = err(out);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with("p2plab doctor probes in a scratch network namespace and needs root"),
            "{e}"
        );
    });
}

/// Brings up two groups of two nodes (a: 10.70.0.1, .2; b: 10.70.0.5, .6) with per-node
/// `latency` and `loss` and 10 ms between the groups, on the nfqueue backend.
fn up_nfqueue(run: &Path, dir: &Path, latency: &str, loss: &str) {
    let y = format!(
        "address_plan:\n  base: 10.70.0.0/16\nprofiles:\n  p:\n    up: 100mbit\n    down: 100mbit\n    latency: {latency}\n    loss: {loss}\n    queue: 1000\ndefaults:\n  profile: p\n  delay: 10ms\ngroups:\n  - name: a\n    nodes: 2\n  - name: b\n    nodes: 2\n"
    );
    up_nfqueue_file(run, &topology_file(dir, "delays.yaml", &y));
}

/// `p2plab up TOPOLOGY --shaping nfqueue`, which must succeed.
fn up_nfqueue_file(run: &Path, topology: &Path) {
    ok(p2plab(
        run,
        &["up", topology.to_str().unwrap(), "--shaping", "nfqueue"],
    ));
}

/// Brings network `name` up with `p2plab up` (state files in `run`) and returns a closure
/// that applies run-time changes to it in this process.
fn changer(
    run: &Path,
    topology: &Path,
    name: &str,
) -> impl Fn(NetChange) -> Result<shaping::State, shaping::Error> {
    ok(p2plab(
        run,
        &[
            "up",
            topology.to_str().unwrap(),
            "--name",
            name,
            "--shaping",
            "nfqueue",
        ],
    ));
    let name = name.to_string();
    move |c| {
        let mut network = Network::open(&name)?.with_engine(EngineBinary::at(BIN));
        network.change(&c)?;
        Ok(network.state().clone())
    }
}

/// The state directory of the tests that change networks from this process (its
/// `P2PLAB_RUN_DIR` is what `Network::change` reads), set once, and a guard that keeps those
/// tests apart: networks recorded in one state directory count as one host's (`down`
/// would keep the clsact qdisc another test's network still "uses").
fn shared_run_dir() -> (MutexGuard<'static, ()>, &'static Path) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("P2PLAB_RUN_DIR", d.path());
        d
    });
    (guard, dir.path())
}

/// Whether process `pid` is gone, or a zombie waiting for whoever inherited it.
fn ended(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.is_empty() || status.contains("State:\tZ")
}

/// A run-time change whose SIGHUP reaches a delay engine still starting (before its handler
/// is in place) neither ends the engine nor is lost: the engine is started with SIGHUP
/// blocked and reads its state only once the handler can take the signal.
#[test]
fn a_change_signalled_while_the_engine_starts_is_taken() {
    scratch_shared(Share::Together, |run, dir| {
        up_nfqueue(run, dir, "0ms", "0%");
        let network = Network::open("default").unwrap();
        let first = network.state().engine_pid.unwrap();
        nix::sys::signal::kill(Pid::from_raw(first as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ended(first) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(ended(first), "the first engine did not stop");
        let engine = EngineBinary::at(BIN).spawn("default").unwrap();
        nix::sys::signal::kill(Pid::from_raw(engine as i32), Signal::SIGHUP).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let alive = !ended(engine);
        let got = if alive {
            delivered("10.70.0.1", "10.70.0.5")
        } else {
            0
        };
        let _ = nix::sys::signal::kill(Pid::from_raw(engine as i32), Signal::SIGTERM);
        assert!(alive, "a SIGHUP at its start ended the delay engine");
        assert_eq!(got, 50, "datagrams through the restarted engine");
        ok(p2plab(run, &["down"]));
    });
}

/// How many of 50 datagrams sent from `src` to `dst`, 1 ms apart, arrive.
fn delivered(src: &str, dst: &str) -> u32 {
    let rx = UdpSocket::bind(format!("{dst}:9002")).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let counter = std::thread::spawn(move || {
        let mut got = 0;
        while rx.recv(&mut [0u8; 16]).is_ok() {
            got += 1;
        }
        got
    });
    let tx = UdpSocket::bind(format!("{src}:0")).unwrap();
    for i in 0..50u8 {
        let _ = tx.send_to(&[i], format!("{dst}:9002"));
        std::thread::sleep(Duration::from_millis(1));
    }
    counter.join().unwrap()
}

/// UDP round trip from `src` to an echo on `dst`, in ms: the smallest of 20, taken once a
/// model change just signalled to the engine shows (a round trip of at least `want` ms,
/// waited for at most 2 s: the engine swaps its model on a thread of its own, which a busy
/// machine may keep waiting). The shaper never releases a packet early, and the measuring
/// threads' scheduling on a loaded machine only adds, so the smallest round trip is the
/// emulated one; both threads run under [`realtime`], so that not every one of the 20
/// waits for another process's time slice.
fn rtt_ms(src: &str, dst: &str, want: f64) -> f64 {
    const SAMPLES: usize = 20;
    let echo = UdpSocket::bind(format!("{dst}:9000")).unwrap();
    echo.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let t = std::thread::spawn(move || {
        realtime();
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            echo.send_to(&buf[..n], from).unwrap();
        }
    });
    let s = UdpSocket::bind(format!("{src}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let dst = dst.to_string();
    let (waited, v) = std::thread::spawn(move || {
        realtime();
        let probe = || {
            let start = Instant::now();
            s.send_to(&[0], format!("{dst}:9000")).unwrap();
            s.recv(&mut [0u8; 64]).unwrap();
            start.elapsed().as_secs_f64() * 1000.0
        };
        let start = Instant::now();
        while probe() < want - 0.05 && start.elapsed() < Duration::from_secs(2) {}
        let waited = start.elapsed();
        (waited, (0..SAMPLES).map(|_| probe()).collect::<Vec<f64>>())
    })
    .join()
    .unwrap();
    t.join().unwrap();
    eprintln!("(the change showed after {waited:.2?})");
    v.into_iter().fold(f64::INFINITY, f64::min)
}

/// Puts the calling thread under `SCHED_FIFO` priority 5, below the delay engine's 10 (its
/// children would start as normal processes).
fn realtime() {
    use nix::libc;
    let param = libc::sched_param { sched_priority: 5 };
    let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    assert_eq!(rc, 0, "SCHED_FIFO: {}", std::io::Error::last_os_error());
}

#[test]
fn nfqueue_rtt_is_twice_the_one_way_delay() {
    scratch_as(Share::Alone, |run, dir| {
        let before = snapshot();
        up_nfqueue(run, dir, "2ms", "0%");
        let across = rtt_ms("10.70.0.1", "10.70.0.5", 28.0);
        let inside = rtt_ms("10.70.0.1", "10.70.0.2", 8.0);
        eprintln!(
            "RTT across groups {across:.2} ms (want 28), inside a group {inside:.2} ms (want 8)"
        );
        assert_ms("RTT across groups", across, 28.0, 1.0);
        assert_ms("RTT inside a group", inside, 8.0, 1.0);
        // ping reads kernel receive timestamps, taken before PREROUTING: ICMP is held in
        // OUTPUT so that ping sees the whole round trip too
        let min = ping_min_ms(Command::new("ping").args(["-I", "10.70.0.1"]), "10.70.0.5");
        eprintln!("ping across groups {min:.2} ms (want 28)");
        assert_ms("ping's fastest RTT across groups", min, 28.0, 1.0);
        // a wrapped ping, without -I, sends from its node's address (the kernel would pick
        // the destination's own, a path that crosses no group), so it measures its own path
        let shim = std::env::current_exe()
            .unwrap()
            .with_file_name("libp2plab_shim.so");
        let wrapped = ping_min_ms(
            Command::new(BIN)
                .args(["wrap", "--ip", "10.70.0.1", "--shim"])
                .arg(shim)
                .args(["--", "ping"]),
            "10.70.0.5",
        );
        eprintln!("wrapped ping across groups {wrapped:.2} ms (want 28)");
        assert_ms("wrapped ping's RTT across groups", wrapped, 28.0, 1.0);
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(shaping::netns_run_dir(run).join("default.json")).unwrap(),
        )
        .unwrap();
        let pid = state["engine_pid"].as_u64().unwrap();
        ok(p2plab(run, &["down"]));
        assert!(ended(pid as u32), "engine {pid} still running");
        assert_eq!(snapshot(), before);
    });
}

/// The fastest round trip, in ms, of 10 echoes to `dst` sent 0.2 s apart by `ping` (a
/// command that ends with `ping` and its own options).
fn ping_min_ms(ping: &mut Command, dst: &str) -> f64 {
    let out = ping
        .args(["-n", "-q", "-c", "10", "-i", "0.2", dst])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    out.split(" = ")
        .nth(1)
        .and_then(|v| v.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no RTT in ping's output: {out}"))
}

/// How many of `n` datagrams sent from `src` to `dst` arrive: sent in bursts of 100, 2 ms
/// apart (below every queue limit), counted until none came for 500 ms.
fn arrived_of(src: &str, dst: &str, n: u32) -> u32 {
    let rx = UdpSocket::bind(format!("{dst}:9001")).unwrap();
    // a receiver waiting for a core must not drop what the network delivered
    nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RcvBufForce, &(8 << 20)).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let counter = std::thread::spawn(move || {
        let mut got = 0u32;
        while rx.recv(&mut [0u8; 16]).is_ok() {
            got += 1;
        }
        got
    });
    let tx = UdpSocket::bind(format!("{src}:0")).unwrap();
    for i in 0..n {
        tx.send_to(&i.to_be_bytes(), format!("{dst}:9001")).unwrap();
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    counter.join().unwrap()
}

/// Asserts that `got` of `n` datagrams arriving is a binomial draw with delivery
/// probability `p`: within 5 standard deviations of `n p`.
fn assert_binomial(what: &str, got: u32, n: u32, p: f64) {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    eprintln!("{what}: received {got} of {n} (expected {mean:.0} ± {sd:.1})");
    assert!(
        (got as f64 - mean).abs() < 5.0 * sd,
        "{what}: received {got}, expected {mean:.0} ± {:.0}",
        5.0 * sd
    );
}

#[test]
fn nfqueue_loss_within_binomial_bounds() {
    scratch(|run, dir| {
        up_nfqueue(run, dir, "0ms", "10%");
        const N: u32 = 4000;
        let got = arrived_of("10.70.0.1", "10.70.0.5", N);
        ok(p2plab(run, &["down"]));
        // one way: 1 - (1 - 0.1)(1 - 0)(1 - 0.1) = 0.19 lost
        assert_binomial("node loss 10 % at both ends", got, N, 0.81);
    });
}

/// Group-pair loss `q(a,b)` on real traffic, one direction only as the topology says:
/// 10 % from a to b, none back (b -> a is given with a delay only, which must not take the
/// other direction's loss), none inside a group, no node loss.
#[test]
fn nfqueue_group_pair_loss_applies_to_its_direction_only() {
    scratch(|run, dir| {
        let t = topology_file(dir, "pair.yaml", "address_plan: {base: 10.71.0.0/16}\nprofiles:\n  p: {up: 100mbit, down: 100mbit, queue: 1000}\ndefaults: {profile: p}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: b, nodes: 2}\ndelays:\n  - {from: a, to: b, delay: 1ms, loss: 10%}\n  - {from: b, to: a, delay: 1ms}\n");
        let before = snapshot();
        up_nfqueue_file(run, &t);
        const N: u32 = 4000;
        let (a1, a2, b1) = ("10.71.0.1", "10.71.0.2", "10.71.0.5");
        let got = [
            arrived_of(a1, b1, N),
            arrived_of(b1, a1, N),
            arrived_of(a1, a2, N),
        ];
        ok(p2plab(run, &["down"]));
        assert_eq!(snapshot(), before);
        assert_binomial("a -> b at q(a,b) = 10 %", got[0], N, 0.9);
        assert_eq!(got[1..], [N, N], "lost from b to a, or inside a");
    });
}

#[test]
fn kill_9_while_the_engine_starts_then_down_stops_it() {
    scratch(|run, _| {
        let before = snapshot();
        let quick = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../topologies/quickstart.yaml"
        );
        let mut child = Command::new(BIN)
            .args(["up", quick, "--shaping", "nfqueue"])
            .env("P2PLAB_RUN_DIR", run)
            .spawn()
            .unwrap();
        // `up` records the engine's pid, then waits for it to stay up before adding rules
        let state = shaping::netns_run_dir(run).join("default.json");
        let start = Instant::now();
        let pid = loop {
            let s: Option<serde_json::Value> = std::fs::read(&state)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(pid) = s.and_then(|s| s["engine_pid"].as_u64()) {
                break pid;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no engine started"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "the engine died with up"
        );
        ok(p2plab(run, &["down"]));
        assert!(ended(pid as u32), "engine {pid} still running");
        assert_eq!(snapshot(), before);
    });
}

/// Asserts that the RTT from `src` to `dst` after run-time changes is `want` ms: never less,
/// and less than 1 ms more, as the link model promises. Measured by [`rtt_ms`] beside two
/// busy loops (load average 16 on 2 cores): 0.16-0.35 ms over, while every change it checks
/// moves the RTT by 6 ms or more.
fn assert_rtt(src: &str, dst: &str, want: f64, when: &str) {
    let got = rtt_ms(src, dst, want);
    eprintln!("RTT {src} -> {dst} {when}: {got:.2} ms (want {want})");
    assert_ms(&format!("{when}: RTT"), got, want, 1.0);
}

/// Asserts that a smallest round trip `got` (ms) is `want`: never less (the shaper never
/// releases early; 0.05 ms for the clocks), less than `over` ms more.
fn assert_ms(what: &str, got: f64, want: f64, over: f64) {
    assert!(
        (want - 0.05..want + over).contains(&got),
        "{what} {got:.2} ms, want {want} to {want} + {over} ms"
    );
}

#[test]
fn nfqueue_changes_at_run_time_then_down_leaves_nothing() {
    scratch_shared(Share::Alone, |run, dir| {
        // groups a (10.72.0.1, .2) and b (10.72.0.5, .6), L = 2 ms, G = 10 ms
        let t = topology_file(dir, "changes.yaml", "address_plan:\n  base: 10.72.0.0/16\nprofiles:\n  p: {up: 100mbit, down: 100mbit, latency: 2ms, queue: 1000}\ndefaults: {profile: p, delay: 10ms}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: b, nodes: 2}\n");
        let before = snapshot();
        let change = changer(run, &t, "changes");
        let (a1, a2, b1, b2) = ("10.72.0.1", "10.72.0.2", "10.72.0.5", "10.72.0.6");
        assert_rtt(a1, b1, 28.0, "at first");
        let delay = |from, to| NetChange::SetDelay {
            from,
            to,
            delay_us: Some(30_000),
            loss: None,
        };
        change(delay(0, 1)).unwrap();
        // one way a -> b: 2 + 30 + 2; b -> a: 2 + 10 + 2
        assert_rtt(a1, b1, 48.0, "after set_delay a->b 30ms");
        // packets the engine holds while it swaps its model in all arrive
        let flow = std::thread::spawn(move || delivered(b2, a2));
        std::thread::sleep(Duration::from_millis(25));
        let state = change(delay(1, 0)).unwrap();
        assert_eq!(flow.join().unwrap(), 50, "packets lost across the change");
        let delays =
            [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(a, b)| state.model.group_delay_us(a, b));
        assert_eq!(delays, [0, 30_000, 30_000, 0]);
        assert_rtt(a1, b1, 68.0, "after set_delay b->a 30ms");
        change(NetChange::SetLink {
            nodes: vec![0],
            link: LinkChange {
                latency_us: Some(5_000),
                ..LinkChange::default()
            },
        })
        .unwrap();
        assert_rtt(a1, b1, 74.0, "after set_link latency 5ms on a1");
        assert_rtt(a2, b2, 68.0, "after set_link on a1 only");

        change(NetChange::Cut(vec![0])).unwrap();
        let cut = [
            delivered(a1, b1),
            delivered(b1, a1),
            delivered(a1, a2),
            delivered(a2, a1),
        ];
        let others = [delivered(a2, b2), delivered(b2, a2)];
        eprintln!(
            "while a1 is cut: {cut:?} of 50 to and from a1, {others:?} of 50 between a2 and b2"
        );
        assert_eq!(cut, [0; 4], "a cut node sent or received");
        assert_eq!(others, [50; 2], "the others' traffic did not flow");
        change(NetChange::Restore(vec![0])).unwrap();
        assert_eq!([delivered(a1, b1), delivered(b1, a1)], [50; 2]);
        assert_rtt(a1, b1, 74.0, "after restore");

        // down while a node is cut removes everything
        let state = change(NetChange::Cut(vec![0, 3])).unwrap();
        assert_eq!(state.cut, [0, 3]);
        ok(p2plab(run, &["down", "changes"]));
        assert_eq!(snapshot(), before);
    });
}

#[test]
fn nfqueue_network_without_delays_gets_its_engine_at_run_time() {
    scratch_shared(Share::Alone, |run, dir| {
        let t = topology(dir, "late.yaml", "10.73.0.0/16", 2, 2);
        let before = snapshot();
        let change = changer(run, &t, "late");
        assert!(
            !snapshot().contains("NFQUEUE"),
            "rates only, yet NFQUEUE rules"
        );
        for (from, to) in [(0, 1), (1, 0)] {
            change(NetChange::SetDelay {
                from,
                to,
                delay_us: Some(10_000),
                loss: None,
            })
            .unwrap();
        }
        // 2 x 10 ms: a lone 43-byte packet leaves each HTB class on its tokens, without
        // waiting its serialization time at 2 mbit up and 8 mbit down
        assert_rtt("10.73.0.1", "10.73.0.5", 20.0, "after set_delay both ways");
        ok(p2plab(run, &["down", "late"]));
        assert_eq!(snapshot(), before);
    });
}

#[test]
fn change_by_hand_cuts_restores_and_refuses_in_one_line() {
    scratch(|run, dir| {
        let t = topology(dir, "hand.yaml", "10.74.0.0/16", 2, 2);
        let before = snapshot();
        ok(p2plab(run, &["up", t.to_str().unwrap(), "--name", "hand"]));
        let change = |args: &[&str]| p2plab(run, &[&["change", "--name", "hand"], args].concat());
        assert_eq!(
            ok(change(&["cut", "g0-1"])),
            "network hand: cut off 1 node\n"
        );
        let status = ok(p2plab(run, &["status", "hand"]));
        assert!(
            status.starts_with("network hand: 4 nodes on lo, backend nfqueue, cut off: g0-1\n"),
            "{status}"
        );
        assert_eq!(delivered("10.74.0.1", "10.74.0.5"), 0);
        assert_eq!(
            ok(change(&["set_link", "g1", "up=1mbit", "latency=2ms"])),
            "network hand: new link parameters for 2 nodes\n"
        );
        // a range of a group: g1-2 alone
        assert_eq!(
            ok(change(&["cut", "g1[2-2]"])),
            "network hand: cut off 1 node\n"
        );
        assert_eq!(delivered("10.74.0.2", "10.74.0.6"), 0);
        assert_eq!(delivered("10.74.0.2", "10.74.0.5"), 50);
        for (args, want) in [
            (
                vec!["set_link", "nosuch", "up=1mbit"],
                "`nosuch` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`\n",
            ),
            (
                vec!["set_link", "g1[2-3]", "up=1mbit"],
                "`g1[2-3]` is not a range of 1..2; write `g1[A-B]` with 1 <= A <= B <= 2\n",
            ),
            (
                vec!["set_delay", "from=g0", "to=g1"],
                "`set_delay` changes nothing; give `delay` and/or `loss`\n",
            ),
            (
                vec!["set_link", "g0", "up=fast"],
                "`up`: `fast` does not start with a number; write a number followed by its unit\n",
            ),
        ] {
            assert_eq!(err(change(&args)), want);
        }
        assert_eq!(
            ok(change(&["restore", "*"])),
            "network hand: restored 4 nodes (if cut)\n"
        );
        assert_eq!(delivered("10.74.0.1", "10.74.0.5"), 50);
        ok(p2plab(run, &["down", "hand"]));
        assert_eq!(snapshot(), before);
    });
}

#[test]
fn nfqueue_tcp_with_full_size_packets_fills_the_link() {
    // Ethernet-size packets from the topology's `mtu` (lo's 64 KB MTU and GSO hide the
    // problem): while the engine held packets in OUTPUT, TCP Small Queues let a flow have
    // two packets below its socket, so through a 60 ms hold it ran at 2 packets per 60 ms,
    // a fifth of this 2 mbit link.
    scratch_as(Share::Alone, |run, dir| {
        let lo = || {
            let d = String::from_utf8(
                Command::new("ip")
                    .args(["-d", "link", "show", "lo"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap();
            ["mtu", "gso_max_size", "gso_max_segs"]
                .map(|f| {
                    let at = d.find(&format!(" {f} ")).unwrap() + f.len() + 2;
                    d[at..].split_whitespace().next().unwrap().to_string()
                })
                .join(" ")
        };
        let before = lo();
        up_nfqueue(run, dir, "15ms", "0%");
        let t = dir.join("delays.yaml");
        let slow = std::fs::read_to_string(&t)
            .unwrap()
            .replace("100mbit", "2mbit");
        ok(p2plab(run, &["down"]));
        std::fs::write(&t, format!("mtu: 1500\n{slow}")).unwrap();
        let dry = ok(p2plab(
            run,
            &[
                "up",
                t.to_str().unwrap(),
                "--shaping",
                "nfqueue",
                "--dry-run",
            ],
        ));
        assert!(
            dry.contains("ip link set dev lo mtu 1500 gso_max_size 1500 gso_max_segs 1"),
            "{dry}"
        );
        assert_eq!(lo(), before, "a dry run changes nothing");
        up_nfqueue_file(run, &t);
        assert_eq!(lo(), "1500 1500 1");

        const BYTES: usize = 1_000_000;
        let listener = std::net::TcpListener::bind("10.70.0.5:9100").unwrap();
        let sender = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            std::io::Write::write_all(&mut c, &vec![7u8; BYTES]).unwrap();
        });
        let sock = connect_from(
            "10.70.0.1:0".parse().unwrap(),
            "10.70.0.5:9100".parse().unwrap(),
        );
        let start = Instant::now();
        let mut got = Vec::with_capacity(BYTES);
        std::io::Read::read_to_end(&mut { sock }, &mut got).unwrap();
        let mbit = got.len() as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e6;
        sender.join().unwrap();
        eprintln!("TCP goodput with 1500-byte packets through 2 x 40 ms: {mbit:.2} mbit/s of 2");
        assert_eq!(got.len(), BYTES);
        // at most the link less the headers of each 1514-byte frame (a 1460-byte payload
        // without TCP options, so this bound is generous), plus 3 % for the clock
        let most = 2.0 * 1460.0 / 1514.0 * 1.03;
        assert!(
            (1.6..=most).contains(&mbit),
            "TCP goodput {mbit:.2} mbit/s through a 2 mbit link, want 1.6 to {most:.2}"
        );
        ok(p2plab(run, &["down"]));
        assert_eq!(lo(), before, "down gives lo its packet size back");
    });
}

/// A network that sets the device's packet size shares the device with no other, either
/// way round, and the refusal changes nothing.
#[test]
fn a_packet_size_is_not_imposed_on_another_network() {
    scratch(|run, dir| {
        let t = |name: &str, net: u8, mtu: &str| {
            let p = dir.join(format!("{name}.yaml"));
            std::fs::write(&p, format!("{mtu}address_plan: {{base: 10.{net}.0.0/16}}\nprofiles: {{p: {{up: 1mbit, down: 1mbit}}}}\ndefaults: {{profile: p}}\ngroups: [{{name: g, nodes: 2}}]\n")).unwrap();
            p
        };
        let (sized, plain) = (t("sized", 81, "mtu: 1500\n"), t("plain", 82, ""));
        let up = |p: &Path, name: &str| p2plab(run, &["up", p.to_str().unwrap(), "--name", name]);
        ok(up(&plain, "plain"));
        let refused = err(up(&sized, "sized"));
        assert_eq!(refused, "mtu 1500 would change the packets of network plain on lo too; take it down first or use another --dev\n");
        ok(p2plab(run, &["down", "plain"]));
        ok(up(&sized, "sized"));
        let refused = err(up(&plain, "plain"));
        assert_eq!(refused, "network sized set the packet size of lo (its topology's mtu); take it down first or use another --dev\n");
        ok(p2plab(run, &["down", "sized"]));
    });
}

/// A TCP connection from `local` (bound first, so it leaves from that node) to `peer`.
fn connect_from(
    local: std::net::SocketAddrV4,
    peer: std::net::SocketAddrV4,
) -> std::net::TcpStream {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(local),
    )
    .unwrap();
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(peer),
    )
    .unwrap();
    std::net::TcpStream::from(fd)
}
