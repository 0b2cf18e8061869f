//! Writes a synthetic result directory of any size, for trying the report on large runs:
//! `cargo run --release -p report --example synthetic_results -- DIR PROCESSES SAMPLES`
//! then `p2plab report DIR --format html`. What it holds: see `tests/synthetic/mod.rs`,
//! which the report's browser test shares.

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, processes, samples] = &args[..] else {
        eprintln!("usage: synthetic_results DIR PROCESSES SAMPLES");
        std::process::exit(2);
    };
    let n: u64 = processes.parse().expect("PROCESSES is a count");
    let samples: u64 = samples.parse().expect("SAMPLES is a count");
    synthetic::write(std::path::Path::new(dir), n, samples)
}
