//! `p2plab change`: the run-time events of an experiment (`cut`, `restore`, `set_link`,
//! `set_delay`) as a command, for a network kept up by hand. The words are read by the
//! experiment's own change parser (`topology::change`), against the network's model, and
//! the change is made through `shaping::Network`.

use crate::exit::bad_input;
use anyhow::Result;
use clap::{Args, ValueEnum};
use shaping::Network;
use std::convert::Infallible;
use topology::change::{self, ChangeError, Parsed, Part, Written};
use topology::NetChange;

/// Change a network that is up: cut nodes off, restore them, give nodes new link
/// parameters, or give one direction of a group pair a new delay or loss.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab change cut east-1 east-2\n  p2plab change cut 'west[1-3]',east-1\n  p2plab change restore east-1\n  p2plab change set_link west up=1mbit down=4mbit latency=50ms loss=1%\n  p2plab change set_delay from=east to=west delay=80ms loss=2%\n  p2plab change --name lab2 restore '*'\n\nNodes are `*`, group names, node names, `group[A-B]` (the group's nodes A to B, 1-based) or comma-separated lists of these; set_link changes only the values given."
)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub net: crate::down::NetName,
    /// What to do.
    pub action: ActionArg,
    /// Nodes (`cut`, `restore`, `set_link`: `*`, groups, nodes, `group[A-B]`, lists) and
    /// KEY=VALUE parameters.
    pub args: Vec<String>,
}

/// The actions of `p2plab change`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ActionArg {
    /// Drop every packet from and to the nodes.
    Cut,
    /// Undo `cut`.
    Restore,
    /// New rates (up, down), latency and loss for the nodes.
    #[value(name = "set_link")]
    SetLink,
    /// New delay and/or loss from group `from` to group `to`.
    #[value(name = "set_delay")]
    SetDelay,
}

impl ActionArg {
    /// The action's name, as the change parser reads it.
    fn name(self) -> &'static str {
        match self {
            ActionArg::Cut => "cut",
            ActionArg::Restore => "restore",
            ActionArg::SetLink => "set_link",
            ActionArg::SetDelay => "set_delay",
        }
    }
}

fn count(n: usize) -> String {
    format!("{n} node{}", if n == 1 { "" } else { "s" })
}

/// One line for the first of `errors`: a parameter's problem names the parameter.
fn refusal(errors: &[ChangeError]) -> String {
    let e = &errors[0];
    match &e.part {
        Part::Param(key) => format!("`{key}`: {}; {}", e.message, e.fix),
        _ => format!("{}; {}", e.message, e.fix),
    }
}

pub fn change(args: &ChangeArgs) -> Result<()> {
    let name = crate::down::required(args.net.name.as_deref(), "change")?;
    let mut network = Network::open(&name)?;
    let m = &network.state().model;
    let action = args.action.name();
    let (params, targets): (Vec<&str>, Vec<&str>) = args
        .args
        .iter()
        .map(String::as_str)
        .partition(|w| w.contains('='));
    let params: Vec<(&str, &str)> = params.iter().filter_map(|w| w.split_once('=')).collect();
    if change::takes_nodes(action) && targets.is_empty() {
        return Err(bad_input(
            "name the nodes to change (`*`, group names, node names, `group[A-B]`)",
        ));
    }
    if let Some(w) = targets.first().filter(|_| !change::takes_nodes(action)) {
        return Err(bad_input(format!(
            "set_delay changes a group pair, not nodes: remove `{w}`, give from= and to="
        )));
    }
    let written = Written {
        action,
        nodes: change::takes_nodes(action).then_some(&targets[..]),
        params: &params,
    };
    let others: &[(&str, Infallible)] = &[];
    let change = match change::parse(m, &written, others).map_err(|e| bad_input(refusal(&e)))? {
        Parsed::Net(change) => change,
        Parsed::Other(none, _) => match none {},
    };
    let what = match &change {
        NetChange::Cut(nodes) => format!("cut off {}", count(nodes.len())),
        NetChange::Restore(nodes) => format!("restored {} (if cut)", count(nodes.len())),
        NetChange::SetLink { nodes, .. } => {
            format!("new link parameters for {}", count(nodes.len()))
        }
        NetChange::SetDelay { from, to, .. } => format!(
            "new delay from {} to {}",
            m.groups[*from].name, m.groups[*to].name
        ),
    };
    network.change(&change)?;
    crate::output::emit(&format!("network {name}: {what}\n"))
}
