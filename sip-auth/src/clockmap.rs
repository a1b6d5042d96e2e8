//! A fixed-capacity hash map with sampled CLOCK eviction (the hand examines a few slots and
//! evicts the least valuable, preferring not recently used ones), shared by the auth cache,
//! the failure tracker and the rate limiter.
//!
//! Memory is bounded by the capacity: one slot (`Option<Entry<K, V>>`) per entry in a vector
//! allocated up front, plus a 4-byte index (and one control byte) per entry in an
//! open-addressing table keyed with ahash under caller-given seeds (so an attacker cannot
//! aim collisions at a table whose seeds are random).

use alloc::vec::Vec;
use core::hash::Hash;

use ahash::RandomState;

/// Slots examined per eviction.
pub(crate) const SAMPLE: usize = 8;
use hashbrown::HashTable;

pub(crate) struct Entry<K, V> {
    hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    referenced: bool,
}

pub(crate) struct ClockMap<K, V> {
    table: HashTable<u32>,
    slots: Vec<Option<Entry<K, V>>>,
    free: Vec<u32>,
    hand: usize,
    capacity: usize,
    hasher: RandomState,
    len: usize,
}

impl<K, V> ClockMap<K, V> {
    pub(crate) fn new(capacity: usize, seeds: [u64; 4]) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        ClockMap {
            table: HashTable::with_capacity(capacity),
            slots,
            free: (0..capacity as u32).rev().collect(),
            hand: 0,
            capacity,
            hasher: RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]),
            len: 0,
        }
    }

    /// Approximate bytes held per entry (slot + index + free-list word + control byte).
    pub(crate) const fn bytes_per_entry() -> usize {
        core::mem::size_of::<Option<Entry<K, V>>>() + 4 + 4 + 1
    }

    pub(crate) fn hash<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.hasher.hash_one(q)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn find(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<usize> {
        self.table
            .find(hash, |&i| {
                self.slots[i as usize].as_ref().is_some_and(|e| eq(&e.key))
            })
            .map(|&i| i as usize)
    }

    pub(crate) fn get(&self, idx: usize) -> Option<&Entry<K, V>> {
        self.slots.get(idx)?.as_ref()
    }

    /// The entry at `idx`, marked as recently used.
    pub(crate) fn touch(&mut self, idx: usize) -> Option<&mut Entry<K, V>> {
        let e = self.slots.get_mut(idx)?.as_mut()?;
        e.referenced = true;
        Some(e)
    }

    pub(crate) fn remove(&mut self, idx: usize) -> Option<(K, V)> {
        let e = self.slots.get_mut(idx)?.take()?;
        if let Ok(o) = self.table.find_entry(e.hash, |&i| i as usize == idx) {
            o.remove();
        }
        self.free.push(idx as u32);
        self.len -= 1;
        Some((e.key, e.value))
    }

    /// Insert a key known to be absent. When full, evicts one of the next [`SAMPLE`] slots
    /// under the clock hand: an empty one or one `rank` puts at 0 (expired) at once, else the
    /// one with the lowest `(rank, recently used)`. The work per insertion is bounded.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rank: impl Fn(&V) -> u64,
    ) -> usize {
        let idx = if let Some(i) = self.free.pop() {
            i as usize
        } else {
            let victim = self.pick_victim(&rank);
            self.remove(victim);
            self.free.pop().map_or(victim, |i| i as usize)
        };
        self.slots[idx] = Some(Entry {
            hash,
            key,
            value,
            referenced: false,
        });
        let slots = &self.slots;
        self.table.insert_unique(hash, idx as u32, |&i| {
            slots[i as usize].as_ref().map_or(0, |e| e.hash)
        });
        self.len += 1;
        idx
    }

    fn pick_victim(&mut self, rank: &impl Fn(&V) -> u64) -> usize {
        let mut best: Option<((u64, bool), usize)> = None;
        for _ in 0..SAMPLE.min(self.capacity) {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.capacity;
            let Some(e) = &mut self.slots[i] else {
                return i;
            };
            let r = rank(&e.value);
            if r == 0 {
                return i;
            }
            let key = (r, e.referenced);
            e.referenced = false;
            if best.is_none_or(|(b, _)| key < b) {
                best = Some((key, i));
            }
        }
        best.map_or(self.hand, |(_, i)| i)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().flatten().map(|e| (&e.key, &e.value))
    }

    /// Remove every entry `rank` puts at 0 (expired).
    pub(crate) fn purge(&mut self, rank: impl Fn(&V) -> u64) {
        for i in 0..self.slots.len() {
            if self.slots[i].as_ref().is_some_and(|e| rank(&e.value) == 0) {
                self.remove(i);
            }
        }
    }
}

/// Random-looking default seeds for the hash tables, from std's randomly keyed hasher when
/// `std` is on. Without `std`, pass seeds from your platform's random source.
#[cfg(feature = "std")]
pub(crate) fn std_seeds() -> [u64; 4] {
    use core::hash::BuildHasher as _;
    let s = std::collections::hash_map::RandomState::new();
    core::array::from_fn(|i| s.hash_one(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_with_second_chance() {
        let mut m: ClockMap<u32, u32> = ClockMap::new(3, [1, 2, 3, 4]);
        for k in 0..3 {
            let h = m.hash(&k);
            m.insert(h, k, k, |_| 1);
        }
        // Touch 0: it survives the next eviction, 1 goes.
        let h0 = m.hash(&0u32);
        let i0 = m.find(h0, |k| *k == 0).unwrap();
        m.touch(i0);
        let h = m.hash(&9u32);
        m.insert(h, 9, 9, |_| 1);
        assert_eq!(m.len(), 3);
        assert!(m.find(h0, |k| *k == 0).is_some());
        assert!(m.find(m.hash(&1u32), |k| *k == 1).is_none());
        for k in 100..10_000u32 {
            let h = m.hash(&k);
            m.insert(h, k, k, |v| u64::from(*v % 2));
            assert!(m.len() <= 3);
        }
        assert_eq!(m.iter().count(), 3);
        m.purge(|_| 0);
        assert_eq!(m.len(), 0);
    }
}
