//! [`TraceDb`]: Kamailio's `siptrace` to a database — every SIP message the proxy receives
//! or sends, as a row of `sip_trace` in `DATA_DIR/sip-trace.db` (its own file, so that the
//! trace's heavy writing never holds the lock the registrations and dialogs need).
//!
//! The SIP path only copies the message into a bounded queue (full: dropped and counted);
//! a thread of its own parses it, writes rows in batches (one transaction per batch), and
//! applies the retention (rows older than `max_age`, rows beyond `max_rows`) every
//! [`PRUNE_EVERY`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hep_codec::{CaptureEvent, CaptureSink};
use rusqlite::params;
use rusqlite::types::{ToSqlOutput, ValueRef};
use sip_parser::{Limits, Message};

use super::db::{Db, DbOptions, OpenError};
use super::schema::TRACE;

/// How often the retention runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Most rows per transaction.
pub const BATCH: usize = 1000;

/// Retention and queue of a [`TraceDb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceConfig {
    /// Messages that may wait for the writer (beyond: dropped and counted).
    pub queue: usize,
    /// Rows kept at most (0: no row limit).
    pub max_rows: u64,
    /// Rows older than this are deleted (zero: no age limit).
    pub max_age: Duration,
}

/// What the writer did, for the metrics and the tests.
#[derive(Debug, Default)]
pub struct TraceCounters {
    /// Rows written.
    pub written: AtomicU64,
    /// Messages dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Rows that could not be written (the database failed).
    pub failed: AtomicU64,
    /// Rows deleted by the retention.
    pub pruned: AtomicU64,
}

struct Item {
    time: Duration,
    src: SocketAddr,
    dst: SocketAddr,
    transport: &'static str,
    inbound: bool,
    payload: Bytes,
}

enum Msg {
    Row(Item),
    /// Write what is queued, prune, and answer.
    Sync(mpsc::Sender<()>),
}

/// The `sip_trace` sink: give it to the proxy as (part of) its capture.
#[derive(Debug)]
pub struct TraceDb {
    tx: SyncSender<Msg>,
    locals: Vec<SocketAddr>,
    counters: Arc<TraceCounters>,
    /// The writer (it ends when the sink is dropped).
    _thread: JoinHandle<()>,
}

impl TraceDb {
    /// Opens (creating it) the trace database at `path` and starts its writer. `locals` are
    /// the proxy's own addresses: a message sent to one of them is "in", else "out".
    pub fn open(
        path: &Path,
        locals: Vec<SocketAddr>,
        cfg: TraceConfig,
        opts: &DbOptions,
    ) -> Result<Self, OpenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let db = Db::open(path, TRACE, opts, now)?;
        let (tx, rx) = mpsc::sync_channel(cfg.queue.max(1));
        let counters = Arc::new(TraceCounters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("sip-trace-db".into())
            .spawn(move || writer(&db, &rx, cfg, &c))
            .map_err(|e| OpenError::DataDir {
                path: path.to_owned(),
                source: e,
            })?;
        Ok(TraceDb {
            tx,
            locals,
            counters,
            _thread: thread,
        })
    }

    /// The counters (shared with the metrics endpoint).
    pub fn counters(&self) -> &Arc<TraceCounters> {
        &self.counters
    }

    /// Waits (at most `timeout`) until everything queued so far is written and the
    /// retention applied; false when the writer did not answer in time.
    pub fn sync(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        let deadline = Instant::now() + timeout;
        let mut msg = Msg::Sync(tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

impl CaptureSink for TraceDb {
    fn capture(&self, e: &CaptureEvent<'_>) {
        let item = Item {
            time: e.time.since_epoch(),
            src: e.src,
            dst: e.dst,
            transport: e.transport.param_value(),
            inbound: self.locals.contains(&e.dst),
            payload: Bytes::copy_from_slice(e.payload),
        };
        if self.tx.try_send(Msg::Row(item)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn text_or_blob(b: &[u8]) -> ToSqlOutput<'_> {
    match std::str::from_utf8(b) {
        Ok(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Err(_) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
    }
}

fn insert(tx: &rusqlite::Transaction<'_>, it: &Item) -> rusqlite::Result<()> {
    let m = Message::parse_with(it.payload.clone(), &Limits::BUILT).ok();
    let m = m.as_ref();
    let method = m
        .and_then(|m| match m.method() {
            Some(x) => Some(x.to_owned()),
            None => m.cseq().ok().map(|c| c.method.to_owned()),
        })
        .unwrap_or_default();
    let tag = |to: bool| {
        m.and_then(|m| {
            let h = if to { m.to() } else { m.from() };
            h.ok().and_then(|h| h.tag().map(str::to_owned))
        })
        .unwrap_or_default()
    };
    tx.prepare_cached(
        "INSERT INTO sip_trace (time_stamp, time_us, callid, traced_user, msg, method, status, \
         fromip, toip, fromtag, totag, direction, transport) \
         VALUES (?1, ?2, ?3, '', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        i64::try_from(it.time.as_secs()).unwrap_or(i64::MAX),
        it.time.subsec_micros(),
        m.and_then(Message::call_id).unwrap_or_default(),
        text_or_blob(&it.payload),
        method,
        m.and_then(Message::status),
        format!("{}:{}", it.transport, it.src),
        format!("{}:{}", it.transport, it.dst),
        tag(false),
        tag(true),
        if it.inbound { "in" } else { "out" },
        it.transport,
    ])?;
    Ok(())
}

fn prune(db: &Db, cfg: TraceConfig, c: &TraceCounters) -> rusqlite::Result<()> {
    let w = db.writer();
    let mut n = 0;
    if !cfg.max_age.is_zero() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let cut = now.saturating_sub(cfg.max_age).as_secs();
        n += w.execute(
            "DELETE FROM sip_trace WHERE time_stamp < ?1",
            params![i64::try_from(cut).unwrap_or(i64::MAX)],
        )?;
    }
    if cfg.max_rows > 0 {
        // Row ids are dense (only the oldest are ever deleted).
        n += w.execute(
            "DELETE FROM sip_trace WHERE id <= (SELECT max(id) FROM sip_trace) - ?1",
            params![i64::try_from(cfg.max_rows).unwrap_or(i64::MAX)],
        )?;
    }
    c.pruned.fetch_add(n as u64, Ordering::Relaxed);
    Ok(())
}

fn writer(db: &Db, rx: &Receiver<Msg>, cfg: TraceConfig, c: &TraceCounters) {
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
    let mut next_prune = Instant::now();
    let mut last_warn: Option<Instant> = None;
    let mut warn = |what: &str, e: &rusqlite::Error| {
        if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            last_warn = Some(Instant::now());
            tracing::warn!(db = %db.path().display(), error = %e, "sip_trace: {what}");
        }
    };
    loop {
        let first = match rx.recv_timeout(PRUNE_EVERY) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut syncs = Vec::new();
        let mut next = first;
        while let Some(m) = next.take() {
            match m {
                Msg::Row(it) => batch.push(it),
                Msg::Sync(tx) => syncs.push(tx),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let r = db.write(|e| e, |tx| batch.iter().try_for_each(|it| insert(tx, it)));
            match r {
                Ok(()) => c.written.fetch_add(n, Ordering::Relaxed),
                Err(e) => {
                    warn(&format!("{n} rows not written (counted)"), &e);
                    c.failed.fetch_add(n, Ordering::Relaxed)
                }
            };
            batch.clear();
        }
        if !syncs.is_empty() || Instant::now() >= next_prune {
            if let Err(e) = prune(db, cfg, c) {
                warn("retention failed", &e);
            }
            next_prune = Instant::now() + PRUNE_EVERY;
        }
        for s in syncs {
            let _ = s.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::Synchronous;
    use sip_parser::Transport;

    const INVITE: &[u8] =
        b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bK1\r\n\
        From: <sip:alice@example.com>;tag=f1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1@x\r\n\
        CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    const RINGING: &[u8] = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bK1\r\n\
        From: <sip:alice@example.com>;tag=f1\r\nTo: <sip:bob@example.com>;tag=t2\r\nCall-ID: c1@x\r\n\
        CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    fn opts() -> DbOptions {
        DbOptions {
            synchronous: Synchronous::Normal,
            max_bytes: 1 << 30,
            readers: 1,
            check: false,
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sip-proxy-trace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn now() -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
    }

    #[test]
    fn messages_become_rows_with_the_siptrace_columns() {
        let d = scratch("rows");
        let path = d.join("t.db");
        let me: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let peer: SocketAddr = "192.0.2.4:5060".parse().unwrap();
        let cfg = TraceConfig {
            queue: 100,
            max_rows: 3,
            max_age: Duration::from_secs(3600),
        };
        let t = TraceDb::open(&path, vec![me], cfg, &opts()).unwrap();
        let old = now().saturating_sub(Duration::from_secs(7200));
        t.capture(&CaptureEvent::sip(peer, me, Transport::Udp, old, INVITE));
        t.capture(&CaptureEvent::sip(peer, me, Transport::Udp, now(), INVITE));
        t.capture(&CaptureEvent::sip(me, peer, Transport::Udp, now(), RINGING));
        assert!(t.sync(Duration::from_secs(10)));
        assert_eq!(t.counters().written.load(Ordering::Relaxed), 3);
        // The two-hour-old row went with the retention.
        assert_eq!(t.counters().pruned.load(Ordering::Relaxed), 1);
        let c = rusqlite::Connection::open(&path).unwrap();
        type Row = (
            String,
            String,
            Option<i64>,
            String,
            String,
            String,
            String,
            String,
            String,
        );
        let rows: Vec<Row> = c
            .prepare("SELECT callid, method, status, fromip, toip, direction, fromtag, totag, transport FROM sip_trace ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            (
                "c1@x".into(),
                "INVITE".into(),
                None,
                "udp:192.0.2.4:5060".into(),
                "udp:127.0.0.1:5060".into(),
                "in".into(),
                "f1".into(),
                String::new(),
                "udp".into()
            )
        );
        assert_eq!(
            (
                rows[1].1.as_str(),
                rows[1].2,
                rows[1].5.as_str(),
                rows[1].7.as_str()
            ),
            ("INVITE", Some(180), "out", "t2")
        );
        let msg: String = c
            .query_row("SELECT msg FROM sip_trace LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(msg.as_bytes(), INVITE);
        // Row-count retention: 5 more, 3 kept.
        for _ in 0..5 {
            t.capture(&CaptureEvent::sip(peer, me, Transport::Udp, now(), INVITE));
        }
        assert!(t.sync(Duration::from_secs(10)));
        let n: i64 = c
            .query_row("SELECT count(*) FROM sip_trace", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_a_failed_write_is_counted() {
        let d = scratch("drops");
        let path = d.join("t.db");
        let me: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let cfg = TraceConfig {
            queue: 4,
            max_rows: 0,
            max_age: Duration::from_secs(60),
        };
        let t = TraceDb::open(&path, vec![me], cfg, &opts()).unwrap();
        // Another process holds the file: the writer waits (busy timeout) on its first row,
        // then fails it; meanwhile the queue fills and the rest is dropped.
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        t.capture(&CaptureEvent::sip(me, me, Transport::Udp, now(), INVITE));
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..100 {
            t.capture(&CaptureEvent::sip(me, me, Transport::Udp, now(), INVITE));
        }
        let c = t.counters();
        assert_eq!(c.dropped.load(Ordering::Relaxed), 96);
        std::thread::sleep(super::super::db::BUSY_TIMEOUT + Duration::from_millis(500));
        other.execute_batch("ROLLBACK").unwrap();
        drop(other);
        assert!(t.sync(Duration::from_secs(10)));
        assert_eq!(
            c.failed.load(Ordering::Relaxed),
            1,
            "the blocked row failed, counted"
        );
        assert_eq!(
            c.written.load(Ordering::Relaxed),
            4,
            "the queued ones written after"
        );
        let _ = std::fs::remove_dir_all(d);
    }
}
