//! Changes to a network's link model while it runs, the one vocabulary of experiment
//! events, scenario lines and `p2plab change`: new access-link values for nodes
//! (`set_link`), a new delay and/or loss for one direction of a group pair (`set_delay`),
//! cutting nodes off (`cut`) and restoring them (`restore`). [`parse`] reads one as
//! written (an action name, node selector terms and `key=value` parameters) against a
//! [`LinkModel`]; [`LinkModel::apply`] is its effect on the model (cutting is the kernel's
//! business: the model keeps a cut node's values for its restore).

use crate::select;
use crate::units::{parse_loss, parse_rate, parse_time_us};
use crate::LinkModel;
use std::fmt;

/// New access-link values for a node; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkChange {
    /// New `U(v)`, bits per second.
    pub up_bps: Option<u64>,
    /// New `D(v)`, bits per second.
    pub down_bps: Option<u64>,
    /// New `L(v)`, one way, microseconds.
    pub latency_us: Option<u64>,
    /// New `p(v)`, a fraction.
    pub loss: Option<f64>,
}

/// One change to a running network. Node indices are into the model's nodes, group
/// indices into its groups.
#[derive(Debug, Clone, PartialEq)]
pub enum NetChange {
    /// New link values for `nodes`.
    SetLink { nodes: Vec<usize>, link: LinkChange },
    /// New `G(from,to)` and/or `q(from,to)`, one direction.
    SetDelay {
        from: usize,
        to: usize,
        delay_us: Option<u64>,
        loss: Option<f64>,
    },
    /// Drop every packet from and to these nodes.
    Cut(Vec<usize>),
    /// Undo a cut of these nodes.
    Restore(Vec<usize>),
}

impl NetChange {
    /// The nodes the change applies to (none for a group pair's change).
    pub fn nodes(&self) -> &[usize] {
        match self {
            NetChange::SetLink { nodes, .. }
            | NetChange::Cut(nodes)
            | NetChange::Restore(nodes) => nodes,
            NetChange::SetDelay { .. } => &[],
        }
    }
}

/// A change that names a node or group the model does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    /// `"node"` or `"group"`.
    pub what: &'static str,
    pub index: usize,
    /// How many the model has.
    pub count: usize,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no {} {} in this network (it has {}); name one of the topology's",
            self.what, self.index, self.count
        )
    }
}

impl std::error::Error for OutOfRange {}

impl LinkModel {
    /// Makes `change` in the model: new node values for `set_link`, new `G`/`q` for
    /// `set_delay`, nothing for `cut` and `restore` (but their nodes are checked too).
    /// A change naming a node or group the model lacks changes nothing.
    pub fn apply(&mut self, change: &NetChange) -> Result<(), OutOfRange> {
        let out = |what, index, count| OutOfRange { what, index, count };
        let (nn, ng) = (self.nodes.len(), self.groups.len());
        if let Some(&i) = change.nodes().iter().find(|&&i| i >= nn) {
            return Err(out("node", i, nn));
        }
        match change {
            NetChange::SetLink { nodes, link } => {
                for &i in nodes {
                    let n = &mut self.nodes[i];
                    n.up_bps = link.up_bps.unwrap_or(n.up_bps);
                    n.down_bps = link.down_bps.unwrap_or(n.down_bps);
                    n.latency_us = link.latency_us.unwrap_or(n.latency_us);
                    n.loss = link.loss.unwrap_or(n.loss);
                }
            }
            NetChange::SetDelay {
                from,
                to,
                delay_us,
                loss,
            } => {
                if let Some(g) = [*from, *to].into_iter().find(|&g| g >= ng) {
                    return Err(out("group", g, ng));
                }
                if let Some(d) = delay_us {
                    self.set_group_delay_us(*from, *to, *d);
                }
                if let Some(q) = loss {
                    self.set_group_loss(*from, *to, *q);
                }
            }
            NetChange::Cut(_) | NetChange::Restore(_) => {}
        }
        Ok(())
    }
}

/// The actions of [`NetChange`], as users write them.
pub const ACTIONS: [&str; 4] = ["cut", "restore", "set_link", "set_delay"];

/// Whether action `name` applies to nodes (all but the group-pair change `set_delay`).
pub fn takes_nodes(name: &str) -> bool {
    name != "set_delay"
}

/// A change as written.
pub struct Written<'a> {
    /// The action's name.
    pub action: &'a str,
    /// The node selector's terms (see [`select`](crate::select)), `None` when not given.
    pub nodes: Option<&'a [&'a str]>,
    /// The `key=value` parameters, in the order written.
    pub params: &'a [(&'a str, &'a str)],
}

/// What a written change turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    Net(NetChange),
    /// One of the caller's other actions, on these nodes.
    Other(T, Vec<usize>),
}

/// The part of a written change a problem concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The change as a whole (its nodes are missing).
    Whole,
    /// The action's name, or the change as a whole (it changes nothing).
    Action,
    /// The node selector as a whole.
    Selector,
    /// The node selector's term with this index.
    Term(usize),
    /// The parameter with this key.
    Param(String),
}

/// A problem with a written change: where it is, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeError {
    pub part: Part,
    pub message: String,
    pub fix: String,
}

fn problem(part: Part, message: String, fix: &str) -> ChangeError {
    ChangeError {
        part,
        message,
        fix: fix.to_string(),
    }
}

/// Reads `written` against `model`. `others` are further actions, by name, that the caller
/// carries out itself (each takes nodes and no parameters, e.g. process signals); they
/// come back as [`Parsed::Other`]. The errors are every problem found, the action's
/// before the nodes'.
pub fn parse<T: Copy>(
    model: &LinkModel,
    written: &Written<'_>,
    others: &[(&str, T)],
) -> Result<Parsed<T>, Vec<ChangeError>> {
    let (name, params) = (written.action, written.params);
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
                Part::Param(key.to_string()),
                format!("`{key}` does not apply to `{name}`"),
                &fix,
            ));
        }
    }
    let get = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut value = |key: &str, parse: fn(&str) -> Result<u64, (String, String)>| {
        get(key).and_then(|v| {
            parse(v)
                .map_err(|(m, f)| errors.push(problem(Part::Param(key.into()), m, &f)))
                .ok()
        })
    };
    let up_bps = value("up", parse_rate);
    let down_bps = value("down", parse_rate);
    let latency_us = value("latency", parse_time_us);
    let delay_us = value("delay", parse_time_us);
    let loss = get("loss").and_then(|v| {
        parse_loss(v)
            .map_err(|(m, f)| errors.push(problem(Part::Param("loss".into()), m, &f)))
            .ok()
    });
    let mut group = |key: &str| match get(key) {
        None => {
            errors.push(problem(
                Part::Param(key.into()),
                format!("`set_delay` needs `{key}`"),
                "name a group of the topology",
            ));
            None
        }
        Some(g) => model.group_by_name(g).or_else(|| {
            errors.push(problem(
                Part::Param(key.into()),
                format!("unknown group `{g}`"),
                "name a group of the topology",
            ));
            None
        }),
    };
    // The change, its nodes still to fill in.
    let parsed = match name {
        "cut" => Some(Parsed::Net(NetChange::Cut(Vec::new()))),
        "restore" => Some(Parsed::Net(NetChange::Restore(Vec::new()))),
        "set_link" => {
            if params.is_empty() {
                errors.push(problem(
                    Part::Action,
                    "`set_link` changes nothing".into(),
                    "give at least one of up, down, latency, loss",
                ));
            }
            let link = LinkChange {
                up_bps,
                down_bps,
                latency_us,
                loss,
            };
            Some(Parsed::Net(NetChange::SetLink {
                nodes: Vec::new(),
                link,
            }))
        }
        "set_delay" => {
            let (from, to) = (group("from"), group("to"));
            if get("delay").is_none() && get("loss").is_none() {
                errors.push(problem(
                    Part::Action,
                    "`set_delay` changes nothing".into(),
                    "give `delay` and/or `loss`",
                ));
            }
            from.zip(to).map(|(from, to)| {
                Parsed::Net(NetChange::SetDelay {
                    from,
                    to,
                    delay_us,
                    loss,
                })
            })
        }
        _ => match others.iter().find(|(o, _)| *o == name) {
            Some(&(_, other)) => Some(Parsed::Other(other, Vec::new())),
            None => {
                let names: Vec<&str> = others.iter().map(|(o, _)| *o).chain(ACTIONS).collect();
                errors.push(problem(
                    Part::Action,
                    format!("unknown action `{name}`"),
                    &format!("use one of {}", names.join(", ")),
                ));
                None
            }
        },
    };
    let mut parsed = match parsed {
        Some(p) if errors.is_empty() => p,
        _ => return Err(errors),
    };
    let found = match (written.nodes, takes_nodes(name)) {
        (Some(terms), true) => select::resolve(model, terms).map_err(|errs| {
            errs.into_iter()
                .map(|(i, m, f)| problem(Part::Term(i), m, &f))
                .collect::<Vec<_>>()
        })?,
        (None, true) => {
            return Err(vec![problem(
                Part::Whole,
                format!("`{name}` needs `nodes`"),
                "add `nodes:` with `*`, a group, a node or `group[A-B]`",
            )])
        }
        (Some(_), false) => {
            return Err(vec![problem(
                Part::Selector,
                "`set_delay` changes a group pair, not nodes".into(),
                "remove `nodes`",
            )])
        }
        (None, false) => return Ok(parsed),
    };
    match &mut parsed {
        Parsed::Net(
            NetChange::Cut(nodes) | NetChange::Restore(nodes) | NetChange::SetLink { nodes, .. },
        )
        | Parsed::Other(_, nodes) => *nodes = found,
        Parsed::Net(NetChange::SetDelay { .. }) => {}
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups g0 (nodes 0..3) and g1 (3..6), 1 mbit, 5 ms, no group delay.
    fn model() -> LinkModel {
        LinkModel::uniform(2, 3, 1_000_000, 1_000_000, 5_000)
    }

    /// The process-like actions a caller adds.
    const OTHERS: [(&str, char); 2] = [("pause", 'p'), ("resume", 'r')];

    fn parse_with(
        action: &str,
        nodes: Option<&[&str]>,
        params: &[(&str, &str)],
    ) -> Result<Parsed<char>, Vec<ChangeError>> {
        let written = Written {
            action,
            nodes,
            params,
        };
        parse(&model(), &written, &OTHERS)
    }

    /// The errors of a written change, as `(part, message, fix)`.
    fn errors(
        action: &str,
        nodes: Option<&[&str]>,
        params: &[(&str, &str)],
    ) -> Vec<(Part, String, String)> {
        parse_with(action, nodes, params)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.part, e.message, e.fix))
            .collect()
    }

    fn param(key: &str, message: &str, fix: &str) -> (Part, String, String) {
        (Part::Param(key.into()), message.into(), fix.into())
    }

    #[test]
    fn every_action_is_read() {
        let net = |action, nodes, params| match parse_with(action, nodes, params) {
            Ok(Parsed::Net(c)) => c,
            other => panic!("{action}: {other:?}"),
        };
        assert_eq!(
            net("cut", Some(&["g1[2-3]", "g0n1"]), &[]),
            NetChange::Cut(vec![4, 5, 0])
        );
        assert_eq!(
            net("restore", Some(&["*"]), &[]),
            NetChange::Restore((0..6).collect())
        );
        assert_eq!(
            net(
                "set_link",
                Some(&["g1"]),
                &[("up", "64kbit"), ("latency", "50ms"), ("loss", "1%")]
            ),
            NetChange::SetLink {
                nodes: vec![3, 4, 5],
                link: LinkChange {
                    up_bps: Some(64_000),
                    down_bps: None,
                    latency_us: Some(50_000),
                    loss: Some(0.01),
                },
            }
        );
        assert_eq!(
            net(
                "set_delay",
                None,
                &[("from", "g1"), ("to", "g0"), ("delay", "80ms")]
            ),
            NetChange::SetDelay {
                from: 1,
                to: 0,
                delay_us: Some(80_000),
                loss: None
            }
        );
        assert_eq!(
            parse_with("resume", Some(&["g0[2]"]), &[]),
            Ok(Parsed::Other('r', vec![1]))
        );
    }

    #[test]
    fn unknown_actions_and_keys_are_named() {
        assert_eq!(
            errors("jump", Some(&["*"]), &[]),
            [(
                Part::Action,
                "unknown action `jump`".into(),
                "use one of pause, resume, cut, restore, set_link, set_delay".into()
            )]
        );
        assert_eq!(
            errors("cut", Some(&["*"]), &[("up", "1mbit")]),
            [param(
                "up",
                "`up` does not apply to `cut`",
                "`cut` takes no parameters"
            )]
        );
        assert_eq!(
            errors("pause", Some(&["*"]), &[("delay", "1s")]),
            [param(
                "delay",
                "`delay` does not apply to `pause`",
                "`pause` takes no parameters"
            )]
        );
        assert_eq!(
            errors("set_link", Some(&["*"]), &[("rate", "1mbit")]),
            [param(
                "rate",
                "`rate` does not apply to `set_link`",
                "`set_link` takes up, down, latency, loss"
            )]
        );
    }

    #[test]
    fn a_change_of_nothing_or_without_its_groups_is_refused() {
        assert_eq!(
            errors("set_link", Some(&["*"]), &[]),
            [(
                Part::Action,
                "`set_link` changes nothing".into(),
                "give at least one of up, down, latency, loss".into()
            )]
        );
        assert_eq!(
            errors("set_delay", None, &[("from", "g0")]),
            [
                param(
                    "to",
                    "`set_delay` needs `to`",
                    "name a group of the topology"
                ),
                (
                    Part::Action,
                    "`set_delay` changes nothing".into(),
                    "give `delay` and/or `loss`".into()
                )
            ]
        );
        assert_eq!(
            errors("set_delay", None, &[("to", "g2"), ("loss", "1%")]),
            [
                param(
                    "from",
                    "`set_delay` needs `from`",
                    "name a group of the topology"
                ),
                param("to", "unknown group `g2`", "name a group of the topology"),
            ]
        );
    }

    #[test]
    fn bad_values_are_named_by_their_key() {
        assert_eq!(
            errors(
                "set_link",
                Some(&["*"]),
                &[("up", "fast"), ("latency", "soon"), ("loss", "200%")]
            ),
            [
                param(
                    "up",
                    "`fast` does not start with a number",
                    "write a number followed by its unit"
                ),
                param(
                    "latency",
                    "`soon` does not start with a number",
                    "write a number followed by its unit"
                ),
                param(
                    "loss",
                    "loss `200%` is outside 0..100%",
                    "give a percentage between 0% and 100%"
                ),
            ]
        );
    }

    #[test]
    fn nodes_are_needed_checked_or_refused() {
        assert_eq!(
            errors("cut", None, &[]),
            [(
                Part::Whole,
                "`cut` needs `nodes`".into(),
                "add `nodes:` with `*`, a group, a node or `group[A-B]`".into()
            )]
        );
        assert_eq!(
            errors(
                "set_delay",
                Some(&["*"]),
                &[("from", "g0"), ("to", "g1"), ("delay", "1ms")]
            ),
            [(
                Part::Selector,
                "`set_delay` changes a group pair, not nodes".into(),
                "remove `nodes`".into()
            )]
        );
        assert_eq!(
            errors("pause", Some(&["g0", "g0[1-4]", "nope"]), &[]),
            [
                (
                    Part::Term(1),
                    "`g0[1-4]` is not a range of 1..3".into(),
                    "write `g0[A-B]` with 1 <= A <= B <= 3".into()
                ),
                (
                    Part::Term(2),
                    "`nope` is neither a group nor a node of the topology".into(),
                    "write `*`, a group name, a node name or `group[A-B]`".into()
                ),
            ]
        );
        // a bad action is reported alone: its nodes are not looked at
        assert_eq!(errors("jump", Some(&["nope"]), &[]).len(), 1);
    }

    #[test]
    fn applying_changes_the_model_only_where_asked() {
        let mut m = model();
        let before = m.clone();
        let link = LinkChange {
            down_bps: Some(64_000),
            loss: Some(0.5),
            ..LinkChange::default()
        };
        m.apply(&NetChange::SetLink {
            nodes: vec![1, 4],
            link,
        })
        .unwrap();
        for (i, n) in m.nodes.iter().enumerate() {
            let changed = i == 1 || i == 4;
            assert_eq!(n.down_bps, if changed { 64_000 } else { 1_000_000 }, "{i}");
            assert_eq!(n.loss, if changed { 0.5 } else { 0.0 }, "{i}");
            assert_eq!((n.up_bps, n.latency_us), (1_000_000, 5_000), "{i}");
        }
        let delay = |delay_us, loss| NetChange::SetDelay {
            from: 1,
            to: 0,
            delay_us,
            loss,
        };
        m.apply(&delay(Some(30_000), None)).unwrap();
        m.apply(&delay(None, Some(0.25))).unwrap();
        assert_eq!((m.group_delay_us(1, 0), m.group_loss(1, 0)), (30_000, 0.25));
        assert_eq!((m.group_delay_us(0, 1), m.group_loss(0, 1)), (0, 0.0));
        // cut and restore leave the model as it is
        let now = m.clone();
        m.apply(&NetChange::Cut(vec![0, 5])).unwrap();
        m.apply(&NetChange::Restore(vec![0])).unwrap();
        assert_eq!(m, now);
        assert_ne!(m, before);
    }

    #[test]
    fn a_change_out_of_the_model_changes_nothing() {
        let mut m = model();
        let before = m.clone();
        let link = NetChange::SetLink {
            nodes: vec![0, 6],
            link: LinkChange {
                up_bps: Some(1),
                ..LinkChange::default()
            },
        };
        let err = m.apply(&link).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no node 6 in this network (it has 6); name one of the topology's"
        );
        let pair = NetChange::SetDelay {
            from: 0,
            to: 2,
            delay_us: Some(1),
            loss: None,
        };
        assert_eq!(
            m.apply(&pair).unwrap_err(),
            OutOfRange {
                what: "group",
                index: 2,
                count: 2
            }
        );
        assert!(m.apply(&NetChange::Restore(vec![9])).is_err());
        assert_eq!(m, before);
    }

    #[test]
    fn nodes_of_a_change() {
        assert_eq!(NetChange::Cut(vec![2, 1]).nodes(), [2, 1]);
        let pair = NetChange::SetDelay {
            from: 0,
            to: 1,
            delay_us: None,
            loss: Some(0.1),
        };
        assert!(pair.nodes().is_empty());
    }
}
