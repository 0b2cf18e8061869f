//! The signals that stop a run: SIGINT (Ctrl-C), SIGTERM, SIGHUP (a closed terminal or a
//! dropped SSH session) and SIGQUIT. The first stops the run gracefully: its processes get
//! SIGTERM and a grace period, the network is taken down and the results are written. A
//! second one hurries the stop (no grace period: the processes are killed at once) but
//! never skips the teardown. Peers run in process groups of their own, so a terminal's
//! signals reach only p2plab, which decides what the peers get.
//!
//! A caller that decides when a run ends (the cluster agent, told by its controller) asks
//! for the stop with [`Stop::request`]: it counts like a stop signal (the first stops
//! gracefully, a second one, signal or request, hurries).

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The signals that stop a run.
pub const STOP_SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// `Stop::first` once a request came first.
const REQUESTED: i32 = -1;

/// What stop signals (and stop requests) arrived since [`Stop::install`].
#[derive(Clone)]
pub struct Stop {
    /// The first signal's number, [`REQUESTED`] when a request came first, 0 before either.
    first: Arc<AtomicI32>,
    count: Arc<AtomicUsize>,
    /// The reason of the first request.
    reason: Arc<OnceLock<String>>,
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
            reason: Arc::new(OnceLock::new()),
        }
    }

    /// Counts stop signal `sig`, keeping the first one's number.
    pub(crate) fn arrived(&self, sig: i32) {
        let _ = self
            .first
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Asks for the run to stop, for `reason`, from any thread: the first request (before
    /// any stop signal) stops the run as a first stop signal would, a second request or a
    /// signal hurries it.
    pub fn request(&self, reason: String) {
        let _ = self.reason.set(reason);
        let _ = self
            .first
            .compare_exchange(0, REQUESTED, Ordering::SeqCst, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// The first stop signal that arrived, if it came before any request.
    pub fn signal(&self) -> Option<i32> {
        Some(self.first.load(Ordering::SeqCst)).filter(|&s| s > 0)
    }

    /// The reason of the stop request, if one came before any stop signal.
    pub fn requested(&self) -> Option<&str> {
        if self.first.load(Ordering::SeqCst) != REQUESTED {
            return None;
        }
        self.reason.get().map(String::as_str)
    }

    /// Whether a stop signal or request arrived.
    pub fn stopping(&self) -> bool {
        self.first.load(Ordering::SeqCst) != 0
    }

    /// Whether a second stop signal or request arrived: stop without a grace period.
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
        assert_eq!(stop.requested(), None, "no request came");
    }

    #[test]
    fn a_request_stops_like_a_first_signal_and_a_second_one_hurries() {
        let stop = Stop::none();
        assert!(!stop.stopping());
        let asker = stop.clone();
        std::thread::spawn(move || asker.request("the controller said so".into()))
            .join()
            .unwrap();
        assert!(stop.stopping());
        assert_eq!(
            (stop.signal(), stop.requested(), stop.hurried()),
            (None, Some("the controller said so"), false)
        );
        stop.arrived(SIGTERM);
        assert_eq!(
            (stop.signal(), stop.requested(), stop.hurried()),
            (None, Some("the controller said so"), true)
        );
        // a signal first: a request only hurries
        let stop = Stop::none();
        stop.arrived(SIGINT);
        stop.request("late".into());
        assert_eq!(
            (stop.signal(), stop.requested(), stop.hurried()),
            (Some(SIGINT), None, true)
        );
    }
}
