//! Bringing a network up and down with exact teardown.
//!
//! `up` checks everything it can before changing anything (privilege, name, device, range
//! overlap with other networks, backend support), then writes the state file listing every
//! object it is about to create, then creates them; on failure it rolls back. `down`
//! removes exactly what the state file lists, ignores what is already gone, and so also
//! cleans up after an `up` killed half-way.

use crate::backend::{is_net_admin, pick_backend, Shaping};
use crate::engine::{engine_log, start_engine, stop_engine, EngineBinary};
use crate::error::Error;
use crate::firewall::QueueRules;
use crate::objects::{objects, pair_classes, Layout};
use crate::packet_size::add_packet_size;
use crate::routes::{remote_routes, RemoteNodes};
use crate::state::{load, lock, networks, remove, remove_run_dir_if_empty, save, State};
use netctl::probe::Backend;
use netctl::{Host, Object, Op, Parent, QdiscKind};
use std::collections::HashSet;
use topology::LinkModel;

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
    /// The p2plab binary that runs the network's delay engine, if it needs one.
    pub engine: EngineBinary,
}

/// Plans network `opts.name` without touching anything (for `--dry-run`): the state `up`
/// would record. `backend` skips the probe when given.
pub(crate) fn prepare(
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
    let mut objects = objects(&model, &local, &layout);
    objects.extend(remote_routes(&model, &local, &opts.routes, &opts.dev)?);
    let rules = (backend == Backend::Nfqueue && model.has_delay_or_loss())
        .then(|| QueueRules::of(&model, &layout));
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
        pair_classes: pair_classes(&model, &local, &layout),
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

/// Brings a network up. For a state that has NFQUEUE rules, `opts.engine` runs the delay
/// engine; `up` records its pid before anything else, then checks that the engine stays
/// up. Returns the recorded state.
pub(crate) fn up(model: LinkModel, opts: &UpOptions) -> Result<State, Error> {
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
    match create(&mut host, &mut state, &opts.engine) {
        Ok(()) => Ok(state),
        Err(e) => {
            // best effort: the state file stays if teardown fails, so `down` can retry
            let _ = teardown(&mut host, &state);
            Err(e)
        }
    }
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

/// Creates the objects of `state` (recorded before), then its delay engine and NFQUEUE
/// rules, and records it complete.
fn create(host: &mut Host, state: &mut State, engine: &EngineBinary) -> Result<(), Error> {
    host.apply(&state.objects, Op::Create)?;
    if let Some(rules) = state.rules.clone() {
        start_engine(state, &rules, engine)?;
    }
    state.complete = true;
    save(state)
}

/// Whether `o` is a clsact qdisc (the hooks' qdisc, which networks share).
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
    // an engine that had ended by itself keeps its log (it says why), and so the directory
    let engine_ended = state
        .engine_pid
        .is_some_and(|pid| !stop_engine(pid, &state.name));
    if let Some(r) = &state.rules {
        r.remove().map_err(Error::Rules)?;
    }
    host.apply(&teardown_list(&state.objects), Op::Delete)?;
    let others = networks();
    for d in state.layout().hook_devs() {
        let shared = others.iter().any(|s| s.name != state.name && s.hooks(&d));
        if !shared && !state.foreign_clsact.contains(&d) {
            host.apply(&[Object::clsact(&d)], Op::Delete)?;
        }
    }
    remove(&state.name)?;
    if !engine_ended {
        let _ = std::fs::remove_file(engine_log(&state.name));
    }
    remove_run_dir_if_empty();
    Ok(())
}

/// Takes network `name` down. `Ok(false)` if it was not up (down is idempotent).
pub(crate) fn down(name: &str) -> Result<bool, Error> {
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
