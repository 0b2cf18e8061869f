//! ProtoPeer-style scenario files: one event per line, `<nodes> <time> <action> [k=v ...]`.
//! `<nodes>` is `*` (every node), `N`, or `A-B` (0-based indices into the topology's nodes,
//! in plan order); `<time>` is a duration (`30s`, `250ms`) or bare seconds; `#` starts a
//! comment. Group-pair changes (`set_delay from=a to=b delay=50ms`) take `*` as nodes.

use crate::actions;
use crate::model::Event;
use std::path::Path;
use topology::units::parse_time_us;
use topology::{Diagnostic, Plan};

fn nodes(plan: &Plan, text: &str) -> Result<Vec<usize>, String> {
    let n = plan.link.nodes.len();
    if text == "*" {
        return Ok((0..n).collect());
    }
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    match (a.parse::<usize>(), b.parse::<usize>()) {
        (Ok(a), Ok(b)) if a <= b && b < n => Ok((a..=b).collect()),
        _ => Err(format!(
            "nodes `{text}` are not `*`, `N` or `A-B` with 0 <= A <= B < {n}"
        )),
    }
}

fn time_us(text: &str) -> Result<u64, String> {
    match text.parse::<f64>() {
        Ok(s) if s < 0.0 => Err(format!("time `{text}` is negative")),
        Ok(s) if s.is_finite() => Ok((s * 1e6).round() as u64),
        Ok(_) => Err(format!("time `{text}` is not a finite number")),
        Err(_) => parse_time_us(text).map_err(|(m, _)| m),
    }
}

/// Reads the scenario `text` (the contents of `file`).
pub fn parse(plan: &Plan, file: &Path, text: &str) -> Result<Vec<Event>, Vec<Diagnostic>> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut error = |message: String, fix: &str| {
            errors.push(Diagnostic {
                file: file.to_path_buf(),
                line: i + 1,
                column: line.find(content).unwrap_or(0) + 1,
                path: String::new(),
                message,
                fix: fix.to_string(),
            })
        };
        let words: Vec<&str> = content.split_whitespace().collect();
        let [who, when, action, params @ ..] = words.as_slice() else {
            error(
                format!("`{content}` is not `<nodes> <time> <action>`"),
                "e.g. `0-9 30s pause`",
            );
            continue;
        };
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        let nodes =
            nodes(plan, who).map_err(|m| error(m, "use `*`, `N` or `A-B` (0-based node indices)"));
        let at_us = time_us(when).map_err(|m| error(m, "write a time such as `30s` or `1.5`"));
        let action = actions::build(plan, action, &params).map_err(|errs| {
            for (key, message, fix) in errs {
                let message = if key.is_empty() {
                    message
                } else {
                    format!("{key}: {message}")
                };
                error(message, &fix);
            }
        });
        if let (Ok(nodes), Ok(at_us), Ok(action)) = (nodes, at_us, action) {
            let nodes = if actions::takes_nodes(&action) {
                nodes
            } else {
                Vec::new()
            };
            events.push(Event {
                at_us,
                nodes,
                action,
            });
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}
