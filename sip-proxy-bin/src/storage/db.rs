//! Opening an SQLite database file the way every store here uses it: the data directory
//! (created 0700, locked against a second `sip-proxy`), WAL journal, the size limit, an
//! integrity check, the schema migrated in one transaction, and a test write — so that a
//! database that is locked, corrupt, unwritable or full is a clear error at start, not a
//! surprise at the first registration.
//!
//! A [`Db`] is one writer connection and a few reader connections, each behind a mutex:
//! the proxy's threads share it. SQLite in WAL mode lets the readers run while the writer
//! writes; the writers of this process queue on the writer mutex rather than in SQLite's
//! busy handler (which sleeps).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::schema::{self, Migration};

/// How long a statement waits for a lock held by another process before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The name of the lock file in the data directory.
pub const LOCK_FILE: &str = "sip-proxy.lock";

/// Why a database (or its directory) could not be opened. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Another `sip-proxy` holds the data directory.
    #[error(
        "data directory {path} is in use by another sip-proxy (it holds {LOCK_FILE}); stop it or give another --data-dir"
    )]
    InUse {
        /// The directory.
        path: PathBuf,
    },
    /// Another process holds a lock on the database for longer than [`BUSY_TIMEOUT`].
    #[error(
        "database {path} is locked by another process (still busy after {} s): close the other program using it",
        BUSY_TIMEOUT.as_secs()
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a database, or its pages are damaged.
    #[error(
        "database {path} is corrupt ({detail}): move it away (a new one is created) or restore a backup"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The file or its directory cannot be written.
    #[error("database {path} cannot be written: {detail}")]
    NotWritable {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The disk, or the configured size limit (`storage.max_db_mb`), is full.
    #[error("database {path} is full ({detail}): free disk space or raise storage.max_db_mb")]
    Full {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The schema is newer than this program knows, or not ours.
    #[error("database {path}: {detail}")]
    Schema {
        /// The database file.
        path: PathBuf,
        /// What does not match.
        detail: String,
    },
    /// Any other SQLite failure.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

impl OpenError {
    /// Classifies an SQLite error met while opening `path`.
    pub(crate) fn from_sqlite(path: &Path, e: rusqlite::Error) -> Self {
        let path = path.to_owned();
        let detail = e.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => OpenError::Locked { path },
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                OpenError::Corrupt { path, detail }
            }
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                OpenError::NotWritable { path, detail }
            }
            Some(ErrorCode::DiskFull) => OpenError::Full { path, detail },
            _ => OpenError::Sqlite { path, source: e },
        }
    }
}

/// The data directory, locked for this process (the lock goes with the process, `kill -9`
/// included).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `path` (mode 0700, parents too) when missing and takes its lock file.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let err = |source| OpenError::DataDir {
            path: path.to_owned(),
            source,
        };
        if !path.is_dir() {
            let mut b = DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(path).map_err(err)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(err)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "data directory is readable by others (registrations, dialogs and traces live here): chmod 700 it"
                );
            }
        }
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let lock = opts.open(path.join(LOCK_FILE)).map_err(err)?;
        #[cfg(unix)]
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(OpenError::InUse {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(err(e.into())),
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `PRAGMA synchronous`: when a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// A commit survives the process dying (`kill -9`, a crash), not a power cut or an OS
    /// crash (the last commits may be lost then, the file stays consistent). No fsync per
    /// commit.
    #[default]
    Normal,
    /// A commit is on the disk (fsync) before it returns: survives a power cut too.
    Full,
}

/// How a database is opened.
#[derive(Debug, Clone, Copy)]
pub struct DbOptions {
    /// When commits reach the disk.
    pub synchronous: Synchronous,
    /// The file may not grow beyond this many bytes (writes past it fail as "full").
    pub max_bytes: u64,
    /// Reader connections (at least one).
    pub readers: usize,
    /// Run `PRAGMA quick_check` at open (reads the whole file once).
    pub check: bool,
}

/// An open database: one writer, a few readers.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Box<[Mutex<Connection>]>,
    next_reader: AtomicUsize,
}

fn connect(path: &Path, opts: &DbOptions) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.set_prepared_statement_cache_capacity(32);
    let sync = match opts.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    c.pragma_update(None, "synchronous", sync)?;
    Ok(c)
}

impl Db {
    /// Opens (creating it when missing) the database at `path` with `migrations` applied.
    pub fn open(
        path: &Path,
        migrations: &[Migration],
        opts: &DbOptions,
        now: Duration,
    ) -> Result<Self, OpenError> {
        let fail = |e| OpenError::from_sqlite(path, e);
        let mut w = connect(path, opts).map_err(fail)?;
        // The first statement that reads the file: "file is not a database" shows here.
        let mode: String = w
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(db = %path.display(), journal = %mode, "WAL journal not available on this file system: writers block readers");
        }
        let page_size: i64 = w
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(fail)?;
        let pages = (opts.max_bytes / page_size.max(512).unsigned_abs()).max(16);
        w.query_row(
            &format!("PRAGMA max_page_count = {}", pages.min(i64::MAX as u64)),
            [],
            |_| Ok(()),
        )
        .map_err(fail)?;
        if opts.check {
            let verdict: String = w
                .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
                .map_err(fail)?;
            if verdict != "ok" {
                return Err(OpenError::Corrupt {
                    path: path.to_owned(),
                    detail: verdict,
                });
            }
        }
        schema::migrate(&mut w, migrations, now).map_err(|e| match e {
            schema::MigrateError::Sqlite(e) => fail(e),
            schema::MigrateError::Mismatch(detail) => OpenError::Schema {
                path: path.to_owned(),
                detail,
            },
        })?;
        let readers = (0..opts.readers.max(1))
            .map(|_| {
                let c = connect(path, opts)?;
                c.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(c))
            })
            .collect::<rusqlite::Result<Box<[_]>>>()
            .map_err(fail)?;
        Ok(Db {
            path: path.to_owned(),
            writer: Mutex::new(w),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer connection (one writer at a time in this process).
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in an immediate transaction on the writer: committed when it returns `Ok`,
    /// rolled back otherwise. `map` turns the transaction's own failures (begin, commit)
    /// into the caller's error type.
    pub(crate) fn write<R, E>(
        &self,
        map: impl Fn(rusqlite::Error) -> E,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut w = self.writer();
        let tx = w
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&map)?;
        let r = f(&tx)?;
        tx.commit().map_err(map)?;
        Ok(r)
    }

    /// Runs `f` on a reader connection (a free one when there is, else the next in turn).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        for r in &*self.readers {
            if let Ok(c) = r.try_lock() {
                return f(&c);
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let c = self.readers[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&c)
    }

    /// Bytes the database uses (pages in use × page size; the WAL not counted).
    pub fn used_bytes(&self) -> rusqlite::Result<u64> {
        self.read(|c| {
            let n: i64 = c.query_row(
                "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
                [],
                |r| r.get(0),
            )?;
            Ok(n.unsigned_abs())
        })
    }

    /// Copies the WAL into the database file (a checkpoint), e.g. before measuring its size.
    pub fn checkpoint(&self) -> rusqlite::Result<()> {
        self.writer()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::{MAIN, TRACE, version};

    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn opts() -> DbOptions {
        DbOptions {
            synchronous: Synchronous::Normal,
            max_bytes: 1 << 30,
            readers: 1,
            check: true,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sip-proxy-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_new_database_gets_every_migration_and_an_old_one_the_missing_ones() {
        let d = scratch("migrate");
        let path = d.join("a.db");
        let db = Db::open(&path, &MAIN[..1], &opts(), NOW).unwrap();
        assert_eq!(db.read(version).unwrap(), 1);
        db.writer()
            .execute(
                "INSERT INTO location_aor (aor, version) VALUES ('sip:a@x', 7)",
                [],
            )
            .unwrap();
        drop(db);
        let db = Db::open(&path, MAIN, &opts(), NOW).unwrap();
        assert_eq!(db.read(version).unwrap(), 2);
        let header: u32 = db
            .read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(header, 2, "the header says the version too");
        let kept: i64 = db
            .read(|c| c.query_row("SELECT version FROM location_aor", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(kept, 7, "the data survives the migration");
        let tables: i64 = db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'dialog%'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(tables, 3);
        let journal: String = db
            .read(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(journal, "wal");
        drop(db);
        // Opened by an older program: refused, with the reason.
        let e = Db::open(&path, &MAIN[..1], &opts(), NOW).unwrap_err();
        assert!(e.to_string().contains("newer than this sip-proxy"), "{e}");
        // A header version beyond ours is refused too, before anything is written.
        let h = d.join("h.db");
        Connection::open(&h)
            .unwrap()
            .pragma_update(None, "user_version", 9)
            .unwrap();
        let e = Db::open(&h, MAIN, &opts(), NOW).unwrap_err();
        assert!(e.to_string().contains("9 (user_version) is newer"), "{e}");
        // A trace database is not a registrations database.
        let t = d.join("t.db");
        drop(Db::open(&t, TRACE, &opts(), NOW).unwrap());
        let e = Db::open(&t, MAIN, &opts(), NOW).unwrap_err();
        assert!(matches!(e, OpenError::Schema { .. }), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn corrupt_locked_and_unwritable_databases_are_clear_errors() {
        let d = scratch("errors");
        let bad = d.join("bad.db");
        std::fs::write(
            &bad,
            b"this is not an SQLite database, just some text. ".repeat(100),
        )
        .unwrap();
        let e = Db::open(&bad, MAIN, &opts(), NOW).unwrap_err();
        assert!(matches!(e, OpenError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("corrupt"), "{e}");

        let path = d.join("locked.db");
        drop(Db::open(&path, MAIN, &opts(), NOW).unwrap());
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let e = Db::open(&path, MAIN, &opts(), NOW).unwrap_err();
        assert!(matches!(e, OpenError::Locked { .. }), "{e}");
        other.execute_batch("ROLLBACK").unwrap();
        drop(other);
        assert!(Db::open(&path, MAIN, &opts(), NOW).is_ok());

        let missing = d.join("no/such/dir/x.db");
        let e = Db::open(&missing, MAIN, &opts(), NOW).unwrap_err();
        assert!(matches!(e, OpenError::NotWritable { .. }), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn the_size_limit_makes_writes_fail_as_full() {
        let d = scratch("full");
        let db = Db::open(
            &d.join("f.db"),
            MAIN,
            &DbOptions {
                max_bytes: 64 * 4096,
                ..opts()
            },
            NOW,
        )
        .unwrap();
        let big = "x".repeat(2000);
        let r: rusqlite::Result<()> = (0..200).try_for_each(|i| {
            db.writer()
                .execute(
                    "INSERT INTO location_aor (aor, version) VALUES (?1, 1)",
                    [format!("sip:{i}{big}@x")],
                )
                .map(drop)
        });
        let e = r.unwrap_err();
        assert_eq!(e.sqlite_error_code(), Some(ErrorCode::DiskFull), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_data_directory_serves_one_proxy() {
        let d = scratch("lock").join("data");
        let first = DataDir::open(&d).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let e = DataDir::open(&d).unwrap_err();
        assert!(matches!(e, OpenError::InUse { .. }), "{e}");
        drop(first);
        assert!(DataDir::open(&d).is_ok(), "the lock goes with its holder");
        let _ = std::fs::remove_dir_all(d.parent().unwrap());
    }
}
