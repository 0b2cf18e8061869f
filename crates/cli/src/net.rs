//! `p2plab up`, `down`, `status`, `doctor` and the internal `engine`: keep an emulated
//! network standing on this host (`change` lives in its own module). Parses arguments and
//! calls the `shaping` crate.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use shaping::lifecycle::{self, RemoteNodes, Shaping, State, UpOptions};
use shaping::Backend;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Bring a topology up on this host: address aliases, rate shaping, delay and loss.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab up topologies/quickstart.yaml\n  p2plab up topologies/quickstart.yaml --name lab2 --dry-run\n  # one host of two: groups a here, b on the host at 192.168.1.12\n  p2plab up t.yaml --dev eth0 --local a --route b=192.168.1.12\n  # a group split over two hosts\n  p2plab up t.yaml --dev eth0 --local 'a[1-250]' --route 'a[251-500]'=192.168.1.12"
)]
pub struct UpArgs {
    /// The topology file (YAML).
    pub topology: PathBuf,
    /// Name of the network (several with disjoint ranges can be up at once).
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Device that carries the virtual addresses (on a cluster host, the interface the
    /// other hosts are reached through).
    #[arg(long, default_value = "lo")]
    pub dev: String,
    /// Nodes that run on this host: groups, nodes or `group[A-B]` ranges, comma-separated
    /// (default: every node).
    #[arg(long, value_delimiter = ',')]
    pub local: Vec<String>,
    /// Nodes on another host and that host's address, NODES=GATEWAY (NODES as for
    /// --local); every node not on this host needs one.
    #[arg(long = "route", value_name = "NODES=GATEWAY", value_parser = parse_route)]
    pub routes: Vec<(String, std::net::Ipv4Addr)>,
    /// Shaping backend.
    #[arg(long, value_enum, default_value_t = ShapingArg::Auto)]
    pub shaping: ShapingArg,
    /// Print the equivalent `ip`/`tc`/`iptables` commands instead of changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--shaping` values.
#[derive(Clone, Copy, ValueEnum)]
pub enum ShapingArg {
    /// netem if the kernel has it, else nfqueue.
    Auto,
    /// Kernel netem for delay and loss.
    Netem,
    /// The userspace NFQUEUE engine for delay and loss.
    Nfqueue,
}

impl ShapingArg {
    pub fn choice(self) -> Shaping {
        match self {
            ShapingArg::Auto => Shaping::Auto,
            ShapingArg::Netem => Shaping::Force(Backend::Netem),
            ShapingArg::Nfqueue => Shaping::Force(Backend::Nfqueue),
        }
    }
}

/// Take a network down: removes exactly what `up` created.
#[derive(Args)]
#[command(
    after_help = "Example:\n  p2plab down lab2\n\nAlso cleans up after an `up` that failed or was killed half-way; running it twice is harmless."
)]
pub struct DownArgs {
    /// Network name (default: the only network up, or "default").
    pub name: Option<String>,
}

/// Show the networks that are up, or one network's per-node counters.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab status\n  p2plab status lab2   # bytes, packets and drops per node, upload and download"
)]
pub struct StatusArgs {
    /// Network name; without it, list all networks.
    pub name: Option<String>,
}

/// Probe what this kernel can do and which shaping backend `up` will use.
#[derive(Args)]
#[command(
    after_help = "Example:\n  sudo p2plab doctor\n\nEvery probe runs in a scratch network namespace: nothing on this host changes."
)]
pub struct DoctorArgs {}

/// Run the NFQUEUE delay engine of a network (started by `up`).
#[derive(Args)]
pub struct EngineArgs {
    /// Network name.
    #[arg(long)]
    pub name: String,
}

pub fn up(args: &UpArgs) -> Result<()> {
    let plan = crate::topo::load(&args.topology)?;
    let opts = UpOptions {
        name: args.name.clone(),
        dev: args.dev.clone(),
        shaping: args.shaping.choice(),
        local: local_nodes(&plan, &args.local, &args.topology)?,
        routes: remote_nodes(&plan, &args.routes)?,
    };
    if args.dry_run {
        let backend = match opts.shaping {
            Shaping::Force(b) => Some(b),
            Shaping::Auto if !lifecycle::is_net_admin() => Some(Backend::Nfqueue),
            Shaping::Auto => None,
        };
        let mut state = lifecycle::prepare(plan.link, &opts, backend)?;
        lifecycle::add_packet_size(&mut state)?;
        return crate::output::emit(&dry_run(&state));
    }
    let state = shaping::up(plan.link, &opts, &shaping::engine::spawn)?;
    crate::output::emit(&format!(
        "network {} is up: {} nodes on {}, backend {}, {} kernel objects\n",
        state.name,
        state.local.len(),
        state.dev,
        state.backend,
        state.objects.len()
    ))
}

/// `NODES=GATEWAY` of `--route`.
fn parse_route(s: &str) -> Result<(String, std::net::Ipv4Addr), String> {
    let (nodes, gw) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NODES=GATEWAY, e.g. b=192.168.1.12"))?;
    let gw = gw
        .parse()
        .map_err(|_| format!("`{gw}` in `{s}` is not an IPv4 address"))?;
    Ok((nodes.to_string(), gw))
}

/// The nodes of `--local` (`None`: every node).
fn local_nodes(
    plan: &topology::Plan,
    terms: &[String],
    file: &std::path::Path,
) -> Result<Option<Vec<usize>>> {
    if terms.is_empty() {
        return Ok(None);
    }
    let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
    let mut nodes = experiment::select(plan, &terms)
        .map_err(|e| anyhow::anyhow!("--local {} ({}): {e}", terms.join(","), file.display()))?;
    nodes.sort_unstable();
    Ok(Some(nodes))
}

/// The nodes of each `--route`.
fn remote_nodes(
    plan: &topology::Plan,
    routes: &[(String, std::net::Ipv4Addr)],
) -> Result<Vec<RemoteNodes>> {
    routes
        .iter()
        .map(|(what, via)| {
            let terms: Vec<&str> = what.split(',').collect();
            let nodes = experiment::select(plan, &terms)
                .map_err(|e| anyhow::anyhow!("--route {what}={via}: {e}"))?;
            Ok(RemoteNodes {
                what: what.clone(),
                nodes,
                via: *via,
            })
        })
        .collect()
}

fn dry_run(state: &State) -> String {
    let mut s = format!(
        "# network {}: {} nodes on {}, backend {}\n",
        state.name,
        state.local.len(),
        state.dev,
        state.backend
    );
    for o in &state.objects {
        let _ = writeln!(s, "{o}");
    }
    if let Some(r) = &state.rules {
        let _ = writeln!(
            s,
            "p2plab engine --name {} &  # delay engine on NFQUEUE {}",
            state.name, r.queue
        );
        for c in r.commands() {
            let _ = writeln!(s, "{c}");
        }
    }
    s
}

pub fn default_name(name: &Option<String>) -> String {
    name.clone()
        .unwrap_or_else(|| match lifecycle::networks().as_slice() {
            [only] => only.name.clone(),
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
    let msg = if shaping::down(&name)? {
        format!("network {name} is down\n")
    } else {
        format!("network {name} was not up; nothing to do\n")
    };
    crate::output::emit(&msg)
}

pub fn status(args: &StatusArgs) -> Result<()> {
    let Some(name) = &args.name else {
        let mut s = format!(
            "{:<16} {:<8} {:<8} {:>6}  state\n",
            "NAME", "DEV", "BACKEND", "NODES"
        );
        for n in lifecycle::networks() {
            let state = match (n.complete, lifecycle::engine_alive(&n)) {
                (false, _) => "incomplete (run `p2plab down` to clean up)",
                (true, Some(false)) => "up, delay engine NOT running",
                (true, _) => "up",
            };
            let _ = writeln!(
                s,
                "{:<16} {:<8} {:<8} {:>6}  {state}",
                n.name,
                n.dev,
                n.backend,
                n.local.len()
            );
        }
        return crate::output::emit(&s);
    };
    let state = lifecycle::load(name)?;
    let mut s = format!(
        "network {}: {} nodes on {}, backend {}{}{}\n{:<16} {:<15} {:>12} {:>9} {:>7} {:>12} {:>9} {:>7}\n",
        state.name,
        state.local.len(),
        state.dev,
        state.backend,
        match lifecycle::engine_alive(&state) {
            Some(false) => ", delay engine NOT running",
            _ => "",
        },
        if state.cut.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = state
                .cut
                .iter()
                .map(|&i| state.model.nodes[i].name.as_str())
                .collect();
            format!(", cut off: {}", names.join(" "))
        },
        "NODE",
        "IP",
        "UP_BYTES",
        "UP_PKTS",
        "UP_DROP",
        "DOWN_BYTES",
        "DOWN_PKTS",
        "DN_DROP"
    );
    for c in lifecycle::counters(&state)? {
        let _ = writeln!(
            s,
            "{:<16} {:<15} {:>12} {:>9} {:>7} {:>12} {:>9} {:>7}",
            c.name,
            c.ip,
            c.up.bytes,
            c.up.packets,
            c.up.drops,
            c.down.bytes,
            c.down.packets,
            c.down.drops
        );
    }
    crate::output::emit(&s)
}

pub fn doctor(_: &DoctorArgs) -> Result<()> {
    if !lifecycle::is_net_admin() {
        bail!("p2plab doctor probes in a scratch network namespace and needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run it with sudo");
    }
    let caps = shaping::engine::probe();
    let line = |what: &str, c: &netctl::probe::Check| match c {
        Ok(()) => format!("  {what:<28} yes\n"),
        Err(e) => format!("  {what:<28} NO: {e}\n"),
    };
    let mut s = String::from("kernel features (tried in a scratch namespace):\n");
    s += &line("HTB qdisc and classes", &caps.htb);
    s += &line("IFB devices", &caps.ifb);
    s += &line("clsact + u32 + mirred", &caps.clsact_mirred);
    s += &line("u32 hash tables", &caps.u32_hash);
    s += &line("netem (sch_netem)", &caps.netem);
    s += &line("NFQUEUE rule and queue bind", &caps.nfqueue);
    match cgroup::Hierarchies::detect() {
        Ok(h) => {
            let _ = writeln!(s, "{}", h.describe());
        }
        Err(e) => {
            let _ = writeln!(s, "cgroups: cannot read /proc/self/mountinfo: {e}");
        }
    }
    match caps.pick() {
        Ok(b) => {
            let _ = writeln!(s, "`p2plab up` will use the {b} backend");
            for other in [Backend::Netem, Backend::Nfqueue] {
                if let Err(e) = caps.supports(other) {
                    let _ = writeln!(s, "for the {other} backend: {e}");
                }
            }
        }
        Err(e) => {
            let _ = writeln!(s, "no shaping backend works here: {e}");
        }
    }
    crate::output::emit(&s)
}

pub fn engine(args: &EngineArgs) -> Result<()> {
    shaping::engine::run(&args.name).map_err(anyhow::Error::msg)
}
