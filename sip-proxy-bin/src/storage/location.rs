//! [`SqliteLocation`]: the `LocationStore` on SQLite — the backing tier of
//! `sip_location::Tiered` (Kamailio `usrloc` over `db_sqlite`).
//!
//! Rows carry Kamailio's `location` columns, one per binding; `location_aor` holds each
//! AOR once with the version of its binding set (the optimistic concurrency of the trait) and
//! the id a scan resumes from. Every field of a [`Binding`] is a column (nothing hidden in a
//! blob), so an operator can read and edit the table with `sqlite3`, and reading a row back
//! gives the same binding, byte for byte.
//!
//! `apply` reads the AOR's rows inside an immediate transaction, computes the new set with
//! the same rules as `sip_location::MemoryStore` (same binding replaced, removals, limits),
//! and writes only the difference: an unchanged row stays, a refreshed one is updated in
//! place (its `ruid` kept), a new one inserted, a gone one deleted. `apply_all` (the
//! write-back flush) does many AORs in one transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use sip_location::{
    Applied, Binding, BindingFields, Changes, Counts, Cursor, Event, EventKind, Flags,
    LocationStore, Merged, Snapshot, Source, StoreError, Version, merge,
};
use sip_parser::{Transport, Uri};

use super::Bits;
use super::db::Db;

/// Limits of a [`SqliteLocation`] (the same meaning as `sip_location::MemoryConfig`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationLimits {
    /// Bindings the table may hold; past it, writes that add bindings fail with
    /// `StoreError::Full` (503).
    pub max_bindings: usize,
    /// Bindings per AOR (`StoreError::TooManyBindings`).
    pub max_per_aor: usize,
}

impl Default for LocationLimits {
    fn default() -> Self {
        let m = sip_location::MemoryConfig::default();
        LocationLimits {
            max_bindings: m.max_bindings,
            max_per_aor: m.max_per_aor,
        }
    }
}

/// A row that does not read back as a binding (edited by hand, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("location row {row}: column {column} ({value:?}) {what}")]
pub struct RowError {
    /// The row's `id`.
    pub row: i64,
    /// The column.
    pub column: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub what: &'static str,
}

/// The SQLite location store. Shared by the proxy's threads by reference.
#[derive(Debug)]
pub struct SqliteLocation {
    db: Arc<Db>,
    limits: LocationLimits,
    /// The last version handed out (never reused while the store lives).
    version: AtomicU64,
    /// Rows in `location` (changed only under the writer lock).
    total: AtomicUsize,
    ruid_prefix: String,
    ruids: AtomicU64,
}

/// Maps an SQLite failure to the trait's error: the ones a retry may cure (busy, locked,
/// disk full, I/O, read-only) are `Unavailable` (503); the rest `Backend` (500).
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::DiskFull
            | C::SystemIoFailure
            | C::ReadOnly
            | C::CannotOpen,
        ) => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Backend(Box::new(e)),
    }
}

/// A count as a signed number (for the change in rows of a transaction).
fn count(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns of a row, in the order of [`COLUMNS`].
const COLUMNS: &str = "l.id, l.contact, l.received, l.path, l.expires, l.q, l.callid, \
     l.cseq, l.last_modified, l.cflags, l.user_agent, l.socket, l.instance, l.reg_id, \
     l.connection_id";

/// `sip:IP:PORT;transport=T`: Kamailio's `received`, with the transport kept.
fn received_text(s: &Source) -> String {
    format!("sip:{};transport={}", s.addr, s.transport.param_value())
}

fn parse_received(text: &str) -> Option<(SocketAddr, Transport)> {
    let rest = text.strip_prefix("sip:")?;
    let (addr, t) = rest.split_once(";transport=")?;
    Some((addr.parse().ok()?, Transport::parse(t.as_bytes())?))
}

/// `T:IP:PORT`: Kamailio's `socket` (the listener the REGISTER arrived on).
fn socket_text(t: Transport, local: SocketAddr) -> String {
    format!("{}:{local}", t.param_value())
}

fn parse_socket(text: &str) -> Option<SocketAddr> {
    text.split_once(':')?.1.parse().ok()
}

/// A row read back.
struct Stored {
    id: i64,
    binding: Binding,
}

fn read_row(r: &Row<'_>, at: usize) -> Result<Stored, StoreError> {
    let sq = |e| store_error(e);
    let id: i64 = r.get(at).map_err(sq)?;
    let bad = |column, value: &dyn std::fmt::Debug, what| {
        StoreError::Backend(Box::new(RowError {
            row: id,
            column,
            value: format!("{value:?}"),
            what,
        }))
    };
    let contact: String = r.get(at + 1).map_err(sq)?;
    let received: Option<String> = r.get(at + 2).map_err(sq)?;
    let path: Option<String> = r.get(at + 3).map_err(sq)?;
    let expires: i64 = r.get(at + 4).map_err(sq)?;
    let q: Option<f64> = r.get(at + 5).map_err(sq)?;
    let callid: String = r.get(at + 6).map_err(sq)?;
    let cseq: i64 = r.get(at + 7).map_err(sq)?;
    let last_modified: i64 = r.get(at + 8).map_err(sq)?;
    let cflags: i64 = r.get(at + 9).map_err(sq)?;
    let user_agent: String = r.get(at + 10).map_err(sq)?;
    let socket: Option<String> = r.get(at + 11).map_err(sq)?;
    let instance: Option<String> = r.get(at + 12).map_err(sq)?;
    let reg_id: Option<i64> = r.get(at + 13).map_err(sq)?;
    let conn: Option<i64> = r.get(at + 14).map_err(sq)?;
    let source = match &received {
        None => None,
        Some(text) => {
            let (addr, transport) = parse_received(text)
                .ok_or_else(|| bad("received", text, "is not sip:IP:PORT;transport=T"))?;
            let local = match &socket {
                None => None,
                Some(s) => Some(
                    parse_socket(s).ok_or_else(|| bad("socket", s, "is not TRANSPORT:IP:PORT"))?,
                ),
            };
            Some(Source {
                addr,
                transport,
                local,
                flow: conn.map(Bits::bits_u64),
            })
        }
    };
    let q = match q {
        None => None,
        // In range (checked): the cast is exact.
        #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
        Some(v) if (0.0..=65.535).contains(&v) => Some((v * 1000.0).round() as u16),
        Some(v) => return Err(bad("q", &v, "is out of range")),
    };
    let fields = BindingFields {
        contact: &contact,
        expires_at: u64::try_from(expires).map_err(|_| bad("expires", &expires, "is negative"))?,
        last_modified_ms: u64::try_from(last_modified)
            .map_err(|_| bad("last_modified", &last_modified, "is negative"))?,
        q,
        call_id: &callid,
        cseq: u32::try_from(cseq).map_err(|_| bad("cseq", &cseq, "is out of range"))?,
        path: path.as_deref().unwrap_or(""),
        user_agent: &user_agent,
        instance: instance.as_deref(),
        reg_id: match reg_id {
            None => None,
            Some(v) => Some(u32::try_from(v).map_err(|_| bad("reg_id", &v, "is out of range"))?),
        },
        source,
        flags: Flags::from_bits(
            u8::try_from(cflags).map_err(|_| bad("cflags", &cflags, "is out of range"))?,
        ),
    };
    let binding = Binding::new(&fields).map_err(|e| StoreError::Corrupt {
        aor: String::new(),
        source: e,
    })?;
    Ok(Stored { id, binding })
}

/// What the AOR text contributes to Kamailio's `username` and `domain` columns.
fn user_and_domain(aor: &str) -> (String, Option<String>) {
    match Uri::parse(aor.as_bytes()) {
        Ok(u) => (
            String::from_utf8_lossy(u.user.unwrap_or_default()).into_owned(),
            (!u.host.is_empty()).then(|| u.host.to_owned()),
        ),
        Err(_) => (String::new(), None),
    }
}

const INSERT: &str = "INSERT INTO location (aor_id, ruid, username, domain, contact, received, \
     path, expires, q, callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, \
     instance, reg_id, server_id, connection_id, keepalive, \"partition\") VALUES (?1, ?2, ?3, \
     ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?13, ?14, ?15, NULL, ?16, ?17, 0, ?18, ?19, 0)";
const UPDATE: &str = "UPDATE location SET contact = ?2, received = ?3, path = ?4, expires = ?5, \
     q = ?6, callid = ?7, cseq = ?8, last_modified = ?9, cflags = ?10, user_agent = ?11, \
     socket = ?12, instance = ?13, reg_id = ?14, connection_id = ?15, keepalive = ?16 \
     WHERE id = ?1";

/// The binding's own columns, ready to bind.
struct Cols<'b> {
    b: &'b Binding,
    received: Option<String>,
    socket: Option<String>,
}

impl<'b> Cols<'b> {
    fn of(b: &'b Binding) -> Self {
        let src = b.source();
        Cols {
            b,
            received: src.as_ref().map(received_text),
            socket: src.and_then(|s| s.local.map(|l| socket_text(s.transport, l))),
        }
    }
    fn q(&self) -> Option<f64> {
        self.b.q().map(|q| f64::from(q) / 1000.0)
    }
    fn path(&self) -> Option<&str> {
        Some(self.b.path()).filter(|p| !p.is_empty())
    }
    fn conn(&self) -> Option<i64> {
        self.b.source().and_then(|s| s.flow).map(Bits::bits_i64)
    }
    fn keepalive(&self) -> i64 {
        i64::from(self.b.flags().contains(Flags::KEEPALIVE))
    }
}

impl SqliteLocation {
    /// The store over `db` (schema [`MAIN`](super::schema::MAIN)).
    pub fn open(db: Arc<Db>, limits: LocationLimits, now: Duration) -> rusqlite::Result<Self> {
        let (version, total): (i64, i64) = db.read(|c| {
            c.query_row(
                "SELECT (SELECT coalesce(max(version), 0) FROM location_aor), \
                        (SELECT count(*) FROM location)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        Ok(SqliteLocation {
            db,
            limits,
            version: AtomicU64::new(version.bits_u64()),
            total: AtomicUsize::new(usize::try_from(total).unwrap_or(usize::MAX)),
            ruid_prefix: format!("uloc-{:x}-{:x}", now.as_secs(), std::process::id()),
            ruids: AtomicU64::new(0),
        })
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn next_ruid(&self) -> String {
        let n = self.ruids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}-{n}", self.ruid_prefix)
    }

    fn rows_of(c: &Connection, aor_id: i64) -> Result<Vec<Stored>, StoreError> {
        let mut st = c
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM location l WHERE l.aor_id = ?1 ORDER BY l.id"
            ))
            .map_err(store_error)?;
        let mut rows = st.query(params![aor_id]).map_err(store_error)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(store_error)? {
            out.push(read_row(r, 0)?);
        }
        Ok(out)
    }

    /// One AOR's changes inside the transaction `tx`; `delta` collects the change in rows.
    fn apply_in(
        &self,
        tx: &Transaction<'_>,
        changes: &Changes,
        now: Duration,
        delta: &mut isize,
    ) -> Result<Applied, StoreError> {
        let found: Option<(i64, i64)> = tx
            .prepare_cached("SELECT id, version FROM location_aor WHERE aor = ?1")
            .and_then(|mut st| {
                st.query_row(params![changes.aor], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(store_error)?;
        let current = found.map_or(Version::ABSENT, |(_, v)| Version(v.bits_u64()));
        if changes.expected.is_some_and(|e| e != current) {
            return Err(StoreError::Conflict {
                aor: changes.aor.clone(),
            });
        }
        if changes.ops.is_empty() {
            return Ok(Applied {
                version: current,
                events: Vec::new(),
            });
        }
        let old = match found {
            Some((id, _)) => Self::rows_of(tx, id).map_err(|e| with_aor(e, &changes.aor))?,
            None => Vec::new(),
        };
        let name: Arc<str> = Arc::from(changes.aor.as_str());
        // The new set, by the rule every store shares.
        let Merged { live, events } = merge(
            &name,
            old.iter().map(|s| s.binding.clone()),
            &changes.ops,
            now,
        );
        if live.len() > self.limits.max_per_aor {
            return Err(StoreError::TooManyBindings {
                aor: changes.aor.clone(),
                limit: self.limits.max_per_aor,
            });
        }
        let grow = count(live.len()) - count(old.len());
        let total = count(self.total.load(Ordering::Relaxed)) + *delta;
        if grow > 0 && total + grow > count(self.limits.max_bindings) {
            return Err(StoreError::Full {
                limit: self.limits.max_bindings,
            });
        }
        *delta += grow;
        // Write the difference.
        let aor_id = match found {
            Some((id, _)) => id,
            None if live.is_empty() => {
                return Ok(Applied {
                    version: Version::ABSENT,
                    events,
                });
            }
            None => {
                tx.prepare_cached("INSERT INTO location_aor (aor, version) VALUES (?1, 0)")
                    .and_then(|mut st| st.execute(params![changes.aor]))
                    .map_err(store_error)?;
                tx.last_insert_rowid()
            }
        };
        let mut kept = vec![false; old.len()];
        let (username, domain) = user_and_domain(&changes.aor);
        for b in &live {
            let same = old
                .iter()
                .enumerate()
                .find(|(i, s)| !kept[*i] && s.binding.same_binding(b));
            match same {
                Some((i, s)) => {
                    kept[i] = true;
                    if s.binding != *b {
                        Self::update_row(tx, s.id, b)?;
                    }
                }
                None => self.insert_row(tx, aor_id, &username, domain.as_deref(), b)?,
            }
        }
        if kept.iter().any(|k| !k) {
            let mut del = tx
                .prepare_cached("DELETE FROM location WHERE id = ?1")
                .map_err(store_error)?;
            for (s, _) in old.iter().zip(&kept).filter(|(_, k)| !**k) {
                del.execute(params![s.id]).map_err(store_error)?;
            }
        }
        let version = if live.is_empty() {
            tx.prepare_cached("DELETE FROM location_aor WHERE id = ?1")
                .and_then(|mut st| st.execute(params![aor_id]))
                .map_err(store_error)?;
            Version::ABSENT
        } else {
            let v = self.next_version();
            tx.prepare_cached("UPDATE location_aor SET version = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![aor_id, v.bits_i64()]))
                .map_err(store_error)?;
            Version(v)
        };
        Ok(Applied { version, events })
    }

    fn insert_row(
        &self,
        tx: &Transaction<'_>,
        aor_id: i64,
        username: &str,
        domain: Option<&str>,
        b: &Binding,
    ) -> Result<(), StoreError> {
        let c = Cols::of(b);
        tx.prepare_cached(INSERT)
            .and_then(|mut st| {
                st.execute(params![
                    aor_id,
                    self.next_ruid(),
                    username,
                    domain,
                    b.contact(),
                    c.received,
                    c.path(),
                    to_i64(b.expires_at()),
                    c.q(),
                    b.call_id(),
                    b.cseq(),
                    to_i64(b.last_modified_ms()),
                    b.flags().bits(),
                    b.user_agent(),
                    c.socket,
                    b.instance(),
                    b.reg_id(),
                    c.conn(),
                    c.keepalive(),
                ])
            })
            .map_err(store_error)?;
        Ok(())
    }

    fn update_row(tx: &Transaction<'_>, id: i64, b: &Binding) -> Result<(), StoreError> {
        let c = Cols::of(b);
        tx.prepare_cached(UPDATE)
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    b.contact(),
                    c.received,
                    c.path(),
                    to_i64(b.expires_at()),
                    c.q(),
                    b.call_id(),
                    b.cseq(),
                    to_i64(b.last_modified_ms()),
                    b.flags().bits(),
                    b.user_agent(),
                    c.socket,
                    b.instance(),
                    b.reg_id(),
                    c.conn(),
                    c.keepalive(),
                ])
            })
            .map_err(store_error)?;
        Ok(())
    }

    /// Runs `f` in an immediate transaction; the change in rows it reports is counted
    /// after the commit, still under the writer lock (the next writer sees it).
    fn write<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut isize) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut w = self.db.writer();
        let tx = w
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(store_error)?;
        let mut delta = 0;
        let r = f(&tx, &mut delta)?;
        tx.commit().map_err(store_error)?;
        self.commit_delta(delta);
        drop(w);
        Ok(r)
    }

    fn commit_delta(&self, delta: isize) {
        if delta >= 0 {
            self.total
                .fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.total
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}

/// A row found expired: its AOR's id and text, the row read back, the row's id.
type Expiring = (i64, Arc<str>, Result<Stored, StoreError>, i64);

/// Names the AOR in a decoding error.
fn with_aor(e: StoreError, aor: &str) -> StoreError {
    match e {
        StoreError::Corrupt { source, .. } => StoreError::Corrupt {
            aor: aor.to_owned(),
            source,
        },
        other => other,
    }
}

impl LocationStore for SqliteLocation {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        self.db.read(|c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT a.version, {COLUMNS} FROM location_aor a \
                     LEFT JOIN location l ON l.aor_id = a.id AND l.expires > ?2 \
                     WHERE a.aor = ?1"
                ))
                .map_err(store_error)?;
            let mut rows = st
                .query(params![aor, to_i64(now.as_secs())])
                .map_err(store_error)?;
            let mut version = Version::ABSENT;
            let mut live: Vec<Binding> = Vec::new();
            while let Some(r) = rows.next().map_err(store_error)? {
                version = Version(r.get::<_, i64>(0).map_err(store_error)?.bits_u64());
                if r.get_ref(1).map_err(store_error)? != rusqlite::types::ValueRef::Null {
                    live.push(read_row(r, 1).map_err(|e| with_aor(e, aor))?.binding);
                }
            }
            Ok(Snapshot::new(version, live))
        })
    }

    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        self.write(|tx, delta| self.apply_in(tx, changes, now, delta))
    }

    fn apply_all(&self, batch: &[Changes], now: Duration) -> Result<Vec<Applied>, StoreError> {
        self.write(|tx, delta| {
            batch
                .iter()
                .map(|ch| self.apply_in(tx, ch, now, delta))
                .collect()
        })
    }

    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError> {
        // Called every second: the writer (and its lock) only when something expired.
        let due: bool = self.db.read(|c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM location WHERE expires <= ?1)")
                .and_then(|mut st| st.query_row(params![to_i64(now.as_secs())], |r| r.get(0)))
                .map_err(store_error)
        })?;
        if !due {
            return Ok(Vec::new());
        }
        self.write(|tx, delta| {
            // (AOR id, AOR, the row read back, row id)
            let mut found: Vec<Expiring> = Vec::new();
            {
                let mut st = tx
                    .prepare_cached(&format!(
                        "SELECT a.id, a.aor, {COLUMNS} FROM location l \
                         JOIN location_aor a ON a.id = l.aor_id \
                         WHERE l.expires <= ?1 ORDER BY l.expires LIMIT ?2"
                    ))
                    .map_err(store_error)?;
                let mut rows = st
                    .query(params![
                        to_i64(now.as_secs()),
                        i64::try_from(max).unwrap_or(i64::MAX)
                    ])
                    .map_err(store_error)?;
                let mut last: Option<Arc<str>> = None;
                while let Some(r) = rows.next().map_err(store_error)? {
                    let aor_id: i64 = r.get(0).map_err(store_error)?;
                    let text: String = r.get(1).map_err(store_error)?;
                    let aor = match &last {
                        Some(a) if **a == *text => a.clone(),
                        _ => Arc::from(text.as_str()),
                    };
                    last = Some(aor.clone());
                    let row_id: i64 = r.get(2).map_err(store_error)?;
                    found.push((aor_id, aor, read_row(r, 2), row_id));
                }
            }
            let mut del = tx
                .prepare_cached("DELETE FROM location WHERE id = ?1")
                .map_err(store_error)?;
            let mut aors: Vec<i64> = Vec::new();
            let mut events = Vec::with_capacity(found.len());
            for (aor_id, aor, stored, row_id) in found {
                del.execute(params![row_id]).map_err(store_error)?;
                *delta -= 1;
                aors.push(aor_id);
                match stored {
                    Ok(s) => events.push(Event {
                        kind: EventKind::Expired,
                        aor,
                        binding: s.binding,
                    }),
                    // Expired by its `expires` column: gone all the same, but said.
                    Err(e) => tracing::warn!(%aor, error = %e, "expired location row does not read back; deleted"),
                }
            }
            aors.sort_unstable();
            aors.dedup();
            for id in aors {
                let left: i64 = tx
                    .prepare_cached("SELECT count(*) FROM location WHERE aor_id = ?1")
                    .and_then(|mut st| st.query_row(params![id], |r| r.get(0)))
                    .map_err(store_error)?;
                if left == 0 {
                    tx.prepare_cached("DELETE FROM location_aor WHERE id = ?1")
                        .and_then(|mut st| st.execute(params![id]))
                        .map_err(store_error)?;
                } else {
                    let v = self.next_version().bits_i64();
                    tx.prepare_cached("UPDATE location_aor SET version = ?2 WHERE id = ?1")
                        .and_then(|mut st| st.execute(params![id, v]))
                        .map_err(store_error)?;
                }
            }
            Ok(events)
        })
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        self.db.read(|c| {
            c.query_row(
                "SELECT (SELECT count(*) FROM location_aor), (SELECT count(*) FROM location)",
                [],
                |r| {
                    Ok(Counts {
                        aors: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        bindings: usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    })
                },
            )
            .map_err(store_error)
        })
    }

    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        // Cursor: the next location_aor id (ids only grow: an AOR present for the whole
        // scan is visited exactly once).
        let limit = i64::try_from(max_aors.max(1)).unwrap_or(i64::MAX);
        let (page, last, n) = self.db.read(|c| {
            // One statement, one snapshot: the window of AOR ids and their live bindings
            // (an AOR whose bindings all expired still moves the window).
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT a.id, a.aor, {COLUMNS} FROM \
                     (SELECT id, aor FROM location_aor WHERE id >= ?1 ORDER BY id LIMIT ?2) a \
                     LEFT JOIN location l ON l.aor_id = a.id AND l.expires > ?3 \
                     ORDER BY a.id, l.id"
                ))
                .map_err(store_error)?;
            let start = i64::try_from(cursor.0).unwrap_or(i64::MAX);
            let mut rows = st
                .query(params![start, limit, to_i64(now.as_secs())])
                .map_err(store_error)?;
            let mut page: Vec<(String, Vec<Binding>)> = Vec::new();
            let (mut last, mut n) = (None, 0i64);
            while let Some(r) = rows.next().map_err(store_error)? {
                let id: i64 = r.get(0).map_err(store_error)?;
                let aor: String = r.get(1).map_err(store_error)?;
                if last != Some(id) {
                    last = Some(id);
                    n += 1;
                    page.push((aor.clone(), Vec::new()));
                }
                if r.get_ref(2).map_err(store_error)? != rusqlite::types::ValueRef::Null {
                    let b = read_row(r, 2).map_err(|e| with_aor(e, &aor))?.binding;
                    if let Some((_, bs)) = page.last_mut() {
                        bs.push(b);
                    }
                }
            }
            Ok::<_, StoreError>((page, last, n))
        })?;
        for (aor, mut bs) in page {
            if !bs.is_empty() {
                bs.sort_by(sip_location::order);
                visit(&aor, &bs);
            }
        }
        Ok(match last {
            Some(id) if n >= limit => Some(Cursor(id.bits_u64() + 1)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::{DbOptions, Synchronous};
    use crate::storage::schema::MAIN;
    use sip_location::{MemoryStore, Op};

    const T0: u64 = 1_700_000_000;

    pub(crate) fn temp_db(name: &str) -> (std::path::PathBuf, Arc<Db>) {
        let dir = std::env::temp_dir().join(format!("sip-proxy-loc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(
            &dir.join("t.db"),
            MAIN,
            &DbOptions {
                synchronous: Synchronous::Normal,
                max_bytes: 1 << 30,
                readers: 2,
                check: true,
            },
            Duration::from_secs(T0),
        )
        .unwrap();
        (dir, Arc::new(db))
    }

    fn store(name: &str, limits: LocationLimits) -> (std::path::PathBuf, SqliteLocation) {
        let (dir, db) = temp_db(name);
        let s = SqliteLocation::open(db, limits, Duration::from_secs(T0)).unwrap();
        (dir, s)
    }

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn b(contact: &str, expires_at: u64) -> Binding {
        Binding::new(&BindingFields::new(contact, expires_at)).unwrap()
    }

    fn full() -> Binding {
        Binding::new(&BindingFields {
            contact: "sip:alice@10.0.0.7:5060;transport=tcp",
            expires_at: T0 + 3600,
            last_modified_ms: T0 * 1000 + 123,
            q: Some(500),
            call_id: "843817637684230@998sdasdh09",
            cseq: 1826,
            path: "<sip:p1.example.com;lr>,<sip:p2.example.com;lr;ob>",
            user_agent: "softphone/1.0",
            instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"),
            reg_id: Some(1),
            source: Some(Source {
                addr: "[2001:db8::9]:40312".parse().unwrap(),
                transport: Transport::Tls,
                local: Some("192.0.2.1:5061".parse().unwrap()),
                flow: Some(u64::MAX - 3),
            }),
            flags: Flags::NAT | Flags::OUTBOUND | Flags::KEEPALIVE,
        })
        .unwrap()
    }

    #[test]
    fn every_field_reads_back_byte_for_byte() {
        let (dir, s) = store("fields", LocationLimits::default());
        let f = full();
        let mut v4 = f.fields();
        v4.contact = "sip:bob@192.0.2.9";
        v4.instance = None;
        v4.reg_id = Some(0);
        v4.q = None;
        v4.source = Some(Source::new(
            "203.0.113.9:5060".parse().unwrap(),
            Transport::Udp,
        ));
        v4.flags = Flags::empty();
        let v4 = Binding::new(&v4).unwrap();
        let bare = b("sip:carol@192.0.2.10", T0 + 60);
        for x in [full(), v4, bare] {
            let aor = format!("sip:{}@example.com", x.contact().len());
            s.apply(&Changes::new(&aor).with(Op::Put(x.clone())), at(T0))
                .unwrap();
            let got = s.lookup(&aor, at(T0)).unwrap();
            assert_eq!(got.bindings(), std::slice::from_ref(&x));
            assert_eq!(got.bindings()[0].as_bytes(), x.as_bytes());
        }
        // Kamailio's columns are filled for the operator.
        let (user, domain, received, socket, q): (String, String, String, String, f64) = s
            .db
            .read(|c| {
                c.query_row(
                    "SELECT username, domain, received, socket, q FROM location WHERE contact LIKE 'sip:alice%'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
            })
            .unwrap();
        assert_eq!((user.as_str(), domain.as_str()), ("37", "example.com"));
        assert_eq!(received, "sip:[2001:db8::9]:40312;transport=tls");
        assert_eq!(socket, "tls:192.0.2.1:5061");
        assert!((q - 0.5).abs() < f64::EPSILON);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refresh_updates_in_place_and_keeps_the_ruid() {
        let (dir, s) = store("ruid", LocationLimits::default());
        let aor = "sip:a@x";
        s.apply(
            &Changes::new(aor).with(Op::Put(b("sip:1@h", T0 + 10))),
            at(T0),
        )
        .unwrap();
        let ruid = |s: &SqliteLocation| -> (i64, String) {
            s.db.read(|c| {
                c.query_row("SELECT id, ruid FROM location", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap()
        };
        let before = ruid(&s);
        let r = s
            .apply(
                &Changes::new(aor).with(Op::Put(b("sip:1@H", T0 + 20))),
                at(T0),
            )
            .unwrap();
        assert_eq!(r.events[0].kind, EventKind::Refreshed);
        assert_eq!(ruid(&s), before);
        assert_eq!(
            s.lookup(aor, at(T0)).unwrap().bindings()[0].expires_at(),
            T0 + 20
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn limits_conflicts_and_expiry_as_the_memory_store() {
        let (dir, s) = store(
            "limits",
            LocationLimits {
                max_bindings: 5,
                max_per_aor: 3,
            },
        );
        let now = at(T0);
        let snap = s.lookup("sip:a@x", now).unwrap();
        assert_eq!(snap.version, Version::ABSENT);
        let w = Changes::expecting("sip:a@x", snap.version)
            .with(Op::Put(b("sip:1@h", T0 + 9)))
            .with(Op::Put(b("sip:2@h", T0 + 30)))
            .with(Op::Put(b("sip:3@h", T0 + 30)));
        s.apply(&w, now).unwrap();
        assert!(matches!(s.apply(&w, now), Err(StoreError::Conflict { .. })));
        let four = Changes::new("sip:a@x").with(Op::Put(b("sip:4@h", T0 + 9)));
        assert!(matches!(
            s.apply(&four, now),
            Err(StoreError::TooManyBindings { limit: 3, .. })
        ));
        let two = Changes::new("sip:b@x")
            .with(Op::Put(b("sip:1@h", T0 + 9)))
            .with(Op::Put(b("sip:2@h", T0 + 9)));
        s.apply(&two, now).unwrap();
        let more = Changes::new("sip:c@x").with(Op::Put(b("sip:1@h", T0 + 9)));
        assert!(matches!(
            s.apply(&more, now),
            Err(StoreError::Full { limit: 5 })
        ));
        // A batch is all or nothing.
        let batch = [
            Changes::new("sip:b@x").with(Op::Clear),
            Changes::new("sip:d@x").with(Op::Put(b("sip:1@h", T0 + 9))),
            more.clone(),
            Changes::new("sip:e@x").with(Op::Put(b("sip:1@h", T0 + 9))),
        ];
        assert!(s.apply_all(&batch, now).is_err());
        assert_eq!(
            s.counts().unwrap(),
            Counts {
                aors: 2,
                bindings: 5
            }
        );
        assert_eq!(s.apply_all(&batch[..3], now).unwrap().len(), 3);
        assert_eq!(
            s.counts().unwrap(),
            Counts {
                aors: 3,
                bindings: 5
            }
        );
        // Expiry in batches, with events; an AOR left with bindings gets a new version.
        let v = s.lookup("sip:a@x", now).unwrap().version;
        let e = s.expire(at(T0 + 10), 2).unwrap();
        assert_eq!(e.len(), 2);
        let e2 = s.expire(at(T0 + 10), 10).unwrap();
        assert_eq!(e2.len(), 1);
        assert!(e.iter().chain(&e2).all(|e| e.kind == EventKind::Expired));
        assert_ne!(s.lookup("sip:a@x", now).unwrap().version, v);
        assert_eq!(
            s.counts().unwrap(),
            Counts {
                aors: 1,
                bindings: 2
            }
        );
        // Reopened, the store finds its counts and versions again.
        let again = SqliteLocation::open(s.db.clone(), s.limits, at(T0)).unwrap();
        assert_eq!(again.total.load(Ordering::Relaxed), 2);
        assert!(
            again.version.load(Ordering::Relaxed) >= s.lookup("sip:a@x", now).unwrap().version.0
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn scan_visits_every_aor_once_in_pages() {
        let (dir, s) = store("scan", LocationLimits::default());
        for i in 0..50 {
            let mut ch = Changes::new(format!("sip:u{i}@x")).with(Op::Put(b("sip:c@h", T0 + 100)));
            if i % 7 == 0 {
                ch = ch.with(Op::Put(b("sip:d@h", T0 + 5)));
            }
            s.apply(&ch, at(T0)).unwrap();
        }
        // u3 has only an expired binding at T0 + 10: not visited.
        s.apply(
            &Changes::new("sip:u3@x").with(Op::Put(b("sip:c@h", T0 + 5))),
            at(T0),
        )
        .unwrap();
        let mut seen = Vec::new();
        let mut cursor = Some(Cursor::START);
        let mut pages = 0;
        while let Some(c) = cursor {
            cursor = s
                .scan(c, 7, at(T0 + 10), &mut |aor, bs| {
                    assert_eq!(bs.len(), 1, "{aor}");
                    seen.push(aor.to_owned());
                })
                .unwrap();
            pages += 1;
            assert!(pages < 100);
        }
        seen.sort();
        let before = seen.len();
        seen.dedup();
        assert_eq!((before, seen.len()), (49, 49));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The store's results, comparable across stores.
    fn view(r: &Result<Applied, StoreError>) -> Result<Vec<(String, String, Vec<u8>)>, String> {
        match r {
            Ok(a) => {
                let mut v: Vec<_> = a
                    .events
                    .iter()
                    .map(|e| {
                        (
                            format!("{:?}", e.kind),
                            e.aor.to_string(),
                            e.binding.as_bytes().to_vec(),
                        )
                    })
                    .collect();
                v.sort();
                Ok(v)
            }
            Err(e) => Err(format!("{}", e.status())),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Random writes and expiries give the same events and sets as the memory store
        /// (the reference implementation of the trait).
        #[test]
        fn behaves_as_the_memory_store(ops in proptest::collection::vec(
            (0u8..6, 0usize..3, 0usize..4, 1u64..40, proptest::option::of(0u16..1000)), 1..40)
        ) {
            let (dir, sql) = store("prop", LocationLimits { max_bindings: 6, max_per_aor: 3 });
            let mem = MemoryStore::new(sip_location::MemoryConfig {
                max_bindings: 6,
                max_per_aor: 3,
                ..sip_location::MemoryConfig::default()
            });
            let aors = ["sip:a@x", "sip:b@x", "sip:c@x"];
            let contacts = ["sip:1@h", "sip:1@H", "sip:2@h", "sip:3@h;transport=tcp"];
            let mut now = T0;
            for (kind, a, c, dt, q) in ops {
                now += dt / 4;
                let mut f = BindingFields::new(contacts[c], now + dt);
                f.q = q;
                f.last_modified_ms = now * 1000;
                let bind = Binding::new(&f).unwrap();
                let ch = match kind {
                    0 | 1 => Changes::new(aors[a]).with(Op::Put(bind)),
                    2 => Changes::new(aors[a]).with(Op::Remove(bind)),
                    3 => Changes::new(aors[a]).with(Op::RemoveContact(contacts[c].into())),
                    4 => Changes::new(aors[a]).with(Op::Clear).with(Op::Put(bind)),
                    _ => {
                        let mut x: Vec<_> = mem.expire(at(now), 100).unwrap().into_iter().map(|e| e.binding.as_bytes().to_vec()).collect();
                        let mut y: Vec<_> = sql.expire(at(now), 100).unwrap().into_iter().map(|e| e.binding.as_bytes().to_vec()).collect();
                        x.sort();
                        y.sort();
                        proptest::prop_assert_eq!(x, y);
                        continue;
                    }
                };
                let x = view(&mem.apply(&ch, at(now)));
                let y = view(&sql.apply(&ch, at(now)));
                proptest::prop_assert_eq!(x, y);
                for aor in aors {
                    let x = mem.lookup(aor, at(now)).unwrap();
                    let y = sql.lookup(aor, at(now)).unwrap();
                    proptest::prop_assert_eq!(x.bindings(), y.bindings());
                }
                proptest::prop_assert_eq!(mem.counts().unwrap(), sql.counts().unwrap());
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
