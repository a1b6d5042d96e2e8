//! Brute-force protection: [`FailureTracker`] counts authentication failures per source IP
//! (and optionally per user) in an exact sliding window and bans a source that fails more
//! than `threshold` times within `window` (Kamailio's htable `ipban`: more than 5 failures,
//! 300 s). Trusted networks ([`FailureTracker::trust`]) are never banned; memory is fixed by
//! the capacity.
//!
//! Memory per tracked IP: [`FailureTracker::bytes_per_ip`] bytes (the map slot, free-list
//! word and index plus `threshold + 1` 8-byte failure times); with the defaults (threshold 5)
//! 128 bytes on 64-bit targets, so 64 Ki sources take 8 MiB. A flood of more distinct sources
//! than the capacity evicts idle sources first, then those with the fewest and oldest
//! failures, banned sources last; memory never grows.
//!
//! The tracker is shared by reference between threads: sources are split into shards by the
//! hash of their address, each shard a fixed-capacity map behind its own lock
//! (`sync::Shards`), so eviction happens within the shard a new source falls in.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use crate::clockmap::ClockMap;
use crate::sync::Shards;

/// An IP network (`addr/prefix`), for the trusted list ([`FailureTracker::trust`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `addr/prefix`; the prefix is clamped to the address length.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        IpNet {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// Parse `a.b.c.d/n`, `x::y/n`, or a bare address (a host network).
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.prefix),
            _ => return false,
        };
        if bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(bits));
        a & mask == b & mask
    }
}

impl core::fmt::Display for IpNet {
    /// `addr/prefix`, what [`IpNet::parse`] reads.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Ban policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanConfig {
    /// Failures allowed within `window`; one more bans (default 5).
    pub threshold: u32,
    /// Sliding window (default 300 s).
    pub window: Duration,
    /// Ban duration (default 300 s).
    pub ban_time: Duration,
    /// Maximum number of tracked sources (default 65 536).
    pub capacity: usize,
    /// Also track failures per user name (default off), with this capacity.
    pub user_capacity: usize,
}

impl Default for BanConfig {
    fn default() -> Self {
        BanConfig {
            threshold: 5,
            window: Duration::from_secs(300),
            ban_time: Duration::from_secs(300),
            capacity: 65_536,
            user_capacity: 0,
        }
    }
}

/// What recording a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Counted; this many failures are within the window.
    Counted(u32),
    /// The source (or user) is banned until this instant.
    Banned {
        /// End of the ban (caller's monotonic clock).
        until: Duration,
    },
    /// The source is in a trusted network: never counted, never banned.
    Trusted,
}

/// Milliseconds of a monotonic instant (saturating).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct State {
    /// Ring of the last `threshold + 1` failure times (ms) lives at `ring[idx * ring_len..]`.
    head: u32,
    count: u32,
    /// Last failure (ms).
    last: u64,
    /// End of the ban (ms); 0 when not banned.
    banned_until: u64,
}

/// One shard's failure table: the map and the failure-time rings of its slots.
struct Tracker<K> {
    map: ClockMap<K, State>,
    ring: Vec<u64>,
    ring_len: usize,
}

impl<K> Tracker<K> {
    fn new(capacity: usize, threshold: u32) -> Self {
        let map = ClockMap::new(capacity);
        let ring_len = threshold as usize + 1;
        Tracker {
            ring: vec![0; map.capacity() * ring_len],
            map,
            ring_len,
        }
    }

    fn memory_bytes(&self) -> usize {
        self.map.memory_bytes() + self.ring.capacity() * core::mem::size_of::<u64>()
    }

    /// The slot of a key, inserted (with no failures) when absent. Eviction keeps bans and
    /// sources with more recent failures; forgets idle ones.
    fn slot(
        &mut self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        make: impl FnOnce() -> K,
        now: u64,
        window: u64,
    ) -> usize {
        if let Some(i) = self.map.find(hash, eq) {
            return i;
        }
        self.map.insert(
            hash,
            make(),
            State {
                head: 0,
                count: 0,
                last: now,
                banned_until: 0,
            },
            |s| {
                if s.banned_until > now {
                    u64::MAX
                } else if s.last.saturating_add(window) <= now {
                    0
                } else {
                    (u64::from(s.count) << 48) | (s.last & ((1 << 48) - 1)).max(1)
                }
            },
        )
    }

    /// Bans a key until `until` (ms), replacing any ban it has.
    fn ban(
        &mut self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        make: impl FnOnce() -> K,
        until: u64,
        now: u64,
        window: u64,
    ) {
        let idx = self.slot(hash, eq, make, now, window);
        if let Some(e) = self.map.touch(idx) {
            e.value.banned_until = until.max(1);
            e.value.last = now;
        }
    }

    fn fail(
        &mut self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        make: impl FnOnce() -> K,
        cfg: &BanConfig,
        now: Duration,
    ) -> FailureVerdict {
        let now = ms(now);
        let window = ms(cfg.window);
        let idx = self.slot(hash, eq, make, now, window);
        let ring_len = self.ring_len;
        let Some(e) = self.map.touch(idx) else {
            return FailureVerdict::Counted(0);
        };
        let st = &mut e.value;
        if st.banned_until != 0 {
            if st.banned_until > now {
                return FailureVerdict::Banned {
                    until: Duration::from_millis(st.banned_until),
                };
            }
            st.banned_until = 0;
            st.head = 0;
            st.count = 0;
        }
        let ring = &mut self.ring[idx * ring_len..(idx + 1) * ring_len];
        ring[st.head as usize] = now;
        st.head = (st.head + 1) % ring_len as u32;
        st.count = (st.count + 1).min(ring_len as u32);
        st.last = now;
        // Failures within the window among the last `threshold + 1`.
        let within = ring
            .iter()
            .take(st.count as usize)
            .filter(|&&t| now.saturating_sub(t) < window)
            .count() as u32;
        if within > cfg.threshold {
            let until = now.saturating_add(ms(cfg.ban_time)).max(1);
            st.banned_until = until;
            FailureVerdict::Banned {
                until: Duration::from_millis(until),
            }
        } else {
            FailureVerdict::Counted(within)
        }
    }

    fn banned(&mut self, hash: u64, eq: impl Fn(&K) -> bool, now: Duration) -> bool {
        self.map
            .find(hash, eq)
            .and_then(|i| self.map.touch(i))
            .is_some_and(|e| e.value.banned_until > ms(now))
    }

    /// Forgets the failures of a key that is not banned (a success ends a run of failures).
    fn succeed(&mut self, hash: u64, eq: impl Fn(&K) -> bool, now: Duration) {
        if let Some(i) = self.map.find(hash, eq) {
            let banned = self
                .map
                .get(i)
                .is_some_and(|e| e.value.banned_until > ms(now));
            if !banned {
                self.map.remove(i);
            }
        }
    }

    fn unban(&mut self, hash: u64, eq: impl Fn(&K) -> bool) -> bool {
        match self.map.find(hash, eq) {
            Some(i) => self.map.remove(i).is_some_and(|(_, s)| s.banned_until != 0),
            None => false,
        }
    }
}

/// Failure counting and banning per source IP, optionally per user. `now` is the caller's
/// monotonic clock.
///
/// Shared by reference between worker threads: the recording and checking methods take
/// `&self` (the type is `Sync` with the `std` feature). The tables are split into shards by
/// key hash, each behind its own lock, so threads handling different sources rarely wait for
/// each other and there is no lock over the whole tracker. The trusted networks are
/// configuration: set them with [`FailureTracker::trust`] before sharing the tracker.
pub struct FailureTracker {
    cfg: BanConfig,
    ips: Shards<Tracker<IpAddr>>,
    users: Option<Shards<Tracker<String>>>,
    trusted: Vec<IpNet>,
}

impl core::fmt::Debug for FailureTracker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FailureTracker")
            .field("cfg", &self.cfg)
            .field("tracked_ips", &self.tracked())
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl FailureTracker {
    /// A tracker with this policy, hashing with `seeds` (random values from the platform).
    pub fn with_seeds(cfg: BanConfig, seeds: [u64; 4]) -> Self {
        let users = (cfg.user_capacity > 0).then(|| {
            let mut s = seeds;
            s[0] ^= 0x9e37_79b9_7f4a_7c15;
            Shards::new(cfg.user_capacity, s, |n| Tracker::new(n, cfg.threshold))
        });
        FailureTracker {
            ips: Shards::new(cfg.capacity, seeds, |n| Tracker::new(n, cfg.threshold)),
            users,
            cfg,
            trusted: Vec::new(),
        }
    }

    /// A tracker with this policy, randomly seeded.
    #[cfg(feature = "std")]
    pub fn new(cfg: BanConfig) -> Self {
        Self::with_seeds(cfg, crate::clockmap::std_seeds())
    }

    /// Bytes of memory per tracked IP with this policy (at a power-of-two capacity; see
    /// [`FailureTracker::memory_bytes`] for the exact total).
    pub fn bytes_per_ip(&self) -> usize {
        ClockMap::<IpAddr, State>::bytes_per_entry()
            + (self.cfg.threshold as usize + 1) * core::mem::size_of::<u64>()
    }

    /// Heap bytes held for IP and user tracking, all allocated at construction: the tables
    /// of every shard plus the shard array.
    pub fn memory_bytes(&self) -> usize {
        fn table<K>(s: &Shards<Tracker<K>>) -> usize {
            s.fold(s.header_bytes(), |n, t| n + t.memory_bytes())
        }
        table(&self.ips) + self.users.as_ref().map_or(0, table)
    }

    /// Trust the network `net`: sources in it are never counted or banned. Configuration,
    /// done before the tracker is shared.
    pub fn trust(&mut self, net: IpNet) {
        self.trusted.push(net);
    }

    /// Whether `ip` is in a trusted network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// Record a failed authentication from `ip` (for `user`, when per-user tracking is on).
    /// Returns the IP's verdict, or the user's if only the user is banned.
    pub fn record_failure(&self, ip: IpAddr, user: Option<&str>, now: Duration) -> FailureVerdict {
        let cfg = &self.cfg;
        let mut user_verdict = None;
        if let (Some(t), Some(u)) = (&self.users, user) {
            let h = t.hash(u);
            user_verdict = Some(t.with(h, |t| t.fail(h, |k| k == u, || u.into(), cfg, now)));
        }
        if self.is_trusted(ip) {
            return FailureVerdict::Trusted;
        }
        let h = self.ips.hash(&ip);
        let v = self
            .ips
            .with(h, |t| t.fail(h, |k| *k == ip, || ip, cfg, now));
        match (v, user_verdict) {
            (FailureVerdict::Counted(_), Some(b @ FailureVerdict::Banned { .. })) => b,
            _ => v,
        }
    }

    /// Record a successful authentication from `ip`: its failures are forgotten, so a ban
    /// needs more than `threshold` failures *in a row* (an active ban stays until it ends).
    pub fn record_success(&self, ip: IpAddr, now: Duration) {
        let h = self.ips.hash(&ip);
        self.ips.with(h, |t| t.succeed(h, |k| *k == ip, now));
    }

    /// Whether `ip` is banned at `now` (never when trusted).
    pub fn is_banned(&self, ip: IpAddr, now: Duration) -> bool {
        if self.is_trusted(ip) {
            return false;
        }
        let h = self.ips.hash(&ip);
        self.ips.with(h, |t| t.banned(h, |k| *k == ip, now))
    }

    /// Whether `user` is banned at `now` (always false without per-user tracking).
    pub fn is_user_banned(&self, user: &str, now: Duration) -> bool {
        self.users.as_ref().is_some_and(|t| {
            let h = t.hash(user);
            t.with(h, |t| t.banned(h, |k| k == user, now))
        })
    }

    /// Ban `ip` for `duration` from `now`, whatever its failures (an operator's manual ban,
    /// Kamailio's `htable.seti ipban`), replacing any ban it has: `Banned` with its end, or
    /// `Trusted` (nothing done) when `ip` is in a trusted network. A zero `duration` leaves it
    /// banned for the shortest time the clock can tell (1 ms); lift bans with
    /// [`FailureTracker::unban`].
    pub fn ban(&self, ip: IpAddr, duration: Duration, now: Duration) -> FailureVerdict {
        if self.is_trusted(ip) {
            return FailureVerdict::Trusted;
        }
        let (now, window) = (ms(now), ms(self.cfg.window));
        let until = now.saturating_add(ms(duration).max(1));
        let h = self.ips.hash(&ip);
        self.ips
            .with(h, |t| t.ban(h, |k| *k == ip, || ip, until, now, window));
        FailureVerdict::Banned {
            until: Duration::from_millis(until),
        }
    }

    /// Lift the ban on `ip` and forget its failures. Returns whether it was banned.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let h = self.ips.hash(&ip);
        self.ips.with(h, |t| t.unban(h, |k| *k == ip))
    }

    /// Lift the ban on `user`.
    pub fn unban_user(&self, user: &str) -> bool {
        self.users.as_ref().is_some_and(|t| {
            let h = t.hash(user);
            t.with(h, |t| t.unban(h, |k| k == user))
        })
    }

    /// The banned IPs at `now` with the end of their ban (gathered shard by shard).
    pub fn list(&self, now: Duration) -> Vec<(IpAddr, Duration)> {
        self.ips.fold(Vec::new(), |mut out, t| {
            out.extend(
                t.map
                    .iter()
                    .filter(|(_, s)| s.banned_until > ms(now))
                    .map(|(k, s)| (*k, Duration::from_millis(s.banned_until))),
            );
            out
        })
    }

    /// Number of IPs currently tracked (bounded by the capacity).
    pub fn tracked(&self) -> usize {
        self.ips.fold(0, |n, t| n + t.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn tracker() -> FailureTracker {
        FailureTracker::with_seeds(BanConfig::default(), [1, 2, 3, 4])
    }

    #[test]
    fn a_success_ends_the_run_but_not_a_ban() {
        let t = tracker();
        let ip = IpAddr::from([192, 0, 2, 9]);
        for i in 1..=5 {
            t.record_failure(ip, None, secs(i));
        }
        t.record_success(ip, secs(6));
        // Five more in a row: still not banned (the count started again).
        for i in 7..=11 {
            assert!(matches!(
                t.record_failure(ip, None, secs(i)),
                FailureVerdict::Counted(_)
            ));
        }
        assert!(!t.is_banned(ip, secs(11)));
        assert!(matches!(
            t.record_failure(ip, None, secs(12)),
            FailureVerdict::Banned { .. }
        ));
        t.record_success(ip, secs(13));
        assert!(t.is_banned(ip, secs(13)), "a success does not lift a ban");
    }

    #[test]
    fn bans_after_more_than_five_and_expires() {
        let t = tracker();
        let ip = IpAddr::from([192, 0, 2, 1]);
        for i in 1..=5 {
            assert_eq!(
                t.record_failure(ip, None, secs(i)),
                FailureVerdict::Counted(i as u32)
            );
            assert!(!t.is_banned(ip, secs(i)));
        }
        assert_eq!(
            t.record_failure(ip, None, secs(6)),
            FailureVerdict::Banned { until: secs(306) }
        );
        assert!(t.is_banned(ip, secs(305)));
        assert_eq!(t.list(secs(10)), [(ip, secs(306))]);
        assert!(!t.is_banned(ip, secs(306)));
        assert!(t.list(secs(306)).is_empty());
        // After the ban, counting starts over.
        assert_eq!(
            t.record_failure(ip, None, secs(400)),
            FailureVerdict::Counted(1)
        );
    }

    #[test]
    fn unban_and_trusted_networks() {
        let t = tracker();
        let ip = IpAddr::from([192, 0, 2, 1]);
        for i in 0..6 {
            t.record_failure(ip, None, secs(i));
        }
        assert!(t.is_banned(ip, secs(7)));
        assert!(t.unban(ip));
        assert!(!t.is_banned(ip, secs(7)));
        assert!(!t.unban(ip));
        let mut t = t;
        t.trust(IpNet::parse("10.0.0.0/8").unwrap());
        let inside = IpAddr::from([10, 1, 2, 3]);
        for i in 0..100 {
            assert_eq!(
                t.record_failure(inside, None, secs(i)),
                FailureVerdict::Trusted
            );
        }
        assert!(!t.is_banned(inside, secs(100)));
    }

    #[test]
    fn manual_ban_replaces_and_ends() {
        let t = tracker();
        let ip = IpAddr::from([198, 51, 100, 7]);
        assert_eq!(
            t.ban(ip, secs(60), secs(10)),
            FailureVerdict::Banned { until: secs(70) }
        );
        assert!(t.is_banned(ip, secs(69)));
        assert!(!t.is_banned(ip, secs(70)));
        assert_eq!(t.list(secs(11)), [(ip, secs(70))]);
        // A second ban replaces the first (shorter or longer).
        t.ban(ip, secs(5), secs(20));
        assert_eq!(t.list(secs(21)), [(ip, secs(25))]);
        // A failure while banned does not extend it; unban lifts it.
        assert_eq!(
            t.record_failure(ip, None, secs(21)),
            FailureVerdict::Banned { until: secs(25) }
        );
        assert!(t.unban(ip));
        assert!(!t.is_banned(ip, secs(21)));
        let mut t = t;
        t.trust(IpNet::parse("198.51.100.0/24").unwrap());
        assert_eq!(t.ban(ip, secs(60), secs(30)), FailureVerdict::Trusted);
        assert!(t.list(secs(30)).is_empty());
    }

    #[test]
    fn manual_bans_survive_a_flood_of_sources() {
        let cfg = BanConfig {
            capacity: 64,
            ..BanConfig::default()
        };
        let t = FailureTracker::with_seeds(cfg, [1, 2, 3, 4]);
        let ip = IpAddr::from([203, 0, 113, 1]);
        t.ban(ip, secs(600), secs(0));
        for i in 0..10_000u32 {
            t.record_failure(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), None, secs(1));
        }
        assert!(t.is_banned(ip, secs(2)), "eviction keeps bans");
        assert!(t.tracked() <= t.ips.fold(0, |n, s| n + s.map.capacity()));
    }

    #[test]
    fn per_user() {
        let cfg = BanConfig {
            user_capacity: 16,
            ..BanConfig::default()
        };
        let t = FailureTracker::with_seeds(cfg, [1, 2, 3, 4]);
        for i in 0..6u8 {
            t.record_failure(
                IpAddr::from([198, 51, 100, i]),
                Some("alice"),
                secs(u64::from(i)),
            );
        }
        assert!(t.is_user_banned("alice", secs(10)));
        assert!(!t.is_user_banned("bob", secs(10)));
        assert!(t.unban_user("alice"));
    }

    #[test]
    fn ipnet() {
        let n = IpNet::parse("2001:db8::/32").unwrap();
        assert!(n.contains("2001:db8::1".parse().unwrap()));
        assert!(!n.contains("2001:db9::1".parse().unwrap()));
        assert!(!n.contains(IpAddr::from([1, 2, 3, 4])));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains(IpAddr::from([1, 2, 3, 4]))
        );
        assert!(
            IpNet::parse("1.2.3.4")
                .unwrap()
                .contains(IpAddr::from([1, 2, 3, 4]))
        );
        assert!(IpNet::parse("1.2.3.4/33").is_none());
        assert!(IpNet::parse("x/1").is_none());
        for text in ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"] {
            let n = IpNet::parse(text).unwrap();
            assert_eq!(n.to_string(), text);
            assert_eq!(IpNet::parse(&n.to_string()), Some(n));
        }
        assert_eq!(IpNet::parse("::1").unwrap().to_string(), "::1/128");
    }
}
