//! Which of the topology's nodes run on which host of the inventory. Every node is placed,
//! with or without a role (nodes without one still exist in the network), and no host gets
//! more than its `capacity`:
//! - `round_robin`: node `i` goes to the next host in turn, full hosts skipped;
//! - `by_group`: whole groups, largest first, each to the host with the most room left; a
//!   group larger than every host's room is split over the roomiest hosts;
//! - `fill`: hosts in order, each to its capacity, and what is left spread evenly over the
//!   hosts without one;
//! - a map from host names to node selectors (the `topology::select` syntax), which must
//!   name every node exactly once.
//!
//! A host without a capacity has no limit; where room must be compared (`by_group`) it
//! counts as holding an even share of the nodes the capped hosts cannot take, and never less
//! than an even share of all nodes.

use crate::inventory::HostEntry;
use shaping::RemoteNodes;
use thiserror::Error;
use topology::LinkModel;

/// How nodes are spread over hosts (`placement:` in the inventory).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    #[default]
    RoundRobin,
    ByGroup,
    Fill,
    /// Each host (by name) and the selector of the nodes it runs.
    Map(Vec<(String, String)>),
}

/// Why the nodes cannot be placed; one line, saying what to change.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlaceError {
    #[error("the inventory lists no host; add at least one under `hosts:`")]
    NoHosts,
    #[error(
        "the topology has {nodes} nodes but the {hosts} hosts of the inventory hold at most \
         {capacity} (their `capacity` summed); add hosts, or raise or remove their `capacity`"
    )]
    TooSmall {
        nodes: usize,
        hosts: usize,
        capacity: usize,
    },
    #[error("the placement map names `{0}`, which is not a host of the inventory; name a host listed under `hosts:`")]
    UnknownHost(String),
    #[error("the placement map's selector for host `{host}`: {message}")]
    Selector { host: String, message: String },
    #[error("the placement map puts node `{node}` on both `{first}` and `{second}`; give each node to one host")]
    Twice {
        node: String,
        first: String,
        second: String,
    },
    #[error("the placement map puts node `{node}`{more} on no host; add it to a host's selector (every node of the topology runs somewhere)")]
    Unplaced { node: String, more: String },
    #[error("the placement map gives host `{host}` {given} nodes but its capacity is {capacity}; move nodes to other hosts or raise its `capacity`")]
    OverCapacity {
        host: String,
        given: usize,
        capacity: usize,
    },
}

/// The nodes (indices into `link.nodes`, ascending) each host runs, in inventory order.
pub fn place(
    link: &LinkModel,
    hosts: &[HostEntry],
    placement: &Placement,
) -> Result<Vec<Vec<usize>>, PlaceError> {
    if hosts.is_empty() {
        return Err(PlaceError::NoHosts);
    }
    let n = link.nodes.len();
    if hosts.iter().all(|h| h.capacity.is_some()) {
        let capacity = hosts.iter().filter_map(|h| h.capacity).sum::<usize>();
        if capacity < n {
            return Err(PlaceError::TooSmall {
                nodes: n,
                hosts: hosts.len(),
                capacity,
            });
        }
    }
    let mut placed = match placement {
        Placement::RoundRobin => round_robin(n, hosts),
        Placement::ByGroup => by_group(link, hosts),
        Placement::Fill => fill(n, hosts),
        Placement::Map(map) => by_map(link, hosts, map)?,
    };
    for nodes in &mut placed {
        nodes.sort_unstable();
    }
    Ok(placed)
}

/// For host `h`: the nodes of every other host, reached through that host's address.
pub fn routes(placed: &[Vec<usize>], hosts: &[HostEntry], h: usize) -> Vec<RemoteNodes> {
    placed
        .iter()
        .zip(hosts)
        .enumerate()
        .filter(|(g, (nodes, _))| *g != h && !nodes.is_empty())
        .map(|(_, (nodes, host))| RemoteNodes {
            what: host.name.clone(),
            nodes: nodes.clone(),
            via: host.ip,
        })
        .collect()
}

/// Room left on each host (`usize::MAX` without a capacity).
fn capacities(hosts: &[HostEntry]) -> Vec<usize> {
    hosts
        .iter()
        .map(|h| h.capacity.unwrap_or(usize::MAX))
        .collect()
}

fn round_robin(n: usize, hosts: &[HostEntry]) -> Vec<Vec<usize>> {
    let mut room = capacities(hosts);
    let mut placed = vec![Vec::new(); hosts.len()];
    // The hosts with room, in inventory order; a host leaves it when full.
    let mut open: Vec<usize> = (0..hosts.len()).filter(|&h| room[h] > 0).collect();
    let mut turn = 0;
    for node in 0..n {
        let h = open[turn];
        placed[h].push(node);
        room[h] -= 1;
        if room[h] == 0 {
            // The next host in turn slides into this place.
            open.remove(turn);
        } else {
            turn += 1;
        }
        if turn >= open.len() {
            turn = 0;
        }
    }
    placed
}

fn by_group(link: &LinkModel, hosts: &[HostEntry]) -> Vec<Vec<usize>> {
    let n = link.nodes.len();
    let capped: usize = hosts.iter().filter_map(|h| h.capacity).sum();
    let uncapped = hosts.iter().filter(|h| h.capacity.is_none()).count();
    let share = |nodes: usize, over: usize| nodes.div_ceil(over.max(1));
    let even = share(n, hosts.len()).max(share(n.saturating_sub(capped), uncapped));
    let mut room: Vec<usize> = hosts.iter().map(|h| h.capacity.unwrap_or(even)).collect();
    let mut placed = vec![Vec::new(); hosts.len()];
    let mut groups: Vec<usize> = (0..link.groups.len()).collect();
    // Largest first; equal sizes in declaration order.
    groups.sort_by_key(|&g| std::cmp::Reverse(link.groups[g].nodes.len()));
    for g in groups {
        let mut nodes = link.groups[g].nodes.clone();
        while !nodes.is_empty() {
            // The roomiest host, the first of equals; the room always suffices (`place`
            // checked the capacities, and uncapped hosts take every node left).
            let h = (0..hosts.len())
                .max_by_key(|&h| (room[h], std::cmp::Reverse(h)))
                .unwrap_or(0);
            let take = nodes.len().min(room[h]).max(1);
            placed[h].extend(nodes.start..nodes.start + take);
            room[h] = room[h].saturating_sub(take);
            nodes.start += take;
        }
    }
    placed
}

fn fill(n: usize, hosts: &[HostEntry]) -> Vec<Vec<usize>> {
    let mut left = n;
    let mut counts: Vec<usize> = hosts
        .iter()
        .map(|h| {
            let take = h.capacity.map_or(0, |c| c.min(left));
            left -= take;
            take
        })
        .collect();
    let uncapped: Vec<usize> = (0..hosts.len())
        .filter(|&h| hosts[h].capacity.is_none())
        .collect();
    for (k, &h) in uncapped.iter().enumerate() {
        counts[h] = left / uncapped.len() + usize::from(k < left % uncapped.len());
    }
    let mut next = 0;
    counts
        .into_iter()
        .map(|c| {
            next += c;
            (next - c..next).collect()
        })
        .collect()
}

fn by_map(
    link: &LinkModel,
    hosts: &[HostEntry],
    map: &[(String, String)],
) -> Result<Vec<Vec<usize>>, PlaceError> {
    let mut placed = vec![Vec::new(); hosts.len()];
    let mut owner: Vec<Option<usize>> = vec![None; link.nodes.len()];
    for (host, selector) in map {
        let h = hosts
            .iter()
            .position(|e| &e.name == host)
            .ok_or_else(|| PlaceError::UnknownHost(host.clone()))?;
        let nodes = topology::select::select(link, &[selector]).map_err(|message| {
            PlaceError::Selector {
                host: host.clone(),
                message,
            }
        })?;
        for &node in &nodes {
            if let Some(first) = owner[node].replace(h) {
                return Err(PlaceError::Twice {
                    node: link.nodes[node].name.clone(),
                    first: hosts[first].name.clone(),
                    second: host.clone(),
                });
            }
        }
        placed[h].extend(nodes);
    }
    let mut missing = owner.iter().enumerate().filter(|(_, o)| o.is_none());
    if let Some((node, _)) = missing.next() {
        let more = missing.count();
        return Err(PlaceError::Unplaced {
            node: link.nodes[node].name.clone(),
            more: if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            },
        });
    }
    for (nodes, host) in placed.iter().zip(hosts) {
        if let Some(capacity) = host.capacity.filter(|&c| nodes.len() > c) {
            return Err(PlaceError::OverCapacity {
                host: host.name.clone(),
                given: nodes.len(),
                capacity,
            });
        }
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Hosts `h0`, `h1`, ... at 192.0.2.1, .2, ... with these capacities.
    fn hosts(capacities: &[Option<usize>]) -> Vec<HostEntry> {
        capacities
            .iter()
            .enumerate()
            .map(|(i, &capacity)| HostEntry {
                name: format!("h{i}"),
                address: format!("192.0.2.{}", i + 1),
                ip: Ipv4Addr::new(192, 0, 2, i as u8 + 1),
                dev: "eth0".into(),
                capacity,
            })
            .collect()
    }

    /// The nodes each host runs, as counts.
    fn counts(placed: &[Vec<usize>]) -> Vec<usize> {
        placed.iter().map(Vec::len).collect()
    }

    /// Groups g0 (nodes 0..3) and g1 (3..6), as `LinkModel::uniform(2, 3, ..)`.
    fn six() -> LinkModel {
        LinkModel::uniform(2, 3, 1, 1, 0)
    }

    fn map(pairs: &[(&str, &str)]) -> Placement {
        Placement::Map(
            pairs
                .iter()
                .map(|(h, s)| (h.to_string(), s.to_string()))
                .collect(),
        )
    }

    #[test]
    fn round_robin_deals_nodes_in_turn_and_skips_full_hosts() {
        let placed = place(&six(), &hosts(&[None, None]), &Placement::RoundRobin);
        assert_eq!(placed, Ok(vec![vec![0, 2, 4], vec![1, 3, 5]]));
        let placed = place(
            &six(),
            &hosts(&[Some(1), None, Some(2)]),
            &Placement::RoundRobin,
        );
        assert_eq!(placed, Ok(vec![vec![0], vec![1, 3, 5], vec![2, 4]]));
        // A host of capacity 0 gets nothing, and exact capacities are enough.
        let placed = place(
            &six(),
            &hosts(&[Some(0), Some(4), Some(2)]),
            &Placement::RoundRobin,
        );
        assert_eq!(placed, Ok(vec![vec![], vec![0, 2, 4, 5], vec![1, 3]]));
    }

    #[test]
    fn by_group_keeps_groups_whole_on_the_roomiest_host() {
        let placed = place(&six(), &hosts(&[None, None]), &Placement::ByGroup);
        assert_eq!(placed, Ok(vec![vec![0, 1, 2], vec![3, 4, 5]]));
        // Three groups of 3 nodes over 3 hosts: one group each; the capped host with the
        // most room takes the first (largest) group.
        let m = LinkModel::uniform(3, 3, 1, 1, 0);
        let placed = place(&m, &hosts(&[None, Some(5), None]), &Placement::ByGroup);
        assert_eq!(
            placed,
            Ok(vec![vec![3, 4, 5], vec![0, 1, 2], vec![6, 7, 8]])
        );
    }

    #[test]
    fn by_group_splits_a_group_larger_than_any_room() {
        // One group of 10 over two hosts: five nodes each, in runs.
        let m = LinkModel::uniform(1, 10, 1, 1, 0);
        let placed = place(&m, &hosts(&[None, None]), &Placement::ByGroup).unwrap();
        assert_eq!(placed, vec![(0..5).collect::<Vec<_>>(), (5..10).collect()]);
        // Capacities 4, 3, 3: the group is cut at every host's room.
        let placed = place(
            &m,
            &hosts(&[Some(3), Some(4), Some(3)]),
            &Placement::ByGroup,
        );
        assert_eq!(
            placed,
            Ok(vec![vec![4, 5, 6], vec![0, 1, 2, 3], vec![7, 8, 9]])
        );
        // Two groups of 5 over capacities 6 and 4: the first fits whole, the second does
        // not: the roomiest host takes what it can and the rest spills over.
        let m = LinkModel::uniform(2, 5, 1, 1, 0);
        let placed = place(&m, &hosts(&[Some(6), Some(4)]), &Placement::ByGroup);
        assert_eq!(placed, Ok(vec![vec![0, 1, 2, 3, 4, 9], vec![5, 6, 7, 8]]));
    }

    #[test]
    fn fill_fills_capped_hosts_in_order_and_spreads_the_rest() {
        let m = LinkModel::uniform(1, 10, 1, 1, 0);
        let placed = place(
            &m,
            &hosts(&[Some(4), None, Some(3), None]),
            &Placement::Fill,
        );
        assert_eq!(
            placed,
            Ok(vec![vec![0, 1, 2, 3], vec![4, 5], vec![6, 7, 8], vec![9]])
        );
        // Enough room in the first hosts: the others get nothing.
        let placed = place(&m, &hosts(&[Some(8), Some(8), None]), &Placement::Fill).unwrap();
        assert_eq!(counts(&placed), [8, 2, 0]);
        // No capacity at all: an even split in order.
        let placed = place(&m, &hosts(&[None, None, None]), &Placement::Fill).unwrap();
        assert_eq!(counts(&placed), [4, 3, 3]);
        assert_eq!(placed[2], [7, 8, 9]);
    }

    #[test]
    fn a_map_places_each_hosts_selector() {
        let placed = place(
            &six(),
            &hosts(&[None, None, None]),
            &map(&[("h2", "g1[2-3],g0n1"), ("h0", "g0[2-3]"), ("h1", "g1n1")]),
        );
        assert_eq!(placed, Ok(vec![vec![1, 2], vec![3], vec![0, 4, 5]]));
        // A host the map leaves out runs nothing.
        let placed = place(&six(), &hosts(&[None, None]), &map(&[("h1", "*")]));
        assert_eq!(placed, Ok(vec![vec![], (0..6).collect()]));
    }

    #[test]
    fn map_errors_name_the_node_or_host_at_fault() {
        let two = hosts(&[None, Some(2)]);
        let error =
            |pairs: &[(&str, &str)]| place(&six(), &two, &map(pairs)).unwrap_err().to_string();
        assert_eq!(
            error(&[("h0", "g0,g1n1"), ("h1", "g1n1,g1n2,g1n3")]),
            "the placement map puts node `g1n1` on both `h0` and `h1`; give each node to one host"
        );
        assert_eq!(
            error(&[("h0", "g0[1-2]"), ("h1", "g1[2-3]")]),
            "the placement map puts node `g0n3` (and 1 more) on no host; add it to a host's selector (every node of the topology runs somewhere)"
        );
        assert_eq!(
            error(&[("h0", "g0"), ("h1", "g1[1-2]"), ("h2", "g1n3")]),
            "the placement map names `h2`, which is not a host of the inventory; name a host listed under `hosts:`"
        );
        assert_eq!(
            error(&[("h0", "g0"), ("h1", "g1[2-4]")]),
            "the placement map's selector for host `h1`: `g1[2-4]` is not a range of 1..3; write `g1[A-B]` with 1 <= A <= B <= 3"
        );
        assert_eq!(
            error(&[("h0", "g0n1"), ("h1", "g1,g0[2-3]")]),
            "the placement map gives host `h1` 5 nodes but its capacity is 2; move nodes to other hosts or raise its `capacity`"
        );
    }

    #[test]
    fn too_little_capacity_or_no_host_is_refused_in_one_line() {
        for placement in [
            Placement::RoundRobin,
            Placement::ByGroup,
            Placement::Fill,
            map(&[("h0", "*")]),
        ] {
            assert_eq!(
                place(&six(), &hosts(&[Some(2), Some(3)]), &placement)
                    .unwrap_err()
                    .to_string(),
                "the topology has 6 nodes but the 2 hosts of the inventory hold at most 5 (their `capacity` summed); add hosts, or raise or remove their `capacity`"
            );
            assert_eq!(place(&six(), &[], &placement), Err(PlaceError::NoHosts));
        }
        assert_eq!(
            PlaceError::NoHosts.to_string(),
            "the inventory lists no host; add at least one under `hosts:`"
        );
    }

    #[test]
    fn routes_lead_to_every_other_hosts_nodes_through_it() {
        let h = hosts(&[None, None, None]);
        let placed = vec![vec![0, 1], vec![], vec![2, 3, 4, 5]];
        let routes = routes(&placed, &h, 0);
        let seen: Vec<(&str, &[usize], String)> = routes
            .iter()
            .map(|r| (r.what.as_str(), r.nodes.as_slice(), r.via.to_string()))
            .collect();
        assert_eq!(seen, [("h2", &[2, 3, 4, 5][..], "192.0.2.3".to_string())]);
    }

    #[test]
    fn five_thousand_nodes_place_over_180_hosts() {
        // 20 groups of 250 nodes, like a large BitTorrent run.
        let m = LinkModel::uniform(20, 250, 1, 1, 0);
        let mut caps = vec![None; 180];
        caps[7] = Some(28);
        let h = hosts(&caps);
        let selectors: Vec<(String, String)> = (0..180)
            .map(|k| {
                let (g, i) = (k / 9, k % 9);
                let last = if i == 8 { 250 } else { i * 28 + 28 };
                (format!("h{k}"), format!("g{g}[{}-{last}]", i * 28 + 1))
            })
            .collect();
        for placement in [
            Placement::RoundRobin,
            Placement::ByGroup,
            Placement::Fill,
            Placement::Map(selectors),
        ] {
            let placed = place(&m, &h, &placement).unwrap();
            let mut all: Vec<usize> = placed.concat();
            all.sort_unstable();
            assert_eq!(all, (0..5000).collect::<Vec<_>>(), "{placement:?}");
            assert!(placed[7].len() <= 28, "{placement:?}");
            assert_eq!(routes(&placed, &h, 0).len(), 179, "{placement:?}");
        }
    }
}
