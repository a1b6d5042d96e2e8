//! A hashed timing wheel holding at most one deadline per owner (a transaction slot).
//!
//! Each owner's next wake-up sits in one of [`SLOTS`] buckets (one per millisecond tick,
//! modulo the wheel size); a bucket is a vector and the wheel remembers where each owner's
//! entry is, so setting, moving and cancelling a deadline are O(1) (swap-remove) and no stale
//! entry is ever left behind. Expiring walks only the buckets whose tick has come, skipping
//! empty ones through an occupancy bitmap, so its cost does not grow with the number of live
//! transactions; an entry further away than one turn of the wheel is looked at once per turn.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

/// Buckets in the wheel: one turn spans 8.192 s at 1 ms per tick.
pub(crate) const SLOTS: usize = 8192;
const WORDS: usize = SLOTS / 64;

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u64,
    owner: u32,
}

/// Where an owner's entry is: bucket and index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    bucket: u16,
    index: u32,
}

const NONE: Pos = Pos {
    bucket: u16::MAX,
    index: u32::MAX,
};

/// Milliseconds of a monotonic instant, rounded up (a deadline never fires early).
pub(crate) fn tick_of(t: Duration) -> u64 {
    let ms = t.as_millis();
    let up = u128::from(t.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(ms + up).unwrap_or(u64::MAX)
}

/// The wheel. Owners are small integers (slab indices) below the capacity given at creation.
#[derive(Debug)]
pub(crate) struct Wheel {
    buckets: Vec<Vec<Entry>>,
    occupied: [u64; WORDS],
    pos: Vec<Pos>,
    /// The last tick expired (its bucket is visited again by the next `expire`).
    cursor: u64,
    len: usize,
}

impl Wheel {
    pub(crate) fn new(owners: usize) -> Self {
        Wheel {
            buckets: vec![Vec::new(); SLOTS],
            occupied: [0; WORDS],
            pos: vec![NONE; owners],
            cursor: 0,
            len: 0,
        }
    }

    /// Makes room for owners below `owners`.
    pub(crate) fn grow(&mut self, owners: usize) {
        if self.pos.len() < owners {
            self.pos.resize(owners, NONE);
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Sets (or moves) `owner`'s deadline to `at`; a deadline already past fires at the next
    /// [`expire`](Self::expire).
    pub(crate) fn set(&mut self, owner: u32, at: Duration) {
        self.cancel(owner);
        let at = tick_of(at).max(self.cursor);
        let bucket = (at % SLOTS as u64) as usize;
        let list = &mut self.buckets[bucket];
        self.pos[owner as usize] = Pos {
            bucket: bucket as u16,
            index: list.len() as u32,
        };
        list.push(Entry { at, owner });
        self.occupied[bucket / 64] |= 1 << (bucket % 64);
        self.len += 1;
    }

    /// Removes `owner`'s deadline, if any.
    pub(crate) fn cancel(&mut self, owner: u32) {
        let p = core::mem::replace(&mut self.pos[owner as usize], NONE);
        if p == NONE {
            return;
        }
        let bucket = p.bucket as usize;
        let list = &mut self.buckets[bucket];
        list.swap_remove(p.index as usize);
        if let Some(moved) = list.get(p.index as usize) {
            self.pos[moved.owner as usize].index = p.index;
        }
        if list.is_empty() {
            self.occupied[bucket / 64] &= !(1 << (bucket % 64));
        }
        self.len -= 1;
    }

    /// The deadline of `owner`, as a tick (tests).
    #[cfg(test)]
    pub(crate) fn deadline(&self, owner: u32) -> Option<u64> {
        let p = self.pos[owner as usize];
        (p != NONE).then(|| self.buckets[p.bucket as usize][p.index as usize].at)
    }

    /// Pushes every owner whose deadline is at or before `now` into `due` (and removes it).
    pub(crate) fn expire(&mut self, now: Duration, due: &mut Vec<u32>) {
        let now_tick = u64::try_from(now.as_millis())
            .unwrap_or(u64::MAX)
            .max(self.cursor);
        // Buckets to visit: from the cursor up to now, at most one full turn. The bucket of
        // `now` is visited again next time, so a deadline set later at this tick still fires.
        let start = self.cursor;
        let end = now_tick.min(start + SLOTS as u64 - 1);
        let mut t = start;
        while t <= end {
            let bucket = (t % SLOTS as u64) as usize;
            // Skip empty buckets a word at a time.
            let word = self.occupied[bucket / 64] >> (bucket % 64);
            if word == 0 {
                t += 64 - (bucket % 64) as u64;
                continue;
            }
            t += u64::from(word.trailing_zeros());
            if t > end {
                break;
            }
            let bucket = (t % SLOTS as u64) as usize;
            let mut i = 0;
            while i < self.buckets[bucket].len() {
                let e = self.buckets[bucket][i];
                if e.at <= now_tick {
                    // swap_remove moves another entry into `i`: look at it next.
                    self.cancel(e.owner);
                    due.push(e.owner);
                } else {
                    i += 1;
                }
            }
            t += 1;
        }
        self.cursor = now_tick;
    }

    /// A lower bound of the earliest deadline (never later than it): the tick of the next
    /// non-empty bucket. `None` when the wheel is empty.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        if self.len == 0 {
            return None;
        }
        let start = (self.cursor % SLOTS as u64) as usize;
        for step in 0..=WORDS {
            let w = (start / 64 + step) % WORDS;
            let mut word = self.occupied[w];
            if step == 0 {
                word &= u64::MAX << (start % 64);
            } else if step == WORDS {
                word &= !(u64::MAX << (start % 64));
            }
            if word != 0 {
                let bucket = w * 64 + word.trailing_zeros() as usize;
                let ahead = (bucket + SLOTS - start) % SLOTS;
                return Some(Duration::from_millis(self.cursor + ahead as u64));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fires_in_order_never_early() {
        let mut w = Wheel::new(8);
        w.set(0, ms(500));
        w.set(1, ms(32_000));
        w.set(2, ms(181_000));
        let mut due = Vec::new();
        w.expire(ms(499), &mut due);
        assert!(due.is_empty());
        assert_eq!(w.next_deadline(), Some(ms(500)));
        w.expire(ms(500), &mut due);
        assert_eq!(due, [0]);
        due.clear();
        w.expire(ms(31_999), &mut due);
        assert!(due.is_empty());
        w.expire(ms(40_000), &mut due);
        assert_eq!(due, [1]);
        due.clear();
        w.expire(ms(180_999), &mut due);
        assert!(due.is_empty());
        w.expire(ms(181_000), &mut due);
        assert_eq!(due, [2]);
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn sub_millisecond_rounds_up_and_past_fires_next() {
        let mut w = Wheel::new(2);
        w.set(0, Duration::from_micros(1_500));
        let mut due = Vec::new();
        w.expire(ms(1), &mut due);
        assert!(due.is_empty());
        w.expire(ms(2), &mut due);
        assert_eq!(due, [0]);
        due.clear();
        w.set(1, ms(0)); // in the past
        w.expire(ms(3), &mut due);
        assert_eq!(due, [1]);
    }

    #[test]
    fn move_and_cancel_leave_nothing_behind() {
        let mut w = Wheel::new(4);
        for o in 0..4 {
            w.set(o, ms(100));
        }
        w.set(1, ms(5_000)); // moved
        w.cancel(2);
        w.cancel(2); // idempotent
        assert_eq!(w.len(), 3);
        let mut due = Vec::new();
        w.expire(ms(100), &mut due);
        due.sort_unstable();
        assert_eq!(due, [0, 3]);
        assert_eq!(w.deadline(1), Some(5_000));
        assert_eq!(w.next_deadline(), Some(ms(5_000)));
    }

    proptest! {
        /// Against a model: a map owner -> deadline. Whatever the operations, expire returns
        /// exactly the owners the model says are due, and the lower bound holds.
        #[test]
        fn agrees_with_a_map(ops in prop::collection::vec((0u8..3, 0u32..16, 0u64..40_000), 1..300)) {
            let mut w = Wheel::new(16);
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            let mut now = 0u64;
            for (op, owner, arg) in ops {
                match op {
                    0 => {
                        let at = now + arg;
                        w.set(owner, ms(at));
                        model.insert(owner, at);
                    }
                    1 => {
                        w.cancel(owner);
                        model.remove(&owner);
                    }
                    _ => {
                        now += arg / 8;
                        let mut due = Vec::new();
                        w.expire(ms(now), &mut due);
                        due.sort_unstable();
                        let want: Vec<u32> = model.iter().filter(|(_, at)| **at <= now).map(|(o, _)| *o).collect();
                        model.retain(|_, at| *at > now);
                        prop_assert_eq!(due, want);
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                if let Some(min) = model.values().min() {
                    let lb = w.next_deadline().unwrap();
                    prop_assert!(lb <= ms((*min).max(now)), "{:?} > {}", lb, min);
                } else {
                    prop_assert_eq!(w.next_deadline(), None);
                }
            }
        }
    }
}
