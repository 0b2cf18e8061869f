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
    /// Network name (default: the only network up, or "default").
    pub name: Option<String>,
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
