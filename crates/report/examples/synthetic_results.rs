//! Writes a synthetic result directory of any size, for trying the report on large runs:
//! `cargo run --release -p report --example synthetic_results -- DIR PROCESSES SAMPLES`
//! then `p2plab report DIR --format html`. Processes are spread over 8 groups, start
//! every 0.25 s, and take a group-dependent time with deterministic noise; about 3 % exit
//! with code 1, 1 % fail to start, one per group is a seed stopped at the end. Each
//! process reports a `progress` metric from 0 to 100 over its lifetime. Starts lag their
//! plan more and more (up to 0.5 s), and the host's 8 CPUs get busier over the run.

use std::fmt::Write;

/// Deterministic noise in [0, 1) (SplitMix64), so two runs write the same files.
fn noise(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, processes, samples] = &args[..] else {
        eprintln!("usage: synthetic_results DIR PROCESSES SAMPLES");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);
    let n: u64 = processes.parse().expect("PROCESSES is a count");
    let samples: u64 = samples.parse().expect("SAMPLES is a count");
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
    std::fs::write(
        dir.join("run.json"),
        format!(
            r#"{{"name": "synthetic", "started_unix": 0, "duration_s": {duration}, "topology": "synthetic",
"backend": "none", "kernel": "synthetic", "p2plab_version": "{}", "seed": 0, "experiment": {{"processes": {n}}},
"host_cpu": {{"cpus": 8, "mean_busy": {mean:.4}, "max_busy": {max}, "samples": [{}]}}}}"#,
            env!("CARGO_PKG_VERSION"),
            samples.join(", ")
        ),
    )
}
