//! Benchmark: set up and tear down 5,000 nodes in 50 groups (aliases on lo + full HTB/IFB
//! shaping with hashed filters) through our pipelined netlink, and the very same objects
//! through `ip -batch` + `tc -batch`, alternating, in one run, inside a scratch network
//! namespace. Prints a table and writes JSON to `target/bench-setup-5000.json`.
//!
//! Run: `cargo bench -p shaping --bench setup_5000` (as root).

use netctl::scratch::in_new_netns;
use netctl::{Host, Object, Op, Parent};
use shaping::objects::{objects, Layout};
use shaping::{teardown_list, Backend};
use std::io::Write;
use std::process::Command;
use std::time::Instant;
use topology::LinkModel;

const GROUPS: usize = 50;
const PER_GROUP: usize = 100;
const ROUNDS: usize = 3;

fn model() -> LinkModel {
    let mut m = LinkModel::uniform(GROUPS, PER_GROUP, 128_000, 2_000_000, 30_000);
    for (a, b) in (0..GROUPS).flat_map(|a| (0..GROUPS).map(move |b| (a, b))) {
        m.set_group_delay_us(a, b, 10_000);
    }
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

/// (user, system) CPU seconds of this thread (`RUSAGE_THREAD`) or of the children waited
/// for (`RUSAGE_CHILDREN`): netlink requests run in the kernel in the sender's context, so
/// system time is the kernel's share of a setup.
fn cpu(who: i32) -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
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

/// Times `f`, in seconds.
fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Whether `o` is an `ip` object (address, IFB), not a `tc` one.
fn is_ip(o: &Object) -> bool {
    o.to_string().starts_with("ip ")
}

fn main() {
    let m = model();
    let local: Vec<usize> = (0..m.nodes.len()).collect();
    let layout = Layout {
        dev: "lo".into(),
        slot: 0,
        backend: Backend::Nfqueue,
    };
    let objs = objects(&m, &local, &layout);
    let mut down = teardown_list(&objs);
    down.push(objs[0].clone()); // the clsact qdisc, deleted last
                                // The batch tools run `ip` first on the way up and `tc` first on the way down; so do we
                                // (timed apart, to show where the time goes).
    let (up_ip, up_tc): (Vec<Object>, Vec<Object>) = objs.iter().cloned().partition(is_ip);
    let (down_ip, down_tc): (Vec<Object>, Vec<Object>) = down.iter().cloned().partition(is_ip);
    let results = in_new_netns(move || {
        assert!(Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        let dir = tempfile::tempdir().unwrap();
        let (up_ip_file, up_tc_file) =
            batch_files(objs.iter().map(|o| o.to_string()), dir.path(), "up");
        // IFBs go by group, like netctl deletes them: one line per group
        let mut seen = std::collections::HashSet::new();
        let down_lines = down
            .iter()
            .map(delete_line)
            .filter(|l| seen.insert(l.clone()));
        let (dn_ip_file, dn_tc_file) = batch_files(down_lines, dir.path(), "down");
        let batch = |tool: &str, file: &std::path::Path| {
            timed(|| {
                assert!(Command::new(tool)
                    .arg("-batch")
                    .arg(file)
                    .status()
                    .unwrap()
                    .success())
            })
        };
        let mut host = Host::open().unwrap();
        let mut rows = vec![];
        for _ in 0..ROUNDS {
            let before = cpu(libc::RUSAGE_THREAD);
            let ours_up_ip = timed(|| host.apply(&up_ip, Op::Create).unwrap());
            let ours_up_tc = timed(|| host.apply(&up_tc, Op::Create).unwrap());
            let after = cpu(libc::RUSAGE_THREAD);
            let (user, sys) = (after.0 - before.0, after.1 - before.1);
            assert_eq!(count_objects(), (1 + 5000, 100));
            let ours_down_tc = timed(|| host.apply(&down_tc, Op::Delete).unwrap());
            let ours_down_ip = timed(|| host.apply(&down_ip, Op::Delete).unwrap());
            assert_eq!(count_objects(), (1, 0));
            let before = cpu(libc::RUSAGE_CHILDREN);
            let tools_up_ip = batch("ip", &up_ip_file);
            let tools_up_tc = batch("tc", &up_tc_file);
            let after = cpu(libc::RUSAGE_CHILDREN);
            let (tools_user, tools_sys) = (after.0 - before.0, after.1 - before.1);
            assert_eq!(count_objects(), (1 + 5000, 100));
            let tools_down_tc = batch("tc", &dn_tc_file);
            let tools_down_ip = batch("ip", &dn_ip_file);
            assert_eq!(count_objects(), (1, 0));
            rows.push([
                ours_up_ip + ours_up_tc,
                ours_down_tc + ours_down_ip,
                tools_up_ip + tools_up_tc,
                tools_down_tc + tools_down_ip,
                user,
                sys,
                ours_up_ip,
                ours_up_tc,
                tools_up_ip,
                tools_up_tc,
                ours_down_ip,
                ours_down_tc,
                tools_down_ip,
                tools_down_tc,
                tools_user,
                tools_sys,
            ]);
        }
        rows
    })
    .expect("run as root");
    let n_objs = objects(&m, &local, &layout).len();
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
    for (what, k) in [
        ("  addresses, IFBs (ip)", 6),
        ("  qdiscs, classes, filters (tc)", 7),
    ] {
        let (o_up, t_up, o_dn, t_dn) = (median(k), median(k + 2), median(k + 4), median(k + 6));
        println!(
            "{what}: set up {o_up:.3}s vs {t_up:.3}s ({:.1}x), tear down {o_dn:.3}s vs {t_dn:.3}s ({:.1}x)",
            t_up / o_up,
            t_dn / o_dn
        );
    }
    let (user, sys) = (median(4), median(5));
    println!(
        "p2plab set up CPU: {user:.3}s user (building, sending, reading acks), {sys:.3}s kernel"
    );
    let (tools_user, tools_sys) = (median(14), median(15));
    println!(
        "ip + tc set up CPU: {tools_user:.3}s user (parsing, building), {tools_sys:.3}s kernel"
    );
    // the kernel's own work on these requests is the same whoever sends them
    println!(
        "best speed-up any tool could reach here: {:.1}x (ip + tc's set up time / p2plab's kernel time)",
        tu / sys
    );
    let json = format!(
        "{{\"nodes\":5000,\"groups\":50,\"objects\":{n_objs},\"rounds\":{ROUNDS},\"ours_up_s\":{ou},\"ours_down_s\":{od},\"batch_up_s\":{tu},\"batch_down_s\":{td},\"speedup_up\":{},\"speedup_down\":{},\"ours_up_user_s\":{user},\"ours_up_kernel_s\":{sys},\"batch_up_user_s\":{tools_user},\"batch_up_kernel_s\":{tools_sys},\"columns\":\"ours_up ours_down tools_up tools_down user sys ours_up_ip ours_up_tc tools_up_ip tools_up_tc ours_down_ip ours_down_tc tools_down_ip tools_down_tc tools_user tools_sys\",\"all_rounds\":{:?}}}\n",
        tu / ou,
        td / od,
        results
    );
    let target =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-setup-5000.json");
    std::fs::write(&target, json).unwrap();
    println!("wrote {}", target.display());
}
