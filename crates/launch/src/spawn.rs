//! Starting one node's process: its command under the preload shim with `BINDIP` and
//! `P2PLAB_NODE`, in the node's working directory, output appended to its log files, in
//! its own process group (so signals reach its children) and its node cgroup.

use cgroup::NodeGroup;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// What to start for one node.
pub struct Spec<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub ip: Ipv4Addr,
    pub node: &'a str,
    /// Working directory (created if missing).
    pub dir: &'a Path,
    /// Log files, appended to.
    pub stdout: &'a Path,
    pub stderr: &'a Path,
    pub cgroup: Option<&'a NodeGroup>,
}

/// Starts processes with one shim.
pub struct Launcher {
    /// `LD_PRELOAD` for every process: the controller's own preloads, then the shim.
    preload: OsString,
    /// Programs resolved on `PATH` once, so that no child searches `PATH` at exec.
    resolved: Mutex<HashMap<String, PathBuf>>,
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
}

impl Launcher {
    pub fn new(shim: &Path) -> Launcher {
        Launcher {
            preload: crate::wrap::ld_preload(std::env::var_os("LD_PRELOAD").as_deref(), shim),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the process; returns its pid.
    pub fn start(&self, spec: &Spec<'_>) -> io::Result<u32> {
        std::fs::create_dir_all(spec.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", spec.dir.display()),
            )
        })?;
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let known = self
            .resolved
            .lock()
            .ok()
            .and_then(|r| r.get(program).cloned());
        let path = match known {
            Some(path) => path,
            None => {
                let path = resolve(program).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{program}: not found on PATH"),
                    )
                })?;
                if let Ok(mut r) = self.resolved.lock() {
                    r.insert(program.clone(), path.clone());
                }
                path
            }
        };
        let mut cmd = Command::new(path);
        crate::wrap::shim_env(&mut cmd, &self.preload, spec.ip, None, Some(spec.node));
        cmd.arg0(program)
            .args(args)
            .current_dir(spec.dir)
            .stdin(Stdio::null())
            .stdout(append(spec.stdout)?)
            .stderr(append(spec.stderr)?)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .process_group(0);
        let files = spec
            .cgroup
            .map(NodeGroup::procs_files)
            .transpose()?
            .unwrap_or_default();
        let fds = cgroup::raw_fds(&files);
        if !fds.is_empty() {
            // SAFETY: the closure only calls write(2) on descriptors opened before the fork.
            unsafe { cmd.pre_exec(move || cgroup::join_self(&fds)) };
        }
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {program}: {e}")))?;
        Ok(child.id())
    }
}

/// Resolves a program the way the spawned process will (`PATH`), for checks before a run.
pub use experiment::resolve_program as resolve;

/// Raises this process's open-file limit to its hard limit (children inherit it): a node
/// may hold many sockets, and the controller holds two log files per node.
pub fn raise_nofile() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    Ok(hard)
}
