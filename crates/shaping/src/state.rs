//! The state file of each network, its directory and the lock.
//!
//! One JSON file per network in the run directory, written whole to a temporary file and
//! renamed, so a reader sees the old state or the new one, never half of one. It lists
//! every kernel object the network has (or is about to have), which is what `down`
//! removes. Slots and shared qdiscs are decided under the lock, a `flock` on `.lock` in the
//! base directory (below).
//!
//! Networks live in network namespaces, so the run directory is one per namespace:
//! `/run/p2plab/netns-<id>/` (the base is `P2PLAB_RUN_DIR` when set), where `<id>` is the
//! namespace's cookie (unique while the machine is up; Linux 5.14 and later) or else its
//! inode number. Every command sees, changes and takes down only the networks of the
//! namespace it runs in; two namespaces may hold networks of the same name and addresses.
//! A namespace's directory goes when its last network does (unless a delay engine that
//! ended by itself left its log there).

use crate::error::Error;
use crate::firewall::QueueRules;
use crate::objects::Layout;
use netctl::probe::Backend;
use netctl::Object;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use topology::LinkModel;

/// Where the namespaces' run directories live unless `P2PLAB_RUN_DIR` says otherwise.
const DEFAULT_RUN_DIR: &str = "/run/p2plab";

/// What one network is, as recorded on disk.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct State {
    /// Network name.
    pub name: String,
    /// Device holding the aliases.
    pub dev: String,
    /// Backend in use.
    pub backend: Backend,
    /// Slot in this network namespace (IFB names, filter priorities, queue number).
    pub slot: u16,
    /// The link model.
    pub model: LinkModel,
    /// Nodes placed on this host (indices into `model.nodes`).
    pub local: Vec<usize>,
    /// Every object `up` creates, in creation order.
    pub objects: Vec<Object>,
    /// Hook devices whose clsact qdisc was there before any p2plab network (never ours to
    /// delete).
    #[serde(default)]
    pub foreign_clsact: Vec<String>,
    /// NFQUEUE rules, if the backend needs them.
    pub rules: Option<QueueRules>,
    /// Pid of the delay engine process.
    pub engine_pid: Option<u32>,
    /// The class (`1:minor`) of each group pair in the netem backend's pair stages, the
    /// same on every device that has one: `(source group, destination group, minor)`, in
    /// the order the classes were made (at `up`, then by run-time changes).
    #[serde(default)]
    pub pair_classes: Vec<(usize, usize, u16)>,
    /// Nodes cut off at run time (indices into `model.nodes`), in the order they were cut.
    #[serde(default)]
    pub cut: Vec<usize>,
    /// Whether `up` finished.
    pub complete: bool,
}

impl State {
    /// Whether this network's filters hook device `dev` (see [`Layout::hook_devs`]).
    pub(crate) fn hooks(&self, dev: &str) -> bool {
        self.layout().hook_devs().iter().any(|d| d == dev)
    }

    /// The layout this network was planned with.
    pub fn layout(&self) -> Layout {
        Layout {
            dev: self.dev.clone(),
            slot: self.slot,
            backend: self.backend,
        }
    }
}

/// The directory holding every network namespace's run directory, and the lock.
fn base_dir() -> PathBuf {
    std::env::var_os("P2PLAB_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_RUN_DIR.into())
}

/// The directory holding the state files of this network namespace's networks.
pub fn run_dir() -> PathBuf {
    netns_run_dir(&base_dir())
}

/// Removes this network namespace's run directory once nothing is left in it (a network,
/// a run record, an engine log kept for its failure): `rmdir` refuses while anything is.
pub(crate) fn remove_run_dir_if_empty() {
    let _ = std::fs::remove_dir(run_dir());
}

/// The run directory under `base` of the network namespace of the calling thread.
pub fn netns_run_dir(base: &Path) -> PathBuf {
    base.join(netns_key())
}

/// The calling thread's network namespace as a directory name: `netns-<cookie>`, else
/// `netns-ino-<inode>` on kernels without namespace cookies (an inode number may be reused
/// by a later namespace once this one is gone).
fn netns_key() -> String {
    match netns_cookie() {
        Some(cookie) => format!("netns-{cookie}"),
        None => {
            // the thread's: a thread may have entered a namespace of its own
            let ino = std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino());
            format!("netns-ino-{ino}")
        }
    }
}

/// The cookie of the calling thread's network namespace (`SO_NETNS_COOKIE`), if the kernel has
/// them.
fn netns_cookie() -> Option<u64> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    let mut cookie: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `cookie`, which is that large,
    // on a socket we own; nix has no wrapper for this option.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == size_of::<u64>()).then_some(cookie)
}

fn state_path(name: &str) -> PathBuf {
    run_dir().join(format!("{name}.json"))
}

/// Every network recorded in this network namespace.
pub fn networks() -> Vec<State> {
    let Ok(dir) = std::fs::read_dir(run_dir()) else {
        return vec![];
    };
    let mut v: Vec<State> = dir
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| load_path(&e.path()).ok())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Loads network `name`'s state.
pub fn load(name: &str) -> Result<State, Error> {
    let p = state_path(name);
    if !p.exists() {
        return Err(Error::NotUp(name.to_string()));
    }
    load_path(&p)
}

fn load_path(p: &Path) -> Result<State, Error> {
    let text = std::fs::read(p).map_err(|e| Error::State(p.into(), e.to_string()))?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::State(p.into(), format!("unreadable ({e}); remove it by hand")))
}

/// Writes `s` as network `s.name`'s state file (whole, then renamed over the old one).
pub(crate) fn save(s: &State) -> Result<(), Error> {
    let dir = run_dir();
    let p = state_path(&s.name);
    let err = |e: std::io::Error| Error::State(p.clone(), e.to_string());
    std::fs::create_dir_all(&dir).map_err(err)?;
    let tmp = dir.join(format!(".{}.json.tmp", s.name));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&serde_json::to_vec(s).map_err(|e| Error::State(p.clone(), e.to_string()))?)
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &p).map_err(err)
}

/// Removes network `name`'s state file (gone already is fine).
pub(crate) fn remove(name: &str) -> Result<(), Error> {
    let p = state_path(name);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::State(p, e.to_string())),
        _ => Ok(()),
    }
}

/// Holds the p2plab lock (slots and shared qdiscs are decided under it, and run
/// directories made and removed) until the returned file is dropped. One for every
/// namespace under the base directory, so that it never goes away with a run directory.
pub(crate) fn lock() -> Result<std::fs::File, Error> {
    let dir = base_dir();
    let p = dir.join(".lock");
    let err = |e: std::io::Error| Error::State(p.clone(), e.to_string());
    std::fs::create_dir_all(&dir).map_err(err)?;
    let f = std::fs::File::create(&p).map_err(err)?;
    // SAFETY: flock on a file descriptor we own; released when the file is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(f)
}
