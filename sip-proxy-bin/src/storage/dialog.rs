//! [`SqliteDialogs`]: the `DialogStore` on SQLite (Kamailio `dialog` over `db_sqlite`), the
//! store of the proxy's `Persister`.
//!
//! One row per confirmed dialog with Kamailio's `dialog` columns (plus the record's
//! revision, creation time and lifetime), its variables in `dialog_vars`, its profiles in
//! `xdata` (JSON, as Kamailio keeps them). The trait's rules hold in SQL: a `put` replaces a
//! row only with a higher revision; a `remove` leaves a tombstone in `dialog_removed` (the
//! last [`TOMBSTONES`] kept) so that a late `put` cannot bring the dialog back;
//! `claim_expired` is a conditional delete in one transaction.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use sip_dialog::{
    Change, Claim, DialogFlags, DialogRecord, DialogState, DialogStore, DialogUid, StoreError,
};

use super::Bits;
use super::db::Db;

/// Removal tombstones kept (the oldest are forgotten beyond it).
pub const TOMBSTONES: i64 = 65_536;

/// The SQLite dialog store.
#[derive(Debug)]
pub struct SqliteDialogs {
    db: Arc<Db>,
}

fn unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::DiskFull
                | C::SystemIoFailure
                | C::ReadOnly
                | C::CannotOpen
        )
    )
}

/// Maps an SQLite failure of `op` (on dialog `id`) to the trait's error.
fn fail(op: &'static str, id: Option<DialogUid>) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| {
        if unavailable(&e) {
            StoreError::Unavailable {
                op,
                detail: e.to_string(),
            }
        } else {
            StoreError::Failed {
                op,
                id,
                detail: e.to_string(),
            }
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0).unsigned_abs())
}

/// Kamailio's route-set column: the entries joined with commas.
fn join_routes(set: &[Box<str>]) -> Option<String> {
    (!set.is_empty()).then(|| set.join(","))
}

/// Splits a route-set column at the commas outside `<>` and quotes.
fn split_routes(text: Option<&str>) -> Vec<Box<str>> {
    let Some(text) = text else {
        return Vec::new();
    };
    let mut out: Vec<Box<str>> = Vec::new();
    let (mut angle, mut quoted, mut start) = (false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !angle && !quoted => {
                out.push(text[start..i].trim().into());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim().into());
    out.retain(|e| !e.is_empty());
    out
}

/// A socket column: text when it is UTF-8 (what the proxy stores), else a blob.
fn socket_value(b: &[u8]) -> ToSqlOutput<'_> {
    match std::str::from_utf8(b) {
        Ok(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Err(_) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Xdata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<(String, String)>,
}

const COLUMNS: &str = "id, rev, callid, from_uri, from_tag, to_uri, to_tag, caller_cseq, \
     callee_cseq, caller_route_set, callee_route_set, caller_contact, callee_contact, \
     caller_sock, callee_sock, state, start_time, timeout, sflags, iflags, req_uri, xdata, \
     created, lifetime";

fn read(r: &Row<'_>) -> Result<DialogRecord, StoreError> {
    let id = DialogUid(r.get::<_, i64>(0).map_err(fail("read", None))?.bits_u64());
    let f = fail("read", Some(id));
    let corrupt = |detail: String| StoreError::Corrupt {
        id: Some(id),
        detail,
    };
    let text = |i: usize| -> Result<Box<str>, StoreError> {
        Ok(r.get::<_, String>(i).map_err(&f)?.into_boxed_str())
    };
    let opt = |i: usize| -> Result<Option<String>, StoreError> { r.get(i).map_err(&f) };
    let bytes = |i: usize| -> Result<Box<[u8]>, StoreError> {
        Ok(match r.get_ref(i).map_err(&f)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.into(),
            ValueRef::Null => Box::default(),
            other => return Err(corrupt(format!("socket column {i} holds {other:?}"))),
        })
    };
    let num = |i: usize, what: &str| -> Result<u32, StoreError> {
        let v: i64 = r.get(i).map_err(&f)?;
        u32::try_from(v).map_err(|_| corrupt(format!("{what} {v} is out of range")))
    };
    let state: i64 = r.get(15).map_err(&f)?;
    let state = u8::try_from(state)
        .ok()
        .and_then(DialogState::from_number)
        .ok_or_else(|| corrupt(format!("state {state} is not 1-5")))?;
    let xdata: Xdata = match opt(21)? {
        None => Xdata::default(),
        Some(x) => serde_json::from_str(&x).map_err(|e| corrupt(format!("xdata: {e}")))?,
    };
    Ok(DialogRecord {
        id,
        rev: r.get::<_, i64>(1).map_err(&f)?.bits_u64(),
        state,
        call_id: text(2)?,
        from_uri: text(3)?,
        from_tag: text(4)?,
        to_uri: text(5)?,
        to_tag: text(6)?,
        caller_cseq: num(7, "caller_cseq")?,
        callee_cseq: num(8, "callee_cseq")?,
        caller_route_set: split_routes(opt(9)?.as_deref()),
        callee_route_set: split_routes(opt(10)?.as_deref()),
        caller_contact: text(11)?,
        callee_contact: text(12)?,
        caller_socket: bytes(13)?,
        callee_socket: bytes(14)?,
        start_time: from_ms(r.get(16).map_err(&f)?),
        timeout: from_ms(r.get(17).map_err(&f)?),
        sflags: num(18, "sflags")?,
        flags: DialogFlags(num(19, "iflags")?),
        request_uri: text(20)?,
        profiles: xdata
            .profiles
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        vars: Vec::new(),
        created: from_ms(r.get(22).map_err(&f)?),
        lifetime: from_ms(r.get(23).map_err(&f)?),
    })
}

impl SqliteDialogs {
    /// The store over `db` (schema [`MAIN`](super::schema::MAIN)).
    pub fn new(db: Arc<Db>) -> Self {
        SqliteDialogs { db }
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Dialogs stored.
    pub fn len(&self) -> Result<usize, StoreError> {
        self.db.read(|c| {
            c.query_row("SELECT count(*) FROM dialog", [], |r| r.get::<_, i64>(0))
                .map(|n| usize::try_from(n).unwrap_or(0))
                .map_err(fail("count", None))
        })
    }

    /// True when no dialog is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn with_vars(c: &Connection, mut rec: DialogRecord) -> Result<DialogRecord, StoreError> {
        let f = fail("read", Some(rec.id));
        let mut st = c
            .prepare_cached(
                "SELECT dialog_key, dialog_value FROM dialog_vars WHERE dialog_id = ?1 ORDER BY id",
            )
            .map_err(&f)?;
        rec.vars = st
            .query_map(params![rec.id.0.bits_i64()], |r| {
                Ok((
                    r.get::<_, String>(0)?.into_boxed_str(),
                    r.get::<_, String>(1)?.into_boxed_str(),
                ))
            })
            .map_err(&f)?
            .collect::<rusqlite::Result<_>>()
            .map_err(&f)?;
        Ok(rec)
    }

    fn get_in(c: &Connection, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
        let f = fail("get", Some(id));
        let mut st = c
            .prepare_cached(&format!("SELECT {COLUMNS} FROM dialog WHERE id = ?1"))
            .map_err(&f)?;
        let mut rows = st.query(params![id.0.bits_i64()]).map_err(&f)?;
        match rows.next().map_err(&f)? {
            None => Ok(None),
            Some(r) => Ok(Some(Self::with_vars(c, read(r)?)?)),
        }
    }

    fn put_in(tx: &Transaction<'_>, r: &DialogRecord) -> Result<(), StoreError> {
        let f = fail("put", Some(r.id));
        let id = r.id.0.bits_i64();
        let rev = r.rev.bits_i64();
        let stale: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM dialog_removed WHERE id = ?1 AND rev >= ?2) \
                 OR EXISTS (SELECT 1 FROM dialog WHERE id = ?1 AND rev >= ?2)",
            )
            .and_then(|mut st| st.query_row(params![id, rev], |x| x.get(0)))
            .map_err(&f)?;
        if stale {
            return Ok(());
        }
        let xdata = (!r.profiles.is_empty())
            .then(|| {
                serde_json::to_string(&Xdata {
                    profiles: r
                        .profiles
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
            })
            .transpose()
            .map_err(|e| StoreError::Failed {
                op: "put",
                id: Some(r.id),
                detail: e.to_string(),
            })?;
        let (hash_entry, hash_id) = (id >> 32, id & 0xffff_ffff);
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dialog (id, hash_entry, hash_id, rev, callid, from_uri, \
             from_tag, to_uri, to_tag, caller_cseq, callee_cseq, caller_route_set, \
             callee_route_set, caller_contact, callee_contact, caller_sock, callee_sock, state, \
             start_time, timeout, sflags, iflags, toroute_name, req_uri, xdata, created, \
             lifetime) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, NULL, ?23, ?24, ?25, ?26)",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                hash_entry,
                hash_id,
                rev,
                &*r.call_id,
                &*r.from_uri,
                &*r.from_tag,
                &*r.to_uri,
                &*r.to_tag,
                r.caller_cseq,
                r.callee_cseq,
                join_routes(&r.caller_route_set),
                join_routes(&r.callee_route_set),
                &*r.caller_contact,
                &*r.callee_contact,
                socket_value(&r.caller_socket),
                socket_value(&r.callee_socket),
                r.state.number(),
                ms(r.start_time),
                ms(r.timeout),
                r.sflags,
                r.flags.0,
                &*r.request_uri,
                xdata,
                ms(r.created),
                ms(r.lifetime),
            ])
        })
        .map_err(&f)?;
        tx.prepare_cached("DELETE FROM dialog_vars WHERE dialog_id = ?1")
            .and_then(|mut st| st.execute(params![id]))
            .map_err(&f)?;
        if !r.vars.is_empty() {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO dialog_vars (dialog_id, hash_entry, hash_id, dialog_key, \
                     dialog_value) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&f)?;
            for (k, v) in &r.vars {
                st.execute(params![id, hash_entry, hash_id, &**k, &**v])
                    .map_err(&f)?;
            }
        }
        Ok(())
    }

    fn remove_in(tx: &Transaction<'_>, id: DialogUid, rev: u64) -> Result<(), StoreError> {
        let f = fail("remove", Some(id));
        let i = id.0.bits_i64();
        tx.prepare_cached("DELETE FROM dialog WHERE id = ?1")
            .and_then(|mut st| st.execute(params![i]))
            .map_err(&f)?;
        tx.prepare_cached("DELETE FROM dialog_vars WHERE dialog_id = ?1")
            .and_then(|mut st| st.execute(params![i]))
            .map_err(&f)?;
        tx.prepare_cached(
            "INSERT INTO dialog_removed (id, rev) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET rev = max(rev, excluded.rev)",
        )
        .and_then(|mut st| st.execute(params![i, rev.bits_i64()]))
        .map_err(&f)?;
        let seq = tx.last_insert_rowid();
        if seq % 1024 == 0 {
            tx.prepare_cached("DELETE FROM dialog_removed WHERE seq <= ?1")
                .and_then(|mut st| st.execute(params![seq - TOMBSTONES]))
                .map_err(&f)?;
        }
        Ok(())
    }
}

impl DialogStore for SqliteDialogs {
    fn put(&self, record: &DialogRecord) -> Result<(), StoreError> {
        self.db
            .write(fail("put", Some(record.id)), |tx| Self::put_in(tx, record))
    }

    fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError> {
        self.db
            .write(fail("remove", Some(id)), |tx| Self::remove_in(tx, id, rev))
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.db.write(fail("apply", None), |tx| {
            for c in changes {
                match c {
                    Change::Insert(r) | Change::Update(r) => Self::put_in(tx, r)?,
                    Change::Remove { id, rev } => Self::remove_in(tx, *id, *rev)?,
                }
            }
            Ok(())
        })
    }

    fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError> {
        self.db.read(|c| {
            let f = fail("load_all", None);
            let mut st = c
                .prepare(&format!("SELECT {COLUMNS} FROM dialog ORDER BY id"))
                .map_err(&f)?;
            let mut rows = st.query([]).map_err(&f)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(&f)? {
                out.push(read(r)?);
            }
            out.into_iter().map(|r| Self::with_vars(c, r)).collect()
        })
    }

    fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
        self.db.read(|c| Self::get_in(c, id))
    }

    fn find(
        &self,
        call_id: &str,
        tag_a: &str,
        tag_b: &str,
    ) -> Result<Option<DialogRecord>, StoreError> {
        self.db.read(|c| {
            let f = fail("find", None);
            let id: Option<i64> = c
                .prepare_cached(
                    "SELECT id FROM dialog WHERE callid = ?1 AND \
                     ((from_tag = ?2 AND to_tag = ?3) OR (from_tag = ?3 AND to_tag = ?2)) LIMIT 1",
                )
                .and_then(|mut st| {
                    st.query_row(params![call_id, tag_a, tag_b], |r| r.get(0))
                        .optional()
                })
                .map_err(&f)?;
            match id {
                None => Ok(None),
                Some(id) => Self::get_in(c, DialogUid(id.bits_u64())),
            }
        })
    }

    fn claim_expired(&self, id: DialogUid, now: Duration) -> Result<Claim, StoreError> {
        self.db.write(fail("claim_expired", Some(id)), |tx| {
            let Some(rec) = Self::get_in(tx, id)? else {
                return Ok(Claim::Absent);
            };
            if rec.timeout > now {
                return Ok(Claim::Refreshed(rec));
            }
            Self::remove_in(tx, id, rec.rev)?;
            Ok(Claim::Claimed(rec))
        })
    }

    fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError> {
        self.db.read(|c| {
            let f = fail("expired", None);
            let mut st = c
                .prepare_cached(
                    "SELECT id FROM dialog WHERE timeout <= ?1 ORDER BY timeout, id LIMIT ?2",
                )
                .map_err(&f)?;
            st.query_map(
                params![ms(now), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok(DialogUid(r.get::<_, i64>(0)?.bits_u64())),
            )
            .map_err(&f)?
            .collect::<rusqlite::Result<_>>()
            .map_err(&f)
        })
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.db.write(fail("clear", None), |tx| {
            tx.execute_batch("DELETE FROM dialog; DELETE FROM dialog_vars;")
                .map_err(fail("clear", None))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::{DbOptions, Synchronous};
    use crate::storage::schema::MAIN;
    use sip_dialog::{DbMode, Expiry, Persister, doc_record};

    fn store(name: &str) -> (std::path::PathBuf, SqliteDialogs) {
        let dir = std::env::temp_dir().join(format!("sip-proxy-dlg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(
            &dir.join("t.db"),
            MAIN,
            &DbOptions {
                synchronous: Synchronous::Normal,
                max_bytes: 1 << 30,
                readers: 1,
                check: true,
            },
            Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        (dir, SqliteDialogs::new(Arc::new(db)))
    }

    fn rich() -> DialogRecord {
        let mut r = doc_record();
        r.caller_route_set = vec![
            "<sip:p1.example.com;lr>".into(),
            "\"a, b\" <sip:p2.example.com;lr;x=\"1,2\">".into(),
        ];
        r.callee_socket = Box::from(&b"\xff\x00flow"[..]);
        r.profiles = vec![
            ("caller".into(), "alice".into()),
            ("calls".into(), String::new().into()),
        ];
        r.vars = vec![
            ("billing".into(), "A-17".into()),
            ("note".into(), "x, y".into()),
        ];
        r.sflags = 7;
        r.start_time = Duration::from_millis(1_700_000_005_250);
        r.timeout = Duration::from_millis(1_700_003_605_250);
        r
    }

    #[test]
    fn records_read_back_whole() {
        let (dir, s) = store("roundtrip");
        for r in [doc_record(), rich()] {
            s.put(&r).unwrap();
            assert_eq!(s.get(r.id).unwrap().as_ref(), Some(&r));
            assert_eq!(
                s.find(&r.call_id, &r.to_tag, &r.from_tag).unwrap(),
                Some(r.clone())
            );
            assert_eq!(s.find(&r.call_id, &r.from_tag, "other").unwrap(), None);
            assert_eq!(s.load_all().unwrap(), std::slice::from_ref(&r));
            s.clear().unwrap();
        }
        // Kamailio's columns, readable with sqlite3.
        let r = rich();
        s.put(&r).unwrap();
        let (route, xdata, sock, he, hi): (String, String, String, i64, i64) =
            s.db.read(|c| {
                c.query_row(
                    "SELECT caller_route_set, xdata, caller_sock, hash_entry, hash_id FROM dialog",
                    [],
                    |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?)),
                )
            })
            .unwrap();
        assert_eq!(
            route,
            "<sip:p1.example.com;lr>,\"a, b\" <sip:p2.example.com;lr;x=\"1,2\">"
        );
        assert_eq!(xdata, r#"{"profiles":[["caller","alice"],["calls",""]]}"#);
        assert_eq!(sock, "udp:192.0.2.1:5060");
        assert_eq!(((he << 32) | hi).bits_u64(), r.id.0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn revisions_only_go_forward_and_removals_stay() {
        let (dir, s) = store("revs");
        let mut r = doc_record();
        r.rev = 5;
        s.put(&r).unwrap();
        let mut stale = r.clone();
        stale.rev = 4;
        stale.caller_cseq = 99;
        s.put(&stale).unwrap();
        assert_eq!(s.get(r.id).unwrap().unwrap().caller_cseq, r.caller_cseq);
        let mut newer = r.clone();
        newer.rev = 6;
        newer.caller_cseq = 100;
        s.apply(&[Change::Update(Arc::new(newer.clone()))]).unwrap();
        assert_eq!(s.get(r.id).unwrap(), Some(newer));
        s.remove(r.id, 7).unwrap();
        s.put(&r).unwrap(); // a late write after the removal
        assert!(s.is_empty().unwrap());
        let mut reborn = r.clone();
        reborn.rev = 8;
        s.put(&reborn).unwrap();
        assert_eq!(s.len().unwrap(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn expiry_is_claimed_once() {
        let (dir, s) = store("claim");
        let r = doc_record();
        s.put(&r).unwrap();
        let early = r.timeout.saturating_sub(Duration::from_secs(1));
        assert_eq!(s.expired(early, 10).unwrap(), []);
        assert_eq!(
            s.claim_expired(r.id, early).unwrap(),
            Claim::Refreshed(r.clone())
        );
        assert_eq!(s.expired(r.timeout, 10).unwrap(), [r.id]);
        assert_eq!(
            s.claim_expired(r.id, r.timeout).unwrap(),
            Claim::Claimed(r.clone())
        );
        assert_eq!(s.claim_expired(r.id, r.timeout).unwrap(), Claim::Absent);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_persister_writes_each_mode_to_sqlite() {
        let (dir, s) = store("persister");
        let t0 = Duration::from_secs(1_700_000_000);
        let r = Arc::new(rich());
        // DELAYED: written with the period, restored, removed at expiry.
        let p = Persister::new(&s, DbMode::Delayed, Duration::from_secs(1));
        p.record(&Change::Insert(r.clone()), t0).unwrap();
        assert!(s.is_empty().unwrap());
        assert_eq!(p.flush_due(t0 + Duration::from_secs(1)).unwrap(), 1);
        assert_eq!(p.restore().unwrap(), [(*r).clone()]);
        assert_eq!(p.expire(&r, r.timeout).unwrap(), Expiry::SendBye);
        p.flush().unwrap();
        assert!(s.is_empty().unwrap());
        // REALTIME: at once; the expiry claims it in the store.
        let mut r2 = (*r).clone();
        r2.id = DialogUid::new(1, 43);
        let r2 = Arc::new(r2);
        let p = Persister::new(&s, DbMode::Realtime, Duration::from_secs(1));
        p.record(&Change::Insert(r2.clone()), t0).unwrap();
        assert_eq!(s.len().unwrap(), 1);
        assert_eq!(p.expire(&r2, r2.timeout).unwrap(), Expiry::SendBye);
        assert_eq!(p.expire(&r2, r2.timeout).unwrap(), Expiry::Skip);
        // SHUTDOWN: the table rewritten with the live dialogs (an ended one, its
        // tombstone kept, does not come back).
        let mut r3 = (*r).clone();
        r3.id = DialogUid::new(1, 44);
        let r3 = Arc::new(r3);
        let p = Persister::new(&s, DbMode::Shutdown, Duration::from_secs(1));
        assert_eq!(p.shutdown(&[r3.clone(), r.clone()]).unwrap(), 2);
        assert_eq!(p.restore().unwrap(), [(*r3).clone()]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn route_sets_split_at_top_level_commas() {
        let v = split_routes(Some("<sip:a;lr>, <sip:b;lr;x=\"1,2\">,\"x,y\" <sip:c>"));
        assert_eq!(v.len(), 3);
        assert_eq!(&*v[2], "\"x,y\" <sip:c>");
        assert!(split_routes(None).is_empty());
    }
}
