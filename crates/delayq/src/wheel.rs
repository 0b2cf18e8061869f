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

    #[test]
    fn a_passed_tick_fires_at_the_next_advance() {
        let mut w = Wheel::new(6, 100);
        w.insert(40, "late");
        w.insert(100, "now");
        assert_eq!(w.next_tick(), Some(101));
        let mut out = Vec::new();
        w.advance(100, &mut out);
        assert_eq!(out, [""; 0]);
        w.advance(101, &mut out);
        out.sort_unstable();
        assert_eq!(out, ["late", "now"]);
        assert_eq!(w.next_tick(), None);
    }

    #[test]
    fn an_advance_of_a_whole_rotation_reaches_its_last_slot() {
        // from tick 0 the rotation is ticks 1..=64; 64 is in slot 0, visited last
        let mut w = Wheel::new(6, 0);
        w.insert(64, "last");
        w.insert(65, "next");
        let mut out = Vec::new();
        w.advance(64, &mut out);
        assert_eq!(out, ["last"]);
    }

    #[test]
    fn next_tick_is_the_first_occupied_slot_after_now() {
        // 128 slots: two bitmap words
        let mut w = Wheel::new(7, 0);
        assert_eq!(w.next_tick_from(0), None);
        w.insert(200, 'a');
        // 200 is in slot 72, which comes round at tick 72 first: a lower bound
        assert_eq!(w.next_tick(), Some(72));
        w.insert(70, 'b');
        assert_eq!(w.next_tick(), Some(70));
        assert_eq!(w.next_tick_from(71), Some(72));
        // 260 is in slot 4: from 129 (slot 1) that slot comes first, at 132
        w.insert(260, 'c');
        assert_eq!(w.next_tick_from(129), Some(132));
        let mut out = Vec::new();
        w.advance(199, &mut out);
        assert_eq!(out, ['b']);
        assert_eq!(w.next_tick(), Some(200));
        w.advance(259, &mut out);
        assert_eq!(out, ['b', 'a']);
        assert_eq!(w.next_tick(), Some(260));
    }

    /// A list model of the wheel: (tick, item) entries, a tick already passed moved to the
    /// next one; `advance(to)` hands out those due by `to`.
    struct Oracle {
        now: u64,
        slots: u64,
        entries: Vec<(u64, usize)>,
    }

    impl Oracle {
        fn insert(&mut self, tick: u64, item: usize) {
            self.entries.push((tick.max(self.now + 1), item));
        }

        /// Sorted items due by `to`, removed.
        fn advance(&mut self, to: u64) -> Vec<usize> {
            if to <= self.now {
                return Vec::new();
            }
            self.now = to;
            let (mut due, rest): (Vec<_>, Vec<_>) =
                self.entries.iter().partition(|(t, _)| *t <= to);
            self.entries = rest;
            due.sort_unstable_by_key(|&(_, i)| i);
            due.into_iter().map(|(_, i)| i).collect()
        }

        /// The first tick after now whose slot holds an entry (of this rotation or not).
        fn next_tick(&self) -> Option<u64> {
            let from = self.now + 1;
            self.entries
                .iter()
                .map(|(t, _)| from + (t - from) % self.slots)
                .min()
        }
    }

    proptest! {
        /// Inserts (some at ticks already passed, many rotations ahead) interleaved with
        /// advances of random size hand out exactly what the list model hands out, and
        /// `next_tick` names the same slot.
        #[test]
        fn matches_a_list_model(
            start in 0u64..1000,
            ops in proptest::collection::vec((any::<bool>(), 0u64..3000), 1..300),
        ) {
            let mut w = Wheel::new(6, start);
            let mut model = Oracle { now: start, slots: 64, entries: Vec::new() };
            for (item, (insert, x)) in ops.into_iter().enumerate() {
                if insert {
                    let tick = (model.now + x).saturating_sub(100);
                    w.insert(tick, item);
                    model.insert(tick, item);
                } else {
                    let mut out = Vec::new();
                    let to = (model.now + x % 200).saturating_sub(10);
                    w.advance(to, &mut out);
                    out.sort_unstable();
                    prop_assert_eq!(out, model.advance(to), "advance to {}", to);
                }
                prop_assert_eq!(w.next_tick(), model.next_tick());
            }
            let mut out = Vec::new();
            w.advance(u64::MAX >> 1, &mut out);
            out.sort_unstable();
            prop_assert_eq!(out, model.advance(u64::MAX >> 1));
        }
    }
}
