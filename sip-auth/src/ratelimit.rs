//! `RateLimiter`: pike-style flood detection. Each source gets a request counter per sampling
//! interval; a source sending more than `threshold` requests in one interval is flagged for
//! the rest of that interval and the whole next one.
//!
//! Memory per tracked source: [`RateLimiter::BYTES_PER_SOURCE`] bytes; capacity fixed at
//! construction, least recently active sources evicted first (within the shard of the new
//! source: the limiter is split into independently locked shards by source hash, so that
//! threads can share it).

use core::net::IpAddr;
use core::time::Duration;

use crate::clockmap::ClockMap;
use crate::sync::Shards;

/// Rate limit policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Requests allowed per interval (default 30).
    pub threshold: u32,
    /// Sampling interval (default 2 s, as Kamailio's pike).
    pub interval: Duration,
    /// Maximum tracked sources (default 65 536).
    pub capacity: usize,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            threshold: 30,
            interval: Duration::from_secs(2),
            capacity: 65_536,
        }
    }
}

/// Times in milliseconds of the caller's monotonic clock.
struct Counter {
    window_start: u64,
    count: u32,
    flagged_until: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Per-source request rate limiter. `now` is the caller's monotonic clock.
///
/// Shared by reference between worker threads: every method takes `&self` (the type is
/// `Sync` with the `std` feature). Sources are split into shards by hash, each behind its own
/// lock, so threads admitting requests from different sources rarely wait for each other.
pub struct RateLimiter {
    cfg: RateConfig,
    shards: Shards<ClockMap<IpAddr, Counter>>,
}

impl core::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("cfg", &self.cfg)
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Bytes per tracked source at a power-of-two capacity (see
    /// [`RateLimiter::memory_bytes`] for the exact total).
    pub const BYTES_PER_SOURCE: usize = ClockMap::<IpAddr, Counter>::bytes_per_entry();

    /// A limiter with this policy, hashing with `seeds` (random values from the platform).
    pub fn with_seeds(cfg: RateConfig, seeds: [u64; 4]) -> Self {
        RateLimiter {
            shards: Shards::new(cfg.capacity, seeds, ClockMap::new),
            cfg,
        }
    }

    /// A limiter with this policy, randomly seeded.
    #[cfg(feature = "std")]
    pub fn new(cfg: RateConfig) -> Self {
        Self::with_seeds(cfg, crate::clockmap::std_seeds())
    }

    /// Count one request from `source` and say whether to admit it: `true` when the source
    /// is within its rate, `false` when it is flagged (drop or reject the request).
    pub fn admit(&self, source: IpAddr, now: Duration) -> bool {
        let interval = ms(self.cfg.interval);
        let threshold = self.cfg.threshold;
        let now = ms(now);
        let h = self.shards.hash(&source);
        self.shards.with(h, |map| {
            let idx = match map.find(h, |k| *k == source) {
                Some(i) => i,
                None => map.insert(
                    h,
                    source,
                    Counter {
                        window_start: now,
                        count: 0,
                        flagged_until: 0,
                    },
                    |c| {
                        if c.flagged_until > now {
                            u64::MAX
                        } else if c.window_start.saturating_add(interval) <= now {
                            0
                        } else {
                            u64::from(c.count).max(1)
                        }
                    },
                ),
            };
            let Some(e) = map.touch(idx) else {
                return true;
            };
            let c = &mut e.value;
            if now >= c.window_start.saturating_add(interval) {
                c.window_start = now;
                c.count = 0;
            }
            c.count = c.count.saturating_add(1);
            if c.count > threshold {
                c.flagged_until = c.window_start.saturating_add(interval.saturating_mul(2));
            }
            now >= c.flagged_until
        })
    }

    /// Whether `source` is flagged at `now`, without counting a request.
    pub fn is_flagged(&self, source: IpAddr, now: Duration) -> bool {
        let h = self.shards.hash(&source);
        self.shards.with(h, |map| {
            map.find(h, |k| *k == source)
                .and_then(|i| map.get(i))
                .is_some_and(|e| e.value.flagged_until > ms(now))
        })
    }

    /// Number of tracked sources (bounded by the capacity).
    pub fn tracked(&self) -> usize {
        self.shards.fold(0, |n, m| n + m.len())
    }

    /// Heap bytes held: the tables of every shard and the shard array, all allocated at
    /// construction.
    pub fn memory_bytes(&self) -> usize {
        self.shards
            .fold(self.shards.header_bytes(), |n, m| n + m.memory_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_threshold_and_recovers() {
        let cfg = RateConfig {
            threshold: 3,
            interval: Duration::from_secs(2),
            capacity: 8,
        };
        let r = RateLimiter::with_seeds(cfg, [1, 2, 3, 4]);
        let ip = IpAddr::from([203, 0, 113, 9]);
        let t = Duration::from_millis;
        for i in 0..3 {
            assert!(r.admit(ip, t(i * 10)));
        }
        assert!(!r.admit(ip, t(40)));
        assert!(r.is_flagged(ip, t(100)));
        // Still flagged through the next interval.
        assert!(!r.admit(ip, t(2500)));
        assert!(r.admit(ip, t(4100)));
        for i in 0..1000u32 {
            r.admit(IpAddr::from(i.to_be_bytes()), t(5000));
            assert!(r.tracked() <= 8);
        }
    }
}
