//! Real boots of Debian's kernel under qemu: what a script prints comes back, and netem
//! really delays packets in the guest. Needs `.ci/vmtest-kernel` to have run.

use std::time::Duration;

use vmtest::{Rtt, Vm};

#[test]
fn the_script_output_and_exit_code_come_back() {
    let out = Vm::builder()
        .script("echo hello from $(uname -r)\necho to stderr >&2\nexit 7")
        .timeout(Duration::from_secs(90))
        .run()
        .unwrap();
    assert_eq!(out.exit_code, 7, "console:\n{}", out.console);
    assert!(
        out.stdout.starts_with("hello from 6."),
        "stdout: {:?}",
        out.stdout
    );
    assert!(out.stdout.ends_with("-amd64\n"), "stdout: {:?}", out.stdout);
    assert_eq!(out.stderr, "to stderr\n");
}

/// `netem delay 50ms` on `lo` delays both the echo request and the reply: RTT >= 100 ms.
#[test]
fn netem_delays_loopback_pings_in_the_guest() {
    let out = Vm::builder()
        .binary("/usr/sbin/tc")
        .binary("/usr/sbin/ip")
        .script(
            "set -e\n\
             tc qdisc add dev lo root netem delay 50ms\n\
             tc qdisc show dev lo\n\
             ping -c 5 -i 0.2 127.0.0.1\n",
        )
        .timeout(Duration::from_secs(90))
        .run()
        .unwrap();
    assert_eq!(
        out.exit_code, 0,
        "stdout:\n{}stderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("qdisc netem"),
        "tc qdisc show: {}",
        out.stdout
    );
    let rtt = Rtt::from_ping(&out.stdout).expect(&out.stdout);
    println!("netem delay 50ms on lo: ping {rtt:?}");
    assert!(rtt.min_ms >= 100.0, "RTT below 2 x 50 ms: {rtt:?}");
    assert!(rtt.min_ms < 150.0, "RTT far above 2 x 50 ms: {rtt:?}");
}
