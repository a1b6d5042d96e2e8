//! Connections to Redis: a small pool of blocking connections with a circuit breaker.
//!
//! The proxy's worker threads block on their socket anyway (one thread per core, no async
//! runtime), so a store call is a blocking round trip on a connection taken from this pool
//! and given back after. A failed call drops its connection (the next call opens a fresh
//! one: reconnection needs no thread of its own) and opens the breaker for
//! [`RETRY_AFTER_FAILURE`]: meanwhile calls fail at once with [`Unavailable`] instead of
//! every worker waiting for a connect timeout. Failures are counted, and logged at most once
//! per [`LOG_INTERVAL`] with how many there were.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::{Client, Connection, RedisError, RedisResult};

/// How long the breaker stays open after a failure.
pub(super) const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);
/// At most one "unreachable" log line per interval.
pub(super) const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Idle connections kept (the rest are closed when given back).
const MAX_IDLE: usize = 64;

/// Why a Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis cannot be reached (refused, timed out, connection lost, or the breaker is open
    /// after such a failure): try again later.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (script error, wrong type).
    #[error("redis error: {0}")]
    Backend(#[from] RedisError),
}

/// The pool. Shared by every thread by reference.
pub struct Pool {
    client: Client,
    connect_timeout: Duration,
    io_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    epoch: Instant,
    /// Breaker: calls fail fast until this many ms after `epoch`.
    down_until: AtomicU64,
    /// Whether the last call failed (for the "reachable again" log line).
    down: AtomicBool,
    failures: AtomicU64,
    unlogged: AtomicU64,
    next_log: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.client.get_connection_info().addr())
            .finish_non_exhaustive()
    }
}

fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

impl Pool {
    /// A pool for `url` (`redis://[user:password@]host:port[/db]`, `rediss://` with TLS where
    /// the `redis` crate is built with it). Opens nothing yet.
    pub fn new(url: &str, connect_timeout: Duration, io_timeout: Duration) -> RedisResult<Pool> {
        Ok(Pool {
            client: Client::open(url)?,
            connect_timeout,
            io_timeout,
            idle: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            next_log: AtomicU64::new(0),
        })
    }

    /// The client (the subscriber opens its own connection with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Failed calls since the start (unreachable only).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether the last call failed to reach Redis.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Opens a connection with the pool's timeouts.
    pub fn connect(&self) -> RedisResult<Connection> {
        let c = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        c.set_read_timeout(Some(self.io_timeout))?;
        c.set_write_timeout(Some(self.io_timeout))?;
        Ok(c)
    }

    /// Runs `f` on a connection. A pooled connection that fails as unreachable may only be
    /// stale (the server restarted since it was last used): `f` is then tried once more on a
    /// fresh connection before Redis is taken as down.
    pub fn run<T>(&self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> Result<T, Error> {
        let now = self.now_ms();
        if now < self.down_until.load(Ordering::Relaxed) {
            self.count_failure(now, "circuit open after a failure");
            return Err(Error::Unavailable("circuit open after a failure".into()));
        }
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let pooled = idle.is_some();
        let mut conn = match idle {
            Some(c) => c,
            None => match self.connect() {
                Ok(c) => c,
                Err(e) => return Err(self.fail(&e)),
            },
        };
        let mut result = f(&mut conn);
        if pooled && result.as_ref().is_err_and(is_unreachable) {
            conn = match self.connect() {
                Ok(c) => c,
                Err(e) => return Err(self.fail(&e)),
            };
            result = f(&mut conn);
        }
        match result {
            Ok(v) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("redis reachable again");
                }
                if let Ok(mut v) = self.idle.lock() {
                    if v.len() < MAX_IDLE {
                        v.push(conn);
                    }
                }
                Ok(v)
            }
            Err(e) if is_unreachable(&e) => Err(self.fail(&e)),
            Err(e) => {
                // The server answered: the connection is fine.
                if let Ok(mut v) = self.idle.lock() {
                    v.push(conn);
                }
                Err(Error::Backend(e))
            }
        }
    }

    fn fail(&self, e: &RedisError) -> Error {
        let now = self.now_ms();
        self.down.store(true, Ordering::Relaxed);
        let retry = u64::try_from(RETRY_AFTER_FAILURE.as_millis()).unwrap_or(500);
        self.down_until.store(now + retry, Ordering::Relaxed);
        // Every idle connection went to the same server: drop them all.
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
        let text = e.to_string();
        self.count_failure(now, &text);
        Error::Unavailable(text)
    }

    fn count_failure(&self, now: u64, what: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let n = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let next = self.next_log.load(Ordering::Relaxed);
        let interval = u64::try_from(LOG_INTERVAL.as_millis()).unwrap_or(10_000);
        if now >= next
            && self
                .next_log
                .compare_exchange(next, now + interval, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.unlogged.fetch_sub(n, Ordering::Relaxed);
            tracing::error!(
                failures = n,
                total = self.failures(),
                "redis unreachable ({what}): serving from local state, REGISTER answered 503"
            );
        }
    }
}
