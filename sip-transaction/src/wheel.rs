//! A hierarchical timing wheel holding at most one deadline per owner (a transaction slot).
//!
//! Four levels of 64 slots each: level 0 has 1 ms slots (64 ms), level 1 64 ms slots
//! (4.1 s), level 2 4.1 s slots (4.4 min), level 3 4.4 min slots (4.7 h; later deadlines wait
//! in its last slot and are looked at again). A deadline sits in the lowest level whose range
//! holds it; when time reaches a slot of a higher level, its entries move down (cascade), so
//! every entry is looked at a bounded number of times (at most once per level).
//!
//! The wheel remembers where each owner's entry is, so setting, moving and cancelling a
//! deadline are O(1) (swap-remove) and no stale entry is ever left behind. Expiring visits
//! only occupied slots whose time has come, found through per-level occupancy bitmaps: the
//! cost does not grow with the number of live transactions.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;
const LEVELS: usize = 4;
/// Deadlines further than this are parked in the last level and re-examined.
const MAX_AHEAD: u64 = 1 << (BITS * LEVELS as u32);

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u64,
    owner: u32,
}

/// Where an owner's entry is: bucket (level · 64 + slot) and index in it.
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

/// The level a deadline `when` belongs to, seen from `elapsed` (the highest bit in which they
/// differ decides).
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let masked = masked.min(MAX_AHEAD - 1);
    let significant = masked.ilog2();
    (significant / BITS) as usize
}

/// The wheel. Owners are small integers (slab indices).
#[derive(Debug)]
pub(crate) struct Wheel {
    buckets: Vec<Vec<Entry>>,
    occupied: [u64; LEVELS],
    pos: Vec<Pos>,
    /// Time (ms) the wheel has been advanced to.
    elapsed: u64,
    len: usize,
}

impl Wheel {
    pub(crate) fn new(owners: usize) -> Self {
        Wheel {
            buckets: vec![Vec::new(); SLOTS * LEVELS],
            occupied: [0; LEVELS],
            pos: vec![NONE; owners],
            elapsed: 0,
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
        self.insert(Entry {
            at: tick_of(at),
            owner,
        });
    }

    fn insert(&mut self, e: Entry) {
        // Park far deadlines at the edge of the wheel; they are re-examined when reached.
        let when = e.at.clamp(self.elapsed, self.elapsed + (MAX_AHEAD - 1));
        let level = level_for(self.elapsed, when);
        let slot = ((when >> (BITS * level as u32)) as usize) & (SLOTS - 1);
        let bucket = level * SLOTS + slot;
        let list = &mut self.buckets[bucket];
        self.pos[e.owner as usize] = Pos {
            bucket: bucket as u16,
            index: list.len() as u32,
        };
        list.push(e);
        self.occupied[level] |= 1 << slot;
        self.len += 1;
    }

    /// Removes `owner`'s deadline, if any.
    pub(crate) fn cancel(&mut self, owner: u32) {
        let Some(p) = self.pos.get_mut(owner as usize) else {
            return;
        };
        let p = core::mem::replace(p, NONE);
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
            self.occupied[bucket / SLOTS] &= !(1 << (bucket % SLOTS));
        }
        self.len -= 1;
    }

    /// The deadline of `owner`, in ms (tests).
    #[cfg(test)]
    pub(crate) fn deadline(&self, owner: u32) -> Option<u64> {
        let p = self.pos[owner as usize];
        (p != NONE).then(|| self.buckets[p.bucket as usize][p.index as usize].at)
    }

    /// The next slot to process: (bucket, time in ms). Exact for level 0; for higher levels
    /// the time its entries move down.
    fn next_expiration(&self) -> Option<(usize, u64)> {
        for level in 0..LEVELS {
            let occ = self.occupied[level];
            if occ == 0 {
                continue;
            }
            let shift = BITS * level as u32;
            let slot_range = 1u64 << shift;
            let level_range = slot_range << BITS;
            let now_slot = (self.elapsed >> shift) & (SLOTS as u64 - 1);
            // Entries of a level never lie behind its current slot: they share the bits
            // above the level with `elapsed`.
            let ahead = occ & (u64::MAX << now_slot);
            let slot = u64::from(if ahead != 0 { ahead } else { occ }.trailing_zeros());
            let level_start = self.elapsed & !(level_range - 1);
            let at = (level_start + slot * slot_range).max(self.elapsed);
            return Some((level * SLOTS + slot as usize, at));
        }
        None
    }

    /// Pushes every owner whose deadline is at or before `now` into `due` (and removes it).
    pub(crate) fn expire(&mut self, now: Duration, due: &mut Vec<u32>) {
        let now = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        while let Some((bucket, at)) = self.next_expiration() {
            if at > now {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            self.occupied[bucket / SLOTS] &= !(1 << (bucket % SLOTS));
            let entries = core::mem::take(&mut self.buckets[bucket]);
            for e in &entries {
                self.pos[e.owner as usize] = NONE;
                self.len -= 1;
            }
            for e in &entries {
                if e.at <= now {
                    due.push(e.owner);
                } else {
                    self.insert(*e);
                }
            }
            // Keep the allocation of the bucket for next time.
            let mut entries = entries;
            entries.clear();
            if self.buckets[bucket].is_empty() {
                self.buckets[bucket] = entries;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// The earliest time the wheel has something to do: the earliest deadline, or earlier
    /// (when a far slot's entries must move down). `None` when the wheel is empty.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.next_expiration()
            .map(|(_, at)| Duration::from_millis(at))
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
        // Waking at every reported deadline always makes progress.
        let mut wakes = 0;
        while let Some(t) = w.next_deadline() {
            if t > ms(500) {
                break;
            }
            w.expire(t, &mut due);
            wakes += 1;
        }
        assert_eq!(wakes, 1);
        due.clear();
        w.set(0, ms(500));
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
        assert!(w.next_deadline().unwrap() <= ms(5_000));
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
            // Draining by waking at each reported deadline fires every entry exactly at its
            // deadline (or now, for one already past), in a bounded number of wake-ups.
            let mut fired = BTreeMap::new();
            let mut wakes = 0;
            while let Some(t) = w.next_deadline() {
                wakes += 1;
                prop_assert!(wakes <= 4 * 64 + 4 * model.len() + 4, "{} wake-ups", wakes);
                let mut due = Vec::new();
                w.expire(t, &mut due);
                for o in due {
                    prop_assert!(fired.insert(o, t.as_millis() as u64).is_none());
                }
            }
            prop_assert_eq!(fired.len(), model.len());
            for (o, at) in &model {
                prop_assert_eq!(fired[o], (*at).max(now), "owner {}", o);
            }
            prop_assert_eq!(w.len(), 0);
        }
    }
}
