//! A synthetic result directory of any size, for trying the report on large runs (the
//! `synthetic_results` example) and for testing it (the browser test). Processes are
//! spread over 8 groups, start every 0.25 s, and take a group-dependent time with
//! deterministic noise; about 3 % exit with code 1, 1 % fail to start, one per group is a
//! seed stopped at the end. Each process reports a `progress` metric (in percent) from 0
//! to 100 over its lifetime. Starts lag their plan more and more (up to 0.5 s), and the
//! host's 8 CPUs get busier over the run. `run.json` holds the command line and the
//! topology as a run records them (8 groups of one profile, 10 ms between groups).

use std::fmt::Write;
use std::path::Path;

/// Deterministic noise in [0, 1) (SplitMix64), so two runs write the same files.
fn noise(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// Writes a result directory of `n` processes and about `samples` metric samples in `dir`.
pub fn write(dir: &Path, n: u64, samples: u64) -> std::io::Result<()> {
    let per_process = (samples.div_ceil(n.max(1)) + 1).max(2);
    let duration = n as f64 * 0.25 + 200.0;

    let mut procs = String::from("node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received\n");
    let mut metrics = String::from("time_s,node,role,name,value\n");
    for i in 0..n {
        let group = i % 8;
        let planned = i as f64 * 0.25;
        let start = planned + 0.5 * noise(i + 2 * n) * i as f64 / n as f64;
        let took = 60.0 + 10.0 * group as f64 + 40.0 * noise(i);
        let (role, end, status, code, signal) = match i {
            _ if i < 8 => ("seed", Some(duration), "stopped", "", "15"),
            _ if noise(i + n) < 0.01 => ("leecher", None, "failed_to_start", "", ""),
            _ if noise(i + n) < 0.04 => ("leecher", Some(start + took / 2.0), "exited", "1", ""),
            _ => ("leecher", Some(start + took), "exited", "0", ""),
        };
        let end_field = end.map_or(String::new(), |e| format!("{e:.3}"));
        // A process that never started has no pid and no measurements.
        let (pid, measured) = if status == "failed_to_start" {
            (String::new(), ",,,,".to_string())
        } else {
            let (rss, sent, received) = (20_000 + i % 1000, 1_000_000 + i, 16_000_000 + i);
            (
                (1000 + i).to_string(),
                format!(
                    "{:.2},{:.2},{rss},{sent},{received}",
                    took * 0.1,
                    took * 0.02
                ),
            )
        };
        let _ = writeln!(
            procs,
            "n{i},{role},g{group},10.{group}.{}.{},{pid},{planned:.3},{start:.3},{end_field},{status},{code},{signal},{measured}",
            i / 250,
            i % 250 + 1,
        );
        if let Some(end) = end {
            for k in 0..per_process {
                let f = k as f64 / (per_process - 1) as f64;
                let _ = writeln!(
                    metrics,
                    "{:.3},n{i},{role},progress,{:.1}",
                    start + f * (end - start),
                    100.0 * f
                );
            }
        }
    }
    // One busy share a second, rising from about 30 % to about 90 %.
    let busy: Vec<(f64, f64)> = (1..=duration as u64)
        .map(|t| {
            let share = 0.3 + 0.5 * t as f64 / duration + 0.1 * noise(t + 3 * n);
            (t as f64, (share * 1e4).round() / 1e4)
        })
        .collect();
    let mean = busy.iter().map(|b| b.1).sum::<f64>() / busy.len() as f64;
    let max = busy.iter().map(|b| b.1).fold(0.0, f64::max);
    let samples: Vec<String> = busy.iter().map(|(t, b)| format!("[{t}, {b}]")).collect();
    std::fs::create_dir_all(dir.join("logs"))?;
    std::fs::write(dir.join("processes.csv"), procs)?;
    std::fs::write(dir.join("metrics.csv"), metrics)?;
    // 8 groups of one profile, 10 ms between neighbours and 5 ms more per group apart.
    let groups: Vec<String> = (0..8u64)
        .map(|g| {
            let delays: Vec<String> = (0..8u64)
                .map(|o| if o == g { 0 } else { 5000 + 5000 * g.abs_diff(o) }.to_string())
                .collect();
            format!(
                r#"{{"name": "g{g}", "prefix": "10.{g}.0.0/16", "nodes": {}, "first_ip": "10.{g}.0.1",
"last_ip": "10.{g}.255.254", "profile": "adsl", "delay_us": [{}]}}"#,
                (n + 7 - g) / 8,
                delays.join(", ")
            )
        })
        .collect();
    std::fs::write(
        dir.join("run.json"),
        format!(
            r#"{{"name": "synthetic", "started_unix": 1795000000, "duration_s": {duration}, "topology": "synthetic.yaml",
"backend": "none", "kernel": "synthetic", "p2plab_version": "{}", "seed": 0,
"experiment": {{"roles": [{{"name": "leecher", "metrics": [{{"name": "progress", "regex": "\\((\\d+)%\\)"}}]}}]}},
"command_line": ["p2plab", "run", "synthetic.yaml", "--results", "/data/my runs"],
"resolved_topology": {{"nodes": {n}, "mtu": 1500, "delay_summary_us": [0, 15000, 40000],
"profiles": [{{"name": "adsl", "up_bps": 128000, "down_bps": 2000000, "latency_us": 30000, "loss": 0.001, "queue_packets": 1000}}],
"groups": [{}]}},
"host_cpu": {{"cpus": 8, "mean_busy": {mean:.4}, "max_busy": {max}, "samples": [{}]}}}}"#,
            env!("CARGO_PKG_VERSION"),
            groups.join(", "),
            samples.join(", ")
        ),
    )
}
