//! `p2plab wrap [--isolation preload|bpf|auto] --ip IP [--ip6 IP6] -- CMD ARGS...`: run one
//! command as a node.

use clap::{Args, ValueEnum};
use launch::wrap::Isolation;
use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Run one unmodified command with its own virtual address.
#[derive(Debug, Args)]
pub struct WrapArgs {
    /// The node's IPv4 address (must be assigned on this machine).
    #[arg(long)]
    ip: Ipv4Addr,
    /// The node's IPv6 address; without it IPv6 sockets use the v4-mapped address.
    #[arg(long)]
    ip6: Option<Ipv6Addr>,
    /// How the command is held to its address.
    #[arg(long, value_enum, default_value_t = IsolationArg::Preload)]
    isolation: IsolationArg,
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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IsolationArg {
    /// The LD_PRELOAD shim (dynamically linked programs, not Go ones; exec'd in place).
    Preload,
    /// Cgroup BPF programs (any program, static and Go ones too; IPv4 only; needs root).
    Bpf,
    /// The shim for programs it reaches, BPF for statically linked and Go programs.
    Auto,
}

/// Runs the command; returns only on failure, else exits with the command's status.
pub fn run(args: WrapArgs) -> anyhow::Result<()> {
    let wrap = launch::wrap::Wrap {
        ip: args.ip,
        ip6: args.ip6,
        shim: args.shim,
        force: args.force,
        command: args.command,
    };
    let isolation = match args.isolation {
        IsolationArg::Preload => Isolation::Preload,
        IsolationArg::Bpf => Isolation::Bpf,
        IsolationArg::Auto => Isolation::Auto,
    };
    let status = launch::wrap::wrap(&wrap, isolation)?;
    std::process::exit(status)
}
