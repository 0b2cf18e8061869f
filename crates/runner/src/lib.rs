//! Running an experiment on this host, start to finish: every check that can fail is done
//! before anything changes (experiment, programs, shim, privilege, network name); then the
//! network comes up (shaping), the run's cgroups are made and recorded, the processes run
//! on schedule (launch), and whatever happens (stop rule, Ctrl-C, an error) everything is
//! torn down and the results and report are written to `results/<name>-<time>/`: the rows
//! as the run goes (launch), `run.json` and `report.html` at the end, atomically. A file
//! that cannot be written (a full disk, an I/O error) does not end the run: the summary,
//! computed from what is in memory, is still given, with what was lost and why.
//!
//! A run has two phases: [`prepare`] does every check and every set-up (network up, result
//! directory, cgroups, run record, node directories and files, prepare commands) and
//! [`Prepared::run`] runs the schedule from its time 0 ([`Start`]) and tears down (as does
//! dropping a [`Prepared`] that never ran). [`run`] is both at once. In cluster mode an
//! agent runs its host's [`Share`] of the nodes this way, in a result directory the
//! controller chose and filled, by the controller's clock and stop decision.

mod network;
mod record;

use experiment::Experiment;
use results::{Backend as ReportBackend, HostCpu, Loss, Results, RunInfo};
use shaping::{Backend, Network, Shaping, UpOptions};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use launch::{Observer, Start, Stop, StopReason};
pub use record::end as end_run;

/// What to run and how.
pub struct RunArgs {
    pub experiment: PathBuf,
    pub shaping: Shaping,
    /// Device for the address aliases.
    pub dev: String,
    /// Parent of the result directory.
    pub results: PathBuf,
    pub shim: Option<PathBuf>,
    pub quiet: bool,
    /// This host's share of the nodes (cluster mode); `None`: every node runs here.
    pub share: Option<Share>,
    /// The result directory itself (made if absent), instead of `results/<name>-<time>`.
    pub results_dir: Option<PathBuf>,
    /// Whether the experiment's prepare commands run here; not when the controller ran
    /// them once and put the files the roles use in `results_dir` before.
    pub run_prepare: bool,
    /// The experiment's stop rule is decided elsewhere (by the controller): this host's
    /// run ends at the duration cap, a stop signal, a network failure or a
    /// [`Stop::request`], never because its own processes exited or reached a metric.
    pub stop_rule_elsewhere: bool,
}

/// The nodes a cluster host runs, and how it reaches the others.
#[derive(Clone, Debug)]
pub struct Share {
    /// This host's nodes: indices into the plan's nodes.
    pub local: Vec<usize>,
    /// Every other node, on the host it is reached through.
    pub routes: Vec<shaping::RemoteNodes>,
}

/// Free space a run needs for its results before it starts: this much, and
/// [`FREE_PER_PROCESS`] per process (see [`free_space_needed`]).
const FREE_MIN: u64 = 16 << 20;
/// Free space a run needs per process it starts, on top of [`FREE_MIN`].
const FREE_PER_PROCESS: u64 = 64 << 10;

/// The free space a run of `processes` processes needs before it starts. 16 MiB hold
/// `run.json`, `report.html` (a few MB for thousands of processes) and the tables' first
/// rows; 64 KiB per process hold its row, its empty logs and node directory, a few
/// minutes of metric samples every half second and short logs. What the processes
/// themselves write (long logs, downloads, the files of prepare commands) is theirs to
/// plan for: p2plab cannot know it.
fn free_space_needed(processes: usize) -> u64 {
    FREE_MIN + FREE_PER_PROCESS * processes as u64
}

/// A finished run.
pub struct Done {
    pub dir: PathBuf,
    /// `report.html`, unless it could not be written.
    pub report: Option<PathBuf>,
    pub stop: StopReason,
    /// From time 0 to the end of the stop.
    pub duration_s: f64,
    /// How busy the host was, when `/proc/stat` could be read.
    pub host_cpu: Option<HostCpu>,
    /// The report's text summary.
    pub summary: String,
    /// How the run's processes ended (the report's counts).
    pub totals: report::analysis::Counts,
    /// What the result directory lost, and why, in one line (empty when nothing was).
    pub lost: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The experiment file (or the topology it names) is refused.
    #[error("{0}")]
    Experiment(topology::Diagnostics),
    /// The preload shim cannot be used.
    #[error(transparent)]
    Shim(launch::wrap::WrapError),
    #[error(
        "network {0} is already up (another run, or one that crashed): run `p2plab down --name {0}` first"
    )]
    AlreadyUp(String),
    /// The experiment limits CPU or memory and cgroups cannot.
    #[error("CPU or memory limits cannot be applied: {0}")]
    NoLimits(String),
    #[error(transparent)]
    Shaping(#[from] shaping::Error),
    #[error(transparent)]
    Launch(#[from] launch::RunError),
    #[error(transparent)]
    Report(#[from] report::Error),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error("interrupted by {} before the processes started; nothing is left running", launch::signals::name(*.0))]
    Interrupted(i32),
    #[error("the share names node {index}, but the topology has {nodes} nodes (numbered from 0): send this host a share of the experiment's topology")]
    NoSuchNode { index: usize, nodes: usize },
    #[error(
        "only {} free for the results in {}; a run of {processes} processes needs {} ({} and {} per process): free some space or choose another place with --results DIR",
        mib(*free), dir.display(), mib(*needed), mib(FREE_MIN), kib(FREE_PER_PROCESS)
    )]
    NoSpace {
        dir: PathBuf,
        free: u64,
        needed: u64,
        processes: usize,
    },
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes >> 10)
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |error| Error::Io { what, error }
}

/// The network name of an experiment: its name, as a network name may be spelled.
pub fn network_name(exp: &Experiment) -> String {
    exp.name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Reads and validates the experiment file at `path` as `run` takes it: every role's program
/// installed and reachable by the preload shim (dynamically linked, or a script whose
/// interpreter is). `p2plab check` calls this too, so that it refuses what `run` refuses.
pub fn load(path: &Path) -> Result<Experiment, topology::Diagnostics> {
    experiment::load_runnable(path, &|program| {
        launch::wrap::check_reachable(program).map_err(|e| e.to_string())
    })
}

/// The processes of `exp` that run here: the starts of the `local` nodes (of every node
/// without a share).
fn local_processes(exp: &Experiment, local: Option<&[usize]>) -> usize {
    exp.starts
        .iter()
        .filter(|s| local.is_none_or(|l| l.contains(&s.node)))
        .count()
}

/// Everything about this machine (and the share) that can be refused before it is touched
/// (the experiment itself is checked by `load`).
fn check(exp: &Experiment, args: &RunArgs) -> Result<PathBuf, Error> {
    let nodes = exp.plan.link.nodes.len();
    let local = args.share.as_ref().map(|s| &s.local[..]);
    if let Some(&index) = local.into_iter().flatten().find(|&&i| i >= nodes) {
        return Err(Error::NoSuchNode { index, nodes });
    }
    let shim = launch::wrap::find_shim(args.shim.as_deref()).map_err(Error::Shim)?;
    if !shaping::is_net_admin() {
        return Err(shaping::Error::NotAdmin.into());
    }
    let name = network_name(exp);
    if Network::open(&name).is_ok() || record::exists(&name) {
        return Err(Error::AlreadyUp(name));
    }
    let results = args.results_dir.as_ref().unwrap_or(&args.results);
    free_space(results, local_processes(exp, local))?;
    Ok(shim)
}

/// What `prepare` would refuse about this machine for `exp` run as `args` say, in one line
/// (the agent's preflight asks before anything is set up); `None`: nothing.
pub fn refusal(exp: &Experiment, args: &RunArgs) -> Option<String> {
    check(exp, args).err().map(|e| e.to_string())
}

/// Refuses a run whose results would not fit: less than [`free_space_needed`] available
/// (as `df` shows it) on the file system `results` is, or will be made, on.
fn free_space(results: &Path, processes: usize) -> Result<(), Error> {
    let dir = results
        .ancestors()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let fs = nix::sys::statvfs::statvfs(dir).map_err(|e| Error::Io {
        what: format!("cannot see the free space of {}", dir.display()),
        error: e.into(),
    })?;
    let free = fs.blocks_available().saturating_mul(fs.fragment_size());
    let needed = free_space_needed(processes);
    if free < needed {
        return Err(Error::NoSpace {
            dir: results.to_path_buf(),
            free,
            needed,
            processes,
        });
    }
    Ok(())
}

/// Tears down what a run set up, in reverse, whatever the way out.
struct Teardown {
    name: String,
    cgroups: Option<cgroup::RunGroup>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(g) = &self.cgroups {
            if let Err(e) = g.remove() {
                eprintln!(
                    "p2plab: cannot remove the run's cgroups: {e}; run `p2plab down --name {}`",
                    self.name
                );
                return;
            }
        }
        record::remove(&self.name);
        if let Err(e) = Network::down(&self.name) {
            eprintln!(
                "p2plab: cannot take network {} down: {e}; run `p2plab down --name {}`",
                self.name, self.name
            );
        }
    }
}

/// `results/<name>-<UTC time>`, made.
pub fn result_dir(parent: &Path, name: &str) -> Result<PathBuf, Error> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "-");
    make_dir(&parent.join(format!("{name}-{stamp}")))
}

/// Directory `dir`, made if absent, as an absolute path.
fn make_dir(dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    // Absolute, since every process runs in its own node directory.
    dir.canonicalize()
        .map_err(io(format!("cannot resolve {}", dir.display())))
}

pub fn experiment_json(exp: &Experiment) -> serde_json::Value {
    std::fs::read_to_string(&exp.file)
        .ok()
        .and_then(|t| serde_yaml_ng::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `run.json`'s `stopped` until the run has ended: what a reader sees when p2plab did not
/// finish the run (killed, or the machine went down).
const UNFINISHED: &str =
    "unfinished: p2plab was killed or the machine stopped before the run ended (its rows so far are kept)";

/// What `run.json` says of a run of `exp` begun at `started` with `backend`, before it has
/// run: unfinished, no duration, no host load yet.
fn run_info(exp: &Experiment, started: SystemTime, backend: Backend) -> RunInfo {
    RunInfo {
        name: exp.name.clone(),
        started_unix: started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        duration_s: 0.0,
        topology: exp
            .topology_file
            .as_ref()
            .map_or("inline".into(), |p| p.display().to_string()),
        backend: match backend {
            Backend::Netem => ReportBackend::Netem,
            Backend::Nfqueue => ReportBackend::Nfqueue,
        },
        kernel: nix::sys::utsname::uname().map_or_else(
            |_| "unknown".into(),
            |u| u.release().to_string_lossy().into_owned(),
        ),
        p2plab_version: env!("CARGO_PKG_VERSION").into(),
        seed: exp.seed,
        stopped: UNFINISHED.into(),
        experiment: experiment_json(exp),
        command_line: std::env::args().collect(),
        // As planned: run-time changes (events) are in the experiment.
        resolved_topology: topology::resolved_json(&exp.plan),
        host_cpu: None,
        // One host: a run over several machines records its hosts.
        hosts: Vec::new(),
    }
}

/// Runs the experiment of `args` on this host, start to finish; see the module comment.
pub fn run(args: &RunArgs) -> Result<Done, Error> {
    let exp = load(&args.experiment).map_err(Error::Experiment)?;
    prepare(args, exp)?.run(Start::Now, None)
}

/// A run set up and not begun: its network is up, its result directory, cgroups, run
/// record and node directories are made, its prepare commands ran. Dropped without
/// running, it tears everything down.
pub struct Prepared {
    exp: Experiment,
    backend: Backend,
    /// `run.json` as written at the start.
    begun: RunInfo,
    setup: Setup,
    network: Network,
    launch: launch::Prepared,
    /// Last: dropped after everything that uses what it removes.
    teardown: Teardown,
}

/// What the scheduler is given at both phases.
struct Setup {
    dir: PathBuf,
    shim: PathBuf,
    stop: Stop,
    cgroups: Option<cgroup::RunGroup>,
    local: Option<Vec<usize>>,
    quiet: bool,
    stop_rule_elsewhere: bool,
}

impl Setup {
    /// The scheduler's options.
    fn options<'a>(
        &'a self,
        run_prepare: bool,
        start: Start,
        observer: Option<&'a dyn Observer>,
    ) -> launch::Options<'a> {
        launch::Options {
            run_dir: self.dir.clone(),
            shim: self.shim.clone(),
            cgroups: self.cgroups.as_ref(),
            quiet: self.quiet,
            stop: &self.stop,
            local: self.local.as_deref(),
            run_prepare,
            stop_rule_elsewhere: self.stop_rule_elsewhere,
            start,
            observer,
        }
    }
}

/// Checks everything, then sets up the run of `exp` as `args` say (see [`Prepared`]).
/// The stop signals are taken over from here on.
pub fn prepare(args: &RunArgs, exp: Experiment) -> Result<Prepared, Error> {
    let shim = check(&exp, args)?;
    let stop = Stop::install().map_err(io("cannot take over the stop signals"))?;
    let name = network_name(&exp);
    let started = SystemTime::now();

    let (local, routes) = match &args.share {
        Some(share) => (Some(share.local.clone()), share.routes.clone()),
        None => (None, vec![]),
    };
    let opts = UpOptions {
        name: name.clone(),
        dev: args.dev.clone(),
        shaping: args.shaping,
        local: local.clone(),
        routes,
        engine: Default::default(),
    };
    launch::progress::phase(
        args.quiet,
        &format!("network up: {} nodes", exp.plan.link.nodes.len()),
    );
    let network = Network::up(exp.plan.link.clone(), &opts)?;
    let backend = network.state().backend;
    let mut teardown = Teardown {
        name: name.clone(),
        cgroups: None,
    };
    // Made once the network is up, so that a refused backend leaves no empty directory.
    let dir = match &args.results_dir {
        Some(dir) => make_dir(dir)?,
        None => result_dir(&args.results, &name)?,
    };
    // A run.json from the start, replaced at the end: a run whose controller died (kill -9,
    // a crash of the machine) still leaves a result directory that reads.
    let begun = run_info(&exp, started, backend);
    results::write_run(&dir, &begun).map_err(|e| Error::Io {
        what: format!("cannot write {}", e.path.display()),
        error: e.error,
    })?;

    let cgroups = cgroup::Hierarchies::detect()
        .map_err(|e| e.to_string())
        // The pid keeps runs of the same experiment in separate network namespaces apart.
        .and_then(|h| {
            cgroup::RunGroup::create(&h, &format!("{name}-{}", std::process::id()))
                .map_err(|e| e.to_string())
        });
    let cgroups = match cgroups {
        Ok(g) => Some(g),
        Err(why)
            if exp
                .roles
                .iter()
                .any(|r| r.cpu_percent.is_some() || r.memory_bytes.is_some()) =>
        {
            return Err(Error::NoLimits(why));
        }
        Err(why) => {
            eprintln!("p2plab: no cgroups ({why}): CPU and memory are not measured");
            None
        }
    };
    teardown.cgroups = cgroups.clone();
    let rec = record::RunRecord {
        pid: std::process::id(),
        results: dir.clone(),
        cgroups: cgroups
            .as_ref()
            .map(|g| record::encode(g.run_dirs()))
            .unwrap_or_default(),
    };
    record::save(&name, &rec).map_err(io("cannot write the run record"))?;
    if let Some(sig) = stop.signal() {
        return Err(Error::Interrupted(sig));
    }

    let setup = Setup {
        dir,
        shim,
        stop,
        cgroups,
        local,
        quiet: args.quiet,
        stop_rule_elsewhere: args.stop_rule_elsewhere,
    };
    launch::progress::phase(
        args.quiet,
        &format!(
            "prepare: node directories and files{}",
            match exp.prepare.len() {
                n if n > 0 && args.run_prepare => format!(", {n} prepare command(s)"),
                _ => String::new(),
            }
        ),
    );
    let launch = launch::prepare(&exp, &setup.options(args.run_prepare, Start::Now, None))?;
    Ok(Prepared {
        exp,
        backend,
        begun,
        setup,
        network,
        launch,
        teardown,
    })
}

impl Prepared {
    /// The result directory.
    pub fn dir(&self) -> &Path {
        &self.setup.dir
    }

    /// The backend the network uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many processes the schedule starts on this host.
    pub fn processes(&self) -> usize {
        local_processes(&self.exp, self.setup.local.as_deref())
    }

    /// The run's stop signals; [`Stop::request`] on it (or a clone) ends the run gracefully.
    pub fn stop(&self) -> &Stop {
        &self.setup.stop
    }

    /// Runs the schedule from `start` (a wait for it is cut short by a stop signal or
    /// request), showing its processes and samples to `observer` as they come; tears
    /// everything down, then writes `run.json` and the report.
    pub fn run(self, start: Start, observer: Option<&dyn Observer>) -> Result<Done, Error> {
        let Prepared {
            exp,
            begun,
            setup,
            network,
            launch,
            teardown,
            ..
        } = self;
        let mut net = network::Shaped { network };
        // the prepare commands ran at prepare
        let outcome = launch.run(&exp, &setup.options(false, start, observer), &mut net);
        let dir = setup.dir;
        launch::progress::phase(setup.quiet, "teardown: processes ended, network down");
        drop(teardown);

        // What was known at the start, with the end.
        let run = RunInfo {
            duration_s: outcome.duration_s,
            stopped: outcome.stop.to_string(),
            host_cpu: outcome.host_cpu.clone(),
            ..begun
        };
        let mut lost = outcome.lost;
        if let Err(e) = results::write_run(&dir, &run) {
            lost.push(Loss {
                file: "run.json".into(),
                what: "still says the run is unfinished (its end could not be written)".into(),
                error: e.error,
            });
        }
        // From memory: what the files hold may be less.
        let results = Results {
            dir: dir.clone(),
            run,
            processes: outcome.processes,
            metrics: outcome.metrics,
        };
        let analysis = report::analyse(&results);
        let report_path = match report::write_page(&results, &analysis) {
            Ok(path) => Some(path),
            Err(report::Error::Write(e)) => {
                lost.push(not_written("report.html", e.error));
                None
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Done {
            dir,
            report: report_path,
            stop: outcome.stop,
            duration_s: outcome.duration_s,
            host_cpu: outcome.host_cpu,
            summary: report::text(&analysis),
            totals: analysis.totals,
            lost: results::describe_losses(&lost),
        })
    }
}

/// The loss of a whole file, not written for `error`.
fn not_written(file: &str, error: std::io::Error) -> Loss {
    Loss {
        file: file.into(),
        what: "was not written".into(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The experiment file `dir/exp.yaml`, named `name`, read.
    fn experiment(dir: &Path, name: &str) -> Experiment {
        let file = dir.join("exp.yaml");
        std::fs::write(
            &file,
            format!(
                "name: '{name}'
topology:
  profiles: {{p: {{up: 1mbit, down: 1mbit}}}}
  defaults: {{profile: p}}
  groups: [{{name: a, nodes: 2}}]
roles:
  - {{name: peer, nodes: a, command: 'true'}}
stop: {{after: 1m}}
"
            ),
        )
        .unwrap();
        experiment::load(&file).unwrap()
    }

    #[test]
    fn a_network_is_named_after_its_experiment_other_characters_becoming_dashes() {
        let dir = tempfile::tempdir().unwrap();
        for (name, network) in [
            ("swarm_2-big", "swarm_2-big"),
            ("swarm 2 (big)/x.é", "swarm-2--big--x--"),
        ] {
            assert_eq!(network_name(&experiment(dir.path(), name)), network);
        }
    }

    #[test]
    fn a_result_directory_is_named_after_the_network_and_the_utc_time() {
        let parent = tempfile::tempdir().unwrap();
        let before = SystemTime::now() - std::time::Duration::from_secs(1);
        let dir = result_dir(&parent.path().join("results"), "swarm").unwrap();
        assert!(dir.is_absolute() && dir.is_dir(), "{}", dir.display());
        assert_eq!(
            dir.parent().unwrap(),
            parent.path().join("results").canonicalize().unwrap()
        );
        let name = dir.file_name().unwrap().to_str().unwrap();
        let stamp = name.strip_prefix("swarm-").unwrap();
        assert!(!stamp.contains(':'), "{name}");
        // `2026-12-01T04-33-10Z`: RFC 3339 with dashes for colons.
        let mut rfc3339 = stamp.to_string();
        rfc3339.replace_range(13..14, ":");
        rfc3339.replace_range(16..17, ":");
        let at = humantime::parse_rfc3339(&rfc3339).unwrap();
        assert!(at >= before && at <= SystemTime::now(), "{name}");
    }

    #[test]
    fn a_run_is_refused_when_its_results_would_not_fit() {
        let parent = tempfile::tempdir().unwrap();
        // Not made yet: the file system is that of the nearest existing folder.
        let results = parent.path().join("results/deeper");
        free_space(&results, 0).unwrap();
        let too_many = 1 << 40;
        let e = free_space(&results, too_many).unwrap_err();
        assert!(
            matches!(&e, Error::NoSpace { dir, needed, .. }
                if *dir == results && *needed == free_space_needed(too_many)),
            "{e}"
        );
        assert!(
            e.to_string().contains("16.0 MiB and 64 KiB per process"),
            "{e}"
        );
        assert!(!results.exists(), "nothing is made");
    }

    #[test]
    fn a_share_naming_a_node_the_topology_lacks_is_refused_first() {
        let dir = tempfile::tempdir().unwrap();
        let exp = experiment(dir.path(), "swarm");
        let args = RunArgs {
            experiment: exp.file.clone(),
            shaping: Shaping::Auto,
            dev: "lo".into(),
            results: dir.path().join("results"),
            shim: Some(dir.path().join("no-shim.so")),
            quiet: true,
            share: Some(Share {
                local: vec![1, 2],
                routes: vec![],
            }),
            results_dir: None,
            run_prepare: true,
            stop_rule_elsewhere: false,
        };
        let e = check(&exp, &args).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the share names node 2, but the topology has 2 nodes (numbered from 0): send this host a share of the experiment's topology"
        );
        assert_eq!(local_processes(&exp, Some(&[1])), 1);
        assert_eq!(local_processes(&exp, None), 2);
    }

    #[test]
    fn run_json_holds_the_experiment_file_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let exp = experiment(dir.path(), "swarm");
        let json = experiment_json(&exp);
        assert_eq!(json["name"], "swarm");
        assert_eq!(json["roles"][0]["command"], "true");
        assert_eq!(json["topology"]["groups"][0]["nodes"], 2);
        std::fs::remove_file(&exp.file).unwrap();
        assert_eq!(experiment_json(&exp), serde_json::Value::Null);
    }
}
