//! `P2PLAB_SHIM_LOG=1`: one stderr line per rewritten call, naming the process, the socket
//! and the address it got; calls left as they are (an explicit or loopback bind, a connect
//! to loopback) log nothing, and without the variable the shim says nothing.

use crate::common::{python, run};
use crate::netns;

/// Makes three calls the shim rewrites (a wildcard bind, an unbound UDP `sendto`, an
/// unbound TCP `connect`) and three it leaves alone, then prints the rewritten sockets' fds.
const CALLS: &str = r#"
import socket
wild = socket.socket(); wild.bind(("0.0.0.0", 0))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.sendto(b"x", ("10.0.0.1", 9))
server = socket.socket(); server.bind(("10.0.0.1", 0)); server.listen(1)
tcp = socket.socket(); tcp.connect(server.getsockname())
loop = socket.socket(); loop.bind(("127.0.0.1", 0))
local = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); local.connect(("127.0.0.1", 9))
print(wild.fileno(), udp.fileno(), tcp.fileno())
"#;

#[test]
fn shim_log_has_one_line_per_rewritten_call() {
    netns::enter(&["10.0.0.1/8"]);
    let out = run(python("10.0.0.1", CALLS, &[]).env("P2PLAB_SHIM_LOG", "1"));
    assert!(out.status.success(), "{out:?}");
    let fds: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let [wild, udp, tcp] = [&fds[0], &fds[1], &fds[2]];
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    let pid = lines[0]
        .strip_prefix("p2plab-shim[")
        .and_then(|l| l.split_once("]: "))
        .map(|(pid, _)| pid)
        .unwrap_or_else(|| panic!("no pid: {stderr}"));
    let prefix = format!("p2plab-shim[{pid}]: ");
    let said: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{stderr}"))
        })
        .collect();
    assert_eq!(said[0], format!("bind fd {wild}: 0.0.0.0:0 -> 10.0.0.1:0"));
    for (line, fd) in [(said[1], udp), (said[2], tcp)] {
        assert!(
            line.ends_with(&format!(" on fd {fd}: bound to 10.0.0.1:0 first")),
            "{stderr}"
        );
    }
    let quiet = run(&mut python("10.0.0.1", CALLS, &[]));
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "", "logged unasked");
}
