//! Changes to a network while it is up: new link parameters for nodes, a new delay or loss
//! for a group pair, cutting nodes off and restoring them.
//!
//! Like `up`, a change is first written to the state file (the model, the cut nodes and
//! every kernel object as it will be), then made. Rates: the nodes' HTB classes get new
//! parameters (`tc class change`, burst and quantum as `up` computes them). Delay and
//! loss: with the netem backend the nodes' netem leaves (`L(v)`, `p(v)`) or the pair's
//! netem leaf in the device's pair stage (`G(a,b)`, `q(a,b)`) change, a pair without a class
//! yet gets one (and a network without a pair stage gets one); with the nfqueue backend the
//! delay engine re-reads the model on SIGHUP (a network brought up without delay or loss
//! gets its engine and NFQUEUE rules now). Cut: both of a node's classes get a leaf that
//! drops every packet (`pfifo limit 0`, grafted with `tc qdisc replace`), so nothing is
//! created outside the network's IFB trees and `down` needs nothing more; restore grafts
//! the node's own leaf back, with the current parameters.
//!
//! On a cluster host (the state holds only some nodes) every host makes every change, and
//! each does what its own objects need. Every host's model changes (its delay engine holds
//! packets from any node for `L(s) + G(a,b) + L(d)`). A node's classes and leaves, and so
//! its rates, `L(v)`, `p(v)` and its cut, are on its own host only. A pair's `G(a,b)` and
//! `q(a,b)` (netem) are in the pair stages of the hosts with nodes of group a. A node is
//! cut off by its own host alone: every packet it sends passes its upload class there and
//! every packet to it its download class there, wherever the other end is, so its two
//! dropping leaves cut all its traffic; another host has nothing to do (its nodes' packets
//! to the cut node leave as usual and are dropped on arrival, as on one host, where they
//! pass the sender's upload class first too) and records nothing (`State::cut` lists this
//! host's cut nodes).

use crate::backend::is_net_admin;
use crate::engine::{self, start_engine, EngineBinary};
use crate::error::Error;
use crate::firewall::QueueRules;
use crate::objects::{
    leaf_handle, local_groups, netem_leaf, node_classes, pair_leaf, pair_stage, rate_of,
    stage_pairs, PairHash,
};
use crate::state::{load, lock, networks, save, State};
use crate::updown::{refuse_foreign_roots, refuse_taken_roots, stage_devs};
use netctl::probe::Backend;
use netctl::{Field, Handle, Host, Object, Op, Parent, QdiscKind};
use topology::NetChange;

/// The kernel side of a change: objects and what to do with them, in order.
type Steps = Vec<(Op, Object)>;

/// Applies `change` to network `name` (its node and group indices are into the model;
/// nodes not placed on this host change only in the model); `engine` runs a delay engine
/// when a nfqueue network that had none needs one (as for `up`). Returns the state as
/// recorded.
pub(crate) fn apply(name: &str, change: &NetChange, engine: &EngineBinary) -> Result<State, Error> {
    if !is_net_admin() {
        return Err(Error::NotAdmin);
    }
    let _lock = lock()?;
    let mut state = load(name)?;
    if !state.complete {
        return Err(Error::Incomplete(name.to_string()));
    }
    let before = state.model.clone();
    let steps = change_steps(&mut state, change)?;
    let new_rules = (state.backend == Backend::Nfqueue
        && state.rules.is_none()
        && state.model.has_delay_or_loss())
    .then(|| QueueRules::of(&state.model, &state.layout()));
    if let Some(r) = &new_rules {
        state.rules = Some(r.clone());
    }
    let mut host = Host::open()?;
    let created: Vec<Object> = steps
        .iter()
        .filter(|(op, _)| *op == Op::Create)
        .map(|(_, o)| o.clone())
        .collect();
    let others: Vec<State> = networks().into_iter().filter(|s| s.name != name).collect();
    refuse_taken_roots(&created, &others)?;
    refuse_foreign_roots(&mut host, &created)?;
    save(&state)?;
    // consecutive steps of one kind go in one batch
    for run in steps.chunk_by(|a, b| a.0 == b.0) {
        let objs: Vec<Object> = run.iter().map(|(_, o)| o.clone()).collect();
        host.apply(&objs, run[0].0)?;
    }
    match (new_rules, state.engine_pid) {
        (Some(rules), _) => start_engine(&mut state, &rules, engine)?,
        (None, Some(pid)) if state.model != before => engine::reload(pid, name),
        _ => {}
    }
    Ok(state)
}

/// Updates `state` (model, cut nodes, recorded objects) for `change` and returns the kernel
/// steps that make it so.
fn change_steps(state: &mut State, change: &NetChange) -> Result<Steps, Error> {
    state.model.apply(change)?;
    let mut steps = Steps::new();
    match change {
        NetChange::SetLink { nodes, link } => {
            for &i in nodes {
                for (field, new_rate) in [(Field::Src, link.up_bps), (Field::Dst, link.down_bps)] {
                    let Some((ifb, class)) = node_class(state, i, field) else {
                        continue;
                    };
                    let n = &state.model.nodes[i];
                    if new_rate.is_some() {
                        let c = Object::HtbClass {
                            dev: ifb.clone(),
                            classid: class,
                            parent: Handle::new(1, 0),
                            rate_bps: rate_of(n, field),
                        };
                        steps.push((Op::Change, record(&mut state.objects, c)));
                    }
                    // a cut node's leaf comes back with these values at restore
                    if state.backend == Backend::Netem && !state.cut.contains(&i) {
                        let leaf = leaf(&ifb, class, netem_leaf(n, rate_of(n, field)));
                        steps.push((Op::Change, record(&mut state.objects, leaf)));
                    }
                }
            }
        }
        NetChange::SetDelay { from, to, .. } => {
            if state.backend == Backend::Netem {
                pair_steps(state, *from, *to, &mut steps);
            }
        }
        NetChange::Cut(nodes) | NetChange::Restore(nodes) => {
            let cut = matches!(change, NetChange::Cut(_));
            for &i in nodes {
                // a node of another host: cut there (see the module comment)
                if state.cut.contains(&i) == cut || !state.local.contains(&i) {
                    continue; // already so
                }
                if cut {
                    state.cut.push(i);
                } else {
                    state.cut.retain(|&c| c != i);
                }
                for field in [Field::Src, Field::Dst] {
                    let Some((ifb, class)) = node_class(state, i, field) else {
                        continue;
                    };
                    let n = &state.model.nodes[i];
                    let leaf = match (cut, state.backend) {
                        (true, _) => Object::Qdisc {
                            dev: ifb,
                            parent: Parent::Of(class),
                            handle: cut_handle(class),
                            kind: QdiscKind::Pfifo { limit: 0 },
                        },
                        (false, Backend::Netem) => {
                            leaf(&ifb, class, netem_leaf(n, rate_of(n, field)))
                        }
                        // the explicit form of HTB's default leaf (the IFB's txqueuelen is
                        // the most common queue limit of its nodes)
                        (false, Backend::Nfqueue) => leaf(
                            &ifb,
                            class,
                            QdiscKind::Pfifo {
                                limit: n.queue_packets,
                            },
                        ),
                    };
                    steps.push((Op::Replace, record(&mut state.objects, leaf)));
                }
            }
        }
    }
    Ok(steps)
}

/// Handle of the dropping leaf that replaces a cut node's own leaf.
fn cut_handle(class: Handle) -> u16 {
    0x1000 + class.minor()
}

fn leaf(ifb: &str, class: Handle, kind: QdiscKind) -> Object {
    Object::Qdisc {
        dev: ifb.to_string(),
        parent: Parent::Of(class),
        handle: leaf_handle(class),
        kind,
    }
}

/// The IFB and class shaping node `i` in direction `field`, `None` if it is not local.
fn node_class(state: &State, i: usize, field: Field) -> Option<(String, Handle)> {
    let k = state.local.iter().position(|&l| l == i)?;
    let place = node_classes(&state.model, &state.local)[k];
    Some((state.layout().ifb(field, place.cell), place.class))
}

/// Records `obj` in `objects` in place of the object it supersedes (the class with its id,
/// the qdisc under its parent on its device), or at the end; returns it.
fn record(objects: &mut Vec<Object>, obj: Object) -> Object {
    let same = |o: &Object| match (o, &obj) {
        (
            Object::HtbClass { dev, classid, .. },
            Object::HtbClass {
                dev: d, classid: c, ..
            },
        ) => dev == d && classid == c,
        (
            Object::Qdisc { dev, parent, .. },
            Object::Qdisc {
                dev: d, parent: p, ..
            },
        ) => dev == d && parent == p && *p != Parent::Root,
        _ => false,
    };
    match objects.iter().position(same) {
        Some(k) => objects[k] = obj.clone(),
        None => objects.push(obj.clone()),
    }
    obj
}

/// netem backend: the steps that give pair (a, b) its current delay and loss in the pair
/// stages (on each device the network's traffic leaves by): the pair's leaf changes, or the
/// pair gets a class (the next free one, the same on every device), or a device without a
/// stage gets the whole stage (for the local groups). The classes made are recorded in
/// `state.pair_classes`. Only traffic from local nodes passes this host's stages.
fn pair_steps(state: &mut State, a: usize, b: usize, steps: &mut Steps) {
    let groups = local_groups(&state.model, &state.local);
    if !groups.contains(&a) {
        return;
    }
    let known = pair_class(&state.pair_classes, a, b);
    let new_minor = next_pair_minor(&state.pair_classes);
    let mut made_stage = false;
    for dev in state.layout().hook_devs() {
        let objs = if !stage_devs(&state.objects).contains(&dev.as_str()) {
            made_stage = true;
            pair_stage(&state.model, &groups, &dev)
        } else if let Some(minor) = known {
            let l = leaf(&dev, Handle::new(1, minor), pair_leaf(&state.model, a, b));
            steps.push((Op::Change, record(&mut state.objects, l)));
            continue;
        } else {
            PairHash::new(&state.model)
                .pair(&state.model, &dev, a, b, new_minor)
                .to_vec()
        };
        state.objects.extend(objs.iter().cloned());
        steps.extend(objs.into_iter().map(|o| (Op::Create, o)));
    }
    if made_stage {
        state.pair_classes = stage_pairs(&state.model, &groups);
    } else if known.is_none() {
        state.pair_classes.push((a, b, new_minor));
    }
}

/// The class minor of pair (a, b) in `classes` (see [`State::pair_classes`]).
fn pair_class(classes: &[(usize, usize, u16)], a: usize, b: usize) -> Option<u16> {
    classes
        .iter()
        .find(|&&(x, y, _)| (x, y) == (a, b))
        .map(|&(_, _, minor)| minor)
}

/// The minor of the next pair class: one past the highest made.
fn next_pair_minor(classes: &[(usize, usize, u16)]) -> u16 {
    classes
        .iter()
        .map(|&(_, _, minor)| minor)
        .max()
        .unwrap_or(0)
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{objects, pair_classes, Layout};
    use topology::{LinkChange, LinkModel};

    /// The state of a network on one host, every node on `lo`.
    fn state(backend: Backend, model: LinkModel) -> State {
        let local: Vec<usize> = (0..model.nodes.len()).collect();
        state_on(backend, model, "lo", local)
    }

    /// The state of a network with the `local` nodes on this host, on `dev`.
    fn state_on(backend: Backend, model: LinkModel, dev: &str, local: Vec<usize>) -> State {
        let layout = Layout {
            dev: dev.into(),
            slot: 0,
            backend,
        };
        State {
            name: "t".into(),
            dev: dev.into(),
            backend,
            slot: 0,
            objects: objects(&model, &local, &layout),
            pair_classes: pair_classes(&model, &local, &layout),
            model,
            local,
            foreign_clsact: vec![],
            rules: None,
            engine_pid: None,
            cut: vec![],
            complete: true,
        }
    }

    fn commands(steps: &Steps) -> Vec<String> {
        steps.iter().map(|(op, o)| o.command(*op)).collect()
    }

    #[test]
    fn netem_link_change_is_class_and_leaf_changes() {
        let mut s = state(
            Backend::Netem,
            LinkModel::uniform(2, 2, 128_000, 2_000_000, 5_000),
        );
        let change = NetChange::SetLink {
            nodes: vec![1],
            link: LinkChange {
                up_bps: Some(64_000),
                down_bps: None,
                latency_us: Some(20_000),
                loss: Some(0.01),
            },
        };
        let steps = change_steps(&mut s, &change).unwrap();
        assert_eq!(
            commands(&steps),
            [
                "tc class change dev p2p0u0 parent 1:0 classid 1:3 htb rate 64kbit ceil 64kbit burst 1608b cburst 1608b quantum 1600",
                "tc qdisc change dev p2p0u0 parent 1:3 handle 4: netem limit 100 delay 20000us loss 1%",
                "tc qdisc change dev p2p0d0 parent 1:3 handle 4: netem limit 103 delay 20000us loss 1%",
            ]
        );
        // the state file shows the objects as they now are
        for (_, o) in &steps {
            assert!(s.objects.contains(o), "{o}");
        }
        assert_eq!(s.model.nodes[1].up_bps, 64_000);
        assert_eq!(s.model.nodes[1].latency_us, 20_000);
    }

    #[test]
    fn netem_pair_delay_changes_the_pair_leaf_or_adds_a_pair() {
        let mut m = LinkModel::uniform(2, 2, 128_000, 2_000_000, 0);
        m.set_group_delay_us(0, 1, 10_000);
        let mut s = state(Backend::Netem, m);
        let n = s.objects.len();
        let delay = |from, to, us| NetChange::SetDelay {
            from,
            to,
            delay_us: Some(us),
            loss: None,
        };
        let steps = change_steps(&mut s, &delay(0, 1, 40_000)).unwrap();
        assert_eq!(
            commands(&steps),
            ["tc qdisc change dev lo parent 1:1 handle 2: netem limit 100000 delay 40000us"]
        );
        assert_eq!(s.objects.len(), n);
        // (1, 0) had no delay: it gets a class, leaf and entry of its own
        let steps = change_steps(&mut s, &delay(1, 0, 7_000)).unwrap();
        assert_eq!(
            commands(&steps),
            [
                "tc class add dev lo parent 1:0 classid 1:2 htb rate 100gbit ceil 100gbit burst 12501600b cburst 12501600b quantum 200000",
                "tc qdisc add dev lo parent 1:2 handle 3: netem limit 100000 delay 7000us",
                "tc filter add dev lo parent 1:0 prio 1 handle 3:1:1 protocol ip u32 ht 3:1: match ip dst 10.1.0.0/16 flowid 1:2",
            ]
        );
        assert_eq!(s.objects.len(), n + 3);
    }

    #[test]
    fn netem_pair_classes_are_recorded_and_found_again() {
        let mut m = LinkModel::uniform(3, 2, 128_000, 2_000_000, 0);
        m.set_group_delay_us(0, 1, 10_000);
        let mut s = state(Backend::Netem, m);
        assert_eq!(s.pair_classes, [(0, 1, 1)]);
        let delay = |from, to, us| NetChange::SetDelay {
            from,
            to,
            delay_us: Some(us),
            loss: None,
        };
        change_steps(&mut s, &delay(2, 0, 7_000)).unwrap();
        change_steps(&mut s, &delay(1, 2, 8_000)).unwrap();
        assert_eq!(s.pair_classes, [(0, 1, 1), (2, 0, 2), (1, 2, 3)]);
        // a pair with a class keeps it: its leaf changes, nothing is added
        let steps = change_steps(&mut s, &delay(2, 0, 9_000)).unwrap();
        assert_eq!(
            commands(&steps),
            ["tc qdisc change dev lo parent 1:2 handle 3: netem limit 100000 delay 9000us"]
        );
        assert_eq!(s.pair_classes.len(), 3);
    }

    #[test]
    fn netem_pair_stage_added_at_run_time_records_its_classes() {
        let mut s = state(
            Backend::Netem,
            LinkModel::uniform(2, 2, 128_000, 2_000_000, 0),
        );
        assert!(s.pair_classes.is_empty());
        let change = NetChange::SetDelay {
            from: 1,
            to: 0,
            delay_us: Some(10_000),
            loss: None,
        };
        change_steps(&mut s, &change).unwrap();
        assert_eq!(s.pair_classes, [(1, 0, 1)]);
    }

    #[test]
    fn netem_pair_stage_is_added_when_missing() {
        let mut s = state(
            Backend::Netem,
            LinkModel::uniform(2, 2, 128_000, 2_000_000, 0),
        );
        let change = NetChange::SetDelay {
            from: 0,
            to: 1,
            delay_us: Some(10_000),
            loss: Some(0.1),
        };
        let steps = change_steps(&mut s, &change).unwrap();
        let text = commands(&steps);
        assert_eq!(
            text[0],
            "tc qdisc add dev lo root handle 1: htb direct_qlen 10000"
        );
        assert!(text.contains(
            &"tc qdisc add dev lo parent 1:1 handle 2: netem limit 100000 delay 10000us loss 10%"
                .to_string()
        ));
    }

    #[test]
    fn netem_group_delays_change_on_every_device_traffic_leaves_by() {
        let mut m = LinkModel::uniform(2, 2, 128_000, 2_000_000, 0);
        m.set_group_delay_us(0, 1, 10_000);
        let mut s = state_on(Backend::Netem, m, "eth0", vec![0, 1]);
        let change = NetChange::SetDelay {
            from: 0,
            to: 1,
            delay_us: Some(30_000),
            loss: None,
        };
        let steps = change_steps(&mut s, &change).unwrap();
        assert_eq!(
            commands(&steps),
            [
                "tc qdisc change dev eth0 parent 1:1 handle 2: netem limit 100000 delay 30000us",
                "tc qdisc change dev lo parent 1:1 handle 2: netem limit 100000 delay 30000us",
            ]
        );
        // group 1 is on another host: its packets pass that host's stages, not these
        let change = NetChange::SetDelay {
            from: 1,
            to: 0,
            delay_us: Some(30_000),
            loss: None,
        };
        assert!(change_steps(&mut s, &change).unwrap().is_empty());
    }

    #[test]
    fn cut_and_restore_graft_leaves() {
        let mut s = state(
            Backend::Nfqueue,
            LinkModel::uniform(1, 2, 128_000, 2_000_000, 0),
        );
        let n = s.objects.len();
        let steps = change_steps(&mut s, &NetChange::Cut(vec![0])).unwrap();
        assert_eq!(
            commands(&steps),
            [
                "tc qdisc replace dev p2p0u0 parent 1:2 handle 1002: pfifo limit 0",
                "tc qdisc replace dev p2p0d0 parent 1:2 handle 1002: pfifo limit 0",
            ]
        );
        assert_eq!(s.cut, [0]);
        assert!(change_steps(&mut s, &NetChange::Cut(vec![0]))
            .unwrap()
            .is_empty());
        let steps = change_steps(&mut s, &NetChange::Restore(vec![0])).unwrap();
        assert_eq!(
            commands(&steps),
            [
                "tc qdisc replace dev p2p0u0 parent 1:2 handle 3: pfifo limit 100",
                "tc qdisc replace dev p2p0d0 parent 1:2 handle 3: pfifo limit 100",
            ]
        );
        assert!(s.cut.is_empty());
        assert_eq!(s.objects.len(), n + 2);
        assert!(matches!(
            change_steps(&mut s, &NetChange::Cut(vec![5])),
            Err(Error::OutOfRange(_))
        ));
    }

    /// Two hosts, A with a-1 and b-1 and B with a-2 and b-2 (netem, on eth0, G(0,1) =
    /// 10 ms): each change made on both, as every agent of a cluster run makes it.
    #[test]
    fn on_two_hosts_each_changes_only_what_it_holds() {
        let mut m = LinkModel::uniform(2, 2, 128_000, 2_000_000, 0);
        m.set_group_delay_us(0, 1, 10_000);
        let mut a = state_on(Backend::Netem, m.clone(), "eth0", vec![0, 2]);
        let mut b = state_on(Backend::Netem, m, "eth0", vec![1, 3]);
        let mut on_both = |change: NetChange| {
            let on_a = commands(&change_steps(&mut a, &change).unwrap());
            let on_b = commands(&change_steps(&mut b, &change).unwrap());
            (on_a, on_b)
        };
        // a-2 is cut (and restored) by its host alone: its classes are there, and every
        // packet to or from it passes them
        for (change, leaf) in [
            (NetChange::Cut(vec![1]), "handle 1003: pfifo limit 0"),
            (
                NetChange::Restore(vec![1]),
                "handle 4: netem limit 100 delay 0us",
            ),
        ] {
            let (on_a, on_b) = on_both(change);
            assert!(on_a.is_empty(), "{on_a:?}");
            assert_eq!(
                on_b,
                ["p2p0u0", "p2p0d0"]
                    .map(|ifb| format!("tc qdisc replace dev {ifb} parent 1:3 {leaf}"))
            );
        }
        // b-1's link: its leaves on A; B's model follows
        let link = LinkChange {
            latency_us: Some(20_000),
            ..LinkChange::default()
        };
        let (on_a, on_b) = on_both(NetChange::SetLink {
            nodes: vec![2],
            link,
        });
        assert_eq!(
            on_a,
            [
                "tc qdisc change dev p2p0u1 parent 1:2 handle 3: netem limit 100 delay 20000us",
                "tc qdisc change dev p2p0d1 parent 1:2 handle 3: netem limit 103 delay 20000us",
            ]
        );
        assert!(on_b.is_empty(), "{on_b:?}");
        // G(0,1): in the pair stages of both, each has a node of group 0
        let (on_a, on_b) = on_both(NetChange::SetDelay {
            from: 0,
            to: 1,
            delay_us: Some(30_000),
            loss: None,
        });
        for on in [on_a, on_b] {
            assert_eq!(
                on,
                [
                    "tc qdisc change dev eth0 parent 1:1 handle 2: netem limit 100000 delay 30000us",
                    "tc qdisc change dev lo parent 1:1 handle 2: netem limit 100000 delay 30000us",
                ]
            );
        }
        // a cut of both hosts' nodes: each records its own
        on_both(NetChange::Cut(vec![0, 1, 3]));
        assert_eq!((&a.cut[..], &b.cut[..]), (&[0][..], &[1, 3][..]));
        for s in [&a, &b] {
            assert_eq!(s.model.nodes[2].latency_us, 20_000);
            assert_eq!(s.model.group_delay_us(0, 1), 30_000);
        }
    }
}
