//! The schema, versioned: each database records the migrations applied to it in
//! `schema_version` (version, description, when) and the last one's number in the header's
//! `PRAGMA user_version`, and opening it applies the missing ones in order, in one
//! transaction. A database whose schema is newer than this program, or whose
//! recorded migrations are not the ones listed here, is refused with the reason.
//!
//! The tables carry the columns of Kamailio's `location`, `dialog`/`dialog_vars` and
//! `sip_trace` tables (`docs/storage.md` shows them side by side, with every difference and
//! why).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// One step of a schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number: 1, 2, … in order.
    pub version: u32,
    /// What it does (recorded, and compared at each open).
    pub description: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// `sip-proxy.db`: registrations and dialogs.
pub const MAIN: &[Migration] = &[
    Migration {
        version: 1,
        description: "location: Kamailio usrloc columns, AOR index table with versions",
        sql: r#"
CREATE TABLE location_aor (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    aor TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL
);
CREATE TABLE location (
    id INTEGER PRIMARY KEY,
    aor_id INTEGER NOT NULL REFERENCES location_aor(id),
    ruid TEXT NOT NULL,
    username TEXT NOT NULL DEFAULT '',
    domain TEXT,
    contact TEXT NOT NULL,
    received TEXT,
    path TEXT,
    expires INTEGER NOT NULL,
    q REAL,
    callid TEXT NOT NULL DEFAULT '',
    cseq INTEGER NOT NULL DEFAULT 0,
    last_modified INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    cflags INTEGER NOT NULL DEFAULT 0,
    user_agent TEXT NOT NULL DEFAULT '',
    socket TEXT,
    methods INTEGER,
    instance TEXT,
    reg_id INTEGER,
    server_id INTEGER NOT NULL DEFAULT 0,
    connection_id INTEGER,
    keepalive INTEGER NOT NULL DEFAULT 0,
    "partition" INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX location_aor_idx ON location (aor_id);
CREATE INDEX location_expires_idx ON location (expires);
"#,
    },
    Migration {
        version: 2,
        description: "dialog: Kamailio dialog and dialog_vars columns, removal tombstones",
        sql: r"
CREATE TABLE dialog (
    id INTEGER PRIMARY KEY,
    hash_entry INTEGER NOT NULL,
    hash_id INTEGER NOT NULL,
    rev INTEGER NOT NULL,
    callid TEXT NOT NULL,
    from_uri TEXT NOT NULL,
    from_tag TEXT NOT NULL,
    to_uri TEXT NOT NULL,
    to_tag TEXT NOT NULL,
    caller_cseq INTEGER NOT NULL,
    callee_cseq INTEGER NOT NULL,
    caller_route_set TEXT,
    callee_route_set TEXT,
    caller_contact TEXT NOT NULL,
    callee_contact TEXT NOT NULL,
    caller_sock,
    callee_sock,
    state INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    sflags INTEGER NOT NULL DEFAULT 0,
    iflags INTEGER NOT NULL DEFAULT 0,
    toroute_name TEXT,
    req_uri TEXT NOT NULL,
    xdata TEXT,
    created INTEGER NOT NULL,
    lifetime INTEGER NOT NULL
);
CREATE INDEX dialog_callid_idx ON dialog (callid);
CREATE INDEX dialog_timeout_idx ON dialog (timeout);
CREATE TABLE dialog_vars (
    id INTEGER PRIMARY KEY,
    dialog_id INTEGER NOT NULL,
    hash_entry INTEGER NOT NULL,
    hash_id INTEGER NOT NULL,
    dialog_key TEXT NOT NULL,
    dialog_value TEXT NOT NULL
);
CREATE INDEX dialog_vars_idx ON dialog_vars (dialog_id);
CREATE TABLE dialog_removed (
    seq INTEGER PRIMARY KEY,
    id INTEGER NOT NULL UNIQUE,
    rev INTEGER NOT NULL
);
",
    },
];

/// `sip-trace.db`: the captured messages.
pub const TRACE: &[Migration] = &[Migration {
    version: 1,
    description: "sip_trace: Kamailio siptrace columns plus transport",
    sql: r"
CREATE TABLE sip_trace (
    id INTEGER PRIMARY KEY,
    time_stamp INTEGER NOT NULL,
    time_us INTEGER NOT NULL DEFAULT 0,
    callid TEXT NOT NULL DEFAULT '',
    traced_user TEXT NOT NULL DEFAULT '',
    msg NOT NULL,
    method TEXT NOT NULL DEFAULT '',
    status INTEGER,
    fromip TEXT NOT NULL,
    toip TEXT NOT NULL,
    fromtag TEXT NOT NULL DEFAULT '',
    totag TEXT NOT NULL DEFAULT '',
    direction TEXT NOT NULL,
    transport TEXT NOT NULL
);
CREATE INDEX sip_trace_date_idx ON sip_trace (time_stamp);
CREATE INDEX sip_trace_callid_idx ON sip_trace (callid);
",
}];

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub enum MigrateError {
    /// SQLite failed.
    Sqlite(rusqlite::Error),
    /// The recorded schema is not one of ours, or is newer.
    Mismatch(String),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

/// The schema version recorded in `conn` (0 for a new database).
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

/// Brings `conn` to the last of `migrations` (checking the ones already applied), and
/// records the start in `storage_meta` — a write, so that a database that cannot be written
/// fails here. One immediate transaction: a database locked by another process fails at
/// once (after the busy timeout), and a failed migration leaves it as it was.
pub fn migrate(
    conn: &mut Connection,
    migrations: &[Migration],
    now: Duration,
) -> Result<u32, MigrateError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version INTEGER PRIMARY KEY,
             description TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS storage_meta (
             key TEXT PRIMARY KEY,
             value TEXT NOT NULL
         );",
    )?;
    let applied: Vec<(u32, String)> = {
        let mut st =
            tx.prepare("SELECT version, description FROM schema_version ORDER BY version")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let known = migrations.last().map_or(0, |m| m.version);
    for (v, d) in &applied {
        match migrations.iter().find(|m| m.version == *v) {
            None if *v > known => {
                return Err(MigrateError::Mismatch(format!(
                    "schema version {v} is newer than this sip-proxy knows (up to {known}): run the newer sip-proxy, or restore a backup made by this one"
                )));
            }
            Some(m) if m.description == d => {}
            _ => {
                return Err(MigrateError::Mismatch(format!(
                    "schema version {v} (`{d}`) is not one of this database kind's migrations: not a sip-proxy database of this kind"
                )));
            }
        }
    }
    let current = applied.last().map_or(0, |(v, _)| *v);
    // `PRAGMA user_version` carries the same number, for tools that read only the header
    // (and a program that recorded its migrations elsewhere is still refused).
    let header: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if header > known {
        return Err(MigrateError::Mismatch(format!(
            "schema version {header} (user_version) is newer than this sip-proxy knows (up to {known}): run the newer sip-proxy, or restore a backup made by this one"
        )));
    }
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.description, secs],
        )?;
        if current > 0 {
            tracing::info!(
                version = m.version,
                what = m.description,
                "database migrated"
            );
        }
    }
    if current < known || header != known {
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.execute(
        "INSERT INTO storage_meta (key, value) VALUES ('last_start', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![secs.to_string()],
    )?;
    tx.commit()?;
    Ok(current)
}
