//! A real SSH cluster on this machine for the tests: `cluster/ns-cluster up` in a temporary
//! directory, removed again (`down`) when the guard is dropped, even by a failed test; and
//! entering its controller namespace on the test's thread, so that the test never touches
//! this machine's own network.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cluster::ssh::SshConfig;
use nix::sched::{setns, CloneFlags};

/// The script that builds and removes namespace clusters.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/ns-cluster")
}

/// A namespace cluster, removed on drop.
pub struct NsCluster {
    pub dir: tempfile::TempDir,
    /// `(name, address)` of each host: `h1`, `172.31.X.11`...
    pub hosts: Vec<(String, String)>,
}

impl NsCluster {
    /// `ns-cluster up DIR hosts --subnet SUBNET EXTRA...` (each test its own subnet).
    pub fn up(hosts: usize, subnet: &str, extra: &[&str]) -> NsCluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("up")
            .arg(dir.path())
            .arg(hosts.to_string())
            .args(["--subnet", subnet])
            .args(extra)
            .output()
            .unwrap();
        let cluster = NsCluster {
            dir,
            hosts: (1..=hosts)
                .map(|k| (format!("h{k}"), format!("{subnet}.{}", 10 + k)))
                .collect(),
        };
        assert!(
            out.status.success(),
            "ns-cluster up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    /// Moves the calling thread (and the threads it starts from now on) into the
    /// controller namespace, until the returned guard is dropped.
    pub fn enter(&self) -> Entered {
        let ctl = std::fs::read_to_string(self.dir.path().join("ctl")).unwrap();
        let here = File::open("/proc/thread-self/ns/net").unwrap();
        let there = File::open(Path::new("/run/netns").join(ctl.trim())).unwrap();
        setns(there, CloneFlags::CLONE_NEWNET).unwrap();
        Entered { back: here }
    }

    /// The SSH settings of the inventory `up` wrote.
    pub fn ssh_config(&self) -> SshConfig {
        SshConfig {
            user: "root".into(),
            port: 22,
            identity_file: Some(self.dir.path().join("id_ed25519")),
            known_hosts: self.dir.path().join("known_hosts"),
            accept_new_host_keys: false,
            timeout: Duration::from_secs(10),
        }
    }

    /// `ns-cluster down`: every host gone (as if they all crashed), before the guard is
    /// dropped.
    pub fn down(&self) {
        let out = Command::new(script())
            .arg("down")
            .arg(self.dir.path())
            .output()
            .unwrap();
        if !out.status.success() && !std::thread::panicking() {
            panic!(
                "ns-cluster down failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for NsCluster {
    fn drop(&mut self) {
        self.down();
    }
}

/// The calling thread is in a cluster's controller namespace until this is dropped.
pub struct Entered {
    back: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let back = self.back.try_clone().unwrap();
        setns(back, CloneFlags::CLONE_NEWNET).unwrap();
    }
}
