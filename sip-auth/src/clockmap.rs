//! A fixed-capacity hash map with sampled CLOCK eviction (the hand examines a few slots and
//! evicts the least valuable, preferring not recently used ones), shared by the auth cache,
//! the failure tracker and the rate limiter; each of them holds one per shard (`sync::Shards`,
//! which also hashes the keys, with ahash under caller-given seeds, so an attacker cannot aim
//! collisions at a table whose seeds are random).
//!
//! Memory is allocated at construction and never grows: one slot (`Option<Entry<K, V>>`) per
//! entry, a 4-byte free-list word per entry, and an open-addressing index (hashbrown) of
//! 4-byte slot numbers plus one control byte per bucket. The index is reserved for twice the
//! capacity: hashbrown leaves a tombstone for some removals, and when tombstones use up its
//! spare room it rehashes in place only if the live entries fill at most half of its
//! capacity, otherwise it reallocates at double size. Reserving twice the capacity keeps it
//! in place (the memory test in `tests/memory.rs` measures this under churn). For a
//! power-of-two capacity that is 4 buckets, 20 bytes, per entry.

use alloc::vec::Vec;

use hashbrown::HashTable;

/// Slots examined per eviction.
pub(crate) const SAMPLE: usize = 8;

/// Index bytes per entry at a power-of-two capacity: 4 buckets (the table is reserved for
/// twice the capacity at a load of at most 7/8, rounded up to a power of two) of a 4-byte
/// slot number and a control byte.
const INDEX_BYTES_PER_ENTRY: usize = 4 * (4 + 1);

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
    len: usize,
}

impl<K, V> ClockMap<K, V> {
    /// A map of at most `capacity` entries (at least 1); `hash` values given to its methods
    /// come from the caller.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize / 2);
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        ClockMap {
            table: HashTable::with_capacity(2 * capacity),
            slots,
            free: (0..capacity as u32).rev().collect(),
            hand: 0,
            capacity,
            len: 0,
        }
    }

    /// Bytes held per entry at a power-of-two capacity (slot + free-list word + index).
    pub(crate) const fn bytes_per_entry() -> usize {
        core::mem::size_of::<Option<Entry<K, V>>>() + 4 + INDEX_BYTES_PER_ENTRY
    }

    /// Heap bytes held, exactly (fixed at construction).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Option<Entry<K, V>>>()
            + self.free.capacity() * 4
            + self.table.allocation_size()
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

    fn h(k: u32) -> u64 {
        ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(k)
    }

    #[test]
    fn bounded_with_second_chance() {
        let mut m: ClockMap<u32, u32> = ClockMap::new(3);
        for k in 0..3 {
            m.insert(h(k), k, k, |_| 1);
        }
        // Touch 0: it survives the next eviction, 1 goes.
        let i0 = m.find(h(0), |k| *k == 0).unwrap();
        m.touch(i0);
        m.insert(h(9), 9, 9, |_| 1);
        assert_eq!(m.len(), 3);
        assert!(m.find(h(0), |k| *k == 0).is_some());
        assert!(m.find(h(1), |k| *k == 1).is_none());
        for k in 100..10_000u32 {
            m.insert(h(k), k, k, |v| u64::from(*v % 2));
            assert!(m.len() <= 3);
        }
        assert_eq!(m.iter().count(), 3);
        m.purge(|_| 0);
        assert_eq!(m.len(), 0);
    }

    /// Churn leaves tombstones in the index; reserved for twice the capacity, it rehashes
    /// them away in place instead of reallocating at double size.
    #[test]
    fn memory_is_fixed_under_churn() {
        for cap in [1usize, 7, 64, 1000, 1024, 4096] {
            let mut m: ClockMap<u32, u32> = ClockMap::new(cap);
            let mem = m.memory_bytes();
            for k in 0..(cap as u32 * 50).max(1000) {
                m.insert(h(k), k, k, |v| u64::from(*v));
                assert_eq!(m.memory_bytes(), mem, "capacity {cap}, key {k}");
            }
            if cap.is_power_of_two() && cap >= 64 {
                let per_entry = mem / cap;
                assert!(per_entry.abs_diff(ClockMap::<u32, u32>::bytes_per_entry()) <= 1);
            }
        }
    }
}
