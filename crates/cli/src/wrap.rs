//! `p2plab wrap --ip IP [--ip6 IP6] -- CMD ARGS...`: run one command as a node.

use clap::Args;
use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Run one unmodified, dynamically linked command with its own virtual address.
#[derive(Debug, Args)]
pub struct WrapArgs {
    /// The node's IPv4 address (must be assigned on this machine).
    #[arg(long)]
    ip: Ipv4Addr,
    /// The node's IPv6 address; without it IPv6 sockets use the v4-mapped address.
    #[arg(long)]
    ip6: Option<Ipv6Addr>,
    /// The shim library [default: $P2PLAB_SHIM, else libp2plab_shim.so beside p2plab].
    #[arg(long, value_name = "PATH")]
    shim: Option<PathBuf>,
    /// Run even if the addresses are not assigned on this machine.
    #[arg(long)]
    force: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Execs the command; returns only on failure.
pub fn run(args: WrapArgs) -> anyhow::Result<()> {
    let wrap = launch::wrap::Wrap {
        ip: args.ip,
        ip6: args.ip6,
        shim: args.shim,
        force: args.force,
        command: args.command,
    };
    Err(launch::wrap::wrap(&wrap).into())
}
