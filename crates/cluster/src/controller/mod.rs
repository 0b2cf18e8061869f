//! The controller of a cluster run (`p2plab run EXPERIMENT --hosts INVENTORY`): reads the
//! experiment and the inventory, places the nodes, runs the experiment's `prepare`
//! commands once (here, in the result directory), deploys to every host and starts its
//! agent (`deploy`), then, over the agents' channels (`agents`):
//!
//! 1. **Preflight**: protocol version, clock offset (`clock`; refused above the bound),
//!    and the agent's checks of its share (root, interface, shaping backend, the
//!    experiment's programs, addresses free, space for results); every host must pick the
//!    same backend. Any problem: one table, a row per host, and no host has changed
//!    anything (the agents exit and remove the run's directory).
//! 2. **Setup and barrier**: every host brings up its share and says `ready`; a host that
//!    does not in time is named and every host tears down.
//! 3. **Start**: time 0 is a moment a little ahead, sent to each host on its own clock
//!    (the offset corrected), so that a node's start time does not depend on its host.
//! 4. **Run** (`collect`): rows written as they come, the stop rule decided here, lost hosts
//!    recorded; then the stop to every host and their ends gathered.
//! 5. **Results**: each host's `logs/` pulled, `run.json` with a section per host, the
//!    report.

mod agents;
mod clock;
mod collect;
mod deploy;
mod down;

pub use deploy::{work_dir, Deployed, Payload, WORK_DIR};
pub use down::down;

use crate::inventory::{self, HostEntry, Inventory};
use crate::protocol::{FromAgent, Job, Route, ToAgent, VERSION};
use crate::ssh::SshConfig;
use agents::Agents;
use experiment::Experiment;
use results::{HostRun, Results, RunInfo};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Clock exchanges per host; the fastest one gives the offset.
const CLOCK_SAMPLES: u32 = 5;
/// How long hosts get for each step before they are named as not ready.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);
/// Time 0 is this far ahead of the moment every host is ready.
const START_AHEAD: Duration = Duration::from_secs(1);

/// What to run, where and how.
pub struct RunArgs {
    pub experiment: PathBuf,
    pub inventory: PathBuf,
    /// `auto`, `netem` or `nfqueue`.
    pub shaping: String,
    /// Parent of the result directory.
    pub results: PathBuf,
    pub shim: Option<PathBuf>,
    pub quiet: bool,
    pub accept_new_host_keys: bool,
    /// The largest clock offset a host may have.
    pub max_clock_offset: Duration,
    /// Use only the first this many hosts of the inventory (the sweep folds onto fewer).
    pub hosts: Option<usize>,
}

/// A finished cluster run.
pub struct Done {
    pub dir: PathBuf,
    pub report: Option<PathBuf>,
    /// Why it stopped, in words.
    pub stop: String,
    pub summary: String,
    pub totals: report::analysis::Counts,
    /// The hosts that failed, each with why (one line each).
    pub failed_hosts: Vec<String>,
    /// Whether a stop signal ended it (its number).
    pub interrupted: Option<i32>,
    /// How long each step took.
    pub timings: Timings,
}

/// How long the steps of a cluster run took, for the user and the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Per host: connecting, copying and starting its agent, in s, and whether the
    /// binaries had to be copied (a cold host); `None` for a host that failed.
    pub deploy: Vec<Option<(f64, bool)>>,
    /// From the command to every host deployed, through preflight, to every host ready,
    /// and to time 0, in s.
    pub deployed_s: f64,
    pub preflight_s: f64,
    pub ready_s: f64,
    pub start_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Input(topology::Diagnostics),
    #[error(transparent)]
    Placement(#[from] crate::placement::PlaceError),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error(transparent)]
    Shim(launch::wrap::WrapError),
    #[error(transparent)]
    Prepare(launch::RunError),
    #[error("preflight refused the run; nothing was changed on any host:\n{0}")]
    Preflight(String),
    #[error("{0}; every host tore its share down")]
    NotReady(String),
    #[error("interrupted by {} before the processes started; every host tore its share down", launch::signals::name(*.0))]
    Interrupted(i32),
    #[error(transparent)]
    Report(#[from] report::Error),
    #[error(transparent)]
    Results(#[from] results::WriteError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |error| Error::Io { what, error }
}

/// The SSH settings of `inv` for this run.
pub fn ssh_config(inv: &Inventory, accept_new_host_keys: bool) -> SshConfig {
    SshConfig {
        user: inv.ssh.user.clone(),
        port: inv.ssh.port,
        identity_file: inv.ssh.identity_file.clone(),
        known_hosts: inv.ssh.known_hosts.clone(),
        accept_new_host_keys,
        timeout: Duration::from_secs(10),
    }
}

/// The experiment's files a host needs, absolute: the experiment file, its topology and
/// scenario files, or its whole folder when a command names `{experiment_dir}`.
fn inputs(exp: &Experiment) -> Result<Vec<PathBuf>, Error> {
    let file = exp
        .file
        .canonicalize()
        .map_err(io(format!("cannot resolve {}", exp.file.display())))?;
    let text =
        std::fs::read_to_string(&file).map_err(io(format!("cannot read {}", file.display())))?;
    // The folder holds the file itself.
    let mut files = if text.contains("{experiment_dir}") {
        vec![file.parent().unwrap_or(Path::new("/")).to_path_buf()]
    } else {
        vec![file]
    };
    files.extend(
        exp.topology_file
            .iter()
            .filter_map(|t| t.canonicalize().ok()),
    );
    files.extend(
        exp.scenario_file
            .iter()
            .filter_map(|s| s.canonicalize().ok()),
    );
    Ok(files)
}

/// What the prepare commands made in the result directory `dir` (its entries but `logs/`).
fn prepared(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(io(format!("cannot list {}", dir.display())))?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| PathBuf::from(e.file_name()))
        .filter(|name| name.as_os_str() != "logs")
        .collect())
}

/// How the controller reaches hosts: SSH ([`Ssh`]), or, for the orchestration benchmark,
/// local processes speaking the protocol over pipes.
pub trait Carrier: Sync {
    /// Gets every host ready to talk (`done` after each); per host, its agent or why not.
    fn deploy(
        &self,
        hosts: &[HostEntry],
        payload: &Payload,
        done: &(dyn Fn() + Sync),
    ) -> Vec<Result<Deployed, String>>;
    /// Copies each host's `logs/` (of its run directory, if it has one) into `into`; per
    /// host, the bytes copied or why not.
    fn pull_logs(
        &self,
        hosts: &[HostEntry],
        run_dirs: &[Option<String>],
        into: &Path,
    ) -> Vec<Result<u64, String>>;
}

/// Hosts reached over SSH.
pub struct Ssh(pub SshConfig);

impl Carrier for Ssh {
    fn deploy(
        &self,
        hosts: &[HostEntry],
        payload: &Payload,
        done: &(dyn Fn() + Sync),
    ) -> Vec<Result<Deployed, String>> {
        deploy::deploy(hosts, &self.0, payload, done)
    }

    fn pull_logs(
        &self,
        hosts: &[HostEntry],
        run_dirs: &[Option<String>],
        into: &Path,
    ) -> Vec<Result<u64, String>> {
        deploy::pull_logs(hosts, &self.0, run_dirs, into)
    }
}

/// Runs `args`' experiment over its inventory's hosts, reached over SSH; see the module
/// comment.
pub fn run(args: &RunArgs) -> Result<Done, Error> {
    let inv = inventory::load(&args.inventory).map_err(Error::Input)?;
    run_on(args, &Ssh(ssh_config(&inv, args.accept_new_host_keys)))
}

/// [`run`], the hosts reached through `carrier`.
pub fn run_on(args: &RunArgs, carrier: &dyn Carrier) -> Result<Done, Error> {
    let exp = experiment::load(&args.experiment).map_err(Error::Input)?;
    let inv = inventory::load(&args.inventory).map_err(Error::Input)?;
    let mut hosts = inv.hosts.clone();
    if let Some(n) = args.hosts {
        hosts.truncate(n);
    }
    let placed = crate::placement::place(&exp.plan.link, &hosts, &inv.placement)?;
    let shim = launch::wrap::find_shim(args.shim.as_deref()).map_err(Error::Shim)?;
    let p2plab = std::env::current_exe().map_err(io("cannot find the p2plab binary"))?;
    let stop = launch::Stop::install().map_err(io("cannot take over the stop signals"))?;

    // The result directory and what `prepare` makes in it, before any host is touched.
    let name = runner::network_name(&exp);
    let dir = runner::result_dir(&args.results, &name).map_err(|e| Error::Io {
        what: "cannot make the result directory".into(),
        error: std::io::Error::other(e.to_string()),
    })?;
    launch::prepare_commands(&exp, &dir).map_err(Error::Prepare)?;
    let payload = Payload {
        p2plab,
        shim,
        inputs: inputs(&exp)?,
        results: dir.clone(),
        prepared: prepared(&dir)?,
        run_id: dir
            .file_name()
            .map_or(name.clone(), |n| n.to_string_lossy().into_owned()),
    };
    let files = payload
        .checksums()
        .map_err(io("cannot read the files the hosts get"))?;
    let began = Instant::now();
    let mut timings = Timings::default();
    let bar = Bar::new("deploy", hosts.len(), args.quiet);
    let deployed = carrier.deploy(&hosts, &payload, &|| bar.inc());
    bar.finish();
    timings.deployed_s = began.elapsed().as_secs_f64();
    timings.deploy = deployed
        .iter()
        .map(|d| d.as_ref().ok().map(|d| (d.took.as_secs_f64(), d.copied)))
        .collect();
    let run_dirs: Vec<Option<String>> = deployed
        .iter()
        .map(|d| d.as_ref().ok().map(|d| d.run_dir.clone()))
        .collect();
    let mut jobs = Vec::with_capacity(hosts.len());
    let mut links = Vec::with_capacity(hosts.len());
    for (h, d) in deployed.into_iter().enumerate() {
        match d {
            Ok(d) => {
                jobs.push(Some(Job {
                    files: files.clone(),
                    ..job(&exp, &args.shaping, &hosts, &placed, h, &d)
                }));
                links.push(Ok(d.link));
            }
            Err(why) => {
                jobs.push(None);
                links.push(Err(why));
            }
        }
    }
    let mut agents = Agents::new(links);
    let all: Vec<usize> = (0..hosts.len()).collect();
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();

    // 1. Preflight.
    let pre = preflight(&mut agents, &all, &jobs, &names, args.max_clock_offset);
    timings.preflight_s = began.elapsed().as_secs_f64();
    if let Some(table) = pre.refusal(&names) {
        abandon(&mut agents, "preflight refused the run", &dir);
        return Err(Error::Preflight(table));
    }
    if let Some(sig) = stop.signal() {
        abandon(&mut agents, "interrupted", &dir);
        return Err(Error::Interrupted(sig));
    }

    // 2. Setup and the barrier.
    for &h in &all {
        if let Some(job) = &jobs[h] {
            agents.send(h, &ToAgent::Setup { job: job.clone() });
        }
    }
    let ready = agents.gather(
        &all,
        SETUP_TIMEOUT,
        |_, m| match m {
            FromAgent::Ready { processes, .. } => Ok(processes),
            m => Err(m),
        },
        |_, _| {},
    );
    let not_ready: Vec<String> = ready
        .iter()
        .zip(&names)
        .filter_map(|(r, n)| r.as_ref().err().map(|why| format!("{n} ({why})")))
        .collect();
    timings.ready_s = began.elapsed().as_secs_f64();
    if !not_ready.is_empty() {
        abandon(&mut agents, "hosts not ready", &dir);
        return Err(Error::NotReady(format!(
            "{} of {} hosts not ready: {}",
            not_ready.len(),
            names.len(),
            not_ready.join(", ")
        )));
    }
    if let Some(sig) = stop.signal() {
        abandon(&mut agents, "interrupted", &dir);
        return Err(Error::Interrupted(sig));
    }

    // 3. Start.
    let t0_wall = SystemTime::now() + START_AHEAD;
    let t0 = Instant::now() + START_AHEAD;
    for &h in &all {
        let offset_us = (pre.offsets[h].map_or(0.0, |o| o.ms) * 1000.0) as i64;
        agents.send(
            h,
            &ToAgent::Start {
                at_unix_us: crate::agent::unix_us(t0_wall) + offset_us,
            },
        );
    }

    timings.start_s = (began.elapsed() + START_AHEAD).as_secs_f64();

    // 4. Run.
    let out = results::Writer::create(&dir)?;
    let mut collect = collect::Collect::new(&exp, &names, &placed, out, t0, args.quiet);
    let interrupted = || {
        stop.signal()
            .map(|sig| launch::StopReason::Interrupted(sig).to_string())
    };
    let stopped = collect.run(&mut agents, &interrupted);
    let collected = collect.finish();

    // 5. Results.
    let pulled = carrier.pull_logs(&hosts, &run_dirs, &dir);
    let mut lost = collected.lost;
    let host_runs: Vec<HostRun> = hosts
        .iter()
        .enumerate()
        .map(|(h, host)| HostRun {
            name: host.name.clone(),
            address: host.address.clone(),
            nodes: placed[h].len(),
            backend: pre.backend,
            kernel: pre.kernels[h].clone(),
            clock_offset_ms: pre.offsets[h].map_or(0.0, |o| o.ms),
            host_cpu: collected.ends[h].as_ref().and_then(|e| e.host_cpu.clone()),
            failure: collected.failures[h].clone(),
        })
        .collect();
    for (h, end) in collected.ends.iter().enumerate() {
        if let Some(end) = end.as_ref().filter(|e| !e.lost.is_empty()) {
            lost.push(results::Loss {
                file: format!("the results of host {}", names[h]),
                what: "are incomplete on the host".into(),
                error: std::io::Error::other(end.lost.clone()),
            });
        }
    }
    for (h, p) in pulled.iter().enumerate() {
        if let Err(why) = p {
            lost.push(results::Loss {
                file: format!("logs/ of host {}", names[h]),
                what: "were not pulled".into(),
                error: std::io::Error::other(why.clone()),
            });
        }
    }
    let run = RunInfo {
        name: exp.name.clone(),
        started_unix: t0_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        duration_s: t0.elapsed().as_secs_f64(),
        topology: exp
            .topology_file
            .as_ref()
            .map_or("inline".into(), |p| p.display().to_string()),
        backend: pre.backend,
        kernel: pre.kernels.first().cloned().unwrap_or_default(),
        p2plab_version: env!("CARGO_PKG_VERSION").into(),
        seed: exp.seed,
        stopped: stopped.clone(),
        experiment: runner::experiment_json(&exp),
        command_line: std::env::args().collect(),
        resolved_topology: topology::resolved_json(&exp.plan),
        host_cpu: None,
        hosts: host_runs,
    };
    results::write_run(&dir, &run).map_err(|e| Error::Io {
        what: format!("cannot write {}", e.path.display()),
        error: e.error,
    })?;
    let results = Results {
        dir: dir.clone(),
        run,
        processes: collected.rows,
        metrics: collected.metrics,
    };
    let analysis = report::analyse(&results);
    let report = report::write_page(&results, &analysis).ok();
    let mut summary = report::text(&analysis);
    let lost = results::describe_losses(&lost);
    if !lost.is_empty() {
        let _ = writeln!(summary, "incomplete results: {lost}");
    }
    Ok(Done {
        dir,
        report,
        stop: stopped,
        summary,
        totals: analysis.totals,
        failed_hosts: collected
            .failures
            .iter()
            .zip(&names)
            .filter_map(|(f, n)| f.as_ref().map(|why| format!("{n}: {why}")))
            .collect(),
        interrupted: stop.signal(),
        timings,
    })
}

/// How long agents get to undo their setup and exit when a run is abandoned before its start.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(30);

/// Abandons a run before its start: every agent is told to stop (undoing what it set up,
/// removing what was copied for a run never set up) and waited for, and the controller's
/// result directory, which holds only what `prepare` made, goes.
fn abandon(agents: &mut Agents, reason: &str, dir: &Path) {
    agents.broadcast(&ToAgent::Stop {
        reason: reason.into(),
    });
    agents.wait_closed(ABANDON_TIMEOUT);
    let _ = std::fs::remove_dir_all(dir);
}

/// Host `h`'s job, but the files' checksums.
fn job(
    exp: &Experiment,
    shaping: &str,
    hosts: &[HostEntry],
    placed: &[Vec<usize>],
    h: usize,
    d: &Deployed,
) -> Job {
    let input = format!("{}/input", d.run_dir);
    Job {
        experiment: deploy::mirrored(
            &input,
            &exp.file.canonicalize().unwrap_or_else(|_| exp.file.clone()),
        ),
        results_dir: format!("{}/results", d.run_dir),
        local: placed[h].clone(),
        routes: crate::placement::routes(placed, hosts, h)
            .into_iter()
            .map(|r| Route {
                host: r.what,
                nodes: r.nodes,
                via: r.via,
            })
            .collect(),
        dev: hosts[h].dev.clone(),
        shaping: shaping.to_string(),
        shim: d.shim.clone(),
        files: Vec::new(),
    }
}

/// What preflight found, per host.
struct Preflight {
    offsets: Vec<Option<clock::Offset>>,
    kernels: Vec<String>,
    /// Each host's problems.
    problems: Vec<Vec<String>>,
    backend: results::Backend,
}

impl Preflight {
    /// The table of what is wrong, a row per host with a problem; `None` when nothing is.
    fn refusal(&self, names: &[String]) -> Option<String> {
        if self.problems.iter().all(Vec::is_empty) {
            return None;
        }
        let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
        let mut t = format!("{:<width$}  problem\n", "host");
        for (name, problems) in names.iter().zip(&self.problems) {
            for p in problems {
                let _ = writeln!(t, "{name:<width$}  {p}");
            }
        }
        Some(t)
    }
}

/// Asks every host for its version, clock and checks.
fn preflight(
    agents: &mut Agents,
    all: &[usize],
    jobs: &[Option<Job>],
    names: &[String],
    max_offset: Duration,
) -> Preflight {
    let n = names.len();
    let mut problems: Vec<Vec<String>> = (0..n)
        .map(|h| agents.lost(h).map(str::to_string).into_iter().collect())
        .collect();
    let mut kernels = vec![String::new(); n];
    for (&h, hello) in all.iter().zip(hello(agents, all, names)) {
        match hello {
            Ok((version, kernel)) if version == VERSION => kernels[h] = kernel,
            Ok((version, _)) => problems[h].push(format!(
                "its agent speaks protocol {version}, this p2plab {VERSION}: redeploy"
            )),
            Err(why) if problems[h].is_empty() => problems[h].push(why),
            Err(_) => {}
        }
    }
    let offsets = clock_offsets(agents, all);
    for &h in all {
        if let Some(o) = offsets[h] {
            if o.ms.abs() > max_offset.as_secs_f64() * 1000.0 {
                problems[h].push(format!(
                    "its clock is {:+.1} ms off the controller's (bound {} ms): synchronise it (NTP, chrony)",
                    o.ms,
                    max_offset.as_millis()
                ));
            }
        }
    }
    for &h in all {
        if let Some(job) = &jobs[h] {
            agents.send(h, &ToAgent::Preflight { job: job.clone() });
        }
    }
    let answers = agents.gather(
        all,
        PREFLIGHT_TIMEOUT,
        |_, m| match m {
            FromAgent::Preflight { backend, problems } => Ok((backend, problems)),
            m => Err(m),
        },
        |_, _| {},
    );
    let mut backends: Vec<(usize, String)> = Vec::new();
    for (&h, answer) in all.iter().zip(answers) {
        match answer {
            Ok((backend, found)) => {
                problems[h].extend(found);
                backends.extend(backend.map(|b| (h, b)));
            }
            Err(why) if problems[h].is_empty() => problems[h].push(why),
            Err(_) => {}
        }
    }
    let backend = backends.first().map(|(_, b)| b.clone());
    if backends.iter().any(|(_, b)| Some(b) != backend.as_ref()) {
        for (h, b) in &backends {
            problems[*h].push(format!(
                "would shape with {b}, and other hosts with another backend: pass --shaping netem or --shaping nfqueue"
            ));
        }
    }
    Preflight {
        offsets,
        kernels,
        problems,
        backend: match backend.as_deref() {
            Some("netem") => results::Backend::Netem,
            Some("nfqueue") => results::Backend::Nfqueue,
            _ => results::Backend::None,
        },
    }
}

/// Every host's protocol version and kernel.
fn hello(
    agents: &mut Agents,
    all: &[usize],
    names: &[String],
) -> Vec<Result<(u32, String), String>> {
    for &h in all {
        agents.send(
            h,
            &ToAgent::Hello {
                version: VERSION,
                host: names[h].clone(),
            },
        );
    }
    agents.gather(
        all,
        PREFLIGHT_TIMEOUT,
        |_, m| match m {
            FromAgent::Hello {
                version, kernel, ..
            } => Ok((version, kernel)),
            m => Err(m),
        },
        |_, _| {},
    )
}

/// Every host's clock offset, from [`CLOCK_SAMPLES`] exchanges with each, all hosts at once.
fn clock_offsets(agents: &mut Agents, all: &[usize]) -> Vec<Option<clock::Offset>> {
    let mut samples: Vec<Vec<clock::Sample>> = vec![Vec::new(); agents.len()];
    for seq in 0..CLOCK_SAMPLES {
        let mut sent = vec![0; agents.len()];
        for &h in all {
            sent[h] = crate::agent::unix_us(SystemTime::now());
            agents.send(h, &ToAgent::Clock { seq });
        }
        let answers = agents.gather(
            all,
            Duration::from_secs(10),
            |_, m| match m {
                FromAgent::Clock { seq: s, unix_us } if s == seq => {
                    Ok((unix_us, crate::agent::unix_us(SystemTime::now())))
                }
                m => Err(m),
            },
            |_, _| {},
        );
        for (&h, a) in all.iter().zip(answers) {
            if let Ok((remote, received)) = a {
                samples[h].push(clock::Sample {
                    sent: sent[h],
                    remote,
                    received,
                });
            }
        }
    }
    samples.iter().map(|s| clock::offset(s)).collect()
}

/// A progress bar over hosts (deploy), on a terminal, unless quiet.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(what: &str, total: usize, quiet: bool) -> Bar {
        use std::io::IsTerminal;
        Bar((!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{elapsed_precise}} {what} [{{bar:30}}] {{pos}}/{{len}} hosts"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        }))
    }

    fn inc(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
