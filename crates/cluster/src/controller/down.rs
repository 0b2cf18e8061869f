//! `p2plab down --hosts INVENTORY NAME`: cleans every host of a cluster run after any
//! crash, `kill -9` of the controller included. On each host (all at once), as root, the
//! controller's own `p2plab` (copied if the host lacks it) runs `p2plab down NAME`, which
//! ends the run's processes (its cgroups) and removes exactly what its network's state
//! file lists; an agent still alive stops by itself when its controller's channel closes.
//! Each host's results stay in its run directory.

use super::deploy::{as_root, on_every_host, work_dir};
use crate::inventory::HostEntry;
use crate::ssh::{Session, SshConfig};

/// What `down` did on each host: its output, or why it could not.
pub fn down(hosts: &[HostEntry], ssh: &SshConfig, name: &str) -> Vec<Result<String, String>> {
    let p2plab = std::env::current_exe();
    on_every_host(hosts, ssh, |session, host| {
        let p2plab = p2plab
            .as_ref()
            .map_err(|e| format!("cannot find the p2plab binary: {e}"))?;
        down_one(&session, host, p2plab, name)
    })
}

fn down_one(
    session: &Session,
    host: &HostEntry,
    p2plab: &std::path::Path,
    name: &str,
) -> Result<String, String> {
    let sudo = as_root(session, host)?;
    let (bin, _) = session
        .install(p2plab, &format!("{}/bin", work_dir()))
        .map_err(|e| e.to_string())?;
    let out = session
        .exec(&format!(
            "{sudo}{bin} down --name '{}'",
            name.replace('\'', "")
        ))
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "`p2plab down --name {name}` failed (status {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
