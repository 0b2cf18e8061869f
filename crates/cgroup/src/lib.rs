//! Control groups for p2plab's processes: every virtual node's processes share one cgroup,
//! for accounting (CPU user/system time, peak memory), optional CPU and memory limits (to
//! emulate slower machines, as Distem does) and killing a whole process tree at once, also
//! after the controller itself was killed.
//!
//! Works on pure cgroup v2, pure v1, and hybrid hosts (v1 controllers plus a v2 hierarchy
//! without them): each job goes to the hierarchy that can do it. Groups are created below
//! the controller's own cgroup in each hierarchy (`<own>/p2plab/<run>/<node>`), so that a
//! run stays inside whatever limits its caller is under. A limit that no hierarchy here can
//! apply is an error naming the missing controller, never silently dropped.
//!
//! Written on `nix` and the cgroup files directly: the jobs are a few file reads and
//! writes, and the crates we looked at (cgroups-rs) create groups at each hierarchy's root
//! rather than below the caller's own cgroup, which escapes the caller's limits.

mod group;
mod hierarchy;

pub use group::{join_self, raw_fds, NodeGroup, RunGroup, Usage};
pub use hierarchy::{CgroupDir, Controllers, Hierarchies};
