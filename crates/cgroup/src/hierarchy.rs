//! Which cgroup hierarchies this host has, where this process sits in each, and which of
//! them does which job (grouping and killing, CPU accounting, CPU limits, memory).

use std::io;
use std::path::{Path, PathBuf};

/// A mounted hierarchy and this process's own cgroup directory in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// `None` for v2; the controllers of a v1 hierarchy.
    pub v1_controllers: Option<Vec<String>>,
    /// This process's cgroup directory in the hierarchy.
    pub own: PathBuf,
}

/// Every cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hierarchies {
    pub mounted: Vec<Mounted>,
}

/// A directory in a hierarchy and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDir {
    V2(PathBuf),
    V1(PathBuf),
}

impl CgroupDir {
    pub fn dir(&self) -> &Path {
        match self {
            CgroupDir::V2(d) | CgroupDir::V1(d) => d,
        }
    }
}

/// The hierarchy (own directory) chosen for each job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controllers {
    /// Where processes are grouped and killed.
    pub group: CgroupDir,
    pub cpu_stat: Option<CgroupDir>,
    pub cpu_limit: Option<CgroupDir>,
    pub memory: Option<CgroupDir>,
}

impl Hierarchies {
    /// Reads `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> io::Result<Hierarchies> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup")?;
        Ok(Hierarchies::parse(&mountinfo, &cgroups))
    }

    /// Builds the picture from the two files' contents.
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Hierarchies {
        let own_path = |v1: Option<&[String]>| {
            proc_cgroup.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                let matches = match v1 {
                    None => id == "0" && ctrls.is_empty(),
                    Some(want) => ctrls.split(',').any(|c| want.iter().any(|w| w == c)),
                };
                matches.then(|| path.to_string())
            })
        };
        let mut mounted = Vec::new();
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(root), Some(point), Some(fstype), Some(opts)) = (
                fields.get(3),
                fields.get(4),
                fields.get(dash + 1),
                fields.get(dash + 3),
            ) else {
                continue;
            };
            let v1_controllers = match *fstype {
                "cgroup2" => None,
                "cgroup" => Some(
                    opts.split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                ),
                _ => continue,
            };
            if v1_controllers.as_ref().is_some_and(|c| c.is_empty()) {
                continue; // a named hierarchy (name=systemd) has no controllers
            }
            let Some(path) = own_path(v1_controllers.as_deref()) else {
                continue;
            };
            let relative = Path::new(&path)
                .strip_prefix(root)
                .unwrap_or(Path::new(&path));
            let relative = relative.strip_prefix("/").unwrap_or(relative);
            mounted.push(Mounted {
                v1_controllers,
                own: if relative.as_os_str().is_empty() {
                    PathBuf::from(point)
                } else {
                    Path::new(point).join(relative)
                },
            });
        }
        Hierarchies { mounted }
    }

    fn v2(&self) -> Option<&Mounted> {
        self.mounted.iter().find(|m| m.v1_controllers.is_none())
    }

    fn v1(&self, controller: &str) -> Option<CgroupDir> {
        self.mounted
            .iter()
            .find(|m| {
                m.v1_controllers
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|x| x == controller))
            })
            .map(|m| CgroupDir::V1(m.own.clone()))
    }

    /// Controllers the v2 hierarchy offers below this process's cgroup.
    fn v2_controllers(&self) -> Vec<String> {
        self.v2()
            .and_then(|m| std::fs::read_to_string(m.own.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Chooses a hierarchy for each job: v2 where it has the controller, v1 otherwise.
    pub fn layout(&self) -> Option<Controllers> {
        let v2 = self.v2().map(|m| CgroupDir::V2(m.own.clone()));
        let v2_has = |c: &str| {
            v2.clone()
                .filter(|_| self.v2_controllers().iter().any(|x| x == c))
        };
        let group = v2
            .clone()
            .or_else(|| self.v1("freezer"))
            .or_else(|| self.v1("pids"))
            .or_else(|| self.v1("cpuacct"))?;
        Some(Controllers {
            group,
            // v2 keeps user/system CPU time in cpu.stat even without the cpu controller.
            cpu_stat: v2.clone().or_else(|| self.v1("cpuacct")),
            cpu_limit: v2_has("cpu").or_else(|| self.v1("cpu")),
            memory: v2_has("memory").or_else(|| self.v1("memory")),
        })
    }

    /// One line per job for `p2plab doctor`.
    pub fn describe(&self) -> String {
        let Some(l) = self.layout() else {
            return "cgroups: none mounted; per-node accounting, limits and tree kill are unavailable".into();
        };
        let show = |p: &Option<CgroupDir>| match p {
            Some(CgroupDir::V2(d)) => format!("v2 at {}", d.display()),
            Some(CgroupDir::V1(d)) => format!("v1 at {}", d.display()),
            None => "not available".into(),
        };
        format!(
            "cgroups: grouping and kill: {}\ncgroups: CPU accounting: {}\ncgroups: CPU limits: {}\ncgroups: memory accounting and limits: {}",
            show(&Some(l.group.clone())),
            show(&l.cpu_stat),
            show(&l.cpu_limit),
            show(&l.memory)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
    const HYBRID_SELF: &str =
        "9:name=systemd:/\n6:freezer:/\n4:memory:/sandbox/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn hybrid_hosts_use_v1_controllers_and_v2_grouping() {
        let h = Hierarchies::parse(HYBRID_MOUNTS, HYBRID_SELF);
        assert_eq!(h.mounted.len(), 5);
        let l = h.layout().unwrap();
        assert_eq!(l.group, CgroupDir::V2("/sys/fs/cgroup/unified".into()));
        assert_eq!(
            l.cpu_stat,
            Some(CgroupDir::V2("/sys/fs/cgroup/unified".into()))
        );
        assert_eq!(
            l.cpu_limit,
            Some(CgroupDir::V1("/sys/fs/cgroup/cpu".into()))
        );
        // below this process's own memory cgroup, not the hierarchy's root
        assert_eq!(
            l.memory,
            Some(CgroupDir::V1("/sys/fs/cgroup/memory/sandbox/abc".into()))
        );
    }

    #[test]
    fn pure_v1_hosts_group_in_the_freezer() {
        let mounts: String = HYBRID_MOUNTS
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .collect::<Vec<_>>()
            .join("\n");
        let l = Hierarchies::parse(&mounts, HYBRID_SELF).layout().unwrap();
        assert_eq!(l.group, CgroupDir::V1("/sys/fs/cgroup/freezer".into()));
        assert_eq!(
            l.cpu_stat,
            Some(CgroupDir::V1("/sys/fs/cgroup/cpuacct".into()))
        );
    }

    #[test]
    fn pure_v2_hosts_use_their_own_cgroup() {
        let h = Hierarchies::parse(
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
            "0::/user.slice/user-1000.slice/session-2.scope\n",
        );
        assert_eq!(
            h.mounted[0].own,
            PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")
        );
        assert!(h.layout().is_some());
    }
}
