//! Before the first start: the result directory's `logs/`, the prepare commands (unless
//! they ran elsewhere), and for every node of a role that runs here its cgroup, its
//! working directory, its empty log files and the role's files linked into it; then, at
//! each start, the [`Job`] that says what to start.

use super::host::Job;
use super::{Options, RunError};
use cgroup::NodeGroup;
use experiment::Experiment;
use std::path::{Path, PathBuf};

fn setup_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |error| RunError::Setup {
        path: path.to_path_buf(),
        error,
    }
}

/// `logs/<node>.<ext>` of a run.
fn log_path(exp: &Experiment, run_dir: &Path, node: usize, ext: &str) -> PathBuf {
    run_dir
        .join("logs")
        .join(format!("{}.{ext}", exp.plan.link.nodes[node].name))
}

/// Links (or, across file systems, copies) `from` to `to`.
fn place_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        return Ok(());
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

/// Runs the prepare commands, in the run directory, each to completion, each one's output
/// in `logs/prepare-<i>.log` (a cluster run's controller runs them itself, once).
pub fn prepare_commands(exp: &Experiment, run_dir: &Path) -> Result<(), RunError> {
    let logs = run_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(setup_err(&logs))?;
    for (i, argv) in exp.prepare_commands(run_dir).iter().enumerate() {
        let log = run_dir.join("logs").join(format!("prepare-{i}.log"));
        let out = std::fs::File::create(&log).map_err(setup_err(&log))?;
        let err = out.try_clone().map_err(setup_err(&log))?;
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(run_dir)
            .stdout(out)
            .stderr(err)
            .status();
        let status = match status {
            Ok(s) if s.success() => continue,
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        return Err(RunError::Prepare {
            command: argv.join(" "),
            status,
            log,
        });
    }
    Ok(())
}

/// Makes `logs/`, runs the prepare commands (if `opts.run_prepare`) and sets up every node
/// of a role that runs here; returns each node's cgroup (`None` without cgroups, or for a
/// node of no role or not here).
pub(super) fn prepare(
    exp: &Experiment,
    opts: &Options<'_>,
) -> Result<Vec<Option<NodeGroup>>, RunError> {
    let logs = opts.run_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(setup_err(&logs))?;
    let _ = crate::spawn::raise_nofile();
    if opts.run_prepare {
        prepare_commands(exp, &opts.run_dir)?;
    }

    let n = exp.plan.link.nodes.len();
    let here = opts.here(n);
    let mut groups: Vec<Option<NodeGroup>> = (0..n).map(|_| None).collect();
    for role in &exp.roles {
        for &node in role.nodes.iter().filter(|&&node| here[node]) {
            if let Some(run) = opts.cgroups {
                let g = run
                    .node(
                        &exp.plan.link.nodes[node].name,
                        role.cpu_percent,
                        role.memory_bytes,
                    )
                    .map_err(|error| RunError::Cgroup {
                        role: role.name.clone(),
                        error,
                    })?;
                groups[node] = Some(g);
            }
            let dir = exp.node_dir(&opts.run_dir, node);
            std::fs::create_dir_all(&dir).map_err(setup_err(&dir))?;
            // Made now, not at the start: creating files costs the file system more than
            // starting the process does.
            for ext in ["out", "err"] {
                let log = log_path(exp, &opts.run_dir, node, ext);
                std::fs::File::create(&log).map_err(setup_err(&log))?;
            }
            for file in &role.files {
                let (from, to) = (
                    opts.run_dir.join(file),
                    dir.join(file.file_name().unwrap_or(file.as_os_str())),
                );
                place_file(&from, &to).map_err(setup_err(&from))?;
            }
        }
    }
    Ok(groups)
}

/// What to start for role `role` on node `node`.
pub(super) fn job<'a>(exp: &'a Experiment, run_dir: &Path, role: usize, node: usize) -> Job<'a> {
    let n = &exp.plan.link.nodes[node];
    Job {
        role,
        node,
        argv: exp.command(role, node, run_dir),
        env: &exp.roles[role].env,
        ip: n.ip,
        name: &n.name,
        dir: exp.node_dir(run_dir, node),
        stdout: log_path(exp, run_dir, node, "out"),
        stderr: log_path(exp, run_dir, node, "err"),
    }
}
