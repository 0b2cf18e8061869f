//! `p2plab wrap --isolation bpf` with real static programs, in network namespaces of the
//! test's own: busybox-static's `httpd`, `wget` and `nc` (TCP: Debian's busybox-static has
//! no `nc -u`; a Python `sendto` is the UDP sender), and a Go program built here with
//! `CGO_ENABLED=0` (static), as TCP server, TCP client and UDP sender. Their listeners are
//! on the node's address (`ss`), their connections and datagrams come from it (as the
//! peer sees them), loopback stays loopback, and the transient cgroup, with the programs
//! attached to it, is gone once the command exits. `doctor` says cgroup BPF works and
//! leaves no scratch cgroup; `--ip6` with `bpf` is refused in one line.

mod common;

use common::{in_netns, succeeded};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A listener printing what it got from whom: `peer.py tcp|udp HOST PORT` accepts one
/// connection (or datagram) and prints the peer's address.
const PEER: &str = r#"import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.settimeout(30)
s.bind((host, port))
if kind == "tcp":
    s.listen(1)
    c, peer = s.accept()
else:
    _, peer = s.recvfrom(100)
print(peer[0], flush=True)
"#;

/// A datagram from an unbound UDP socket (`sendto` only): `send.py HOST PORT`.
const SEND: &str = r#"import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hi", (sys.argv[1], int(sys.argv[2])))
"#;

/// Shell functions for the scripts: `listening PORT` waits (up to 10 s) until something
/// listens on TCP port PORT; `section NAME` starts a section of the output.
const HELPERS: &str = r#"
listening() { i=0; while [ $i -lt 200 ]; do ss -Hltn "sport = :$1" | grep -q . && return 0; i=$((i+1)); sleep 0.05; done; echo "!! nothing listens on $1"; return 1; }
section() { echo "=== $1"; }
"#;

/// The script's output split in its `=== NAME` sections.
fn sections(out: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut current = String::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            current = name.to_string();
            map.insert(current.clone(), String::new());
        } else if let Some(s) = map.get_mut(&current) {
            s.push_str(line);
            s.push('\n');
        }
    }
    map
}

/// Runs `script` (after the helpers and with addresses `.1`-`.3` of `net` on `lo`) in a
/// namespace of its own, in a scratch directory holding the Python helpers and `extra`.
fn run(net: &str, work: &Path, script: &str) -> HashMap<String, String> {
    std::fs::write(work.join("peer.py"), PEER).unwrap();
    std::fs::write(work.join("send.py"), SEND).unwrap();
    let addrs = format!("for i in 1 2 3; do ip addr add {net}.$i/24 dev lo; done");
    let out = in_netns(
        &format!("{addrs}\n{HELPERS}\nset -e\n{script}"),
        &work.join("state"),
        work,
    );
    let text = succeeded(&out);
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    sections(&text)
}

/// The v2 cgroup of a process, from its `/proc/PID/cgroup` line `0::PATH`, as a directory.
fn v2_dir(proc_cgroup: &str) -> PathBuf {
    let path = proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no v2 cgroup in {proc_cgroup:?}"));
    let mount = common::cgroup_mounts()
        .into_iter()
        .find(|m| std::fs::metadata(m.join("cgroup.controllers")).is_ok())
        .expect("a cgroup v2 hierarchy");
    mount.join(path.trim().trim_start_matches('/'))
}

/// The command ran in its own `p2plab/wrap-<pid>/node` cgroup, and that cgroup and its
/// parent (where the programs were attached) are gone.
fn cgroup_gone(proc_cgroup: &str) {
    let node = v2_dir(proc_cgroup);
    assert!(
        node.ends_with("node") && node.to_string_lossy().contains("/p2plab/wrap-"),
        "{}",
        node.display()
    );
    assert!(!node.exists(), "left behind: {}", node.display());
    let run = node.parent().unwrap();
    assert!(!run.exists(), "left behind: {}", run.display());
}

#[test]
fn busybox_static_serves_and_connects_from_its_node_address() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    std::fs::create_dir_all(w.join("www")).unwrap();
    std::fs::write(w.join("www/index.html"), "hello from the node\n").unwrap();
    let bpf = r#""$P2PLAB" wrap --isolation bpf"#;
    let out = run(
        "172.31.220",
        w,
        &format!(
            r#"
{bpf} --ip 172.31.220.2 -- busybox httpd -f -vv -p 8080 -h www > /dev/null 2> httpd.log &
listening 8080
section listeners; ss -Hltnp "sport = :8080"
section httpd-cgroup; cat /proc/$(ss -Hltnp "sport = :8080" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')/cgroup
section page; {bpf} --ip 172.31.220.3 -- busybox wget -q -O - http://172.31.220.2:8080/index.html
python3 peer.py tcp 172.31.220.1 9001 > tcp.peer & listening 9001
{bpf} --ip 172.31.220.3 -- busybox nc 172.31.220.1 9001 < /dev/null
python3 peer.py tcp 127.0.0.1 9002 > lo.peer & listening 9002
{bpf} --ip 172.31.220.3 -- busybox nc 127.0.0.1 9002 < /dev/null
python3 peer.py udp 172.31.220.1 9004 > sendto.peer & sleep 0.3
{bpf} --ip 172.31.220.3 -- python3 send.py 172.31.220.1 9004
section client-cgroup; {bpf} --ip 172.31.220.3 -- busybox cat /proc/self/cgroup
kill $(ss -Hltnp "sport = :8080" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
wait
section httpd-log; cat httpd.log
section peers; cat tcp.peer lo.peer sendto.peer
"#
        ),
    );
    // listening on the node's address (a dual-stack socket: v4-mapped), not a wildcard
    assert!(
        out["listeners"].contains("[::ffff:172.31.220.2]:8080 "),
        "{out:?}"
    );
    assert_eq!(out["page"], "hello from the node\n");
    // the server saw the client's node address
    assert!(
        out["httpd-log"].contains("[::ffff:172.31.220.3]:"),
        "{}",
        out["httpd-log"]
    );
    // TCP from the node; to loopback from loopback; UDP from an unbound socket (sendto)
    assert_eq!(out["peers"], "172.31.220.3\n127.0.0.1\n172.31.220.3\n");
    cgroup_gone(&out["httpd-cgroup"]);
    cgroup_gone(&out["client-cgroup"]);
}

/// Builds `dir/gonode`, a statically linked Go program: `serve ADDR` (prints its listening
/// address, accepts once, prints the peer), `dial ADDR` (prints its local address), `send
/// ADDR` (a datagram from a fresh `ListenPacket("udp", ":0")`).
fn go_node(dir: &Path) -> PathBuf {
    let main = r#"package main

import (
	"fmt"
	"net"
	"os"
)

func check(err error) {
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

func main() {
	switch os.Args[1] {
	case "serve":
		l, err := net.Listen("tcp", os.Args[2])
		check(err)
		c, err := l.Accept()
		check(err)
		fmt.Println(c.RemoteAddr())
	case "dial":
		c, err := net.Dial("tcp", os.Args[2])
		check(err)
		fmt.Println(c.LocalAddr())
	case "send":
		c, err := net.ListenPacket("udp", ":0")
		check(err)
		to, err := net.ResolveUDPAddr("udp", os.Args[2])
		check(err)
		_, err = c.WriteTo([]byte("hi"), to)
		check(err)
	}
}
"#;
    let program = common::go_build(dir, "gonode", main, false);
    let elf = std::fs::read(&program).unwrap();
    assert!(
        !elf.windows(8).any(|w| w == b"ld-linux"),
        "the Go program must be statically linked"
    );
    program
}

#[test]
fn a_static_go_program_serves_dials_and_sends_from_its_node_address() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    go_node(w);
    let bpf = r#""$P2PLAB" wrap --isolation bpf"#;
    let out = run(
        "172.31.221",
        w,
        &format!(
            r#"
{bpf} --ip 172.31.221.2 -- ./gonode serve :7000 > served 2>&1 &
listening 7000
section listeners; ss -Hltnp "sport = :7000"
section dialed; {bpf} --ip 172.31.221.3 -- ./gonode dial 172.31.221.2:7000
wait
section served; cat served
python3 peer.py tcp 127.0.0.1 7001 > lo.peer & listening 7001
section dialed-lo; {bpf} --ip 172.31.221.3 -- ./gonode dial 127.0.0.1:7001
python3 peer.py udp 172.31.221.1 7002 > udp.peer & sleep 0.3
{bpf} --ip 172.31.221.3 -- ./gonode send 172.31.221.1:7002
wait
section peers; cat lo.peer udp.peer
"#
        ),
    );
    // Go listens on a dual-stack socket: the node's v4-mapped address, not [::]
    assert!(
        out["listeners"].contains("[::ffff:172.31.221.2]:7000 "),
        "{out:?}"
    );
    assert!(out["dialed"].starts_with("172.31.221.3:"), "{out:?}");
    assert!(out["served"].starts_with("172.31.221.3:"), "{out:?}");
    assert!(out["dialed-lo"].starts_with("127.0.0.1:"), "{out:?}");
    assert_eq!(out["peers"], "127.0.0.1\n172.31.221.3\n");
}

#[test]
fn doctor_tries_cgroup_bpf_and_leaves_no_scratch_cgroup() {
    let child = Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .arg("doctor")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let report = succeeded(&out);
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("cgroup sock_addr BPF"))
        .unwrap_or_else(|| panic!("no cgroup BPF line: {report}"));
    assert!(line.ends_with(" yes"), "{report}");
    // its scratch cgroup (by pid: other tests run `doctor` at the same time)
    for mount in common::cgroup_mounts() {
        let mut stack = vec![mount];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) && p.components().count() < 12 {
                    assert!(!p.ends_with(format!("p2plab/doctor-{pid}")), "left: {p:?}");
                    stack.push(p);
                }
            }
        }
    }
}

#[test]
fn an_ipv6_address_with_bpf_is_refused_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .args(["wrap", "--isolation", "bpf", "--ip", "10.0.0.1", "--ip6"])
        .args(["fd00::1", "--force", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("--ip6 is not supported with --isolation bpf"),
        "{err}"
    );
}

#[test]
fn auto_isolation_picks_bpf_for_static_programs_and_the_shim_for_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let auto = r#""$P2PLAB" wrap --isolation auto --shim "$SHIM" --ip 172.31.222.2"#;
    let out = run(
        "172.31.222",
        dir.path(),
        &format!(
            r#"
section static; {auto} -- busybox cat /proc/self/cgroup
section dynamic; {auto} -- cat /proc/self/maps
"#
        ),
    );
    // the static busybox ran in a node cgroup of its own, now gone
    cgroup_gone(&out["static"]);
    // the dynamically linked cat ran under the shim, in no wrap cgroup
    assert!(
        out["dynamic"].contains("/libp2plab_shim.so"),
        "{}",
        out["dynamic"]
    );
}

#[test]
fn sigterm_reaches_the_command_and_everything_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "172.31.223",
        dir.path(),
        r#"
"$P2PLAB" wrap --isolation bpf --ip 172.31.223.2 -- busybox sh -c 'cat /proc/self/cgroup > cg; exec busybox sleep 30' &
i=0; while [ ! -s cg ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done
kill -TERM $!
status=0; wait $! || status=$?
section status; echo $status
section cgroup; cat cg
"#,
    );
    // the command's own status: 128 + SIGTERM
    assert_eq!(out["status"], "143\n");
    cgroup_gone(&out["cgroup"]);
}

/// From a dual-stack (`AF_INET6`) socket, never bound: `dial6.py tcp|udp HOST PORT`
/// connects (TCP) or sends a datagram (UDP) to HOST, a v4-mapped address; `dial6.py bind
/// HOST PORT` binds to it instead and prints the address it got.
const DIAL6: &str = r#"import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
if kind == "tcp":
    s.connect((host, port))
elif kind == "bind":
    s.bind((host, port))
    print(s.getsockname()[0])
else:
    s.sendto(b"hi", (host, port))
"#;

#[test]
fn dual_stack_sockets_reach_v4_mapped_peers_from_the_node_address() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dial6.py"), DIAL6).unwrap();
    let bpf = r#""$P2PLAB" wrap --isolation bpf --ip 172.31.224.3 -- python3 dial6.py"#;
    let out = run(
        "172.31.224",
        dir.path(),
        &format!(
            r#"
python3 peer.py tcp 172.31.224.1 6001 > tcp.peer & listening 6001
{bpf} tcp ::ffff:172.31.224.1 6001
python3 peer.py tcp 127.0.0.1 6002 > lo.peer & listening 6002
{bpf} tcp ::ffff:127.0.0.1 6002
python3 peer.py udp 172.31.224.1 6003 > udp.peer & sleep 0.3
{bpf} udp ::ffff:172.31.224.1 6003
wait
section peers; cat tcp.peer lo.peer udp.peer
section bound; {bpf} bind ::ffff:0.0.0.0 6004
"#
        ),
    );
    assert_eq!(out["peers"], "172.31.224.3\n127.0.0.1\n172.31.224.3\n");
    // the v4-mapped wildcard is a wildcard too
    assert_eq!(out["bound"], "::ffff:172.31.224.3\n");
}
