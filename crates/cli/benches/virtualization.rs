//! A first virtualization-ratio figure: BitTorrent swarms of growing size on this one
//! machine, at a fixed per-peer profile (2 mbit down, 1 mbit up, 30 ms, a 30-packet queue:
//! with P2PLab's 128 kbit uplink and a deep queue, queued uploads delay every request and
//! ACK by seconds, and with a queue shorter than the path's bandwidth-delay product TCP
//! cannot fill the link; either way the swarm is far from any bandwidth model), each run
//! with `p2plab run` in a scratch network namespace. For each size the median completion
//! time is compared with the fluid bandwidth model's prediction
//! `T = max(F/D, N F / (U_seeds + N U))` (Kumar and Ross): the swarm is faithful while
//! `median / T` stays where it is for small swarms; when the machine runs short of CPU it
//! drifts. Reported as JSON (also target/virtualization.json): per size the median, the
//! prediction, their ratio and its drift from the smallest swarm's ratio, and the largest
//! size within 5 % of it.
//!
//! `cargo bench -p cli --bench virtualization` (root; a few minutes).

mod common;

const SIZES: &[usize] = &[10, 20, 40, 80, 160];
const FILE_BYTES: f64 = 2_000_000.0;
const DOWN_BPS: f64 = 2e6;
const UP_BPS: f64 = 1e6;
const SEEDS: usize = 4;
/// Per seed: what its unchoked peers can take (4 slots x 2 mbit), so the model's seed
/// capacity is what the seeds really give.
const SEED_UP_BPS: f64 = 8e6;

fn experiment(n: usize) -> String {
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bittorrent");
    format!(
        "topology:
  address_plan: {{base: 10.120.0.0/16}}
  profiles:
    adsl: {{up: 1mbit, down: 2mbit, latency: 30ms, queue: 30}}
    seed: {{up: 8mbit, down: 8mbit, latency: 1ms}}
  groups:
    - {{name: tracker, nodes: [tracker], profile: seed}}
    - {{name: seed, nodes: {SEEDS}, profile: seed}}
    - {{name: leech, nodes: {n}, profile: adsl}}
prepare:
  - sh {ex}/prepare.sh {{run_dir}} {FILE_BYTES} http://{{tracker.ip}}:{{tracker.port}}/announce
roles:
  - {{name: tracker, nodes: tracker, port: 6969, command: 'opentracker -i {{ip}} -p {{port}} -P {{port}} -f {{run_dir}}/opentracker.conf'}}
  - name: seed
    nodes: seed
    files: [data.bin, data.torrent]
    command: aria2c --seed-ratio=0 --bt-seed-unverified=true --check-integrity=true --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false --listen-port=6881 -d {{dir}} {{dir}}/data.torrent
    start: {{at: 1s}}
  - name: leecher
    nodes: leech
    files: [data.torrent]
    command: aria2c --seed-time=0 --enable-dht=false --bt-enable-lpd=false --enable-peer-exchange=false --listen-port=6881 --file-allocation=none -d {{dir}} {{dir}}/data.torrent
    start: {{at: 3s, every: 20ms}}
stop: {{exited: [leecher], after: 10m}}
",
        ex = examples.display()
    )
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

fn main() {
    if std::env::args().all(|a| a != "--bench") {
        return;
    }
    let mut rows = Vec::new();
    for &n in SIZES {
        let work = tempfile::tempdir().unwrap();
        let exp = work.path().join(format!("swarm{n}.yaml"));
        std::fs::write(&exp, experiment(n)).unwrap();
        let results = common::run(&exp, work.path(), "");
        let done: Vec<f64> = results
            .processes
            .iter()
            .filter(|p| p.role == "leecher")
            .filter_map(|p| p.completion_s())
            .collect();
        let f = FILE_BYTES * 8.0;
        let predicted =
            (f / DOWN_BPS).max(n as f64 * f / (SEEDS as f64 * SEED_UP_BPS + n as f64 * UP_BPS));
        let m = median(done.clone());
        eprintln!(
            "swarm {n}: {} of {n} done, median {m:.2} s, predicted {predicted:.2} s",
            done.len()
        );
        rows.push((n, done.len(), m, predicted));
    }
    let base = rows[0].2 / rows[0].3;
    let largest = rows
        .iter()
        .take_while(|r| r.1 == r.0 && ((r.2 / r.3) / base - 1.0).abs() <= 0.05)
        .last()
        .map(|r| r.0);
    let json = serde_json::json!({
        "profile": {"down_bps": DOWN_BPS, "up_bps": UP_BPS, "latency_ms": 30, "file_bytes": FILE_BYTES, "seeds": SEEDS, "seed_up_bps": SEED_UP_BPS},
        "runs": rows.iter().map(|&(n, done, m, p)| serde_json::json!({
            "leechers": n, "completed": done, "median_s": m, "predicted_s": p,
            "ratio": m / p, "drift_from_smallest": (m / p) / base - 1.0,
        })).collect::<Vec<_>>(),
        "largest_within_5_percent": largest,
    });
    common::publish("virtualization", &json);
}
