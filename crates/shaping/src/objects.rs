//! The kernel objects of one network on one host: what `up` creates for a link model and
//! the nodes placed here (a pure function of both).
//!
//! Single-host model (`--dev lo`): every node is a /32 alias on the device. Nodes are
//! split by /24 network into "cells"; each cell has two IFB devices carrying its shaping
//! trees. The device's clsact egress hook sends a packet whose source is in a cell to the
//! cell's upload IFB (one HTB class per node at U(v), classified by source address), its
//! ingress hook sends a packet whose destination is in a cell to the cell's download IFB
//! (one class per node at D(v), by destination). Each class has a leaf queue: the pfifo
//! HTB creates from the IFB's txqueuelen (nfqueue backend, delay and loss in the engine),
//! an explicit pfifo when a node's queue differs, or netem with the node's L(v) and p(v)
//! (netem backend). Every lookup is a hashed u32 table: at the device an 8-bit window of
//! the address picks the cell, in the cell the last octet picks the node. Small cells keep
//! HTB's per-class kernel cost (it walks every class of the qdisc on each class added)
//! from growing quadratically. With the netem backend the group-to-group delays and losses
//! live in the device's root qdisc: one class per (source group, destination group) pair
//! with a netem leaf.
//!
//! Cluster host (`--dev eth0`, some groups on other hosts): the aliases of this host's nodes
//! go on the device, and both the device's hooks (traffic to and from other hosts) and
//! `lo`'s (traffic between this host's nodes) feed the same IFBs, so each node keeps one
//! upload and one download queue. Other hosts' groups are reached by routes via their hosts.
//! With the netem backend a packet gets `L(s)` in its upload leaf on the sending host,
//! `G(a,b)` in the pair stage of the device it leaves by there (`lo` to a node of this host,
//! the device to another host: each has a pair stage), and `L(d)` in its download leaf on
//! the receiving host; with the nfqueue backend the engine of the receiving host holds it
//! for the whole `L(s) + G(a,b) + L(d)`.

use ipnet::Ipv4Net;
use netctl::probe::Backend;
use netctl::{Field, Handle, Object, Parent, QdiscKind, Target, U32};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use topology::{LinkModel, Node};

/// The loopback device: traffic between this host's nodes goes through it, whatever device
/// carries their addresses.
pub const LOOPBACK: &str = "lo";
/// Queue length of the HTB direct queue (unclassified, unshaped traffic).
const DIRECT_QLEN: u32 = 10_000;
/// Rate of a group-pair class: the pair stage delays, it does not limit.
const PAIR_RATE_BPS: u64 = 100_000_000_000;
/// Queue limit of a group-pair netem: it holds every packet in flight on the pair.
const PAIR_LIMIT: u32 = 100_000;
/// Priority of the filters on the shaping IFBs and the pair stage.
const PRIO: u16 = 1;
/// The u32 table of a cell IFB (and the first pair-stage table).
const CELL_TABLE: u16 = 1;

/// Where and how one network is shaped.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Device the aliases live on (`lo` on a single host).
    pub dev: String,
    /// Network slot on this host: names the IFBs, sets the clsact filter priority and table.
    pub slot: u16,
    /// Shaping backend.
    pub backend: Backend,
}

impl Layout {
    /// The IFB of cell `cell` for uploads (`Field::Src`) or downloads (`Field::Dst`).
    pub fn ifb(&self, field: Field, cell: usize) -> String {
        let dir = if field == Field::Src { 'u' } else { 'd' };
        format!("p2p{}{dir}{cell}", self.slot)
    }
    /// The device group of this network's IFBs (deleted together in one request).
    pub fn ifb_group(&self) -> u32 {
        0x7032_7000 + self.slot as u32
    }
    /// Priority of this network's filters on the device's clsact hooks.
    pub fn clsact_prio(&self) -> u16 {
        100 + self.slot
    }
    /// This network's u32 table on the device's clsact egress (`Src`) or ingress (`Dst`)
    /// hook (both hooks share one table id space).
    fn clsact_table(&self, field: Field) -> u16 {
        0x10 + 2 * self.slot + u16::from(field == Field::Dst)
    }
    /// The devices whose clsact hooks send packets into the shaping IFBs: the device (on a
    /// cluster host, the traffic to and from other hosts) and `lo` (the traffic between this
    /// host's nodes), once when they are the same.
    pub fn hook_devs(&self) -> Vec<String> {
        let mut devs = vec![self.dev.clone()];
        if self.dev != LOOPBACK {
            devs.push(LOOPBACK.into());
        }
        devs
    }
    /// The NFQUEUE queue number of this network's delay engine.
    pub fn queue_num(&self) -> u16 {
        4000 + self.slot
    }
}

/// Where a node's classes are: its cell and its class id there (minor = last octet + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeClass {
    /// Cell index (which IFB pair).
    pub cell: usize,
    /// Class id on both of the cell's IFBs.
    pub class: Handle,
}

/// The /24 cells of `local` nodes, in address order: (network >> 8, member node indices).
fn cells(model: &LinkModel, local: &[usize]) -> Vec<(u32, Vec<usize>)> {
    let mut nets: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &i in local {
        nets.entry(u32::from(model.nodes[i].ip) >> 8)
            .or_default()
            .push(i);
    }
    nets.into_iter().collect()
}

/// The place of each of `local` (same order).
pub fn node_classes(model: &LinkModel, local: &[usize]) -> Vec<NodeClass> {
    let cell_of: BTreeMap<u32, usize> = cells(model, local)
        .iter()
        .enumerate()
        .map(|(c, (net, _))| (*net, c))
        .collect();
    local
        .iter()
        .map(|&i| {
            let ip = u32::from(model.nodes[i].ip);
            NodeClass {
                cell: cell_of[&(ip >> 8)],
                class: node_class(ip as u8),
            }
        })
        .collect()
}

fn node_class(octet: u8) -> Handle {
    Handle::new(1, octet as u16 + 1)
}

/// The handle (major) of the leaf qdisc of class `class`.
pub fn leaf_handle(class: Handle) -> u16 {
    class.minor() + 1
}

/// The netem leaf of node `n` whose class runs at `rate_bps`: `L(v)`, `p(v)`, and room for
/// its queue plus what is in flight during the delay.
pub fn netem_leaf(n: &Node, rate_bps: u64) -> QdiscKind {
    QdiscKind::Netem {
        delay_us: n.latency_us,
        loss: n.loss,
        limit: n.queue_packets + bdp_packets(rate_bps, n.latency_us),
    }
}

/// Node `n`'s rate in the `field` direction: `U(v)` for uploads (`Src`), `D(v)` for downloads.
pub fn rate_of(n: &Node, field: Field) -> u64 {
    if field == Field::Src {
        n.up_bps
    } else {
        n.down_bps
    }
}

/// The groups of `local` nodes, sorted, each once.
pub fn local_groups(model: &LinkModel, local: &[usize]) -> Vec<usize> {
    let mut groups: Vec<usize> = local.iter().map(|&i| model.nodes[i].group).collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// The objects for `local` (indices into `model.nodes`) shaped per `layout`. The first
/// objects are the hook devices' clsact qdiscs, which networks on the same device share.
pub fn objects(model: &LinkModel, local: &[usize], layout: &Layout) -> Vec<Object> {
    let dev = &layout.dev;
    let hooks = layout.hook_devs();
    let cells = cells(model, local);
    let mut out: Vec<Object> = hooks.iter().map(|d| Object::clsact(d)).collect();
    out.extend(local.iter().map(|&i| Object::Addr {
        dev: dev.clone(),
        ip: model.nodes[i].ip,
        len: 32,
    }));
    let nets: Vec<u32> = cells.iter().map(|(net, _)| net << 8).collect();
    let shift = best_window(&nets, 8).unwrap_or(8);
    for (field, hook) in [(Field::Src, Parent::Egress), (Field::Dst, Parent::Ingress)] {
        for (c, (_, members)) in cells.iter().enumerate() {
            cell_tree(
                &mut out,
                model,
                members,
                layout,
                &layout.ifb(field, c),
                field,
            );
        }
        for d in &hooks {
            let filter = |u32| Object::Filter {
                dev: d.clone(),
                parent: hook,
                prio: layout.clsact_prio(),
                u32,
            };
            let table = layout.clsact_table(field);
            out.push(filter(U32::Table {
                id: table,
                divisor: 256,
            }));
            for (c, (net, _)) in cells.iter().enumerate() {
                out.push(filter(U32::Entry {
                    ht: Some((table, ((net << 8) >> shift) as u8)),
                    node: c as u16 + 1,
                    field,
                    net: (Ipv4Addr::from(net << 8), 24),
                    target: Target::Redirect(layout.ifb(field, c)),
                }));
            }
            out.push(filter(U32::hash_all(field, table, 0xff << shift)));
        }
    }
    if has_pair_stage(model, layout) {
        for d in &hooks {
            out.extend(pair_stage(model, &local_groups(model, local), d));
        }
    }
    out
}

/// One cell's IFB: HTB root, a class (and if needed a leaf) per node, the hashed classifier.
fn cell_tree(
    out: &mut Vec<Object>,
    model: &LinkModel,
    members: &[usize],
    layout: &Layout,
    ifb: &str,
    field: Field,
) {
    let (backend, group) = (layout.backend, layout.ifb_group());
    let root = Handle::new(1, 0);
    let dev = || ifb.to_string();
    // the most common queue limit becomes the IFB's txqueuelen: HTB's default leaves use it
    let mut by_queue: BTreeMap<u32, usize> = BTreeMap::new();
    for &i in members {
        *by_queue.entry(model.nodes[i].queue_packets).or_default() += 1;
    }
    let txqueuelen = by_queue
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(q, _)| *q)
        .unwrap_or(1000);
    out.push(Object::Ifb {
        name: dev(),
        txqueuelen,
        group,
    });
    out.push(Object::htb_root(&dev(), DIRECT_QLEN));
    for &i in members {
        let n = &model.nodes[i];
        let class = node_class(n.ip.octets()[3]);
        let rate_bps = rate_of(n, field);
        out.push(Object::HtbClass {
            dev: dev(),
            classid: class,
            parent: root,
            rate_bps,
        });
        let kind = match backend {
            Backend::Nfqueue if n.queue_packets == txqueuelen => None,
            Backend::Nfqueue => Some(QdiscKind::Pfifo {
                limit: n.queue_packets,
            }),
            Backend::Netem => Some(netem_leaf(n, rate_bps)),
        };
        if let Some(kind) = kind {
            out.push(Object::Qdisc {
                dev: dev(),
                parent: Parent::Of(class),
                handle: leaf_handle(class),
                kind,
            });
        }
    }
    let filter = |u32| Object::Filter {
        dev: dev(),
        parent: Parent::Of(root),
        prio: PRIO,
        u32,
    };
    out.push(filter(U32::Table {
        id: CELL_TABLE,
        divisor: 256,
    }));
    for &i in members {
        let ip = model.nodes[i].ip;
        out.push(filter(U32::Entry {
            ht: Some((CELL_TABLE, ip.octets()[3])),
            node: 1,
            field,
            net: (ip, 32),
            target: Target::Class(node_class(ip.octets()[3])),
        }));
    }
    out.push(filter(U32::hash_all(field, CELL_TABLE, 0xff)));
}

/// The 8-bit window of the address (bits `shift..shift+8`, `shift >= min_shift`) that
/// spreads `keys` best over 256 buckets; `None` if no window fits above `min_shift`.
fn best_window(keys: &[u32], min_shift: u32) -> Option<u32> {
    (min_shift..=24).min_by_key(|&shift| {
        let mut count = [0u32; 256];
        for k in keys {
            count[((k >> shift) & 0xff) as usize] += 1;
        }
        count.into_iter().max().unwrap_or(0)
    })
}

/// Packets in flight at `rate_bps` during `delay_us`, in 1500-byte packets.
fn bdp_packets(rate_bps: u64, delay_us: u64) -> u32 {
    (rate_bps as u128 * delay_us as u128 / 8 / 1500 / 1_000_000).min(1 << 20) as u32
}

/// A prefix as netctl's objects and the firewall rules take it: address and length.
pub(crate) fn net(prefix: Ipv4Net) -> (Ipv4Addr, u8) {
    (prefix.network(), prefix.prefix_len())
}

/// How the netem pair stage hashes group prefixes: by the 8-bit window of the address that
/// spreads the group prefixes best (group prefixes shorter than /8 leave no window inside
/// every prefix: one bucket, a linear walk).
pub struct PairHash {
    window: Option<u32>,
    prefixes: Vec<u32>,
}

impl PairHash {
    /// The hashing of `model`'s groups.
    pub fn new(model: &LinkModel) -> Self {
        let prefixes: Vec<u32> = model
            .groups
            .iter()
            .map(|g| u32::from(g.prefix.network()))
            .collect();
        let shortest = model
            .groups
            .iter()
            .map(|g| g.prefix.prefix_len())
            .min()
            .unwrap_or(32) as u32;
        PairHash {
            window: best_window(&prefixes, 32 - shortest),
            prefixes,
        }
    }

    fn divisor(&self) -> u32 {
        if self.window.is_some() {
            256
        } else {
            1
        }
    }

    fn mask(&self) -> u32 {
        self.window.map_or(0, |shift| 0xff << shift)
    }

    fn bucket(&self, g: usize) -> u8 {
        self.window
            .map_or(0, |shift| (self.prefixes[g] >> shift) as u8)
    }

    /// The class `1:minor` of pair (a, b) in the stage on `dev`, its netem leaf with the
    /// pair's `G(a,b)` and `q(a,b)`, and the entry of source group a's table that sends
    /// destination group b there.
    pub fn pair(
        &self,
        model: &LinkModel,
        dev: &str,
        a: usize,
        b: usize,
        minor: u16,
    ) -> [Object; 3] {
        let class = Handle::new(1, minor);
        [
            Object::HtbClass {
                dev: dev.to_string(),
                classid: class,
                parent: Handle::new(1, 0),
                rate_bps: PAIR_RATE_BPS,
            },
            Object::Qdisc {
                dev: dev.to_string(),
                parent: Parent::Of(class),
                handle: leaf_handle(class),
                kind: pair_leaf(model, a, b),
            },
            Object::Filter {
                dev: dev.to_string(),
                parent: Parent::Of(Handle::new(1, 0)),
                prio: PRIO,
                u32: U32::Entry {
                    ht: Some((pair_table(a), self.bucket(b))),
                    node: b as u16 + 1,
                    field: Field::Dst,
                    net: net(model.groups[b].prefix),
                    target: Target::Class(class),
                },
            },
        ]
    }
}

/// The u32 table of source group `a` in the pair stage.
pub fn pair_table(a: usize) -> u16 {
    a as u16 + 2
}

/// The netem leaf of group pair (a, b).
pub fn pair_leaf(model: &LinkModel, a: usize, b: usize) -> QdiscKind {
    QdiscKind::Netem {
        delay_us: model.group_delay_us(a, b),
        loss: model.group_loss(a, b),
        limit: PAIR_LIMIT,
    }
}

/// Whether the plan of `model` laid out as `layout` has pair stages: the netem backend's,
/// when some group pair has a delay or loss.
fn has_pair_stage(model: &LinkModel, layout: &Layout) -> bool {
    layout.backend == Backend::Netem && model.has_delay_or_loss()
}

/// The group pairs with a class in the pair stages that [`plan`] makes for the `local`
/// nodes of `model` laid out as `layout`, each as (source group, destination group, class
/// minor); none without a pair stage.
pub fn pair_classes(
    model: &LinkModel,
    local: &[usize],
    layout: &Layout,
) -> Vec<(usize, usize, u16)> {
    if !has_pair_stage(model, layout) {
        return vec![];
    }
    stage_pairs(model, &local_groups(model, local))
}

/// The pairs of [`pair_stage`] for source groups `src_groups`: each pair of a source group
/// and a group with a delay or loss between them, in that order, with its class minor
/// (1, 2, ...).
pub fn stage_pairs(model: &LinkModel, src_groups: &[usize]) -> Vec<(usize, usize, u16)> {
    let mut pairs = vec![];
    for &a in src_groups {
        for b in 0..model.groups.len() {
            if model.group_delay_us(a, b) == 0 && model.group_loss(a, b) == 0.0 {
                continue;
            }
            pairs.push((a, b, pairs.len() as u16 + 1));
        }
    }
    pairs
}

/// netem backend: group-pair delay and loss on the device's root qdisc. Two hashed steps
/// ([`PairHash`]): the root table picks the source group's table by an 8-bit window of the
/// source address, that table picks the pair's class by the same window of the destination
/// address. At most 65 534 pairs with a delay or loss.
pub fn pair_stage(model: &LinkModel, src_groups: &[usize], dev: &str) -> Vec<Object> {
    let root = Handle::new(1, 0);
    let mut out = vec![Object::htb_root(dev, DIRECT_QLEN)];
    let filter = |u32| Object::Filter {
        dev: dev.to_string(),
        parent: Parent::Of(root),
        prio: PRIO,
        u32,
    };
    let hash = PairHash::new(model);
    let (divisor, mask) = (hash.divisor(), hash.mask());
    let src_table = CELL_TABLE;
    out.push(filter(U32::Table {
        id: src_table,
        divisor,
    }));
    let pairs = stage_pairs(model, src_groups);
    for &a in src_groups {
        let table = pair_table(a);
        out.push(filter(U32::Table { id: table, divisor }));
        for &(_, b, minor) in pairs.iter().filter(|p| p.0 == a) {
            out.extend(hash.pair(model, dev, a, b, minor));
        }
        out.push(filter(U32::Entry {
            ht: Some((src_table, hash.bucket(a))),
            node: a as u16 + 1,
            field: Field::Src,
            net: net(model.groups[a].prefix),
            target: Target::Link {
                table,
                key: Field::Dst,
                mask,
            },
        }));
    }
    out.push(filter(U32::hash_all(Field::Src, src_table, mask)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(backend: Backend) -> Layout {
        Layout {
            dev: "lo".into(),
            slot: 0,
            backend,
        }
    }

    #[test]
    fn five_thousand_nodes_are_hashed_not_chained() {
        let m = LinkModel::uniform(50, 100, 128_000, 2_000_000, 0);
        let local: Vec<usize> = (0..m.nodes.len()).collect();
        let objs = objects(&m, &local, &layout(Backend::Nfqueue));
        let count = |f: &dyn Fn(&Object) -> bool| objs.iter().filter(|o| f(o)).count();
        assert_eq!(count(&|o| matches!(o, Object::Addr { .. })), 5000);
        assert_eq!(count(&|o| matches!(o, Object::HtbClass { .. })), 10_000);
        assert_eq!(longest_chain(&objs), 1);
    }

    /// The longest chain a packet walks at any hashed step: entries of one (table, bucket).
    fn longest_chain(objs: &[Object]) -> usize {
        let mut buckets: BTreeMap<(String, u32, u16, u8), usize> = BTreeMap::new();
        for o in objs {
            if let Object::Filter {
                dev,
                parent,
                u32: U32::Entry {
                    ht: Some((t, b)), ..
                },
                ..
            } = o
            {
                *buckets
                    .entry((dev.clone(), parent.raw(), *t, *b))
                    .or_default() += 1;
            }
        }
        buckets.into_values().max().unwrap_or(0)
    }

    #[test]
    fn netem_pair_stage_is_hashed_too() {
        let mut m = LinkModel::uniform(50, 100, 128_000, 2_000_000, 1000);
        for (a, b) in (0..50).flat_map(|a| (0..50).map(move |b| (a, b))) {
            m.set_group_delay_us(a, b, 10_000);
        }
        let local: Vec<usize> = (0..m.nodes.len()).collect();
        let objs = objects(&m, &local, &layout(Backend::Netem));
        let on_lo = |o: &&Object| o.dev() == "lo" && matches!(o, Object::HtbClass { .. });
        assert_eq!(objs.iter().filter(on_lo).count(), 2500);
        assert_eq!(longest_chain(&objs), 1);
    }

    #[test]
    fn pair_classes_are_the_classes_the_stage_sends_each_pair_to() {
        let mut m = LinkModel::uniform(3, 2, 128_000, 2_000_000, 0);
        m.set_group_delay_us(0, 2, 10_000);
        m.set_group_loss(1, 0, 0.1);
        m.set_group_delay_us(1, 1, 5_000);
        m.set_group_delay_us(2, 0, 5_000);
        // nodes 0..4: groups 0 and 1 on this host, group 2 elsewhere
        let local = [0, 1, 2, 3];
        let netem = layout(Backend::Netem);
        assert_eq!(
            pair_classes(&m, &local, &netem),
            [(0, 2, 1), (1, 0, 2), (1, 1, 3)]
        );
        let mut sent: Vec<(usize, usize, u16)> = objects(&m, &local, &netem)
            .iter()
            .filter_map(|o| match o {
                Object::Filter {
                    u32:
                        U32::Entry {
                            ht: Some((t, _)),
                            node,
                            target: Target::Class(c),
                            ..
                        },
                    ..
                } if o.dev() == "lo" && *t >= 2 => {
                    Some((*t as usize - 2, *node as usize - 1, c.minor()))
                }
                _ => None,
            })
            .collect();
        sent.sort_unstable();
        assert_eq!(sent, pair_classes(&m, &local, &netem));
        assert!(pair_classes(&m, &local, &layout(Backend::Nfqueue)).is_empty());
        assert!(pair_classes(&LinkModel::uniform(3, 2, 1, 1, 0), &local, &netem).is_empty());
    }

    #[test]
    fn dry_run_reads_like_tc() {
        let m = LinkModel::uniform(1, 2, 128_000, 2_000_000, 0);
        let text: Vec<String> = objects(&m, &[0, 1], &layout(Backend::Nfqueue))
            .iter()
            .map(|o| o.to_string())
            .collect();
        let want = [
            "tc qdisc add dev lo clsact",
            "ip addr add 10.1.0.1/32 dev lo",
            "ip addr add 10.1.0.2/32 dev lo",
            "ip link add p2p0u0 txqueuelen 100 group 1882353664 up type ifb",
            "tc qdisc add dev p2p0u0 root handle 1: htb direct_qlen 10000",
            "tc class add dev p2p0u0 parent 1:0 classid 1:2 htb rate 128kbit ceil 128kbit burst 1616b cburst 1616b quantum 1600",
            "tc class add dev p2p0u0 parent 1:0 classid 1:3 htb rate 128kbit ceil 128kbit burst 1616b cburst 1616b quantum 1600",
            "tc filter add dev p2p0u0 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256",
            "tc filter add dev p2p0u0 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip src 10.1.0.1/32 flowid 1:2",
            "tc filter add dev p2p0u0 parent 1:0 prio 1 handle 1:2:1 protocol ip u32 ht 1:2: match ip src 10.1.0.2/32 flowid 1:3",
            "tc filter add dev p2p0u0 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x000000ff at 12 link 1:",
            "tc filter add dev lo egress prio 100 handle 10: protocol ip u32 divisor 256",
            "tc filter add dev lo egress prio 100 handle 10:0:1 protocol ip u32 ht 10:0: match ip src 10.1.0.0/24 action mirred egress redirect dev p2p0u0",
            "tc filter add dev lo egress prio 100 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x0000ff00 at 12 link 10:",
            "ip link add p2p0d0 txqueuelen 100 group 1882353664 up type ifb",
        ];
        assert_eq!(text[..want.len()], want);
        assert_eq!(text.len(), 25);
    }

    /// Two groups of three nodes, 8/16 mbit, with a node with latency and loss (10.1.0.1:
    /// 10 ms, 1 %), one with a short queue (10.1.0.2: 50 packets), one with a slower upload
    /// (10.2.0.1: 1 mbit), G(0,1) = 30 ms and q(1,0) = 2 %; the first, second and fourth
    /// node (10.1.0.1, 10.1.0.2, 10.2.0.1) on this host, network slot 3.
    fn mixed() -> (LinkModel, [usize; 3]) {
        let mut m = LinkModel::uniform(2, 3, 8_000_000, 16_000_000, 0);
        m.nodes[0].latency_us = 10_000;
        m.nodes[0].loss = 0.01;
        m.nodes[1].queue_packets = 50;
        m.nodes[3].up_bps = 1_000_000;
        m.set_group_delay_us(0, 1, 30_000);
        m.set_group_loss(1, 0, 0.02);
        (m, [0, 1, 3])
    }

    /// Checks that the plan of `mixed` on `dev` with `backend` reads, line by line, `want`.
    fn assert_mixed_plan(dev: &str, backend: Backend, want: &str) {
        let (m, local) = mixed();
        let layout = Layout {
            dev: dev.into(),
            slot: 3,
            backend,
        };
        let got: Vec<String> = objects(&m, &local, &layout)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(got, want.lines().collect::<Vec<_>>());
    }

    /// nfqueue on one host: pfifo leaves only where a node's queue is not the IFB's
    /// txqueuelen (the most common queue of the cell), cells hashed by the address bits
    /// that tell 10.1.0.0/24 from 10.2.0.0/24 (bit 16: window from bit 9), no pair stage.
    #[test]
    fn nfqueue_plan_of_mixed_nodes_reads_like_tc() {
        assert_mixed_plan("lo", Backend::Nfqueue, &nfqueue_lo());
    }

    /// netem on a cluster host: both eth0's and lo's hooks feed the IFBs, every class has
    /// a netem leaf with L(v), p(v) and a limit of queue + packets in flight (10 ms at
    /// 8 mbit: 6, at 16 mbit: 13), and each hook device gets a pair stage with the classes
    /// of (0,1) and (1,0), hashed by the second octet.
    #[test]
    fn netem_cluster_plan_of_mixed_nodes_reads_like_tc() {
        assert_mixed_plan("eth0", Backend::Netem, &netem_eth0());
    }

    #[test]
    fn places_and_names_follow_cells_and_slot() {
        let (m, local) = mixed();
        let got: Vec<(usize, Handle)> = node_classes(&m, &local)
            .into_iter()
            .map(|p| (p.cell, p.class))
            .collect();
        assert_eq!(
            got,
            [
                (0, Handle::new(1, 2)),
                (0, Handle::new(1, 3)),
                (1, Handle::new(1, 2))
            ]
        );
        assert_eq!(local_groups(&m, &[3, 1, 0, 4]), [0, 1]);
        let layout = Layout {
            dev: "eth0".into(),
            slot: 3,
            backend: Backend::Netem,
        };
        assert_eq!(layout.queue_num(), 4003);
        assert_eq!(layout.ifb(Field::Dst, 2), "p2p3d2");
        assert_eq!(
            (
                rate_of(&m.nodes[3], Field::Src),
                rate_of(&m.nodes[3], Field::Dst)
            ),
            (1_000_000, 16_000_000)
        );
    }

    /// The most common queue limit of a cell becomes its IFBs' txqueuelen, even when a
    /// longer one is there too; only the other nodes get a pfifo leaf.
    #[test]
    fn the_most_common_queue_is_the_txqueuelen() {
        let mut m = LinkModel::uniform(1, 3, 1_000_000, 1_000_000, 0);
        for (n, q) in m.nodes.iter_mut().zip([50, 200, 50]) {
            n.queue_packets = q;
        }
        let objs = objects(&m, &[0, 1, 2], &layout(Backend::Nfqueue));
        let txqueuelens: Vec<u32> = objs
            .iter()
            .filter_map(|o| match o {
                Object::Ifb { txqueuelen, .. } => Some(*txqueuelen),
                _ => None,
            })
            .collect();
        assert_eq!(txqueuelens, [50, 50]);
        let leaves: Vec<(Parent, u32)> = objs
            .iter()
            .filter_map(|o| match o {
                Object::Qdisc {
                    parent,
                    kind: QdiscKind::Pfifo { limit },
                    ..
                } => Some((*parent, *limit)),
                _ => None,
            })
            .collect();
        let node_2 = Parent::Of(Handle::new(1, 3));
        assert_eq!(leaves, [(node_2, 200), (node_2, 200)]);
    }

    #[test]
    fn packets_in_flight_round_down_and_are_capped() {
        // 8 mbit for 10 ms: 80 000 bits, 6.67 packets of 1500 bytes
        assert_eq!(bdp_packets(8_000_000, 10_000), 6);
        assert_eq!(bdp_packets(12_000_000, 1_000), 1);
        assert_eq!(bdp_packets(11_999_999, 1_000), 0);
        assert_eq!(bdp_packets(u64::MAX, u64::MAX), 1 << 20);
    }

    /// `template` once per device of `devs`, `{dev}` replaced by its name.
    fn per_dev(template: &str, devs: &[&str]) -> String {
        devs.iter().map(|d| template.replace("{dev}", d)).collect()
    }

    /// The plan of `mixed` with nfqueue on `lo`.
    fn nfqueue_lo() -> String {
        let lo = ["lo"];
        [
            NFQUEUE_HEAD,
            NFQUEUE_UP,
            &per_dev(EGRESS, &lo),
            NFQUEUE_DOWN,
            &per_dev(INGRESS, &lo),
        ]
        .concat()
    }

    /// The plan of `mixed` with netem on the cluster device eth0.
    fn netem_eth0() -> String {
        let devs = ["eth0", "lo"];
        [
            NETEM_HEAD,
            NETEM_UP,
            &per_dev(EGRESS, &devs),
            NETEM_DOWN,
            &per_dev(INGRESS, &devs),
            &per_dev(PAIR_STAGE, &devs),
        ]
        .concat()
    }

    /// nfqueue on `lo`: the hook and the addresses.
    const NFQUEUE_HEAD: &str = "\
tc qdisc add dev lo clsact
ip addr add 10.1.0.1/32 dev lo
ip addr add 10.1.0.2/32 dev lo
ip addr add 10.2.0.1/32 dev lo
";

    /// nfqueue: upload cells, a pfifo leaf for the node with a short queue only.
    const NFQUEUE_UP: &str = "\
ip link add p2p3u0 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3u0 root handle 1: htb direct_qlen 10000
tc class add dev p2p3u0 parent 1:0 classid 1:2 htb rate 8mbit ceil 8mbit burst 2600b cburst 2600b quantum 100000
tc class add dev p2p3u0 parent 1:0 classid 1:3 htb rate 8mbit ceil 8mbit burst 2600b cburst 2600b quantum 100000
tc qdisc add dev p2p3u0 parent 1:3 handle 4: pfifo limit 50
tc filter add dev p2p3u0 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3u0 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip src 10.1.0.1/32 flowid 1:2
tc filter add dev p2p3u0 parent 1:0 prio 1 handle 1:2:1 protocol ip u32 ht 1:2: match ip src 10.1.0.2/32 flowid 1:3
tc filter add dev p2p3u0 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x000000ff at 12 link 1:
ip link add p2p3u1 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3u1 root handle 1: htb direct_qlen 10000
tc class add dev p2p3u1 parent 1:0 classid 1:2 htb rate 1mbit ceil 1mbit burst 1725b cburst 1725b quantum 12500
tc filter add dev p2p3u1 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3u1 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip src 10.2.0.1/32 flowid 1:2
tc filter add dev p2p3u1 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x000000ff at 12 link 1:
";

    /// nfqueue: download cells.
    const NFQUEUE_DOWN: &str = "\
ip link add p2p3d0 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3d0 root handle 1: htb direct_qlen 10000
tc class add dev p2p3d0 parent 1:0 classid 1:2 htb rate 16mbit ceil 16mbit burst 3600b cburst 3600b quantum 200000
tc class add dev p2p3d0 parent 1:0 classid 1:3 htb rate 16mbit ceil 16mbit burst 3600b cburst 3600b quantum 200000
tc qdisc add dev p2p3d0 parent 1:3 handle 4: pfifo limit 50
tc filter add dev p2p3d0 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3d0 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip dst 10.1.0.1/32 flowid 1:2
tc filter add dev p2p3d0 parent 1:0 prio 1 handle 1:2:1 protocol ip u32 ht 1:2: match ip dst 10.1.0.2/32 flowid 1:3
tc filter add dev p2p3d0 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 16 hashkey mask 0x000000ff at 16 link 1:
ip link add p2p3d1 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3d1 root handle 1: htb direct_qlen 10000
tc class add dev p2p3d1 parent 1:0 classid 1:2 htb rate 16mbit ceil 16mbit burst 3600b cburst 3600b quantum 200000
tc filter add dev p2p3d1 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3d1 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip dst 10.2.0.1/32 flowid 1:2
tc filter add dev p2p3d1 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 16 hashkey mask 0x000000ff at 16 link 1:
";

    /// netem on eth0: the hooks of eth0 and lo, the addresses on eth0.
    const NETEM_HEAD: &str = "\
tc qdisc add dev eth0 clsact
tc qdisc add dev lo clsact
ip addr add 10.1.0.1/32 dev eth0
ip addr add 10.1.0.2/32 dev eth0
ip addr add 10.2.0.1/32 dev eth0
";

    /// netem: upload cells, a netem leaf per class.
    const NETEM_UP: &str = "\
ip link add p2p3u0 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3u0 root handle 1: htb direct_qlen 10000
tc class add dev p2p3u0 parent 1:0 classid 1:2 htb rate 8mbit ceil 8mbit burst 2600b cburst 2600b quantum 100000
tc qdisc add dev p2p3u0 parent 1:2 handle 3: netem limit 106 delay 10000us loss 1%
tc class add dev p2p3u0 parent 1:0 classid 1:3 htb rate 8mbit ceil 8mbit burst 2600b cburst 2600b quantum 100000
tc qdisc add dev p2p3u0 parent 1:3 handle 4: netem limit 50 delay 0us
tc filter add dev p2p3u0 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3u0 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip src 10.1.0.1/32 flowid 1:2
tc filter add dev p2p3u0 parent 1:0 prio 1 handle 1:2:1 protocol ip u32 ht 1:2: match ip src 10.1.0.2/32 flowid 1:3
tc filter add dev p2p3u0 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x000000ff at 12 link 1:
ip link add p2p3u1 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3u1 root handle 1: htb direct_qlen 10000
tc class add dev p2p3u1 parent 1:0 classid 1:2 htb rate 1mbit ceil 1mbit burst 1725b cburst 1725b quantum 12500
tc qdisc add dev p2p3u1 parent 1:2 handle 3: netem limit 100 delay 0us
tc filter add dev p2p3u1 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3u1 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip src 10.2.0.1/32 flowid 1:2
tc filter add dev p2p3u1 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x000000ff at 12 link 1:
";

    /// netem: download cells.
    const NETEM_DOWN: &str = "\
ip link add p2p3d0 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3d0 root handle 1: htb direct_qlen 10000
tc class add dev p2p3d0 parent 1:0 classid 1:2 htb rate 16mbit ceil 16mbit burst 3600b cburst 3600b quantum 200000
tc qdisc add dev p2p3d0 parent 1:2 handle 3: netem limit 113 delay 10000us loss 1%
tc class add dev p2p3d0 parent 1:0 classid 1:3 htb rate 16mbit ceil 16mbit burst 3600b cburst 3600b quantum 200000
tc qdisc add dev p2p3d0 parent 1:3 handle 4: netem limit 50 delay 0us
tc filter add dev p2p3d0 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3d0 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip dst 10.1.0.1/32 flowid 1:2
tc filter add dev p2p3d0 parent 1:0 prio 1 handle 1:2:1 protocol ip u32 ht 1:2: match ip dst 10.1.0.2/32 flowid 1:3
tc filter add dev p2p3d0 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 16 hashkey mask 0x000000ff at 16 link 1:
ip link add p2p3d1 txqueuelen 100 group 1882353667 up type ifb
tc qdisc add dev p2p3d1 root handle 1: htb direct_qlen 10000
tc class add dev p2p3d1 parent 1:0 classid 1:2 htb rate 16mbit ceil 16mbit burst 3600b cburst 3600b quantum 200000
tc qdisc add dev p2p3d1 parent 1:2 handle 3: netem limit 100 delay 0us
tc filter add dev p2p3d1 parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev p2p3d1 parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip dst 10.2.0.1/32 flowid 1:2
tc filter add dev p2p3d1 parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 16 hashkey mask 0x000000ff at 16 link 1:
";

    /// The egress hook of a device: cells by source address.
    const EGRESS: &str = "\
tc filter add dev {dev} egress prio 103 handle 16: protocol ip u32 divisor 256
tc filter add dev {dev} egress prio 103 handle 16:80:1 protocol ip u32 ht 16:80: match ip src 10.1.0.0/24 action mirred egress redirect dev p2p3u0
tc filter add dev {dev} egress prio 103 handle 16:0:2 protocol ip u32 ht 16:0: match ip src 10.2.0.0/24 action mirred egress redirect dev p2p3u1
tc filter add dev {dev} egress prio 103 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x0001fe00 at 12 link 16:
";

    /// The ingress hook of a device: cells by destination address.
    const INGRESS: &str = "\
tc filter add dev {dev} ingress prio 103 handle 17: protocol ip u32 divisor 256
tc filter add dev {dev} ingress prio 103 handle 17:80:1 protocol ip u32 ht 17:80: match ip dst 10.1.0.0/24 action mirred egress redirect dev p2p3d0
tc filter add dev {dev} ingress prio 103 handle 17:0:2 protocol ip u32 ht 17:0: match ip dst 10.2.0.0/24 action mirred egress redirect dev p2p3d1
tc filter add dev {dev} ingress prio 103 protocol ip u32 match u32 0 0 at 16 hashkey mask 0x0001fe00 at 16 link 17:
";

    /// The pair stage of a device: (0,1) with 30 ms, (1,0) with 2 % loss.
    const PAIR_STAGE: &str = "\
tc qdisc add dev {dev} root handle 1: htb direct_qlen 10000
tc filter add dev {dev} parent 1:0 prio 1 handle 1: protocol ip u32 divisor 256
tc filter add dev {dev} parent 1:0 prio 1 handle 2: protocol ip u32 divisor 256
tc class add dev {dev} parent 1:0 classid 1:1 htb rate 100gbit ceil 100gbit burst 12501600b cburst 12501600b quantum 200000
tc qdisc add dev {dev} parent 1:1 handle 2: netem limit 100000 delay 30000us
tc filter add dev {dev} parent 1:0 prio 1 handle 2:2:2 protocol ip u32 ht 2:2: match ip dst 10.2.0.0/16 flowid 1:1
tc filter add dev {dev} parent 1:0 prio 1 handle 1:1:1 protocol ip u32 ht 1:1: match ip src 10.1.0.0/16 hashkey mask 0x00ff0000 at 16 link 2:
tc filter add dev {dev} parent 1:0 prio 1 handle 3: protocol ip u32 divisor 256
tc class add dev {dev} parent 1:0 classid 1:2 htb rate 100gbit ceil 100gbit burst 12501600b cburst 12501600b quantum 200000
tc qdisc add dev {dev} parent 1:2 handle 3: netem limit 100000 delay 0us loss 2%
tc filter add dev {dev} parent 1:0 prio 1 handle 3:1:1 protocol ip u32 ht 3:1: match ip dst 10.1.0.0/16 flowid 1:2
tc filter add dev {dev} parent 1:0 prio 1 handle 1:2:2 protocol ip u32 ht 1:2: match ip src 10.2.0.0/16 hashkey mask 0x00ff0000 at 16 link 3:
tc filter add dev {dev} parent 1:0 prio 1 protocol ip u32 match u32 0 0 at 12 hashkey mask 0x00ff0000 at 12 link 1:
";
}
