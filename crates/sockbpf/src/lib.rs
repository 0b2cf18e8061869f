//! Cgroup sock_addr BPF programs that give the processes of a node's cgroup their node's
//! IPv4 address, whatever makes their system calls: statically linked programs and Go
//! programs, which the `LD_PRELOAD` shim cannot reach, included.
//!
//! One program set per run: `bind4`, `bind6`, `connect4`, `connect6` and `sendmsg4` (see
//! [`rules::RULES`]) are attached (`BPF_F_ALLOW_MULTI`) to the run's v2 cgroup, and read
//! each node's address from one BPF hash map keyed by the node cgroup's id
//! (`bpf_get_current_cgroup_id`). A process in no node's cgroup is left alone. The v2
//! hierarchy alone is enough: a hybrid host's `/sys/fs/cgroup/unified` without
//! controllers does it.
//!
//! The programs are assembled in Rust at run time ([`insn`]) and loaded with the `bpf(2)`
//! system call ([`sys`]), so building p2plab needs neither clang nor nightly Rust: the
//! usual way to write BPF in Rust (aya with aya-ebpf) compiles programs with a nightly
//! toolchain's BPF target, and the C way needs clang. The loader crates (aya, libbpf-rs)
//! load object files, which we would then have to build. The one crate we found that
//! assembles eBPF at run time in stable Rust, rbpf, serves its own userspace VM: we did not
//! use it, since its assembler takes text with numeric jump offsets and has no way to mark
//! a 64-bit load as a map's file descriptor, which every program here needs. The programs
//! are about 30 instructions each; [`insn`] is the 8-byte encoding, labels and a printer.
//!
//! Not covered yet: `sendmsg6` and a native IPv6 `connect6` (an IPv6 socket connecting or
//! sending to a native IPv6 peer keeps the kernel's choice of source address; v4-mapped
//! peers are covered), nodes with an IPv6 address, and a
//! v6-only socket bound to `[::]` (it is given the v4-mapped node address, which such a
//! socket refuses with `EINVAL`).

pub mod insn;
pub mod programs;
pub mod rules;
pub mod sys;

use cgroup::{CgroupDir, Hierarchies, RunGroup};
use programs::Hook;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How many nodes one run's map holds.
pub const MAX_NODES: u32 = 65_536;

/// Why cgroup BPF isolation cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup sock_addr BPF needs the cgroup v2 hierarchy, which is not mounted here: mount cgroup2 (e.g. on /sys/fs/cgroup/unified)")]
    NoV2,
    #[error("cannot create the BPF map of node addresses: {0} (cgroup BPF needs root: CAP_BPF and CAP_NET_ADMIN)")]
    Map(io::Error),
    #[error("the kernel refused the {hook} program: {error}{}", verifier(.log))]
    Load {
        hook: &'static str,
        error: io::Error,
        log: String,
    },
    #[error("cannot attach the {hook} program to cgroup {}: {error}", .cgroup.display())]
    Attach {
        hook: &'static str,
        cgroup: PathBuf,
        error: io::Error,
    },
    #[error("cannot open cgroup {}: {error}", .cgroup.display())]
    Cgroup { cgroup: PathBuf, error: io::Error },
    #[error("cannot give cgroup {} its address in the BPF map: {error}", .cgroup.display())]
    Assign { cgroup: PathBuf, error: io::Error },
    #[error("{0}")]
    Run(io::Error),
}

/// The verifier's last lines, on the error's one line.
fn verifier(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(3).collect();
    match lines.is_empty() {
        true => String::new(),
        false => format!(
            " (verifier: {})",
            lines.into_iter().rev().collect::<Vec<_>>().join("; ")
        ),
    }
}

/// A run's program set, attached to its cgroup, and its map of node addresses. Detached
/// when dropped (and by the kernel when the cgroup is removed).
pub struct Isolation {
    cgroup: File,
    cgroup_dir: PathBuf,
    map: OwnedFd,
    attached: Vec<(Hook, OwnedFd)>,
}

impl Isolation {
    /// Loads the programs and attaches them to the v2 cgroup directory `run_dir`; nothing
    /// stays attached when one step fails.
    pub fn attach(run_dir: &Path) -> Result<Isolation, Error> {
        let cgroup = File::open(run_dir).map_err(|error| Error::Cgroup {
            cgroup: run_dir.to_path_buf(),
            error,
        })?;
        let map = sys::hash_map(MAX_NODES).map_err(Error::Map)?;
        let mut isolation = Isolation {
            cgroup,
            cgroup_dir: run_dir.to_path_buf(),
            map,
            attached: Vec::new(),
        };
        for hook in Hook::ALL {
            let insns = hook.program(isolation.map.as_raw_fd());
            let prog = sys::prog_load(hook.name(), hook.attach_type(), &insns).map_err(|e| {
                Error::Load {
                    hook: hook.name(),
                    error: e.error,
                    log: e.log,
                }
            })?;
            sys::prog_attach(isolation.cgroup.as_fd(), prog.as_fd(), hook.attach_type()).map_err(
                |error| Error::Attach {
                    hook: hook.name(),
                    cgroup: run_dir.to_path_buf(),
                    error,
                },
            )?;
            isolation.attached.push((hook, prog));
        }
        Ok(isolation)
    }

    /// Gives the processes of the v2 cgroup `node_dir` (below the run's) address `ip`.
    pub fn assign(&self, node_dir: &Path, ip: Ipv4Addr) -> Result<(), Error> {
        let error = |error| Error::Assign {
            cgroup: node_dir.to_path_buf(),
            error,
        };
        let id = sys::cgroup_id(node_dir).map_err(error)?;
        sys::map_update(self.map.as_fd(), id, ip.octets()).map_err(error)
    }

    /// Detaches every program; the first failure is returned after trying them all.
    pub fn detach(mut self) -> io::Result<()> {
        self.detach_all()
    }

    fn detach_all(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for (hook, prog) in self.attached.drain(..) {
            let r = sys::prog_detach(self.cgroup.as_fd(), prog.as_fd(), hook.attach_type());
            if let (Err(e), Ok(())) = (r, &first) {
                first = Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot detach the {} program from {}: {e}",
                        hook.name(),
                        self.cgroup_dir.display()
                    ),
                ));
            }
        }
        first
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        // Dropped on an error path: the caller's own error is the one to report, and the
        // cgroup's removal detaches whatever this could not.
        let _ = self.detach_all();
    }
}

/// How many programs are attached to the v2 cgroup `dir` itself, over every hook this
/// crate uses (0 for a directory that is gone).
pub fn attached_count(dir: &Path) -> io::Result<u32> {
    let cgroup = match File::open(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        other => other?,
    };
    Hook::ALL.into_iter().try_fold(0, |n, hook| {
        Ok(n + sys::prog_count(cgroup.as_fd(), hook.attach_type())?)
    })
}

/// The run's v2 directory, where the programs attach.
pub fn v2_dir(run: &RunGroup) -> Result<&Path, Error> {
    match run.run_dirs().first() {
        Some(CgroupDir::V2(dir)) => Ok(dir),
        _ => Err(Error::NoV2),
    }
}

/// Tries cgroup sock_addr BPF here: loads and attaches the programs to a scratch cgroup
/// (`p2plab/<scratch>` below this process's own), detaches them and removes the cgroup.
pub fn probe(h: &Hierarchies, scratch: &str) -> Result<(), Error> {
    let run = RunGroup::create(h, scratch).map_err(Error::Run)?;
    let tried = v2_dir(&run)
        .and_then(Isolation::attach)
        .and_then(|i| i.detach().map_err(Error::Run));
    let removed = run.remove().map_err(Error::Run);
    tried.and(removed)
}
