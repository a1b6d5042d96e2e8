//! The expiry index of a memory-store shard: an indexed binary min-heap of (expiry second,
//! slot), with each slot's position kept so that a refresh or removal is O(log n) and
//! expiring is popping the top — no scan, no stale entries, 12 bytes per binding.

use alloc::vec::Vec;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Expiry in Unix seconds, saturated to `u32` (year 2106: later means "not before").
    at: u32,
    slot: u32,
}

/// Min-heap of slots by expiry.
#[derive(Debug, Default)]
pub(crate) struct ExpiryHeap {
    entries: Vec<Entry>,
    /// Position in `entries` of each slot, `NONE` when absent.
    pos: Vec<u32>,
}

impl ExpiryHeap {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The earliest (expiry, slot).
    pub(crate) fn peek(&self) -> Option<(u32, u32)> {
        self.entries.first().map(|e| (e.at, e.slot))
    }

    /// Adds `slot` (which must not be in the heap) expiring at `at` (Unix seconds).
    pub(crate) fn push(&mut self, slot: u32, at: u64) {
        let at = u32::try_from(at).unwrap_or(u32::MAX);
        let s = slot as usize;
        if self.pos.len() <= s {
            self.pos.resize(s + 1, NONE);
        }
        debug_assert_eq!(self.pos[s], NONE);
        let i = self.entries.len();
        self.entries.push(Entry { at, slot });
        self.pos[s] = i as u32;
        self.up(i);
    }

    /// Removes `slot` if present.
    pub(crate) fn remove(&mut self, slot: u32) {
        let Some(&p) = self.pos.get(slot as usize) else {
            return;
        };
        if p == NONE {
            return;
        }
        let i = p as usize;
        let last = self.entries.len() - 1;
        self.swap(i, last);
        self.entries.pop();
        self.pos[slot as usize] = NONE;
        if i < self.entries.len() {
            self.down(i);
            self.up(i);
        }
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.entries.swap(i, j);
        self.pos[self.entries[i].slot as usize] = i as u32;
        self.pos[self.entries[j].slot as usize] = j as u32;
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.entries[parent].at <= self.entries[i].at {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn down(&mut self, mut i: usize) {
        let n = self.entries.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.entries[r].at < self.entries[l].at {
                r
            } else {
                l
            };
            if self.entries[i].at <= self.entries[c].at {
                break;
            }
            self.swap(i, c);
            i = c;
        }
    }

    /// Checks the heap invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        for (i, e) in self.entries.iter().enumerate() {
            assert_eq!(self.pos[e.slot as usize] as usize, i);
            if i > 0 {
                assert!(self.entries[(i - 1) / 2].at <= e.at);
            }
        }
        let present = self.pos.iter().filter(|&&p| p != NONE).count();
        assert_eq!(present, self.entries.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    proptest! {
        /// Random pushes, removals and pops agree with an ordered map of slot → expiry.
        #[test]
        fn agrees_with_a_sorted_model(ops in proptest::collection::vec((0u8..3, 0u32..64, 0u64..1000), 0..400)) {
            let mut h = ExpiryHeap::default();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for (op, slot, at) in ops {
                match op {
                    0 => {
                        h.remove(slot);
                        h.push(slot, at);
                        model.insert(slot, at);
                    }
                    1 => {
                        h.remove(slot);
                        model.remove(&slot);
                    }
                    _ => {
                        let min = model.values().min().copied();
                        prop_assert_eq!(h.peek().map(|(a, _)| u64::from(a)), min);
                        if let Some((_, s)) = h.peek() {
                            h.remove(s);
                            model.remove(&s);
                        }
                    }
                }
                h.check();
                prop_assert_eq!(h.len(), model.len());
            }
        }
    }

    #[test]
    fn far_expiry_saturates() {
        let mut h = ExpiryHeap::default();
        h.push(3, u64::MAX);
        h.push(1, 10);
        assert_eq!(h.peek(), Some((10, 1)));
        h.remove(1);
        assert_eq!(h.peek(), Some((u32::MAX, 3)));
        h.remove(7); // absent: nothing happens
        assert_eq!(h.len(), 1);
    }
}
