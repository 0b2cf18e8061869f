//! The terminal summary: run line, totals, the start lag and the host's load, a table per
//! group, a table per host (of a run over several machines) and the fairness table.

use crate::analysis::{Analysis, Counts, Fairness, HostSummary, SATURATED};
use crate::stats::Distribution;
use std::fmt::Write;

/// A figure with `digits` decimals, or `-` when undefined.
pub(crate) fn figure(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

pub(crate) fn render(a: &Analysis) -> String {
    let (r, t) = (&a.run, &a.totals);
    let mut out = format!(
        "run {}: backend {}, kernel {}, {:.1} s, seed {}, p2plab {}\n\
         stopped: {}\n\
         {} processes: {} exited ok, {} failed, {} stopped, {} running\n",
        r.name,
        r.backend,
        r.kernel,
        r.duration_s,
        r.seed,
        r.p2plab_version,
        r.stopped,
        t.processes,
        t.exited_ok,
        t.failed,
        t.stopped,
        t.running
    );
    for line in host_lines(a) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let mut groups: Vec<Vec<String>> = a
        .groups
        .iter()
        .map(|g| group_row(&g.group, &g.counts, g.completion_s.as_ref()))
        .collect();
    groups.push(group_row("all", &a.totals, a.completion_s.as_ref()));
    table(
        &mut out,
        &[
            "group",
            "processes",
            "exited_ok",
            "failed",
            "stopped",
            "running",
            "median_s",
            "p90_s",
        ],
        &groups,
        1,
    );
    if !a.hosts.is_empty() {
        out.push_str("\nper host (nodes: placed on it, its folding ratio; jain: of its completion times; offset: its clock minus the controller's):\n");
        let rows: Vec<Vec<String>> = a.hosts.iter().map(host_row).collect();
        table(&mut out, &HOST_COLUMNS.map(|c| c.0), &rows, 2);
        for h in &a.hosts {
            if let Some(failure) = &h.failure {
                let _ = writeln!(out, "host {} was lost: {failure}", h.host);
            }
        }
    }
    out.push_str("\nfairness of co-located identical processes (same role and group):\n");
    let fairness: Vec<Vec<String>> = a.fairness.iter().map(fairness_row).collect();
    table(
        &mut out,
        &[
            "role",
            "group",
            "processes",
            "n_done",
            "jain",
            "cv",
            "n_cpu",
            "cpu_jain",
            "cpu_cv",
        ],
        &fairness,
        2,
    );
    out
}

/// What says whether the host kept up: the start lag (median, p99 and max) and how busy
/// its CPUs were (mean, max, time saturated), each when recorded.
pub(crate) fn host_lines(a: &Analysis) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(l) = &a.start_lag_s {
        lines.push(format!(
            "start lag: median {:.3} s, p99 {:.3} s, max {:.3} s over {} scheduled starts",
            l.p50, l.p99, l.max, l.n
        ));
    }
    if let Some(c) = &a.host_cpu {
        lines.push(format!(
            "host CPU: {:.0}% busy on average, {:.0}% at most, {:.1} s at {:.0}% or more ({} CPUs)",
            c.mean_busy * 100.0,
            c.max_busy * 100.0,
            c.saturated_s,
            SATURATED * 100.0,
            c.cpus
        ));
    }
    lines
}

/// A summary row: name, the counts, median and p90 completion time.
pub(crate) fn group_row(name: &str, c: &Counts, d: Option<&Distribution>) -> Vec<String> {
    let mut cells = vec![name.to_string()];
    cells.extend([c.processes, c.exited_ok, c.failed, c.stopped, c.running].map(|n| n.to_string()));
    cells.extend([figure(d.map(|d| d.p50), 2), figure(d.map(|d| d.p90), 2)]);
    cells
}

/// The columns of the per-host table: in the text, and in the HTML page.
pub(crate) const HOST_COLUMNS: [(&str, &str); 11] = [
    ("host", "host"),
    ("address", "address"),
    ("nodes", "nodes (folding ratio)"),
    ("processes", "processes"),
    ("exited_ok", "exited ok"),
    ("failed", "failed"),
    ("cpu_mean", "CPU busy (mean)"),
    ("cpu_max", "CPU busy (max)"),
    ("median_s", "median completion (s)"),
    ("jain", "Jain (completion)"),
    ("offset_ms", "clock offset (ms)"),
];

/// A per-host row, in the order of [`HOST_COLUMNS`]: `-` where unknown.
pub(crate) fn host_row(h: &HostSummary) -> Vec<String> {
    let percent = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{:.0}%", x * 100.0));
    let c = &h.counts;
    vec![
        h.host.clone(),
        h.address.clone().unwrap_or_else(|| "-".into()),
        h.nodes.map_or_else(|| "-".into(), |n| n.to_string()),
        c.processes.to_string(),
        c.exited_ok.to_string(),
        c.failed.to_string(),
        percent(h.cpu.as_ref().map(|c| c.mean_busy)),
        percent(h.cpu.as_ref().map(|c| c.max_busy)),
        figure(h.completion_s.as_ref().map(|d| d.p50), 2),
        figure(h.fairness.as_ref().and_then(|s| s.jain), 3),
        figure(h.clock_offset_ms, 1),
    ]
}

/// A fairness row: role, group, processes, then n, Jain's index and CV of the completion
/// times and of the CPU times.
pub(crate) fn fairness_row(f: &Fairness) -> Vec<String> {
    let mut cells = vec![f.role.clone(), f.group.clone(), f.processes.to_string()];
    for spread in [f.completion.as_ref(), f.cpu.as_ref()] {
        cells.extend([
            spread.map_or(0, |s| s.n).to_string(),
            figure(spread.and_then(|s| s.jain), 3),
            figure(spread.and_then(|s| s.cv), 3),
        ]);
    }
    cells
}

/// Appends a table: each column as wide as its widest cell, the first `left` columns
/// aligned left, the others right.
pub(crate) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], left: usize) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                if i < left {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
}
