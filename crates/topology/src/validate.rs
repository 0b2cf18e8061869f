//! From text to `Plan`: parse the YAML (serde, unknown fields refused), check every field,
//! allocate addresses and fill the delay table. All problems are gathered, each placed at
//! its file, line, column and field path with a fix, before anything is returned.

use crate::address;
use crate::check::{known, Checker};
use crate::diag::Diagnostics;
use crate::link::{Group, LinkModel, Node};
use crate::matrix;
use crate::plan::{Plan, Profile};
use crate::raw::RawTopology;
use crate::units::{parse_loss, parse_rate, parse_time_us};
use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::path::Path;

/// Queue limit of a profile that gives none, packets.
pub const DEFAULT_QUEUE_PACKETS: u32 = 1000;
/// Packet sizes a topology may ask for (`mtu`): IPv4's minimum datagram every host must take,
/// up to `lo`'s default.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 576..=65536;
/// The most nodes a topology may have: far above the 5,760 peers one machine has been seen to
/// host and the 100,000 a simulator-sized run needs, and low enough that `p2plab check`
/// stays quick (1,000,000 nodes: 1.6 s and 210 MB in a debug build; 16,000,000 took 94 s
/// and 3.3 GB).
pub const MAX_NODES: usize = 1_000_000;
/// The most groups a topology may have: the group-to-group table holds the square of it, and
/// the largest public latency data sets (King, Meridian) have fewer than 4,096 hosts.
pub const MAX_GROUPS: usize = 4096;
/// Address block the plan allocates from when the file gives none.
pub const DEFAULT_BASE: &str = "10.0.0.0/8";

/// Validates and plans the topology in `source`, read from `file` (matrix files are
/// resolved relative to its folder).
pub fn build(file: &Path, source: &str) -> Result<Plan, Diagnostics> {
    let raw: RawTopology = crate::check::parse(file, source, "topology")?;
    let mut c = Checker::new(file, source);
    if raw.groups.len() > MAX_GROUPS {
        c.error(
            "groups",
            format!(
                "{} groups are more than the limit of {MAX_GROUPS}",
                raw.groups.len()
            ),
            "merge groups that share their delays",
        );
        return Err(c.take().unwrap_or_default());
    }
    if let Some(mtu) = raw.mtu.filter(|m| !MTU_RANGE.contains(m)) {
        c.error(
            "mtu",
            format!(
                "{mtu} bytes is outside {}..={}",
                MTU_RANGE.start(),
                MTU_RANGE.end()
            ),
            "give a packet size in bytes, e.g. 1500 for Ethernet",
        );
    }

    let profiles: Vec<Profile> = raw
        .profiles
        .iter()
        .map(|(name, p)| {
            let at = format!("profiles.{name}");
            c.name(&at, "profile", name);
            let queue_packets = p.queue.unwrap_or(DEFAULT_QUEUE_PACKETS);
            if queue_packets == 0 {
                c.error(
                    &format!("{at}.queue"),
                    "queue limit is 0 packets",
                    "give at least 1 packet",
                );
            }
            Profile {
                name: name.clone(),
                up_bps: c.value(&format!("{at}.up"), Some(&p.up), parse_rate, 1),
                down_bps: c.value(&format!("{at}.down"), Some(&p.down), parse_rate, 1),
                latency_us: c.value(
                    &format!("{at}.latency"),
                    p.latency.as_ref(),
                    parse_time_us,
                    0,
                ),
                loss: c.value(&format!("{at}.loss"), p.loss.as_ref(), parse_loss, 0.0),
                queue_packets,
            }
        })
        .collect();
    let profile_index: HashMap<&str, usize> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let profile_names = || known(profiles.iter().map(|p| p.name.clone()));

    let default_profile = raw.defaults.profile.as_deref().and_then(|name| {
        let found = profile_index.get(name).copied();
        if found.is_none() {
            c.error(
                "defaults.profile",
                format!("unknown profile `{name}`"),
                format!("use one of: {}", profile_names()),
            );
        }
        found
    });
    let default_delay = c.value(
        "defaults.delay",
        raw.defaults.delay.as_ref(),
        parse_time_us,
        0,
    );
    let default_loss = c.value("defaults.loss", raw.defaults.loss.as_ref(), parse_loss, 0.0);

    // Groups: names, profiles, node names, prefixes.
    let mut group_index: HashMap<&str, usize> = HashMap::new();
    let mut group_profiles = Vec::with_capacity(raw.groups.len());
    let mut requests = Vec::with_capacity(raw.groups.len());
    let mut group_names = Vec::with_capacity(raw.groups.len());
    for (i, g) in raw.groups.iter().enumerate() {
        let at = format!("groups[{i}]");
        c.name(&format!("{at}.name"), "group", &g.name);
        if let Some(first) = group_index.insert(&g.name, i) {
            c.error(
                &format!("{at}.name"),
                format!("group name `{}` is already used by groups[{first}]", g.name),
                "give every group its own name",
            );
        }
        let profile = match g.profile.as_deref() {
            Some(name) => profile_index.get(name).copied().or_else(|| {
                c.error(
                    &format!("{at}.profile"),
                    format!("unknown profile `{name}`"),
                    format!("use one of: {}", profile_names()),
                );
                None
            }),
            None => default_profile.or_else(|| {
                if raw.defaults.profile.is_none() {
                    c.error(
                        &at,
                        "group has no profile",
                        "add `profile:` to the group or set `defaults.profile`",
                    );
                }
                None
            }),
        };
        group_profiles.push(profile.unwrap_or(0));
        let names = node_names(&mut c, &format!("{at}.nodes"), &g.nodes);
        let count = match &names {
            NodeNames::Numbered(n) => *n,
            NodeNames::Named(names) => names.len(),
        };
        let prefix = g
            .prefix
            .as_deref()
            .and_then(|text| match text.parse::<Ipv4Net>() {
                Ok(net) if net.network() == net.addr() => Some(net),
                Ok(net) => {
                    c.error(
                        &format!("{at}.prefix"),
                        format!("prefix `{text}` has host bits set"),
                        format!("write `{}`", net.trunc()),
                    );
                    None
                }
                Err(_) => {
                    c.error(
                        &format!("{at}.prefix"),
                        format!("`{text}` is not an IPv4 prefix"),
                        "write an address block such as `10.1.0.0/24`",
                    );
                    None
                }
            });
        let before: usize = requests.iter().map(|r: &(_, usize)| r.1).sum();
        if before <= MAX_NODES && before + count > MAX_NODES {
            c.error(
                &format!("{at}.nodes"),
                format!(
                    "this group brings the topology to {} nodes, more than the limit of {MAX_NODES}",
                    before + count
                ),
                "use fewer nodes, or spread the experiment over several machines",
            );
        }
        requests.push((prefix, count));
        group_names.push(names);
    }
    if requests.iter().map(|r| r.1).sum::<usize>() > MAX_NODES {
        // Nothing below is worth its memory at this size.
        return Err(c.take().unwrap_or_default());
    }

    let base_text = raw.address_plan.base.as_deref().unwrap_or(DEFAULT_BASE);
    let base = base_text
        .parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .unwrap_or_else(|_| {
            c.error(
                "address_plan.base",
                format!("`{base_text}` is not an IPv4 prefix"),
                "write an address block such as `10.0.0.0/8`",
            );
            DEFAULT_BASE.parse().expect("default base")
        });
    let prefixes = address::allocate(base, &requests).unwrap_or_else(|errs| {
        for (g, message, fix) in errs {
            let at = if raw.groups[g].prefix.is_some() {
                format!("groups[{g}].prefix")
            } else {
                format!("groups[{g}].nodes")
            };
            c.error(&at, message, fix);
        }
        Vec::new()
    });

    // Group-to-group delays and losses.
    let n = raw.groups.len();
    let mut delay_us: Vec<u64> = (0..n * n)
        .map(|i| if i / n == i % n { 0 } else { default_delay })
        .collect();
    let mut pair_loss: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 0.0 } else { default_loss })
        .collect();
    if let Some(m) = &raw.delay_matrix {
        let path = file.parent().unwrap_or(Path::new(".")).join(&m.file);
        match std::fs::read_to_string(&path) {
            Ok(text) => match matrix::parse(&path, &text, m.format, n) {
                Ok(entries) => {
                    let given = given_pairs(n, entries.iter().map(|&(a, b, _)| (a, b)));
                    apply_symmetric(n, &given, &entries, |i, v| delay_us[i] = v)
                }
                Err(errs) => c.errors.extend(errs),
            },
            Err(e) => c.error(
                "delay_matrix.file",
                format!("cannot read `{}`: {e}", path.display()),
                "give a path relative to the topology file",
            ),
        }
    }
    let mut delay_entries = Vec::new();
    let mut loss_entries = Vec::new();
    let mut seen = HashMap::new();
    let mut group_order: Vec<&str> = group_index.keys().copied().collect();
    group_order.sort_by_key(|name| group_index[name]);
    for (i, d) in raw.delays.iter().enumerate() {
        let at = format!("delays[{i}]");
        let mut end = |field: &str, name: &str| {
            let found = group_index.get(name).copied();
            if found.is_none() {
                c.error(
                    &format!("{at}.{field}"),
                    format!("unknown group `{name}`"),
                    format!(
                        "use one of: {}",
                        known(group_order.iter().map(|g| g.to_string()))
                    ),
                );
            }
            found
        };
        let (a, b) = (end("from", &d.from), end("to", &d.to));
        let delay = c.value(&format!("{at}.delay"), d.delay.as_ref(), parse_time_us, 0);
        let loss = c.value(&format!("{at}.loss"), d.loss.as_ref(), parse_loss, 0.0);
        if d.delay.is_none() && d.loss.is_none() {
            c.error(
                &at,
                "gives neither `delay` nor `loss`",
                "add `delay: 20ms` and/or `loss: 1%`",
            );
        }
        let (Some(a), Some(b)) = (a, b) else { continue };
        if let Some(first) = seen.insert((a, b), i) {
            c.error(
                &at,
                format!(
                    "the pair {} -> {} is already given by delays[{first}]",
                    d.from, d.to
                ),
                "give each direction once",
            );
        }
        if d.delay.is_some() {
            delay_entries.push((a, b, delay));
        }
        if d.loss.is_some() {
            loss_entries.push((a, b, loss));
        }
    }
    // A direction given by an entry of its own keeps what that entry says, for each field:
    // `eu -> asia` with a delay only has no loss even when `asia -> eu` gives one.
    let given = given_pairs(n, seen.keys().copied());
    apply_symmetric(n, &given, &delay_entries, |i, v| delay_us[i] = v);
    apply_symmetric(n, &given, &loss_entries, |i, v| pair_loss[i] = v);

    if let Some(found) = c.take() {
        return Err(found);
    }

    // Everything is valid: lay out the nodes.
    let mut nodes = Vec::with_capacity(requests.iter().map(|r| r.1).sum());
    let mut groups = Vec::with_capacity(n);
    let mut by_name = HashMap::with_capacity(nodes.capacity());
    for (g, raw_group) in raw.groups.iter().enumerate() {
        let profile = &profiles[group_profiles[g]];
        let start = nodes.len();
        let names: Box<dyn Iterator<Item = String>> = match &group_names[g] {
            NodeNames::Numbered(count) => {
                Box::new((1..=*count).map(|k| format!("{}-{k}", raw_group.name)))
            }
            NodeNames::Named(names) => Box::new(names.iter().cloned()),
        };
        let network = u32::from(prefixes[g].network());
        for (k, name) in names.enumerate() {
            if let Some(first) = by_name.insert(name.clone(), nodes.len()) {
                let other: &Node = &nodes[first];
                let at = match &group_names[g] {
                    NodeNames::Numbered(_) => format!("groups[{g}].nodes"),
                    NodeNames::Named(_) => format!("groups[{g}].nodes[{k}]"),
                };
                c.error(
                    &at,
                    format!(
                        "node name `{name}` is already used in group `{}`",
                        raw.groups[other.group].name
                    ),
                    "give every node its own name",
                );
            }
            nodes.push(Node {
                name,
                ip: (network + k as u32 + 1).into(),
                group: g,
                up_bps: profile.up_bps,
                down_bps: profile.down_bps,
                latency_us: profile.latency_us,
                loss: profile.loss,
                queue_packets: profile.queue_packets,
            });
        }
        groups.push(Group {
            name: raw_group.name.clone(),
            prefix: prefixes[g],
            nodes: start..nodes.len(),
        });
    }
    if let Some(found) = c.take() {
        return Err(found);
    }
    Ok(Plan {
        profiles,
        group_profiles,
        link: LinkModel::with_names(nodes, groups, delay_us, pair_loss, raw.mtu, by_name),
    })
}

/// A group's nodes: `<group>-1 ..= <group>-N`, or names given one by one.
enum NodeNames {
    Numbered(usize),
    Named(Vec<String>),
}

/// Reads a group's `nodes` field: a positive count or a list of plain names.
fn node_names(c: &mut Checker<'_>, at: &str, value: &serde_yaml_ng::Value) -> NodeNames {
    use serde_yaml_ng::Value;
    match value {
        Value::Number(n) if n.as_u64().is_some_and(|n| n >= 1 && n <= u32::MAX as u64) => {
            NodeNames::Numbered(n.as_u64().unwrap_or(0) as usize)
        }
        Value::Sequence(items) if !items.is_empty() => NodeNames::Named(
            items
                .iter()
                .enumerate()
                .map(|(j, item)| match item {
                    Value::String(name) => {
                        c.name(&format!("{at}[{j}]"), "node", name);
                        name.clone()
                    }
                    _ => {
                        c.error(
                            &format!("{at}[{j}]"),
                            "a node name must be text",
                            "write a plain name such as `seed1`",
                        );
                        String::new()
                    }
                })
                .collect(),
        ),
        _ => {
            c.error(
                at,
                "expected a node count of at least 1 or a list of node names",
                "write e.g. `nodes: 10` or `nodes: [tracker, seed]`",
            );
            NodeNames::Numbered(0)
        }
    }
}

/// The `n x n` table of the directions `pairs` gives, row-major.
fn given_pairs(n: usize, pairs: impl Iterator<Item = (usize, usize)>) -> Vec<bool> {
    let mut given = vec![false; n * n];
    for (a, b) in pairs {
        given[a * n + b] = true;
    }
    given
}

/// Applies `(a, b, value)` entries to an `n x n` table: each sets its own direction, and
/// the reverse direction too unless the reverse is `given` by an entry of its own.
fn apply_symmetric<T: Copy>(
    n: usize,
    given: &[bool],
    entries: &[(usize, usize, T)],
    mut set: impl FnMut(usize, T),
) {
    for &(a, b, v) in entries {
        set(a * n + b, v);
        if !given[b * n + a] {
            set(b * n + a, v);
        }
    }
}
