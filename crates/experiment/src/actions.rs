//! Event actions, the same for YAML events and ProtoPeer-style scenario lines: a name and
//! `key=value` parameters become a checked `Action`.

use crate::model::{Action, LinkChange};
use topology::units::{parse_loss, parse_rate, parse_time_us};
use topology::Plan;

/// Every action name, as users write them.
pub const NAMES: &str = "start, stop, kill, pause, resume, cut, restore, set_link, set_delay";

/// A problem with an action: the parameter it concerns (empty for the action itself),
/// the message and the fix.
pub type ActionError = (String, String, String);

fn problem(key: &str, message: String, fix: &str) -> ActionError {
    (key.to_string(), message, fix.to_string())
}

/// Builds the action `name` from its parameters.
pub fn build(plan: &Plan, name: &str, params: &[(&str, &str)]) -> Result<Action, Vec<ActionError>> {
    let mut errors = Vec::new();
    let allowed: &[&str] = match name {
        "set_link" => &["up", "down", "latency", "loss"],
        "set_delay" => &["from", "to", "delay", "loss"],
        _ => &[],
    };
    for (key, _) in params {
        if !allowed.contains(key) {
            let fix = if allowed.is_empty() {
                format!("`{name}` takes no parameters")
            } else {
                format!("`{name}` takes {}", allowed.join(", "))
            };
            errors.push(problem(
                key,
                format!("`{key}` does not apply to `{name}`"),
                &fix,
            ));
        }
    }
    let get = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut value = |key: &str, parse: fn(&str) -> Result<u64, (String, String)>| {
        get(key).and_then(|v| {
            parse(v)
                .map_err(|(m, f)| errors.push((key.to_string(), m, f)))
                .ok()
        })
    };
    let up_bps = value("up", parse_rate);
    let down_bps = value("down", parse_rate);
    let latency_us = value("latency", parse_time_us);
    let delay_us = value("delay", parse_time_us);
    let loss = get("loss").and_then(|v| {
        parse_loss(v)
            .map_err(|(m, f)| errors.push(("loss".into(), m, f)))
            .ok()
    });
    let mut group = |key: &str| match get(key) {
        None => {
            errors.push(problem(
                key,
                format!("`set_delay` needs `{key}`"),
                "name a group of the topology",
            ));
            None
        }
        Some(g) => plan.link.group_by_name(g).or_else(|| {
            errors.push(problem(
                key,
                format!("unknown group `{g}`"),
                "name a group of the topology",
            ));
            None
        }),
    };
    let action = match name {
        "start" => Some(Action::Start),
        "stop" => Some(Action::Stop),
        "kill" => Some(Action::Kill),
        "pause" => Some(Action::Pause),
        "resume" => Some(Action::Resume),
        "cut" => Some(Action::Cut),
        "restore" => Some(Action::Restore),
        "set_link" => {
            if params.is_empty() {
                errors.push(problem(
                    "",
                    "`set_link` changes nothing".into(),
                    "give at least one of up, down, latency, loss",
                ));
            }
            Some(Action::SetLink(LinkChange {
                up_bps,
                down_bps,
                latency_us,
                loss,
            }))
        }
        "set_delay" => {
            let (from, to) = (group("from"), group("to"));
            if get("delay").is_none() && get("loss").is_none() {
                errors.push(problem(
                    "",
                    "`set_delay` changes nothing".into(),
                    "give `delay` and/or `loss`",
                ));
            }
            from.zip(to).map(|(from, to)| Action::SetDelay {
                from,
                to,
                delay_us,
                loss,
            })
        }
        _ => {
            errors.push(problem(
                "",
                format!("unknown action `{name}`"),
                &format!("use one of {NAMES}"),
            ));
            None
        }
    };
    match action {
        Some(a) if errors.is_empty() => Ok(a),
        _ => Err(errors),
    }
}

/// Whether an action applies to nodes (all but group-pair changes).
pub fn takes_nodes(action: &Action) -> bool {
    !matches!(action, Action::SetDelay { .. })
}
