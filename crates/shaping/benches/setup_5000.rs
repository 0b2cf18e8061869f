//! Benchmark: set up and tear down 5,000 nodes in 50 groups (aliases on lo + full HTB/IFB
//! shaping with hashed filters) through our pipelined netlink, and the very same objects
//! through `ip -batch` + `tc -batch`, alternating, in one run, inside a scratch network
//! namespace. Prints a table and writes JSON to `target/bench-setup-5000.json`.
//!
//! Run: `cargo bench -p shaping --bench setup_5000` (as root).

use netctl::scratch::in_new_netns;
use netctl::{Host, Object, Op, Parent};
use shaping::lifecycle::teardown_list;
use shaping::model::Model;
use shaping::plan::{plan, Layout};
use shaping::Backend;
use std::io::Write;
use std::process::Command;
use std::time::Instant;

const GROUPS: usize = 50;
const PER_GROUP: usize = 100;
const ROUNDS: usize = 3;

fn model() -> Model {
    let mut m = Model::uniform(GROUPS, PER_GROUP, 128_000, 2_000_000, 30_000);
    m.group_delay_us = vec![vec![10_000; GROUPS]; GROUPS];
    m
}

/// The delete command (batch form) for one teardown object.
fn delete_line(o: &Object) -> String {
    match o {
        Object::Addr { dev, ip, len } => format!("addr del {ip}/{len} dev {dev}"),
        Object::Ifb { group, .. } => format!("link del group {group}"),
        Object::Filter {
            dev, parent, prio, ..
        } => format!("filter del dev {dev} {parent} prio {prio} protocol ip"),
        Object::Qdisc {
            dev,
            parent: Parent::Clsact,
            ..
        } => format!("qdisc del dev {dev} clsact"),
        Object::Qdisc { dev, parent, .. } => format!("qdisc del dev {dev} {parent}"),
        other => panic!("not a teardown object: {other}"),
    }
}

/// Splits command lines into an `ip -batch` file and a `tc -batch` file.
fn batch_files(
    lines: impl Iterator<Item = String>,
    dir: &std::path::Path,
    tag: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (ip, tc) = (dir.join(format!("{tag}.ip")), dir.join(format!("{tag}.tc")));
    let (mut fi, mut ft) = (
        std::fs::File::create(&ip).unwrap(),
        std::fs::File::create(&tc).unwrap(),
    );
    for l in lines {
        if let Some(rest) = l.strip_prefix("tc ") {
            writeln!(ft, "{rest}").unwrap();
        } else if let Some(rest) = l.strip_prefix("ip ") {
            writeln!(fi, "{rest}").unwrap();
        } else if l.starts_with("addr ") || l.starts_with("link ") {
            writeln!(fi, "{l}").unwrap();
        } else {
            writeln!(ft, "{l}").unwrap();
        }
    }
    (ip, tc)
}

fn run_batch(ip: &std::path::Path, tc: &std::path::Path, ip_first: bool) {
    let ipc = || {
        assert!(Command::new("ip")
            .arg("-batch")
            .arg(ip)
            .status()
            .unwrap()
            .success())
    };
    let tcc = || {
        assert!(Command::new("tc")
            .arg("-batch")
            .arg(tc)
            .status()
            .unwrap()
            .success())
    };
    if ip_first {
        ipc();
        tcc();
    } else {
        tcc();
        ipc();
    }
}

/// This thread's (user, system) CPU seconds: netlink requests run in the kernel in the
/// sender's context, so system time is the kernel's share of our setup.
fn thread_cpu() -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

fn count_objects() -> (usize, usize) {
    let out = |c: &str| {
        String::from_utf8(Command::new("sh").arg("-c").arg(c).output().unwrap().stdout).unwrap()
    };
    (
        out("ip -o -4 addr show dev lo").lines().count(),
        out("ip -o link show type ifb").lines().count(),
    )
}

fn main() {
    let m = model();
    let local: Vec<usize> = (0..m.nodes.len()).collect();
    let layout = Layout {
        dev: "lo".into(),
        slot: 0,
        backend: Backend::Nfqueue,
    };
    let objs = plan(&m, &local, &layout);
    let mut down = teardown_list(&objs);
    down.push(objs[0].clone()); // the clsact qdisc, deleted last
    let results = in_new_netns(move || {
        assert!(Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        let dir = tempfile::tempdir().unwrap();
        let (up_ip, up_tc) = batch_files(objs.iter().map(|o| o.to_string()), dir.path(), "up");
        // IFBs go by group, like netctl deletes them: one line per group
        let mut seen = std::collections::HashSet::new();
        let down_lines = down
            .iter()
            .map(delete_line)
            .filter(|l| seen.insert(l.clone()));
        let (dn_ip, dn_tc) = batch_files(down_lines, dir.path(), "down");
        let mut host = Host::open().unwrap();
        let mut rows = vec![];
        for _ in 0..ROUNDS {
            let (t, cpu) = (Instant::now(), thread_cpu());
            host.apply(&objs, Op::Create).unwrap();
            let ours_up = t.elapsed().as_secs_f64();
            let after = thread_cpu();
            let (user, sys) = (after.0 - cpu.0, after.1 - cpu.1);
            assert_eq!(count_objects(), (1 + 5000, 100));
            let t = Instant::now();
            host.apply(&down[..down.len() - 1], Op::Delete).unwrap();
            host.apply(&down[down.len() - 1..], Op::Delete).unwrap();
            let ours_down = t.elapsed().as_secs_f64();
            assert_eq!(count_objects(), (1, 0));
            let t = Instant::now();
            run_batch(&up_ip, &up_tc, true);
            let tools_up = t.elapsed().as_secs_f64();
            assert_eq!(count_objects(), (1 + 5000, 100));
            let t = Instant::now();
            run_batch(&dn_ip, &dn_tc, false);
            let tools_down = t.elapsed().as_secs_f64();
            assert_eq!(count_objects(), (1, 0));
            rows.push([ours_up, ours_down, tools_up, tools_down, user, sys]);
        }
        rows
    })
    .expect("run as root");
    let n_objs = plan(&m, &local, &layout).len();
    let median = |k: usize| {
        let mut v: Vec<f64> = results.iter().map(|r| r[k]).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (ou, od, tu, td) = (median(0), median(1), median(2), median(3));
    println!("5000 nodes / 50 groups, {n_objs} objects, median of {ROUNDS} alternating rounds");
    println!("{:<22} {:>10} {:>10}", "", "set up", "tear down");
    println!("{:<22} {:>9.3}s {:>9.3}s", "p2plab netlink", ou, od);
    println!("{:<22} {:>9.3}s {:>9.3}s", "ip -batch + tc -batch", tu, td);
    println!("{:<22} {:>9.1}x {:>9.1}x", "speed-up", tu / ou, td / od);
    let (user, sys) = (median(4), median(5));
    println!(
        "p2plab set up CPU: {user:.3}s user (building, sending, reading acks), {sys:.3}s kernel"
    );
    let json = format!(
        "{{\"nodes\":5000,\"groups\":50,\"objects\":{n_objs},\"rounds\":{ROUNDS},\"ours_up_s\":{ou},\"ours_down_s\":{od},\"batch_up_s\":{tu},\"batch_down_s\":{td},\"speedup_up\":{},\"speedup_down\":{},\"ours_up_user_s\":{},\"ours_up_kernel_s\":{},\"all_rounds\":{:?}}}\n",
        tu / ou,
        td / od,
        median(4),
        median(5),
        results
    );
    let target =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-setup-5000.json");
    std::fs::write(&target, json).unwrap();
    println!("wrote {}", target.display());
}
