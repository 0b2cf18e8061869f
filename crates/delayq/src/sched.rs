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

    #[test]
    fn zero_delay_goes_at_once_unless_its_pair_is_held() {
        let mut s = Scheduler::new(10, 8, 0);
        assert_eq!(s.admit(1, 1, 5_000, 0), Admit::Now);
        assert_eq!(s.admit(1, 2, 5_000, 1_000_000), Admit::Held);
        assert_eq!(s.admit(1, 3, 6_000, 0), Admit::Held);
        assert_eq!(s.admit(2, 4, 6_000, 0), Admit::Now);
        let mut out = Vec::new();
        s.expire(1_004_000, &mut out);
        assert!(out.is_empty());
        s.expire(1_006_000, &mut out);
        assert_eq!(out.iter().map(|h| h.id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(s.held(), 0);
    }

    proptest! {
        /// Random arrivals with delays that change at random keep per-pair order, and a
        /// packet is never released before its tick nor held past it.
        #[test]
        fn per_pair_order_and_timeliness(
            arrivals in proptest::collection::vec((0u64..4, 0u64..200_000, 0u64..50_000), 1..300),
            step in 1_000u64..40_000,
        ) {
            let mut s = Scheduler::new(10, 6, 0);
            let mut now = 0;
            let mut released: Vec<(u64, u32, u64)> = Vec::new();
            let mut out = Vec::new();
            let mut keys = std::collections::HashMap::new();
            for (id, &(key, delay, gap)) in arrivals.iter().enumerate() {
                now += gap;
                s.expire(now, &mut out);
                released.extend(out.drain(..).map(|h| (keys[&h.id], h.id, now)));
                keys.insert(id as u32, key);
                if s.admit(key, id as u32, now, delay) == Admit::Now {
                    released.push((key, id as u32, now));
                }
            }
            while s.held() > 0 {
                now += step;
                s.expire(now, &mut out);
                for h in out.drain(..) {
                    prop_assert!(h.due_ns >> 10 <= now >> 10);
                    released.push((keys[&h.id], h.id, now));
                }
            }
            prop_assert_eq!(released.len(), arrivals.len());
            for k in 0..4 {
                let ids: Vec<u32> = released.iter().filter(|r| r.0 == k).map(|r| r.1).collect();
                prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "pair {} out of order: {:?}", k, ids);
            }
        }
    }
}
