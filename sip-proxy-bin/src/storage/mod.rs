//! Persistence on embedded SQLite: registrations and dialogs survive a restart (and a
//! `kill -9`), and every message can go to a `sip_trace` table — Kamailio's `usrloc` and
//! `dialog` `db_mode`s over `db_sqlite`, and `siptrace` to a database.
//!
//! * [`db`]: opening a database (data directory 0700 and its lock, WAL, size limit,
//!   integrity check, migrations, a test write): a locked, corrupt, unwritable or full
//!   database is a clear error at start.
//! * [`schema`]: the versioned schema and its migrations.
//! * [`location`]: [`SqliteLocation`], the `LocationStore` the `Tiered` store writes
//!   through or back to (`db_mode` 1, 2) or uses alone (3).
//! * [`dialog`]: [`SqliteDialogs`], the `DialogStore` of the `Persister` (`db_mode` 1–3).
//! * [`trace`]: [`TraceDb`], the `sip_trace` capture sink.
//!
//! The proxy's core stays sans-IO: `run` opens the storage ([`open`]) and hands it to
//! `Proxy::with_storage`; a [`Flusher`] thread writes back every `flush_ms`, off the SIP
//! path and off the timer thread. `docs/storage.md` has the tables beside Kamailio's, the
//! modes and where they differ from Kamailio's.

pub mod db;
pub mod dialog;
pub mod location;
pub mod schema;
pub mod trace;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use sip_dialog::DbMode;
use sip_location::{
    Applied, Binding, Changes, Counts, Cursor, Event, LocationStore, MemoryStore, Mode, Snapshot,
    StoreError, Tiered,
};

pub use db::{DataDir, Db, DbOptions, OpenError, Synchronous};
pub use dialog::SqliteDialogs;
pub use location::{LocationLimits, SqliteLocation};
pub use trace::{TraceConfig, TraceDb};

use crate::config::Config;
use crate::net::Clock;
use crate::proxy::Proxy;

/// The database of registrations and dialogs, in the data directory.
pub const DB_FILE: &str = "sip-proxy.db";
/// The `sip_trace` database, in the data directory.
pub const TRACE_FILE: &str = "sip-trace.db";

/// Where state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `DATA_DIR/sip-proxy.db`, in the `db_mode`s configured.
    #[default]
    Sqlite,
    /// Memory only: nothing survives a restart (`db_mode` 0 for both stores).
    Memory,
}

/// `[storage]`: persistence of registrations and dialogs, and the `sip_trace` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite` (default) or `memory`.
    pub backend: Backend,
    /// Kamailio `db_mode` of both stores: 0 memory only, 1 write-through / realtime, 2
    /// write-back / delayed (default), 3 store only (location) / at shutdown (dialogs).
    pub db_mode: u8,
    /// `db_mode` of the location store, over `db_mode`.
    pub location_db_mode: Option<u8>,
    /// `db_mode` of the dialog store, over `db_mode`.
    pub dialog_db_mode: Option<u8>,
    /// Write-back interval (location `db_mode` 2, Kamailio `timer_interval`) and dialog
    /// update period (`db_update_period`; also the retry interval of failed realtime
    /// writes), milliseconds.
    pub flush_ms: u64,
    /// `normal` (a commit survives `kill -9`) or `full` (fsync: survives a power cut).
    pub synchronous: Synchronous,
    /// Largest size of each database file, MiB (writes beyond fail as "full").
    pub max_db_mb: u64,
    /// Write every SIP message to `DATA_DIR/sip-trace.db`.
    pub trace: bool,
    /// `sip_trace` rows kept at most (0: no row limit).
    pub trace_max_rows: u64,
    /// `sip_trace` rows older than this are deleted, seconds (0: no age limit).
    pub trace_max_age: u64,
    /// Messages waiting for the trace writer (beyond: dropped and counted).
    pub trace_queue: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Sqlite,
            db_mode: 2,
            location_db_mode: None,
            dialog_db_mode: None,
            flush_ms: 1000,
            synchronous: Synchronous::Normal,
            max_db_mb: 4096,
            trace: false,
            trace_max_rows: 1_000_000,
            trace_max_age: 7 * 86_400,
            trace_queue: 10_000,
        }
    }
}

impl StorageConfig {
    /// The location store's `db_mode` (0 with the memory backend).
    pub fn location_mode(&self) -> u8 {
        match self.backend {
            Backend::Memory => 0,
            Backend::Sqlite => self.location_db_mode.unwrap_or(self.db_mode),
        }
    }

    /// The dialog store's `db_mode` (0 with the memory backend).
    pub fn dialog_mode(&self) -> u8 {
        match self.backend {
            Backend::Memory => 0,
            Backend::Sqlite => self.dialog_db_mode.unwrap_or(self.db_mode),
        }
    }

    /// The checks `sip-proxy check` and `run` make.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("db_mode", Some(self.db_mode)),
            ("location_db_mode", self.location_db_mode),
            ("dialog_db_mode", self.dialog_db_mode),
        ] {
            if let Some(v) = v.filter(|v| *v > 3) {
                return Err(format!(
                    "storage.{key} = {v}: 0 (memory only), 1 (write-through), 2 (write-back) or 3 (store only / at shutdown)"
                ));
            }
        }
        if !(10..=3_600_000).contains(&self.flush_ms) {
            return Err(format!(
                "storage.flush_ms = {}: between 10 and 3600000",
                self.flush_ms
            ));
        }
        if self.max_db_mb == 0 {
            return Err("storage.max_db_mb = 0: at least 1".into());
        }
        if self.trace_queue == 0 {
            return Err("storage.trace_queue = 0: at least 1".into());
        }
        if self.trace && self.trace_max_rows == 0 && self.trace_max_age == 0 {
            return Err(
                "storage.trace_max_rows and storage.trace_max_age are both 0: the sip_trace table would grow without bound".into(),
            );
        }
        if self.trace && self.backend == Backend::Memory {
            return Err("storage.trace needs storage.backend = \"sqlite\"".into());
        }
        Ok(())
    }

    /// How each database is opened.
    pub fn db_options(&self, readers: usize, check: bool) -> DbOptions {
        DbOptions {
            synchronous: self.synchronous,
            max_bytes: self.max_db_mb.saturating_mul(1 << 20),
            readers,
            check,
        }
    }

    /// The `sip_trace` retention.
    pub fn trace_config(&self) -> TraceConfig {
        TraceConfig {
            queue: self.trace_queue,
            max_rows: self.trace_max_rows,
            max_age: Duration::from_secs(self.trace_max_age),
        }
    }
}

/// Flags of `sip-proxy run` for the storage (each overrides its key in the file).
#[derive(Debug, clap::Args, Default, Clone)]
pub struct StorageArgs {
    /// Directory of the database (and of the other runtime files), created 0700 when
    /// missing [default: ./sip-proxy-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite` (default: registrations and dialogs survive restarts) or `memory`.
    #[arg(long, value_name = "BACKEND")]
    pub storage: Option<Backend>,
    /// Kamailio db_mode for both stores: 0 memory only, 1 write-through, 2 write-back
    /// (default), 3 store only (location) / written at shutdown (dialogs).
    #[arg(long, value_name = "0|1|2|3", value_parser = clap::value_parser!(u8).range(0..=3))]
    pub db_mode: Option<u8>,
    /// Write every SIP message to the sip_trace table of DATA_DIR/sip-trace.db.
    #[arg(long)]
    pub trace_db: bool,
}

impl StorageArgs {
    /// Puts the flags over the file's keys.
    pub fn apply(&self, c: &mut Config) {
        if let Some(d) = &self.data_dir {
            c.data_dir.clone_from(d);
        }
        if let Some(b) = self.storage {
            c.storage.backend = b;
        }
        if let Some(m) = self.db_mode {
            c.storage.db_mode = m;
            c.storage.location_db_mode = None;
            c.storage.dialog_db_mode = None;
        }
        if self.trace_db {
            c.storage.trace = true;
        }
    }
}

/// The storage `run` opened, for `Proxy::with_storage`.
#[derive(Debug, Default)]
pub struct Opened {
    dir: Option<DataDir>,
    db: Option<Arc<Db>>,
    location: Option<(SqliteLocation, Mode)>,
    dialogs: Option<(SqliteDialogs, DbMode)>,
    flush: Duration,
}

impl Opened {
    /// Registrations and dialogs live elsewhere (Redis, `--redis`): the database, if open,
    /// keeps neither.
    pub(crate) fn share_stores_elsewhere(&mut self) {
        if self.location.take().is_some() || self.dialogs.take().is_some() {
            tracing::info!(
                "--redis: registrations and dialogs are kept in Redis, not in the database"
            );
        }
    }

    /// Nothing opened: everything in memory (what `Proxy::new` uses).
    pub fn memory() -> Self {
        Opened::default()
    }

    /// The data directory, when one is in use.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(DataDir::path)
    }

    /// The registrations and dialogs database, when open.
    pub fn db(&self) -> Option<&Arc<Db>> {
        self.db.as_ref()
    }

    /// One line for the log: what persists where.
    pub fn describe(&self) -> String {
        let Some(db) = &self.db else {
            return "registrations and dialogs in memory only (lost at exit)".into();
        };
        let loc = match &self.location {
            None => "registrations in memory only".to_owned(),
            Some((_, m)) => format!("registrations {}", mode_text(*m)),
        };
        let dlg = match &self.dialogs {
            None => "dialogs in memory only".to_owned(),
            Some((_, m)) => format!("dialogs {}", dialog_mode_text(*m)),
        };
        format!("{loc}, {dlg}: {}", db.path().display())
    }
}

fn mode_text(m: Mode) -> String {
    match m {
        Mode::MemoryOnly => "in memory only".into(),
        Mode::WriteThrough => "written through (db_mode 1)".into(),
        Mode::WriteBack => "written back (db_mode 2)".into(),
        Mode::StoreOnly => "in the database only (db_mode 3)".into(),
    }
}

fn dialog_mode_text(m: DbMode) -> String {
    match m {
        DbMode::NoDb => "in memory only".into(),
        DbMode::Realtime => "written at once (db_mode 1)".into(),
        DbMode::Delayed => "written back (db_mode 2)".into(),
        DbMode::Shutdown => "written at shutdown (db_mode 3)".into(),
    }
}

/// Opens what `cfg.storage` asks for: the data directory (created 0700, locked) and
/// `sip-proxy.db` in it, unless both stores are in memory (and no trace is asked for).
/// `workers` sizes the reader connections (store-only lookups come from every worker).
pub fn open(cfg: &Config, workers: usize, now: Duration) -> Result<Opened, OpenError> {
    let s = &cfg.storage;
    let (lm, dm) = (s.location_mode(), s.dialog_mode());
    let dm = if cfg.dialog.track { dm } else { 0 };
    if lm == 0 && dm == 0 && !s.trace {
        return Ok(Opened::memory());
    }
    let dir = DataDir::open(&cfg.data_dir)?;
    let flush = Duration::from_millis(s.flush_ms);
    if lm == 0 && dm == 0 {
        return Ok(Opened {
            dir: Some(dir),
            flush,
            ..Opened::default()
        });
    }
    let path = dir.path().join(DB_FILE);
    let readers = if lm == 3 { workers.clamp(1, 8) } else { 1 };
    let db = Arc::new(Db::open(
        &path,
        schema::MAIN,
        &s.db_options(readers, true),
        now,
    )?);
    let location = match Mode::from_db_mode(lm) {
        None | Some(Mode::MemoryOnly) => None,
        Some(m) => Some((
            SqliteLocation::open(db.clone(), LocationLimits::default(), now)
                .map_err(|e| OpenError::from_sqlite(&path, e))?,
            m,
        )),
    };
    let dialogs = match DbMode::from_number(dm) {
        None | Some(DbMode::NoDb) => None,
        Some(m) => Some((SqliteDialogs::new(db.clone()), m)),
    };
    Ok(Opened {
        dir: Some(dir),
        db: Some(db),
        location,
        dialogs,
        flush,
    })
}

/// The proxy's location store: the sharded memory store alone, or in front of SQLite.
#[derive(Debug)]
pub enum Location {
    /// `db_mode` 0.
    Memory(MemoryStore),
    /// `db_mode` 1–3.
    Sqlite(Tiered<MemoryStore, SqliteLocation>),
    /// Shared by several nodes in Redis (`--redis`): every change stored before the reply.
    Redis(Arc<crate::redis::RedisLocation>),
}

impl Location {
    /// The store for `cache` (the proxy's memory store) and what was opened; restores
    /// what the database holds (and deletes what expired while the proxy was down).
    /// Returns the store and the number of AORs restored.
    pub(crate) fn new(
        cache: MemoryStore,
        opened: &mut Opened,
        now: Duration,
    ) -> Result<(Self, usize), StoreError> {
        let Some((backing, mode)) = opened.location.take() else {
            return Ok((Location::Memory(cache), 0));
        };
        // Rows whose time ran out while the proxy was down.
        while backing.expire(now, 10_000)?.len() == 10_000 {}
        let t = Tiered::new(cache, backing, mode);
        let n = t.load(now)?;
        Ok((Location::Sqlite(t), n))
    }

    /// AORs changed and not yet written back (write-back mode).
    pub fn dirty(&self) -> usize {
        match self {
            Location::Memory(_) | Location::Redis(_) => 0,
            Location::Sqlite(t) => t.dirty(),
        }
    }

    /// The `db_mode` in force.
    pub fn mode(&self) -> Mode {
        match self {
            Location::Memory(_) => Mode::MemoryOnly,
            Location::Sqlite(t) => t.mode(),
            Location::Redis(_) => Mode::WriteThrough,
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Location::Memory($s) => $e,
            Location::Sqlite($s) => $e,
            Location::Redis($s) => $e,
        }
    };
}

impl LocationStore for Location {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        each!(self, s => s.lookup(aor, now))
    }
    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        each!(self, s => s.apply(changes, now))
    }
    fn apply_all(&self, batch: &[Changes], now: Duration) -> Result<Vec<Applied>, StoreError> {
        each!(self, s => s.apply_all(batch, now))
    }
    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError> {
        each!(self, s => s.expire(now, max))
    }
    fn counts(&self) -> Result<Counts, StoreError> {
        each!(self, s => s.counts())
    }
    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        each!(self, s => s.scan(cursor, max_aors, now, visit))
    }
    fn flush(&self, now: Duration) -> Result<usize, StoreError> {
        each!(self, s => s.flush(now))
    }
    fn remove(
        &self,
        aor: &str,
        contact: Option<&str>,
        now: Duration,
    ) -> Result<Vec<Event>, StoreError> {
        each!(self, s => s.remove(aor, contact, now))
    }
}

/// What `Local` keeps of the storage besides the location store.
#[derive(Debug)]
pub(crate) struct Persistence {
    /// The dialog persister (`db_mode` 1–3).
    pub(crate) dialogs: Option<sip_dialog::Persister<SqliteDialogs>>,
    /// Write-back / retry interval.
    pub(crate) flush: Duration,
    /// Rate limit of the failure log.
    pub(crate) failures: FailureLog,
    /// The data directory's lock, held while the proxy lives.
    _dir: Option<DataDir>,
}

impl Persistence {
    /// The dialog part of `opened` (the location part taken by [`Location::new`]).
    pub(crate) fn new(opened: Opened) -> Self {
        let flush = opened.flush;
        Persistence {
            dialogs: opened
                .dialogs
                .map(|(s, m)| sip_dialog::Persister::new(s, m, flush)),
            flush,
            failures: FailureLog::new(Duration::from_secs(10)),
            _dir: opened.dir,
        }
    }
}

impl Persistence {
    /// Whether the tracker must report its changes (the persister writes them as they come
    /// or every period: `db_mode` 1, 2).
    pub(crate) fn records_changes(&self) -> bool {
        self.dialogs
            .as_ref()
            .is_some_and(|p| matches!(p.mode(), DbMode::Realtime | DbMode::Delayed))
    }

    /// Gives the stored dialogs to `tracker` (those whose lifetime passed meanwhile expire
    /// at its next poll, and get their BYEs); returns how many.
    pub(crate) fn restore(
        &self,
        tracker: Option<&sip_dialog::Tracker>,
        now: Duration,
    ) -> Result<usize, crate::proxy::SetupError> {
        let (Some(t), Some(p)) = (tracker, &self.dialogs) else {
            return Ok(0);
        };
        let records = p
            .restore()
            .map_err(|e| crate::proxy::SetupError::Storage(e.to_string()))?;
        let mut n = 0;
        for r in records {
            let id = r.id;
            match t.insert_record(r, now) {
                Ok(_) => n += 1,
                Err(e) => tracing::warn!(dialog = %id, error = %e, "stored dialog not restored"),
            }
        }
        Ok(n)
    }
}

/// Logs a kind of failure at most once per interval, counting the ones in between.
#[derive(Debug)]
pub(crate) struct FailureLog {
    every_ms: u64,
    next_ms: AtomicU64,
    quiet: AtomicU64,
}

impl FailureLog {
    pub(crate) fn new(every: Duration) -> Self {
        FailureLog {
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
            quiet: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a failure at `now` (monotonic) is to be logged, `n` being the
    /// failures not logged since the last one; `None` (and counted) otherwise.
    pub(crate) fn due(&self, now: Duration) -> Option<u64> {
        let now = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.every_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.quiet.swap(0, Ordering::Relaxed))
        } else {
            self.quiet.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// The thread that writes back every `flush_ms` (`Proxy::flush_storage`): disk writes
/// stay off the SIP workers and the timer thread.
#[derive(Debug)]
pub struct Flusher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Flusher {
    /// Starts flushing `proxy` (nothing to start when its storage needs no flushing).
    pub fn start(proxy: Arc<Proxy>, clock: Clock) -> std::io::Result<Option<Self>> {
        let Some(every) = proxy.storage_flush_every() else {
            return Ok(None);
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("storage".into())
            .spawn(move || {
                let slice = every.min(Duration::from_millis(50));
                let mut waited = Duration::ZERO;
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(slice);
                    waited += slice;
                    if waited >= every {
                        waited = Duration::ZERO;
                        proxy.flush_storage(clock.now());
                    }
                }
            })?;
        Ok(Some(Flusher { stop, thread }))
    }

    /// Stops the thread (the final write is `Proxy::close_storage`).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Bit-for-bit conversions between the `u64`s of the stores (versions, ids, flow tokens)
/// and SQLite's `i64` integers: a value above `i64::MAX` is stored negative and reads back
/// unchanged.
pub(crate) trait Bits {
    /// The same 64 bits as an `i64`.
    fn bits_i64(self) -> i64;
    /// The same 64 bits as a `u64`.
    fn bits_u64(self) -> u64;
}

impl Bits for u64 {
    fn bits_i64(self) -> i64 {
        i64::from_ne_bytes(self.to_ne_bytes())
    }
    fn bits_u64(self) -> u64 {
        self
    }
}

impl Bits for i64 {
    fn bits_i64(self) -> i64 {
        self
    }
    fn bits_u64(self) -> u64 {
        u64::from_ne_bytes(self.to_ne_bytes())
    }
}
