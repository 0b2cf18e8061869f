//! What the run benchmarks share: one `p2plab run` of an experiment file in a scratch
//! network namespace, its results read back.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `experiment` with the p2plab of this package (under `wrapper`, e.g. `/usr/bin/time
/// ...`, or nothing), state and results in `work`; returns the results.
pub fn run(experiment: &Path, work: &Path, wrapper: &str) -> results::Results {
    let shim = std::env::current_exe()
        .unwrap()
        .with_file_name("libp2plab_shim.so");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c"])
        .arg(format!(
            "ip link set lo up && {wrapper} {} run --quiet --shim {} --results {} {}",
            env!("CARGO_BIN_EXE_p2plab"),
            shim.display(),
            work.join("results").display(),
            experiment.display()
        ))
        .env("P2PLAB_RUN_DIR", work.join("state"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "p2plab run {}", experiment.display());
    let dir = std::fs::read_dir(work.join("results"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    results::load(&dir).unwrap()
}

/// Writes `json` to stdout and to `target/<name>.json`.
pub fn publish(name: &str, json: &serde_json::Value) {
    println!("{json:#}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/{name}.json"));
    let _ = std::fs::write(out, json.to_string());
}
