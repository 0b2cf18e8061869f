//! How busy the host's CPUs are: the counters of `/proc/stat` (every CPU together, every
//! process on the machine) and the busy share between two readings. A run samples them
//! about once a second; a busy host is what makes starts lag and measurements drift.

use results::HostCpu;
use std::time::Duration;

/// The host's CPU time so far, in clock ticks, summed over its CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    /// user, nice, system, irq, softirq and steal.
    pub busy: u64,
    /// `busy` plus idle and iowait.
    pub total: u64,
    /// CPUs the host has (the `cpuN` lines).
    pub cpus: u32,
}

impl Ticks {
    /// Parses the text of `/proc/stat`; `None` without its `cpu` line.
    pub fn parse(stat: &str) -> Option<Ticks> {
        let fields: Vec<u64> = stat
            .lines()
            .find_map(|l| l.strip_prefix("cpu "))?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // user nice system idle iowait irq softirq steal; guest time is counted in user
        // and nice already.
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
        let cpus = stat
            .lines()
            .filter(|l| {
                l.strip_prefix("cpu")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .count();
        Some(Ticks {
            busy: total - idle,
            total,
            cpus: cpus as u32,
        })
    }

    /// This host's counters now.
    pub fn read() -> Option<Ticks> {
        Ticks::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

/// Readings of the host's CPU over a run.
#[derive(Debug, Default)]
pub struct Sampler {
    first: Option<Ticks>,
    last: Option<(Duration, Ticks)>,
    samples: Vec<(f64, f64)>,
}

/// `x` to `1/scale`: milliseconds and four digits are plenty, and keep `run.json` short.
fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// Busy share between two readings, `None` when no tick passed.
fn busy(from: Ticks, to: Ticks) -> Option<f64> {
    let total = to.total.checked_sub(from.total).filter(|&t| t > 0)?;
    let busy = to.busy.saturating_sub(from.busy).min(total);
    Some(busy as f64 / total as f64)
}

impl Sampler {
    /// Whether `interval` has passed since the last reading (or there is none).
    pub fn due(&self, now: Duration, interval: Duration) -> bool {
        self.last
            .is_none_or(|(t, _)| now.saturating_sub(t) >= interval)
    }

    /// Adds the reading `ticks` taken `now` after the run started: a sample of the busy
    /// share since the previous reading (none for the first, nor when no tick passed).
    pub fn add(&mut self, now: Duration, ticks: Ticks) {
        self.first.get_or_insert(ticks);
        match self.last {
            Some((_, last)) => {
                if let Some(b) = busy(last, ticks) {
                    self.samples
                        .push((round(now.as_secs_f64(), 1e3), round(b, 1e4)));
                    self.last = Some((now, ticks));
                }
            }
            None => self.last = Some((now, ticks)),
        }
    }

    /// The record of the run: `None` before two readings a tick apart.
    pub fn finish(&self) -> Option<HostCpu> {
        let (first, (_, last)) = (self.first?, self.last?);
        Some(HostCpu {
            cpus: last.cpus,
            mean_busy: round(busy(first, last)?, 1e4),
            max_busy: self.samples.iter().map(|s| s.1).fold(0.0, f64::max),
            samples: self.samples.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 10 50 800 20 5 5 10 7 0
cpu0 50 5 25 400 10 3 2 5 7 0
cpu1 50 5 25 400 10 2 3 5 0 0
intr 12345 0 0
ctxt 999
";

    fn ticks(busy: u64, total: u64) -> Ticks {
        Ticks {
            busy,
            total,
            cpus: 2,
        }
    }

    #[test]
    fn proc_stat_gives_busy_and_total_ticks_of_every_cpu() {
        // Busy: 100 + 10 + 50 + 5 + 5 + 10; idle: 800 + 20; guest (7) is in user already.
        assert_eq!(Ticks::parse(STAT), Some(ticks(180, 1000)));
        assert_eq!(Ticks::parse("intr 1\n"), None);
        assert_eq!(Ticks::parse("cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn samples_are_the_busy_share_between_readings_and_the_mean_spans_the_run() {
        let s = |ms| Duration::from_millis(ms);
        let mut sampler = Sampler::default();
        assert!(sampler.due(s(0), s(1000)));
        sampler.add(s(0), ticks(100, 1000));
        assert!(!sampler.due(s(999), s(1000)));
        assert!(sampler.due(s(1000), s(1000)));
        assert_eq!(sampler.finish(), None);
        sampler.add(s(1000), ticks(150, 1200)); // 50 of 200
        sampler.add(s(1500), ticks(150, 1200)); // no tick passed: no sample
        sampler.add(s(2000), ticks(330, 1400)); // 180 of 200
        assert_eq!(
            sampler.finish(),
            Some(HostCpu {
                cpus: 2,
                mean_busy: 230.0 / 400.0,
                max_busy: 0.9,
                samples: vec![(1.0, 0.25), (2.0, 0.9)],
            })
        );
    }
}
