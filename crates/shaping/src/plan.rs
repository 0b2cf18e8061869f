//! The plan of kernel objects for one network on one host.
//!
//! Single-host model (`--dev lo`): every node is a /32 alias on the device. Per network,
//! two IFB devices carry the shaping trees: the device's clsact egress hook redirects
//! packets whose source is a virtual prefix to the upload IFB (one HTB class per node at
//! U(v), classified by source address), its ingress hook redirects packets to a virtual
//! destination to the download IFB (one class per node at D(v), by destination). Each class
//! has a leaf: pfifo (nfqueue backend, delay and loss in the engine) or netem with the
//! node's L(v) and p(v) (netem backend). Lookups are hashed u32 tables: the third octet
//! (or whichever 8-bit window spreads the /24 networks best)
//! picks a /24 table, the last octet picks the node's bucket. With the netem backend the
//! group-to-group delays and losses live in the device's root qdisc: one class per
//! (source group, destination group) pair with a netem leaf.

use crate::model::Model;
use netctl::probe::Backend;
use netctl::{Field, Handle, Object, Parent, QdiscKind, Target, U32};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Queue length of the HTB direct queue (unclassified, unshaped traffic).
const DIRECT_QLEN: u32 = 10_000;
/// Rate of a group-pair class: the pair stage delays, it does not limit.
const PAIR_RATE_BPS: u64 = 100_000_000_000;
/// Queue limit of a group-pair netem: it holds every packet in flight on the pair.
const PAIR_LIMIT: u32 = 100_000;
/// Priority of the filters on the shaping IFBs and the pair stage.
const PRIO: u16 = 1;

/// Where and how one network is shaped.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Device the aliases live on (`lo` on a single host).
    pub dev: String,
    /// Network slot on this host: names the IFBs and the clsact filter priority.
    pub slot: u16,
    /// Shaping backend.
    pub backend: Backend,
}

impl Layout {
    /// The upload IFB's name.
    pub fn up_ifb(&self) -> String {
        format!("p2p{}up", self.slot)
    }
    /// The download IFB's name.
    pub fn down_ifb(&self) -> String {
        format!("p2p{}dn", self.slot)
    }
    /// Priority of this network's filters on the device's clsact hooks.
    pub fn clsact_prio(&self) -> u16 {
        100 + self.slot
    }
    /// The NFQUEUE queue number of this network's delay engine.
    pub fn queue_num(&self) -> u16 {
        4000 + self.slot
    }
}

/// The class of the node at position `j` of the local node list.
pub fn node_class(j: usize) -> Handle {
    Handle::new(1, j as u16 + 1)
}

/// The objects for `local` (indices into `model.nodes`) shaped per `layout`. The first
/// object is the device's clsact qdisc, which networks on the same device share.
pub fn plan(model: &Model, local: &[usize], layout: &Layout) -> Vec<Object> {
    let dev = &layout.dev;
    let mut out: Vec<Object> = local
        .iter()
        .map(|&i| Object::Addr {
            dev: dev.clone(),
            ip: model.nodes[i].ip,
            len: 32,
        })
        .collect();
    out.insert(
        0,
        Object::Qdisc {
            dev: dev.clone(),
            parent: Parent::Clsact,
            handle: 0,
            kind: QdiscKind::Clsact,
        },
    );
    for (ifb, field) in [
        (layout.up_ifb(), Field::Src),
        (layout.down_ifb(), Field::Dst),
    ] {
        out.push(Object::Ifb { name: ifb.clone() });
        direction_tree(&mut out, model, local, layout.backend, &ifb, field);
    }
    let mut groups: Vec<usize> = local.iter().map(|&i| model.nodes[i].group).collect();
    groups.sort_unstable();
    groups.dedup();
    for (hook, field, ifb) in [
        (Parent::Egress, Field::Src, layout.up_ifb()),
        (Parent::Ingress, Field::Dst, layout.down_ifb()),
    ] {
        for &g in &groups {
            out.push(Object::Filter {
                dev: dev.clone(),
                parent: hook,
                prio: layout.clsact_prio(),
                u32: U32::Entry {
                    ht: None,
                    node: 0,
                    field,
                    net: model.groups[g].prefix,
                    target: Target::Redirect(ifb.clone()),
                },
            });
        }
    }
    if layout.backend == Backend::Netem && model.has_delay_or_loss() {
        pair_stage(&mut out, model, &groups, dev);
    }
    out
}

/// HTB root, one class and leaf per node, and the hashed classifier, on one IFB.
fn direction_tree(
    out: &mut Vec<Object>,
    model: &Model,
    local: &[usize],
    backend: Backend,
    ifb: &str,
    field: Field,
) {
    let root = Handle::new(1, 0);
    let dev = || ifb.to_string();
    out.push(Object::Qdisc {
        dev: dev(),
        parent: Parent::Root,
        handle: 1,
        kind: QdiscKind::Htb {
            direct_qlen: DIRECT_QLEN,
        },
    });
    for (j, &i) in local.iter().enumerate() {
        let n = &model.nodes[i];
        let rate_bps = if field == Field::Src {
            n.up_bps
        } else {
            n.down_bps
        };
        out.push(Object::HtbClass {
            dev: dev(),
            classid: node_class(j),
            parent: root,
            rate_bps,
        });
        let kind = match backend {
            Backend::Nfqueue => QdiscKind::Pfifo {
                limit: n.queue_packets,
            },
            Backend::Netem => QdiscKind::Netem {
                delay_us: n.latency_us,
                loss: n.loss,
                limit: n.queue_packets + bdp_packets(rate_bps, n.latency_us),
            },
        };
        out.push(Object::Qdisc {
            dev: dev(),
            parent: Parent::Of(node_class(j)),
            handle: j as u16 + 2,
            kind,
        });
    }
    // /24 networks holding local nodes, each with its table (ids from 2; 1 is the octet-3 table)
    let mut nets: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (j, &i) in local.iter().enumerate() {
        nets.entry(u32::from(model.nodes[i].ip) >> 8)
            .or_default()
            .push(j);
    }
    let shift = best_shift(nets.keys());
    let filter = |u32| Object::Filter {
        dev: dev(),
        parent: Parent::Of(root),
        prio: PRIO,
        u32,
    };
    out.push(filter(U32::Table {
        id: 1,
        divisor: 256,
    }));
    for (t, (net24, members)) in nets.iter().enumerate() {
        let table = t as u16 + 2;
        out.push(filter(U32::Table {
            id: table,
            divisor: 256,
        }));
        for &j in members {
            let ip = model.nodes[local[j]].ip;
            out.push(filter(U32::Entry {
                ht: Some((table, ip.octets()[3])),
                node: 1,
                field,
                net: (ip, 32),
                target: Target::Class(node_class(j)),
            }));
        }
        out.push(filter(U32::Entry {
            ht: Some((1, ((net24 << 8) >> shift) as u8)),
            node: t as u16 + 1,
            field,
            net: (Ipv4Addr::from(net24 << 8), 24),
            target: Target::Link {
                table,
                key: field,
                mask: 0xff,
            },
        }));
    }
    out.push(filter(U32::Entry {
        ht: None,
        node: 0,
        field,
        net: (Ipv4Addr::UNSPECIFIED, 0),
        target: Target::Link {
            table: 1,
            key: field,
            mask: 0xff << shift,
        },
    }));
}

/// The 8-bit window of the address (bits `shift..shift+8`, above the last octet) that
/// spreads these /24 networks (given as address >> 8) best over 256 buckets.
fn best_shift<'a>(nets: impl Iterator<Item = &'a u32> + Clone) -> u32 {
    (8..=24)
        .min_by_key(|&shift| {
            let mut count = [0u32; 256];
            for n in nets.clone() {
                count[(((n << 8) >> shift) & 0xff) as usize] += 1;
            }
            count.into_iter().max().unwrap_or(0)
        })
        .unwrap_or(8)
}

/// Packets in flight at `rate_bps` during `delay_us`, in 1500-byte packets.
fn bdp_packets(rate_bps: u64, delay_us: u64) -> u32 {
    (rate_bps as u128 * delay_us as u128 / 8 / 1500 / 1_000_000).min(1 << 20) as u32
}

/// netem backend: group-pair delay and loss on the device's root qdisc, classified by
/// source prefix (root table) then destination prefix (one table per source group).
fn pair_stage(out: &mut Vec<Object>, model: &Model, src_groups: &[usize], dev: &str) {
    let ng = model.groups.len();
    let root = Handle::new(1, 0);
    let d = || dev.to_string();
    out.push(Object::Qdisc {
        dev: d(),
        parent: Parent::Root,
        handle: 1,
        kind: QdiscKind::Htb {
            direct_qlen: DIRECT_QLEN,
        },
    });
    let filter = |u32| Object::Filter {
        dev: d(),
        parent: Parent::Of(root),
        prio: PRIO,
        u32,
    };
    for &a in src_groups {
        let table = a as u16 + 1;
        out.push(filter(U32::Table {
            id: table,
            divisor: 1,
        }));
        for b in 0..ng {
            let (delay_us, loss) = (model.group_delay_us[a][b], model.group_loss[a][b]);
            if delay_us == 0 && loss == 0.0 {
                continue;
            }
            let class = Handle::new(1, (a * ng + b + 1) as u16);
            out.push(Object::HtbClass {
                dev: d(),
                classid: class,
                parent: root,
                rate_bps: PAIR_RATE_BPS,
            });
            out.push(Object::Qdisc {
                dev: d(),
                parent: Parent::Of(class),
                handle: (a * ng + b + 2) as u16,
                kind: QdiscKind::Netem {
                    delay_us,
                    loss,
                    limit: PAIR_LIMIT,
                },
            });
            out.push(filter(U32::Entry {
                ht: Some((table, 0)),
                node: b as u16 + 1,
                field: Field::Dst,
                net: model.groups[b].prefix,
                target: Target::Class(class),
            }));
        }
        out.push(filter(U32::Entry {
            ht: None,
            node: 0,
            field: Field::Src,
            net: model.groups[a].prefix,
            target: Target::Link {
                table,
                key: Field::Src,
                mask: 0,
            },
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::grid;

    fn layout(backend: Backend) -> Layout {
        Layout {
            dev: "lo".into(),
            slot: 0,
            backend,
        }
    }

    #[test]
    fn five_thousand_nodes_are_hashed_not_chained() {
        let m = grid(50, 100, 128_000, 2_000_000, 0);
        let local: Vec<usize> = (0..m.nodes.len()).collect();
        let objs = plan(&m, &local, &layout(Backend::Nfqueue));
        let count = |f: &dyn Fn(&Object) -> bool| objs.iter().filter(|o| f(o)).count();
        assert_eq!(count(&|o| matches!(o, Object::Addr { .. })), 5000);
        assert_eq!(count(&|o| matches!(o, Object::HtbClass { .. })), 10_000);
        // the longest chain a packet walks in a shaping IFB: entries of one (table, bucket)
        let mut buckets: BTreeMap<(String, u16, u8), usize> = BTreeMap::new();
        for o in &objs {
            if let Object::Filter {
                dev,
                u32: U32::Entry {
                    ht: Some((t, b)), ..
                },
                ..
            } = o
            {
                *buckets.entry((dev.clone(), *t, *b)).or_default() += 1;
            }
        }
        assert_eq!(buckets.values().max(), Some(&1));
    }

    #[test]
    fn dry_run_reads_like_tc() {
        let m = grid(1, 2, 128_000, 2_000_000, 0);
        let text: Vec<String> = plan(&m, &[0, 1], &layout(Backend::Nfqueue))
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(text[0], "tc qdisc add dev lo clsact");
        assert_eq!(text[1], "ip addr add 10.1.0.1/32 dev lo");
        assert!(text.contains(&"tc class add dev p2p0up parent 1:0 classid 1:1 htb rate 128kbit ceil 128kbit burst 1616b cburst 1616b quantum 1600".to_string()));
        assert!(text.contains(&"tc filter add dev p2p0dn parent 1:0 prio 1 handle 2:2:1 protocol ip u32 ht 2:2: match ip dst 10.1.0.2/32 flowid 1:2".to_string()));
        assert!(text.contains(&"tc filter add dev lo ingress prio 100 protocol ip u32 match ip dst 10.1.0.0/16 action mirred egress redirect dev p2p0dn".to_string()));
    }
}
