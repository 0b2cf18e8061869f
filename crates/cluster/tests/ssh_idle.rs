//! Started links that carry nothing cost the controller next to no CPU: each carrier
//! sleeps until either side has something, and still passes a line on at once. Alone in
//! its test binary, so that nothing else runs in the process while its CPU time is
//! measured. (20 links, not 200: every session runs the login shell's start-up files on
//! this one machine.)

mod common;

use std::time::{Duration, Instant};

use cluster::link::Incoming;
use cluster::ssh::{connect_all, Session};
use common::NsCluster;
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeValLike;

/// This process's CPU time (user and system).
fn cpu_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let micros = (usage.user_time() + usage.system_time()).num_microseconds();
    Duration::from_micros(micros.try_into().unwrap())
}

#[test]
fn idle_links_cost_next_to_no_cpu_and_wake_at_once() {
    const LINKS: usize = 20;
    let cluster = NsCluster::up(4, "172.31.248", &[]);
    let _in = cluster.enter();
    let hosts: Vec<_> = (0..LINKS).map(|i| cluster.hosts[i % 4].clone()).collect();
    let sessions: Vec<Session> = connect_all(&hosts, &cluster.ssh_config())
        .into_iter()
        .map(|s| s.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let links: Vec<_> = sessions
        .into_iter()
        .map(|s| s.start("cat").unwrap())
        .collect();
    for (i, link) in links.iter().enumerate() {
        link.send.send(format!("hello {i}")).unwrap();
    }
    for (i, link) in links.iter().enumerate() {
        let got = link.recv.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(got, Incoming::Line(format!("hello {i}")));
    }

    let (cpu, wall) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let share = (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
    eprintln!("{LINKS} idle links: {:.3}% of a core", share * 100.0);
    // 200 links under 5% of a core is 0.5% for 20
    assert!(
        share < 0.005,
        "{LINKS} idle links cost {:.2}% of a core",
        share * 100.0
    );

    let sent = Instant::now();
    for link in &links {
        link.send.send("again".into()).unwrap();
    }
    for link in &links {
        let got = link.recv.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got, Incoming::Line("again".into()));
    }
    let took = sent.elapsed();
    eprintln!("{LINKS} round trips after idling: {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
}
