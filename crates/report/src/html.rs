//! `report.html`: one self-contained page (inline CSS and SVG, no JavaScript) with the
//! summary, the hosts of a run over several machines, the charts, the fairness table, the
//! host's load and the start lag, and the processes (with their host, when they have one)
//! with links to their logs.

use crate::analysis::{completions, group_by, lags, Analysis};
use crate::charts;
use crate::text::{fairness_row, figure, group_row, host_lines, host_row, HOST_COLUMNS};
use crate::Error;
use results::{Process, Results, Status};
use std::fmt::Write;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em auto;max-width:1000px;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}tr.total{font-weight:bold}.failed{color:#d62728}\
svg{max-width:100%;height:auto}p.meta{color:#555}";

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table row of already-escaped cells.
fn row(out: &mut String, class: &str, cells: &[String]) {
    if class.is_empty() {
        out.push_str("<tr>");
    } else {
        let _ = write!(out, "<tr class=\"{class}\">");
    }
    for c in cells {
        let _ = write!(out, "<td>{c}</td>");
    }
    out.push_str("</tr>\n");
}

/// A table row of cells still to be escaped.
fn escaped_row(out: &mut String, class: &str, cells: &[String]) {
    row(
        out,
        class,
        &cells.iter().map(|c| esc(c)).collect::<Vec<_>>(),
    );
}

fn head(out: &mut String, cells: &[&str]) {
    out.push_str("<table><tr>");
    for c in cells {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr>\n");
}

fn chart(out: &mut String, name: &str, svg: Result<String, String>) -> Result<(), Error> {
    let svg = svg.map_err(|message| Error::Draw {
        chart: name.to_string(),
        message,
    })?;
    let _ = writeln!(out, "<figure>{svg}</figure>");
    Ok(())
}

pub(crate) fn render(results: &Results, a: &Analysis) -> Result<String, Error> {
    let r = &a.run;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>p2plab report: {name}</title><style>{STYLE}</style></head><body>\n\
         <h1>p2plab report: {name}</h1>\n<p class=\"meta\">backend <b>{backend}</b>, kernel \
         <b>{kernel}</b>, duration {duration:.1} s, topology {topology}, seed {seed}, p2plab \
         {version}, started at Unix time {started:.0}; stopped: <b>{stopped}</b></p>\n",
        name = esc(&r.name),
        backend = r.backend,
        kernel = esc(&r.kernel),
        duration = r.duration_s,
        topology = esc(&r.topology),
        seed = r.seed,
        version = esc(&r.p2plab_version),
        started = r.started_unix,
        stopped = esc(&r.stopped),
    );
    if !r.command_line.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"meta\">command line: <code>{}</code></p>",
            esc(&r.command_line.join(" "))
        );
    }
    for (what, value) in [
        ("Experiment inputs", &r.experiment),
        ("Resolved topology", &r.resolved_topology),
    ] {
        if !value.is_null() {
            let _ = writeln!(
                out,
                "<details><summary>{what}</summary><pre>{}</pre></details>",
                esc(&serde_json::to_string_pretty(value).unwrap_or_default())
            );
        }
    }

    out.push_str("<h2>Summary</h2>\n");
    head(
        &mut out,
        &[
            "group",
            "processes",
            "exited ok",
            "failed",
            "stopped",
            "running",
            "median completion (s)",
            "p90 completion (s)",
        ],
    );
    for g in &a.groups {
        escaped_row(
            &mut out,
            "",
            &group_row(&g.group, &g.counts, g.completion_s.as_ref()),
        );
    }
    let total = group_row("all", &a.totals, a.completion_s.as_ref());
    escaped_row(&mut out, "total", &total);
    out.push_str(
        "</table>\n<p>Completion time: end minus start of processes that exited with code 0. \
                  Failed: did not start, or exited with a non-zero code.</p>\n",
    );
    for line in host_lines(a) {
        let _ = writeln!(out, "<p>{}</p>", esc(&line));
    }
    if !a.hosts.is_empty() {
        out.push_str(
            "<h2>Hosts</h2>\n<p>The machines of the run. Nodes: how many were placed on the \
             host (its folding ratio); Jain's index over its processes' completion times; \
             clock offset: the host's clock minus the controller's, which the schedule \
             corrects for.</p>\n",
        );
        let mut columns = HOST_COLUMNS.map(|c| c.1).to_vec();
        columns.push("lost");
        head(&mut out, &columns);
        for h in &a.hosts {
            let mut cells = host_row(h);
            cells.push(h.failure.clone().unwrap_or_default());
            escaped_row(
                &mut out,
                if h.failure.is_some() { "failed" } else { "" },
                &cells,
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Completion times</h2>\n");
    let by_group: Vec<(String, Vec<f64>)> = group_by(&results.processes, |p| p.group.clone())
        .into_iter()
        .map(|(g, members)| (g, completions(&members)))
        .collect();
    if by_group.iter().all(|g| g.1.is_empty()) {
        out.push_str("<p>No process exited with code 0.</p>\n");
    } else {
        chart(
            &mut out,
            "completion time CDF",
            charts::completion_cdf(&by_group),
        )?;
    }

    out.push_str("<h2>Fairness of co-located identical processes</h2>\n\
                  <p>Processes with the same role and group. Jain's index is 1 when all are equal \
                  and 1/n when one takes everything; CV is the standard deviation over the mean.</p>\n");
    head(
        &mut out,
        &[
            "role",
            "group",
            "processes",
            "completed",
            "Jain (completion)",
            "CV (completion)",
            "with CPU time",
            "Jain (CPU)",
            "CV (CPU)",
        ],
    );
    for f in &a.fairness {
        escaped_row(&mut out, "", &fairness_row(f));
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Process timeline</h2>\n");
    if results.processes.is_empty() {
        out.push_str("<p>No processes were recorded.</p>\n");
    } else {
        chart(
            &mut out,
            "process timeline",
            charts::timeline(&results.processes, r.duration_s),
        )?;
    }

    let lags = lags(&results.processes);
    if r.host_cpu.is_some() || !lags.is_empty() {
        out.push_str(
            "<h2>Host load and start lag</h2>\n<p>Start lag: how much later than planned a \
             process started. A busy host starts processes late and slows them down: lags \
             that grow and CPUs near saturation mean the machine hosts too many peers for \
             its figures to hold.</p>\n",
        );
    }
    if let Some(cpu) = &r.host_cpu {
        chart(
            &mut out,
            "host CPU",
            charts::host_cpu(&cpu.samples, cpu.cpus),
        )?;
    }
    if !lags.is_empty() {
        chart(&mut out, "start lag", charts::start_lag(&lags))?;
    }

    out.push_str("<h2>Metrics</h2>\n");
    if results.metrics.is_empty() {
        out.push_str("<p>No metric samples were recorded.</p>\n");
    }
    for (name, samples) in group_by(&results.metrics, |m| m.name.clone()) {
        chart(
            &mut out,
            &format!("metric {name}"),
            charts::metric(&name, &samples),
        )?;
    }

    let failed: Vec<&Process> = results.processes.iter().filter(|p| p.failed()).collect();
    if !failed.is_empty() {
        out.push_str("<h2 class=\"failed\">Failed processes</h2>\n");
        process_table(&mut out, &failed);
    }
    let _ = writeln!(
        out,
        "<details><summary>All {} processes</summary>",
        results.processes.len()
    );
    process_table(&mut out, &results.processes.iter().collect::<Vec<_>>());
    out.push_str("</details>\n</body></html>\n");
    Ok(out)
}

/// A table of `processes`, with a column for their host when one of them has one.
fn process_table(out: &mut String, processes: &[&Process]) {
    let hosts = processes.iter().any(|p| p.host.is_some());
    let mut columns = vec![
        "node",
        "role",
        "group",
        "ip",
        "status",
        "exit code",
        "signal",
        "planned (s)",
        "start (s)",
        "end (s)",
        "completion (s)",
        "CPU (s)",
        "peak RSS (kB)",
        "sent (B)",
        "received (B)",
        "logs",
    ];
    if hosts {
        columns.insert(1, "host");
    }
    head(out, &columns);
    let opt = |x: Option<String>| x.unwrap_or_else(|| "-".into());
    for p in processes {
        let status = match p.status {
            Status::Exited => "exited",
            Status::Stopped => "stopped",
            Status::Killed => "killed",
            Status::FailedToStart => "failed to start",
            Status::Running => "running",
        };
        let node = esc(&p.node);
        let mut cells = vec![
            node.clone(),
            esc(&p.role),
            esc(&p.group),
            esc(&p.ip),
            status.to_string(),
            opt(p.exit_code.map(|c| c.to_string())),
            opt(p.signal.map(|s| s.to_string())),
            figure(p.planned_s, 2),
            format!("{:.2}", p.start_s),
            figure(p.end_s, 2),
            figure(p.completion_s(), 2),
            figure(p.cpu_s(), 2),
            opt(p.peak_rss_kb.map(|k| k.to_string())),
            opt(p.bytes_sent.map(|b| b.to_string())),
            opt(p.bytes_received.map(|b| b.to_string())),
            format!("<a href=\"logs/{node}.out\">out</a> <a href=\"logs/{node}.err\">err</a>"),
        ];
        if hosts {
            cells.insert(1, p.host.as_deref().map_or_else(|| "-".into(), esc));
        }
        row(out, if p.failed() { "failed" } else { "" }, &cells);
    }
    out.push_str("</table>\n");
}
