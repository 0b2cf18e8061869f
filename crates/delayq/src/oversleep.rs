//! How late this machine's timer wake-ups are after long sleeps. The engine sleeps that
//! much less before a due verdict and polls the rest, so that it releases on time where
//! such wake-ups are late (on a virtual machine: about 50 us after a sleep of 0.5 ms, 200 us
//! after 10 ms, as the idle vCPU is descheduled) without polling longer than needed where
//! they are not. Short sleeps (busy traffic, due times close together) are left alone: they
//! oversleep little, and polling through all of them would take a core.

use std::time::Duration;

/// Oversleeps remembered.
const RECENT: usize = 32;
/// Largest margin: a longer stall (host steal, a stopped process) is not the timer's.
const MAX: Duration = Duration::from_millis(1);
/// Sleeps at least this long are tracked and woken from early.
pub const LONG_SLEEP: Duration = Duration::from_millis(1);

/// The recent oversleeps of long sleeps (how much later than asked they ended).
#[derive(Debug, Default)]
pub struct Oversleep {
    recent: [Duration; RECENT],
    next: usize,
    filled: usize,
    margin: Duration,
}

impl Oversleep {
    /// Records that a sleep of `asked` ended `late` after it.
    pub fn record(&mut self, asked: Duration, late: Duration) {
        if asked < LONG_SLEEP {
            return;
        }
        self.recent[self.next] = late.min(MAX);
        self.next = (self.next + 1) % RECENT;
        self.filled = (self.filled + 1).min(RECENT);
        let mut sorted = self.recent;
        let sorted = &mut sorted[..self.filled];
        sorted.sort_unstable();
        self.margin = sorted[sorted.len() * 9 / 10];
    }

    /// How much earlier to wake from a sleep that would last `sleep`: for a long one, the
    /// 90th percentile of the recent oversleeps of long sleeps (zero before the first).
    pub fn margin(&self, sleep: Duration) -> Duration {
        if sleep < LONG_SLEEP + self.margin {
            return Duration::ZERO;
        }
        self.margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    const LONG: Duration = Duration::from_millis(10);

    #[test]
    fn margin_is_the_ninetieth_percentile_of_recent_oversleeps() {
        let mut o = Oversleep::default();
        assert_eq!(o.margin(LONG), Duration::ZERO);
        for n in 1..=30 {
            o.record(LONG, us(10 * n));
        }
        assert_eq!(o.margin(LONG), us(280));
        // old samples leave: 32 small ones replace them all
        for _ in 0..RECENT {
            o.record(LONG, us(40));
        }
        assert_eq!(o.margin(LONG), us(40));
    }

    #[test]
    fn short_sleeps_are_neither_tracked_nor_shortened() {
        let mut o = Oversleep::default();
        o.record(LONG, us(200));
        o.record(us(300), us(900));
        assert_eq!(o.margin(LONG), us(200));
        assert_eq!(o.margin(us(300)), Duration::ZERO);
        // a sleep that would be short once shortened is not shortened either
        assert_eq!(o.margin(LONG_SLEEP + us(100)), Duration::ZERO);
        assert_eq!(o.margin(LONG_SLEEP + us(199)), Duration::ZERO);
        assert_eq!(o.margin(LONG_SLEEP + us(200)), us(200));
    }

    #[test]
    fn a_sleep_of_exactly_one_millisecond_is_long() {
        let mut o = Oversleep::default();
        o.record(LONG_SLEEP - Duration::from_nanos(1), us(500));
        assert_eq!(o.margin(LONG), Duration::ZERO);
        o.record(LONG_SLEEP, us(70));
        assert_eq!(o.margin(LONG), us(70));
    }

    #[test]
    fn the_ninetieth_percentile_of_few_samples() {
        let mut o = Oversleep::default();
        // sorted [10, 20, 30]: index 3 * 9 / 10 = 2
        for n in [30, 10, 20] {
            o.record(LONG, us(n));
        }
        assert_eq!(o.margin(LONG), us(30));
        // ten samples 10..=100: index 9, the largest; an eleventh (5) moves it to 90
        let mut o = Oversleep::default();
        for n in 1..=10 {
            o.record(LONG, us(10 * n));
        }
        assert_eq!(o.margin(LONG), us(100));
        o.record(LONG, us(5));
        assert_eq!(o.margin(LONG), us(90));
    }

    #[test]
    fn a_stall_counts_as_at_most_a_millisecond() {
        let mut o = Oversleep::default();
        for _ in 0..RECENT {
            o.record(LONG, Duration::from_secs(2));
        }
        assert_eq!(o.margin(LONG), MAX);
    }
}
