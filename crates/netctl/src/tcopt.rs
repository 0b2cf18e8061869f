//! Kernel attribute layouts that netlink-packet-route has no typed form for: HTB
//! (`tc_htb_glob`, `tc_htb_opt`), netem (`tc_netem_qopt` + `TCA_NETEM_LATENCY64`) and pfifo
//! (`tc_fifo_qopt`), all from `include/uapi/linux/pkt_sched.h`, in native byte order.
//!
//! Time values the kernel takes in "psched ticks" are nanoseconds >> 6 (`PSCHED_SHIFT`).

const PSCHED_SHIFT: u32 = 6;
/// `TCA_HTB_PARMS`.
pub const TCA_HTB_PARMS: u16 = 1;
/// `TCA_HTB_INIT`.
pub const TCA_HTB_INIT: u16 = 2;
/// `TCA_HTB_DIRECT_QLEN`.
pub const TCA_HTB_DIRECT_QLEN: u16 = 5;
/// `TCA_HTB_RATE64`.
pub const TCA_HTB_RATE64: u16 = 6;
/// `TCA_HTB_CEIL64`.
pub const TCA_HTB_CEIL64: u16 = 7;
const TCA_NETEM_LATENCY64: u16 = 10;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// Default MTU tc adds to the burst of an HTB class.
const HTB_MTU: u64 = 1600;

/// `struct tc_htb_glob` for an HTB qdisc whose unclassified packets go out directly.
pub fn htb_glob() -> Vec<u8> {
    // version 3, rate2quantum 10, defcls 0 (direct), debug 0, direct_pkts 0
    [3u32, 10, 0, 0, 0]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
}

/// The parameters of an HTB class with `rate == ceil`, computed as `tc` computes its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HtbClassParams {
    /// Rate in bytes per second.
    pub rate_bytes: u64,
    /// Burst (and cburst) in bytes: one tick of 1 ms at the rate plus an MTU, like `tc`.
    pub burst_bytes: u64,
    /// DRR quantum in bytes: rate/10 clamped to 1600..=200000 (what the kernel would pick,
    /// without its warning for each class).
    pub quantum: u32,
}

impl HtbClassParams {
    /// Parameters for a class of `rate_bps` bits per second.
    pub fn new(rate_bps: u64) -> Self {
        let rate_bytes = (rate_bps / 8).max(1);
        HtbClassParams {
            rate_bytes,
            burst_bytes: rate_bytes / 1000 + HTB_MTU,
            quantum: (rate_bytes / 10).clamp(1600, 200_000) as u32,
        }
    }

    /// Time to send the burst at the rate, in psched ticks (`buffer` of `tc_htb_opt`).
    fn buffer_ticks(&self) -> u32 {
        let ns = self.burst_bytes as u128 * 1_000_000_000 / self.rate_bytes as u128;
        (ns >> PSCHED_SHIFT).min(u32::MAX as u128) as u32
    }

    /// `struct tc_ratespec` (12 bytes).
    fn ratespec(&self) -> Vec<u8> {
        let mut b = vec![0u8, TC_LINKLAYER_ETHERNET];
        b.extend_from_slice(&0u16.to_ne_bytes()); // overhead
        b.extend_from_slice(&(-1i16).to_ne_bytes()); // cell_align, as tc sends it
        b.extend_from_slice(&0u16.to_ne_bytes()); // mpu
        b.extend_from_slice(&(self.rate_bytes.min(u32::MAX as u64) as u32).to_ne_bytes());
        b
    }

    /// `struct tc_htb_opt` (44 bytes) for `TCA_HTB_PARMS`.
    pub fn opt(&self) -> Vec<u8> {
        let mut b = self.ratespec();
        b.extend(self.ratespec()); // ceil == rate
        let buffer = self.buffer_ticks();
        for v in [buffer, buffer, self.quantum, 0, 0] {
            b.extend_from_slice(&v.to_ne_bytes()); // buffer, cbuffer, quantum, level, prio
        }
        b
    }

    /// `Some(rate)` when the rate needs `TCA_HTB_RATE64` / `TCA_HTB_CEIL64`.
    pub fn rate64(&self) -> Option<u64> {
        (self.rate_bytes > u32::MAX as u64).then_some(self.rate_bytes)
    }
}

/// `struct tc_fifo_qopt`.
pub fn fifo_opt(limit: u32) -> Vec<u8> {
    limit.to_ne_bytes().to_vec()
}

/// `struct tc_netem_qopt` followed by a `TCA_NETEM_LATENCY64` attribute (nanoseconds).
pub fn netem_opt(delay_us: u64, loss: f64, limit: u32) -> Vec<u8> {
    let ns = delay_us.saturating_mul(1000);
    let ticks = (ns >> PSCHED_SHIFT).min(u32::MAX as u64) as u32;
    let loss = (loss.clamp(0.0, 1.0) * u32::MAX as f64).round() as u32;
    // latency, limit, loss, gap, duplicate, jitter
    let mut b: Vec<u8> = [ticks, limit, loss, 0, 0, 0]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    b.extend_from_slice(&12u16.to_ne_bytes()); // nla_len: 4 header + 8 value
    b.extend_from_slice(&TCA_NETEM_LATENCY64.to_ne_bytes());
    b.extend_from_slice(&(ns as i64).to_ne_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htb_opt_layout() {
        let p = HtbClassParams::new(2_000_000);
        assert_eq!(p.rate_bytes, 250_000);
        assert_eq!(p.burst_bytes, 1850);
        let o = p.opt();
        assert_eq!(o.len(), 44);
        assert_eq!(u32::from_ne_bytes(o[8..12].try_into().unwrap()), 250_000);
        // 1850 bytes at 250 kB/s = 7.4 ms = 115625 ticks of 64 ns
        assert_eq!(u32::from_ne_bytes(o[24..28].try_into().unwrap()), 115_625);
    }

    #[test]
    fn netem_layout() {
        let o = netem_opt(30_000, 0.5, 100);
        assert_eq!(o.len(), 24 + 12);
        assert_eq!(
            u32::from_ne_bytes(o[0..4].try_into().unwrap()),
            30_000_000 >> 6
        );
        assert_eq!(
            u32::from_ne_bytes(o[8..12].try_into().unwrap()),
            u32::MAX / 2 + 1
        );
    }
}
