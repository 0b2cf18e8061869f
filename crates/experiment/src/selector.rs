//! Node selectors written in YAML: a string or a list of strings, each a term of the one
//! selector syntax (see `topology::select`: `*`, a group, a node, `group[A-B]`, lists).
//! Errors name their place in the value (`[i]` for a list's i-th item).

use topology::Plan;

/// The terms of a selector value, and whether it was a list.
pub struct Terms<'a> {
    pub texts: Vec<&'a str>,
    listed: bool,
}

impl Terms<'_> {
    /// The path suffix of term `i` (empty when the selector is one string).
    pub fn suffix(&self, i: usize) -> String {
        if self.listed {
            format!("[{i}]")
        } else {
            String::new()
        }
    }
}

/// The terms of selector `value`; the error is `(message, fix)`.
pub fn terms(value: &serde_yaml_ng::Value) -> Result<Terms<'_>, (String, String)> {
    use serde_yaml_ng::Value;
    match value {
        Value::String(s) => Ok(Terms {
            texts: vec![s.as_str()],
            listed: false,
        }),
        Value::Sequence(items) => Ok(Terms {
            texts: items.iter().map(|v| v.as_str().unwrap_or("")).collect(),
            listed: true,
        }),
        _ => Err((
            "expected a node selector".into(),
            topology::select::SYNTAX.into(),
        )),
    }
}

/// Resolves a selector value; errors are `(path suffix, message, fix)`.
pub fn resolve(
    plan: &Plan,
    value: &serde_yaml_ng::Value,
) -> Result<Vec<usize>, Vec<(String, String, String)>> {
    let terms = terms(value).map_err(|(m, f)| vec![(String::new(), m, f)])?;
    topology::select::resolve(&plan.link, &terms.texts).map_err(|errors| {
        errors
            .into_iter()
            .map(|(i, m, f)| (terms.suffix(i), m, f))
            .collect()
    })
}
