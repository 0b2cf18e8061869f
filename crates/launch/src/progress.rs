//! Showing a run's progress: an `indicatif` bar on a terminal (started, running, done,
//! failed, ETA of the start schedule), a plain line every few seconds otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Counts shown to the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub started: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    /// A cluster run's hosts: alive, of all.
    pub hosts: Option<(usize, usize)>,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    last_plain: Option<Instant>,
    quiet: bool,
}

impl Progress {
    /// `total` processes are scheduled; `quiet` shows nothing.
    pub fn new(total: usize, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} started, {msg} (ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            last_plain: None,
            quiet,
        }
    }

    pub fn update(&mut self, elapsed: Duration, c: Counts) {
        let mut msg = format!(
            "{} running, {} done, {} failed",
            c.running, c.done, c.failed
        );
        if let Some((alive, all)) = c.hosts {
            msg += &format!(", {alive} of {all} hosts alive");
        }
        if let Some(bar) = &self.bar {
            bar.set_position(c.started as u64);
            bar.set_message(msg);
        } else if !self.quiet && self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            self.last_plain = Some(Instant::now());
            eprintln!(
                "[{:>7.1}s] {} started, {msg}",
                elapsed.as_secs_f64(),
                c.started
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
