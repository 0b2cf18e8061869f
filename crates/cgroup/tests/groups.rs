//! Real cgroups on this host (root needed, as in CI): processes land in their node's
//! group, a whole tree dies with one kill, CPU and memory limits hold, usage is read, and
//! nothing is left behind, also when the run is reopened from its directories alone.

use cgroup::{Hierarchies, RunGroup};
use nix::sys::signal::Signal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Removes the run's groups even when a test fails.
struct Run(RunGroup);
impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

fn run(name: &str) -> Run {
    let h = Hierarchies::detect().unwrap();
    Run(RunGroup::create(&h, &format!("test-{name}-{}", std::process::id())).unwrap())
}

fn spawn_in(node: &cgroup::NodeGroup, script: &str) -> Child {
    let files = node.procs_files().unwrap();
    let fds = cgroup::raw_fds(&files);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    // SAFETY: the closure only calls write(2) on descriptors opened before the fork.
    unsafe { cmd.pre_exec(move || cgroup::join_self(&fds)) };
    cmd.spawn().unwrap()
}

#[test]
fn a_whole_process_tree_is_killed_and_removed() {
    let r = run("tree");
    let node = r.0.node("n1", None, None).unwrap();
    let mut child = spawn_in(&node, "sleep 60 & sleep 60 & wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.pids().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(node.pids().len(), 3, "sh and its two sleeps");
    node.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL as i32));
    assert!(node.pids().is_empty());
    let dirs: Vec<_> =
        r.0.run_dirs()
            .iter()
            .map(|p| p.dir().to_path_buf())
            .collect();
    r.0.remove().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

#[test]
fn a_reopened_run_kills_what_a_dead_controller_left() {
    let r = run("reopen");
    let node = r.0.node("n1", None, None).unwrap();
    let mut child = spawn_in(&node, "sleep 60");
    let dirs = r.0.run_dirs().to_vec();
    std::mem::forget(r); // as if the controller died
    let again = RunGroup::reopen(dirs.clone());
    again.remove().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL as i32));
    assert!(dirs.iter().all(|d| !d.dir().exists()));
}

#[test]
fn a_cpu_limit_holds_and_usage_is_accounted() {
    let r = run("cpu");
    let limited = r.0.node("slow", Some(20.0), None).unwrap();
    let mut child = spawn_in(&limited, "while :; do :; done");
    std::thread::sleep(Duration::from_millis(1500));
    let used = limited.usage();
    child.kill().unwrap();
    child.wait().unwrap();
    let cpu_s = (used.cpu_user_us + used.cpu_system_us) as f64 / 1e6;
    // 20 % of one core over 1.5 s is 0.3 s; CFS enforces per 100 ms period.
    assert!(
        (0.15..0.45).contains(&cpu_s),
        "used {cpu_s} s of CPU under a 20 % limit"
    );
}

#[test]
fn a_memory_limit_ends_a_process_that_exceeds_it() {
    let r = run("mem");
    let node = r.0.node("small", None, Some(32 << 20)).unwrap();
    let mut child = spawn_in(
        &node,
        "exec python3 -c 'x = bytearray(200 << 20); x[::4096] = b\"1\" * len(x[::4096])'",
    );
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "{status:?}");
    let peak = node.usage().memory_peak_bytes.expect("memory accounting");
    eprintln!("memory peak {peak} bytes under a 32 MiB limit");
    // killed at the limit, not below it: a limit set too low would end it sooner
    assert!(
        ((30 << 20)..=(33 << 20)).contains(&peak),
        "peak {peak}, want 30 to 33 MiB under a 32 MiB limit"
    );
}
