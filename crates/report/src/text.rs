//! The terminal summary: run line, totals, a table per group and the fairness table.

use crate::analysis::Analysis;
use std::fmt::Write;

/// A figure with `digits` decimals, or `-` when undefined.
pub(crate) fn figure(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

pub(crate) fn render(a: &Analysis) -> String {
    let (r, t) = (&a.run, &a.totals);
    let mut out = format!(
        "run {}: backend {}, kernel {}, {:.1} s, seed {}, p2plab {}\n\
         {} processes: {} exited ok, {} failed, {} killed, {} running\n\n",
        r.name,
        r.backend,
        r.kernel,
        r.duration_s,
        r.seed,
        r.p2plab_version,
        t.processes,
        t.exited_ok,
        t.failed,
        t.killed,
        t.running
    );
    let width = a
        .groups
        .iter()
        .map(|g| g.group.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "{:width$}  {:>9}  {:>9}  {:>6}  {:>6}  {:>7}  {:>10}  {:>10}",
        "group", "processes", "exited_ok", "failed", "killed", "running", "median_s", "p90_s"
    );
    for g in &a.groups {
        let c = &g.counts;
        let d = g.completion_s.as_ref();
        let _ = writeln!(
            out,
            "{:width$}  {:>9}  {:>9}  {:>6}  {:>6}  {:>7}  {:>10}  {:>10}",
            g.group,
            c.processes,
            c.exited_ok,
            c.failed,
            c.killed,
            c.running,
            figure(d.map(|d| d.p50), 2),
            figure(d.map(|d| d.p90), 2)
        );
    }
    let role_width = a
        .fairness
        .iter()
        .map(|f| f.role.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        out,
        "\nfairness of co-located identical processes (same role and group):\n\
         {:role_width$}  {:width$}  {:>6}  {:>6}  {:>6}  {:>6}  {:>8}  {:>6}",
        "role", "group", "n_done", "jain", "cv", "n_cpu", "cpu_jain", "cpu_cv"
    );
    for f in &a.fairness {
        let (done, cpu) = (f.completion.as_ref(), f.cpu.as_ref());
        let _ = writeln!(
            out,
            "{:role_width$}  {:width$}  {:>6}  {:>6}  {:>6}  {:>6}  {:>8}  {:>6}",
            f.role,
            f.group,
            done.map_or(0, |s| s.n),
            figure(done.and_then(|s| s.jain), 3),
            figure(done.and_then(|s| s.cv), 3),
            cpu.map_or(0, |s| s.n),
            figure(cpu.and_then(|s| s.jain), 3),
            figure(cpu.and_then(|s| s.cv), 3)
        );
    }
    out
}
