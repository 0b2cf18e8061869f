//! `p2plab agent`, hidden: the per-host agent of a cluster run, started by the controller
//! over SSH; all of it is in `cluster::agent`. The protocol keeps the process's stdout to
//! itself: file descriptor 1 is pointed at stderr first, so that nothing else the process
//! prints can break a protocol line.

use anyhow::{Context, Result};
use clap::Args;
use std::os::fd::{AsFd, OwnedFd};

/// Run this host's share of a cluster run, speaking to the controller on stdin and stdout.
#[derive(Args)]
pub struct AgentArgs {}

pub fn agent(_: &AgentArgs) -> Result<()> {
    let protocol: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot keep the protocol's output")?;
    nix::unistd::dup2_stdout(std::io::stderr()).context("cannot point stdout at stderr")?;
    let status = cluster::agent::serve(
        std::io::BufReader::new(std::io::stdin()),
        std::fs::File::from(protocol),
    );
    if status == 0 {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the agent ended without finishing its run"))
    }
}
