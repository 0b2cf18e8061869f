//! Planning checks that need no privileges: two netem networks with group delays cannot
//! share a device's root qdisc, and the second is refused before anything changes.

use shaping::{Backend, Network, Shaping, UpOptions};
use topology::{Group, LinkModel, Node};

#[test]
fn second_netem_network_with_group_delays_on_one_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("P2PLAB_RUN_DIR", dir.path());
    let with_delays = |first_octet_group: usize| {
        let all = LinkModel::uniform(first_octet_group + 2, 2, 1_000_000, 1_000_000, 1000);
        let skip = all.groups[first_octet_group].nodes.start;
        let groups = all.groups[first_octet_group..]
            .iter()
            .map(|g| Group {
                nodes: g.nodes.start - skip..g.nodes.end - skip,
                ..g.clone()
            })
            .collect();
        let nodes = all.nodes[skip..]
            .iter()
            .map(|n| Node {
                group: n.group - first_octet_group,
                ..n.clone()
            })
            .collect();
        LinkModel::new(nodes, groups, vec![5000; 4], vec![], None)
    };
    let opts = |name: &str| UpOptions {
        name: name.into(),
        dev: "lo".into(),
        shaping: Shaping::Force(Backend::Netem),
        local: None,
        routes: vec![],
        engine: Default::default(),
    };
    let a = Network::prepare(with_delays(0), &opts("a"), Some(Backend::Netem)).unwrap();
    let run = shaping::run_dir();
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("a.json"), serde_json::to_vec(&a).unwrap()).unwrap();
    let err = Network::prepare(with_delays(2), &opts("b"), Some(Backend::Netem)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the group delays of network a already use lo's root qdisc; take a down, use another --dev, or --shaping nfqueue"
    );
    // the nfqueue backend keeps delays in the engine and coexists
    let b = Network::prepare(with_delays(2), &opts("b"), Some(Backend::Nfqueue)).unwrap();
    assert_eq!(b.slot, 1);
}
