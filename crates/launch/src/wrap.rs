//! `p2plab wrap`: run one command with a virtual address, under the preload shim or in a
//! cgroup with BPF programs attached ([`Isolation`]). Under the shim: finds the shim,
//! refuses what the shim could not hold (a statically linked program, a Go program, a
//! loopback address, an address not on this machine), appends the shim to `LD_PRELOAD`,
//! sets `BINDIP`/`BINDIP6` and execs. Under BPF: the same address checks, then
//! [`crate::isolated`] runs the command and waits for it.

use crate::elf::{self, Linkage};
use std::env;
use std::ffi::{OsStr, OsString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// File name of the shim, looked up beside the running executable.
pub const SHIM_FILE: &str = "libp2plab_shim.so";
/// Environment variable naming the shim when `--shim` is not given.
pub const SHIM_ENV: &str = "P2PLAB_SHIM";

/// How many `#!` interpreters are followed before giving up.
const MAX_SCRIPT_DEPTH: usize = 4;

/// One command to run as a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrap {
    /// The node's IPv4 address (`BINDIP`).
    pub ip: Ipv4Addr,
    /// The node's IPv6 address (`BINDIP6`), if it has one.
    pub ip6: Option<Ipv6Addr>,
    /// The shim library; else `$P2PLAB_SHIM`, else beside the running executable.
    pub shim: Option<PathBuf>,
    /// Skip the check that the addresses are assigned on this machine.
    pub force: bool,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// How the command is held to its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// The `LD_PRELOAD` shim: dynamically linked, non-Go programs only.
    Preload,
    /// Cgroup sock_addr BPF programs: any program, IPv4 node addresses only.
    Bpf,
    /// The shim for the programs it reaches, BPF for statically linked and Go programs.
    Auto,
}

/// Why a command cannot be wrapped.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("no command to run: use `p2plab wrap --ip IP -- CMD ARGS...`")]
    NoCommand,
    #[error("shim {0} not found: build it (`cargo build -p preload-shim`) or point --shim / {SHIM_ENV} at libp2plab_shim.so")]
    ShimMissing(PathBuf),
    #[error(
        "shim path {0} contains a space or colon, which LD_PRELOAD cannot carry: move the shim"
    )]
    ShimPath(PathBuf),
    #[error("command {0:?} not found: check its name or give its path")]
    CommandNotFound(OsString),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{0} is statically linked: LD_PRELOAD cannot reach it, so it would use the host's address; run a dynamically linked build")]
    Static(PathBuf),
    #[error("{0} is a Go program: Go makes its socket system calls without libc, so the shim cannot hold it to the node's address; give it an explicit bind address, or run it in a network namespace of its own")]
    Go(PathBuf),
    #[error(
        "{0} is neither a dynamically linked ELF program nor a script: the shim cannot reach it"
    )]
    NotProgram(PathBuf),
    #[error("address {0} is a loopback address, which no other node can reach: give the node an address of its own (e.g. --ip 10.0.3.7, added by `p2plab up`)")]
    Loopback(IpAddr),
    #[error("address {0} is not assigned on this machine: add it first (e.g. `p2plab up`), or pass --force to run anyway")]
    NotAssigned(IpAddr),
    #[error(
        "cannot list this machine's addresses to check {0}: {1}; pass --force to skip the check"
    )]
    Interfaces(IpAddr, nix::Error),
    #[error("cannot run {path}: {source}")]
    Exec { path: PathBuf, source: io::Error },
    #[error("--ip6 is not supported with --isolation bpf yet (its programs give IPv4 node addresses only): drop --ip6 or use --isolation preload")]
    Ip6Bpf,
    #[error("cgroup BPF isolation does not work here: {0} (`p2plab doctor` tries it)")]
    Bpf(#[from] sockbpf::Error),
    #[error("cannot wait for {path}: {source}")]
    Wait { path: PathBuf, source: io::Error },
    #[error("cannot clean up after {path}: {source}")]
    Cleanup { path: PathBuf, source: io::Error },
}

/// Checks `wrap` and builds the command to run, environment set.
pub fn command(wrap: &Wrap) -> Result<Command, WrapError> {
    let shim = find_shim(wrap.shim.as_deref())?;
    let mut cmd = checked(wrap, check_reachable)?;
    let preload = ld_preload(env::var_os("LD_PRELOAD").as_deref(), &shim);
    shim_env(&mut cmd, &preload, wrap.ip, wrap.ip6, None);
    Ok(cmd)
}

/// The command of `wrap`, its program resolved and passed through `check`, its addresses
/// checked.
fn checked(
    wrap: &Wrap,
    check: impl FnOnce(&Path) -> Result<(), WrapError>,
) -> Result<Command, WrapError> {
    let (program, args) = wrap.command.split_first().ok_or(WrapError::NoCommand)?;
    let path = resolve(program)?;
    check(&path)?;
    let ips = [Some(IpAddr::V4(wrap.ip)), wrap.ip6.map(IpAddr::V6)];
    if let Some(ip) = ips.into_iter().flatten().find(IpAddr::is_loopback) {
        return Err(WrapError::Loopback(ip));
    }
    if !wrap.force {
        check_assigned(IpAddr::V4(wrap.ip))?;
        if let Some(ip6) = wrap.ip6 {
            check_assigned(IpAddr::V6(ip6))?;
        }
    }
    let mut cmd = Command::new(&path);
    cmd.arg0(program).args(args);
    Ok(cmd)
}

fn resolve(program: &OsString) -> Result<PathBuf, WrapError> {
    crate::spawn::resolve(program).ok_or_else(|| WrapError::CommandNotFound(program.clone()))
}

/// Sets what the shim reads in `cmd`'s environment (the one place that does): `LD_PRELOAD`
/// to `preload`, `BINDIP`, `BINDIP6` (removed without one, so that no inherited value
/// applies) and, for a node of a run, `P2PLAB_NODE` (else left as inherited).
pub fn shim_env(
    cmd: &mut Command,
    preload: &OsStr,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    node: Option<&str>,
) {
    cmd.env("LD_PRELOAD", preload).env("BINDIP", ip.to_string());
    match ip6 {
        Some(ip6) => cmd.env("BINDIP6", ip6.to_string()),
        None => cmd.env_remove("BINDIP6"),
    };
    if let Some(node) = node {
        cmd.env("P2PLAB_NODE", node);
    }
}

/// Checks `wrap` and runs the command held by `isolation`. Under the shim it replaces this
/// process and returns only on error; under BPF it returns the command's exit status (128 +
/// N after signal N) once everything set up for it is gone.
pub fn wrap(wrap: &Wrap, isolation: Isolation) -> Result<i32, WrapError> {
    let bpf = match isolation {
        Isolation::Preload => false,
        Isolation::Bpf => true,
        Isolation::Auto => {
            let program = wrap.command.first().ok_or(WrapError::NoCommand)?;
            match check_reachable(&resolve(program)?) {
                Ok(()) => false,
                Err(WrapError::Static(_) | WrapError::Go(_)) => true,
                Err(e) => return Err(e),
            }
        }
    };
    if bpf {
        if wrap.ip6.is_some() {
            return Err(WrapError::Ip6Bpf);
        }
        return crate::isolated::run(checked(wrap, |_| Ok(()))?, wrap.ip);
    }
    let mut cmd = command(wrap)?;
    let path = PathBuf::from(cmd.get_program());
    Err(WrapError::Exec {
        path,
        source: cmd.exec(),
    })
}

/// The shim to preload: `explicit`, else `$P2PLAB_SHIM`, else beside the running executable.
pub fn find_shim(explicit: Option<&Path>) -> Result<PathBuf, WrapError> {
    let candidate = match (explicit, env::var_os(SHIM_ENV)) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(path)) if !path.is_empty() => PathBuf::from(path),
        _ => env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join(SHIM_FILE)))
            .unwrap_or_else(|| PathBuf::from(SHIM_FILE)),
    };
    let shim = candidate
        .canonicalize()
        .map_err(|_| WrapError::ShimMissing(candidate))?;
    if shim
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b' ' | b':'))
    {
        return Err(WrapError::ShimPath(shim));
    }
    Ok(shim)
}

/// `existing` with `shim` appended (the program's own preloads come first), once.
pub fn ld_preload(existing: Option<&OsStr>, shim: &Path) -> OsString {
    let existing = existing.map(OsStr::as_bytes).unwrap_or_default();
    let already = existing
        .split(|b| matches!(b, b' ' | b':'))
        .any(|item| item == shim.as_os_str().as_bytes());
    let mut value = OsString::from(OsStr::from_bytes(existing));
    if !already {
        if !existing.is_empty() {
            value.push(":");
        }
        value.push(shim);
    }
    value
}

/// Refuses programs `LD_PRELOAD` cannot reach, following `#!` interpreters.
pub fn check_reachable(path: &Path) -> Result<(), WrapError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SCRIPT_DEPTH {
        let linkage = elf::linkage(&current).map_err(|source| WrapError::Read {
            path: current.clone(),
            source,
        })?;
        match linkage {
            Linkage::Dynamic => return Ok(()),
            Linkage::Static => return Err(WrapError::Static(current)),
            Linkage::Go => return Err(WrapError::Go(current)),
            Linkage::Unknown => return Err(WrapError::NotProgram(current)),
            Linkage::Script(interpreter) => current = interpreter,
        }
    }
    Err(WrapError::NotProgram(current))
}

/// Refuses an address no interface of this machine (or network namespace) carries.
fn check_assigned(ip: IpAddr) -> Result<(), WrapError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| WrapError::Interfaces(ip, e))?;
    let assigned = addrs.filter_map(|a| a.address).any(|addr| {
        let v4 = addr.as_sockaddr_in().map(|a| IpAddr::V4(a.ip()));
        let v6 = addr.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip()));
        v4.or(v6) == Some(ip)
    });
    if assigned {
        Ok(())
    } else {
        Err(WrapError::NotAssigned(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ld_preload_appends_once() {
        let shim = Path::new("/opt/p2plab/libp2plab_shim.so");
        assert_eq!(
            ld_preload(None, shim),
            OsString::from("/opt/p2plab/libp2plab_shim.so")
        );
        assert_eq!(
            ld_preload(Some(OsStr::new("/x/own.so")), shim),
            OsString::from("/x/own.so:/opt/p2plab/libp2plab_shim.so")
        );
        let twice = "/x/own.so /opt/p2plab/libp2plab_shim.so";
        assert_eq!(
            ld_preload(Some(OsStr::new(twice)), shim),
            OsString::from(twice)
        );
    }

    #[test]
    fn explicit_shim_must_exist() {
        let err = find_shim(Some(Path::new("/nonexistent/libp2plab_shim.so"))).unwrap_err();
        assert!(matches!(err, WrapError::ShimMissing(_)), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a b.so");
        std::fs::write(&odd, b"").unwrap();
        assert!(matches!(find_shim(Some(&odd)), Err(WrapError::ShimPath(_))));
    }

    #[test]
    fn scripts_are_followed_to_their_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        check_reachable(&script).unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        assert!(matches!(
            check_reachable(&text),
            Err(WrapError::NotProgram(_))
        ));
    }
}
