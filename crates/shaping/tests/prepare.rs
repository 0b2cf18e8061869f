//! Planning checks that need no privileges: two netem networks with group delays cannot
//! share a device's root qdisc, and the second is refused before anything changes.

use shaping::lifecycle::{prepare, Shaping, UpOptions};
use shaping::{Backend, Model};

#[test]
fn second_netem_network_with_group_delays_on_one_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("P2PLAB_RUN_DIR", dir.path());
    let with_delays = |first_octet_group: usize| {
        let mut m = Model::uniform(first_octet_group + 2, 2, 1_000_000, 1_000_000, 1000);
        m.groups.drain(..first_octet_group);
        m.nodes.retain(|n| n.group >= first_octet_group);
        for n in &mut m.nodes {
            n.group -= first_octet_group;
        }
        m.group_delay_us = vec![vec![5000; 2]; 2];
        m.group_loss = vec![vec![0.0; 2]; 2];
        m
    };
    let opts = |name: &str| UpOptions {
        name: name.into(),
        dev: "lo".into(),
        shaping: Shaping::Force(Backend::Netem),
        local: None,
        routes: vec![],
    };
    let a = prepare(with_delays(0), &opts("a"), Some(Backend::Netem)).unwrap();
    std::fs::write(dir.path().join("a.json"), serde_json::to_vec(&a).unwrap()).unwrap();
    let err = prepare(with_delays(2), &opts("b"), Some(Backend::Netem)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the group delays of network a already use lo's root qdisc; take a down, use another --dev, or --shaping nfqueue"
    );
    // the nfqueue backend keeps delays in the engine and coexists
    let b = prepare(with_delays(2), &opts("b"), Some(Backend::Nfqueue)).unwrap();
    assert_eq!(b.slot, 1);
}
