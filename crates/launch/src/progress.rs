//! Showing a run's progress on stderr: its phases (prepare, network up, starting, running
//! until the stop rule, teardown), each announced when it begins; while processes start
//! and run, an `indicatif` bar on a terminal (real starts of all scheduled, running, done,
//! failed, the stop rule's countdown), plain lines otherwise, at every change of phase and
//! at least every [`PLAIN_EVERY`] (every second with `-v`, which also replaces the bar).

use experiment::Experiment;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a plain progress line is printed at least, when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// How often with `-v`.
const VERBOSE_EVERY: Duration = Duration::from_secs(1);

/// Whether this process shows progress as plain lines every second (`p2plab -v`).
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Progress as plain lines every second, also on a terminal (`p2plab -v`), for this process.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Announces that a run enters phase `what` (`network up: ...`), unless `quiet`.
pub fn phase(quiet: bool, what: &str) {
    if !quiet {
        eprintln!("p2plab: {what}");
    }
}

/// Counts shown to the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Processes started for real (or that failed to), not the ones the schedule has due.
    pub started: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    /// A cluster run's hosts: alive, of all.
    pub hosts: Option<(usize, usize)>,
}

/// The stop rule of `exp` in words: `every leecher exited, or 3m` (the timer alone when the
/// rule has nothing else).
fn stop_rule(exp: &Experiment) -> String {
    let s = &exp.stop;
    let mut parts = Vec::new();
    if !s.exited.is_empty() {
        let roles: Vec<&str> = s
            .exited
            .iter()
            .map(|&r| exp.roles[r].name.as_str())
            .collect();
        parts.push(format!("every {} exited", roles.join(", ")));
    }
    if let Some(m) = &s.metric {
        parts.push(format!(
            "every {} reported {} >= {}",
            exp.roles[m.role].name, m.name, m.at_least
        ));
    }
    parts.push(humantime::format_duration(Duration::from_micros(s.after_us)).to_string());
    parts.join(", or ")
}

/// The phase the processes are in, from the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    /// The stop rule in words, and the time it stops the run at the latest.
    until: String,
    deadline: Duration,
    phase: Option<Phase>,
    /// The last counts shown, and when.
    last: Option<(Duration, Counts)>,
    last_plain: Option<Instant>,
    every: Duration,
    quiet: bool,
}

impl Progress {
    /// `total` processes of `exp` are scheduled here; `quiet` shows nothing.
    pub fn new(total: usize, exp: &Experiment, quiet: bool) -> Progress {
        let verbose = VERBOSE.load(Ordering::Relaxed);
        let bar = (!quiet && !verbose && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} {prefix} [{bar:30}] {pos}/{len} started, {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            total,
            until: stop_rule(exp),
            deadline: Duration::from_micros(exp.stop.after_us),
            phase: None,
            last: None,
            last_plain: None,
            every: if verbose { VERBOSE_EVERY } else { PLAIN_EVERY },
            quiet,
        }
    }

    /// Shows `c` at `elapsed` since the run's start (the real time, after any starts).
    pub fn update(&mut self, elapsed: Duration, c: Counts) {
        if self.quiet {
            return;
        }
        let phase = if c.started < self.total {
            Phase::Starting
        } else {
            Phase::Running
        };
        let changed = self.phase != Some(phase);
        self.phase = Some(phase);
        self.last = Some((elapsed, c));
        let what = match phase {
            Phase::Starting => "starting".to_string(),
            Phase::Running => format!(
                "running until {} ({} left)",
                self.until,
                humantime::format_duration(Duration::from_secs(
                    self.deadline.saturating_sub(elapsed).as_secs()
                ))
            ),
        };
        if let Some(bar) = &self.bar {
            bar.set_position(c.started as u64);
            bar.set_prefix(what);
            bar.set_message(counts(&c));
        } else if changed || self.last_plain.is_none_or(|t| t.elapsed() >= self.every) {
            self.last_plain = Some(Instant::now());
            self.plain(&what, elapsed, &c);
        }
    }

    /// Prints a plain progress line.
    fn plain(&self, what: &str, elapsed: Duration, c: &Counts) {
        eprintln!(
            "[{:>7.1}s] {what}: {}/{} started, {}",
            elapsed.as_secs_f64(),
            c.started,
            self.total,
            counts(c)
        );
    }

    /// Ends the display: clears the bar, or prints the last counts as a plain line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        } else if let Some((elapsed, c)) = self.last.filter(|_| !self.quiet) {
            self.plain("ended", elapsed, &c);
        }
    }
}

/// The counts after the started ones, in words.
fn counts(c: &Counts) -> String {
    let mut msg = format!(
        "{} running, {} done, {} failed",
        c.running, c.done, c.failed
    );
    if let Some((alive, all)) = c.hosts {
        msg += &format!(", {alive} of {all} hosts alive");
    }
    msg
}
