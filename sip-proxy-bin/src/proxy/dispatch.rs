//! Upstream sets (Kamailio's `dispatcher`): which destination of a set takes a new request
//! (round-robin, weighted, hash over Call-ID or From user), failover to the next one, and
//! health: OPTIONS probes mark destinations down and up, with a log line on each change
//! (`dispatcher:dst-down` / `dispatcher:dst-up`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::{Algorithm, DispatchRule, UpstreamConfig};

/// One destination of a set.
#[derive(Debug)]
pub struct Destination {
    /// Where it is.
    pub addr: SocketAddr,
    /// Weight (weighted algorithm).
    pub weight: u32,
    up: AtomicBool,
    /// Taken out of service by an operator (`sip-proxy ctl upstream disable`): never chosen,
    /// still probed.
    disabled: AtomicBool,
    /// Consecutive failed probes / requests.
    failures: AtomicU64,
}

impl Destination {
    fn new(addr: SocketAddr, weight: u32) -> Self {
        Destination {
            addr,
            weight,
            up: AtomicBool::new(true),
            disabled: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }
    }

    /// Whether it answers (the last probe or request to it got an answer; up until told
    /// otherwise).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether an operator took it out of service.
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Whether it takes requests: up and not disabled.
    pub fn is_usable(&self) -> bool {
        self.is_up() && !self.is_disabled()
    }

    /// Probes and requests that failed in a row (0 after any answer).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// An upstream set.
#[derive(Debug)]
pub struct Set {
    /// Name.
    pub name: String,
    /// Destinations.
    pub destinations: Vec<Destination>,
    /// How a destination is chosen.
    pub algorithm: Algorithm,
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

/// The sets and rules in force: replaced as a whole by a reload.
#[derive(Debug)]
pub struct Table {
    sets: Vec<Set>,
    rules: Vec<DispatchRule>,
    /// Next probe time per set (monotonic).
    probes: Mutex<Vec<Duration>>,
}

impl Table {
    /// The sets.
    pub fn sets(&self) -> &[Set] {
        &self.sets
    }

    /// The rules choosing a set.
    pub fn rules(&self) -> &[DispatchRule] {
        &self.rules
    }

    fn build(sets: &[UpstreamConfig], rules: &[DispatchRule]) -> Self {
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
                        .map(|(t, w)| Destination::new(t.addr, *w))
                        .collect(),
                    algorithm: u.algorithm,
                    next: AtomicUsize::new(0),
                    probe_interval: Duration::from_secs(u.probe_interval),
                    schedule,
                }
            })
            .collect();
        let probes = Mutex::new(vec![Duration::ZERO; sets.len()]);
        Table {
            sets,
            rules: rules.to_vec(),
            probes,
        }
    }
}

/// What [`Dispatcher::reload`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Sets in the new table.
    pub sets: usize,
    /// Destinations in the new table.
    pub destinations: usize,
    /// Destinations (by set and address) that were in the old table: their state (up or
    /// down, disabled, failures) carried over.
    pub kept: usize,
}

/// Every set and the rules choosing one.
#[derive(Debug)]
pub struct Dispatcher {
    table: ArcSwap<Table>,
}

/// Which request a destination is chosen for.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Call-ID.
    pub call_id: &'a str,
    /// From user.
    pub from_user: &'a [u8],
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why an operator's change of a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetStateError {
    /// No set of that name.
    #[error("no upstream set named `{0}`")]
    NoSet(String),
    /// The set has no such destination.
    #[error("upstream set `{set}` has no destination {addr}")]
    NoDestination {
        /// The set.
        set: String,
        /// The address asked for.
        addr: SocketAddr,
    },
}

impl Dispatcher {
    /// Sets and rules from the configuration.
    pub fn new(sets: &[UpstreamConfig], rules: &[DispatchRule]) -> Self {
        Dispatcher {
            table: ArcSwap::from_pointee(Table::build(sets, rules)),
        }
    }

    /// The table in force (a snapshot: a reload meanwhile does not change it).
    pub fn table(&self) -> Arc<Table> {
        self.table.load_full()
    }

    /// Whether there is no set at all.
    pub fn is_empty(&self) -> bool {
        self.table.load().sets.is_empty()
    }

    /// Replaces the sets and rules. A destination of a set of the same name and address as
    /// before keeps its state (up or down, disabled by an operator, failures), a set keeps
    /// its round-robin position and probe schedule; new ones start up and are probed at the
    /// next timer. Requests already routed keep their destinations (failover goes on by
    /// address).
    pub fn reload(&self, sets: &[UpstreamConfig], rules: &[DispatchRule]) -> Reloaded {
        let old = self.table.load_full();
        let new = Table::build(sets, rules);
        let mut done = Reloaded {
            sets: new.sets.len(),
            ..Reloaded::default()
        };
        {
            let old_probes = lock(&old.probes);
            let mut probes = lock(&new.probes);
            for (i, s) in new.sets.iter().enumerate() {
                done.destinations += s.destinations.len();
                let Some(j) = old.sets.iter().position(|o| o.name == s.name) else {
                    continue;
                };
                let o = &old.sets[j];
                s.next
                    .store(o.next.load(Ordering::Relaxed), Ordering::Relaxed);
                if o.probe_interval == s.probe_interval {
                    probes[i] = old_probes.get(j).copied().unwrap_or_default();
                }
                for d in &s.destinations {
                    if let Some(od) = o.destinations.iter().find(|x| x.addr == d.addr) {
                        d.up.store(od.is_up(), Ordering::Relaxed);
                        d.disabled.store(od.is_disabled(), Ordering::Relaxed);
                        d.failures.store(od.failures(), Ordering::Relaxed);
                        done.kept += 1;
                    }
                }
            }
        }
        self.table.store(Arc::new(new));
        done
    }

    /// The set a rule picks for a Request-URI user and host: the longest matching user
    /// prefix, else a rule naming the host as domain.
    pub fn set_for(&self, user: Option<&[u8]>, host: &str) -> Option<usize> {
        let t = self.table.load();
        let by_prefix = t
            .rules
            .iter()
            .filter(|r| {
                user.is_some_and(|u| u.starts_with(r.matches.as_bytes()))
                    && !r.matches.contains('.')
            })
            .max_by_key(|r| r.matches.len());
        let rule = by_prefix.or_else(|| {
            t.rules
                .iter()
                .find(|r| r.matches.eq_ignore_ascii_case(host))
        })?;
        t.sets.iter().position(|s| s.name == rule.upstream)
    }

    /// The index of the set named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.table.load().sets.iter().position(|s| s.name == name)
    }

    /// Destinations of set `set` in the order to try them for this request: the one the
    /// algorithm picks first, then the others that are up (failover order), then — only if
    /// every one is down — all of them (better to try than to refuse). Destinations an
    /// operator disabled are never tried. (A set index from before a reload may name
    /// another set or none: the request then goes there or gets a 503, once.)
    pub fn order(&self, set: usize, key: Key<'_>) -> Vec<SocketAddr> {
        let t = self.table.load();
        let Some(s) = t.sets.get(set) else {
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
        let rotated = || (0..n).map(|i| &s.destinations[(first + i) % n]);
        let mut up: Vec<SocketAddr> = rotated()
            .filter(|d| d.is_usable())
            .map(|d| d.addr)
            .collect();
        if up.is_empty() {
            up = rotated()
                .filter(|d| !d.is_disabled())
                .map(|d| d.addr)
                .collect();
        }
        up
    }

    /// Whether `addr` is one of the upstream destinations (its requests are trusted).
    pub fn is_upstream(&self, addr: SocketAddr) -> bool {
        self.table
            .load()
            .sets
            .iter()
            .flat_map(|s| &s.destinations)
            .any(|d| d.addr == addr || d.addr.ip() == addr.ip() && d.addr.port() == addr.port())
    }

    /// A probe or request to `addr` got an answer: up again if it was down.
    pub fn success(&self, addr: SocketAddr) -> Vec<(String, SocketAddr, Change)> {
        let t = self.table.load();
        let mut changes = Vec::new();
        for (s, d) in find(&t, addr) {
            d.failures.store(0, Ordering::Relaxed);
            if !d.up.swap(true, Ordering::Relaxed) {
                changes.push((s.name.clone(), d.addr, Change::Up));
            }
        }
        changes
    }

    /// A probe or request to `addr` timed out (or failed in transport): down.
    pub fn failure(&self, addr: SocketAddr) -> Vec<(String, SocketAddr, Change)> {
        let t = self.table.load();
        let mut changes = Vec::new();
        for (s, d) in find(&t, addr) {
            d.failures.fetch_add(1, Ordering::Relaxed);
            if d.up.swap(false, Ordering::Relaxed) {
                changes.push((s.name.clone(), d.addr, Change::Down));
            }
        }
        changes
    }

    /// An operator puts destination `addr` of set `set` in service (`enabled`) or takes it
    /// out. Returns whether that changed anything.
    pub fn set_enabled(
        &self,
        set: &str,
        addr: SocketAddr,
        enabled: bool,
    ) -> Result<bool, SetStateError> {
        let t = self.table.load();
        let s = t
            .sets
            .iter()
            .find(|s| s.name == set)
            .ok_or_else(|| SetStateError::NoSet(set.to_owned()))?;
        let d = s
            .destinations
            .iter()
            .find(|d| d.addr == addr)
            .ok_or_else(|| SetStateError::NoDestination {
                set: set.to_owned(),
                addr,
            })?;
        Ok(d.disabled.swap(!enabled, Ordering::Relaxed) == enabled)
    }

    /// Destinations due for an OPTIONS probe at `now` (monotonic).
    pub fn due_probes(&self, now: Duration) -> Vec<SocketAddr> {
        let t = self.table.load();
        let mut next = lock(&t.probes);
        let mut due = Vec::new();
        for (i, s) in t.sets.iter().enumerate() {
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
        let t = self.table.load();
        let next = lock(&t.probes);
        t.sets
            .iter()
            .zip(next.iter())
            .filter(|(s, _)| !s.probe_interval.is_zero())
            .map(|(_, t)| *t)
            .min()
    }
}

fn find(t: &Table, addr: SocketAddr) -> impl Iterator<Item = (&Set, &Destination)> {
    t.sets
        .iter()
        .flat_map(|s| s.destinations.iter().map(move |d| (s, d)))
        .filter(move |(_, d)| d.addr == addr)
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
    fn disabled_destinations_are_never_chosen_but_keep_their_health() {
        let d = Dispatcher::new(&[set("a", 3, Algorithm::RoundRobin, vec![])], &[]);
        let b: SocketAddr = "127.0.0.1:6001".parse().unwrap();
        assert_eq!(d.set_enabled("a", b, false), Ok(true));
        assert_eq!(d.set_enabled("a", b, false), Ok(false));
        assert!((0..6).all(|_| !d.order(0, KEY).contains(&b)));
        // A probe answer marks it up, but it stays out of service.
        d.failure(b);
        assert_eq!(d.success(b)[0].2, Change::Up);
        assert!((0..6).all(|_| !d.order(0, KEY).contains(&b)));
        // Every other one down: still not tried.
        d.failure("127.0.0.1:6000".parse().unwrap());
        d.failure("127.0.0.1:6002".parse().unwrap());
        assert_eq!(d.order(0, KEY).len(), 2);
        assert_eq!(d.set_enabled("a", b, true), Ok(true));
        assert_eq!(d.order(0, KEY), [b]);
        assert!(matches!(
            d.set_enabled("x", b, true),
            Err(SetStateError::NoSet(_))
        ));
        assert!(matches!(
            d.set_enabled("a", "127.0.0.1:9".parse().unwrap(), true),
            Err(SetStateError::NoDestination { .. })
        ));
    }

    #[test]
    fn reload_keeps_the_state_of_what_stays() {
        let d = Dispatcher::new(&[set("a", 2, Algorithm::RoundRobin, vec![])], &[]);
        let (x, y): (SocketAddr, SocketAddr) = (
            "127.0.0.1:6000".parse().unwrap(),
            "127.0.0.1:6001".parse().unwrap(),
        );
        d.failure(x);
        d.set_enabled("a", y, false).unwrap();
        // a: 6000..6002 now (one more), b new; the rule names b.
        let r = d.reload(
            &[
                set("a", 3, Algorithm::RoundRobin, vec![]),
                set("b", 1, Algorithm::RoundRobin, vec![]),
            ],
            &["+1=b".parse().unwrap()],
        );
        assert_eq!(
            r,
            Reloaded {
                sets: 2,
                destinations: 4,
                kept: 2
            }
        );
        let t = d.table();
        let a = &t.sets()[0];
        assert!(!a.destinations[0].is_up());
        assert_eq!(a.destinations[0].failures(), 1);
        assert!(a.destinations[1].is_disabled());
        assert!(a.destinations[2].is_usable());
        assert_eq!(d.set_for(Some(b"+1555"), "x"), Some(1));
        assert!(d.is_upstream("127.0.0.1:6002".parse().unwrap()));
        // Both sets are probed at once (b is new; a keeps its schedule, which was due).
        assert_eq!(d.due_probes(Duration::ZERO).len(), 4);
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
