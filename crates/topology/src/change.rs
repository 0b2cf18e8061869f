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
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
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
    written: &Written,
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
