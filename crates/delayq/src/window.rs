//! Tracks which packet ids the kernel still holds, so that accepts can be coalesced into
//! one `NFQNL_MSG_VERDICT_BATCH` ("every queued packet with id <= N") whenever the packets
//! released now are, together with those already verdicted, the oldest ones queued.
//!
//! Ids are given by the kernel in queueing order (consecutive, with a gap where the kernel
//! could not deliver a packet to us; such a packet is no longer queued).

use std::collections::VecDeque;

use crate::nfqueue::{MsgWriter, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Held,
    Releasing,
    Done,
}

/// The ids from the oldest still-held packet to the newest one received.
#[derive(Debug, Default)]
pub struct Window {
    base: u32,
    states: VecDeque<State>,
}

impl Window {
    fn slot(&mut self, id: u32) -> Option<&mut State> {
        let off = id.wrapping_sub(self.base) as usize;
        self.states.get_mut(off)
    }

    /// Packet `id` was received and awaits a verdict.
    pub fn received(&mut self, id: u32) {
        if self.states.is_empty() {
            self.base = id;
        }
        let off = id.wrapping_sub(self.base) as usize;
        if off < self.states.len() || off > u32::MAX as usize / 2 {
            return; // not newer than what we saw: left to single verdicts
        }
        self.states.resize(off, State::Done);
        self.states.push_back(State::Held);
    }

    /// Packet `id` got its verdict some other way (dropped).
    pub fn done(&mut self, id: u32) {
        if let Some(s) = self.slot(id) {
            *s = State::Done;
        }
    }

    /// Writes accept verdicts for `ids` (then cleared): one batch verdict for those that
    /// complete the oldest run, single verdicts in id order for the rest.
    pub fn accept(&mut self, ids: &mut Vec<u32>, w: &mut MsgWriter, queue_num: u16) {
        if ids.is_empty() {
            return;
        }
        let base = self.base;
        ids.sort_unstable_by_key(|&id| id.wrapping_sub(base));
        for &id in ids.iter() {
            if let Some(s) = self.slot(id) {
                *s = State::Releasing;
            }
        }
        let (mut in_run, mut last) = (0, 0);
        while let Some(&s) = self.states.front() {
            if s == State::Held {
                break;
            }
            if s == State::Releasing {
                in_run += 1;
                last = self.base;
            }
            self.states.pop_front();
            self.base = self.base.wrapping_add(1);
        }
        let batched = if in_run > 1 {
            w.verdict_batch(queue_num, last, Verdict::Accept);
            last.wrapping_sub(base) as usize + 1
        } else {
            0
        };
        for &id in ids.iter() {
            if (id.wrapping_sub(base) as usize) < batched {
                continue;
            }
            w.verdict(queue_num, id, Verdict::Accept);
            self.done(id);
        }
        ids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (message type, id) of every verdict in `w`.
    fn verdicts(w: &MsgWriter) -> Vec<(u16, u32)> {
        w.as_bytes()
            .chunks(32)
            .map(|m| {
                let ty = u16::from_ne_bytes([m[4], m[5]]) & 0xff;
                (ty, u32::from_be_bytes([m[28], m[29], m[30], m[31]]))
            })
            .collect()
    }

    #[test]
    fn oldest_run_goes_as_one_batch_rest_singly() {
        let mut win = Window::default();
        for id in 10..20 {
            win.received(id);
        }
        win.done(12);
        let mut w = MsgWriter::default();
        win.accept(&mut vec![13, 11, 10, 15], &mut w, 0);
        // 10, 11, (12 dropped), 13 form the oldest run; 14 is still held, so 15 goes alone.
        assert_eq!(verdicts(&w), [(3, 13), (1, 15)]);
        w.clear();
        win.accept(&mut vec![14], &mut w, 0);
        assert_eq!(verdicts(&w), [(1, 14)]);
        w.clear();
        win.accept(&mut vec![16, 17, 18, 19], &mut w, 0);
        assert_eq!(verdicts(&w), [(3, 19)]);
    }

    #[test]
    fn gaps_count_as_gone() {
        let mut win = Window::default();
        win.received(5);
        win.received(8);
        win.received(9);
        let mut w = MsgWriter::default();
        win.accept(&mut vec![8, 5], &mut w, 0);
        assert_eq!(verdicts(&w), [(3, 8)]);
        w.clear();
        win.received(10);
        win.accept(&mut vec![10], &mut w, 0);
        assert_eq!(verdicts(&w), [(1, 10)]);
    }

    #[test]
    fn ids_wrap_around_and_repeats_are_ignored() {
        let mut win = Window::default();
        for id in [u32::MAX - 1, u32::MAX, u32::MAX, 0, 1, 0] {
            win.received(id);
        }
        let mut w = MsgWriter::default();
        win.accept(&mut vec![0, u32::MAX - 1, u32::MAX], &mut w, 0);
        // the oldest three in queueing order: one batch up to id 0
        assert_eq!(verdicts(&w), [(3, 0)]);
        w.clear();
        win.accept(&mut vec![1], &mut w, 0);
        assert_eq!(verdicts(&w), [(1, 1)]);
    }

    #[test]
    fn a_repeated_id_keeps_the_newer_ones() {
        let mut win = Window::default();
        for id in [5, 6, 7, 6] {
            win.received(id);
        }
        let mut w = MsgWriter::default();
        win.accept(&mut vec![5, 6, 7], &mut w, 0);
        assert_eq!(verdicts(&w), [(3, 7)]);
    }

    #[test]
    fn the_first_id_may_be_anywhere() {
        // past half the id space: still the start of the window, not an old id
        let mut win = Window::default();
        for id in 3_000_000_000..3_000_000_004 {
            win.received(id);
        }
        let mut w = MsgWriter::default();
        win.accept(&mut vec![3_000_000_001, 3_000_000_000], &mut w, 0);
        assert_eq!(verdicts(&w), [(3, 3_000_000_001)]);
        w.clear();
        win.accept(&mut vec![], &mut w, 0);
        assert_eq!(verdicts(&w), []);
    }
}
