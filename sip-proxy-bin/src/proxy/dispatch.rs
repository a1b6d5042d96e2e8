//! Upstream sets (Kamailio's `dispatcher`): which destination of a set takes a new request
//! (round-robin, weighted, hash over Call-ID or From user), failover to the next one, and
//! health: OPTIONS probes mark destinations down and up, with a log line on each change
//! (`dispatcher:dst-down` / `dispatcher:dst-up`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::{Algorithm, DispatchRule, UpstreamConfig};

/// One destination of a set.
#[derive(Debug)]
pub struct Destination {
    /// Where it is.
    pub addr: SocketAddr,
    /// Weight (weighted algorithm).
    pub weight: u32,
    up: AtomicBool,
    /// Consecutive failed probes / requests.
    failures: AtomicU64,
}

impl Destination {
    /// Whether it takes requests.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// An upstream set.
#[derive(Debug)]
pub struct Set {
    /// Name.
    pub name: String,
    /// Destinations.
    pub destinations: Vec<Destination>,
    algorithm: Algorithm,
    next: AtomicUsize,
    /// Probe interval (zero: never).
    pub probe_interval: Duration,
    /// Weighted schedule: destination indices repeated by weight.
    schedule: Vec<usize>,
}

/// A change of a destination's state, for the log and the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It stopped answering.
    Down,
    /// It answers again.
    Up,
}

/// Every set and the rules choosing one.
#[derive(Debug)]
pub struct Dispatcher {
    sets: Vec<Set>,
    rules: Vec<DispatchRule>,
    /// Next probe time per set (monotonic).
    probes: Mutex<Vec<Duration>>,
}

/// Which request a destination is chosen for.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Call-ID.
    pub call_id: &'a str,
    /// From user.
    pub from_user: &'a [u8],
}

impl Dispatcher {
    /// Sets and rules from the configuration.
    pub fn new(sets: &[UpstreamConfig], rules: &[DispatchRule]) -> Self {
        let sets: Vec<Set> = sets
            .iter()
            .map(|u| {
                let weights: Vec<u32> = if u.weights.len() == u.targets.len() {
                    u.weights.clone()
                } else {
                    vec![1; u.targets.len()]
                };
                let mut schedule = Vec::new();
                // Smooth interleaving: round by round, each destination once per unit of
                // weight it still has.
                let max = weights.iter().copied().max().unwrap_or(1);
                for round in 0..max {
                    for (i, w) in weights.iter().enumerate() {
                        if *w > round {
                            schedule.push(i);
                        }
                    }
                }
                Set {
                    name: u.name.clone(),
                    destinations: u
                        .targets
                        .iter()
                        .zip(&weights)
                        .map(|(t, w)| Destination {
                            addr: t.addr,
                            weight: *w,
                            up: AtomicBool::new(true),
                            failures: AtomicU64::new(0),
                        })
                        .collect(),
                    algorithm: u.algorithm,
                    next: AtomicUsize::new(0),
                    probe_interval: Duration::from_secs(u.probe_interval),
                    schedule,
                }
            })
            .collect();
        let probes = Mutex::new(vec![Duration::ZERO; sets.len()]);
        Dispatcher {
            sets,
            rules: rules.to_vec(),
            probes,
        }
    }

    /// The sets.
    pub fn sets(&self) -> &[Set] {
        &self.sets
    }

    /// The set a rule picks for a Request-URI user and host: the longest matching user
    /// prefix, else a rule naming the host as domain.
    pub fn set_for(&self, user: Option<&[u8]>, host: &str) -> Option<usize> {
        let by_prefix = self
            .rules
            .iter()
            .filter(|r| {
                user.is_some_and(|u| u.starts_with(r.matches.as_bytes()))
                    && !r.matches.contains('.')
            })
            .max_by_key(|r| r.matches.len());
        let rule = by_prefix.or_else(|| {
            self.rules
                .iter()
                .find(|r| r.matches.eq_ignore_ascii_case(host))
        })?;
        self.index(&rule.upstream)
    }

    /// The index of the set named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.sets.iter().position(|s| s.name == name)
    }

    /// Destinations of set `set` in the order to try them for this request: the one the
    /// algorithm picks first, then the others that are up (failover order), then — only if
    /// every one is down — all of them (better to try than to refuse).
    pub fn order(&self, set: usize, key: Key<'_>) -> Vec<SocketAddr> {
        let Some(s) = self.sets.get(set) else {
            return Vec::new();
        };
        let n = s.destinations.len();
        if n == 0 {
            return Vec::new();
        }
        let first = match s.algorithm {
            Algorithm::RoundRobin => s.next.fetch_add(1, Ordering::Relaxed) % n,
            Algorithm::Weighted => {
                let k = s.next.fetch_add(1, Ordering::Relaxed) % s.schedule.len().max(1);
                s.schedule.get(k).copied().unwrap_or(0)
            }
            Algorithm::HashCallId => hash_of(key.call_id.as_bytes()) % n,
            Algorithm::HashFrom => hash_of(key.from_user) % n,
        };
        let mut up: Vec<SocketAddr> = (0..n)
            .map(|i| (first + i) % n)
            .filter(|&i| s.destinations[i].is_up())
            .map(|i| s.destinations[i].addr)
            .collect();
        if up.is_empty() {
            up = (0..n)
                .map(|i| s.destinations[(first + i) % n].addr)
                .collect();
        }
        up
    }

    /// Whether `addr` is one of the upstream destinations (its requests are trusted).
    pub fn is_upstream(&self, addr: SocketAddr) -> bool {
        self.sets
            .iter()
            .flat_map(|s| &s.destinations)
            .any(|d| d.addr == addr || d.addr.ip() == addr.ip() && d.addr.port() == addr.port())
    }

    fn find(&self, addr: SocketAddr) -> impl Iterator<Item = (&Set, &Destination)> {
        self.sets
            .iter()
            .flat_map(|s| s.destinations.iter().map(move |d| (s, d)))
            .filter(move |(_, d)| d.addr == addr)
    }

    /// A probe or request to `addr` got an answer: up again if it was down.
    pub fn success(&self, addr: SocketAddr) -> Vec<(String, SocketAddr, Change)> {
        let mut changes = Vec::new();
        for (s, d) in self.find(addr) {
            d.failures.store(0, Ordering::Relaxed);
            if !d.up.swap(true, Ordering::Relaxed) {
                changes.push((s.name.clone(), d.addr, Change::Up));
            }
        }
        changes
    }

    /// A probe or request to `addr` timed out (or failed in transport): down.
    pub fn failure(&self, addr: SocketAddr) -> Vec<(String, SocketAddr, Change)> {
        let mut changes = Vec::new();
        for (s, d) in self.find(addr) {
            d.failures.fetch_add(1, Ordering::Relaxed);
            if d.up.swap(false, Ordering::Relaxed) {
                changes.push((s.name.clone(), d.addr, Change::Down));
            }
        }
        changes
    }

    /// Destinations due for an OPTIONS probe at `now` (monotonic).
    pub fn due_probes(&self, now: Duration) -> Vec<SocketAddr> {
        let mut next = self
            .probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut due = Vec::new();
        for (i, s) in self.sets.iter().enumerate() {
            if s.probe_interval.is_zero() || next[i] > now {
                continue;
            }
            next[i] = now + s.probe_interval;
            due.extend(s.destinations.iter().map(|d| d.addr));
        }
        due
    }

    /// When the next probe is due.
    pub fn next_probe(&self) -> Option<Duration> {
        let next = self
            .probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sets
            .iter()
            .zip(next.iter())
            .filter(|(s, _)| !s.probe_interval.is_zero())
            .map(|(_, t)| *t)
            .min()
    }
}

fn hash_of(b: &[u8]) -> usize {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenAddr;

    fn set(name: &str, n: u16, algorithm: Algorithm, weights: Vec<u32>) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            targets: (0..n)
                .map(|i| {
                    format!("udp:127.0.0.1:{}", 6000 + i)
                        .parse::<ListenAddr>()
                        .unwrap()
                })
                .collect(),
            algorithm,
            weights,
            probe_interval: 10,
        }
    }

    const KEY: Key<'static> = Key {
        call_id: "c",
        from_user: b"u",
    };

    #[test]
    fn round_robin_splits_evenly_and_skips_down() {
        let d = Dispatcher::new(&[set("a", 2, Algorithm::RoundRobin, vec![])], &[]);
        let firsts: Vec<u16> = (0..4).map(|_| d.order(0, KEY)[0].port()).collect();
        assert_eq!(firsts, [6000, 6001, 6000, 6001]);
        assert_eq!(d.failure("127.0.0.1:6001".parse().unwrap()).len(), 1);
        assert!((0..4).all(|_| d.order(0, KEY) == ["127.0.0.1:6000".parse().unwrap()]));
        assert_eq!(
            d.success("127.0.0.1:6001".parse().unwrap())[0].2,
            Change::Up
        );
        // All down: still try them all.
        d.failure("127.0.0.1:6000".parse().unwrap());
        d.failure("127.0.0.1:6001".parse().unwrap());
        assert_eq!(d.order(0, KEY).len(), 2);
    }

    #[test]
    fn weighted_and_hash() {
        let d = Dispatcher::new(&[set("w", 2, Algorithm::Weighted, vec![3, 1])], &[]);
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[(d.order(0, KEY)[0].port() - 6000) as usize] += 1;
        }
        assert_eq!(counts, [300, 100]);
        let d = Dispatcher::new(&[set("h", 3, Algorithm::HashCallId, vec![])], &[]);
        let a = d.order(
            0,
            Key {
                call_id: "x1",
                from_user: b"",
            },
        )[0];
        assert!((0..10).all(|_| d.order(
            0,
            Key {
                call_id: "x1",
                from_user: b""
            }
        )[0] == a));
    }

    #[test]
    fn rules_pick_the_longest_prefix_then_the_domain() {
        let sets = [
            set("a", 1, Algorithm::RoundRobin, vec![]),
            set("b", 1, Algorithm::RoundRobin, vec![]),
        ];
        let rules = [
            "+7=a".parse().unwrap(),
            "+7495=b".parse().unwrap(),
            "pbx.example.com=a".parse().unwrap(),
        ];
        let d = Dispatcher::new(&sets, &rules);
        assert_eq!(d.set_for(Some(b"+74951234"), "x"), Some(1));
        assert_eq!(d.set_for(Some(b"+7812"), "x"), Some(0));
        assert_eq!(d.set_for(Some(b"alice"), "PBX.example.com"), Some(0));
        assert_eq!(d.set_for(Some(b"alice"), "other"), None);
    }
}
