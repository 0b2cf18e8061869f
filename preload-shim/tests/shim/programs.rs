//! Real, unmodified programs under the shim, each test in its own network namespace with
//! addresses on its `lo`, asserted from the outside: the peer's view of the source address,
//! `ss`, what clients receive. The invariant checked throughout: no socket of a wrapped
//! process listens on, or sends from, an address other than its own or loopback.

use crate::common::{
    assert_own_sockets, gcc, python, run, socket_ips, stdout_of, wait_listening, wait_listening_n,
    watch_until_exit, wrapped, Running, CLIENT, SERVER, TIMEOUT,
};
use crate::netns;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tcp_server_and_client_use_their_own_addresses() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let server = Running::start(&mut python("10.0.0.1", SERVER, &["9000", "1"]));
    let listening = wait_listening(9000);
    assert_eq!(listening[0].local_ip, "10.0.0.1", "{}", listening[0].line);
    assert_own_sockets(&HashMap::from([(server.pid(), "10.0.0.1")]), 1);

    let client = stdout_of(&mut python("10.0.0.2", CLIENT, &["10.0.0.1", "9000"]));
    assert_eq!(client.trim(), "10.0.0.2");
    assert_eq!(lines(&server.finish().stdout), ["10.0.0.2"]);
}

#[test]
fn curl_fetches_from_python_http_server() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), "served by the node\n").unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    // `-b ::` makes http.server bind the dual-stack wildcard: the shim pins it to ::ffff:10.0.0.1.
    let server = Running::start(&mut wrapped(
        "10.0.0.1",
        "python3",
        &["-m", "http.server", "8000", "-b", "::", "-d", dir_arg],
    ));
    let listening = wait_listening(8000);
    assert!(
        listening[0].line.contains("[::ffff:10.0.0.1]:8000"),
        "{}",
        listening[0].line
    );

    let body = stdout_of(&mut wrapped(
        "10.0.0.2",
        "curl",
        &["-sS", "-m", "20", "http://10.0.0.1:8000/data.txt"],
    ));
    assert_eq!(body, "served by the node\n");
    assert_own_sockets(&HashMap::from([(server.pid(), "10.0.0.1")]), 1);
    let log = String::from_utf8_lossy(&server.stop().stderr).into_owned();
    assert!(
        log.contains("::ffff:10.0.0.2 - - ") && log.contains("GET /data.txt"),
        "server log: {log}"
    );
}

#[test]
fn udp_without_bind_sends_from_own_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let receiver = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.0.1", 9001))
for _ in range(int(sys.argv[1])):
    data, peer = s.recvfrom(100)
    print(data.decode(), peer[0], flush=True)
"#;
    let sender = r#"
import socket
dst = ("10.0.0.1", 9001)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"sendto", dst)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b"sendmsg"], [], 0, dst)
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect(("10.99.0.1", 53))
print(probe.getsockname()[0], flush=True)
"#;
    // Python has no sendmmsg: a few lines of C.
    let sendmmsg = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(9001) };
    inet_pton(AF_INET, "10.0.0.1", &dst.sin_addr);
    struct iovec iov = { .iov_base = "sendmmsg", .iov_len = 8 };
    struct mmsghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_hdr.msg_name = &dst;
    msg.msg_hdr.msg_namelen = sizeof dst;
    msg.msg_hdr.msg_iov = &iov;
    msg.msg_hdr.msg_iovlen = 1;
    return sendmmsg(socket(AF_INET, SOCK_DGRAM, 0), &msg, 1, 0) == 1 ? 0 : 1;
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let sendmmsg = gcc(dir.path(), "sendmmsg", sendmmsg, &[]);
    let receiver = Running::start(&mut python("10.0.0.1", receiver, &["3"]));
    wait_listening(9001);
    let discovered = stdout_of(&mut python("10.0.0.2", sender, &[]));
    assert_eq!(discovered.trim(), "10.0.0.2", "UDP connect + getsockname");
    stdout_of(&mut wrapped("10.0.0.2", sendmmsg.to_str().unwrap(), &[]));
    let got = lines(&receiver.finish().stdout);
    assert_eq!(
        got,
        ["sendto 10.0.0.2", "sendmsg 10.0.0.2", "sendmmsg 10.0.0.2"]
    );
}

#[test]
fn forked_and_exec_children_keep_the_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let forking = r#"
import os, socket, sys
pid = os.fork()
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
assert c.recv(2) == b"hi"
if pid:
    os.waitpid(pid, 0)
"#;
    let server = Running::start(&mut python("10.0.0.1", SERVER, &["9002", "2"]));
    wait_listening(9002);
    // sh execs python, which forks: both generations connect.
    let mut cmd = wrapped(
        "10.0.0.2",
        "sh",
        &[
            "-c",
            r#"exec python3 -c "$0" "$@""#,
            forking,
            "10.0.0.1",
            "9002",
        ],
    );
    assert!(run(&mut cmd).status.success());
    assert_eq!(lines(&server.finish().stdout), ["10.0.0.2", "10.0.0.2"]);
}

#[test]
fn multithreaded_client_connects_from_own_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let threaded = r#"
import socket, sys, threading
def worker():
    for _ in range(10):
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
        assert c.recv(2) == b"hi"
        c.close()
threads = [threading.Thread(target=worker) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
"#;
    let server = Running::start(&mut python("10.0.0.1", SERVER, &["9003", "160"]));
    wait_listening(9003);
    assert!(
        run(&mut python("10.0.0.2", threaded, &["10.0.0.1", "9003"]))
            .status
            .success()
    );
    let peers = lines(&server.finish().stdout);
    assert_eq!(peers.len(), 160);
    assert!(peers.iter().all(|p| p == "10.0.0.2"), "{peers:?}");
}

/// Dual-stack and v6-only sockets, with and without `BINDIP6`.
const IPV6: &str = r#"
import socket, sys
a = socket.socket(socket.AF_INET6)
a.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
a.bind(("::", 9010))
a.listen()
print("dual", a.getsockname()[0], flush=True)
b = socket.socket(socket.AF_INET6)
b.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
try:
    b.bind(("::", 9011)); b.listen(); print("v6only", b.getsockname()[0], flush=True)
except OSError as e:
    print("v6only errno", e.errno, flush=True)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("fd00::2", 9)); print("native", u.getsockname()[0], flush=True)
except OSError as e:
    print("native errno", e.errno, flush=True)
c, peer = a.accept()
c.sendall(b"hi")
print("peer", peer[0], flush=True)
"#;

#[test]
fn ipv6_without_bindip6_stays_on_the_v4_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8", "fd00::1/64", "fd00::2/64"]);
    let server = Running::start(&mut python("10.0.0.1", IPV6, &[]));
    let listening = wait_listening(9010);
    assert!(
        listening[0].line.contains("[::ffff:10.0.0.1]:9010"),
        "{}",
        listening[0].line
    );
    assert_own_sockets(&HashMap::from([(server.pid(), "10.0.0.1")]), 1);
    stdout_of(&mut python("10.0.0.2", CLIENT, &["10.0.0.1", "9010"]));
    let out = lines(&server.finish().stdout);
    let enetunreach = format!("native errno {}", libc::ENETUNREACH);
    assert_eq!(
        out,
        [
            "dual ::ffff:10.0.0.1",
            "v6only ::1",
            &enetunreach,
            "peer ::ffff:10.0.0.2"
        ]
    );
}

#[test]
fn ipv6_with_bindip6_uses_the_v6_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8", "fd00::1/64", "fd00::2/64"]);
    let server = Running::start(python("10.0.0.1", IPV6, &[]).env("BINDIP6", "fd00::1"));
    wait_listening(9011);
    assert_own_sockets(&HashMap::from([(server.pid(), "fd00::1")]), 1);
    let client =
        stdout_of(python("10.0.0.2", CLIENT, &["fd00::1", "9010"]).env("BINDIP6", "fd00::2"));
    assert_eq!(client.trim(), "fd00::2");
    let out = lines(&server.finish().stdout);
    assert_eq!(
        out,
        [
            "dual fd00::1",
            "v6only fd00::1",
            "native fd00::1",
            "peer fd00::2"
        ]
    );
}

#[test]
fn memcached_with_its_v6_only_wildcard_starts_and_serves_ipv4_peers() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    // By default memcached listens on 0.0.0.0 and on a v6-only [::]; it exits when either
    // bind fails. Two nodes on one machine, same port: their [::] sockets must not collide.
    let args = ["-u", "root", "-p", "11311"];
    let a = Running::start(&mut wrapped("10.0.0.1", "memcached", &args));
    let b = Running::start(&mut wrapped("10.0.0.2", "memcached", &args));
    wait_listening_n(11311, 2);
    let client = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], 11311))
c.sendall(b"version\r\n")
print(c.recv(100).decode().split()[0], c.getsockname()[0], flush=True)
"#;
    for _ in 0..2 {
        let got = stdout_of(&mut python("10.0.0.2", client, &["10.0.0.1"]));
        assert_eq!(got.trim(), "VERSION 10.0.0.2");
        for (node, ip) in [(&a, "10.0.0.1"), (&b, "10.0.0.2")] {
            let ips = socket_ips(node.pid());
            assert_eq!(ips, BTreeSet::from([ip.to_string(), "::1".to_string()]));
        }
    }
}

#[test]
fn ping_sends_its_echo_requests_from_the_node_address() {
    // 10.0.0.1, the first address, is the source the kernel picks when left to choose.
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8", "10.0.0.3/8"]);
    // The peer's view: the source and destination of every echo request on `lo`.
    let listener = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(30)
for _ in range(int(sys.argv[1])):
    while True:
        data, _ = s.recvfrom(200)
        if data[(data[0] & 15) * 4] == 8:
            break
    print(socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), flush=True)
"#;
    let raw_sockets = || stdout_of(Command::new("ss").args(["-Hwan"]));
    // First with raw sockets (this namespace lets no group open ICMP datagram sockets),
    // then with ICMP datagram ("ping") sockets, which iputils' ping prefers when allowed.
    for allowed_groups in ["1 0", "0 2147483647"] {
        let range = format!("net.ipv4.ping_group_range={allowed_groups}");
        stdout_of(Command::new("sysctl").args(["-qw", &range]));
        let peer = Running::start(Command::new("python3").args(["-c", listener, "2"]));
        let start = Instant::now();
        while raw_sockets().is_empty() {
            assert!(start.elapsed() < TIMEOUT, "no raw listener");
            sleep(Duration::from_millis(20));
        }
        // no -I: ping leaves the source to the kernel
        let args = ["-c", "2", "-i", "0.2", "-W", "5", "10.0.0.2"];
        let ping = run(&mut wrapped("10.0.0.3", "ping", &args));
        assert!(ping.status.success(), "{allowed_groups}: {ping:?}");
        let seen = lines(&peer.finish().stdout);
        assert_eq!(seen, ["10.0.0.3 10.0.0.2"; 2], "{allowed_groups}");
    }
}

#[test]
fn bad_bindip_ends_the_process_with_one_line() {
    for bad in [
        "10.0.0",
        "not-an-address",
        "0.0.0.0",
        "127.0.0.1",
        "127.3.2.1",
    ] {
        let out = run(&mut wrapped(bad, "python3", &["-c", "print('ran')"]));
        assert_eq!(out.status.code(), Some(125), "BINDIP={bad}");
        assert!(out.stdout.is_empty(), "the program must not run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("BINDIP=\"{bad}\"")), "{err}");
    }
}

#[test]
fn node_sees_only_its_own_identity() {
    netns::enter(&[]);
    netns::ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    netns::ip(&["link", "set", "v0", "up"]);
    for addr in ["10.0.0.1/8", "10.0.0.2/8", "10.0.0.3/8"] {
        netns::ip(&["addr", "add", addr, "dev", "v0"]);
    }
    let all = stdout_of(Command::new("hostname").arg("-I"));
    assert_eq!(
        all.split_whitespace().collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    // hostname -I lists getifaddrs' addresses.
    let own = stdout_of(&mut wrapped("10.0.0.2", "hostname", &["-I"]));
    assert_eq!(own.split_whitespace().collect::<Vec<_>>(), ["10.0.0.2"]);
    let name = stdout_of(wrapped("10.0.0.2", "hostname", &[]).env("P2PLAB_NODE", "peer-7"));
    assert_eq!(name.trim(), "peer-7");
    let uname = stdout_of(wrapped("10.0.0.2", "uname", &["-n"]).env("P2PLAB_NODE", "peer-7"));
    assert_eq!(uname.trim(), "peer-7");
}

/// TCP client in C: `socket` then `connect` to ADDR PORT, printing its own address and
/// port; with a third argument PORT2, a `dup` of the socket is bound to `0.0.0.0:PORT2`
/// first (and closed), behind the socket's own descriptor.
const C_CLIENT: &str = r#"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &peer.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (argc > 3) {
        struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
        int d = dup(s);
        if (bind(d, (struct sockaddr *)&any, sizeof any)) { perror("bind"); return 1; }
        close(d);
    }
    if (connect(s, (struct sockaddr *)&peer, sizeof peer)) { perror("connect"); return 1; }
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    char ip[INET_ADDRSTRLEN];
    getsockname(s, (struct sockaddr *)&me, &len);
    printf("%s %d\n", inet_ntop(AF_INET, &me.sin_addr, ip, sizeof ip), ntohs(me.sin_port));
    return 0;
}
"#;

#[test]
fn a_fresh_socket_connects_with_one_bind_and_no_getsockname() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let dir = tempfile::tempdir().unwrap();
    let client = gcc(dir.path(), "client", C_CLIENT, &[]);
    let server = Running::start(&mut python("10.0.0.1", SERVER, &["9300", "2"]));
    wait_listening(9300);
    let trace = dir.path().join("trace");
    let strace = |args: &[&str]| {
        let out = stdout_of(
            Command::new("strace")
                .args(["-f", "-qq", "-e", "trace=%network", "-o"])
                .arg(&trace)
                .arg("-E")
                .arg(format!("LD_PRELOAD={}", netns::shim().display()))
                .args(["-E", "BINDIP=10.0.0.2", "--"])
                .arg(&client)
                .args(args),
        );
        let calls = std::fs::read_to_string(&trace).unwrap();
        // the calls the shim adds between the program's socket and its connect
        let added: Vec<String> = calls
            .lines()
            .skip_while(|l| !l.contains(" socket(AF_INET,"))
            .skip(1)
            .take_while(|l| !l.contains(" connect("))
            .map(|l| {
                l.split_once(' ')
                    .map_or(l, |(_pid, call)| call.trim())
                    .to_string()
            })
            .collect();
        (out, added, calls)
    };
    let (out, added, calls) = strace(&["10.0.0.1", "9300"]);
    assert!(out.starts_with("10.0.0.2 "), "{out}");
    let names: Vec<&str> = added.iter().map(|l| l.split('(').next().unwrap()).collect();
    assert_eq!(
        names,
        ["setsockopt", "bind"],
        "only IP_BIND_ADDRESS_NO_PORT and the bind itself:\n{calls}"
    );
    assert!(added[1].contains("10.0.0.2"), "{calls}");
    // a socket bound through a duplicate keeps the program's own port
    let (out, _, calls) = strace(&["10.0.0.1", "9300", "9301"]);
    assert_eq!(out.trim(), "10.0.0.2 9301", "{calls}");
    assert_eq!(lines(&server.finish().stdout), ["10.0.0.2", "10.0.0.2"]);
}

/// Resolves the host's own name (as `gethostname` gives it) and `localhost`, through
/// `getaddrinfo` (port and socket type kept), `gethostbyname` and `gethostbyname_r`.
const RESOLVE_OWN_NAME: &str = r#"
import socket
name = socket.gethostname()
for host in (name, "localhost"):
    found = socket.getaddrinfo(host, 80, socket.AF_INET, socket.SOCK_STREAM)
    by_name = socket.gethostbyname(host), socket.gethostbyname_ex(host)[0::2]
    print(host, sorted({a[4] for a in found}), *by_name)
"#;

#[test]
fn the_node_name_resolves_to_the_node_address() {
    netns::enter(&["10.0.3.7/8", "fd00::3:7/64"]);
    let node = |cmd: &mut Command| -> String { stdout_of(cmd.env("P2PLAB_NODE", "node6")) };
    let out = node(&mut python("10.0.3.7", RESOLVE_OWN_NAME, &[]));
    assert_eq!(
        lines(out.as_bytes()),
        [
            "node6 [('10.0.3.7', 80)] 10.0.3.7 ('node6', ['10.0.3.7'])",
            "localhost [('127.0.0.1', 80)] 127.0.0.1 ('localhost', ['127.0.0.1'])"
        ]
    );
    // getent: gethostbyname2 (hosts) and getaddrinfo (ahosts), any case, with BINDIP6 too
    let hosts = node(&mut wrapped("10.0.3.7", "getent", &["hosts", "NODE6"]));
    assert_eq!(
        hosts.split_whitespace().collect::<Vec<_>>(),
        ["10.0.3.7", "node6"]
    );
    let ahosts =
        node(wrapped("10.0.3.7", "getent", &["ahosts", "node6"]).env("BINDIP6", "fd00::3:7"));
    let addrs: BTreeSet<&str> = ahosts
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(addrs, BTreeSet::from(["10.0.3.7", "fd00::3:7"]), "{ahosts}");
    assert!(
        ahosts.starts_with("10.0.3.7 ") && ahosts.contains(" node6\n"),
        "{ahosts}"
    );
    // other names are libc's, as before
    assert_eq!(
        node(&mut wrapped("10.0.3.7", "getent", &["hosts", "localhost"])),
        stdout_of(Command::new("getent").args(["hosts", "localhost"]))
    );
    // without the shim, nothing knows the name
    let unwrapped = run(Command::new("getent").args(["hosts", "node6"]));
    assert!(!unwrapped.status.success());
}

#[test]
fn aria2c_swarm_with_opentracker() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8", "10.0.0.3/8"]);
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    std::fs::create_dir(path("seed")).unwrap();
    std::fs::create_dir(path("leech")).unwrap();
    let data: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(path("seed/data.bin"), &data).unwrap();
    let announce = "http://10.0.0.1:6969/announce";
    stdout_of(Command::new("mktorrent").args([
        "-a",
        announce,
        "-o",
        &path("t.torrent"),
        &path("seed/data.bin"),
    ]));
    // Debian's opentracker serves whitelisted torrents only.
    let info = stdout_of(Command::new("aria2c").args(["-S", &path("t.torrent")]));
    let hash = info
        .lines()
        .find_map(|l| l.strip_prefix("Info Hash: "))
        .expect("info hash");
    std::fs::write(path("whitelist.txt"), format!("{hash}\n")).unwrap();

    // opentracker binds the wildcard; as root it chroots to -d and drops to "nobody".
    let tracker = Running::start(&mut wrapped(
        "10.0.0.1",
        "opentracker",
        &[
            "-p",
            "6969",
            "-P",
            "6969",
            "-d",
            &path(""),
            "-w",
            "whitelist.txt",
        ],
    ));
    wait_listening(6969);
    let quiet = [
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--quiet",
    ];
    let seed_dir = format!("--dir={}", path("seed"));
    let torrent = path("t.torrent");
    let mut seed_args = vec![seed_dir.as_str(), "-V", "--seed-ratio=0.0", &torrent];
    seed_args.extend(quiet);
    let seeder = Running::start(&mut wrapped("10.0.0.2", "aria2c", &seed_args));
    let leech_dir = format!("--dir={}", path("leech"));
    let mut leech_args = vec![leech_dir.as_str(), "--seed-time=0", &torrent];
    leech_args.extend(quiet);
    let leecher = Running::start(&mut wrapped("10.0.0.3", "aria2c", &leech_args));

    let own = HashMap::from([
        (tracker.pid(), "10.0.0.1"),
        (seeder.pid(), "10.0.0.2"),
        (leecher.pid(), "10.0.0.3"),
    ]);
    let (out, observed) = watch_until_exit(leecher, &own);
    assert!(
        out.status.success(),
        "leecher: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        std::fs::read(path("leech/data.bin")).unwrap() == data,
        "downloaded file differs"
    );
    assert!(observed >= 3, "only {observed} socket observations");
}
