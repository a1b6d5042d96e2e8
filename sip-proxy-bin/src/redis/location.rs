//! [`RedisLocation`]: the location service in Redis, shared by every node, with a local
//! read cache kept honest by pub/sub.
//!
//! # Keys
//!
//! One hash per address-of-record, `PREFIX:loc:{AOR}` (the AOR in braces is the Redis
//! Cluster hash tag: a key per AOR, so each AOR lives in one slot and every write is a
//! single-key script). Field `v` holds the AOR's version (a random non-zero 64-bit number
//! drawn for each write, so that a version is never reused even after the key expired and
//! came back), fields `1`, `2`, … the bindings in `sip-location`'s binary format
//! ([`Binding::as_bytes`]). The key expires (`PEXPIREAT`) when its last binding does, so an
//! AOR nobody refreshes disappears by itself; a lookup drops bindings already expired.
//!
//! # Writes
//!
//! [`LocationStore::apply`] reads the hash, computes the new binding set here (the same rules
//! as `sip_location::MemoryStore`), and writes it with one script that replaces the hash only
//! if `v` is still the version read (compare-and-set: two nodes writing the same AOR never
//! lose a write; an unconditional write that lost the race is redone, a conditional one
//! answers [`StoreError::Conflict`]) and publishes the AOR on `PREFIX:loc` in the same
//! script.
//!
//! # The cache and its bound
//!
//! Each node keeps the snapshots it read, at most [`CacheConfig::max_entries`] of them, and
//! serves a lookup from its cache for at most [`CacheConfig::ttl`] after reading it. Every
//! write published on `PREFIX:loc` drops the AOR from every node's cache as soon as the
//! message arrives (well under a millisecond on a LAN), and while the subscription is down
//! the cache is dropped whole on each reconnection, so a lookup is never older than `ttl`
//! while Redis is reachable. When Redis is not reachable, a lookup is answered from the
//! cache whatever its age (the node keeps routing the users it knows; bindings past their
//! expiry are dropped as usual); a write fails ([`StoreError::Unavailable`], a 503 with
//! Retry-After for the REGISTER).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redis::{Cmd, Script};
use sip_location::{
    Applied, Binding, Changes, Counts, Cursor, Event, LocationStore, Merged, Snapshot, StoreError,
    Version, merge,
};

use super::pool::{Error, Pool};

/// Cache shards (one lock each).
const SHARDS: usize = 16;

/// Local read cache settings.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Longest a cached snapshot answers a lookup while Redis is reachable (zero: no cache,
    /// every lookup asks Redis; the cache still answers while Redis is unreachable).
    pub ttl: Duration,
    /// Most AORs cached (beyond, an arbitrary entry of the shard is dropped).
    pub max_entries: usize,
}

struct Cached {
    snapshot: Snapshot,
    at: Instant,
}

/// The replace-if-version script. KEYS[1] the AOR's hash; ARGV: expected version (`0`:
/// absent), new version, expiry (Unix ms), channel, AOR, then the bindings.
const APPLY: &str = r"
local cur = redis.call('HGET', KEYS[1], 'v') or '0'
if cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if #ARGV > 5 then
  local args = {'v', ARGV[2]}
  for i = 6, #ARGV do
    args[#args + 1] = tostring(i - 5)
    args[#args + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(args))
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// Conflicts redone for one unconditional write before giving up with a conflict.
const MAX_RETRIES: usize = 8;

/// The location service in Redis (see the module documentation).
pub struct RedisLocation {
    pool: std::sync::Arc<Pool>,
    prefix: String,
    channel: String,
    cache: CacheConfig,
    shards: Vec<Mutex<HashMap<String, Cached>>>,
    hasher: RandomState,
    script: Script,
    max_per_aor: usize,
    counts: Mutex<Option<(Instant, Counts)>>,
}

impl std::fmt::Debug for RedisLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocation")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: Error) -> StoreError {
    match e {
        Error::Unavailable(t) => StoreError::Unavailable(t.into()),
        Error::Backend(b) => StoreError::Backend(Box::new(b)),
    }
}

/// The key of an AOR's hash.
pub(super) fn key(prefix: &str, aor: &str) -> String {
    format!("{prefix}:loc:{{{aor}}}")
}

/// The AOR of a key written by [`key`].
fn aor_of<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    key.strip_prefix(prefix)?
        .strip_prefix(":loc:{")?
        .strip_suffix('}')
}

/// Decodes an `HGETALL` answer (field, value, field, value…) into the version and bindings.
fn decode(aor: &str, flat: Vec<Vec<u8>>) -> Result<(Version, Vec<Binding>), StoreError> {
    let mut version = Version::ABSENT;
    let mut bindings = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        if field == b"v" {
            version = Version(
                std::str::from_utf8(&value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            );
        } else {
            let b = Binding::from_bytes(&value).map_err(|source| StoreError::Corrupt {
                aor: aor.to_owned(),
                source,
            })?;
            bindings.push(b);
        }
    }
    Ok((version, bindings))
}

fn read(key: &str) -> Cmd {
    let mut c = ::redis::cmd("HGETALL");
    c.arg(key);
    c
}

/// Bits of a [`Cursor`] holding the `SCAN` cursor of one node; the bits above number the
/// node (a cluster's masters in address order).
const NODE_SHIFT: u32 = 48;

impl RedisLocation {
    /// A store on `pool` under `prefix`, at most `max_per_aor` bindings per AOR.
    pub fn new(
        pool: std::sync::Arc<Pool>,
        prefix: &str,
        cache: CacheConfig,
        max_per_aor: usize,
    ) -> Self {
        RedisLocation {
            pool,
            prefix: prefix.to_owned(),
            channel: channel(prefix),
            cache,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            script: Script::new(APPLY),
            max_per_aor,
            counts: Mutex::new(None),
        }
    }

    fn shard(&self, aor: &str) -> &Mutex<HashMap<String, Cached>> {
        let i = usize::try_from(self.hasher.hash_one(aor)).unwrap_or(0) % SHARDS;
        &self.shards[i]
    }

    /// Drops an AOR from the cache (another node wrote it).
    pub fn invalidate(&self, aor: &str) {
        if let Ok(mut s) = self.shard(aor).lock() {
            s.remove(aor);
        }
    }

    /// Drops the whole cache (the subscription was down: invalidations may be lost).
    pub fn invalidate_all(&self) {
        for s in &self.shards {
            if let Ok(mut s) = s.lock() {
                s.clear();
            }
        }
    }

    /// AORs cached.
    pub fn cached(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    fn remember(&self, aor: &str, snapshot: &Snapshot) {
        if self.cache.max_entries == 0 {
            return;
        }
        let per_shard = self.cache.max_entries.div_ceil(SHARDS);
        if let Ok(mut s) = self.shard(aor).lock() {
            if s.len() >= per_shard && !s.contains_key(aor) {
                if let Some(k) = s.keys().next().cloned() {
                    s.remove(&k);
                }
            }
            s.insert(
                aor.to_owned(),
                Cached {
                    snapshot: snapshot.clone(),
                    at: Instant::now(),
                },
            );
        }
    }

    fn cached_snapshot(&self, aor: &str, now: Duration, any_age: bool) -> Option<Snapshot> {
        let s = self.shard(aor).lock().ok()?;
        let c = s.get(aor)?;
        if !any_age && c.at.elapsed() >= self.cache.ttl {
            return None;
        }
        let live = c
            .snapshot
            .bindings()
            .iter()
            .filter(|b| !b.is_expired(now))
            .cloned();
        Some(Snapshot::new(c.snapshot.version, live))
    }

    /// Every binding (expired ones too) of a cached snapshot at `version`, if cached.
    fn cached_version(&self, aor: &str, version: Version) -> Option<Vec<Binding>> {
        let s = self.shard(aor).lock().ok()?;
        let c = s.get(aor).filter(|c| c.snapshot.version == version)?;
        Some(c.snapshot.bindings().to_vec())
    }

    /// Reads an AOR from Redis: its version and every stored binding (expired ones too).
    fn fetch(&self, aor: &str) -> Result<(Version, Vec<Binding>), StoreError> {
        let k = key(&self.prefix, aor);
        let cmd = read(&k);
        let flat = self.pool.run(|c| cmd.query(c)).map_err(unavailable)?;
        decode(aor, flat)
    }

    /// One compare-and-set attempt: `Ok(None)` when the version moved.
    fn try_apply(
        &self,
        changes: &Changes,
        read_version: Version,
        old: Vec<Binding>,
        now: Duration,
    ) -> Result<Option<Applied>, StoreError> {
        let name: std::sync::Arc<str> = std::sync::Arc::from(changes.aor.as_str());
        let Merged { live, events } = merge(&name, old, &changes.ops, now);
        if live.len() > self.max_per_aor {
            return Err(StoreError::TooManyBindings {
                aor: changes.aor.clone(),
                limit: self.max_per_aor,
            });
        }
        let version = if live.is_empty() {
            Version::ABSENT
        } else {
            Version(random_version())
        };
        let expire_ms = live
            .iter()
            .map(Binding::expires_at)
            .max()
            .unwrap_or(0)
            .saturating_mul(1000);
        let k = key(&self.prefix, &changes.aor);
        let mut inv = self.script.key(&k);
        inv.arg(read_version.0)
            .arg(version.0)
            .arg(expire_ms)
            .arg(&self.channel)
            .arg(&changes.aor);
        for b in &live {
            inv.arg(b.as_bytes());
        }
        let done: i64 = self.pool.run(|c| inv.invoke(c)).map_err(unavailable)?;
        if done == 0 {
            return Ok(None);
        }
        self.invalidate(&changes.aor);
        Ok(Some(Applied { version, events }))
    }
}

/// A fresh non-zero version.
fn random_version() -> u64 {
    let mut b = [0u8; 8];
    sip_parser::Random::fill(&mut sip_parser::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b).max(1)
}

/// The invalidation channel under `prefix`.
pub(super) fn channel(prefix: &str) -> String {
    format!("{prefix}:loc")
}

impl LocationStore for RedisLocation {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        if let Some(s) = self.cached_snapshot(aor, now, false) {
            return Ok(s);
        }
        match self.fetch(aor) {
            Ok((version, bindings)) => {
                let snapshot = Snapshot::new(version, bindings);
                self.remember(aor, &snapshot);
                let live = snapshot
                    .bindings()
                    .iter()
                    .filter(|b| !b.is_expired(now))
                    .cloned();
                Ok(Snapshot::new(version, live))
            }
            Err(StoreError::Unavailable(e)) => self
                .cached_snapshot(aor, now, true)
                .ok_or(StoreError::Unavailable(e)),
            Err(e) => Err(e),
        }
    }

    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        // The registrar just looked the AOR up: when the cache holds that very version, its
        // bindings are what Redis holds unless the version moved, which the
        // compare-and-set script checks anyway. One round trip saved per REGISTER.
        let cached = changes
            .expected
            .and_then(|v| self.cached_version(&changes.aor, v));
        if let Some(old) = cached {
            let expected = changes.expected.unwrap_or_default();
            if changes.ops.is_empty() {
                return Ok(Applied {
                    version: expected,
                    events: Vec::new(),
                });
            }
            if let Some(a) = self.try_apply(changes, expected, old, now)? {
                return Ok(a);
            }
            self.invalidate(&changes.aor);
            return Err(StoreError::Conflict {
                aor: changes.aor.clone(),
            });
        }
        for _ in 0..MAX_RETRIES {
            let (version, old) = self.fetch(&changes.aor)?;
            if let Some(expected) = changes.expected {
                if expected != version {
                    // The caller read a stale snapshot (from the cache): its next lookup
                    // must see this one.
                    self.invalidate(&changes.aor);
                    return Err(StoreError::Conflict {
                        aor: changes.aor.clone(),
                    });
                }
            }
            if changes.ops.is_empty() {
                return Ok(Applied {
                    version,
                    events: Vec::new(),
                });
            }
            if let Some(a) = self.try_apply(changes, version, old, now)? {
                return Ok(a);
            }
            if changes.expected.is_some() {
                break;
            }
        }
        self.invalidate(&changes.aor);
        Err(StoreError::Conflict {
            aor: changes.aor.clone(),
        })
    }

    /// Nothing to do: a key expires in Redis with its last binding, and lookups drop the
    /// bindings already past their expiry. No [`EventKind::Expired`](sip_location::EventKind::Expired) events are reported.
    fn expire(&self, _now: Duration, _max: usize) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }

    /// Counted with `SCAN` over the AOR keys of every master (and `HLEN`), at most once per
    /// 10 s: the figure may be that old.
    fn counts(&self) -> Result<Counts, StoreError> {
        if let Ok(c) = self.counts.lock() {
            if let Some((at, counts)) = *c {
                if at.elapsed() < Duration::from_secs(10) {
                    return Ok(counts);
                }
            }
        }
        let pattern = format!("{}:loc:{{*", self.prefix);
        let mut counts = Counts::default();
        self.pool
            .scan_keys(&pattern, 1000, |c, keys| {
                let cmds: Vec<Cmd> = keys
                    .iter()
                    .map(|k| {
                        let mut c = ::redis::cmd("HLEN");
                        c.arg(k);
                        c
                    })
                    .collect();
                for v in c.query_all(&cmds)? {
                    let n: usize = ::redis::from_redis_value(v)?;
                    counts.aors += usize::from(n > 1);
                    counts.bindings += n.saturating_sub(1);
                }
                Ok(())
            })
            .map_err(unavailable)?;
        if let Ok(mut c) = self.counts.lock() {
            *c = Some((Instant::now(), counts));
        }
        Ok(counts)
    }

    /// One `SCAN` step on one master: the cursor numbers the master in its top bits (a
    /// cluster whose masters change between two calls may see an AOR twice or miss one).
    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        let pattern = format!("{}:loc:{{*", self.prefix);
        let masters = self.pool.masters().map_err(unavailable)?;
        let node = usize::try_from(cursor.0 >> NODE_SHIFT).unwrap_or(usize::MAX);
        let Some(info) = masters.get(node) else {
            return Ok(None);
        };
        let mut conn = self.pool.open(info).map_err(unavailable)?;
        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor.0 & ((1 << NODE_SHIFT) - 1))
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(max_aors.max(1))
            .query(&mut conn)
            .map_err(|e| unavailable(self.pool.error(&e)))?;
        if next >> NODE_SHIFT != 0 {
            return Err(StoreError::Unavailable(
                format!("SCAN cursor {next} beyond {NODE_SHIFT} bits").into(),
            ));
        }
        let cmds: Vec<Cmd> = keys.iter().map(|k| read(k)).collect();
        let values = self.pool.run(|c| c.query_all(&cmds)).map_err(unavailable)?;
        for (k, v) in keys.iter().zip(values) {
            let Some(aor) = aor_of(&self.prefix, k) else {
                continue;
            };
            let flat: Vec<Vec<u8>> = ::redis::from_redis_value(v)
                .map_err(|e| StoreError::Backend(Box::new(::redis::RedisError::from(e))))?;
            let (version, bindings) = decode(aor, flat)?;
            let s = Snapshot::new(version, bindings.into_iter().filter(|b| !b.is_expired(now)));
            if !s.is_empty() {
                visit(aor, s.bindings());
            }
        }
        let node = cursor.0 >> NODE_SHIFT;
        Ok(if next != 0 {
            Some(Cursor(node << NODE_SHIFT | next))
        } else if usize::try_from(node + 1).is_ok_and(|n| n < masters.len()) {
            Some(Cursor((node + 1) << NODE_SHIFT))
        } else {
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_aor_as_hash_tag() {
        let k = key("sp", "sip:alice@example.com");
        assert_eq!(k, "sp:loc:{sip:alice@example.com}");
        assert_eq!(aor_of("sp", &k), Some("sip:alice@example.com"));
        assert_eq!(aor_of("sp", "sp:dlg:{x}"), None);
    }

    #[test]
    fn decode_reads_version_and_bindings() {
        let b = Binding::new(&sip_location::BindingFields::new("sip:a@192.0.2.1", 100)).unwrap();
        let flat = vec![
            b"v".to_vec(),
            b"42".to_vec(),
            b"1".to_vec(),
            b.as_bytes().to_vec(),
        ];
        let (v, bs) = decode("sip:a@example.com", flat).unwrap();
        assert_eq!(v, Version(42));
        assert_eq!(bs, [b]);
        let bad = vec![b"1".to_vec(), b"junk".to_vec()];
        assert!(matches!(
            decode("sip:a@example.com", bad),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
