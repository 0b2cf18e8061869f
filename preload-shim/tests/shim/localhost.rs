//! A node's own services through localhost: a wildcard listener of a wrapped program moves to
//! its node's address, and a client of the same node connecting to `127.0.0.1`, `::1` or
//! `localhost` still reaches it, as on a real machine; never another node's, and a real
//! loopback service of the host stays reachable.

use crate::common::{
    python, run, socket_ips, stdout_of, wait_listening, wait_listening_n, wrapped, Running, CLIENT,
    SERVER,
};
use crate::netns;
use std::collections::BTreeSet;
use std::process::Command;

/// `redis-cli ARGS` run as the node with address `ip`; its output, trimmed.
fn redis_cli(ip: &str, args: &[&str]) -> String {
    stdout_of(&mut wrapped(ip, "redis-cli", args))
        .trim()
        .to_string()
}

#[test]
fn redis_cli_reaches_its_own_node_redis_through_localhost() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // Without a configuration file redis listens on its built-in `bind * -::*`: the IPv4
    // wildcard and a v6-only IPv6 one (Debian's /etc/redis/redis.conf would bind loopback
    // instead). Protected mode off, so that a peer on another node is served too.
    let server = |ip: &str, dir: &tempfile::TempDir| {
        let dir = dir.path().to_str().unwrap().to_string();
        let args = [
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
            &dir,
        ];
        Running::start(&mut wrapped(ip, "redis-server", &args))
    };
    let a = server("10.0.0.1", &dirs[0]);
    let b = server("10.0.0.2", &dirs[1]);
    wait_listening_n(6379, 2);

    // As node A, localhost is A's server: a key set there is A's alone.
    assert_eq!(redis_cli("10.0.0.1", &["-p", "6379", "ping"]), "PONG");
    assert_eq!(
        redis_cli("10.0.0.1", &["-p", "6379", "set", "key", "only-a"]),
        "OK"
    );
    assert_eq!(redis_cli("10.0.0.1", &["get", "key"]), "only-a");
    assert_eq!(
        redis_cli("10.0.0.1", &["-h", "localhost", "get", "key"]),
        "only-a"
    );
    // As node B, localhost is B's own server, which has no such key.
    assert_eq!(redis_cli("10.0.0.2", &["get", "key"]), "");
    // The server sees a loopback client on its node's address.
    let info = redis_cli("10.0.0.1", &["client", "info"]);
    assert!(
        info.contains(" addr=127.0.0.1:") && info.contains(" laddr=10.0.0.1:6379 "),
        "{info}"
    );
    // A peer on another node reaches A's server over A's address, and A still serves after.
    assert_eq!(
        redis_cli("10.0.0.2", &["-h", "10.0.0.1", "get", "key"]),
        "only-a"
    );
    assert_eq!(redis_cli("10.0.0.1", &["incr", "hits"]), "1");
    assert_eq!(redis_cli("10.0.0.1", &["incr", "hits"]), "2");
    for (node, ip) in [(&a, "10.0.0.1"), (&b, "10.0.0.2")] {
        let ips = socket_ips(node.pid());
        assert_eq!(ips, BTreeSet::from([ip.to_string(), "::1".to_string()]));
    }

    // Never another node's: a listener of B alone is not reached through A's loopback.
    let _only_b = Running::start(&mut python("10.0.0.2", SERVER, &["9400", "1"]));
    wait_listening(9400);
    let refused = run(&mut python("10.0.0.1", CLIENT, &["127.0.0.1", "9400"]));
    assert!(!refused.status.success(), "reached B's listener");

    // A dual-stack wildcard listener (`-b ::`, on ::ffff:10.0.0.1 under the shim) answers
    // [::1] too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "node a\n").unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let args = ["-m", "http.server", "9401", "-b", "::", "-d", dir_arg];
    let _http = Running::start(&mut wrapped("10.0.0.1", "python3", &args));
    wait_listening(9401);
    let curl = |ip: &str, url: &str| stdout_of(&mut wrapped(ip, "curl", &["-sS", "-m", "20", url]));
    assert_eq!(curl("10.0.0.1", "http://[::1]:9401/f"), "node a\n");
    assert_eq!(curl("10.0.0.1", "http://127.0.0.1:9401/f"), "node a\n");
}

#[test]
fn a_loopback_service_of_the_host_stays_reachable() {
    netns::enter(&["10.0.0.1/8"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "the host's\n").unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    // not wrapped: a service of the host, on loopback only
    let args = [
        "-m",
        "http.server",
        "9402",
        "--bind",
        "127.0.0.1",
        "-d",
        dir_arg,
    ];
    let _host = Running::start(Command::new("python3").args(args));
    wait_listening(9402);
    let url = "http://127.0.0.1:9402/f";
    let body = stdout_of(&mut wrapped("10.0.0.1", "curl", &["-sS", "-m", "20", url]));
    assert_eq!(body, "the host's\n");
}

/// UDP echo of the node: binds the wildcard, answers `count` datagrams.
const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
for _ in range(int(sys.argv[2])):
    data, peer = s.recvfrom(100)
    s.sendto(data, peer)
"#;

/// Sends to 127.0.0.1:PORT with `sendto`, `sendmsg` and through `connect`, printing each
/// echo, then to a remote peer from the same socket.
const UDP_LOCAL_CLIENT: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"sendto", ("127.0.0.1", port))
print(s.recv(100).decode(), flush=True)
s.sendmsg([b"sendmsg"], [], 0, ("127.0.0.1", port))
print(s.recv(100).decode(), flush=True)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(10)
c.connect(("127.0.0.1", port))
c.send(b"connect")
print(c.recv(100).decode(), flush=True)
s.sendto(b"remote", (sys.argv[2], port))
print(s.recv(100).decode(), flush=True)
"#;

#[test]
fn udp_to_localhost_reaches_the_node_own_socket() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let _a = Running::start(&mut python("10.0.0.1", UDP_ECHO, &["9403", "3"]));
    let _b = Running::start(&mut python("10.0.0.2", UDP_ECHO, &["9403", "1"]));
    wait_listening_n(9403, 2);
    let out = stdout_of(&mut python(
        "10.0.0.1",
        UDP_LOCAL_CLIENT,
        &["9403", "10.0.0.2"],
    ));
    assert_eq!(out, "sendto\nsendmsg\nconnect\nremote\n");
}
