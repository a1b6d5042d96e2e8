//! Connections to Redis: a small pool of blocking connections with a circuit breaker, to
//! one server (`--redis`) or to a Redis Cluster (`--redis-cluster`).
//!
//! The proxy's worker threads block on their socket anyway (one thread per core, no async
//! runtime), so a store call is a blocking round trip on a connection taken from this pool
//! and given back after. A failed call drops its connection (the next call opens a fresh
//! one: reconnection needs no thread of its own) and opens the breaker for
//! [`RETRY_AFTER_FAILURE`]: meanwhile calls fail at once with [`Unavailable`] instead of
//! every worker waiting for a connect timeout. Failures are counted, and logged at most once
//! per [`LOG_INTERVAL`] with how many there were.
//!
//! With a cluster, a pooled [`Conn`] is a `redis::cluster::ClusterConnection` (one socket
//! per node, routing each command by its key's slot and following `MOVED`/`ASK`). It takes
//! no plain pipeline: what must be atomic is one script over the keys of one slot, and
//! batches of independent commands go through [`Conn::query_all`] (a pipeline on one
//! server, a cluster pipeline — one round trip per node involved — on a cluster).
//!
//! Why not `r2d2` (the `redis` crate's `r2d2` feature): it would still need the breaker and
//! the fail-fast path around it, it cannot drop every idle connection at once after the
//! server restarted (without a `PING` per checkout, doubling the round trips, each stale
//! connection would fail one call), and it runs a thread pool of its own for what is here a
//! `Vec` behind a mutex.
//!
//! [`Unavailable`]: Error::Unavailable

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::cluster::{ClusterClient, ClusterConnection};
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{
    Client, Cmd, Commands, Connection, ConnectionAddr, ConnectionInfo, ConnectionLike, ErrorKind,
    IntoConnectionInfo, RedisError, RedisResult, ScanOptions, Value,
};

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

/// Where the shared state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server (or a primary with replicas behind one address): `redis://HOST:PORT`.
    Single(String),
    /// A Redis Cluster, found from these seed nodes (any of its nodes will do).
    Cluster(Vec<String>),
}

enum Backend {
    Single(Client),
    Cluster {
        client: ClusterClient,
        /// The seeds as given (credentials and TLS for the per-node connections).
        seeds: Vec<ConnectionInfo>,
    },
}

/// A connection: to the one server, or to the cluster (every node, routed by slot).
pub enum Conn {
    /// To one server.
    Single(Connection),
    /// To a cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Single(c) => c.supports_pipelining(),
            Conn::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

impl Conn {
    /// Runs independent commands of any slots in one go and returns their answers in order:
    /// one pipeline on a single server, a cluster pipeline (one round trip per node
    /// involved) on a cluster. Not atomic.
    pub fn query_all(&mut self, cmds: &[Cmd]) -> RedisResult<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Conn::Single(c) => {
                let mut p = ::redis::pipe();
                for cmd in cmds {
                    p.add_command(cmd.clone());
                }
                p.query(c)
            }
            Conn::Cluster(c) => {
                let mut p = ::redis::cluster::cluster_pipe();
                for cmd in cmds {
                    p.add_command(cmd.clone());
                }
                p.query(c)
            }
        }
    }
}

/// The pool. Shared by every thread by reference.
pub struct Pool {
    backend: Backend,
    connect_timeout: Duration,
    io_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
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
        let mut d = f.debug_struct("Pool");
        match &self.backend {
            Backend::Single(c) => d.field("server", c.get_connection_info().addr()),
            Backend::Cluster { seeds, .. } => d.field(
                "cluster",
                &seeds.iter().map(ConnectionInfo::addr).collect::<Vec<_>>(),
            ),
        };
        d.finish_non_exhaustive()
    }
}

fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
        || e.kind() == ErrorKind::ClusterConnectionNotFound
}

/// The masters of a cluster from `CLUSTER NODES` (`ID HOST:PORT@BUS[,NAME] FLAGS …`), those
/// not marked failed.
fn masters_of(nodes: &str) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let addr = f.nth(1)?;
            let flags = f.next()?;
            let is_master = flags.split(',').any(|x| x == "master");
            let failed = flags.split(',').any(|x| x == "fail" || x == "noaddr");
            if !is_master || failed {
                return None;
            }
            let hostport = addr.split('@').next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect();
    out.sort();
    out
}

impl Pool {
    /// A pool for `target`: `redis://[user:password@]host:port[/db]` URLs (`rediss://` with
    /// TLS where the `redis` crate is built with it). Opens nothing yet.
    pub fn new(
        target: &Target,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> RedisResult<Pool> {
        let backend = match target {
            Target::Single(url) => Backend::Single(Client::open(url.as_str())?),
            Target::Cluster(urls) => {
                let seeds = urls
                    .iter()
                    .map(|u| u.as_str().into_connection_info())
                    .collect::<RedisResult<Vec<_>>>()?;
                let client = ClusterClient::builder(seeds.clone())
                    .connection_timeout(connect_timeout)
                    .response_timeout(io_timeout)
                    // The breaker, not the client, waits for a node that went away.
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .build()?;
                Backend::Cluster { client, seeds }
            }
        };
        Ok(Pool {
            backend,
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

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster { .. })
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

    fn plain(&self, info: ConnectionInfo) -> RedisResult<Connection> {
        let c = Client::open(info)?.get_connection_with_timeout(self.connect_timeout)?;
        c.set_read_timeout(Some(self.io_timeout))?;
        c.set_write_timeout(Some(self.io_timeout))?;
        Ok(c)
    }

    /// Opens a connection with the pool's timeouts.
    pub fn connect(&self) -> RedisResult<Conn> {
        match &self.backend {
            Backend::Single(client) => Ok(Conn::Single(
                self.plain(client.get_connection_info().clone())?,
            )),
            Backend::Cluster { client, .. } => {
                let c = client.get_connection()?;
                c.set_read_timeout(Some(self.io_timeout))?;
                c.set_write_timeout(Some(self.io_timeout))?;
                Ok(Conn::Cluster(c))
            }
        }
    }

    /// A plain connection for `SUBSCRIBE`: to the server, or to the first seed of a cluster
    /// that answers (a cluster delivers every `PUBLISH` to the subscribers of every node).
    pub fn subscriber(&self) -> RedisResult<Connection> {
        match &self.backend {
            Backend::Single(client) => self.plain(client.get_connection_info().clone()),
            Backend::Cluster { seeds, .. } => {
                let mut last = None;
                for s in seeds {
                    match self.plain(s.clone()) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    RedisError::from((ErrorKind::InvalidClientConfig, "no cluster seed"))
                }))
            }
        }
    }

    /// The address of each master, in a stable order (by address): `SCAN` sees the keys
    /// of one node only. The server itself when not a cluster.
    pub fn masters(&self) -> Result<Vec<ConnectionInfo>, Error> {
        let (template, nodes) = match &self.backend {
            Backend::Single(client) => return Ok(vec![client.get_connection_info().clone()]),
            Backend::Cluster { seeds, .. } => {
                let text: String = self.run(|c| match c {
                    Conn::Cluster(c) => {
                        let v = c.route_command(
                            ::redis::cmd("CLUSTER").arg("NODES"),
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                        )?;
                        ::redis::from_redis_value(v).map_err(RedisError::from)
                    }
                    Conn::Single(c) => ::redis::cmd("CLUSTER").arg("NODES").query(c),
                })?;
                let template = seeds
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::Unavailable("no cluster seed".into()))?;
                (template, masters_of(&text))
            }
        };
        Ok(nodes
            .into_iter()
            .map(|(host, port)| {
                let addr = match template.addr() {
                    ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => ConnectionAddr::Tcp(host, port),
                };
                template.clone().set_addr(addr)
            })
            .collect())
    }

    /// A plain connection to one node (one of [`Pool::masters`]), with the pool's timeouts.
    pub fn open(&self, node: &ConnectionInfo) -> Result<Connection, Error> {
        self.plain(node.clone()).map_err(|e| self.error(&e))
    }

    /// The error of a failed call made outside [`Pool::run`] (a breaker-opening one when
    /// Redis is unreachable).
    pub fn error(&self, e: &RedisError) -> Error {
        if is_unreachable(e) {
            self.fail(e)
        } else {
            Error::Backend(e.clone())
        }
    }

    /// Every key matching `pattern` on every master (`SCAN`, so a key written meanwhile
    /// may or may not be seen), `batch` at a time given to `each` with a pooled connection
    /// to act on them.
    pub fn scan_keys(
        &self,
        pattern: &str,
        batch: usize,
        mut each: impl FnMut(&mut Conn, &[String]) -> RedisResult<()>,
    ) -> Result<(), Error> {
        let batch = batch.max(1);
        for node in self.masters()? {
            let mut conn = self.open(&node)?;
            let opts = ScanOptions::default()
                .with_pattern(pattern)
                .with_count(batch);
            let mut keys = conn
                .scan_options::<String>(opts)
                .map_err(|e| self.error(&e))?;
            loop {
                let chunk = keys
                    .by_ref()
                    .take(batch)
                    .collect::<RedisResult<Vec<String>>>()
                    .map_err(|e| self.error(&e))?;
                if chunk.is_empty() {
                    break;
                }
                self.run(|c| each(c, &chunk))?;
            }
        }
        Ok(())
    }

    /// Runs `f` on a connection. A pooled connection that fails as unreachable may only be
    /// stale (the server restarted since it was last used): `f` is then tried once more on a
    /// fresh connection before Redis is taken as down.
    pub fn run<T>(&self, mut f: impl FnMut(&mut Conn) -> RedisResult<T>) -> Result<T, Error> {
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
                self.give_back(conn);
                Ok(v)
            }
            Err(e) if is_unreachable(&e) => Err(self.fail(&e)),
            Err(e) => {
                // The server answered: the connection is fine.
                self.give_back(conn);
                Err(Error::Backend(e))
            }
        }
    }

    fn give_back(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < MAX_IDLE {
                v.push(conn);
            }
        }
    }

    fn fail(&self, e: &RedisError) -> Error {
        let now = self.now_ms();
        self.down.store(true, Ordering::Relaxed);
        let retry = u64::try_from(RETRY_AFTER_FAILURE.as_millis()).unwrap_or(500);
        self.down_until.store(now + retry, Ordering::Relaxed);
        // Every idle connection went to the same server(s): drop them all.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_come_from_cluster_nodes_without_replicas_or_failed_ones() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,h2 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 connected 10923-16383
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            masters_of(text),
            [
                ("127.0.0.1".to_owned(), 30001),
                ("127.0.0.1".to_owned(), 30002)
            ]
        );
    }
}
