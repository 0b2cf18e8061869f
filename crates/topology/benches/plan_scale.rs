//! Scale benchmark: parse, validate and plan 100,000 nodes in 1,000 groups with a
//! 1,000 x 1,000 delay matrix file (target: under 1 s and under 200 MB).

use criterion::{criterion_group, criterion_main, Criterion};
use std::fmt::Write;
use std::time::Duration;

const GROUPS: usize = 1000;
const NODES_PER_GROUP: usize = 100;

/// Writes the topology and its matrix into `dir`, returning the topology path.
fn write_inputs(dir: &std::path::Path) -> std::path::PathBuf {
    let mut src = String::from("address_plan: {base: 10.0.0.0/8}\nprofiles:\n  adsl: {up: 128kbit, down: 2mbit, latency: 30ms}\ndefaults: {profile: adsl}\ngroups:\n");
    for g in 0..GROUPS {
        let _ = writeln!(src, "  - {{name: g{g}, nodes: {NODES_PER_GROUP}}}");
    }
    src += "delay_matrix: {file: matrix.txt, format: matrix}\n";
    let mut matrix = String::with_capacity(GROUPS * GROUPS * 6);
    for a in 0..GROUPS {
        for b in 0..GROUPS {
            let ms = if a == b {
                0
            } else {
                5 + (a * 7 + b * 13) % 200
            };
            let _ = write!(matrix, "{ms} ");
        }
        matrix.push('\n');
    }
    std::fs::write(dir.join("matrix.txt"), matrix).unwrap();
    let path = dir.join("big.yaml");
    std::fs::write(&path, src).unwrap();
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_inputs(dir.path());
    let mut group = c.benchmark_group("topology");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("load_100k_nodes_1k_groups_1k_matrix", |b| {
        b.iter(|| {
            let plan = topology::load(&path).unwrap();
            assert_eq!(plan.link.nodes.len(), GROUPS * NODES_PER_GROUP);
            plan
        })
    });
    group.finish();
    // SAFETY: getrusage only writes into the struct we pass.
    let peak_kb = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage.ru_maxrss
    };
    println!(
        "peak resident memory of the benchmark process: {} MB",
        peak_kb / 1024
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
