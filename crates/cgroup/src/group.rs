//! A run's cgroups (`<own>/p2plab/<run>` in each hierarchy used) and each node's group
//! below it: creating them with limits, moving a freshly forked child in, reading usage,
//! killing every process of a node or of the whole run, and removing the directories.

use crate::hierarchy::{CgroupDir, Controllers, Hierarchies};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// CFS period for CPU limits, microseconds.
const CPU_PERIOD_US: u64 = 100_000;
/// How long killing waits for a group to empty.
const KILL_WAIT: Duration = Duration::from_secs(5);

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write `{value}` to {}: {e}", path.display()),
        )
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The pids in a cgroup directory (and, for v1 freezer walks, nothing below it).
fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in `dir` and below, and waits until they are gone.
fn kill_tree(place: &CgroupDir) -> io::Result<()> {
    let dir = place.dir();
    if !dir.exists() {
        return Ok(());
    }
    let kill_file = dir.join("cgroup.kill");
    let frozen = matches!(place, CgroupDir::V1(_)) && dir.join("freezer.state").exists();
    if matches!(place, CgroupDir::V2(_)) && kill_file.exists() {
        write(&kill_file, "1")?;
    } else if frozen {
        // Freeze first so that no process can fork while we kill.
        write(&dir.join("freezer.state"), "FROZEN")?;
    }
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let mut all = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            all.extend(procs(&d));
            stack.extend(subdirs(&d));
        }
        if all.is_empty() {
            break;
        }
        for pid in &all {
            // A process that is already gone is what this loop waits for.
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if frozen {
            write(&dir.join("freezer.state"), "THAWED")?;
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!(
                    "{} processes in {} survived SIGKILL",
                    all.len(),
                    dir.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if frozen {
        write(&dir.join("freezer.state"), "THAWED")?;
    }
    Ok(())
}

/// Removes `dir` and the groups below it (they must be empty of processes).
fn remove_tree(dir: &Path) -> io::Result<()> {
    for sub in subdirs(dir) {
        remove_tree(&sub)?;
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!("cannot remove {}: {e}", dir.display()),
        )),
        _ => Ok(()),
    }
}

fn place_like(template: &CgroupDir, dir: PathBuf) -> CgroupDir {
    match template {
        CgroupDir::V2(_) => CgroupDir::V2(dir),
        CgroupDir::V1(_) => CgroupDir::V1(dir),
    }
}

/// The cgroups of one run.
#[derive(Debug, Clone)]
pub struct RunGroup {
    layout: Controllers,
    /// `<own>/p2plab/<run>` in each hierarchy used, without repeats.
    run_dirs: Vec<CgroupDir>,
    /// Why v2 controllers could not be enabled below this process's cgroup, if they could not.
    v2_problem: Option<String>,
}

/// Resources used by a node's processes so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    /// Peak memory of the group, when a memory hierarchy is available.
    pub memory_peak_bytes: Option<u64>,
}

/// One node's cgroup in each hierarchy used.
#[derive(Debug, Clone)]
pub struct NodeGroup {
    layout: Controllers,
}

impl RunGroup {
    /// Creates the run's groups below this process's own cgroups.
    pub fn create(h: &Hierarchies, run: &str) -> io::Result<RunGroup> {
        let own = h.layout().ok_or_else(|| {
            io::Error::new(
                ErrorKind::NotFound,
                "no cgroup hierarchy is mounted: mount cgroup2 on /sys/fs/cgroup",
            )
        })?;
        let below = |p: &CgroupDir| place_like(p, p.dir().join("p2plab").join(run));
        let layout = Controllers {
            group: below(&own.group),
            cpu_stat: own.cpu_stat.as_ref().map(below),
            cpu_limit: own.cpu_limit.as_ref().map(below),
            memory: own.memory.as_ref().map(below),
        };
        let mut run_dirs: Vec<CgroupDir> = Vec::new();
        for p in [
            Some(&layout.group),
            layout.cpu_stat.as_ref(),
            layout.cpu_limit.as_ref(),
            layout.memory.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !run_dirs.contains(p) {
                run_dirs.push(p.clone());
            }
        }
        let mut v2_problem = None;
        for p in &run_dirs {
            fs::create_dir_all(p.dir()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create cgroup {}: {e}", p.dir().display()),
                )
            })?;
        }
        // v2 controllers must be enabled in every ancestor's subtree_control down to the run.
        let v2_wanted: Vec<&str> = [("cpu", &layout.cpu_limit), ("memory", &layout.memory)]
            .into_iter()
            .filter(|(_, p)| matches!(p, Some(CgroupDir::V2(_))))
            .map(|(c, _)| c)
            .collect();
        if let (CgroupDir::V2(run_dir), false) = (&layout.group, v2_wanted.is_empty()) {
            let control = v2_wanted
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            let p2plab_dir = run_dir.parent().unwrap_or(run_dir);
            let own_dir = p2plab_dir.parent().unwrap_or(p2plab_dir);
            for dir in [own_dir, p2plab_dir, run_dir.as_path()] {
                if let Err(e) = write(&dir.join("cgroup.subtree_control"), &control) {
                    v2_problem = Some(format!("{e} (run p2plab in a cgroup of its own with these controllers delegated, e.g. `systemd-run --scope -p Delegate=yes p2plab ...`)"));
                    break;
                }
            }
        }
        Ok(RunGroup {
            layout,
            run_dirs,
            v2_problem,
        })
    }

    /// Reopens a run's groups from the directories `run_dirs()` gave, e.g. for `p2plab
    /// down` after the controller was killed.
    pub fn reopen(run_dirs: Vec<CgroupDir>) -> RunGroup {
        let group = run_dirs
            .first()
            .cloned()
            .unwrap_or(CgroupDir::V2(PathBuf::new()));
        RunGroup {
            layout: Controllers {
                group,
                cpu_stat: None,
                cpu_limit: None,
                memory: None,
            },
            run_dirs,
            v2_problem: None,
        }
    }

    /// The run's directory in each hierarchy (the grouping one first), for a state file.
    pub fn run_dirs(&self) -> &[CgroupDir] {
        &self.run_dirs
    }

    /// Creates the group of node `name`, with an optional CPU limit (percent of one core)
    /// and memory limit (bytes). A limit no hierarchy here can apply is an error.
    pub fn node(
        &self,
        name: &str,
        cpu_percent: Option<f64>,
        memory_bytes: Option<u64>,
    ) -> io::Result<NodeGroup> {
        let below = |p: &CgroupDir| place_like(p, p.dir().join(name));
        let node = NodeGroup {
            layout: Controllers {
                group: below(&self.layout.group),
                cpu_stat: self.layout.cpu_stat.as_ref().map(below),
                // Joined only when limited: every hierarchy joined is one more cgroup
                // migration per process start, and they are slow (a v1 cpu hierarchy
                // that only accounts what v2 already does is pure cost).
                cpu_limit: cpu_percent.and(self.layout.cpu_limit.as_ref().map(below)),
                memory: self.layout.memory.as_ref().map(below),
            },
        };
        for p in node.places() {
            fs::create_dir_all(p.dir()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create cgroup {}: {e}", p.dir().display()),
                )
            })?;
        }
        let unavailable = |what: &str| {
            let why = self
                .v2_problem
                .clone()
                .unwrap_or_else(|| format!("no {what} controller is mounted"));
            io::Error::new(
                ErrorKind::Unsupported,
                format!("{what} limits cannot be applied on this host: {why}"),
            )
        };
        if let Some(percent) = cpu_percent {
            let quota = ((percent / 100.0) * CPU_PERIOD_US as f64)
                .round()
                .max(1000.0) as u64;
            match &node.layout.cpu_limit {
                Some(CgroupDir::V2(d)) if self.v2_problem.is_none() => {
                    write(&d.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?
                }
                Some(CgroupDir::V1(d)) => {
                    write(&d.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&d.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                _ => return Err(unavailable("cpu")),
            }
        }
        if let Some(bytes) = memory_bytes {
            match &node.layout.memory {
                Some(CgroupDir::V2(d)) if self.v2_problem.is_none() => {
                    write(&d.join("memory.max"), &bytes.to_string())?
                }
                Some(CgroupDir::V1(d)) => {
                    write(&d.join("memory.limit_in_bytes"), &bytes.to_string())?
                }
                _ => return Err(unavailable("memory")),
            }
        }
        Ok(node)
    }

    /// Kills every process of the run, in every node.
    pub fn kill_all(&self) -> io::Result<()> {
        kill_tree(&self.layout.group)?;
        // A v1 grouping hierarchy does not see processes that only other hierarchies hold.
        self.run_dirs.iter().skip(1).try_for_each(kill_tree)
    }

    /// Kills what is left and removes every directory the run created.
    pub fn remove(&self) -> io::Result<()> {
        self.kill_all()?;
        for p in &self.run_dirs {
            remove_tree(p.dir())?;
            if let Some(parent) = p.dir().parent() {
                let _ = fs::remove_dir(parent); // `p2plab/`, when no other run uses it
            }
        }
        Ok(())
    }
}

impl NodeGroup {
    fn places(&self) -> Vec<&CgroupDir> {
        let mut out: Vec<&CgroupDir> = Vec::new();
        for p in [
            Some(&self.layout.group),
            self.layout.cpu_stat.as_ref(),
            self.layout.cpu_limit.as_ref(),
            self.layout.memory.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// Opens the `cgroup.procs` file of every hierarchy, for `join_self` in a forked child.
    pub fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        self.places()
            .into_iter()
            .map(|p| {
                let path = p.dir().join("cgroup.procs");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                    })
            })
            .collect()
    }

    /// The processes in the node's group.
    pub fn pids(&self) -> Vec<i32> {
        procs(self.layout.group.dir())
    }

    /// CPU time and peak memory used so far.
    pub fn usage(&self) -> Usage {
        let (cpu_user_us, cpu_system_us) = match &self.layout.cpu_stat {
            Some(CgroupDir::V2(d)) => {
                let stat = fs::read_to_string(d.join("cpu.stat")).unwrap_or_default();
                let field = |name: &str| {
                    stat.lines()
                        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                        .unwrap_or(0)
                };
                (field("user_usec"), field("system_usec"))
            }
            Some(CgroupDir::V1(d)) => (
                read_u64(&d.join("cpuacct.usage_user")).unwrap_or(0) / 1000,
                read_u64(&d.join("cpuacct.usage_sys")).unwrap_or(0) / 1000,
            ),
            None => (0, 0),
        };
        let memory_peak_bytes = match &self.layout.memory {
            Some(CgroupDir::V2(d)) => read_u64(&d.join("memory.peak")),
            Some(CgroupDir::V1(d)) => read_u64(&d.join("memory.max_usage_in_bytes")),
            None => None,
        };
        Usage {
            cpu_user_us,
            cpu_system_us,
            memory_peak_bytes,
        }
    }

    /// Kills every process of the node and waits until they are gone.
    pub fn kill(&self) -> io::Result<()> {
        self.places().into_iter().try_for_each(kill_tree)
    }
}

/// Moves the calling process into the groups whose `cgroup.procs` files are `fds`.
/// Async-signal-safe (it only calls write(2)), for use between fork and exec.
pub fn join_self(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        // SAFETY: the caller owns `fd` and keeps it open for the duration of the call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if nix::unistd::write(fd, b"0")? != 1 {
            return Err(ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Raw descriptors of opened `cgroup.procs` files, for `join_self`.
pub fn raw_fds(files: &[OwnedFd]) -> Vec<RawFd> {
    files.iter().map(AsRawFd::as_raw_fd).collect()
}
