//! Reading what busybox `ping` printed in the guest: its round-trip summary line.

/// Round-trip times of one `ping` run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rtt {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
}

impl Rtt {
    /// The summary in busybox ping's output (`round-trip min/avg/max = 60.4/61.2/63.9 ms`);
    /// `None` when there is none (no reply came back).
    pub fn from_ping(output: &str) -> Option<Rtt> {
        let line = output.lines().find(|l| l.starts_with("round-trip"))?;
        let figures = line.split('=').nth(1)?.split_whitespace().next()?;
        let mut values = figures.split('/').map(|v| v.parse().ok());
        Some(Rtt {
            min_ms: values.next()??,
            avg_ms: values.next()??,
            max_ms: values.next()??,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_is_read() {
        let out = "64 bytes from 10.0.0.2: seq=0 ttl=64 time=60.4 ms\n\n\
                   --- 10.0.0.2 ping statistics ---\n\
                   1 packets transmitted, 1 packets received, 0% packet loss\n\
                   round-trip min/avg/max = 60.400/61.250/63.900 ms\n";
        let rtt = Rtt::from_ping(out).unwrap();
        assert_eq!((rtt.min_ms, rtt.avg_ms, rtt.max_ms), (60.4, 61.25, 63.9));
    }

    #[test]
    fn no_reply_no_summary() {
        assert_eq!(
            Rtt::from_ping("1 packets transmitted, 0 packets received, 100% packet loss\n"),
            None
        );
    }
}
