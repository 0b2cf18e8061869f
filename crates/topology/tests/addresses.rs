//! Property tests of the address plan: blocks never overlap, addresses are unique and
//! deterministic, and IP -> node -> IP round-trips, for random group layouts.

use proptest::prelude::*;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

/// A topology with the given group sizes; every third group gets an explicit prefix
/// placed high in the base so that allocation has to work around it.
fn topology(sizes: &[u32]) -> String {
    let mut src = String::from("address_plan: {base: 10.0.0.0/8}\nprofiles:\n  p: {up: 1mbit, down: 1mbit}\ndefaults: {profile: p}\ngroups:\n");
    for (i, n) in sizes.iter().enumerate() {
        src += &format!("  - {{name: g{i}, nodes: {n}");
        if i % 3 == 2 {
            src += &format!(", prefix: 10.200.{i}.0/24");
        }
        src += "}\n";
    }
    src
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn addresses_never_overlap_and_round_trip(sizes in prop::collection::vec(1u32..254, 1..40)) {
        let src = topology(&sizes);
        let plan = topology::parse(Path::new("p.yaml"), &src).unwrap();
        prop_assert_eq!(plan.link.nodes.len(), sizes.iter().map(|&n| n as usize).sum::<usize>());

        let mut seen = HashSet::new();
        for (i, node) in plan.link.nodes.iter().enumerate() {
            prop_assert!(seen.insert(node.ip), "{} given twice", node.ip);
            let group = &plan.link.groups[node.group];
            prop_assert!(group.prefix.contains(&node.ip));
            prop_assert!(node.ip != group.prefix.network() && node.ip != group.prefix.broadcast());
            prop_assert_eq!(plan.link.node_by_ip(node.ip), Some(i));
            prop_assert_eq!(plan.link.node_by_name(&node.name), Some(i));
        }
        for (a, ga) in plan.link.groups.iter().enumerate() {
            for gb in &plan.link.groups[a + 1..] {
                prop_assert!(!ga.prefix.contains(&gb.prefix.network()) && !gb.prefix.contains(&ga.prefix.network()),
                    "{} overlaps {}", ga.prefix, gb.prefix);
            }
        }
        // Deterministic: planning the same text again gives the same addresses.
        let again = topology::parse(Path::new("p.yaml"), &src).unwrap();
        prop_assert!(plan.link.nodes.iter().zip(&again.link.nodes).all(|(x, y)| x.ip == y.ip && x.name == y.name));
    }

    #[test]
    fn addresses_outside_every_node_find_nothing(sizes in prop::collection::vec(1u32..60, 1..10), probe: u32) {
        let plan = topology::parse(Path::new("p.yaml"), &topology(&sizes)).unwrap();
        let ip = Ipv4Addr::from(probe);
        let owner = plan.link.nodes.iter().position(|n| n.ip == ip);
        prop_assert_eq!(plan.link.node_by_ip(ip), owner);
    }
}
