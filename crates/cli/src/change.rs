//! `p2plab change`: the run-time events of an experiment (`cut`, `restore`, `set_link`,
//! `set_delay`) as a command, for a network kept up by hand. Parses names and values and
//! makes the change through `shaping::Network`.

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use shaping::{Change, Network};
use topology::units::{parse_loss, parse_rate, parse_time_us, UnitError};
use topology::LinkModel;

/// Change a network that is up: cut nodes off, restore them, give nodes new link
/// parameters, or give one direction of a group pair a new delay or loss.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab change cut east-1 east-2\n  p2plab change restore east-1\n  p2plab change set_link west up=1mbit down=4mbit latency=50ms loss=1%\n  p2plab change set_delay from=east to=west delay=80ms loss=2%\n\nNodes are node names, group names or `*`; set_link changes only the values given."
)]
pub struct ChangeArgs {
    /// Network name (default: the only network up, or "default").
    #[arg(long)]
    pub name: Option<String>,
    /// What to do.
    pub action: ActionArg,
    /// Nodes (`cut`, `restore`, `set_link`) and KEY=VALUE parameters.
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

/// The KEY=VALUE parameters of one command line, checked against the allowed keys.
struct Params<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Params<'a> {
    fn new(words: &[&'a str], allowed: &[&str]) -> Result<Self> {
        let pairs: Vec<(&str, &str)> = words.iter().filter_map(|w| w.split_once('=')).collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(k)) {
            bail!(
                "`{k}` is not a parameter of this action; it takes {}",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            );
        }
        Ok(Params(pairs))
    }

    fn get<T>(&self, key: &str, parse: fn(&str) -> Result<T, UnitError>) -> Result<Option<T>> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| parse(v).map_err(|(m, fix)| anyhow!("`{key}`: {m}; {fix}")))
            .transpose()
    }
}

/// Model indices of the nodes named by `words` (node names, group names, `*`).
fn nodes(model: &LinkModel, words: &[&str], network: &str) -> Result<Vec<usize>> {
    if words.is_empty() {
        bail!("name the nodes to change (node names, group names or `*`)");
    }
    let mut out = vec![];
    for w in words {
        let group = model.groups.iter().position(|g| g.name == *w);
        let matched: Vec<usize> = (0..model.nodes.len())
            .filter(|&i| {
                *w == "*" || model.nodes[i].name == *w || Some(model.nodes[i].group) == group
            })
            .collect();
        if matched.is_empty() {
            bail!("no node or group `{w}` in network {network} (see `p2plab status {network}`)");
        }
        out.extend(
            matched
                .into_iter()
                .filter(|i| !out.contains(i))
                .collect::<Vec<_>>(),
        );
    }
    Ok(out)
}

fn count(n: usize) -> String {
    format!("{n} node{}", if n == 1 { "" } else { "s" })
}

fn group(model: &LinkModel, params: &Params, key: &str) -> Result<usize> {
    let name = params
        .0
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| anyhow!("set_delay needs {key}=GROUP"))?;
    model
        .groups
        .iter()
        .position(|g| g.name == name)
        .ok_or_else(|| anyhow!("`{key}`: no group `{name}` in this network"))
}

pub fn change(args: &ChangeArgs) -> Result<()> {
    let name = crate::down::default_name(&args.name);
    let mut network = Network::open(&name)?;
    let m = &network.state().model;
    let words: Vec<&str> = args.args.iter().map(String::as_str).collect();
    let targets: Vec<&str> = words.iter().copied().filter(|w| !w.contains('=')).collect();
    let (change, what) = match args.action {
        ActionArg::Cut | ActionArg::Restore => {
            Params::new(&words, &[])?;
            let nodes = nodes(m, &targets, &name)?;
            let what = count(nodes.len());
            match args.action {
                ActionArg::Cut => (Change::Cut(nodes), format!("cut off {what}")),
                _ => (Change::Restore(nodes), format!("restored {what} (if cut)")),
            }
        }
        ActionArg::SetLink => {
            let p = Params::new(&words, &["up", "down", "latency", "loss"])?;
            if p.0.is_empty() {
                bail!("set_link changes nothing: give up=, down=, latency= and/or loss=");
            }
            let nodes = nodes(m, &targets, &name)?;
            let what = format!("new link parameters for {}", count(nodes.len()));
            let change = Change::Link {
                nodes,
                up_bps: p.get("up", parse_rate)?,
                down_bps: p.get("down", parse_rate)?,
                latency_us: p.get("latency", parse_time_us)?,
                loss: p.get("loss", parse_loss)?,
            };
            (change, what)
        }
        ActionArg::SetDelay => {
            let p = Params::new(&words, &["from", "to", "delay", "loss"])?;
            if let Some(w) = targets.first() {
                bail!(
                    "set_delay changes a group pair, not nodes: remove `{w}`, give from= and to="
                );
            }
            let (from, to) = (group(m, &p, "from")?, group(m, &p, "to")?);
            let (delay_us, loss) = (p.get("delay", parse_time_us)?, p.get("loss", parse_loss)?);
            if delay_us.is_none() && loss.is_none() {
                bail!("set_delay changes nothing: give delay= and/or loss=");
            }
            let what = format!(
                "new delay from {} to {}",
                m.groups[from].name, m.groups[to].name
            );
            (
                Change::Delay {
                    from,
                    to,
                    delay_us,
                    loss,
                },
                what,
            )
        }
    };
    network.change(&change)?;
    crate::output::emit(&format!("network {name}: {what}\n"))
}
