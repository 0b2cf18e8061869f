//! Hashed timing wheel (Varghese & Lauck, scheme 6) with an occupancy bitmap.
//!
//! An entry due at tick `t` lives in slot `t mod N` together with its absolute tick, so
//! entries further than one rotation ahead simply stay put until their own turn. The
//! bitmap lets `advance` and `next_tick` skip empty slots a word (64 slots) at a time.

/// A timing wheel of items due at integer ticks.
#[derive(Debug)]
pub struct Wheel<T> {
    slots: Vec<Vec<(u64, T)>>,
    occupied: Vec<u64>,
    mask: u64,
    /// Every entry due at or before this tick has been handed out.
    now: u64,
    len: usize,
}

impl<T> Wheel<T> {
    /// A wheel of `2^slots_log2` slots (at least 64) whose time starts at `start_tick`.
    pub fn new(slots_log2: u32, start_tick: u64) -> Self {
        let n = 1usize << slots_log2.max(6);
        Self {
            slots: (0..n).map(|_| Vec::new()).collect(),
            occupied: vec![0; n / 64],
            mask: n as u64 - 1,
            now: start_tick,
            len: 0,
        }
    }

    /// Holds `item` until `tick`; a tick already passed fires at the next advance.
    pub fn insert(&mut self, tick: u64, item: T) {
        let tick = tick.max(self.now + 1);
        let s = (tick & self.mask) as usize;
        self.slots[s].push((tick, item));
        self.occupied[s / 64] |= 1 << (s % 64);
        self.len += 1;
    }

    /// The first tick `>= from` (within one rotation) whose slot holds something. Entries
    /// of later rotations share the slot, so this is a lower bound on the next due tick.
    pub fn next_tick_from(&self, from: u64) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let n = self.mask + 1;
        let mut off = 0;
        while off < n {
            let s = ((from + off) & self.mask) as usize;
            let bits = self.occupied[s / 64] >> (s % 64);
            if bits != 0 {
                let at = off + u64::from(bits.trailing_zeros());
                return (at < n).then_some(from + at);
            }
            off += 64 - (s % 64) as u64;
        }
        None
    }

    /// Lower bound on the next tick at which something is due.
    pub fn next_tick(&self) -> Option<u64> {
        self.next_tick_from(self.now + 1)
    }

    /// Hands every entry due at or before `to` to `out` and moves time to `to`.
    pub fn advance(&mut self, to: u64, out: &mut Vec<T>) {
        if to <= self.now {
            return;
        }
        let first = self.now + 1;
        let mut t = first;
        while let Some(at) = self.next_tick_from(t) {
            if at > to || at - first > self.mask {
                break;
            }
            let s = (at & self.mask) as usize;
            let slot = &mut self.slots[s];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].0 <= to {
                    out.push(slot.swap_remove(i).1);
                    self.len -= 1;
                } else {
                    i += 1;
                }
            }
            if slot.is_empty() {
                self.occupied[s / 64] &= !(1 << (s % 64));
            }
            t = at + 1;
        }
        self.now = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_beyond_one_rotation_wait_for_their_tick() {
        let mut w = Wheel::new(6, 0);
        w.insert(10, "a");
        w.insert(10 + 64 * 3, "b");
        let mut out = Vec::new();
        w.advance(100, &mut out);
        assert_eq!(out, ["a"]);
        w.advance(10 + 64 * 3 - 1, &mut out);
        assert_eq!(out, ["a"]);
        w.advance(1000, &mut out);
        assert_eq!(out, ["a", "b"]);
        assert_eq!(w.next_tick(), None);
    }

    proptest! {
        #[test]
        fn hands_out_exactly_the_due_entries(
            ticks in proptest::collection::vec(0u64..5000, 0..200),
            steps in proptest::collection::vec(1u64..700, 1..40),
        ) {
            let mut w = Wheel::new(7, 0);
            for (i, &t) in ticks.iter().enumerate() {
                w.insert(t, i);
            }
            let mut now = 0;
            let mut seen = vec![false; ticks.len()];
            for s in steps {
                if let Some(n) = w.next_tick() {
                    prop_assert!(ticks.iter().enumerate().all(|(i, &t)| seen[i] || t.max(1) >= n));
                }
                now += s;
                let mut out = Vec::new();
                w.advance(now, &mut out);
                for i in out {
                    prop_assert!(!seen[i] && ticks[i] <= now);
                    seen[i] = true;
                }
                for (i, &t) in ticks.iter().enumerate() {
                    prop_assert!(seen[i] || t > now);
                }
            }
        }
    }
}
