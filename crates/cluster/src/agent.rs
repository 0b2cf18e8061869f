//! The agent (`p2plab agent`, started by the controller on every host over SSH): it speaks
//! the [`protocol`](crate::protocol) on its stdin and stdout and runs this host's share of a
//! run with `runner`, the one-host path: preflight (checks, nothing changed), setup
//! (network with this host's nodes and routes to the others, cgroups, result directory),
//! then, at the controller's time 0, the schedule of its own nodes, reporting each start,
//! end and metric sample as it happens. The stop rule is the controller's: the run here
//! ends when the controller says so, at the experiment's duration cap, at a stop signal,
//! or when the controller is gone (its channel closed, or [`SILENCE`] without a word), and
//! whatever ends it, the processes are stopped, the network is taken down and the results
//! stay in the job's result directory.
//!
//! Three threads: the main one runs the steps; a reader turns stdin's lines into messages
//! (and a closed stdin into the controller's loss); a ticker sends the heartbeat and
//! watches the silence. Messages go out through one locked writer, so lines never mix.

use crate::protocol::{self, FromAgent, Job, ToAgent, HEARTBEAT, SILENCE, VERSION};
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The agent's way out to the controller: one line per message, flushed, never mixed.
#[derive(Clone)]
struct Out(Arc<Mutex<Box<dyn Write + Send>>>);

impl Out {
    /// Sends `message`; a controller that is gone is noticed by the reader and the ticker,
    /// so a failed write is not an error here.
    fn send(&self, message: &FromAgent) {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(w, "{}", protocol::line(message)).and_then(|()| w.flush());
    }
}

/// What the main thread hears: a message, or that the controller is gone (the run, if one
/// is under way, was asked to stop with why).
enum Heard {
    Message(ToAgent),
    Lost,
}

/// Reports each start, end and sample of the run to the controller as it happens.
struct Reporter(Out);

impl launch::Observer for Reporter {
    fn started(&self, node: usize, pid: u32, at_s: f64) {
        self.0.send(&FromAgent::Started { node, pid, at_s });
    }
    fn ended(&self, row: &results::Process) {
        self.0.send(&FromAgent::Ended {
            row: Box::new(row.clone()),
        });
    }
    fn sample(&self, sample: &results::MetricSample) {
        self.0.send(&FromAgent::Sample {
            sample: sample.clone(),
        });
    }
}

/// Runs the agent over `input` and `output` until the run is over or the controller is
/// gone; the process's exit status (0: the run ended and was torn down).
pub fn serve(input: impl BufRead + Send + 'static, output: impl Write + Send + 'static) -> i32 {
    let out = Out(Arc::new(Mutex::new(Box::new(output))));
    // A dropped SSH connection may bring SIGHUP before anything is set up: its default
    // action would end the agent before it removed what was copied for the run, so it is
    // only noted (the closed channel says the same); `runner` takes the stop signals over
    // when it sets up.
    if let Err(e) = signal_hook::flag::register(
        signal_hook::consts::SIGHUP,
        Arc::new(AtomicBool::new(false)),
    ) {
        out.send(&FromAgent::Failed {
            error: format!("cannot take over SIGHUP: {e}"),
        });
        return 1;
    }
    let stop = RunStop::default();
    let (tx, rx) = channel();
    let heard = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let over = Arc::new(AtomicBool::new(false));
    spawn_reader(input, tx.clone(), stop.clone(), Arc::clone(&heard), t0);
    spawn_ticker(out.clone(), tx, stop.clone(), heard, t0, Arc::clone(&over));
    let status = Agent {
        out: out.clone(),
        stop,
        checked: None,
        prepared: None,
    }
    .steps(&rx);
    over.store(true, Ordering::SeqCst);
    status
}

/// The stop of the run set up here, once it is (runner takes the stop signals over when it
/// sets up): how a stop or the controller's loss reaches a run under way, while the main
/// thread is busy running it.
#[derive(Clone, Default)]
struct RunStop(Arc<Mutex<Option<runner::Stop>>>);

impl RunStop {
    fn set(&self, stop: runner::Stop) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop);
    }

    /// Asks the run, if there is one, to stop for `reason`.
    fn request(&self, reason: String) {
        if let Some(stop) = &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            stop.request(reason);
        }
    }
}

/// Reads the controller's lines; a stop or the controller's loss also reaches a run under
/// way through `stop`.
fn spawn_reader(
    input: impl BufRead + Send + 'static,
    tx: Sender<Heard>,
    stop: RunStop,
    heard: Arc<AtomicU64>,
    t0: Instant,
) {
    std::thread::spawn(move || {
        let why = 'read: {
            for line in input.lines() {
                let Ok(line) = line else {
                    break 'read "cannot read from the controller".to_string();
                };
                heard.store(t0.elapsed().as_millis() as u64, Ordering::SeqCst);
                match protocol::parse::<ToAgent>(&line) {
                    Ok(ToAgent::Heartbeat) => {}
                    Ok(ToAgent::Stop { reason }) => {
                        stop.request(reason.clone());
                        let _ = tx.send(Heard::Message(ToAgent::Stop { reason }));
                    }
                    Ok(m) => {
                        let _ = tx.send(Heard::Message(m));
                    }
                    Err(e) => break 'read format!("the controller said something else: {e}"),
                }
            }
            "the controller closed the channel".to_string()
        };
        stop.request(why);
        let _ = tx.send(Heard::Lost);
    });
}

/// Says the agent is alive every [`HEARTBEAT`], and counts the controller lost after
/// [`SILENCE`] without a line from it.
fn spawn_ticker(
    out: Out,
    tx: Sender<Heard>,
    stop: RunStop,
    heard: Arc<AtomicU64>,
    t0: Instant,
    over: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        while !over.load(Ordering::SeqCst) {
            std::thread::sleep(HEARTBEAT);
            out.send(&FromAgent::Heartbeat);
            let quiet = t0
                .elapsed()
                .saturating_sub(Duration::from_millis(heard.load(Ordering::SeqCst)));
            if quiet >= SILENCE {
                let why = format!("no word from the controller for {} s", quiet.as_secs());
                stop.request(why);
                let _ = tx.send(Heard::Lost);
                return;
            }
        }
    });
}

/// The main thread's state: what it has checked and set up.
struct Agent {
    out: Out,
    stop: RunStop,
    /// The job preflight checked, until it is set up.
    checked: Option<Job>,
    /// Set up and waiting for `start` (dropping it tears it down).
    prepared: Option<runner::Prepared>,
}

impl Agent {
    /// Answers the controller until the run is over; the exit status.
    fn steps(&mut self, rx: &Receiver<Heard>) -> i32 {
        loop {
            let message = match rx.recv() {
                Ok(Heard::Message(m)) => m,
                // Gone before the start: what was set up goes (the guard), nothing ran.
                Ok(Heard::Lost) | Err(_) => {
                    if let Some(job) = self.checked.take() {
                        forget(&job);
                    }
                    return 1;
                }
            };
            match message {
                ToAgent::Hello { version, host } => {
                    self.out.send(&FromAgent::Hello {
                        version: VERSION,
                        host,
                        kernel: kernel(),
                        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
                        pid: std::process::id(),
                    });
                    if version != VERSION {
                        return 1;
                    }
                }
                ToAgent::Clock { seq } => self.out.send(&FromAgent::Clock {
                    seq,
                    unix_us: unix_us(SystemTime::now()),
                }),
                ToAgent::Preflight { job } => {
                    let (backend, problems) = preflight(&job);
                    self.out.send(&FromAgent::Preflight { backend, problems });
                    self.checked = Some(job);
                }
                ToAgent::Setup { job } => match setup(&job) {
                    Ok(p) => {
                        self.checked = None;
                        self.stop.set(p.stop().clone());
                        self.out.send(&FromAgent::Ready {
                            processes: p.processes(),
                            backend: p.backend().to_string(),
                        });
                        self.prepared = Some(p);
                    }
                    Err(e) => {
                        self.out.send(&FromAgent::Failed {
                            error: e.to_string(),
                        });
                        return 1;
                    }
                },
                ToAgent::Start { at_unix_us } => return self.run(at_unix_us),
                // Before the start: nothing runs yet; what was set up is undone on the way
                // out, and a run refused in preflight leaves no trace.
                ToAgent::Stop { .. } => {
                    if let Some(job) = self.checked.take() {
                        forget(&job);
                    }
                    return 0;
                }
                ToAgent::Heartbeat => {}
            }
        }
    }

    /// Runs the share set up at `setup` from time 0 at `at_unix_us`, and says how it ended.
    fn run(&mut self, at_unix_us: i64) -> i32 {
        let Some(prepared) = self.prepared.take() else {
            self.out.send(&FromAgent::Failed {
                error: "`start` before `setup`".into(),
            });
            return 1;
        };
        let at = UNIX_EPOCH + Duration::from_micros(at_unix_us.max(0) as u64);
        let reporter = Reporter(self.out.clone());
        match prepared.run(runner::Start::At(at), Some(&reporter)) {
            Ok(done) => {
                self.out.send(&FromAgent::Done {
                    stop: done.stop.to_string(),
                    duration_s: done.duration_s,
                    host_cpu: done.host_cpu,
                    lost: done.lost,
                });
                0
            }
            Err(e) => {
                self.out.send(&FromAgent::Failed {
                    error: e.to_string(),
                });
                1
            }
        }
    }
}

/// Removes the run's directory of a job that was never set up (what the controller
/// copied for it), and the run's parent directory if no other host's is left in it.
fn forget(job: &Job) {
    let Some(run_dir) = std::path::Path::new(&job.results_dir).parent() else {
        return;
    };
    let _ = std::fs::remove_dir_all(run_dir);
    if let Some(parent) = run_dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

/// The run arguments of `job` on this host.
fn run_args(job: &Job) -> Result<runner::RunArgs, String> {
    let shaping = match job.shaping.as_str() {
        "auto" => shaping::Shaping::Auto,
        "netem" => shaping::Shaping::Force(shaping::Backend::Netem),
        "nfqueue" => shaping::Shaping::Force(shaping::Backend::Nfqueue),
        other => return Err(format!("unknown shaping backend `{other}`")),
    };
    Ok(runner::RunArgs {
        experiment: PathBuf::from(&job.experiment),
        shaping,
        dev: job.dev.clone(),
        results: PathBuf::from(&job.results_dir),
        results_dir: Some(PathBuf::from(&job.results_dir)),
        run_prepare: false,
        stop_rule_elsewhere: true,
        shim: Some(PathBuf::from(&job.shim)),
        quiet: true,
        share: Some(runner::Share {
            local: job.local.clone(),
            routes: job
                .routes
                .iter()
                .map(|r| shaping::RemoteNodes {
                    what: r.host.clone(),
                    nodes: r.nodes.clone(),
                    via: r.via,
                })
                .collect(),
        }),
    })
}

/// How long after the experiment's duration cap a host's run ends by itself: the
/// controller stops every host at the cap, so this only ends a run whose stop never came.
const CAP_MARGIN: Duration = Duration::from_secs(30);

/// Sets `job` up: the experiment read here, then `runner`'s checks and set-up.
fn setup(job: &Job) -> Result<runner::Prepared, String> {
    let args = run_args(job)?;
    let mut exp = runner::load(&args.experiment).map_err(|d| d.to_string())?;
    exp.stop.after_us = exp
        .stop
        .after_us
        .saturating_add(CAP_MARGIN.as_micros() as u64);
    runner::prepare(&args, exp).map_err(|e| e.to_string())
}

/// What would stop `job` on this host, and the backend it would use; changes nothing.
fn preflight(job: &Job) -> (Option<String>, Vec<String>) {
    let mut problems = Vec::new();
    let args = match run_args(job) {
        Ok(a) => a,
        Err(e) => return (None, vec![e]),
    };
    if !shaping::is_net_admin() {
        problems.push(
            "not root (no CAP_NET_ADMIN): log in as root or give the user passwordless sudo".into(),
        );
    }
    if nix::net::if_::if_nametoindex(job.dev.as_str()).is_err() {
        problems.push(format!(
            "no interface `{}`: set the host's `dev` in the inventory",
            job.dev
        ));
    }
    let caps = shaping::probe();
    let backend = match args.shaping {
        shaping::Shaping::Auto => caps.pick(),
        shaping::Shaping::Force(b) => caps.supports(b).map(|()| b),
    };
    let backend = match backend {
        Ok(b) => Some(b.to_string()),
        Err(e) => {
            problems.push(format!("no shaping backend: {e}"));
            None
        }
    };
    if let Some(run_dir) = std::path::Path::new(&job.results_dir).parent() {
        problems.extend(crate::checksum::verify(run_dir, &job.files));
    }
    match runner::load(&args.experiment) {
        Ok(exp) => {
            problems.extend(runner::refusal(&exp, &args));
            problems.extend(addresses_taken(&exp, &job.local));
        }
        Err(d) => problems.extend(d.to_string().lines().map(str::to_string)),
    }
    (backend, problems)
}

/// The addresses of `local` nodes that an interface of this host already has.
fn addresses_taken(exp: &experiment::Experiment, local: &[usize]) -> Vec<String> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return vec![];
    };
    let mine: std::collections::HashSet<Ipv4Addr> = addrs
        .filter_map(|a| Some(a.address?.as_sockaddr_in()?.ip()))
        .collect();
    let taken: Vec<String> = local
        .iter()
        .map(|&n| &exp.plan.link.nodes[n])
        .filter(|n| mine.contains(&n.ip))
        .map(|n| format!("{} ({})", n.ip, n.name))
        .collect();
    if taken.is_empty() {
        return vec![];
    }
    let shown = taken.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    vec![format!(
        "{} node address(es) already on an interface here ({shown}{}): another run or network uses them; `p2plab down` it or choose other prefixes",
        taken.len(),
        if taken.len() > 3 { ", ..." } else { "" }
    )]
}

fn kernel() -> String {
    nix::sys::utsname::uname().map_or_else(
        |_| "unknown".into(),
        |u| u.release().to_string_lossy().into_owned(),
    )
}

/// `t` in µs since the Unix epoch.
pub(crate) fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
