//! `p2plab wrap [--isolation preload|bpf|auto] --ip IP [--ip6 IP6] -- CMD ARGS...`: run one
//! command as a node; and
//! `p2plab exec NODE -- CMD ARGS...`: the same with the address of a node of a network that
//! is up, looked up by its name.

use clap::{Args, ValueEnum};
use launch::wrap::Isolation;
use shaping::Network;
use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Run one unmodified command with its own virtual address.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  p2plab wrap --ip 10.10.0.1 -- curl http://10.10.0.2:8080/\n\n`p2plab exec NODE -- CMD` does the same with a node of a network that is up, by name."
)]
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
    #[command(flatten)]
    common: Wrapped,
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

/// What `wrap` and `exec` have in common: the shim and the command.
#[derive(Debug, Args)]
pub struct Wrapped {
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

/// Run a command as a node of a network that is up (the shim and its address, by name).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  p2plab exec east-1 -- curl http://10.10.0.12:8080/\n  p2plab exec --name swarm west-2 -- sh -c 'ss -tn'   # a node of a running run"
)]
pub struct ExecArgs {
    /// The node (its name in the network).
    node: String,
    #[command(flatten)]
    net: crate::down::NetName,
    #[command(flatten)]
    common: Wrapped,
}

/// Runs `common`'s command as the node at `ip`, held there by `isolation`; returns only on
/// failure, else exits with the command's status.
fn wrap_as(
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    isolation: Isolation,
    common: Wrapped,
) -> anyhow::Result<()> {
    let wrap = launch::wrap::Wrap {
        ip,
        ip6,
        shim: common.shim,
        force: common.force,
        command: common.command,
    };
    let status = launch::wrap::wrap(&wrap, isolation)?;
    std::process::exit(status)
}

/// Runs the command; returns only on failure.
pub fn run(args: WrapArgs) -> anyhow::Result<()> {
    let isolation = match args.isolation {
        IsolationArg::Preload => Isolation::Preload,
        IsolationArg::Bpf => Isolation::Bpf,
        IsolationArg::Auto => Isolation::Auto,
    };
    wrap_as(args.ip, args.ip6, isolation, args.common)
}

/// Execs the command as node `args.node`; returns only on failure.
pub fn exec(args: ExecArgs) -> anyhow::Result<()> {
    let name = crate::down::required(args.net.name.as_deref(), "exec")?;
    let network = Network::open(&name)?;
    let node = crate::probe::node(&network, &args.node)?;
    wrap_as(
        network.state().model.nodes[node].ip,
        None,
        Isolation::Preload,
        args.common,
    )
}
