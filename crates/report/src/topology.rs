//! The report's view of the topology as the run used it (`run.json`'s
//! `resolved_topology`): the profiles, the groups with their addresses and profiles, and
//! the group-to-group delay matrix as a heatmap.

use crate::page::{esc, escaped_row, head, rate};
use serde::Deserialize;
use std::fmt::Write;

/// Groups up to this many get a heatmap of their delays; beyond, the delays' summary.
const HEATMAP_GROUPS: usize = 30;
/// Groups up to this many get their delay written in each cell of the heatmap.
const LABELLED_GROUPS: usize = 12;
/// Groups up to this many are listed in an open table; beyond, the table is collapsed.
const OPEN_GROUPS: usize = 20;

#[derive(Deserialize)]
struct Resolved {
    nodes: usize,
    #[serde(default)]
    mtu: Option<u32>,
    profiles: Vec<Profile>,
    groups: Vec<Group>,
    #[serde(default)]
    delay_summary_us: Option<[u64; 3]>,
}

#[derive(Deserialize)]
struct Profile {
    name: String,
    up_bps: u64,
    down_bps: u64,
    latency_us: u64,
    loss: f64,
    queue_packets: u32,
}

#[derive(Deserialize)]
struct Group {
    name: String,
    prefix: String,
    nodes: usize,
    profile: String,
    #[serde(default)]
    delay_us: Option<Vec<u64>>,
    #[serde(default)]
    loss: Option<Vec<f64>>,
}

fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms.fract() == 0.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms} ms")
    }
}

fn percent(fraction: f64) -> String {
    format!("{}%", (fraction * 1e4).round() / 1e2)
}

/// The topology section of `report.html`, from `run.json`'s `resolved_topology`; the raw
/// JSON, collapsed, when it is not in the shape this report knows (older results).
pub(crate) fn section(out: &mut String, resolved: &serde_json::Value) {
    if resolved.is_null() {
        return;
    }
    out.push_str("<h2>Topology as the run used it</h2>\n");
    let Ok(t) = Resolved::deserialize(resolved) else {
        let _ = writeln!(
            out,
            "<details><summary>Resolved topology</summary><pre>{}</pre></details>",
            esc(&serde_json::to_string_pretty(resolved).unwrap_or_default())
        );
        return;
    };
    let _ = writeln!(
        out,
        "<p>{} nodes in {} groups{}, as planned before any event changed them.</p>",
        t.nodes,
        t.groups.len(),
        t.mtu
            .map(|m| format!(", packets of {m} bytes"))
            .unwrap_or_default()
    );
    head(
        out,
        &[
            "profile",
            "upload",
            "download",
            "latency (one way)",
            "loss",
            "queue (packets)",
        ],
    );
    for p in &t.profiles {
        escaped_row(
            out,
            "",
            &[
                p.name.clone(),
                rate(p.up_bps),
                rate(p.down_bps),
                ms(p.latency_us),
                percent(p.loss),
                p.queue_packets.to_string(),
            ],
        );
    }
    out.push_str("</table>\n");
    if t.groups.len() > OPEN_GROUPS {
        let _ = write!(
            out,
            "<details><summary>The {} groups</summary>",
            t.groups.len()
        );
    }
    head(out, &["group", "nodes", "prefix", "profile"]);
    for g in &t.groups {
        escaped_row(
            out,
            "",
            &[
                g.name.clone(),
                g.nodes.to_string(),
                g.prefix.clone(),
                g.profile.clone(),
            ],
        );
    }
    out.push_str("</table>\n");
    if t.groups.len() > OPEN_GROUPS {
        out.push_str("</details>\n");
    }
    heatmap(out, &t);
}

/// The group-to-group delays `G(a,b)` as a heatmap (rows: from, columns: to), one shade of
/// blue from white (the smallest) to dark (the largest).
fn heatmap(out: &mut String, t: &Resolved) {
    let n = t.groups.len();
    let rows: Option<Vec<&Vec<u64>>> = t.groups.iter().map(|g| g.delay_us.as_ref()).collect();
    let summary = t.delay_summary_us.map(|[min, median, max]| {
        format!(
            "Group-to-group delays: {} at least, {} median, {} at most.",
            ms(min),
            ms(median),
            ms(max)
        )
    });
    let (Some(rows), true) = (rows, (2..=HEATMAP_GROUPS).contains(&n)) else {
        if let Some(summary) = summary {
            let _ = writeln!(out, "<p>{summary}</p>");
        }
        return;
    };
    let max = rows
        .iter()
        .flat_map(|r| r.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let labelled = n <= LABELLED_GROUPS;
    let cell = if labelled { 56 } else { 600 / n as u32 };
    let margin = 110;
    let size = margin + cell * n as u32;
    let _ = write!(
        out,
        "<figure id=\"chart-delays\"><svg id=\"chart-delays-svg\" width=\"{size}\" height=\"{size}\" \
         viewBox=\"0 0 {size} {size}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let center = |i: usize| margin + cell * i as u32 + cell / 2;
    for (i, g) in t.groups.iter().enumerate() {
        let name = esc(&g.name);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{name}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"start\" transform=\"rotate(-60 {} {})\">{name}</text>",
            margin - 6,
            center(i),
            center(i),
            margin - 6,
            center(i),
            margin - 6,
        );
    }
    for (a, row) in rows.iter().enumerate() {
        for (b, &delay) in row.iter().enumerate() {
            let share = if max > 0 {
                delay as f64 / max as f64
            } else {
                0.0
            };
            // From white to Okabe and Ito's blue (0, 114, 178).
            let mix = |v: f64| (255.0 - (255.0 - v) * share).round() as u8;
            let loss = t.groups[a]
                .loss
                .as_ref()
                .and_then(|l| l.get(b))
                .filter(|&&l| l > 0.0)
                .map(|&l| format!(", loss {}", percent(l)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{cell}\" height=\"{cell}\" fill=\"#{:02x}{:02x}{:02x}\" stroke=\"#fff\">\
                 <title>{} to {}: {}{loss}</title></rect>",
                margin + cell * b as u32,
                margin + cell * a as u32,
                mix(0.0),
                mix(114.0),
                mix(178.0),
                esc(&t.groups[a].name),
                esc(&t.groups[b].name),
                ms(delay),
            );
            if labelled {
                let _ = write!(
                    out,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"{}\">{}</text>",
                    center(b),
                    center(a),
                    if share > 0.5 { "#fff" } else { "#222" },
                    ms(delay)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "</svg><figcaption>Group-to-group delay G(from, to), one way: rows are the sending \
         group, columns the receiving one; white is {}, the darkest blue {}.{}</figcaption></figure>",
        ms(0),
        ms(max),
        summary.map(|s| format!(" {s}")).unwrap_or_default()
    );
}
