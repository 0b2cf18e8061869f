//! A first virtualization-ratio figure: how many BitTorrent peers this one machine hosts,
//! at a fixed per-peer profile, before the host itself changes the results.
//!
//! The fluid bandwidth model (`F / D` here) does not predict an aria2c swarm: measured on
//! this machine, plain HTTP downloads at the same profile finish in the model's time plus a
//! fixed cost at every size tried (8.52 s for 8 and for 64 clients, model 8.0 s), while a
//! single swarm's median grows from 17.6 s (8 leechers) to 42 s (256) with the machine at
//! most 37 % busy: that growth is BitTorrent's own dynamics, and would be the same on any
//! host. So the prediction is calibrated the way P2PLab measured folding: `K` independent
//! copies of one small swarm (each its own torrent, one shared tracker) run side by side,
//! and every copy follows the same dynamics, so the median completion time of all copies
//! is that of one copy as long as the host keeps up. The prediction is the median of the
//! lone copy (pooled over a few runs); the virtualization ratio is the largest number of
//! peers whose median stays within 5 % above it (a host short of CPU or timer accuracy only
//! slows a swarm down; a faster median is the swarm's own spread, shown by the lone runs). Each run records the machine's CPU busy share
//! (from /proc/stat), which shows why it drifts, and the ratio of its median to the model.
//!
//! Swarm: 16 leechers (2 mbit down, 1 mbit up, 30 ms, 30-packet queue) and 4 seeds
//! (10 mbit, 1 ms), a 2 MB file, Ethernet-size packets (the topology's `mtu: 1500`: no
//! 64 KB GSO segments on `lo`), each run with `p2plab run` in a scratch network namespace.
//!
//! `cargo bench -p cli --bench virtualization` (root; about ten minutes). JSON on stdout and
//! in target/virtualization.json.

mod common;

/// Copies of the swarm per run; the first is repeated `BASE_RUNS` times for the prediction.
const COPIES: &[usize] = &[1, 2, 4, 8, 10, 12, 16];
const BASE_RUNS: usize = 3;
const LEECHERS: usize = 16;
const SEEDS: usize = 4;
const FILE_BYTES: f64 = 2_000_000.0;
const DOWN_BPS: f64 = 2e6;
const TOLERANCE: f64 = 0.05;

fn experiment(copies: usize) -> String {
    let prepare = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/bittorrent/prepare.sh");
    let mut s = String::from(
        "topology:
  mtu: 1500
  address_plan: {base: 10.120.0.0/16}
  profiles:
    adsl: {up: 1mbit, down: 2mbit, latency: 30ms, queue: 30}
    seed: {up: 10mbit, down: 10mbit, latency: 1ms, queue: 30}
  groups:
    - {name: tracker, nodes: [tracker], profile: seed}
",
    );
    for k in 1..=copies {
        s += &format!("    - {{name: seed{k}, nodes: {SEEDS}, profile: seed}}\n");
        s += &format!("    - {{name: leech{k}, nodes: {LEECHERS}, profile: adsl}}\n");
    }
    s += "prepare:\n";
    for k in 1..=copies {
        s += &format!(
            "  - sh -c 'mkdir {{run_dir}}/s{k} && sh {} {{run_dir}}/s{k} {FILE_BYTES} http://{{tracker.ip}}:{{tracker.port}}/announce'\n",
            prepare.display()
        );
    }
    s += "  - sh -c 'cat {run_dir}/s*/whitelist > {run_dir}/whitelist && echo access.whitelist {run_dir}/whitelist > {run_dir}/opentracker.conf'
roles:
  - {name: tracker, nodes: tracker, port: 6969, command: 'opentracker -i {ip} -p {port} -P {port} -f {run_dir}/opentracker.conf'}
";
    let common = "--enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false --listen-port=6881 -d {dir} {dir}/data.torrent";
    for k in 1..=copies {
        s += &format!(
            "  - name: seed{k}
    nodes: seed{k}
    files: [s{k}/data.bin, s{k}/data.torrent]
    command: aria2c --seed-ratio=0 --bt-seed-unverified=true --check-integrity=true {common}
    start: {{at: 1s}}
  - name: leecher{k}
    nodes: leech{k}
    files: [s{k}/data.torrent]
    command: aria2c --seed-time=0 --file-allocation=none {common}
    start: {{at: 3s, every: 20ms}}
"
        );
    }
    let leechers: Vec<String> = (1..=copies).map(|k| format!("leecher{k}")).collect();
    s += &format!("stop: {{exited: [{}], after: 10m}}\n", leechers.join(", "));
    s
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

/// (busy, total) jiffies of all CPUs, from the first line of /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = stat.lines().next().unwrap()[3..]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let total: u64 = v.iter().sum();
    (total - v[3] - v[4], total)
}

/// One run of `copies` swarms: the leechers' completion times (of those that completed)
/// and the machine's CPU busy share during the run.
fn run(copies: usize) -> (Vec<f64>, f64) {
    let work = tempfile::tempdir().unwrap();
    let exp = work.path().join(format!("swarms{copies}.yaml"));
    std::fs::write(&exp, experiment(copies)).unwrap();
    let before = cpu_jiffies();
    let results = common::run(&exp, work.path(), "");
    let after = cpu_jiffies();
    let busy = (after.0 - before.0) as f64 / (after.1 - before.1) as f64;
    let done = results
        .processes
        .iter()
        .filter(|p| p.role.starts_with("leecher"))
        .filter_map(|p| p.completion_s())
        .collect();
    (done, busy)
}

fn main() {
    if std::env::args().all(|a| a != "--bench") {
        return;
    }
    let model = FILE_BYTES * 8.0 / DOWN_BPS;
    let (mut base, mut lone_medians): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for i in 0..BASE_RUNS {
        let (done, busy) = run(1);
        eprintln!(
            "lone swarm, run {}: {} of {LEECHERS} done, median {:.2} s, CPU busy {:.0} %",
            i + 1,
            done.len(),
            median(done.clone()),
            busy * 100.0
        );
        assert_eq!(
            done.len(),
            LEECHERS,
            "every leecher of the lone swarm completes"
        );
        lone_medians.push(median(done.clone()));
        base.extend(done);
    }
    let predicted = median(base);
    let mut rows = Vec::new();
    for &k in &COPIES[1..] {
        let (done, busy) = run(k);
        let m = median(done.clone());
        eprintln!(
            "{k} swarms ({} peers): {} of {} leechers done, median {m:.2} s (predicted {predicted:.2} s), CPU busy {:.0} %",
            k * (LEECHERS + SEEDS),
            done.len(),
            k * LEECHERS,
            busy * 100.0
        );
        rows.push((k, done.len(), m, busy));
    }
    let drift = |m: f64| m / predicted - 1.0;
    let largest = rows
        .iter()
        .take_while(|r| r.1 == r.0 * LEECHERS && drift(r.2) <= TOLERANCE)
        .last()
        .map_or(LEECHERS + SEEDS, |r| r.0 * (LEECHERS + SEEDS));
    let json = serde_json::json!({
        "swarm": {"leechers": LEECHERS, "seeds": SEEDS, "file_bytes": FILE_BYTES,
                  "leecher": {"down_bps": DOWN_BPS, "up_bps": 1e6, "latency_ms": 30, "queue_packets": 30},
                  "seed": {"up_bps": 10e6, "latency_ms": 1}, "mtu": 1500},
        "model_s": model,
        "lone_run_medians_s": lone_medians,
        "predicted_s": predicted,
        "runs": rows.iter().map(|&(k, done, m, busy)| serde_json::json!({
            "swarms": k, "peers": k * (LEECHERS + SEEDS), "completed": done,
            "median_s": m, "drift": drift(m), "median_over_model": m / model, "cpu_busy": busy,
        })).collect::<Vec<_>>(),
        "tolerance": TOLERANCE,
        "largest_peers_within_tolerance": largest,
    });
    common::publish("virtualization", &json);
}
