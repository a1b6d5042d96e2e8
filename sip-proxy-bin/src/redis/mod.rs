//! Several proxy nodes as one, on Redis (`--redis redis://HOST:PORT`, Valkey alike) or on a
//! Redis Cluster (`--redis-cluster redis://HOST:PORT`, repeatable seed nodes): the location
//! service ([`RedisLocation`]), tracked dialogs ([`RedisDialogs`]), the ban list and
//! failure counts, and digest replay state live in Redis, shared by every node.
//!
//! Key layout (every key starts with the configured prefix, `sp` by default). Braces are
//! Redis Cluster hash tags: every script touches the keys of one slot only, so the same
//! code runs on one server and on a cluster; batches of independent commands (the Call-ID
//! index beside a dialog, reading every dialog bucket) go through [`Conn::query_all`], a
//! cluster pipeline on a cluster.
//!
//! | key | type | what |
//! |---|---|---|
//! | `sp:loc:{AOR}` | hash | `v` = version, `1`… = bindings; expires with the last binding |
//! | `sp:loc` | channel | AORs written (other nodes drop them from their cache) |
//! | `sp:dlg:{dNN}:ID` | hash | `rev`, `timeout` (Unix ms), `cid`, `rec` (the record) of a dialog; tombstone `gone` |
//! | `sp:dlg:due:{dNN}` | sorted set | dialog id → timeout (Unix ms) of bucket `NN` = id % 64: who is due to be ended |
//! | `sp:dlg:cid:{CALL-ID}` | set | dialog ids of a Call-ID (index for in-dialog requests) |
//! | `sp:fail:{IP}` | string | failed authentications in a row from IP (expires with the window) |
//! | `sp:bans` | sorted set | IP → end of its ban (Unix ms) |
//! | `sp:ban` | channel | `IP END_MS` for each new ban |
//! | `sp:fail` | channel | `IP END_MS` for each failure counted (a success from a source no node counted a failure of resets nothing) |
//! | `sp:nonce:{NONCE}` | string | highest `nc` accepted for NONCE (expires with the nonce) |
//!
//! `SCAN` (counts, dialog reload, `clear`) runs on every master of a cluster
//! ([`Pool::scan_keys`]). Pub/sub is the classic kind: a cluster delivers a `PUBLISH` to the
//! subscribers of every node, so each node subscribes on one seed.
//!
//! See `docs/scaling.md` for sizes, the cluster how-to and what breaks first.

mod dialog;
mod location;
mod pool;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::Script;

pub use dialog::RedisDialogs;
pub use location::{CacheConfig, RedisLocation};
pub use pool::{Conn, Error, Pool, Target};

use crate::config::RedisConfig;

/// Replay check of one (nonce, nc): accept only an `nc` greater than every one accepted
/// before for that nonce, on any node. KEYS[1] the nonce key; ARGV nc, lifetime (s).
const REPLAY: &str = r"
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
";

/// A ban, in one script (a cluster takes no `PUBLISH` in a pipeline): KEYS[1] the ban
/// list; ARGV end (ms), IP, now (ms), channel, message. `GT` also adds a new member.
const BAN: &str = r"
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// One more failure from an IP: KEYS[1] its counter; ARGV window (ms), channel, message
/// (`IP END_MS`: every node learns that the IP has a count to reset). Returns the count.
const FAIL: &str = r"
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
";

/// Sources with a failure count in Redis that this node knows of, at most this many (beyond,
/// every success resets its source's count, as when the subscription is down).
const MAX_FAILING: usize = 65_536;

/// The other nodes' `HOST:PORT` as transaction-layer aliases (a Route naming one of them is
/// ours: see `docs/scaling.md`, "Record-Route").
pub fn peer_aliases(peers: &[String]) -> impl Iterator<Item = (String, Option<u16>)> + '_ {
    peers.iter().filter_map(|p| {
        let a: crate::config::Advertise = p.parse().ok()?;
        Some((a.host, a.port))
    })
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the nodes share through Redis (see the module documentation).
pub struct Shared {
    /// The connections.
    pub pool: Arc<Pool>,
    /// The location service.
    pub location: Arc<RedisLocation>,
    /// The dialog store.
    pub dialogs: Arc<RedisDialogs>,
    prefix: String,
    /// Bans published by any node: IP → end (Unix ms).
    bans: RwLock<HashMap<IpAddr, u64>>,
    /// Sources with a failure count on some node: IP → end of its window (Unix ms). A
    /// success from any other source needs no reset (no round trip).
    failing: RwLock<HashMap<IpAddr, u64>>,
    /// `failing` overflowed: reset on every success until this time (Unix ms).
    failing_overflow_until: std::sync::atomic::AtomicU64,
    replay: Script,
    fail: Script,
    ban: Script,
    subscribed: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the shared replay check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// First use of this nc of this nonce on any node.
    Fresh,
    /// Used before (on this node or another): refuse.
    Replayed,
}

impl Shared {
    /// Connects lazily to `target` (with the timeouts, prefix and cache of `cfg`) and
    /// starts the subscriber thread.
    pub fn start(
        cfg: &RedisConfig,
        target: &Target,
        max_per_aor: usize,
    ) -> Result<Arc<Shared>, String> {
        let pool = Arc::new(
            Pool::new(
                target,
                Duration::from_millis(cfg.connect_timeout_ms),
                Duration::from_millis(cfg.timeout_ms),
            )
            .map_err(|e| format!("redis {target:?}: {e}"))?,
        );
        let location = Arc::new(RedisLocation::new(
            pool.clone(),
            &cfg.prefix,
            CacheConfig {
                ttl: Duration::from_millis(cfg.cache_ms),
                max_entries: cfg.cache_entries,
            },
            max_per_aor,
        ));
        let dialogs = Arc::new(RedisDialogs::new(pool.clone(), &cfg.prefix));
        let shared = Arc::new(Shared {
            pool,
            location,
            dialogs,
            prefix: cfg.prefix.clone(),
            bans: RwLock::new(HashMap::new()),
            failing: RwLock::new(HashMap::new()),
            failing_overflow_until: std::sync::atomic::AtomicU64::new(0),
            replay: Script::new(REPLAY),
            fail: Script::new(FAIL),
            ban: Script::new(BAN),
            subscribed: AtomicBool::new(false),
        });
        let s = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("redis-sub".into())
            .spawn(move || subscriber(&s))
            .map_err(|e| e.to_string())?;
        Ok(shared)
    }

    /// Whether the subscription (cache invalidation, bans) is up.
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    fn ban_channel(&self) -> String {
        format!("{}:ban", self.prefix)
    }

    fn fail_channel(&self) -> String {
        format!("{}:fail", self.prefix)
    }

    fn note_failing(&self, ip: IpAddr, end_ms: u64) {
        let Ok(mut f) = self.failing.write() else {
            return;
        };
        if f.len() >= MAX_FAILING && !f.contains_key(&ip) {
            let now = unix_ms();
            f.retain(|_, &mut e| e > now);
            if f.len() >= MAX_FAILING {
                self.failing_overflow_until
                    .fetch_max(end_ms, Ordering::Relaxed);
                return;
            }
        }
        let e = f.entry(ip).or_insert(0);
        *e = (*e).max(end_ms);
    }

    /// Whether `ip` may have a failure count in Redis (so a success must reset it).
    fn may_be_failing(&self, ip: IpAddr) -> bool {
        let now = unix_ms();
        if !self.subscribed() || self.failing_overflow_until.load(Ordering::Relaxed) > now {
            return true;
        }
        self.failing
            .read()
            .map_or(true, |f| f.get(&ip).is_some_and(|&end| end > now))
    }

    /// Whether any node banned `ip` (and the ban is not over).
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        let Ok(b) = self.bans.read() else {
            return false;
        };
        b.get(&ip).is_some_and(|&end| end > unix_ms())
    }

    fn note_ban(&self, ip: IpAddr, end_ms: u64) {
        if let Ok(mut b) = self.bans.write() {
            let now = unix_ms();
            b.retain(|_, &mut e| e > now);
            let e = b.entry(ip).or_insert(0);
            *e = (*e).max(end_ms);
        }
    }

    /// Bans `ip` on every node for `ban_time`.
    pub fn ban(&self, ip: IpAddr, ban_time: Duration) -> Result<(), Error> {
        let end = unix_ms().saturating_add(u64::try_from(ban_time.as_millis()).unwrap_or(0));
        self.note_ban(ip, end);
        let key = format!("{}:bans", self.prefix);
        let ch = self.ban_channel();
        let ip_s = ip.to_string();
        self.pool.run(|c| {
            self.ban
                .key(&key)
                .arg(end)
                .arg(&ip_s)
                .arg(unix_ms())
                .arg(&ch)
                .arg(format!("{ip_s} {end}"))
                .invoke::<()>(c)
        })
    }

    /// Counts an authentication failure of `ip` on every node; returns the failures in a row
    /// so far (all nodes together).
    pub fn record_failure(&self, ip: IpAddr, window: Duration) -> Result<u64, Error> {
        let key = format!("{}:fail:{{{ip}}}", self.prefix);
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let end = unix_ms().saturating_add(ms);
        self.note_failing(ip, end);
        let ch = self.fail_channel();
        let msg = format!("{ip} {end}");
        self.pool
            .run(|c| self.fail.key(&key).arg(ms).arg(&ch).arg(&msg).invoke(c))
    }

    /// A success resets the failures of `ip` on every node. Only when some node counted a
    /// failure of `ip` (each publishes it): most successes cost no round trip. A failure
    /// counted on another node in the instant (well under a millisecond) before its message
    /// arrives is not reset by a success here: the source may be banned one failure early.
    pub fn record_success(&self, ip: IpAddr) -> Result<(), Error> {
        if !self.may_be_failing(ip) {
            return Ok(());
        }
        let key = format!("{}:fail:{{{ip}}}", self.prefix);
        self.pool.run(|c| ::redis::cmd("DEL").arg(&key).exec(c))?;
        if let Ok(mut f) = self.failing.write() {
            f.remove(&ip);
        }
        Ok(())
    }

    /// The sources with a failure count now (after a (re)subscription: messages may have
    /// been missed).
    fn load_failing(&self) -> Result<(), Error> {
        let pattern = format!("{}:fail:{{*", self.prefix);
        let head = format!("{}:fail:{{", self.prefix);
        let now = unix_ms();
        let mut found = Vec::new();
        self.pool.scan_keys(&pattern, 1000, |c, keys| {
            let cmds: Vec<::redis::Cmd> = keys
                .iter()
                .map(|k| {
                    let mut c = ::redis::cmd("PTTL");
                    c.arg(k);
                    c
                })
                .collect();
            for (k, v) in keys.iter().zip(c.query_all(&cmds)?) {
                let ttl: i64 = ::redis::from_redis_value(v)?;
                let ip = k
                    .strip_prefix(&head)
                    .and_then(|r| r.strip_suffix('}'))
                    .and_then(|ip| ip.parse::<IpAddr>().ok());
                if let (Some(ip), Ok(ttl)) = (ip, u64::try_from(ttl)) {
                    found.push((ip, now.saturating_add(ttl)));
                }
            }
            Ok(())
        })?;
        if let Ok(mut f) = self.failing.write() {
            f.clear();
        }
        for (ip, end) in found {
            self.note_failing(ip, end);
        }
        Ok(())
    }

    /// Records a use of `nc` (`None`: without qop, a one-time use) of `nonce`, valid for
    /// `lifetime`, across all nodes.
    pub fn check_replay(
        &self,
        nonce: &str,
        nc: Option<u32>,
        lifetime: Duration,
    ) -> Result<Replay, Error> {
        let key = format!("{}:nonce:{{{nonce}}}", self.prefix);
        let nc = nc.map_or(0, u64::from);
        let ttl = lifetime.as_secs().max(1) + 60;
        let fresh: i64 = self
            .pool
            .run(|c| self.replay.key(&key).arg(nc).arg(ttl).invoke(c))?;
        Ok(if fresh == 1 {
            Replay::Fresh
        } else {
            Replay::Replayed
        })
    }

    fn load_bans(&self) -> Result<(), Error> {
        let key = format!("{}:bans", self.prefix);
        let list: Vec<(String, f64)> = self.pool.run(|c| {
            ::redis::cmd("ZRANGE")
                .arg(&key)
                .arg(unix_ms())
                .arg("+inf")
                .arg("BYSCORE")
                .arg("WITHSCORES")
                .query(c)
        })?;
        for (ip, end) in list {
            if let Ok(ip) = ip.parse() {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a Unix time in ms, positive and far below 2^53"
                )]
                self.note_ban(ip, end as u64);
            }
        }
        Ok(())
    }

    fn on_message(&self, channel: &str, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        if channel == self.ban_channel() || channel == self.fail_channel() {
            if let Some((ip, end)) = text.split_once(' ') {
                if let (Ok(ip), Ok(end)) = (ip.parse(), end.parse()) {
                    if channel == self.ban_channel() {
                        self.note_ban(ip, end);
                    } else {
                        self.note_failing(ip, end);
                    }
                }
            }
        } else {
            self.location.invalidate(text);
        }
    }
}

/// The subscriber thread: keeps a subscription to the invalidation and ban channels,
/// reconnecting after any failure; ends when the proxy is dropped.
fn subscriber(shared: &std::sync::Weak<Shared>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        if let Err(e) = subscribe_once(&s) {
            if s.subscribed.swap(false, Ordering::Relaxed) {
                tracing::warn!(error = %e, "redis subscription lost; reconnecting");
            }
        }
        drop(s);
        std::thread::sleep(pool::RETRY_AFTER_FAILURE);
    }
}

fn subscribe_once(s: &Arc<Shared>) -> Result<(), Error> {
    let mut conn = s
        .pool
        .subscriber()
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let loc = location::channel(&s.prefix);
    let ban = s.ban_channel();
    let mut ps = conn.as_pubsub();
    let fail = s.fail_channel();
    ps.subscribe(&[&loc, &ban, &fail])?;
    ps.set_read_timeout(Some(Duration::from_millis(500)))?;
    // Read what is current before listening, after subscribing: nothing falls in between.
    s.location.invalidate_all();
    s.load_bans()?;
    s.load_failing()?;
    s.subscribed.store(true, Ordering::Relaxed);
    loop {
        match ps.get_message() {
            Ok(m) => s.on_message(m.get_channel_name(), m.get_payload_bytes()),
            Err(e) if e.is_timeout() => {
                // Periodically make sure the server is still there (a silent channel and a
                // dead server look alike).
                if Arc::strong_count(s) == 1 {
                    return Ok(());
                }
            }
            Err(e) => return Err(Error::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn peers_become_aliases_with_their_port() {
        let peers = vec!["127.0.0.1:5062".to_owned(), "[::1]:5070".to_owned()];
        let a: Vec<_> = peer_aliases(&peers).collect();
        assert_eq!(
            a,
            [
                ("127.0.0.1".to_owned(), Some(5062)),
                ("[::1]".to_owned(), Some(5070))
            ]
        );
    }

    #[test]
    fn the_redis_section_parses_and_is_checked() {
        let c = Config::from_toml(
            "[redis]\nurl = \"redis://127.0.0.1:6379/\"\ncache_ms = 250\npeers = [\"10.0.0.2:5060\"]\n",
            "t.toml",
        )
        .unwrap()
        .finish()
        .unwrap();
        assert_eq!(c.redis.url.as_deref(), Some("redis://127.0.0.1:6379/"));
        assert_eq!((c.redis.cache_ms, c.redis.prefix.as_str()), (250, "sp"));
        let bad = Config::from_toml("[redis]\npeers = [\"10.0.0.2\"]\n", "t.toml")
            .unwrap()
            .finish();
        assert!(bad.unwrap_err().to_string().contains("HOST:PORT"));
        let c = Config::from_toml(
            "[redis]\ncluster = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]\n",
            "t.toml",
        )
        .unwrap()
        .finish()
        .unwrap();
        assert_eq!(
            c.redis.target(),
            Some(Target::Cluster(vec![
                "redis://10.0.0.1:7000".into(),
                "redis://10.0.0.2:7000".into()
            ]))
        );
        let both = Config::from_toml(
            "[redis]\nurl = \"redis://a:1\"\ncluster = [\"redis://b:2\"]\n",
            "t.toml",
        )
        .unwrap()
        .finish();
        assert!(both.unwrap_err().to_string().contains("exclusive"));
        assert_eq!(Config::default().redis.target(), None);
    }
}
