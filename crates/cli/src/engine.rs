//! `p2plab engine`, hidden: the delay engine process that `shaping` starts for a network
//! of the nfqueue backend; all of it is in `shaping`.

use anyhow::Result;
use clap::Args;

/// Run the NFQUEUE delay engine of a network (started by `up`).
#[derive(Args)]
pub struct EngineArgs {
    /// Network name.
    #[arg(long)]
    pub name: String,
}

pub fn engine(args: &EngineArgs) -> Result<()> {
    shaping::run_engine(&args.name).map_err(anyhow::Error::msg)
}
