//! Helpers for the shim's integration tests: wrapped commands, bounded waits, and the view
//! of a namespace's sockets through `ss`.

use crate::netns;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// TCP server: binds the wildcard, accepts `count` connections, prints each peer's address.
pub const SERVER: &str = r#"
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.listen(256)
for _ in range(count):
    c, peer = s.accept()
    print(peer[0], flush=True)
    c.sendall(b"hi")
    c.close()
"#;

/// TCP client without bind: connects, prints its own address as the kernel gave it.
pub const CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
assert c.recv(2) == b"hi"
print(c.getsockname()[0], flush=True)
"#;

/// How long any single wait in a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// `program args` with the shim preloaded and `BINDIP=ip`.
pub fn wrapped(ip: &str, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LD_PRELOAD", netns::shim())
        .env("BINDIP", ip)
        .env_remove("BINDIP6");
    cmd
}

/// `python3 -c SCRIPT args`, wrapped with `ip`.
pub fn python(ip: &str, script: &str, args: &[&str]) -> Command {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    wrapped(ip, "python3", &all)
}

/// A child process killed when dropped, so that a failing test leaves nothing running.
pub struct Running(Option<Child>);

impl Running {
    pub fn start(cmd: &mut Command) -> Self {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Self(Some(child))
    }

    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Waits (bounded) for the process to exit and returns what it printed.
    pub fn finish(mut self) -> Output {
        let mut child = self.0.take().expect("running");
        let start = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "timed out; stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    /// Kills the process and returns what it printed.
    pub fn stop(mut self) -> Output {
        let mut child = self.0.take().expect("running");
        let _ = child.kill();
        child.wait_with_output().expect("output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a command to completion (bounded) and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    Running::start(cmd).finish()
}

/// Stdout of a successful run.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One socket as `ss -tuanp` shows it.
#[derive(Debug)]
pub struct Socket {
    pub line: String,
    pub local_ip: String,
    pub pids: Vec<u32>,
}

/// Every TCP and UDP socket of the namespace.
pub fn sockets() -> Vec<Socket> {
    let out = stdout_of(Command::new("ss").args(["-Htuanp"]));
    out.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(4)?;
            let (host, _port) = local.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = host.split('%').next()?;
            let local_ip = host.strip_prefix("::ffff:").unwrap_or(host).to_string();
            let pids = line
                .split("pid=")
                .skip(1)
                .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                .collect();
            Some(Socket {
                line: line.to_string(),
                local_ip,
                pids,
            })
        })
        .collect()
}

/// The invariant: every socket of the given processes is on that process's own address,
/// or on loopback, which reaches nothing outside the machine. Returns how many sockets
/// were checked (none if `ss` shows no process of `own`).
pub fn own_sockets_checked(own: &HashMap<u32, &str>) -> usize {
    let mut checked = 0;
    for socket in sockets() {
        for pid in &socket.pids {
            if let Some(ip) = own.get(pid) {
                let loopback = socket
                    .local_ip
                    .parse::<IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
                assert!(
                    socket.local_ip == *ip || loopback,
                    "pid {pid} has a socket off its address {ip}: {}",
                    socket.line
                );
                checked += 1;
            }
        }
    }
    checked
}

/// [`own_sockets_checked`], and that `ss` showed at least `at_least` sockets of those
/// processes: a check that found none would pass without checking anything.
pub fn assert_own_sockets(own: &HashMap<u32, &str>, at_least: usize) {
    let checked = own_sockets_checked(own);
    assert!(
        checked >= at_least,
        "ss showed {checked} sockets of processes {:?}, want at least {at_least}",
        own.keys()
    );
}

/// The local addresses of every socket of process `pid`, as `ss` shows them.
pub fn socket_ips(pid: u32) -> BTreeSet<String> {
    sockets()
        .into_iter()
        .filter(|s| s.pids.contains(&pid))
        .map(|s| s.local_ip)
        .collect()
}

/// Waits (bounded) until a socket listens (TCP) or is bound (UDP) on `port`; returns the
/// `ss` lines of those sockets.
pub fn wait_listening(port: u16) -> Vec<Socket> {
    wait_listening_n(port, 1)
}

/// [`wait_listening`] until `n` sockets do.
pub fn wait_listening_n(port: u16, n: usize) -> Vec<Socket> {
    let start = Instant::now();
    let suffix = format!(":{port}");
    loop {
        let found: Vec<Socket> = sockets()
            .into_iter()
            .filter(|s| {
                let fields: Vec<&str> = s.line.split_whitespace().collect();
                matches!(fields.get(1), Some(&"LISTEN" | &"UNCONN"))
                    && fields.get(4).is_some_and(|l| l.ends_with(&suffix))
            })
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(start.elapsed() < TIMEOUT, "nothing listens on port {port}");
        sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for `child` to exit while checking, every few milliseconds, that no
/// socket of the `own` processes is off its address. Returns the output and the number of
/// socket observations.
pub fn watch_until_exit(child: Running, own: &HashMap<u32, &str>) -> (Output, usize) {
    let mut child = child;
    let start = Instant::now();
    let mut checked = 0;
    loop {
        checked += own_sockets_checked(own);
        let done = child
            .0
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("wait")
            .is_some();
        if done {
            return (child.finish(), checked);
        }
        assert!(start.elapsed() < TIMEOUT, "timed out");
        sleep(Duration::from_millis(10));
    }
}

/// Compiles a C source with gcc; `flags` such as `-static` or `-shared -fPIC`.
pub fn gcc(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let result = run(Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src));
    assert!(
        result.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}
