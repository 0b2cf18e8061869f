//! `p2plab down`: ends a run's processes, then takes its network down; and the network a
//! command means when it names none.

use anyhow::Result;
use clap::Args;
use shaping::Network;

/// Take a network down: removes exactly what `up` created.
#[derive(Args)]
#[command(
    after_help = "Example:\n  p2plab down lab2\n\nAlso cleans up after an `up` that failed or was killed half-way; running it twice is harmless."
)]
pub struct DownArgs {
    /// Network name (default: the only network up, or "default"; with --hosts, required:
    /// the experiment's name).
    pub name: Option<String>,
    /// Clean every host of this inventory (YAML) after a cluster run.
    #[arg(long, value_name = "INVENTORY")]
    pub hosts: Option<std::path::PathBuf>,
    /// Accept and record the host key of a host not yet in known_hosts.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

/// The network a command names, or else the only network up, or else "default".
pub fn default_name(name: &Option<String>) -> String {
    name.clone()
        .unwrap_or_else(|| match Network::list().as_slice() {
            [only] => only.state().name.clone(),
            _ => "default".into(),
        })
}

pub fn down(args: &DownArgs) -> Result<()> {
    if let Some(inventory) = &args.hosts {
        return down_hosts(args, inventory);
    }
    let name = default_name(&args.name);
    // A run's processes go first (its cgroups), also when its controller was killed.
    let ended = runner::end_run(&name)
        .map_err(|e| anyhow::anyhow!("cannot end the processes of run {name}: {e}"))?;
    if ended {
        crate::output::emit(&format!("processes of run {name} ended\n"))?;
    }
    let msg = if Network::down(&name)? {
        format!("network {name} is down\n")
    } else {
        format!("network {name} was not up; nothing to do\n")
    };
    crate::output::emit(&msg)
}

/// `down --hosts`: `p2plab down NAME` on every host of the inventory.
fn down_hosts(args: &DownArgs, inventory: &std::path::Path) -> Result<()> {
    let Some(name) = &args.name else {
        return Err(crate::exit::bad_input(
            "down --hosts needs the run's name: p2plab down --hosts INVENTORY NAME",
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
