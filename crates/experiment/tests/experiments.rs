//! Experiment files as users write them: what a good one resolves to (nodes, commands,
//! schedule, events), and the exact message each kind of mistake gets before anything runs.

use experiment::{Action, LinkChange, NetChange, ProcessAction};
use std::path::{Path, PathBuf};

const TOPOLOGY: &str = "topology:\n  profiles: {p: {up: 1mbit, down: 2mbit}}\n  defaults: {profile: p}\n  groups:\n    - {name: east, nodes: 3}\n    - {name: west, nodes: 4}\n";

struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Dir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn errors(body: &str) -> Vec<String> {
    let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{body}"))]);
    match experiment::load(&dir.path("e.yaml")) {
        Ok(_) => panic!("accepted:\n{body}"),
        Err(d) => d
            .iter()
            .map(|d| {
                d.to_string()
                    .replace(&dir.path("e.yaml").display().to_string(), "e.yaml")
            })
            .collect(),
    }
}

#[test]
fn a_good_experiment_resolves_nodes_commands_and_schedule() {
    let body = "seed: 3\nroles:\n  - name: server\n    nodes: east-1\n    port: 8000\n    command: python3 -m http.server {port} --bind {ip}\n  - name: client\n    nodes: [west, 'east[2-3]']\n    command: curl -o {dir}/page http://{server.ip}:{server.port}/{name}?g={group}&i={index}\n    start: {at: 2s, every: 250ms}\nstop: {exited: [client], after: 5m}\n";
    let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{body}"))]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    assert_eq!(e.name, "e");
    assert_eq!(e.roles[1].nodes.len(), 6);
    let run = Path::new("/results/r1");
    assert_eq!(
        e.command(0, 0, run),
        ["python3", "-m", "http.server", "8000", "--bind", "10.0.0.1"]
    );
    let west2 = e.plan.link.node_by_name("west-2").unwrap();
    assert_eq!(
        e.command(1, west2, run),
        [
            "curl",
            "-o",
            "/results/r1/nodes/west-2/page",
            "http://10.0.0.1:8000/west-2?g=west&i=2"
        ]
    );
    let times: Vec<(u64, usize, &str)> = e
        .starts
        .iter()
        .map(|s| (s.at_us, s.role, e.plan.link.nodes[s.node].name.as_str()))
        .collect();
    assert_eq!(times[0], (0, 0, "east-1"));
    assert_eq!(times[1], (2_000_000, 1, "west-1"));
    assert_eq!(times[2], (2_250_000, 1, "west-2"));
    assert_eq!(times[6], (3_250_000, 1, "east-3"));
    assert_eq!(e.stop.after_us, 300_000_000);
    assert_eq!(e.stop.exited, [1]);
}

#[test]
fn every_field_of_a_full_experiment_is_kept() {
    let body = "name: demo\nseed: 3\non_failure: abort\nroles:\n  - name: server\n    nodes: east-1\n    port: 8000\n    command: sleep {port}\n    env: {B: two, A: one}\n    files: [page.html]\n    cpu: 50%\n    memory: 1G\n    metrics: [{name: served, regex: 'served (\\d+)'}]\n  - name: client\n    nodes: 'west[2-3]'\n    command: sleep 1\n    start: {at: 2s, every: 250ms}\nprepare: ['cp {experiment_dir}/page.html {run_dir}/{server.name}.html']\nstop: {after: 90s, metric: {name: served, role: client, at_least: 2.5}}\nevents:\n  - {at: 5s, nodes: 'east-1', action: stop}\n";
    let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{body}"))]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    let server = &e.roles[0];
    assert_eq!(
        server.env,
        [("A".into(), "one".into()), ("B".into(), "two".into())]
    );
    assert_eq!(server.files, [PathBuf::from("page.html")]);
    assert_eq!(server.cpu_percent, Some(50.0));
    assert_eq!(server.memory_bytes, Some(1 << 30));
    assert_eq!(server.port, Some(8000));
    assert_eq!(server.metrics[0].name, "served");
    assert_eq!(server.metrics[0].regex.as_str(), "served (\\d+)");
    assert_eq!(e.roles[1].cpu_percent, None);
    assert_eq!(e.on_failure, experiment::FailurePolicy::Abort);
    let metric = e.stop.metric.as_ref().unwrap();
    assert_eq!(
        (metric.name.as_str(), metric.role, metric.at_least),
        ("served", 1, 2.5)
    );
    assert_eq!(e.stop.after_us, 90_000_000);
    assert_eq!(e.topology_file, None);
    // Roles by node: east-1 runs the server, west-2 the client, east-2 nothing.
    let roles_of = |name: &str| {
        e.roles_of(e.plan.link.node_by_name(name).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        [roles_of("east-1"), roles_of("west-2"), roles_of("east-2")],
        [vec![0], vec![1], vec![]]
    );
    let here = dir.0.path().canonicalize().unwrap();
    assert_eq!(
        e.prepare_commands(Path::new("/results/r1")),
        [vec![
            "cp".to_string(),
            format!("{}/page.html", here.display()),
            "/results/r1/east-1.html".into()
        ]]
    );
    assert_eq!(
        experiment::summary(&e),
        "experiment `demo`, seed 3\n  role server            1 processes, starting 0.00s .. 0.00s: sleep {port}\n  role client            2 processes, starting 2.00s .. 2.25s: sleep 1\n  1 events; stop after 90s at the latest\n"
    );
}

#[test]
fn a_topology_file_is_read_relative_to_the_experiment() {
    let topology = TOPOLOGY
        .strip_prefix("topology:\n")
        .unwrap()
        .replace("\n  ", "\n");
    let body = "topology: net/t.yaml\nroles: [{name: peer, nodes: 'west-4', command: sleep 1}]\nstop: {after: 1m}\n";
    let dir = Dir::new(&[("e.yaml", body)]);
    std::fs::create_dir(dir.path("net")).unwrap();
    std::fs::write(dir.path("net/t.yaml"), topology.trim_start()).unwrap();
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    assert_eq!(e.topology_file, Some(dir.path("net/t.yaml")));
    assert_eq!(e.roles[0].nodes, [6]);
    std::fs::remove_file(dir.path("net/t.yaml")).unwrap();
    let errs: Vec<String> = experiment::load(&dir.path("e.yaml"))
        .unwrap_err()
        .iter()
        .map(|d| format!("{}: {}", d.file.display(), d.message))
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(&format!(
            "{}: cannot read the topology file: ",
            dir.path("net/t.yaml").display()
        )),
        "{errs:?}"
    );
}

#[test]
fn random_order_and_jitter_follow_the_seed() {
    let body = |seed: u64| {
        format!("seed: {seed}\nroles:\n  - name: peer\n    nodes: '*'\n    command: sleep 1\n    start: {{every: 1s, jitter: 500ms, order: random}}\nstop: {{after: 1m}}\n")
    };
    let load = |seed| {
        let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{}", body(seed)))]);
        let e = experiment::load(&dir.path("e.yaml")).unwrap();
        e.starts
            .iter()
            .map(|s| (s.at_us, s.node))
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (load(5), load(5), load(6));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut nodes: Vec<usize> = a.iter().map(|s| s.1).collect();
    nodes.sort();
    assert_eq!(nodes, (0..7).collect::<Vec<_>>());
    assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(a.iter().enumerate().all(
        |(i, s)| s.0 <= 1_000_000 * 6 + 500_000 && s.0 + 1_000_000 >= i as u64 * 1_000_000 / 2
    ));
}

/// The nodes of a one-role experiment over all seven nodes, in start order, for the given
/// start `order` and `seed` (no jitter, one start per second, so start order is node order).
fn start_order(order: &str, seed: u64) -> Vec<usize> {
    let body = format!("seed: {seed}\nroles:\n  - name: peer\n    nodes: ['west', 'east']\n    command: sleep 1\n    start: {{every: 1s, order: {order}}}\nstop: {{after: 1m}}\n");
    let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{body}"))]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    let times: Vec<u64> = e.starts.iter().map(|s| s.at_us).collect();
    assert_eq!(times, (0..7).map(|i| i * 1_000_000).collect::<Vec<_>>());
    let nodes: Vec<usize> = e.starts.iter().map(|s| s.node).collect();
    assert_eq!(
        e.roles[0].nodes, nodes,
        "the role lists its nodes in start order"
    );
    nodes
}

#[test]
fn a_role_without_jitter_or_random_order_draws_nothing_from_the_seed() {
    let west_order = |first_role: &str| {
        let body = format!("seed: 5\nroles:\n{first_role}  - name: peer\n    nodes: west\n    command: sleep 1\n    start: {{order: random}}\nstop: {{after: 1m}}\n");
        let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{body}"))]);
        let e = experiment::load(&dir.path("e.yaml")).unwrap();
        e.roles.last().unwrap().nodes.clone()
    };
    let alone = west_order("");
    assert_ne!(alone, [3, 4, 5, 6], "seed 5 shuffles west");
    let plain = "  - {name: first, nodes: east, command: sleep 1, start: {every: 1s}}\n";
    assert_eq!(west_order(plain), alone);
}

#[test]
fn jitter_delays_each_start_by_at_most_its_value() {
    let body = "seed: 5\nroles:\n  - name: peer\n    nodes: '*'\n    command: sleep 1\n    start: {at: 1s, every: 1s, jitter: 500ms}\nstop: {after: 1m}\n";
    let dir = Dir::new(&[("e.yaml", &format!("{TOPOLOGY}{body}"))]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    // Declared order: node i is due at 1 s + i s, and starts up to 500 ms later.
    let mut offsets: Vec<u64> = e
        .starts
        .iter()
        .map(|s| s.at_us - 1_000_000 - s.node as u64 * 1_000_000)
        .collect();
    assert!(offsets.iter().all(|&o| o <= 500_000), "{offsets:?}");
    offsets.sort();
    offsets.dedup();
    assert!(offsets.len() > 1, "the offsets vary: {offsets:?}");
}

#[test]
fn a_stop_rule_needs_a_positive_duration_cap() {
    let errs = errors("roles: []\nstop: {after: 0s}\n");
    assert_eq!(errs, ["e.yaml:8:15: stop.after: the duration cap is 0; give the longest the run may take, e.g. `10m`"]);
    let errs = errors("roles: []\nstop: {after: soon}\n");
    assert_eq!(errs, ["e.yaml:8:15: stop.after: `soon` does not start with a number; write a number followed by its unit"]);
}

#[test]
fn random_order_is_a_seeded_permutation_of_the_declared_order() {
    // West (nodes 3..7) is declared before east (0..3).
    let declared = [3, 4, 5, 6, 0, 1, 2];
    assert_eq!(start_order("declared", 5), declared);
    let (a, b, c) = (
        start_order("random", 5),
        start_order("random", 5),
        start_order("random", 6),
    );
    assert_ne!(a, declared, "seed 5 shuffles");
    assert_ne!(c, declared, "seed 6 shuffles");
    assert_eq!(a, b, "the same seed gives the same order");
    assert_ne!(a, c, "another seed gives another order");
    for order in [a, c] {
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..7).collect::<Vec<_>>(),
            "{order:?} is a permutation"
        );
    }
}

#[test]
fn yaml_events_and_a_protopeer_scenario_merge_in_time_order() {
    let scenario = "# nodes time action\n* 10 pause\n0-1 5s set_link up=64kbit loss=1%\n* 20s set_delay from=east to=west delay=80ms\n";
    let body = "roles:\n  - {name: peer, nodes: '*', command: sleep 1}\nstop: {after: 1m}\nscenario: churn.txt\nevents:\n  - {at: 10s, nodes: 'west[1-2]', action: kill}\n  - {at: 1s, nodes: east, action: cut}\n";
    let dir = Dir::new(&[
        ("e.yaml", &format!("{TOPOLOGY}{body}")),
        ("churn.txt", scenario),
    ]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    let summary: Vec<(u64, Action)> = e
        .events
        .iter()
        .map(|ev| (ev.at_us / 1_000_000, ev.action.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Action::Net(NetChange::Cut(vec![0, 1, 2]))),
            (
                5,
                Action::Net(NetChange::SetLink {
                    nodes: vec![0, 1],
                    link: LinkChange {
                        up_bps: Some(64_000),
                        loss: Some(0.01),
                        ..Default::default()
                    }
                })
            ),
            (10, Action::Process(ProcessAction::Kill, vec![3, 4])),
            (10, Action::Process(ProcessAction::Pause, (0..7).collect())),
            (
                20,
                Action::Net(NetChange::SetDelay {
                    from: 0,
                    to: 1,
                    delay_us: Some(80_000),
                    loss: None
                })
            ),
        ]
    );
}

/// The messages (`line:column: message`) of loading an experiment whose scenario file
/// holds `scenario`.
fn scenario_errors(scenario: &str) -> Vec<String> {
    let dir = Dir::new(&[
        (
            "e.yaml",
            &format!("{TOPOLOGY}roles: []\nstop: {{after: 1m}}\nscenario: s.txt\n"),
        ),
        ("s.txt", scenario),
    ]);
    experiment::load(&dir.path("e.yaml"))
        .unwrap_err()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

#[test]
fn every_action_name_of_a_scenario_is_understood() {
    let scenario = "0 0 start\n1 2 stop\n2 3 kill\n3 4 pause\n4 5 resume\n5 6 cut\n6 7 restore\n3-6 2.01 set_link down=1mbit latency=5ms\n* 8 set_delay from=west to=east loss=2%\n";
    let dir = Dir::new(&[
        (
            "e.yaml",
            &format!("{TOPOLOGY}roles: []\nstop: {{after: 1m}}\nscenario: s.txt\n"),
        ),
        ("s.txt", scenario),
    ]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    let events: Vec<(u64, Action)> = e
        .events
        .iter()
        .map(|ev| (ev.at_us, ev.action.clone()))
        .collect();
    let process = |what, node| Action::Process(what, vec![node]);
    assert_eq!(
        events,
        [
            (0, process(ProcessAction::Start, 0)),
            (2_000_000, process(ProcessAction::Stop, 1)),
            // Bare seconds round to the nearest microsecond: 2.01 * 1e6 is 2009999.99..
            (
                2_010_000,
                Action::Net(NetChange::SetLink {
                    nodes: vec![3, 4, 5, 6],
                    link: LinkChange {
                        down_bps: Some(1_000_000),
                        latency_us: Some(5_000),
                        ..Default::default()
                    }
                })
            ),
            (3_000_000, process(ProcessAction::Kill, 2)),
            (4_000_000, process(ProcessAction::Pause, 3)),
            (5_000_000, process(ProcessAction::Resume, 4)),
            (6_000_000, Action::Net(NetChange::Cut(vec![5]))),
            (7_000_000, Action::Net(NetChange::Restore(vec![6]))),
            (
                8_000_000,
                Action::Net(NetChange::SetDelay {
                    from: 1,
                    to: 0,
                    delay_us: None,
                    loss: Some(0.02)
                })
            ),
        ]
    );
}

#[test]
fn scenario_node_ranges_and_times_are_checked() {
    assert_eq!(
        scenario_errors("0-6 1 pause\n6 1 pause\n0-7 1 pause\n3-2 1 pause\n7 1 pause\n  x 1 pause\n0 -1 pause\n0 inf pause\n0 1\n"),
        [
            "3:1: nodes `0-7` are not `*`, `N` or `A-B` with 0 <= A <= B < 7",
            "4:1: nodes `3-2` are not `*`, `N` or `A-B` with 0 <= A <= B < 7",
            "5:1: nodes `7` are not `*`, `N` or `A-B` with 0 <= A <= B < 7",
            "6:3: `x` is neither a group nor a node of the topology",
            "7:1: time `-1` is negative",
            "8:1: time `inf` is not a finite number",
            "9:1: `0 1` is not `<nodes> <time> <action>`",
        ]
    );
}

#[test]
fn action_parameters_are_checked() {
    assert_eq!(
        scenario_errors("* 1 pause up=1mbit\n* 1 set_link\n* 1 set_link rate=1mbit\n* 1 set_delay from=east\n* 1 set_delay from=north to=west delay=5ms\n* 1 set_link latency=soon\n* 1 set_delay from=east to=west loss=200%\n* 1 jump\n"),
        [
            "1:1: up: `up` does not apply to `pause`",
            "2:1: `set_link` changes nothing",
            "3:1: rate: `rate` does not apply to `set_link`",
            "4:1: to: `set_delay` needs `to`",
            "4:1: `set_delay` changes nothing",
            "5:1: from: unknown group `north`",
            "6:1: latency: `soon` does not start with a number",
            "7:1: loss: loss `200%` is outside 0..100%",
            "8:1: unknown action `jump`",
        ]
    );
    let errs = errors("roles: []\nstop: {after: 1m}\nevents:\n  - {at: 1s, action: set_delay, nodes: '*', from: east, to: west, delay: 5ms}\n  - {at: 2s, action: set_link, nodes: east, down: 5mbit, up: 1kbit, latency: x}\n");
    assert_eq!(
        errs,
        [
            "e.yaml:10:40: events[0].nodes: `set_delay` changes a group pair, not nodes; remove `nodes`",
            "e.yaml:11:78: events[1].latency: `x` does not start with a number; write a number followed by its unit",
        ]
    );
}

#[test]
fn event_nodes_are_needed_checked_and_placed() {
    let errs = errors("roles: []\nstop: {after: 1m}\nevents:\n  - {at: 1s, action: cut}\n  - {at: 2s, action: cut, nodes: 5}\n  - {at: 3s, action: pause, nodes: [east, 'west[2-5]', 'east-1,nope']}\n  - {at: 4s, action: jump, nodes: 5}\n");
    assert_eq!(
        errs,
        [
            "e.yaml:10:6: events[0]: `cut` needs `nodes`; add `nodes:` with `*`, a group, a node or `group[A-B]`",
            "e.yaml:11:34: events[1].nodes: expected a node selector; write `*`, a group, a node, `group[A-B]` or a list of these",
            "e.yaml:12:43: events[2].nodes[1]: `west[2-5]` is not a range of 1..4; write `west[A-B]` with 1 <= A <= B <= 4",
            "e.yaml:12:56: events[2].nodes[2]: `nope` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`",
            "e.yaml:13:22: events[3].action: unknown action `jump`; use one of start, stop, kill, pause, resume, cut, restore, set_link, set_delay",
        ]
    );
}

#[test]
fn selectors_resolve_groups_nodes_and_ranges_once_each() {
    let dir = Dir::new(&[(
        "e.yaml",
        &format!("{TOPOLOGY}roles: []\nstop: {{after: 1m}}\n"),
    )]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    let select = |terms: &[&str]| topology::select::select(&e.plan.link, terms);
    // east is 0..3, west is 3..7.
    assert_eq!(select(&["west[2-3]"]), Ok(vec![4, 5]));
    assert_eq!(select(&["west[4]", "east[1-3]"]), Ok(vec![6, 0, 1, 2]));
    assert_eq!(
        select(&["west-2", "west", "*"]),
        Ok(vec![4, 3, 5, 6, 0, 1, 2])
    );
    assert_eq!(select(&[" east-3 "]), Ok(vec![2]));
    for (bad, message) in [
        ("east[0-1]", "`east[0-1]` is not a range of 1..3; write `east[A-B]` with 1 <= A <= B <= 3"),
        ("east[3-2]", "`east[3-2]` is not a range of 1..3; write `east[A-B]` with 1 <= A <= B <= 3"),
        ("west[4-5]", "`west[4-5]` is not a range of 1..4; write `west[A-B]` with 1 <= A <= B <= 4"),
        ("north[1]", "`north` in `north[1]` is not a group; name a group of the topology"),
        ("north", "`north` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`"),
    ] {
        assert_eq!(select(&["east", bad]), Err(message.to_string()));
    }
    let errs = errors("roles:\n  - {name: peer, nodes: 5, command: sleep 1}\nstop: {after: 1m}\n");
    assert_eq!(errs, ["e.yaml:8:25: roles[0].nodes: expected a node selector; write `*`, a group, a node, `group[A-B]` or a list of these"]);
}

#[test]
fn an_unknown_placeholder_is_an_error_before_anything_runs() {
    let errs = errors(
        "roles:\n  - {name: peer, nodes: '*', command: 'sleep {tracker.ip}'}\nstop: {after: 1m}\n",
    );
    assert_eq!(errs, ["e.yaml:8:39: roles[0].command: unknown placeholder `{tracker.ip}`; use {ip}, {name}, {index}, {group}, {dir}, {port}, {run_dir}, {experiment_dir}, or {ROLE.FIELD} with ROLE one of: peer"]);
}

#[test]
fn a_node_runs_one_role() {
    let errs = errors("roles:\n  - {name: a, nodes: east, command: sleep 1}\n  - {name: b, nodes: 'east-2', command: sleep 1}\nstop: {after: 1m}\n");
    assert_eq!(errs, ["e.yaml:9:22: roles[1].nodes: node `east-2` is already in role `a`; give each node one role; add nodes to the topology for more processes"]);
}

#[test]
fn a_missing_program_is_an_error_before_anything_runs() {
    let errs = errors("roles:\n  - {name: peer, nodes: '*', command: no-such-program-p2plab --x}\nstop: {after: 1m}\n");
    assert_eq!(errs, ["e.yaml:8:39: roles[0].command: program `no-such-program-p2plab` is not installed or not executable; install it, or give its full path"]);
}

#[test]
fn every_mistake_is_reported_at_its_place() {
    let errs = errors("roles:\n  - name: peer\n    nodes: [west, 'east[2-9]', north]\n    command: sleep {port}\n    start: {every: 1 sec}\n    metrics: [{name: p, regex: '\\d+'}]\n    memory: lots\nstop: {exited: [client], after: 1m}\nevents:\n  - {at: 1s, action: pause}\n  - {at: 2s, action: jump, nodes: '*'}\n  - {at: 3s, action: set_link, nodes: '*', up: 2mb}\n");
    assert_eq!(
        errs,
        [
            "e.yaml:9:19: roles[0].nodes[1]: `east[2-9]` is not a range of 1..3; write `east[A-B]` with 1 <= A <= B <= 3",
            "e.yaml:9:32: roles[0].nodes[2]: `north` is neither a group nor a node of the topology; write `*`, a group name, a node name or `group[A-B]`",
            "e.yaml:10:14: roles[0].command: `{port}` names a port, but role `peer` has none; add `port:` to role `peer`",
            "e.yaml:11:20: roles[0].start.every: unknown time unit `sec` in `1 sec`; use one of us, ms, s, m, min, h, e.g. `30ms`",
            "e.yaml:12:32: roles[0].metrics[0].regex: the regex has no capture group; capture the number, e.g. `\\((\\d+)%\\)`",
            "e.yaml:13:13: roles[0].memory: `lots` is not a memory size; write e.g. `256M` or `1G`",
            "e.yaml:14:17: stop.exited[0]: unknown role `client`; use one of: peer",
            "e.yaml:16:6: events[0]: `pause` needs `nodes`; add `nodes:` with `*`, a group, a node or `group[A-B]`",
            "e.yaml:17:22: events[1].action: unknown action `jump`; use one of start, stop, kill, pause, resume, cut, restore, set_link, set_delay",
            "e.yaml:18:48: events[2].up: unknown rate unit `mb` in `2mb`; use one of bit, kbit, mbit, gbit, kbps, mbps, gbps, e.g. `2mbit`",
        ]
    );
}

#[test]
fn an_inline_topology_error_points_into_the_experiment_file() {
    let dir = Dir::new(&[("e.yaml", "topology:\n  profiles: {p: {up: 1mbps, down: 2mbit}}\n  groups:\n    - {name: a, nodes: 2, profile: q}\nroles: []\nstop: {after: 1m}\n")]);
    let errs: Vec<String> = experiment::load(&dir.path("e.yaml"))
        .unwrap_err()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.path))
        .collect();
    assert_eq!(errs, ["4:36: topology.groups[0].profile"]);
}

#[test]
fn a_bad_scenario_line_names_its_file_and_line() {
    let dir = Dir::new(&[
        (
            "e.yaml",
            &format!("{TOPOLOGY}roles: []\nstop: {{after: 1m}}\nscenario: s.txt\n"),
        ),
        ("s.txt", "* 1 pause\n0-99 2 kill\n3 later resume\n"),
    ]);
    let errs: Vec<String> = experiment::load(&dir.path("e.yaml"))
        .unwrap_err()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        errs,
        [
            "2:1: nodes `0-99` are not `*`, `N` or `A-B` with 0 <= A <= B < 7",
            "3:1: `later` does not start with a number"
        ]
    );
}

#[test]
fn structural_mistakes_and_repeated_keys_are_reported_together() {
    // Lines 1-6 are the topology.
    let body = "roles:\n  - {name: a, nodes: east, command: 'true', colour: red}\n  - {name: b, nodes: west, command: 'true', port: http}\nstop: {after: 1m, after: 2m}\nseed: 1\nseed: 2\n";
    assert_eq!(
        errors(body),
        [
            "e.yaml:10:19: stop.after: this key is given twice (first on line 10); keep one of them: the second would replace the first",
            "e.yaml:12:1: seed: this key is given twice (first on line 11); keep one of them: the second would replace the first",
        ]
    );
    let body = "roles:\n  - {name: a, nodes: east, command: 'true', colour: red}\n  - {name: b, nodes: west, command: 'true', port: http}\nstop: {after: 1m}\nseed: -1\n";
    assert_eq!(
        errors(body),
        [
            "e.yaml:8:45: roles[0]: unknown field `colour`, expected one of `name`, `nodes`, `command`, `port`, `env`, `files`, `start`, `metrics`, `cpu`, `memory`; remove it or correct its spelling",
            "e.yaml:9:51: roles[1].port: invalid type: string \"http\", expected u16; see the format in the README",
            "e.yaml:11:7: seed: invalid type: integer `-1`, expected u64; see the format in the README",
        ]
    );
}
