//! Per-pair FIFO release schedule on top of the timing wheel.
//!
//! Each (src, dst) pair with packets in flight has a FIFO of held packets whose due times
//! never decrease: a packet is due at `max(arrival + delay, due time of the packet before
//! it)`, so a packet never overtakes an earlier one of its pair even when the pair's delay
//! drops at run time. The wheel holds one entry per non-empty pair, at the tick of the
//! pair's head packet; a pair whose FIFO empties is forgotten.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::wheel::Wheel;

/// A packet held until `due_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// Kernel packet id.
    pub id: u32,
    /// When its verdict is due (engine clock, ns).
    pub due_ns: u64,
}

/// Whether an admitted packet may go at once or was held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Due now and nothing of its pair is held before it.
    Now,
    /// Held on the wheel.
    Held,
}

/// Held packets of all pairs, released in per-pair order.
#[derive(Debug)]
pub struct Scheduler {
    wheel: Wheel<u64>,
    pairs: FxHashMap<u64, VecDeque<Held>>,
    tick_shift: u32,
    held: usize,
    due_pairs: Vec<u64>,
}

impl Scheduler {
    /// A schedule with ticks of `2^tick_shift` ns on a wheel of `2^slots_log2` slots.
    pub fn new(tick_shift: u32, slots_log2: u32, now_ns: u64) -> Self {
        Self {
            wheel: Wheel::new(slots_log2, now_ns >> tick_shift),
            pairs: FxHashMap::default(),
            tick_shift,
            held: 0,
            due_pairs: Vec::new(),
        }
    }

    /// Packets held.
    pub fn held(&self) -> usize {
        self.held
    }

    fn tick(&self, ns: u64) -> u64 {
        ns >> self.tick_shift
    }

    /// Admits packet `id` of pair `key`, arrived at `now_ns`, to be delayed by `delay_ns`.
    pub fn admit(&mut self, key: u64, id: u32, now_ns: u64, delay_ns: u64) -> Admit {
        let mut due_ns = now_ns + delay_ns;
        let tick = self.tick(due_ns);
        let now_tick = self.tick(now_ns);
        match self.pairs.get_mut(&key) {
            None if tick <= now_tick => return Admit::Now,
            None => {
                self.pairs
                    .insert(key, VecDeque::from([Held { id, due_ns }]));
                self.wheel.insert(tick, key);
            }
            Some(fifo) => {
                let last = fifo.back().map_or(0, |h| h.due_ns);
                due_ns = due_ns.max(last);
                fifo.push_back(Held { id, due_ns });
            }
        }
        self.held += 1;
        Admit::Held
    }

    /// Appends to `out` every packet due by `now_ns` (by tick), each pair in arrival order.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Held>) {
        let now_tick = self.tick(now_ns);
        self.wheel.advance(now_tick, &mut self.due_pairs);
        for key in self.due_pairs.drain(..) {
            let Some(fifo) = self.pairs.get_mut(&key) else {
                continue;
            };
            while let Some(h) = fifo
                .front()
                .filter(|h| h.due_ns >> self.tick_shift <= now_tick)
            {
                out.push(*h);
                fifo.pop_front();
                self.held -= 1;
            }
            match fifo.front() {
                Some(h) => self.wheel.insert(h.due_ns >> self.tick_shift, key),
                None => {
                    self.pairs.remove(&key);
                }
            }
        }
    }

    /// Hands out every held packet (when the engine stops), each pair in arrival order.
    pub fn drain_all(&mut self, out: &mut Vec<Held>) {
        self.expire(u64::MAX >> 1, out);
    }

    /// Earliest time (ns) at which something may be due; `None` when nothing is held.
    pub fn next_wake_ns(&self) -> Option<u64> {
        self.wheel.next_tick().map(|t| t << self.tick_shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Ids of `out`, taken from it.
    fn ids(out: &mut Vec<Held>) -> Vec<u32> {
        out.drain(..).map(|h| h.id).collect()
    }

    #[test]
    fn zero_delay_goes_at_once_unless_its_pair_is_held() {
        let mut s = Scheduler::new(10, 8, 0);
        assert_eq!(s.admit(1, 1, 5_000, 0), Admit::Now);
        assert_eq!(s.admit(1, 2, 5_000, 1_000_000), Admit::Held);
        assert_eq!(s.admit(1, 3, 6_000, 0), Admit::Held);
        assert_eq!(s.admit(2, 4, 6_000, 0), Admit::Now);
        assert_eq!(s.held(), 2);
        let mut out = Vec::new();
        s.expire(1_004_000, &mut out);
        assert!(out.is_empty());
        s.expire(1_006_000, &mut out);
        // 3 came later with no delay, yet waits for 2: it is due when 2 is
        let due: Vec<(u32, u64)> = out.iter().map(|h| (h.id, h.due_ns)).collect();
        assert_eq!(due, [(2, 1_005_000), (3, 1_005_000)]);
        assert_eq!(s.held(), 0);
        assert_eq!(s.next_wake_ns(), None);
    }

    /// The engine's resolution (ticks of 2^14 ns): a packet delayed 50 ms is due exactly
    /// 50 ms after its arrival and goes at the first expiry in its tick, not one tick later.
    #[test]
    fn a_packet_is_due_in_the_tick_of_arrival_plus_delay() {
        const SHIFT: u32 = 14;
        let arrival = 3_000_000_123;
        let due = arrival + 50_000_000;
        let due_tick_start = due >> SHIFT << SHIFT;
        assert!(due_tick_start < due, "the due time falls inside its tick");
        let mut s = Scheduler::new(SHIFT, 14, arrival - 1_000_000);
        assert_eq!(s.admit(7, 1, arrival, 50_000_000), Admit::Held);
        assert_eq!(s.next_wake_ns(), Some(due_tick_start));
        let mut out = Vec::new();
        s.expire(due_tick_start - 1, &mut out);
        assert_eq!(out, []);
        assert_eq!(s.held(), 1);
        s.expire(due_tick_start, &mut out);
        assert_eq!(out, [Held { id: 1, due_ns: due }]);
        assert_eq!(s.held(), 0);
    }

    #[test]
    fn a_delay_shorter_than_a_tick_within_the_tick_goes_at_once() {
        let mut s = Scheduler::new(10, 6, 0);
        // 1024 ns ticks: 2_048 + 1_023 is still in tick 2, 2_048 + 1_024 is in tick 3
        assert_eq!(s.admit(1, 1, 2_048, 1_023), Admit::Now);
        assert_eq!(s.admit(2, 2, 2_048, 1_024), Admit::Held);
        assert_eq!(s.next_wake_ns(), Some(3_072));
        let mut out = Vec::new();
        s.drain_all(&mut out);
        assert_eq!(ids(&mut out), [2]);
    }

    #[test]
    fn drain_all_hands_out_every_pair_in_order() {
        let mut s = Scheduler::new(10, 6, 0);
        for (id, key, delay) in [
            (1, 1, 900_000_000),
            (2, 2, 5_000),
            (3, 1, 0),
            (4, 2, 70_000),
        ] {
            assert_eq!(s.admit(key, id, 1_000, delay), Admit::Held);
        }
        let mut out = Vec::new();
        s.drain_all(&mut out);
        let mut by_pair: BTreeMap<bool, Vec<u32>> = BTreeMap::new();
        for h in &out {
            by_pair.entry(h.id % 2 == 1).or_default().push(h.id);
        }
        assert_eq!(by_pair[&true], [1, 3]);
        assert_eq!(by_pair[&false], [2, 4]);
        assert_eq!(s.held(), 0);
        assert_eq!(s.next_wake_ns(), None);
    }

    /// An independent model of the schedule: per pair, a list of (id, due) in arrival
    /// order, due = max(arrival + delay, the previous packet's due), released when the due
    /// time's tick has come.
    #[derive(Default)]
    struct Oracle {
        pairs: BTreeMap<u64, Vec<(u32, u64)>>,
    }

    impl Oracle {
        const SHIFT: u32 = 10;

        fn admit(&mut self, key: u64, id: u32, now: u64, delay: u64) -> Admit {
            let fifo = self.pairs.entry(key).or_default();
            let due = fifo
                .last()
                .map_or(now + delay, |&(_, d)| d.max(now + delay));
            if fifo.is_empty() && due >> Self::SHIFT <= now >> Self::SHIFT {
                return Admit::Now;
            }
            fifo.push((id, due));
            Admit::Held
        }

        /// The (id, due) released at `now`, sorted by id.
        fn expire(&mut self, now: u64) -> Vec<(u32, u64)> {
            let mut out = Vec::new();
            for fifo in self.pairs.values_mut() {
                let n = fifo
                    .iter()
                    .take_while(|(_, due)| due >> Self::SHIFT <= now >> Self::SHIFT)
                    .count();
                out.extend(fifo.drain(..n));
            }
            out.sort_unstable();
            out
        }

        fn held(&self) -> usize {
            self.pairs.values().map(Vec::len).sum()
        }

        /// Start of the earliest due tick.
        fn earliest(&self) -> Option<u64> {
            let due = self
                .pairs
                .values()
                .filter_map(|f| f.first())
                .map(|h| h.1)
                .min()?;
            Some(due >> Self::SHIFT << Self::SHIFT)
        }
    }

    proptest! {
        /// Random arrivals on four pairs, with delays that change at random (past one
        /// rotation of the wheel too), are admitted and released exactly as the model says:
        /// at the same expiry, with the same due times, each pair in arrival order.
        #[test]
        fn releases_match_an_independent_model(
            arrivals in proptest::collection::vec((0u64..4, 0u64..200_000, 0u64..50_000), 1..300),
            step in 1_000u64..40_000,
        ) {
            let mut s = Scheduler::new(Oracle::SHIFT, 6, 0);
            let mut model = Oracle::default();
            let (mut now, mut out) = (0, Vec::new());
            let mut check = |s: &mut Scheduler, model: &mut Oracle, now: u64| -> Result<(), TestCaseError> {
                s.expire(now, &mut out);
                let want = model.expire(now);
                let mut got: Vec<(u32, u64)> = out.iter().map(|h| (h.id, h.due_ns)).collect();
                // ids increase with arrival, so each pair's released ids must increase
                let mut last: BTreeMap<u64, u32> = BTreeMap::new();
                for &(id, _) in &got {
                    let key = pair_of(&arrivals, id);
                    prop_assert!(last.insert(key, id).is_none_or(|prev| prev < id));
                }
                got.sort_unstable();
                out.clear();
                prop_assert_eq!(got, want, "at {}", now);
                prop_assert_eq!(s.held(), model.held());
                match (s.next_wake_ns(), model.earliest()) {
                    (Some(wake), Some(due)) => prop_assert!(wake <= due, "wake {} after {}", wake, due),
                    (wake, due) => prop_assert_eq!(wake.is_some(), due.is_some()),
                }
                Ok(())
            };
            for (id, &(key, delay, gap)) in arrivals.iter().enumerate() {
                now += gap;
                check(&mut s, &mut model, now)?;
                prop_assert_eq!(s.admit(key, id as u32, now, delay), model.admit(key, id as u32, now, delay));
            }
            while model.held() > 0 {
                now += step;
                check(&mut s, &mut model, now)?;
            }
            prop_assert_eq!(s.held(), 0);
        }
    }

    /// The pair of arrival `id` in the proptest's arrivals.
    fn pair_of(arrivals: &[(u64, u64, u64)], id: u32) -> u64 {
        arrivals[id as usize].0
    }
}
