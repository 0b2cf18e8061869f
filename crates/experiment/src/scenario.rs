//! ProtoPeer-style scenario files: one event per line, `<nodes> <time> <action> [k=v ...]`.
//! `<nodes>` is a node selector (`*`, a group, a node, `group[A-B]` with 1-based positions
//! in the group, comma-separated lists of these) in which ProtoPeer's 0-based indices into
//! the topology's nodes, in plan order, also work: a term of digits `N` or `A-B` is always
//! an index or a range of indices, never a name. `<time>` is a duration (`30s`, `250ms`)
//! or bare seconds; `#` starts a comment. Group-pair changes
//! (`set_delay from=a to=b delay=50ms`) take `*` as nodes.

use crate::actions;
use crate::model::Event;
use std::path::Path;
use topology::change::{takes_nodes, Part, Written};
use topology::units::parse_time_us;
use topology::{Diagnostic, LinkModel, Plan};

/// The selector terms of a nodes column: its 0-based indices and index ranges become the
/// names of those nodes, every other term stays as written.
fn terms(model: &LinkModel, text: &str) -> Result<Vec<String>, String> {
    let n = model.nodes.len();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut out = Vec::new();
    for term in text.split(',') {
        let (a, b) = term.split_once('-').unwrap_or((term, term));
        if !(digits(a) && digits(b)) {
            out.push(term.to_string());
            continue;
        }
        match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) if a <= b && b < n => {
                out.extend(model.nodes[a..=b].iter().map(|v| v.name.clone()))
            }
            _ => {
                return Err(format!(
                    "nodes `{term}` are not `*`, `N` or `A-B` with 0 <= A <= B < {n}"
                ))
            }
        }
    }
    Ok(out)
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
        let names = terms(&plan.link, who)
            .map_err(|m| error(m, "use `*`, `N` or `A-B` (0-based node indices)"));
        let at_us = time_us(when).map_err(|m| error(m, "write a time such as `30s` or `1.5`"));
        // (the action is checked even when the nodes are not: on no nodes, then)
        let names: Vec<&str> = match &names {
            Ok(names) => names.iter().map(String::as_str).collect(),
            Err(()) => Vec::new(),
        };
        // a group-pair change ignores its nodes column, which must still name nodes
        if !takes_nodes(action) {
            if let Err(errs) = topology::select::resolve(&plan.link, &names) {
                for (_, message, fix) in errs {
                    error(message, &fix);
                }
            }
        }
        let written = Written {
            action,
            nodes: takes_nodes(action).then_some(&names[..]),
            params: &params,
        };
        match actions::build(plan, &written) {
            Ok(action) => {
                if let Ok(at_us) = at_us {
                    events.push(Event { at_us, action });
                }
            }
            Err(errs) => {
                for e in errs {
                    let message = match e.part {
                        Part::Param(key) => format!("{key}: {}", e.message),
                        _ => e.message,
                    };
                    error(message, &e.fix);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}
