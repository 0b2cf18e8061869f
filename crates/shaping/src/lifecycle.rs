//! Bringing a network up and down with exact teardown.
//!
//! `up` checks everything it can before changing anything (privilege, name, device, range
//! overlap with other networks, backend support), then writes the state file listing every
//! object it is about to create, then creates them; on failure it rolls back. `down`
//! removes exactly what the state file lists, ignores what is already gone, and so also
//! cleans up after an `up` killed half-way.

use crate::firewall::QueueRules;
use crate::plan::{net, places, plan, Layout};
use ipnet::{Ipv4Net, Ipv4Subnets};
use netctl::probe::Backend;
use netctl::{Field, Host, Object, Op, PacketSize, Parent, QdiscKind};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use topology::LinkModel;

/// Where state files live unless `P2PLAB_RUN_DIR` says otherwise.
pub const DEFAULT_RUN_DIR: &str = "/run/p2plab";
const CAP_NET_ADMIN: u32 = 12;
/// How long a freshly started delay engine must stay up before the rules go in.
const ENGINE_START: Duration = Duration::from_millis(200);

/// A lifecycle failure, one line, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing privilege.
    #[error("p2plab needs CAP_NET_ADMIN to change the network: run it as root (sudo)")]
    NotAdmin,
    /// The name is taken.
    #[error("network {0} is already up; run `p2plab down {0}` first or pick another --name")]
    NameTaken(String),
    /// No such network.
    #[error("no network named {0} is up (see `p2plab status`)")]
    NotUp(String),
    /// Ranges overlap another network's.
    #[error("group {group} ({ours}) overlaps group {theirs_group} ({theirs}) of network {other}; change the prefixes or take {other} down")]
    Overlap {
        /// Our group.
        group: String,
        /// Its prefix.
        ours: String,
        /// The other network.
        other: String,
        /// Its group.
        theirs_group: String,
        /// Its prefix.
        theirs: String,
    },
    /// Something `up` would create is already there.
    #[error(
        "{0} already exists and is not p2plab's; remove it or change the topology's addresses"
    )]
    Exists(String),
    /// Another netem network's group delays hold the device's root qdisc.
    #[error("the group delays of network {other} already use {dev}'s root qdisc; take {other} down, use another --dev, or --shaping nfqueue")]
    RootTaken {
        /// The other network.
        other: String,
        /// The device.
        dev: String,
    },
    /// The device's root qdisc is someone else's.
    #[error("{dev} has a root qdisc of its own ({kind} {handle:x}:) that the netem backend's group delays would replace; delete it (tc qdisc del dev {dev} root) or use --shaping nfqueue")]
    ForeignRoot {
        /// The device.
        dev: String,
        /// The qdisc's kind.
        kind: String,
        /// Its handle's major number.
        handle: u32,
    },
    /// The kernel lacks the backend.
    #[error("shaping backend {0} is not available here: {1}")]
    Backend(Backend, String),
    /// A netlink failure.
    #[error(transparent)]
    Net(#[from] netctl::Error),
    /// The state file could not be read or written.
    #[error("state file {0}: {1}")]
    State(PathBuf, String),
    /// The NFQUEUE rules or the engine failed.
    #[error("{0}")]
    Engine(String),
    /// The placement on this host and the routes to other hosts do not fit together.
    #[error("{0}")]
    Cluster(String),
    /// The device's packet size cannot be set (or kept) for this network: another network
    /// on the device would see it change.
    #[error("{0}")]
    PacketSize(String),
    /// A run-time change cannot be made.
    #[error("{0}")]
    Change(String),
}

/// Which backend `up` should use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shaping {
    /// netem where the kernel has it, else nfqueue.
    Auto,
    /// This one, or an error naming what is missing.
    Force(Backend),
}

/// What one network is, as recorded on disk.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct State {
    /// Network name.
    pub name: String,
    /// Device holding the aliases.
    pub dev: String,
    /// Backend in use.
    pub backend: Backend,
    /// Slot on this host (IFB names, filter priorities, queue number).
    pub slot: u16,
    /// The link model.
    pub model: LinkModel,
    /// Nodes placed on this host (indices into `model.nodes`).
    pub local: Vec<usize>,
    /// Every object `up` creates, in creation order.
    pub objects: Vec<Object>,
    /// Hook devices whose clsact qdisc was there before any p2plab network (never ours to
    /// delete).
    #[serde(default)]
    pub foreign_clsact: Vec<String>,
    /// NFQUEUE rules, if the backend needs them.
    pub rules: Option<QueueRules>,
    /// Pid of the delay engine process.
    pub engine_pid: Option<u32>,
    /// Nodes cut off at run time (indices into `model.nodes`), in the order they were cut.
    #[serde(default)]
    pub cut: Vec<usize>,
    /// Whether `up` finished.
    pub complete: bool,
}

impl State {
    /// Whether this network's filters hook device `dev` (see [`Layout::hook_devs`]).
    fn hooks(&self, dev: &str) -> bool {
        self.layout().hook_devs().iter().any(|d| d == dev)
    }

    /// The layout this network was planned with.
    pub fn layout(&self) -> Layout {
        Layout {
            dev: self.dev.clone(),
            slot: self.slot,
            backend: self.backend,
        }
    }
}

/// Options of `up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Network name.
    pub name: String,
    /// Device for the aliases.
    pub dev: String,
    /// Backend choice.
    pub shaping: Shaping,
    /// Nodes on this host; `None` means all.
    pub local: Option<Vec<usize>>,
    /// Nodes on other hosts, with the address of the host they are on (cluster mode).
    pub routes: Vec<RemoteNodes>,
}

/// Nodes on another host, reached through it.
#[derive(Clone, Debug)]
pub struct RemoteNodes {
    /// How the user named them, for messages (`b`, `a[3-4]`).
    pub what: String,
    /// Their indices into the model's nodes.
    pub nodes: Vec<usize>,
    /// The address of their host.
    pub via: Ipv4Addr,
}

/// The directory holding state files.
pub fn run_dir() -> PathBuf {
    std::env::var_os("P2PLAB_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_RUN_DIR.into())
}

fn state_path(name: &str) -> PathBuf {
    run_dir().join(format!("{name}.json"))
}

/// Every network recorded on this host.
pub fn networks() -> Vec<State> {
    let Ok(dir) = std::fs::read_dir(run_dir()) else {
        return vec![];
    };
    let mut v: Vec<State> = dir
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| load_path(&e.path()).ok())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Loads network `name`'s state.
pub fn load(name: &str) -> Result<State, Error> {
    let p = state_path(name);
    if !p.exists() {
        return Err(Error::NotUp(name.to_string()));
    }
    load_path(&p)
}

fn load_path(p: &Path) -> Result<State, Error> {
    let text = std::fs::read(p).map_err(|e| Error::State(p.into(), e.to_string()))?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::State(p.into(), format!("unreadable ({e}); remove it by hand")))
}

pub(crate) fn save(s: &State) -> Result<(), Error> {
    let dir = run_dir();
    let p = state_path(&s.name);
    let err = |e: std::io::Error| Error::State(p.clone(), e.to_string());
    std::fs::create_dir_all(&dir).map_err(err)?;
    let tmp = dir.join(format!(".{}.json.tmp", s.name));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&serde_json::to_vec(s).map_err(|e| Error::State(p.clone(), e.to_string()))?)
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &p).map_err(err)
}

/// Holds the host-wide p2plab lock (slots and shared qdiscs are decided under it) until
/// the returned file is dropped.
pub(crate) fn lock() -> Result<std::fs::File, Error> {
    let dir = run_dir();
    let p = dir.join(".lock");
    let err = |e: std::io::Error| Error::State(p.clone(), e.to_string());
    std::fs::create_dir_all(&dir).map_err(err)?;
    let f = std::fs::File::create(&p).map_err(err)?;
    // SAFETY: flock on a file descriptor we own; released when the file is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// Whether this process has CAP_NET_ADMIN.
pub fn is_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

fn pick_backend(shaping: Shaping) -> Result<Backend, Error> {
    let caps = crate::engine::probe();
    match shaping {
        Shaping::Auto => caps.pick().map_err(|e| Error::Backend(Backend::Nfqueue, e)),
        Shaping::Force(b) => caps
            .supports(b)
            .map(|_| b)
            .map_err(|e| Error::Backend(b, e)),
    }
}

/// Plans network `opts.name` without touching anything (for `--dry-run`): the state `up`
/// would record. `backend` skips the probe when given.
pub fn prepare(
    model: LinkModel,
    opts: &UpOptions,
    backend: Option<Backend>,
) -> Result<State, Error> {
    let others = networks();
    if others.iter().any(|s| s.name == opts.name) {
        return Err(Error::NameTaken(opts.name.clone()));
    }
    for o in &others {
        if let Some((g, theirs)) = model.overlaps(&o.model) {
            return Err(Error::Overlap {
                group: g.name.clone(),
                ours: g.prefix.to_string(),
                other: o.name.clone(),
                theirs_group: theirs.name.clone(),
                theirs: theirs.prefix.to_string(),
            });
        }
    }
    let backend = match backend {
        Some(b) => b,
        None => pick_backend(opts.shaping)?,
    };
    let used: HashSet<u16> = others.iter().map(|s| s.slot).collect();
    let slot = (0..).find(|k| !used.contains(k)).unwrap_or(0);
    let local = opts
        .local
        .clone()
        .unwrap_or_else(|| (0..model.nodes.len()).collect());
    let layout = Layout {
        dev: opts.dev.clone(),
        slot,
        backend,
    };
    let mut objects = plan(&model, &local, &layout);
    objects.extend(remote_routes(&model, &local, opts)?);
    let rules = (backend == Backend::Nfqueue && model.has_delay_or_loss())
        .then(|| queue_rules(&model, &layout));
    let mut foreign_clsact: Vec<String> = others
        .iter()
        .flat_map(|s| &s.foreign_clsact)
        .filter(|d| layout.hook_devs().contains(d))
        .cloned()
        .collect();
    foreign_clsact.sort_unstable();
    foreign_clsact.dedup();
    refuse_taken_roots(&objects, &others)?;
    Ok(State {
        name: opts.name.clone(),
        dev: opts.dev.clone(),
        backend,
        slot,
        model,
        local,
        objects,
        foreign_clsact,
        rules,
        engine_pid: None,
        cut: vec![],
        complete: false,
    })
}

/// The devices whose root qdisc `objects` create.
fn root_devs(objects: &[Object]) -> Vec<&str> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::Qdisc {
                dev,
                parent: Parent::Root,
                ..
            } => Some(dev.as_str()),
            _ => None,
        })
        .collect()
}

/// The IFB devices `objects` create.
fn ifb_names(objects: &[Object]) -> HashSet<&str> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::Ifb { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// The devices not created by `objects` whose root qdisc they create: the netem backend's
/// pair stages (the IFBs' roots come and go with the IFBs).
pub(crate) fn stage_devs(objects: &[Object]) -> Vec<&str> {
    let ifbs = ifb_names(objects);
    root_devs(objects)
        .into_iter()
        .filter(|d| !ifbs.contains(d))
        .collect()
}

/// Refuses a pair stage in `objects` on a device where one of the `others` networks has
/// its own (one network with group delays per device).
pub(crate) fn refuse_taken_roots(objects: &[Object], others: &[State]) -> Result<(), Error> {
    for dev in stage_devs(objects) {
        if let Some(o) = others
            .iter()
            .find(|s| stage_devs(&s.objects).contains(&dev))
        {
            return Err(Error::RootTaken {
                other: o.name.clone(),
                dev: dev.to_string(),
            });
        }
    }
    Ok(())
}

/// Refuses to replace a root qdisc that someone set up (the kernel's default one has handle
/// 0 and comes back by itself when ours is deleted): `down` would delete it.
pub(crate) fn refuse_foreign_roots(host: &mut Host, objects: &[Object]) -> Result<(), Error> {
    for dev in stage_devs(objects) {
        if let Some(q) = host
            .qdiscs(dev)?
            .into_iter()
            .find(|q| q.root && q.handle != 0)
        {
            return Err(Error::ForeignRoot {
                dev: dev.to_string(),
                kind: q.kind,
                handle: q.handle >> 16,
            });
        }
    }
    Ok(())
}

/// Routes to the nodes on other hosts: every node not on this host must be on exactly one
/// `--route` (no node of this host may be), and each route goes to the prefixes of its
/// nodes: a whole group's prefix, else the fewest prefixes holding exactly their addresses.
fn remote_routes(
    model: &LinkModel,
    local: &[usize],
    opts: &UpOptions,
) -> Result<Vec<Object>, Error> {
    let here: HashSet<usize> = local.iter().copied().collect();
    let mut on: Vec<Option<&RemoteNodes>> = vec![None; model.nodes.len()];
    let mut out = vec![];
    for r in &opts.routes {
        let name = |i: usize| &model.nodes[i].name;
        if let Some(&i) = r.nodes.iter().find(|i| here.contains(i)) {
            return Err(Error::Cluster(format!(
                "--route {}={}: node {} is on this host (--local); route only nodes on other hosts",
                r.what,
                r.via,
                name(i)
            )));
        }
        for &i in &r.nodes {
            if let Some(o) = on[i].replace(r) {
                return Err(Error::Cluster(format!(
                    "--route {}={} and --route {}={} both hold node {}; name each node's host once",
                    o.what,
                    o.via,
                    r.what,
                    r.via,
                    name(i)
                )));
            }
        }
        out.extend(
            prefixes(model, &r.nodes)
                .into_iter()
                .map(|dst| Object::Route {
                    dst: net(dst),
                    via: r.via,
                    dev: opts.dev.clone(),
                }),
        );
    }
    let lost = (0..model.nodes.len()).find(|i| !here.contains(i) && on[*i].is_none());
    if let Some(i) = lost {
        let g = model.nodes[i].group;
        let name = &model.groups[g].name;
        let whole = model
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.group == g)
            .all(|(k, _)| !here.contains(&k) && on[k].is_none());
        return Err(Error::Cluster(if whole {
            format!("group {name} has no node on this host (--local) and no --route {name}=GATEWAY: its nodes would be unreachable")
        } else {
            format!(
                "node {} is neither on this host (--local) nor on a --route: it would be unreachable; add --route {name}[A-B]=GATEWAY for the nodes of {name} on other hosts",
                model.nodes[i].name
            )
        }));
    }
    Ok(out)
}

/// The prefixes holding exactly the addresses of `nodes`: for each group, its prefix when
/// all its nodes are there, else each run of consecutive addresses as aligned blocks.
fn prefixes(model: &LinkModel, nodes: &[usize]) -> Vec<Ipv4Net> {
    let mut out = vec![];
    for (g, group) in model.groups.iter().enumerate() {
        let mut ips: Vec<u32> = nodes
            .iter()
            .map(|&i| &model.nodes[i])
            .filter(|n| n.group == g)
            .map(|n| u32::from(n.ip))
            .collect();
        if ips.is_empty() {
            continue;
        }
        if ips.len() == model.nodes.iter().filter(|n| n.group == g).count() {
            out.push(group.prefix);
            continue;
        }
        ips.sort_unstable();
        ips.dedup();
        let mut k = 0;
        while k < ips.len() {
            let mut end = k;
            while end + 1 < ips.len() && ips[end].checked_add(1) == Some(ips[end + 1]) {
                end += 1;
            }
            out.extend(blocks(ips[k], ips[end]));
            k = end + 1;
        }
    }
    out
}

/// The aligned prefixes that cover exactly `first..=last`, fewest first to last.
fn blocks(first: u32, last: u32) -> Ipv4Subnets {
    Ipv4Subnets::new(first.into(), last.into(), 0)
}

/// Brings a network up. `engine` starts the delay engine for a state that has NFQUEUE
/// rules (output to [`engine_log`]) and returns its pid at once; `up` records the pid
/// before anything else, then checks that the engine stays up. Returns the recorded state.
pub fn up(
    model: LinkModel,
    opts: &UpOptions,
    engine: &dyn Fn(&State) -> Result<u32, String>,
) -> Result<State, Error> {
    if !is_net_admin() {
        return Err(Error::NotAdmin);
    }
    let _lock = lock()?;
    let mut host = Host::open()?;
    if host.link_index(&opts.dev)?.is_none() {
        return Err(netctl::Error::NoDevice(opts.dev.clone()).into());
    }
    let mut state = prepare(model, opts, None)?;
    add_packet_size(&mut state)?;
    refuse_existing(&mut host, &state)?;
    refuse_foreign_roots(&mut host, &state.objects)?;
    for d in state.layout().hook_devs() {
        if host.qdiscs(&d)?.iter().any(|q| q.kind == "clsact") {
            // shared with another network, or someone else's: not ours to create
            if !networks().iter().any(|s| s.hooks(&d)) && !state.foreign_clsact.contains(&d) {
                state.foreign_clsact.push(d.clone());
            }
            state.objects.retain(|o| !(is_clsact(o) && o.dev() == d));
        }
    }
    save(&state)?;
    match create(&mut host, &mut state, engine) {
        Ok(()) => Ok(state),
        Err(e) => {
            // best effort: the state file stays if teardown fails, so `down` can retry
            let _ = teardown(&mut host, &state);
            Err(e)
        }
    }
}

/// Puts first in `state` the packet size its topology asks for (`mtu`: MTU, and GSO no
/// larger, so that queues hold packets of that size) on each device that its nodes'
/// packets pass (see [`Layout::hook_devs`]), with what the device has now, which `down`
/// sets back; nothing for a device that has it already. A device's packet size is every
/// network's on it, so a network that sets it shares that device with no other.
pub fn add_packet_size(state: &mut State) -> Result<(), Error> {
    let devs = state.layout().hook_devs();
    let others: Vec<State> = networks()
        .into_iter()
        .filter(|s| s.name != state.name && devs.iter().any(|d| s.hooks(d)))
        .collect();
    for o in &others {
        let set = o.objects.iter().find_map(|x| match x {
            Object::PacketSize { dev, .. } if devs.contains(dev) => Some(dev),
            _ => None,
        });
        if let Some(dev) = set {
            return Err(Error::PacketSize(format!(
                "network {} set the packet size of {dev} (its topology's mtu); take it down first or use another --dev",
                o.name
            )));
        }
    }
    let Some(mtu) = state.model.mtu else {
        return Ok(());
    };
    let want = PacketSize::plain(mtu);
    let mut host = Host::open()?;
    let mut sizes = vec![];
    for dev in devs {
        let now = host.packet_size(&dev)?;
        if now == want {
            continue;
        }
        if let Some(o) = others.iter().find(|s| s.hooks(&dev)) {
            return Err(Error::PacketSize(format!(
                "mtu {mtu} would change the packets of network {} on {dev} too; take it down first or use another --dev",
                o.name
            )));
        }
        sizes.push(Object::PacketSize {
            dev,
            set: want,
            restore: now,
        });
    }
    state.objects.splice(0..0, sizes);
    Ok(())
}

/// Refuses when an address or device `up` would create is already there: `down` and
/// rollback remove what the state file lists, so nothing listed may predate `up`.
fn refuse_existing(host: &mut Host, state: &State) -> Result<(), Error> {
    let addrs = host.ipv4_addrs()?;
    let links = host.link_names()?;
    for o in &state.objects {
        match o {
            Object::Addr { ip, .. } if addrs.contains(ip) => {
                return Err(Error::Exists(format!("address {ip}")))
            }
            Object::Ifb { name, .. } if links.contains(name) => {
                return Err(Error::Exists(format!("device {name}")))
            }
            _ => {}
        }
    }
    Ok(())
}

fn create(
    host: &mut Host,
    state: &mut State,
    engine: &dyn Fn(&State) -> Result<u32, String>,
) -> Result<(), Error> {
    host.apply(&state.objects, Op::Create)?;
    if let Some(rules) = state.rules.clone() {
        start_engine(state, &rules, engine)?;
    }
    state.complete = true;
    save(state)
}

/// Starts the delay engine of `state` (its pid recorded before anything else), checks that
/// it stays up, then installs `rules` (already recorded in the state file).
pub(crate) fn start_engine(
    state: &mut State,
    rules: &QueueRules,
    engine: &dyn Fn(&State) -> Result<u32, String>,
) -> Result<(), Error> {
    let pid = engine(state).map_err(Error::Engine)?;
    state.engine_pid = Some(pid);
    save(state)?;
    std::thread::sleep(ENGINE_START);
    if !running(pid) {
        let log = std::fs::read_to_string(engine_log(&state.name)).unwrap_or_default();
        return Err(Error::Engine(format!(
            "delay engine exited at start: {}",
            log.trim()
        )));
    }
    rules.add().map_err(Error::Engine)
}

/// The NFQUEUE rules of a network in `slot`: every group prefix to the engine's queue.
pub(crate) fn queue_rules(model: &LinkModel, layout: &Layout) -> QueueRules {
    QueueRules {
        chain: format!("P2PLAB{}", layout.slot),
        queue: layout.queue_num(),
        prefixes: model.groups.iter().map(|g| net(g.prefix)).collect(),
    }
}

fn is_clsact(o: &Object) -> bool {
    matches!(
        o,
        Object::Qdisc {
            kind: QdiscKind::Clsact,
            ..
        }
    )
}

/// The deletions that remove `objects`: IFBs (their trees go with them), root qdiscs (their
/// classes and filters go with them), clsact filters by priority, addresses. The shared
/// clsact qdisc is left to the caller.
pub fn teardown_list(objects: &[Object]) -> Vec<Object> {
    let ifbs = ifb_names(objects);
    let roots: HashSet<&str> = root_devs(objects).into_iter().collect();
    let mut seen = HashSet::new();
    objects
        .iter()
        .filter(|o| match o {
            Object::Ifb { .. } => true,
            o if ifbs.contains(o.dev()) => false,
            Object::Qdisc {
                parent: Parent::Root,
                ..
            } => true,
            Object::Qdisc {
                kind: QdiscKind::Clsact,
                ..
            } => false,
            Object::Qdisc { .. } | Object::HtbClass { .. } => !roots.contains(o.dev()),
            Object::Filter {
                dev, parent, prio, ..
            } => {
                !(roots.contains(dev.as_str()) && matches!(parent, Parent::Of(_)))
                    && seen.insert((dev.clone(), *parent, *prio))
            }
            Object::Addr { .. } | Object::Route { .. } | Object::PacketSize { .. } => true,
        })
        .cloned()
        .collect()
}

fn teardown(host: &mut Host, state: &State) -> Result<(), Error> {
    if let Some(pid) = state.engine_pid {
        stop_engine(pid, &state.name);
    }
    if let Some(r) = &state.rules {
        r.remove().map_err(Error::Engine)?;
    }
    host.apply(&teardown_list(&state.objects), Op::Delete)?;
    let others = networks();
    for d in state.layout().hook_devs() {
        let shared = others.iter().any(|s| s.name != state.name && s.hooks(&d));
        if !shared && !state.foreign_clsact.contains(&d) {
            host.apply(&[Object::clsact(&d)], Op::Delete)?;
        }
    }
    let p = state_path(&state.name);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::State(p, e.to_string())),
        _ => Ok(()),
    }
}

/// Whether process `pid` is the delay engine of network `name` (pids get reused).
pub(crate) fn is_engine(pid: u32, name: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.contains(&&b"engine"[..]) && args.contains(&name.as_bytes())
        })
        .unwrap_or(false)
}

/// Stops the engine if `pid` is still our engine for `name`.
fn stop_engine(pid: u32, name: &str) {
    let ours = || is_engine(pid, name);
    if !ours() {
        return;
    }
    // SAFETY: kill(2) on a pid we verified runs our engine.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let start = Instant::now();
    while ours() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if ours() {
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// Takes network `name` down. `Ok(false)` if it was not up (down is idempotent).
pub fn down(name: &str) -> Result<bool, Error> {
    if !is_net_admin() {
        return Err(Error::NotAdmin);
    }
    let _lock = lock()?;
    let state = match load(name) {
        Ok(s) => s,
        Err(Error::NotUp(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    teardown(&mut Host::open()?, &state)?;
    Ok(true)
}

/// Counters of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCounters {
    /// Node name.
    pub name: String,
    /// Address.
    pub ip: std::net::Ipv4Addr,
    /// Upload class: bytes, packets, drops.
    pub up: netctl::ClassStats,
    /// Download class: bytes, packets, drops.
    pub down: netctl::ClassStats,
}

/// Per-node counters of network `state`, from its class statistics.
pub fn counters(state: &State) -> Result<Vec<NodeCounters>, Error> {
    let mut host = Host::open()?;
    let layout = state.layout();
    let places = places(&state.model, &state.local);
    let ncells = places.iter().map(|p| p.cell + 1).max().unwrap_or(0);
    let mut stats = |field| -> Result<Vec<Vec<netctl::ClassStats>>, Error> {
        (0..ncells)
            .map(|c| Ok(host.class_stats(&layout.ifb(field, c))?))
            .collect()
    };
    let (up, down) = (stats(Field::Src)?, stats(Field::Dst)?);
    let find = |v: &[netctl::ClassStats], p: &crate::plan::Place| {
        v.iter()
            .find(|c| c.classid == p.class.0)
            .copied()
            .unwrap_or_default()
    };
    Ok(state
        .local
        .iter()
        .zip(&places)
        .map(|(&i, p)| NodeCounters {
            name: state.model.nodes[i].name.clone(),
            ip: state.model.nodes[i].ip,
            up: find(&up[p.cell], p),
            down: find(&down[p.cell], p),
        })
        .collect())
}

/// Whether the engine of `state` (if it has one) is running.
pub fn engine_alive(state: &State) -> Option<bool> {
    state.engine_pid.map(running)
}

/// Why the network of `state` no longer emulates its topology: its delay engine exited
/// (packets to the virtual prefixes then wait in the queue forever), with the engine's last
/// words from its log.
pub fn engine_failure(state: &State) -> Option<String> {
    if engine_alive(state)? {
        return None;
    }
    let log = std::fs::read_to_string(engine_log(&state.name)).unwrap_or_default();
    let last = log.lines().last().unwrap_or("no message");
    Some(format!(
        "the delay engine of network {} exited ({last}); see {}",
        state.name,
        engine_log(&state.name).display()
    ))
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
        })
        .unwrap_or(false)
}

/// Where the delay engine of network `name` writes its output.
pub fn engine_log(name: &str) -> PathBuf {
    run_dir().join(format!("{name}.engine.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: impl IntoIterator<Item = Ipv4Net>) -> Vec<String> {
        v.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_run_of_addresses_becomes_the_fewest_aligned_prefixes() {
        let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            text(blocks(ip("10.1.0.3"), ip("10.1.0.12"))),
            ["10.1.0.3/32", "10.1.0.4/30", "10.1.0.8/30", "10.1.0.12/32"]
        );
        assert_eq!(
            text(blocks(ip("10.1.0.0"), ip("10.1.1.255"))),
            ["10.1.0.0/23"]
        );
        assert_eq!(
            text(blocks(ip("10.1.0.7"), ip("10.1.0.7"))),
            ["10.1.0.7/32"]
        );
        assert_eq!(text(blocks(0, u32::MAX)), ["0.0.0.0/0"]);
        assert_eq!(text(blocks(0, 0)), ["0.0.0.0/32"]);
        assert_eq!(text(blocks(0, 2)), ["0.0.0.0/31", "0.0.0.2/32"]);
        assert_eq!(
            text(blocks(u32::MAX - 2, u32::MAX)),
            ["255.255.255.253/32", "255.255.255.254/31"]
        );
    }

    #[test]
    fn a_whole_group_is_its_prefix_and_part_of_one_its_addresses() {
        // group 0: 10.1.0.1-20, group 1: 10.2.0.1-20, group 2: 10.3.0.1-20
        let m = LinkModel::uniform(3, 20, 1_000_000, 1_000_000, 0);
        let node = |g: usize, k: usize| g * 20 + k - 1;
        let group_1: Vec<usize> = (1..=20).map(|k| node(1, k)).collect();
        assert_eq!(text(prefixes(&m, &group_1)), ["10.2.0.0/16"]);
        assert_eq!(
            text(prefixes(&m, &[node(1, 2), node(1, 3)])),
            ["10.2.0.2/31"]
        );
        assert_eq!(
            text(prefixes(&m, &[node(1, 3), node(1, 4)])),
            ["10.2.0.3/32", "10.2.0.4/32"]
        );
        // runs end where an address is missing; the groups come in order, each whole or not
        let mut mixed: Vec<usize> = (4..=11)
            .chain([13, 14, 15, 20])
            .map(|k| node(2, k))
            .collect();
        mixed.extend((1..=20).map(|k| node(0, k)));
        mixed.push(node(2, 1));
        assert_eq!(
            text(prefixes(&m, &mixed)),
            [
                "10.1.0.0/16",
                "10.3.0.1/32",
                "10.3.0.4/30",
                "10.3.0.8/30",
                "10.3.0.13/32",
                "10.3.0.14/31",
                "10.3.0.20/32"
            ]
        );
    }
}
