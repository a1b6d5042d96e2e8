//! How the server-side state is shared by worker threads: every stateful type takes `&self`
//! and synchronises inside, with no global lock and no `unsafe`.
//!
//! - The replay table and the nonce counter are atomics ([`AtomicU64`]): one word per tracked
//!   nonce, updated by compare-and-swap, in `std` and `no_std` builds alike.
//! - The failure tracker, the rate limiter and the auth cache are [`Shards`]: the key's hash
//!   picks one of up to [`MAX_SHARDS`] independent maps, each behind its own [`Lock`] and on
//!   its own cache lines, so two threads wait for each other only when their keys land in the
//!   same shard, and only for the few dozen nanoseconds of one map operation.
//! - [`Lock`] is `std::sync::Mutex` with the `std` feature. Without it, it is a
//!   `core::cell::RefCell`: the same `&self` API for a single-threaded `no_std` user, and the
//!   types are then not `Sync`, so the compiler refuses to share them between threads rather
//!   than letting them race. (A spinning lock would need `unsafe` or a dependency, and spinning
//!   is wrong where threads can be preempted; a `no_std` user with threads wraps the types in
//!   their platform's mutex.)

use alloc::boxed::Box;
use core::hash::Hash;

use ahash::RandomState;

/// A value behind a lock: a `std::sync::Mutex` with `std`, a `RefCell` without.
pub(crate) struct Lock<T> {
    #[cfg(feature = "std")]
    inner: std::sync::Mutex<T>,
    #[cfg(not(feature = "std"))]
    inner: core::cell::RefCell<T>,
}

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Lock {
            #[cfg(feature = "std")]
            inner: std::sync::Mutex::new(value),
            #[cfg(not(feature = "std"))]
            inner: core::cell::RefCell::new(value),
        }
    }

    /// Run `f` on the value, holding the lock. `f` must not reach this lock again (it never
    /// does in this crate: the closures are leaf operations on one map). A panic inside `f`
    /// in another thread poisons a `Mutex`; the value is used anyway, since every operation
    /// leaves the maps consistent at each step and nothing here panics on input.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(feature = "std")]
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        #[cfg(not(feature = "std"))]
        let mut guard = self.inner.borrow_mut();
        f(&mut guard)
    }
}

/// Keeps each shard on its own cache lines (128 bytes: two 64-byte lines, since x86 and
/// recent ARM cores fetch lines in adjacent pairs), so that threads working on different
/// shards do not invalidate each other's caches.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T: core::fmt::Debug> core::fmt::Debug for Padded<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

/// Most shards a table is split into.
pub(crate) const MAX_SHARDS: usize = 64;
/// Fewest entries per shard: below that a table gets fewer shards, so that each shard's
/// eviction sample (see `clockmap`) still has candidates to choose from.
pub(crate) const MIN_PER_SHARD: usize = 64;

/// A table split into a power-of-two number of independently locked shards, chosen by the
/// key's hash (keyed with caller-given seeds, so a remote party cannot aim keys at one shard).
pub(crate) struct Shards<T> {
    hasher: RandomState,
    shards: Box<[Padded<Lock<T>>]>,
}

impl<T> Shards<T> {
    /// `capacity` entries split over `shard_count(capacity)` shards; `make(n)` builds a shard
    /// of capacity `n`. The shard capacities add up to `capacity` exactly.
    pub(crate) fn new(capacity: usize, seeds: [u64; 4], mut make: impl FnMut(usize) -> T) -> Self {
        let n = shard_count(capacity);
        let shards = (0..n)
            .map(|i| {
                Padded(Lock::new(make(
                    capacity / n + usize::from(i < capacity % n),
                )))
            })
            .collect();
        Shards {
            hasher: RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]),
            shards,
        }
    }

    /// The keyed hash of `key`: picks the shard, and is reused inside it.
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Run `f` on the shard of `hash`, holding that shard's lock only.
    #[inline]
    pub(crate) fn with<R>(&self, hash: u64, f: impl FnOnce(&mut T) -> R) -> R {
        // Bits 32.. pick the shard: the map inside uses the low bits for the bucket and the
        // top 7 for its control bytes, so the three stay independent.
        let i = (hash >> 32) as usize & (self.shards.len() - 1);
        self.shards[i].0.with(f)
    }

    /// Fold over every shard, locking one at a time (not a snapshot of the whole table).
    pub(crate) fn fold<A>(&self, init: A, mut f: impl FnMut(A, &mut T) -> A) -> A {
        self.shards
            .iter()
            .fold(init, |acc, s| s.0.with(|t| f(acc, t)))
    }

    /// Bytes of the shard array itself (lock, padding and the maps' fixed-size headers).
    pub(crate) fn header_bytes(&self) -> usize {
        self.shards.len() * core::mem::size_of::<Padded<Lock<T>>>()
    }
}

/// Shards for a table of `capacity` entries: a power of two, at most [`MAX_SHARDS`], at least
/// [`MIN_PER_SHARD`] entries each (one shard for small tables).
pub(crate) fn shard_count(capacity: usize) -> usize {
    let n = (capacity / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
    1 << n.ilog2()
}

/// The 64-bit atomic of the replay table and the nonce counter.
#[cfg(target_has_atomic = "64")]
pub(crate) use core::sync::atomic::AtomicU64;

/// Targets without 64-bit atomics (e.g. 32-bit microcontrollers) get [`LockedU64`] instead.
#[cfg(not(target_has_atomic = "64"))]
pub(crate) use LockedU64 as AtomicU64;

/// The three `AtomicU64` operations the crate uses, over a [`Lock`], for targets without
/// 64-bit atomics. Compiled everywhere so that its tests run on the development machine.
#[cfg_attr(target_has_atomic = "64", allow(dead_code))]
pub(crate) struct LockedU64(Lock<u64>);

#[cfg_attr(target_has_atomic = "64", allow(dead_code))]
impl LockedU64 {
    pub(crate) const fn new(v: u64) -> Self {
        LockedU64(Lock::new(v))
    }

    pub(crate) fn load(&self, _: core::sync::atomic::Ordering) -> u64 {
        self.0.with(|v| *v)
    }

    pub(crate) fn fetch_add(&self, add: u64, _: core::sync::atomic::Ordering) -> u64 {
        self.0.with(|v| {
            let old = *v;
            *v = old.wrapping_add(add);
            old
        })
    }

    pub(crate) fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        _: core::sync::atomic::Ordering,
        _: core::sync::atomic::Ordering,
    ) -> Result<u64, u64> {
        self.0.with(|v| {
            if *v == current {
                *v = new;
                Ok(current)
            } else {
                Err(*v)
            }
        })
    }
}

impl core::fmt::Debug for LockedU64 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.with(|v| v.fmt(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering::Relaxed;

    #[test]
    fn shard_counts() {
        assert_eq!(shard_count(0), 1);
        assert_eq!(shard_count(2), 1);
        assert_eq!(shard_count(127), 1);
        assert_eq!(shard_count(128), 2);
        assert_eq!(shard_count(1024), 16);
        assert_eq!(shard_count(1000), 8);
        assert_eq!(shard_count(65_536), MAX_SHARDS);
        // Capacities add up exactly.
        for cap in [0, 1, 5, 63, 64, 1000, 1023, 65_537] {
            let s: Shards<usize> = Shards::new(cap, [1, 2, 3, 4], |n| n);
            assert_eq!(s.fold(0, |a, n| a + *n), cap);
            let (lo, hi) = s.fold((usize::MAX, 0), |(lo, hi), n| (lo.min(*n), hi.max(*n)));
            assert!(hi - lo <= 1, "{cap}: {lo}..{hi}");
        }
    }

    #[test]
    fn hash_spreads_over_shards() {
        let s: Shards<u32> = Shards::new(1024, [1, 2, 3, 4], |_| 0);
        for k in 0..16_000u32 {
            s.with(s.hash(&k), |n| *n += 1);
        }
        // 16 shards, 1000 keys each on average.
        assert!(s.fold(true, |ok, n| ok && (800..1200).contains(n)));
        assert_eq!(core::mem::align_of::<Padded<u8>>(), 128);
    }

    /// No lock over the whole table: while one thread holds a shard, another works in a
    /// different shard (a global lock would make it wait, and the test fail after 10 s).
    #[cfg(feature = "std")]
    #[test]
    fn other_shards_stay_usable_while_one_is_held() {
        use std::sync::{Arc, mpsc};
        let s: Arc<Shards<u32>> = Arc::new(Shards::new(1024, [1, 2, 3, 4], |_| 0));
        let shard = |h: u64| (h >> 32) as usize & 15;
        let a = s.hash(&0u32);
        let b = (1..100u32)
            .map(|k| s.hash(&k))
            .find(|&h| shard(h) != shard(a))
            .unwrap();
        s.with(a, |held| {
            *held += 1;
            let (tx, rx) = mpsc::channel();
            let s2 = Arc::clone(&s);
            std::thread::spawn(move || tx.send(s2.with(b, |v| *v + 1)));
            assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)), Ok(1));
        });
    }

    #[test]
    fn locked_u64_behaves_as_atomic_u64() {
        let a = core::sync::atomic::AtomicU64::new(5);
        let l = LockedU64::new(5);
        for (cur, new, add) in [(5, 7, 1), (5, 9, 0), (8, 3, u64::MAX), (2, 2, 2)] {
            assert_eq!(
                a.compare_exchange(cur, new, Relaxed, Relaxed),
                l.compare_exchange(cur, new, Relaxed, Relaxed)
            );
            assert_eq!(a.fetch_add(add, Relaxed), l.fetch_add(add, Relaxed));
            assert_eq!(a.load(Relaxed), l.load(Relaxed));
        }
        assert_eq!(alloc::format!("{l:?}"), alloc::format!("{a:?}"));
    }
}
