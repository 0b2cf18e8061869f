//! `report.html`: one self-contained page (inline CSS and SVG, no JavaScript) with the
//! summary, the command line that reproduces the run, the topology as the run used it,
//! the hosts of a run over several machines, the failures grouped by reason, the charts,
//! the fairness table, the host's load and the start lag, and the processes with links to
//! their logs. It stays small at any size: beyond [`TIMELINE_BARS`] processes the
//! timeline is a processes-over-time chart per group, beyond [`TABLE_ROWS`] the table of
//! every process is left to `processes.csv`, and long tables are collapsed.

use crate::analysis::{completions, expected_to_complete, group_by, lags, Analysis};
use crate::charts::{self, CdfGroup, Metric, TIMELINE_BARS};
use crate::page::{bytes, esc, escaped_row, figure, head, open, row};
use crate::text::{fairness_row, figure as number, group_row, host_lines, host_row, HOST_COLUMNS};
use crate::Error;
use results::{Process, Results, Status};
use std::collections::HashMap;
use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

/// Processes up to this many are listed on the page; beyond, `processes.csv` has them.
const TABLE_ROWS: usize = 200;
/// Tables longer than this are collapsed.
const OPEN_ROWS: usize = 24;
/// Nodes of one kind of failure linked to their logs; the others are counted.
const FAILURE_LINKS: usize = 8;
/// The slowest completions listed when the table of every process is not on the page.
const SLOWEST: usize = 20;

/// The run's start as an ISO 8601 UTC time.
fn iso(unix_s: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs_f64(unix_s.max(0.0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A signal's name (`SIGTERM`), or its number when it has no usual name.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

/// Why a failed process failed, in words: the key failures are grouped by.
fn failure_reason(p: &Process) -> String {
    match (p.status, p.exit_code, p.signal) {
        (Status::FailedToStart, ..) => "did not start".into(),
        (Status::Killed, _, Some(s)) => {
            format!("killed by {} (not sent by p2plab)", signal_name(s))
        }
        (Status::Killed, ..) => "killed by a signal p2plab did not send".into(),
        (_, Some(code), _) => format!("exited with code {code}"),
        _ => "exited without an exit code".into(),
    }
}

/// A node's two log links.
fn logs(node: &str) -> String {
    let node = esc(node);
    format!("<a href=\"logs/{node}.out\">out</a> <a href=\"logs/{node}.err\">err</a>")
}

/// The unit of metric `name`, when an experiment role's regex for it has a `%` right
/// after its capture group.
fn metric_unit(experiment: &serde_json::Value, name: &str) -> Option<&'static str> {
    let roles = experiment.get("roles")?.as_array()?;
    let percent = roles
        .iter()
        .filter_map(|r| r.get("metrics")?.as_array())
        .flatten()
        .filter(|m| m.get("name").and_then(|n| n.as_str()) == Some(name))
        .filter_map(|m| m.get("regex")?.as_str())
        .any(|regex| regex.contains(")%") || regex.contains(")\\%"));
    percent.then_some("%")
}

pub(crate) fn render(results: &Results, a: &Analysis) -> Result<String, Error> {
    let r = &a.run;
    let mut out = open(&format!("p2plab report: {}", r.name));
    let _ = writeln!(
        out,
        "<p class=\"meta\">started {started}, duration {duration:.1} s, backend <b>{backend}</b>, \
         kernel <b>{kernel}</b>, topology {topology}, seed {seed}, p2plab {version}; \
         stopped: <b>{stopped}</b></p>",
        started = iso(r.started_unix),
        duration = r.duration_s,
        backend = r.backend,
        kernel = esc(&r.kernel),
        topology = esc(&r.topology),
        seed = r.seed,
        version = esc(&r.p2plab_version),
        stopped = esc(&r.stopped),
    );
    if !r.command_line.is_empty() {
        let _ = writeln!(
            out,
            "<p>Reproduce this run (from the directory it was run in): <code>{}</code></p>",
            esc(&shell_words::join(&r.command_line))
        );
    }
    if !r.experiment.is_null() {
        let _ = writeln!(
            out,
            "<details><summary>Experiment inputs</summary><pre>{}</pre></details>",
            esc(&serde_json::to_string_pretty(&r.experiment).unwrap_or_default())
        );
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
         Failed: did not start, exited with a non-zero code, or was killed by a signal p2plab \
         did not send. Stopped: ended on purpose by p2plab (the stop rule, an event, a stop \
         signal to the run), not a failure.</p>\n",
    );
    for line in host_lines(a) {
        let _ = writeln!(out, "<p>{}</p>", esc(&line));
    }

    crate::topology::section(&mut out, &r.resolved_topology);
    hosts(&mut out, a);
    failures(&mut out, &results.processes);
    completion(&mut out, results)?;
    fairness(&mut out, a);

    if results.processes.len() <= TIMELINE_BARS {
        out.push_str("<h2>Process timeline</h2>\n");
        if results.processes.is_empty() {
            out.push_str("<p>No processes were recorded.</p>\n");
        } else {
            figure(
                &mut out,
                "chart-timeline",
                "process timeline",
                charts::timeline(&results.processes, r.duration_s),
            )?;
        }
    } else {
        out.push_str(
            "<h2>Processes over time</h2>\n<p>Per group: how many processes had started, were \
             running, had completed and had failed at each moment of the run (seconds since it \
             started).</p>\n",
        );
        let groups = group_by(&results.processes, |p| p.group.clone());
        figure(
            &mut out,
            "chart-processes",
            "processes over time",
            charts::processes_over_time(&groups, r.duration_s),
        )?;
    }

    load(&mut out, results)?;
    out.push_str(
        "<h2>Throughput</h2>\n<p>Throughput over time is not recorded: a run records each \
         process's bytes sent and received once, when it ends (the processes' table and \
         <a href=\"processes.csv\">processes.csv</a>).</p>\n",
    );
    metrics(&mut out, results)?;
    processes(&mut out, &results.processes);
    out.push_str("</body></html>\n");
    Ok(out)
}

/// The hosts of a run over several machines.
fn hosts(out: &mut String, a: &Analysis) {
    if a.hosts.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Hosts</h2>\n<p>The machines of the run. Nodes: how many were placed on the \
         host (its folding ratio); Jain's index over its processes' completion times; \
         clock offset: the host's clock minus the controller's, which the schedule \
         corrects for.</p>\n",
    );
    let mut columns = HOST_COLUMNS.map(|c| c.1).to_vec();
    columns.push("lost");
    head(out, &columns);
    for h in &a.hosts {
        let mut cells = host_row(h);
        cells.push(h.failure.clone().unwrap_or_default());
        escaped_row(out, if h.failure.is_some() { "failed" } else { "" }, &cells);
    }
    out.push_str("</table>\n");
}

/// The failed processes grouped by reason (exit code, signal, not started), each kind
/// with its count, groups and the logs of its first nodes.
fn failures(out: &mut String, processes: &[Process]) {
    let failed: Vec<&Process> = processes.iter().filter(|p| p.failed()).collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h2 class=\"failed\">Failures</h2>\n<p>{} of {} processes failed, by reason:</p>",
        failed.len(),
        processes.len()
    );
    let mut kinds = group_by(failed, failure_reason);
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1.len()));
    head(out, &["reason", "processes", "groups", "logs"]);
    for (reason, members) in kinds {
        let groups: Vec<String> = group_by(members.iter().copied(), |p| p.group.clone())
            .into_iter()
            .map(|(g, m)| format!("{g} ({})", m.len()))
            .collect();
        let mut links: Vec<String> = members
            .iter()
            .take(FAILURE_LINKS)
            .map(|p| format!("{} ({})", esc(&p.node), logs(&p.node)))
            .collect();
        if members.len() > FAILURE_LINKS {
            links.push(format!(
                "and {} more in <a href=\"processes.csv\">processes.csv</a>",
                members.len() - FAILURE_LINKS
            ));
        }
        row(
            out,
            "failed",
            &[
                esc(&reason),
                members.len().to_string(),
                esc(&groups.join(", ")),
                links.join(", "),
            ],
        );
    }
    out.push_str("</table>\n");
}

/// The completion-time CDF per group, each over the group's processes of the roles that
/// complete.
fn completion(out: &mut String, results: &Results) -> Result<(), Error> {
    out.push_str("<h2>Completion times</h2>\n");
    let by_group = group_by(expected_to_complete(&results.processes), |p| {
        p.group.clone()
    });
    let lines: Vec<CdfGroup<'_>> = by_group
        .iter()
        .map(|(group, members)| CdfGroup {
            group,
            times: completions(members),
            total: members.len(),
        })
        .collect();
    if lines.iter().all(|l| l.times.is_empty()) {
        out.push_str("<p>No process exited with code 0.</p>\n");
        return Ok(());
    }
    out.push_str(
        "<p>Each group's curve is over its processes of the roles that end by themselves \
         (roles p2plab stops, such as trackers and seeds, are left out): it ends below 1 by \
         the share that failed, was stopped before completing or still ran.</p>\n",
    );
    figure(
        out,
        "chart-cdf",
        "completion time CDF",
        charts::completion_cdf(&lines),
    )
}

/// The fairness table, collapsed when long.
fn fairness(out: &mut String, a: &Analysis) {
    out.push_str("<h2>Fairness of co-located identical processes</h2>\n\
                  <p>Processes with the same role and group. Jain's index is 1 when all are equal \
                  and 1/n when one takes everything; CV is the standard deviation over the mean.</p>\n");
    let long = a.fairness.len() > OPEN_ROWS;
    if long {
        let _ = write!(
            out,
            "<details><summary>{} roles and groups</summary>",
            a.fairness.len()
        );
    }
    head(
        out,
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
        escaped_row(out, "", &fairness_row(f));
    }
    out.push_str("</table>\n");
    if long {
        out.push_str("</details>\n");
    }
}

/// The host's CPU load and the start lag.
fn load(out: &mut String, results: &Results) -> Result<(), Error> {
    let lags = lags(&results.processes);
    if results.run.host_cpu.is_some() || !lags.is_empty() {
        out.push_str(
            "<h2>Host load and start lag</h2>\n<p>Start lag: how much later than planned a \
             process started. A busy host starts processes late and slows them down: lags \
             that grow and CPUs near saturation mean the machine hosts too many peers for \
             its figures to hold.</p>\n",
        );
    }
    if let Some(cpu) = &results.run.host_cpu {
        figure(
            out,
            "chart-cpu",
            "host CPU",
            charts::host_cpu(&cpu.samples, cpu.cpus),
        )?;
    }
    if !lags.is_empty() {
        figure(out, "chart-lag", "start lag", charts::start_lag(&lags))?;
    }
    Ok(())
}

/// One chart per metric.
fn metrics(out: &mut String, results: &Results) -> Result<(), Error> {
    out.push_str("<h2>Metrics</h2>\n");
    if results.metrics.is_empty() {
        out.push_str("<p>No metric samples were recorded.</p>\n");
        return Ok(());
    }
    let ends: HashMap<&str, Option<f64>> = results
        .processes
        .iter()
        .map(|p| (p.node.as_str(), p.end_s))
        .collect();
    for (k, (name, samples)) in group_by(&results.metrics, |m| m.name.clone())
        .into_iter()
        .enumerate()
    {
        let metric = Metric {
            name: &name,
            unit: metric_unit(&results.run.experiment, &name),
            samples: &samples,
            ends: &ends,
        };
        figure(
            out,
            &format!("chart-metric-{k}"),
            &format!("metric {name}"),
            charts::metric(&metric),
        )?;
    }
    Ok(())
}

/// Every process in a collapsed table, or beyond [`TABLE_ROWS`] the slowest completions
/// and a link to `processes.csv`.
fn processes(out: &mut String, processes: &[Process]) {
    if processes.len() <= TABLE_ROWS {
        let _ = writeln!(
            out,
            "<h2>Processes</h2>\n<details><summary>All {} processes</summary>",
            processes.len()
        );
        process_table(out, &processes.iter().collect::<Vec<_>>());
        out.push_str("</details>\n");
        return;
    }
    let mut slowest: Vec<&Process> = processes
        .iter()
        .filter(|p| p.completion_s().is_some())
        .collect();
    slowest.sort_by(|a, b| {
        let time = |p: &Process| p.completion_s().unwrap_or(0.0);
        time(b).total_cmp(&time(a))
    });
    slowest.truncate(SLOWEST);
    let _ = writeln!(
        out,
        "<h2>Processes</h2>\n<p>The {} processes are in <a href=\"processes.csv\">processes.csv</a>, \
         too many for this page; the failed ones are grouped above. The {} slowest completions:</p>",
        processes.len(),
        slowest.len()
    );
    process_table(out, &slowest);
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
        "peak RSS",
        "sent",
        "received",
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
            Status::Stopped => "stopped by p2plab",
            Status::Killed => "killed (not by p2plab)",
            Status::FailedToStart => "did not start",
            Status::Running => "running",
        };
        let mut cells = vec![
            esc(&p.node),
            esc(&p.role),
            esc(&p.group),
            esc(&p.ip),
            status.to_string(),
            opt(p.exit_code.map(|c| c.to_string())),
            opt(p.signal.map(signal_name)),
            number(p.planned_s, 2),
            format!("{:.2}", p.start_s),
            number(p.end_s, 2),
            number(p.completion_s(), 2),
            number(p.cpu_s(), 2),
            opt(p.peak_rss_kb.map(|k| bytes(k * 1024))),
            opt(p.bytes_sent.map(bytes)),
            opt(p.bytes_received.map(bytes)),
            logs(&p.node),
        ];
        if hosts {
            cells.insert(1, p.host.as_deref().map_or_else(|| "-".into(), esc));
        }
        row(out, if p.failed() { "failed" } else { "" }, &cells);
    }
    out.push_str("</table>\n");
}
