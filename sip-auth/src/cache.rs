//! `AuthCache`: a bounded TTL cache of successful (user, realm, source, hash) → HA1 results,
//! so that repeated REGISTERs skip the credential-store lookup (Kamailio's htable `auth`
//! with 1800 s autoexpire).
//!
//! Capacity is fixed at construction; when full, expired entries go first, then, among the few
//! slots under the clock hand, the one expiring soonest (not recently used first). Memory: about
//! [`AuthCache::BYTES_PER_ENTRY`] bytes per entry plus the user and realm strings.

use alloc::string::{String, ToString};
use core::net::IpAddr;
use core::time::Duration;

use crate::algorithm::{HashKind, HexDigest};
use crate::clockmap::ClockMap;

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

/// Bounded TTL cache of verified credentials. `now` is the caller's monotonic clock.
pub struct AuthCache {
    map: ClockMap<Key, Value>,
    ttl: Duration,
    hits: u64,
    misses: u64,
}

impl core::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthCache")
            .field("len", &self.map.len())
            .field("capacity", &self.map.capacity())
            .field("ttl", &self.ttl)
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

impl AuthCache {
    /// Bytes per entry, not counting the heap bytes of the user and realm strings.
    pub const BYTES_PER_ENTRY: usize = ClockMap::<Key, Value>::bytes_per_entry();

    /// A cache of at most `capacity` entries living `ttl` each, hashing with `seeds` (random
    /// values from the platform; see [`AuthCache::new`] with `std`).
    pub fn with_seeds(capacity: usize, ttl: Duration, seeds: [u64; 4]) -> Self {
        AuthCache {
            map: ClockMap::new(capacity, seeds),
            ttl,
            hits: 0,
            misses: 0,
        }
    }

    /// A cache of at most `capacity` entries living `ttl` each (e.g. 1800 s), randomly seeded.
    #[cfg(feature = "std")]
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self::with_seeds(capacity, ttl, crate::clockmap::std_seeds())
    }

    fn find(
        &self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
    ) -> Option<usize> {
        let h = self.map.hash(&(user, realm, source, hash));
        self.map.find(h, |k| {
            k.0 == user && k.1 == realm && k.2 == source && k.3 == hash
        })
    }

    /// The cached HA1, counting a hit or a miss.
    pub fn get(
        &mut self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
        now: Duration,
    ) -> Option<HexDigest> {
        if let Some(i) = self.find(user, realm, source, hash) {
            let e = self.map.touch(i)?;
            if e.value.expires > now {
                self.hits += 1;
                return Some(e.value.ha1);
            }
            self.map.remove(i);
        }
        self.misses += 1;
        None
    }

    /// Remember a verified HA1 until `now + ttl`.
    pub fn insert(
        &mut self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
        ha1: HexDigest,
        now: Duration,
    ) {
        let expires = now.saturating_add(self.ttl);
        if let Some(i) = self.find(user, realm, source, hash) {
            if let Some(e) = self.map.touch(i) {
                e.value = Value { ha1, expires };
            }
            return;
        }
        let h = self.map.hash(&(user, realm, source, hash));
        let key = (user.to_string(), realm.to_string(), source, hash);
        self.map
            .insert(h, key, Value { ha1, expires }, |v| rank(v, now));
    }

    /// Forget one entry (e.g. after a password change). Returns whether it was cached.
    pub fn invalidate(
        &mut self,
        user: &str,
        realm: &str,
        source: Option<IpAddr>,
        hash: HashKind,
    ) -> bool {
        self.find(user, realm, source, hash)
            .and_then(|i| self.map.remove(i))
            .is_some()
    }

    /// Drop every expired entry.
    pub fn purge_expired(&mut self, now: Duration) {
        self.map.purge(|v| rank(v, now));
    }

    /// Cache hits so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Cache misses so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Maximum entries.
    pub fn capacity(&self) -> usize {
        self.map.capacity()
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
        let mut c = AuthCache::with_seeds(2, secs(1800), [S, 2, 3, 4]);
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
