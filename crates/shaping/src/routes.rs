//! Cluster routes and their address arithmetic: the nodes on other hosts, each reached
//! through its host, by the fewest prefixes that hold exactly their addresses. Every node
//! not placed on this host is on exactly one route.

use crate::error::Error;
use crate::objects::net;
use ipnet::{Ipv4Net, Ipv4Subnets};
use netctl::Object;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use topology::LinkModel;

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

/// Routes on `dev` to the nodes on other hosts: every node not on this host must be on
/// exactly one `--route` (no node of this host may be), and each route goes to the prefixes
/// of its nodes: a whole group's prefix, else the fewest prefixes holding exactly their addresses.
pub(crate) fn remote_routes(
    model: &LinkModel,
    local: &[usize],
    routes: &[RemoteNodes],
    dev: &str,
) -> Result<Vec<Object>, Error> {
    let here: HashSet<usize> = local.iter().copied().collect();
    let mut on: Vec<Option<&RemoteNodes>> = vec![None; model.nodes.len()];
    let mut out = vec![];
    for r in routes {
        let name = |i: usize| &model.nodes[i].name;
        if let Some(&i) = r.nodes.iter().find(|i| here.contains(i)) {
            return Err(Error::RoutedLocal {
                route: format!("{}={}", r.what, r.via),
                node: name(i).clone(),
            });
        }
        for &i in &r.nodes {
            if let Some(o) = on[i].replace(r) {
                return Err(Error::RoutedTwice {
                    first: format!("{}={}", o.what, o.via),
                    second: format!("{}={}", r.what, r.via),
                    node: name(i).clone(),
                });
            }
        }
        out.extend(
            prefixes(model, &r.nodes)
                .into_iter()
                .map(|dst| Object::Route {
                    dst: net(dst),
                    via: r.via,
                    dev: dev.to_string(),
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
        return Err(if whole {
            Error::GroupUnreachable(name.clone())
        } else {
            Error::NodeUnreachable {
                node: model.nodes[i].name.clone(),
                group: name.clone(),
            }
        });
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
