//! Experiment files as users write them: what a good one resolves to (nodes, commands,
//! schedule, events), and the exact message each kind of mistake gets before anything runs.

use experiment::{Action, LinkChange};
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
    let west2 = e.plan.node_by_name("west-2").unwrap();
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
        .map(|s| (s.at_us, s.role, e.plan.nodes[s.node].name.as_str()))
        .collect();
    assert_eq!(times[0], (0, 0, "east-1"));
    assert_eq!(times[1], (2_000_000, 1, "west-1"));
    assert_eq!(times[2], (2_250_000, 1, "west-2"));
    assert_eq!(times[6], (3_250_000, 1, "east-3"));
    assert_eq!(e.stop.after_us, 300_000_000);
    assert_eq!(e.stop.exited, [1]);
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

#[test]
fn yaml_events_and_a_protopeer_scenario_merge_in_time_order() {
    let scenario = "# nodes time action\n* 10 pause\n0-1 5s set_link up=64kbit loss=1%\n* 20s set_delay from=east to=west delay=80ms\n";
    let body = "roles:\n  - {name: peer, nodes: '*', command: sleep 1}\nstop: {after: 1m}\nscenario: churn.txt\nevents:\n  - {at: 10s, nodes: 'west[1-2]', action: kill}\n  - {at: 1s, nodes: east, action: cut}\n";
    let dir = Dir::new(&[
        ("e.yaml", &format!("{TOPOLOGY}{body}")),
        ("churn.txt", scenario),
    ]);
    let e = experiment::load(&dir.path("e.yaml")).unwrap();
    let summary: Vec<(u64, Vec<usize>, Action)> = e
        .events
        .iter()
        .map(|ev| (ev.at_us / 1_000_000, ev.nodes.clone(), ev.action.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, vec![0, 1, 2], Action::Cut),
            (
                5,
                vec![0, 1],
                Action::SetLink(LinkChange {
                    up_bps: Some(64_000),
                    loss: Some(0.01),
                    ..Default::default()
                })
            ),
            (10, vec![3, 4], Action::Kill),
            (10, (0..7).collect(), Action::Pause),
            (
                20,
                vec![],
                Action::SetDelay {
                    from: 0,
                    to: 1,
                    delay_us: Some(80_000),
                    loss: None
                }
            ),
        ]
    );
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
