//! Node selectors, the one syntax every p2plab input uses to name nodes (experiment roles
//! and events, scenario lines, `p2plab change`, `--local` and `--route`): `*` (every
//! node), a group name, a node name, `group[A-B]` (the group's nodes A to B, 1-based,
//! inclusive), or a list of these (separate terms, or one term with commas). A selector
//! resolves to node indices of a [`LinkModel`], in the order written, without repeats.

use crate::LinkModel;

/// What to write instead of a term that names no node.
pub const SYNTAX: &str = "write `*`, a group, a node, `group[A-B]` or a list of these";

/// Resolves one term without commas; the error is `(message, fix)`.
fn term(model: &LinkModel, text: &str) -> Result<Vec<usize>, (String, String)> {
    let text = text.trim();
    if text == "*" {
        return Ok((0..model.nodes.len()).collect());
    }
    if let Some(g) = model.group_by_name(text) {
        return Ok(model.groups[g].nodes.clone().collect());
    }
    if let Some(n) = model.node_by_name(text) {
        return Ok(vec![n]);
    }
    if let Some((group, range)) = text.strip_suffix(']').and_then(|t| t.split_once('[')) {
        let g = model.group_by_name(group).ok_or_else(|| {
            (
                format!("`{group}` in `{text}` is not a group"),
                "name a group of the topology".to_string(),
            )
        })?;
        let len = model.groups[g].nodes.len();
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        return match (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            (Ok(a), Ok(b)) if 1 <= a && a <= b && b <= len => {
                let start = model.groups[g].nodes.start;
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

/// Resolves selector `terms`; each error is `(index of its term, message, fix)`.
pub fn resolve(
    model: &LinkModel,
    terms: &[&str],
) -> Result<Vec<usize>, Vec<(usize, String, String)>> {
    let mut seen = vec![false; model.nodes.len()];
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    for (i, text) in terms.iter().enumerate() {
        for part in text.split(',') {
            match term(model, part) {
                Ok(found) => nodes.extend(
                    found
                        .into_iter()
                        .filter(|&n| !std::mem::replace(&mut seen[n], true)),
                ),
                Err((message, fix)) => errors.push((i, message, fix)),
            }
        }
    }
    if errors.is_empty() {
        Ok(nodes)
    } else {
        Err(errors)
    }
}

/// Resolves selector terms given on a command line; the error (the first problem) says
/// what is wrong and how to write it.
pub fn select(model: &LinkModel, terms: &[&str]) -> Result<Vec<usize>, String> {
    resolve(model, terms).map_err(|errors| {
        let (_, message, fix) = &errors[0];
        format!("{message}; {fix}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups g0 (nodes 0..3) and g1 (3..6), nodes `g<g>n<k>`.
    fn model() -> LinkModel {
        LinkModel::uniform(2, 3, 1, 1, 0)
    }

    #[test]
    fn terms_resolve_in_order_once_each() {
        let m = model();
        let select = |terms: &[&str]| select(&m, terms);
        assert_eq!(select(&["g1[2-3]"]), Ok(vec![4, 5]));
        assert_eq!(select(&["g1[3]", "g0[1-3]"]), Ok(vec![5, 0, 1, 2]));
        assert_eq!(select(&["g1n2", "g1", "*"]), Ok(vec![4, 3, 5, 0, 1, 2]));
        assert_eq!(select(&[" g0n3 "]), Ok(vec![2]));
        assert_eq!(select(&[]), Ok(vec![]));
    }

    #[test]
    fn commas_list_terms_within_one() {
        let m = model();
        assert_eq!(select(&m, &["g1[3],g0n1, g1n2"]), Ok(vec![5, 0, 4]));
        assert_eq!(select(&m, &["g0[2-3],g0"]), Ok(vec![1, 2, 0]));
        // errors name the term they are in
        assert_eq!(
            resolve(&m, &["g0", "g1n1,nope"]),
            Err(vec![(
                1,
                "`nope` is neither a group nor a node of the topology".to_string(),
                "write `*`, a group name, a node name or `group[A-B]`".to_string()
            )])
        );
    }

    #[test]
    fn bad_terms_say_what_to_write() {
        let m = model();
        for (bad, message) in [
            ("g0[0-1]", "`g0[0-1]` is not a range of 1..3; write `g0[A-B]` with 1 <= A <= B <= 3"),
            ("g0[3-2]", "`g0[3-2]` is not a range of 1..3; write `g0[A-B]` with 1 <= A <= B <= 3"),
            ("g1[3-4]", "`g1[3-4]` is not a range of 1..3; write `g1[A-B]` with 1 <= A <= B <= 3"),
            ("g1[x]", "`g1[x]` is not a range of 1..3; write `g1[A-B]` with 1 <= A <= B <= 3"),
            ("g2[1]", "`g2` in `g2[1]` is not a group; name a group of the topology"),
            ("g2", "`g2` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`"),
        ] {
            assert_eq!(select(&m, &["g0", bad]), Err(message.to_string()), "{bad}");
        }
        let errors = resolve(&m, &["x", "g0", "y"]).unwrap_err();
        let at: Vec<usize> = errors.iter().map(|e| e.0).collect();
        assert_eq!(at, [0, 2]);
    }
}
