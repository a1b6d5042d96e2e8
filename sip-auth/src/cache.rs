//! `AuthCache`: a bounded TTL cache of successful (user, realm, source, hash) → HA1 results,
//! so that repeated REGISTERs skip the credential-store lookup (Kamailio's htable `auth`
//! with 1800 s autoexpire).
//!
//! Capacity is fixed at construction; when full, expired entries go first, then, among the few
//! slots under the clock hand, the one expiring soonest (not recently used first). Memory: about
//! [`AuthCache::BYTES_PER_ENTRY`] bytes per entry plus the user and realm strings.
//!
//! The cache is shared by reference between threads: entries are split into shards by the
//! hash of their key, each shard a fixed-capacity map behind its own lock (`sync::Shards`), so
//! a full cache evicts within the shard a new key falls in.

use alloc::string::{String, ToString};
use core::net::IpAddr;
use core::time::Duration;

use crate::algorithm::{HashKind, HexDigest};
use crate::clockmap::ClockMap;
use crate::sync::Shards;

type Key = (String, String, Option<IpAddr>, HashKind);

struct Value {
    ha1: HexDigest,
    expires: Duration,
}

/// Expired entries go first, then the soonest to expire.
fn rank(v: &Value, now: Duration) -> u64 {
    if v.expires <= now {
        0
    } else {
        (v.expires.as_millis() as u64).max(1)
    }
}

/// One shard: its map and its hit and miss counts (kept per shard, so that counting does not
/// make every thread write one shared cache line).
struct Shard {
    map: ClockMap<Key, Value>,
    hits: u64,
    misses: u64,
}

/// Bounded TTL cache of verified credentials. `now` is the caller's monotonic clock.
///
/// Shared by reference between worker threads: every method takes `&self` (the type is
/// `Sync` with the `std` feature). Entries are split into shards by key hash, each behind its
/// own lock, so two threads wait for each other only when their keys share a shard.
pub struct AuthCache {
    shards: Shards<Shard>,
    ttl: Duration,
    capacity: usize,
}

impl core::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

impl AuthCache {
    /// Bytes per entry at a power-of-two capacity, not counting the heap bytes of the user
    /// and realm strings (see [`AuthCache::memory_bytes`] for the exact total).
    pub const BYTES_PER_ENTRY: usize = ClockMap::<Key, Value>::bytes_per_entry();

    /// A cache of at most `capacity` entries living `ttl` each, hashing with `seeds` (random
    /// values from the platform; see [`AuthCache::new`] with `std`).
    pub fn with_seeds(capacity: usize, ttl: Duration, seeds: [u64; 4]) -> Self {
        let shards = Shards::new(capacity, seeds, |n| Shard {
            map: ClockMap::new(n),
            hits: 0,
            misses: 0,
        });
        AuthCache {
            capacity: shards.fold(0, |n, s| n + s.map.capacity()),
            shards,
            ttl,
        }
    }

    /// A cache of at most `capacity` entries living `ttl` each (e.g. 1800 s), randomly seeded.
    #[cfg(feature = "std")]
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self::with_seeds(capacity, ttl, crate::clockmap::std_seeds())
    }

    /// The hash of a key: picks its shard and its place there.
    fn key_hash(&self, user: &str, realm: &str, source: Option<IpAddr>, hash: HashKind) -> u64 {
        self.shards.hash(&(user, realm, source, hash))
    }

    fn find(
        map: &ClockMap<Key, Value>,
        h: u64,
        (user, realm, source, hash): (&str, &str, Option<IpAddr>, HashKind),
    ) -> Option<usize> {
        map.find(h, |k| {
            k.0 == user && k.1 == realm && k.2 == source && k.3 == hash
        })
    }

    /// The cached HA1, counting a hit or a miss.
    pub fn get(
        &self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
        now: Duration,
    ) -> Option<HexDigest> {
        let h = self.key_hash(user, realm, source, hash);
        self.shards.with(h, |s| {
            if let Some(i) = Self::find(&s.map, h, (user, realm, source, hash)) {
                if let Some(e) = s.map.touch(i) {
                    if e.value.expires > now {
                        s.hits += 1;
                        return Some(e.value.ha1);
                    }
                }
                s.map.remove(i);
            }
            s.misses += 1;
            None
        })
    }

    /// Remember a verified HA1 until `now + ttl`.
    pub fn insert(
        &self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
        ha1: HexDigest,
        now: Duration,
    ) {
        let expires = now.saturating_add(self.ttl);
        let h = self.key_hash(user, realm, source, hash);
        self.shards.with(h, |s| {
            if let Some(i) = Self::find(&s.map, h, (user, realm, source, hash)) {
                if let Some(e) = s.map.touch(i) {
                    e.value = Value { ha1, expires };
                }
                return;
            }
            let key = (user.to_string(), realm.to_string(), source, hash);
            s.map
                .insert(h, key, Value { ha1, expires }, |v| rank(v, now));
        });
    }

    /// Forget one entry (e.g. after a password change). Returns whether it was cached.
    pub fn invalidate(
        &self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
    ) -> bool {
        let h = self.key_hash(user, realm, source, hash);
        self.shards.with(h, |s| {
            Self::find(&s.map, h, (user, realm, source, hash))
                .and_then(|i| s.map.remove(i))
                .is_some()
        })
    }

    /// Drop every expired entry (shard by shard).
    pub fn purge_expired(&self, now: Duration) {
        self.shards.fold((), |(), s| s.map.purge(|v| rank(v, now)));
    }

    /// Cache hits so far.
    pub fn hits(&self) -> u64 {
        self.shards.fold(0, |n, s| n + s.hits)
    }

    /// Cache misses so far.
    pub fn misses(&self) -> u64 {
        self.shards.fold(0, |n, s| n + s.misses)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards.fold(0, |n, s| n + s.map.len())
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Heap bytes held, not counting the user and realm strings: the tables of every shard
    /// and the shard array, all allocated at construction.
    pub fn memory_bytes(&self) -> usize {
        self.shards
            .fold(self.shards.header_bytes(), |n, s| n + s.map.memory_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ttl_counters_and_bound() {
        let c = AuthCache::with_seeds(2, secs(1800), [S, 2, 3, 4]);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        let h = HashKind::Md5.hex(&[b"x"]);
        assert_eq!(c.get("a", "r", ip, HashKind::Md5, secs(0)), None);
        c.insert("a", "r", ip, HashKind::Md5, h, secs(0));
        assert_eq!(c.get("a", "r", ip, HashKind::Md5, secs(1799)), Some(h));
        assert_eq!(c.get("a", "r", None, HashKind::Md5, secs(1)), None);
        assert_eq!(c.get("a", "r", ip, HashKind::Sha256, secs(1)), None);
        assert_eq!(c.get("a", "r", ip, HashKind::Md5, secs(1800)), None);
        assert_eq!((c.hits(), c.misses()), (1, 4));
        for i in 0..100u32 {
            c.insert(&alloc::format!("u{i}"), "r", ip, HashKind::Md5, h, secs(0));
            assert!(c.len() <= 2);
        }
        c.insert("a", "r", ip, HashKind::Md5, h, secs(0));
        assert!(c.invalidate("a", "r", ip, HashKind::Md5));
        assert!(!c.invalidate("a", "r", ip, HashKind::Md5));
        c.purge_expired(secs(10_000));
        assert!(c.is_empty());
    }
}
