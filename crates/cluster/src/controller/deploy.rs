//! Getting every host ready to talk: one SSH session per host (at most 64 handshakes in
//! flight), root or passwordless sudo checked, `p2plab` and the shim copied into the
//! host's cache (content-addressed, skipped when already there), the experiment's files
//! (a mirror of their absolute paths) copied into the run's own directory on the host,
//! with what the prepare commands made, then the agent started on one exec channel. One thread per host;
//! each session is used by its thread alone.

use crate::inventory::HostEntry;
use crate::link::Link;
use crate::ssh::{Session, SshConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where p2plab keeps its files on a host: `bin/<checksum>/` the binaries it was sent,
/// `runs/<run>/<host>/` each run's input and results (keyed by host, so that hosts sharing
/// one file system never collide): `$P2PLAB_HOST_DIR` on the controller, else this.
pub const WORK_DIR: &str = "/var/tmp/p2plab";

/// The hosts' work directory (see [`WORK_DIR`]).
pub fn work_dir() -> String {
    std::env::var("P2PLAB_HOST_DIR")
        .ok()
        .filter(|d| d.starts_with('/'))
        .unwrap_or_else(|| WORK_DIR.to_string())
}

/// What every host gets.
pub struct Payload {
    pub p2plab: PathBuf,
    pub shim: PathBuf,
    /// The experiment's files (absolute), mirrored under the run's `input/`.
    pub inputs: Vec<PathBuf>,
    /// The controller's result directory and what the prepare commands made in it
    /// (relative), all of which every host gets in its own.
    pub results: PathBuf,
    pub prepared: Vec<PathBuf>,
    /// `<name>-<time>`, the result directory's name.
    pub run_id: String,
}

/// A host ready to talk.
pub struct Deployed {
    pub link: Link,
    /// The run's directory on the host.
    pub run_dir: String,
    pub shim: String,
    /// Whether the binaries had to be copied (a cold host).
    pub copied: bool,
    pub took: Duration,
}

impl Payload {
    /// Every file a host gets, relative to the run's directory on it (`input/` the mirror
    /// of the experiment's files, `results/` what prepare made), with its SHA-256.
    pub fn checksums(&self) -> std::io::Result<Vec<(String, String)>> {
        let mut sums = Vec::new();
        for input in &self.inputs {
            for file in crate::checksum::files(input)? {
                sums.push((mirrored("input", &file), crate::checksum::sha256(&file)?));
            }
        }
        for made in &self.prepared {
            let root = self.results.join(made);
            for file in crate::checksum::files(&root)? {
                let rel = file.strip_prefix(&self.results).unwrap_or(&file);
                sums.push((
                    format!("results/{}", rel.display()),
                    crate::checksum::sha256(&file)?,
                ));
            }
        }
        Ok(sums)
    }
}

/// `path` under `root`, absolute paths mirrored (`/a/b` under `/r` is `/r/a/b`).
pub fn mirrored(root: &str, path: &Path) -> String {
    format!(
        "{}/{}",
        root.trim_end_matches('/'),
        path.display().to_string().trim_start_matches('/')
    )
}

/// Connects to every host at once (at most 64 handshakes in flight) and runs `work` on each
/// session in a thread of its own; per host, what it gave or why not.
pub(super) fn on_every_host<T: Send>(
    hosts: &[HostEntry],
    ssh: &SshConfig,
    work: impl Fn(Session, &HostEntry) -> Result<T, String> + Sync,
) -> Vec<Result<T, String>> {
    let targets: Vec<(String, String)> = hosts
        .iter()
        .map(|h| (h.name.clone(), h.address.clone()))
        .collect();
    let sessions = crate::ssh::connect_all(&targets, ssh);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = sessions
            .into_iter()
            .zip(hosts)
            .map(|(session, host)| {
                scope.spawn(move || work(session.map_err(|e| e.to_string())?, host))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("its thread panicked".into()))
            })
            .collect()
    })
}

/// Deploys to every host at once; per host, its agent's link or why not.
pub fn deploy(
    hosts: &[HostEntry],
    ssh: &SshConfig,
    payload: &Payload,
    done: &(dyn Fn() + Sync),
) -> Vec<Result<Deployed, String>> {
    let started = Instant::now();
    on_every_host(hosts, ssh, |session, host| {
        let result = deploy_one(session, host, payload, started);
        done();
        result
    })
}

/// The prefix that runs a command as root on a host reached as `session`'s user: none for
/// root, `sudo -n ` with passwordless sudo.
pub(super) fn as_root(session: &Session, host: &HostEntry) -> Result<&'static str, String> {
    let id = session.exec("id -u").map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&id.stdout).trim() == "0" {
        return Ok("");
    }
    let sudo = session.exec("sudo -n true").map_err(|e| e.to_string())?;
    if sudo.success() {
        return Ok("sudo -n ");
    }
    Err(format!(
        "host {}: the SSH user is not root and has no passwordless sudo: log in as root (ssh.user) or allow `sudo -n`",
        host.name
    ))
}

fn deploy_one(
    session: Session,
    host: &HostEntry,
    payload: &Payload,
    started: Instant,
) -> Result<Deployed, String> {
    let err = |e: crate::ssh::SshError| e.to_string();
    let sudo = as_root(&session, host)?;
    let work = work_dir();
    let bin = format!("{work}/bin");
    let (p2plab, copied_bin) = session.install(&payload.p2plab, &bin).map_err(err)?;
    let (shim, copied_shim) = session.install(&payload.shim, &bin).map_err(err)?;
    let run_dir = format!("{work}/runs/{}/{}", payload.run_id, host.name);
    let input = format!("{run_dir}/input");
    for file in &payload.inputs {
        session.upload(file, &mirrored(&input, file)).map_err(err)?;
    }
    let results = format!("{run_dir}/results");
    for file in &payload.prepared {
        session
            .upload(
                &payload.results.join(file),
                &format!("{results}/{}", file.display()),
            )
            .map_err(err)?;
    }
    let link = session
        .start(&format!("{sudo}{p2plab} agent"))
        .map_err(err)?;
    Ok(Deployed {
        link,
        run_dir,
        shim,
        copied: copied_bin || copied_shim,
        took: started.elapsed(),
    })
}

/// Copies each host's `logs/` into `into/logs` (at most 8 hosts at a time); per host, the
/// bytes copied or why not.
pub fn pull_logs(
    hosts: &[HostEntry],
    ssh: &SshConfig,
    run_dirs: &[Option<String>],
    into: &Path,
) -> Vec<Result<u64, String>> {
    const AT_ONCE: usize = 8;
    let jobs: Vec<(usize, &HostEntry, &String)> = hosts
        .iter()
        .zip(run_dirs)
        .enumerate()
        .filter_map(|(h, (host, dir))| Some((h, host, dir.as_ref()?)))
        .collect();
    let mut out: Vec<Result<u64, String>> = (0..hosts.len())
        .map(|_| Err("no run directory".to_string()))
        .collect();
    for batch in jobs.chunks(AT_ONCE) {
        let got: Vec<(usize, Result<u64, String>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = batch
                .iter()
                .map(|&(h, host, dir)| {
                    scope.spawn(move || {
                        let r = Session::connect(&host.name, &host.address, ssh)
                            .and_then(|s| {
                                s.download(&format!("{dir}/results/logs"), &into.join("logs"))
                            })
                            .map_err(|e| e.to_string());
                        (h, r)
                    })
                })
                .collect();
            workers.into_iter().filter_map(|w| w.join().ok()).collect()
        });
        for (h, r) in got {
            out[h] = r;
        }
    }
    out
}
