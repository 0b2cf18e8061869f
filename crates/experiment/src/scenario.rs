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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, ProcessAction};
    use topology::NetChange;

    /// Groups a (nodes 0..3: a-1, a-2, a-3) and b (3..5: b-1, b-2).
    fn plan() -> Plan {
        let src = "profiles: {p: {up: 1mbit, down: 1mbit}}\ndefaults: {profile: p}\ngroups:\n  - {name: a, nodes: 3}\n  - {name: b, nodes: 2}\n";
        topology::parse(Path::new("t.yaml"), src).unwrap()
    }

    /// The nodes each line's event pauses.
    fn paused(lines: &str) -> Vec<Vec<usize>> {
        parse(&plan(), Path::new("s.txt"), lines)
            .unwrap()
            .into_iter()
            .map(|e| match e.action {
                Action::Process(ProcessAction::Pause, nodes) => nodes,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// `line:column: message; fix` of each problem of `lines`.
    fn problems(lines: &str) -> Vec<String> {
        parse(&plan(), Path::new("s.txt"), lines)
            .unwrap_err()
            .into_iter()
            .map(|d| format!("{}:{}: {}; {}", d.line, d.column, d.message, d.fix))
            .collect()
    }

    #[test]
    fn indices_stay_zero_based_indices() {
        assert_eq!(
            paused("* 1 pause\n4 1 pause\n1-3 1 pause\n0,4 1 pause\n"),
            [vec![0, 1, 2, 3, 4], vec![4], vec![1, 2, 3], vec![0, 4]]
        );
    }

    #[test]
    fn names_groups_ranges_and_lists_are_selectors() {
        assert_eq!(
            paused("b-2 1 pause\nb 1 pause\na[2-3] 1 pause\nb-1,a[1],0 1 pause\n3,b 1 pause\n"),
            [vec![4], vec![3, 4], vec![1, 2], vec![3, 0], vec![3, 4]]
        );
        let events = parse(&plan(), Path::new("s.txt"), "a[3],b-2 2s cut\n").unwrap();
        assert_eq!(events[0].at_us, 2_000_000);
        assert_eq!(events[0].action, Action::Net(NetChange::Cut(vec![2, 4])));
    }

    #[test]
    fn bad_nodes_say_what_to_write() {
        assert_eq!(
            problems("5 1 pause\n2-1 1 pause\nc 1 pause\na[2-4] 1 pause\n0,x 1 cut\nnope 1 set_delay from=a to=b delay=1ms\n"),
            [
                "1:1: nodes `5` are not `*`, `N` or `A-B` with 0 <= A <= B < 5; use `*`, `N` or `A-B` (0-based node indices)",
                "2:1: nodes `2-1` are not `*`, `N` or `A-B` with 0 <= A <= B < 5; use `*`, `N` or `A-B` (0-based node indices)",
                "3:1: `c` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`",
                "4:1: `a[2-4]` is not a range of 1..3; write `a[A-B]` with 1 <= A <= B <= 3",
                "5:1: `x` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`",
                "6:1: `nope` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`",
            ]
        );
    }

    #[test]
    fn a_group_pair_change_ignores_its_nodes() {
        let events = parse(
            &plan(),
            Path::new("s.txt"),
            "* 1 set_delay from=b to=a loss=10%\na 2 set_delay from=a to=b delay=5ms\n",
        )
        .unwrap();
        let want = [(1, 0, None, Some(0.1)), (0, 1, Some(5_000), None)].map(
            |(from, to, delay_us, loss)| {
                Action::Net(NetChange::SetDelay {
                    from,
                    to,
                    delay_us,
                    loss,
                })
            },
        );
        let got: Vec<Action> = events.into_iter().map(|e| e.action).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_problem_of_a_line_is_reported() {
        assert_eq!(
            problems("9 soon jump\n"),
            [
                "1:1: nodes `9` are not `*`, `N` or `A-B` with 0 <= A <= B < 5; use `*`, `N` or `A-B` (0-based node indices)",
                "1:1: `soon` does not start with a number; write a time such as `30s` or `1.5`",
                "1:1: unknown action `jump`; use one of start, stop, kill, pause, resume, cut, restore, set_link, set_delay",
            ]
        );
    }
}
