//! Helpers shared by the `p2plab run` tests: running a shell script in a network namespace
//! of its own with the binary and the shim at hand, checking that it succeeded, finding the
//! one result directory of a run, and checking that a run left no cgroup, no network
//! state file and no address behind; and building a Go program, which `wrap`, `check` and
//! `run` refuse. Each test crate uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
/// The shim cargo built beside this test (preload-shim is a dev-dependency).
pub fn shim() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .with_file_name("libp2plab_shim.so")
}

/// Runs `script` with `sh` in a new network namespace (lo up), `$P2PLAB` set to the
/// binary, `$SHIM` to the shim, state files in `state`.
pub fn in_netns(script: &str, state: &Path, cwd: &Path) -> Output {
    Command::new("unshare")
        .args(["-n", "sh", "-c", &format!("ip link set lo up && {script}")])
        .env("P2PLAB", env!("CARGO_BIN_EXE_p2plab"))
        .env("SHIM", shim())
        .env("P2PLAB_RUN_DIR", state)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// The script's stdout, after checking that it succeeded.
pub fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Builds `dir/listen`, a dynamically linked Go program that listens on a wildcard address
/// (`net` with cgo, the default with gcc present, links Go's resolver to libc).
pub fn go_program(dir: &Path) -> PathBuf {
    let main = "package main\nimport (\"fmt\"; \"net\")\nfunc main() { l, _ := net.Listen(\"tcp\", \":0\"); fmt.Println(l.Addr()) }\n";
    let program = go_build(dir, "listen", main, true);
    let elf = std::fs::read(&program).unwrap();
    assert!(
        elf.windows(8).any(|w| w == b"ld-linux"),
        "the Go program must be dynamically linked"
    );
    program
}

/// Builds the Go source `main` as `dir/name`, with cgo or without (then static).
pub fn go_build(dir: &Path, name: &str, main: &str, cgo: bool) -> PathBuf {
    std::fs::write(dir.join("main.go"), main).unwrap();
    let program = dir.join(name);
    let go = Command::new("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg("main.go")
        .current_dir(dir)
        .env("GOCACHE", dir.join("go-cache"))
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .output()
        .expect("go (Debian's golang-go, installed by .ci/install)");
    assert!(go.status.success(), "go build: {go:?}");
    program
}

/// The one entry of directory `parent` (a run's result directory under `results/`).
pub fn only_dir(parent: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// The mount point of every cgroup hierarchy (v1 and v2) in `/proc/self/mountinfo`.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let point = mount.split(' ').nth(4)?;
            matches!(fs.split(' ').next()?, "cgroup" | "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

/// Checks that no cgroup of a p2plab run of experiment `name` is left in any cgroup
/// hierarchy mounted on this host (v1, v2 or both), and that there is at least one.
pub fn no_cgroups_left(name: &str) {
    let mounts = cgroup_mounts();
    assert!(!mounts.is_empty(), "no cgroup hierarchy is mounted");
    for mount in mounts {
        let mut stack = vec![mount];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let p = e.path();
                    assert!(
                        !p.to_string_lossy().contains(&format!("p2plab/{name}-")),
                        "left behind: {}",
                        p.display()
                    );
                    if p.components().count() < 12 {
                        stack.push(p);
                    }
                }
            }
        }
    }
}

/// Checks that no network state file is left in `state`.
pub fn no_state_left(state: &Path) {
    // the base, and the run directory of each network namespace in it
    let left: Vec<PathBuf> = entries(state)
        .into_iter()
        .flat_map(|p| if p.is_dir() { entries(&p) } else { vec![p] })
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(left.is_empty(), "state files left: {left:?}");
}

/// The entries of directory `dir` (none when it does not exist), sorted.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let mut paths: Vec<PathBuf> = dir.map(|e| e.path()).collect();
    paths.sort();
    paths
}

/// Writes the experiment `yaml` as `file` in `work`, runs the shell `command` (which
/// runs it) in a namespace of its own with state files in `work/state`, and checks that
/// nothing was left behind: no address of 172.31.0.0/16 on `lo` and no state file.
/// Returns the command's output (its exit status is that of `command`).
pub fn leaves_nothing(work: &Path, file: &str, yaml: &str, command: &str) -> Output {
    std::fs::write(work.join(file), yaml).unwrap();
    let state = work.join("state");
    let out = in_netns(
        &format!(
            "{command}; rc=$?; echo \"addresses left: $(ip -4 -o addr show dev lo | grep -c ' 172\\.31\\.')\"; exit $rc"
        ),
        &state,
        work,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with("addresses left: 0\n"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_state_left(&state);
    out
}
