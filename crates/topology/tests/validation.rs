//! Every kind of bad topology gets its own exact message, placed at file, line, column and
//! field path, and several problems are reported together.

use std::path::Path;

/// A valid profile section the cases below build on.
const PROFILES: &str = "profiles:\n  p:\n    up: 1mbit\n    down: 2mbit\n";

fn errors(src: &str) -> Vec<String> {
    match topology::parse(Path::new("t.yaml"), src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(d) => d.iter().map(|d| d.to_string()).collect(),
    }
}

fn one_error(src: &str) -> String {
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs[0].clone()
}

fn with_group(profile_fields: &str, group_fields: &str) -> String {
    format!("profiles:\n  p:\n{profile_fields}groups:\n  - name: g\n    nodes: 4\n    profile: p\n{group_fields}")
}

#[test]
fn a_bad_unit_is_named() {
    let e = one_error(&with_group("    up: 2mb\n    down: 2mbit\n", ""));
    assert_eq!(e, "t.yaml:3:9: profiles.p.up: unknown rate unit `mb` in `2mb`; use one of bit, kbit, mbit, gbit, kbps, mbps, gbps, e.g. `2mbit`");
}

#[test]
fn a_bad_number_is_named() {
    let e = one_error(&with_group("    up: 1mbit\n    down: lots\n", ""));
    assert_eq!(e, "t.yaml:4:11: profiles.p.down: `lots` does not start with a number; write a number followed by its unit");
}

#[test]
fn a_rate_must_be_positive() {
    let e = one_error(&with_group("    up: 0kbit\n    down: 2mbit\n", ""));
    assert_eq!(e, "t.yaml:3:9: profiles.p.up: rate `0kbit` must be greater than 0; give a positive rate such as `128kbit`");
}

#[test]
fn a_delay_must_not_be_negative() {
    let e = one_error(&with_group(
        "    up: 1mbit\n    down: 2mbit\n    latency: -3ms\n",
        "",
    ));
    assert_eq!(e, "t.yaml:5:14: profiles.p.latency: time `-3ms` is negative; delays are one-way times of 0 or more, e.g. `30ms`");
}

#[test]
fn loss_must_be_within_0_and_100_percent() {
    let e = one_error(&with_group(
        "    up: 1mbit\n    down: 2mbit\n    loss: 101%\n",
        "",
    ));
    assert_eq!(e, "t.yaml:5:11: profiles.p.loss: loss `101%` is outside 0..100%; give a percentage between 0% and 100%");
}

#[test]
fn a_delay_naming_an_unknown_group_is_refused() {
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: 1, profile: p}}\n  - {{name: b, nodes: 1, profile: p}}\ndelays:\n  - from: a\n    to: c\n    delay: 5ms\n");
    assert_eq!(
        one_error(&src),
        "t.yaml:10:9: delays[0].to: unknown group `c`; use one of: a, b"
    );
}

#[test]
fn duplicate_names_are_refused() {
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: 2, profile: p}}\n  - {{name: a, nodes: 1, profile: p}}\n");
    assert_eq!(one_error(&src), "t.yaml:7:12: groups[1].name: group name `a` is already used by groups[0]; give every group its own name");
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: 2, profile: p}}\n  - {{name: b, nodes: [x, a-2], profile: p}}\n");
    assert_eq!(one_error(&src), "t.yaml:7:26: groups[1].nodes[1]: node name `a-2` is already used in group `a`; give every node its own name");
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: 1, profile: p}}\n  - {{name: b, nodes: 1, profile: p}}\ndelays:\n  - {{from: a, to: b, delay: 1ms}}\n  - {{from: a, to: b, delay: 2ms}}\n");
    assert_eq!(one_error(&src), "t.yaml:10:6: delays[1]: the pair a -> b is already given by delays[0]; give each direction once");
}

#[test]
fn overlapping_prefixes_are_refused() {
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: 2, profile: p, prefix: 10.1.0.0/16}}\n  - {{name: b, nodes: 2, profile: p, prefix: 10.1.2.0/24}}\n");
    assert_eq!(one_error(&src), "t.yaml:7:45: groups[1].prefix: prefix 10.1.2.0/24 overlaps the prefix of groups[0]; give every group a disjoint prefix, or leave `prefix` out to have one allocated");
}

#[test]
fn a_prefix_too_small_for_its_nodes_is_refused() {
    let e = one_error(&with_group(
        "    up: 1mbit\n    down: 2mbit\n",
        "    prefix: 10.2.0.0/30\n",
    ));
    assert_eq!(e, "t.yaml:9:13: groups[0].prefix: prefix 10.2.0.0/30 holds 2 nodes but the group has 4; use a prefix of length 29 or shorter");
    let src = format!("address_plan:\n  base: 10.3.0.0/29\n{PROFILES}groups:\n  - {{name: a, nodes: 10, profile: p}}\n");
    assert_eq!(one_error(&src), "t.yaml:8:22: groups[0].nodes: address_plan.base 10.3.0.0/29 has no free /28 left for this group's 10 nodes; use a larger `address_plan.base`, or fewer nodes");
}

#[test]
fn a_matrix_of_the_wrong_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.txt"), "0 10\n10 0 5\n").unwrap();
    let file = dir.path().join("t.yaml");
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: 1, profile: p}}\n  - {{name: b, nodes: 1, profile: p}}\ndelay_matrix:\n  file: m.txt\n  format: matrix\n");
    let errs = topology::parse(&file, &src).unwrap_err();
    let errs: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
    let m = dir.path().join("m.txt");
    assert_eq!(errs, [format!("{}:2:1: row 2 has 3 values, expected 2 (one per group); give one column per group, in the order the groups are declared", m.display())]);
}

#[test]
fn unknown_fields_are_refused_with_their_position() {
    let src =
        format!("{PROFILES}groups:\n  - name: a\n    nodes: 1\n    profile: p\n    colour: red\n");
    assert_eq!(one_error(&src), "t.yaml:9:5: groups[0]: unknown field `colour`, expected one of `name`, `nodes`, `profile`, `prefix`; remove it or correct its spelling");
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let src = "profiles:\n  p:\n    up: 2mb\n    down: 0mbit\ngroups:\n  - name: a\n    nodes: 0\n    profile: q\n";
    let errs = errors(src);
    assert_eq!(
        errs,
        [
            "t.yaml:3:9: profiles.p.up: unknown rate unit `mb` in `2mb`; use one of bit, kbit, mbit, gbit, kbps, mbps, gbps, e.g. `2mbit`",
            "t.yaml:4:11: profiles.p.down: rate `0mbit` must be greater than 0; give a positive rate such as `128kbit`",
            "t.yaml:7:12: groups[0].nodes: expected a node count of at least 1 or a list of node names; write e.g. `nodes: 10` or `nodes: [tracker, seed]`",
            "t.yaml:8:14: groups[0].profile: unknown profile `q`; use one of: p",
        ]
    );
}

#[test]
fn the_link_model_combines_access_and_group_parameters() {
    let src = "profiles:\n  p: {up: 1mbit, down: 2mbit, latency: 5ms, loss: 10%}\ndefaults: {profile: p, delay: 7ms}\ngroups:\n  - {name: a, nodes: 2}\n  - {name: b, nodes: 2}\n  - {name: c, nodes: 1}\ndelays:\n  - {from: a, to: b, delay: 20ms, loss: 50%}\n  - {from: b, to: a, delay: 30ms}\n  - {from: c, to: c, delay: 1ms}\n";
    let plan = topology::parse(Path::new("t.yaml"), src).unwrap();
    let (a1, b1, c1) = (
        plan.link.node_by_name("a-1").unwrap(),
        plan.link.node_by_name("b-1").unwrap(),
        plan.link.node_by_name("c-1").unwrap(),
    );
    assert_eq!(plan.link.one_way_delay_us(a1, b1), 5_000 + 20_000 + 5_000);
    assert_eq!(plan.link.one_way_delay_us(b1, a1), 5_000 + 30_000 + 5_000);
    assert_eq!(plan.link.one_way_delay_us(a1, c1), 5_000 + 7_000 + 5_000);
    assert_eq!(plan.link.one_way_delay_us(c1, c1), 5_000 + 1_000 + 5_000);
    assert_eq!(plan.link.group_delay_us(0, 0), 0);
    // both directions are given, each keeps its own: a -> b loses 1 - 0.9 * 0.5 * 0.9,
    // b -> a (a delay only) no more than the access links, 1 - 0.9 * 0.9
    assert!((plan.link.loss_probability(a1, b1) - 0.595).abs() < 1e-12);
    assert!((plan.link.loss_probability(b1, a1) - 0.19).abs() < 1e-12);
    assert!((plan.link.loss_probability(a1, c1) - 0.19).abs() < 1e-12);
}

#[test]
fn triples_fill_the_delay_table_symmetrically() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("king.txt"),
        "# i j us\n0 1 12000\n1 2 3000\n2 1 4000\n",
    )
    .unwrap();
    let src = format!("{PROFILES}defaults: {{profile: p, delay: 50ms}}\ngroups:\n  - {{name: a, nodes: 1}}\n  - {{name: b, nodes: 1}}\n  - {{name: c, nodes: 1}}\ndelay_matrix: {{file: king.txt, format: triples}}\n");
    let plan = topology::parse(&dir.path().join("t.yaml"), &src).unwrap();
    assert_eq!(
        [
            plan.link.group_delay_us(0, 1),
            plan.link.group_delay_us(1, 0)
        ],
        [12_000, 12_000]
    );
    assert_eq!(
        [
            plan.link.group_delay_us(1, 2),
            plan.link.group_delay_us(2, 1)
        ],
        [3_000, 4_000]
    );
    assert_eq!(plan.link.group_delay_us(0, 2), 50_000);
}

#[test]
fn shipped_topologies_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../topologies");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            topology::load(&path).unwrap_or_else(|d| panic!("{d}"));
            checked += 1;
        }
    }
    assert!(checked >= 3);
    let big = topology::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../topologies/p2plab-5760.yaml"),
    )
    .unwrap();
    assert_eq!(big.link.nodes.len(), 5760);
}

#[test]
fn a_packet_size_must_be_one_ip_can_carry() {
    let src = format!(
        "mtu: 100\n{}",
        with_group("    up: 1mbit\n    down: 2mbit\n", "")
    );
    assert_eq!(one_error(&src), "t.yaml:1:6: mtu: 100 bytes is outside 576..=65536; give a packet size in bytes, e.g. 1500 for Ethernet");
    let plan = topology::parse(Path::new("t.yaml"), &src.replace("mtu: 100", "mtu: 1500")).unwrap();
    assert_eq!(plan.link.mtu, Some(1500));
}

#[test]
fn a_prefix_with_host_bits_or_a_bad_base_is_refused() {
    let e = one_error(&with_group(
        "    up: 1mbit\n    down: 2mbit\n",
        "    prefix: 10.1.0.1/24\n",
    ));
    assert_eq!(
        e,
        "t.yaml:9:13: groups[0].prefix: prefix `10.1.0.1/24` has host bits set; write `10.1.0.0/24`"
    );
    let src = format!(
        "address_plan: {{base: 10.0.0/8}}\n{}",
        with_group("    up: 1mbit\n    down: 2mbit\n", "")
    );
    assert_eq!(one_error(&src), "t.yaml:1:22: address_plan.base: `10.0.0/8` is not an IPv4 prefix; write an address block such as `10.0.0.0/8`");
}

#[test]
fn a_node_list_must_hold_names() {
    let src = format!("{PROFILES}groups:\n  - {{name: a, nodes: [], profile: p}}\n  - {{name: b, nodes: [x, 3], profile: p}}\n");
    assert_eq!(
        errors(&src),
        [
            "t.yaml:6:15: groups[0].nodes: expected a node count of at least 1 or a list of node names; write e.g. `nodes: 10` or `nodes: [tracker, seed]`",
            "t.yaml:7:26: groups[1].nodes[1]: a node name must be text; write a plain name such as `seed1`",
        ]
    );
}

#[test]
fn nodes_are_numbered_from_one_within_their_group() {
    let src = format!("{PROFILES}defaults: {{profile: p}}\ngroups:\n  - {{name: a, nodes: 2}}\n  - {{name: b, nodes: [tracker, seed]}}\n");
    let plan = topology::parse(Path::new("t.yaml"), &src).unwrap();
    let nodes: Vec<(&str, String, usize, usize)> = plan
        .link
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let index = plan.link.index_in_group(i);
            (n.name.as_str(), n.ip.to_string(), n.group, index)
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("a-1", "10.0.0.1".to_string(), 0, 1),
            ("a-2", "10.0.0.2".to_string(), 0, 2),
            ("tracker", "10.0.0.5".to_string(), 1, 1),
            ("seed", "10.0.0.6".to_string(), 1, 2),
        ]
    );
    assert_eq!(
        plan.link.nodes[0].queue_packets,
        topology::DEFAULT_QUEUE_PACKETS
    );
}

#[test]
fn defaults_apply_between_groups_only_and_one_given_direction_is_symmetric() {
    let src = format!("{PROFILES}defaults: {{profile: p, delay: 7ms, loss: 2%}}\ngroups:\n  - {{name: a, nodes: 1}}\n  - {{name: b, nodes: 1}}\n  - {{name: c, nodes: 1}}\ndelays: [{{from: b, to: c, delay: 5ms}}]\n");
    let plan = topology::parse(Path::new("t.yaml"), &src).unwrap();
    let table = |f: &dyn Fn(usize, usize) -> f64| -> Vec<Vec<f64>> {
        (0..3).map(|a| (0..3).map(|b| f(a, b)).collect()).collect()
    };
    assert_eq!(
        table(&|a, b| plan.link.group_delay_us(a, b) as f64),
        [
            [0.0, 7_000.0, 7_000.0],
            [7_000.0, 0.0, 5_000.0],
            [7_000.0, 5_000.0, 0.0]
        ]
    );
    assert_eq!(
        table(&|a, b| plan.link.group_loss(a, b)),
        [[0.0, 0.02, 0.02], [0.02, 0.0, 0.02], [0.02, 0.02, 0.0]]
    );
    // A single group whose only pair is itself: its loss is kept.
    let src = format!("{PROFILES}defaults: {{profile: p}}\ngroups: [{{name: a, nodes: 2}}]\ndelays: [{{from: a, to: a, loss: 10%}}]\n");
    let plan = topology::parse(Path::new("t.yaml"), &src).unwrap();
    assert_eq!(plan.link.group_loss(0, 0), 0.1);
}

#[test]
fn a_queue_limit_of_zero_is_refused() {
    let e = one_error(&with_group(
        "    up: 1mbit\n    down: 2mbit\n    queue: 0\n",
        "",
    ));
    assert_eq!(
        e,
        "t.yaml:5:12: profiles.p.queue: queue limit is 0 packets; give at least 1 packet"
    );
    let plan = topology::parse(
        Path::new("t.yaml"),
        &with_group("    up: 1mbit\n    down: 2mbit\n    queue: 7\n", ""),
    )
    .unwrap();
    assert_eq!(plan.link.nodes[3].queue_packets, 7);
}

#[test]
fn node_and_group_counts_have_a_limit_named_in_the_message() {
    let started = std::time::Instant::now();
    let src = "profiles:\n  p: {up: 1mbit, down: 1mbit}\ndefaults: {profile: p}\ngroups:\n  - {name: a, nodes: 600000}\n  - {name: b, nodes: 16000000}\n";
    assert_eq!(
        errors(src),
        ["t.yaml:6:22: groups[1].nodes: this group brings the topology to 16600000 nodes, more than the limit of 1000000; use fewer nodes, or spread the experiment over several machines"]
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "refused only after {:?}",
        started.elapsed()
    );
    let many: String = (0..=4096)
        .map(|g| format!("  - {{name: g{g}, nodes: 1}}\n"))
        .collect();
    let src = format!(
        "profiles:\n  p: {{up: 1mbit, down: 1mbit}}\ndefaults: {{profile: p}}\ngroups:\n{many}"
    );
    assert_eq!(
        errors(&src),
        ["t.yaml:4:1: groups: 4097 groups are more than the limit of 4096; merge groups that share their delays"]
    );
}
