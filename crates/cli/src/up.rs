//! `p2plab up`: parses the topology, `--local` and `--route` into the options of
//! `shaping::Network::up`, and brings the network up or, with `--dry-run`, prints the
//! commands it would run.

use anyhow::Result;
use clap::{Args, ValueEnum};
use shaping::{engine_args, Backend, Network, RemoteNodes, Shaping, State, UpOptions};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Bring a topology up on this host: address aliases, rate shaping, delay and loss.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab up topologies/quickstart.yaml\n  p2plab up topologies/quickstart.yaml --name lab2 --dry-run\n  # one host of two: group east here, west on the host at 192.168.1.12\n  p2plab up topologies/quickstart.yaml --dev eth0 --local east --route west=192.168.1.12\n  # a group split over two hosts\n  p2plab up topologies/quickstart.yaml --dev eth0 --local 'east[1-5]' --route 'east[6-10],west=192.168.1.12'"
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
    /// The backend choice this value asks for.
    pub fn choice(self) -> Shaping {
        match self {
            ShapingArg::Auto => Shaping::Auto,
            ShapingArg::Netem => Shaping::Force(Backend::Netem),
            ShapingArg::Nfqueue => Shaping::Force(Backend::Nfqueue),
        }
    }

    /// The value as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ShapingArg::Auto => "auto",
            ShapingArg::Netem => "netem",
            ShapingArg::Nfqueue => "nfqueue",
        }
    }
}

pub fn up(args: &UpArgs) -> Result<()> {
    let plan = crate::topo::load(&args.topology, "up")?;
    let opts = UpOptions {
        name: args.name.clone(),
        dev: args.dev.clone(),
        shaping: args.shaping.choice(),
        local: local_nodes(&plan, &args.local, &args.topology)?,
        routes: remote_nodes(&plan, &args.routes)?,
        engine: Default::default(),
    };
    if args.dry_run {
        let backend = match opts.shaping {
            Shaping::Force(b) => Some(b),
            Shaping::Auto if !shaping::is_net_admin() => Some(Backend::Nfqueue),
            Shaping::Auto => None,
        };
        let state = Network::prepare(plan.link, &opts, backend)?;
        return crate::output::emit(&dry_run(&state));
    }
    let network = Network::up(plan.link, &opts)?;
    let state = network.state();
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
    let mut nodes = topology::select::select(&plan.link, &terms).map_err(|e| {
        crate::exit::bad_input(format!(
            "--local {} ({}): {e}",
            terms.join(","),
            file.display()
        ))
    })?;
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
            let nodes = topology::select::select(&plan.link, &terms)
                .map_err(|e| crate::exit::bad_input(format!("--route {what}={via}: {e}")))?;
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
        s += &engine_model(state);
        let _ = writeln!(
            s,
            "p2plab {} &  # delay engine on NFQUEUE {}",
            engine_args(&state.name).join(" "),
            r.queue
        );
        for c in r.commands() {
            let _ = writeln!(s, "{c}");
        }
    }
    s
}

/// The delay engine's model as `#` comments: the nfqueue backend's delays and losses are
/// in the engine, not in any command.
fn engine_model(state: &State) -> String {
    let m = &state.model;
    let pct = |p: f64| format!("{}%", p * 100.0);
    let mut s = String::from(
        "# the delay engine's model: a packet from s to d is held L(s) + G(a,b) + L(d) and lost\n# with 1 - (1-p(s))(1-q(a,b))(1-p(d)), a and b the groups of s and d\n# group pair (a -> b): delay G(a,b), loss q(a,b)\n",
    );
    for (a, ga) in m.groups.iter().enumerate() {
        for (b, gb) in m.groups.iter().enumerate() {
            let _ = writeln!(
                s,
                "#   {} -> {}: delay {}, loss {}",
                ga.name,
                gb.name,
                topology::format_time_us(m.group_delay_us(a, b)),
                pct(m.group_loss(a, b))
            );
        }
    }
    s += "# node (address): latency L, loss p\n";
    for &i in &state.local {
        let n = &m.nodes[i];
        let _ = writeln!(
            s,
            "#   {} ({}): latency {}, loss {}",
            n.name,
            n.ip,
            topology::format_time_us(n.latency_us),
            pct(n.loss)
        );
    }
    s
}
