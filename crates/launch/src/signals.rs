//! The signals that stop a run: SIGINT (Ctrl-C), SIGTERM, SIGHUP (a closed terminal or a
//! dropped SSH session) and SIGQUIT. The first stops the run gracefully: its processes get
//! SIGTERM and a grace period, the network is taken down and the results are written. A
//! second one hurries the stop (no grace period: the processes are killed at once) but
//! never skips the teardown. Peers run in process groups of their own, so a terminal's
//! signals reach only p2plab, which decides what the peers get.

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

/// The signals that stop a run.
pub const STOP_SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// What stop signals arrived since [`Stop::install`].
#[derive(Clone)]
pub struct Stop {
    first: Arc<AtomicI32>,
    count: Arc<AtomicUsize>,
}

impl Stop {
    /// Takes over [`STOP_SIGNALS`] for this process (their default actions end it at once)
    /// and counts them on a thread of its own.
    pub fn install() -> std::io::Result<Stop> {
        let mut signals = signal_hook::iterator::Signals::new(STOP_SIGNALS)?;
        let stop = Stop::none();
        let seen = stop.clone();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                seen.arrived(sig);
            }
        });
        Ok(stop)
    }

    /// No stop signal yet, and none taken over.
    pub(crate) fn none() -> Stop {
        Stop {
            first: Arc::new(AtomicI32::new(0)),
            count: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Counts stop signal `sig`, keeping the first one's number.
    pub(crate) fn arrived(&self, sig: i32) {
        let _ = self
            .first
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// The first stop signal that arrived, if any.
    pub fn signal(&self) -> Option<i32> {
        Some(self.first.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }

    /// Whether a second stop signal arrived: stop without a grace period.
    pub fn hurried(&self) -> bool {
        self.count.load(Ordering::SeqCst) >= 2
    }
}

/// A signal's name as `kill -l` spells it with the SIG prefix (`SIGHUP`), or its number.
pub fn name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_as_kill_spells_them() {
        assert_eq!(name(SIGHUP), "SIGHUP");
        assert_eq!(name(SIGQUIT), "SIGQUIT");
        assert_eq!(name(1000), "1000");
    }

    #[test]
    fn the_first_signal_is_kept_and_a_second_hurries() {
        let stop = Stop::install().unwrap();
        assert_eq!((stop.signal(), stop.hurried()), (None, false));
        signal_hook::low_level::raise(SIGHUP).unwrap();
        let wait = |done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !done() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        wait(&|| stop.signal().is_some());
        assert_eq!((stop.signal(), stop.hurried()), (Some(SIGHUP), false));
        signal_hook::low_level::raise(SIGQUIT).unwrap();
        wait(&|| stop.hurried());
        assert_eq!((stop.signal(), stop.hurried()), (Some(SIGHUP), true));
    }
}
