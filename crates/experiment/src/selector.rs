//! Node selectors, shared by roles and events: `*` (every node), a group name, a node name,
//! `group[A-B]` (the group's nodes A to B, 1-based, inclusive), or a list of these.
//! A selector resolves to node indices of the topology plan, in the order written,
//! without repeats.

use topology::Plan;

/// Resolves one selector term; the error is `(message, fix)`.
fn term(plan: &Plan, text: &str) -> Result<Vec<usize>, (String, String)> {
    let text = text.trim();
    if text == "*" {
        return Ok((0..plan.link.nodes.len()).collect());
    }
    if let Some(g) = plan.link.group_by_name(text) {
        return Ok(plan.link.groups[g].nodes.clone().collect());
    }
    if let Some(n) = plan.link.node_by_name(text) {
        return Ok(vec![n]);
    }
    if let Some((group, range)) = text.strip_suffix(']').and_then(|t| t.split_once('[')) {
        let g = plan.link.group_by_name(group).ok_or_else(|| {
            (
                format!("`{group}` in `{text}` is not a group"),
                "name a group of the topology".to_string(),
            )
        })?;
        let len = plan.link.groups[g].nodes.len();
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        return match (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            (Ok(a), Ok(b)) if 1 <= a && a <= b && b <= len => {
                let start = plan.link.groups[g].nodes.start;
                Ok((start + a - 1..start + b).collect())
            }
            _ => Err((
                format!("`{text}` is not a range of 1..{len}"),
                format!("write `{group}[A-B]` with 1 <= A <= B <= {len}"),
            )),
        };
    }
    Err((
        format!("`{text}` is neither a group nor a node of the topology"),
        "write `*`, a group name, a node name or `group[A-B]`".into(),
    ))
}

/// Resolves a selector value; errors are `(path suffix, message, fix)`.
pub fn resolve(
    plan: &Plan,
    value: &serde_yaml_ng::Value,
) -> Result<Vec<usize>, Vec<(String, String, String)>> {
    use serde_yaml_ng::Value;
    let terms: Vec<(String, &str)> = match value {
        Value::String(s) => vec![(String::new(), s.as_str())],
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("[{i}]"), v.as_str().unwrap_or("")))
            .collect(),
        _ => {
            return Err(vec![(
                String::new(),
                "expected a node selector".into(),
                "write `*`, a group, a node, `group[A-B]` or a list of these".into(),
            )])
        }
    };
    let mut seen = vec![false; plan.link.nodes.len()];
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    for (suffix, text) in terms {
        match term(plan, text) {
            Ok(found) => nodes.extend(
                found
                    .into_iter()
                    .filter(|&n| !std::mem::replace(&mut seen[n], true)),
            ),
            Err((message, fix)) => errors.push((suffix, message, fix)),
        }
    }
    if errors.is_empty() {
        Ok(nodes)
    } else {
        Err(errors)
    }
}

/// Resolves selector terms given on a command line (`*`, a group, a node or `group[A-B]`
/// each); the error says what is wrong and how to write it.
pub fn select(plan: &Plan, terms: &[&str]) -> Result<Vec<usize>, String> {
    let value = serde_yaml_ng::Value::Sequence(
        terms
            .iter()
            .map(|t| serde_yaml_ng::Value::String(t.to_string()))
            .collect(),
    );
    resolve(plan, &value).map_err(|errors| {
        let (_, message, fix) = &errors[0];
        format!("{message}; {fix}")
    })
}
