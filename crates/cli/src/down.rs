//! `p2plab down`: ends a run's processes, then takes its network down; and the network a
//! command means when it names none.

use anyhow::Result;
use clap::Args;
use shaping::Network;

/// Take a network down: removes exactly what `up` created.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab down               # the only network up here\n  p2plab down --name lab2\n  p2plab down --all         # every network and run of this network namespace\n  p2plab down --hosts cluster/hosts.example.yaml --name quickstart   # every host of a cluster run\n\nAlso cleans up after an `up` or a run that failed or was killed half-way; running it twice\nis harmless."
)]
pub struct DownArgs {
    #[command(flatten)]
    pub net: NetName,
    /// The network as a positional argument, as earlier releases had it (use --name).
    #[arg(hide = true, value_name = "NAME", conflicts_with = "name")]
    pub positional: Option<String>,
    /// Every network and every run of this network namespace (Mininet's `mn -c`).
    #[arg(long, conflicts_with_all = ["name", "positional", "hosts"])]
    pub all: bool,
    /// Clean every host of this inventory (YAML) after a cluster run (needs the run's name).
    #[arg(long, value_name = "INVENTORY")]
    pub hosts: Option<std::path::PathBuf>,
    /// Accept and record the host key of a host not yet in known_hosts.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

/// How `down`, `status`, `change`, `probe` and `exec` name a network.
#[derive(Debug, Args)]
pub struct NetName {
    /// The network (default: the only network up here; with several up, name one).
    #[arg(long)]
    pub name: Option<String>,
}

/// The network `given` names, or else the only network up here. With none up, `Ok(None)`;
/// with several, an error that lists them.
pub fn resolve(given: Option<&str>, command: &str) -> Result<Option<String>> {
    if let Some(name) = given {
        return Ok(Some(name.to_string()));
    }
    let names: Vec<String> = Network::list()
        .iter()
        .map(|n| n.state().name.clone())
        .collect();
    match names.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        [first, ..] => Err(crate::exit::bad_input(format!(
            "{} networks are up here ({}): name one, e.g. `p2plab {command} --name {first}`",
            names.len(),
            names.join(", ")
        ))),
    }
}

/// The network `given` names, or else the only network up here, which must exist.
pub fn required(given: Option<&str>, command: &str) -> Result<String> {
    resolve(given, command)?.ok_or_else(|| {
        anyhow::anyhow!("no network is up here: bring one up with `p2plab up TOPOLOGY`")
    })
}

pub fn down(args: &DownArgs) -> Result<()> {
    let given = args.net.name.as_deref().or(args.positional.as_deref());
    if let Some(inventory) = &args.hosts {
        return down_hosts(args, given, inventory);
    }
    if args.all {
        return down_all();
    }
    let Some(name) = resolve(given, "down")? else {
        return crate::output::emit("no network is up here; nothing to do\n");
    };
    crate::output::emit(&down_one(&name)?)
}

/// Ends run `name`'s processes, then takes its network down; what it did, in lines.
fn down_one(name: &str) -> Result<String> {
    // A run's processes go first (its cgroups), also when its controller was killed.
    let ended = runner::end_run(name)
        .map_err(|e| anyhow::anyhow!("cannot end the processes of run {name}: {e}"))?;
    let mut said = String::new();
    if ended {
        said += &format!("processes of run {name} ended\n");
    }
    said += &if Network::down(name)? {
        format!("network {name} is down\n")
    } else {
        format!("network {name} was not up; nothing to do\n")
    };
    Ok(said)
}

/// `down --all`: every run recorded and every network up in this network namespace.
fn down_all() -> Result<()> {
    let mut names: Vec<String> = Network::list()
        .iter()
        .map(|n| n.state().name.clone())
        .collect();
    // runs whose network is already gone still have their record (`<name>.run.json`)
    let records = std::fs::read_dir(shaping::run_dir()).into_iter().flatten();
    for entry in records.flatten() {
        let file = entry.file_name();
        if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".run.json")) {
            names.push(name.to_string());
        }
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        return crate::output::emit("no network or run is up here; nothing to do\n");
    }
    let mut said = String::new();
    for name in &names {
        said += &down_one(name)?;
    }
    crate::output::emit(&said)
}

/// `down --hosts`: `p2plab down NAME` on every host of the inventory.
fn down_hosts(args: &DownArgs, name: Option<&str>, inventory: &std::path::Path) -> Result<()> {
    let Some(name) = name else {
        return Err(crate::exit::bad_input(
            "down --hosts needs the run's name: p2plab down --hosts INVENTORY --name NAME",
        ));
    };
    let inv =
        cluster::inventory::load(inventory).map_err(|d| crate::exit::bad_input(d.to_string()))?;
    let ssh = cluster::controller::ssh_config(&inv, args.accept_new_host_keys);
    let done = cluster::controller::down(&inv.hosts, &ssh, name);
    let mut out = String::new();
    let mut failed = Vec::new();
    for (host, r) in inv.hosts.iter().zip(done) {
        match r {
            Ok(said) => {
                for line in said.lines() {
                    out.push_str(&format!("{}: {line}\n", host.name));
                }
            }
            Err(why) => failed.push(format!("{}: {why}", host.name)),
        }
    }
    crate::output::emit(&out)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} of {} hosts could not be cleaned (run it again once they are reachable): {}",
            failed.len(),
            inv.hosts.len(),
            failed.join("; ")
        ))
    }
}
