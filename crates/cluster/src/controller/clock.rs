//! A host's clock against the controller's, from `clock` exchanges over the agent's
//! channel: each sample is (sent, the agent's time, received); the sample with the lowest
//! round trip bounds the error best, and its offset assumes the answer was read half way.

/// One exchange, in µs since the Unix epoch: the controller's clock when it asked and when
/// the answer came, and the agent's clock in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub sent: i64,
    pub remote: i64,
    pub received: i64,
}

/// A clock offset and how well it is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offset {
    /// The host's clock minus the controller's, in ms.
    pub ms: f64,
    /// The round trip of the sample it comes from, in ms: the offset is known to half of it.
    pub rtt_ms: f64,
}

/// The offset of the lowest-round-trip sample, `None` without samples.
pub fn offset(samples: &[Sample]) -> Option<Offset> {
    let best = samples.iter().min_by_key(|s| s.received - s.sent)?;
    let midpoint = (best.sent + best.received) as f64 / 2.0;
    Some(Offset {
        ms: (best.remote as f64 - midpoint) / 1000.0,
        rtt_ms: (best.received - best.sent) as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_comes_from_the_fastest_exchange_read_half_way() {
        let samples = [
            // slow: 40 ms round trip, would say +30 ms
            Sample {
                sent: 0,
                remote: 50_000,
                received: 40_000,
            },
            // fast: 2 ms round trip, host 10 s ahead
            Sample {
                sent: 100_000,
                remote: 10_101_000,
                received: 102_000,
            },
        ];
        let o = offset(&samples).unwrap();
        assert_eq!(o.ms, 10_000.0);
        assert_eq!(o.rtt_ms, 2.0);
        assert_eq!(offset(&[]), None);
    }
}
