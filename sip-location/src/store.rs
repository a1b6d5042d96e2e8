//! The [`LocationStore`] trait: what the registrar, the proxy's lookup and the
//! administration need from any backend (memory, SQLite, Redis).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::binding::{Binding, BindingError};
use crate::change::{Applied, Changes, Event, Op, Snapshot};

/// A backend's own error (I/O, driver), kept as the cause of a [`StoreError`].
pub type BackendError = Box<dyn core::error::Error + Send + Sync>;

/// Why a store call failed. [`StoreError::status`] is what a registrar answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`Changes::expected`] no longer matches: another writer changed the AOR since the
    /// snapshot was read. Read again and redo the request (the registrar driver does, a few
    /// times).
    #[error("the bindings of {aor} changed since they were read")]
    Conflict {
        /// The AOR.
        aor: String,
    },
    /// The AOR would have more bindings than the store's hard limit.
    #[error("{aor} would have more than {limit} bindings")]
    TooManyBindings {
        /// The AOR.
        aor: String,
        /// The limit.
        limit: usize,
    },
    /// The store holds as many bindings as it may.
    #[error("the store is full ({limit} bindings)")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// The backend cannot be reached now (connection lost, database locked): retry later.
    #[error("location backend unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// The backend failed.
    #[error("location backend failed: {0}")]
    Backend(#[source] BackendError),
    /// A stored binding does not decode.
    #[error("stored binding of {aor}: {source}")]
    Corrupt {
        /// The AOR.
        aor: String,
        /// What was wrong.
        #[source]
        source: BindingError,
    },
}

impl StoreError {
    /// The status a registrar answers when this error stops a REGISTER: 503 when retrying
    /// later may work (full, unavailable; RFC 3261 §21.5.4), 500 otherwise ("the request
    /// MUST fail with a 500 (Server Error) response", §10.3 step 7).
    pub fn status(&self) -> u16 {
        match self {
            Self::Full { .. } | Self::Unavailable(_) | Self::TooManyBindings { .. } => 503,
            _ => 500,
        }
    }
}

/// A position in a [`LocationStore::scan`]: start with [`Cursor::START`], continue with what
/// the last call returned. Opaque to the caller; each store defines its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cursor(pub u64);

impl Cursor {
    /// The beginning of a scan.
    pub const START: Cursor = Cursor(0);
}

/// How many AORs and bindings a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Addresses-of-record with at least one binding.
    pub aors: usize,
    /// Bindings (expired ones not yet collected included).
    pub bindings: usize,
}

/// A location service: bindings per address-of-record.
///
/// * Shared by worker threads by reference: every method takes `&self` and a store does its
///   own locking.
/// * A call may block on I/O (an SQLite or Redis backend), so every method can fail with a
///   [`StoreError`]; the registrar turns a failed write into a 500/503 instead of claiming a
///   registration it could not store.
/// * Time is an argument: `now` is wall-clock time since the Unix epoch (bindings are
///   persisted and shared between nodes; see the crate docs).
/// * Writes are [`Changes`] to one AOR, applied atomically and conditionally on the
///   [`Version`](crate::Version) read (optimistic concurrency), and answered with the
///   [`Event`]s they caused, so a replicator or a cache can follow.
///
/// The trait is object-safe: `&dyn LocationStore` and `Box<dyn LocationStore + Send + Sync>`
/// work.
pub trait LocationStore {
    /// The unexpired bindings of `aor` (canonical, [`sip_parser::Aor`] text), in
    /// [lookup order](crate::order), with their version.
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError>;

    /// Applies `changes` atomically: all of them or (with an error) none.
    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError>;

    /// Removes up to `max` bindings expired at `now`, returning an
    /// [`Expired`](crate::EventKind::Expired) event for each; call again while it returns
    /// `max` events.
    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError>;

    /// How many AORs and bindings the store holds.
    fn counts(&self) -> Result<Counts, StoreError>;

    /// Visits up to `max_aors` AORs from `cursor` with their unexpired bindings (in lookup
    /// order) and returns where to continue, `None` at the end. An AOR present for the whole
    /// scan is visited once; AORs added or removed meanwhile may or may not be.
    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError>;

    /// Applies the changes of several AORs, in order: what a write-back flush hands its
    /// backing store ([`crate::Tiered`]). A backend with transactions writes them in one
    /// (all or, with an error, none); the default applies them one by one and stops at the
    /// first error, so some may be written when it fails — which a write-back flush
    /// tolerates, as it writes each AOR's whole current set and rewrites it on a retry.
    fn apply_all(&self, batch: &[Changes], now: Duration) -> Result<Vec<Applied>, StoreError> {
        batch.iter().map(|c| self.apply(c, now)).collect()
    }

    /// Writes what a write-back store holds back to its backend (see [`crate::Tiered`]);
    /// returns how many AORs were written. Stores without a backend write nothing.
    fn flush(&self, now: Duration) -> Result<usize, StoreError> {
        let _ = now;
        Ok(0)
    }

    /// Removes one contact of `aor` (`Some`) or all of them (`None`), unconditionally
    /// (administration: `sip-proxy ctl location remove AOR [CONTACT]`).
    fn remove(
        &self,
        aor: &str,
        contact: Option<&str>,
        now: Duration,
    ) -> Result<Vec<Event>, StoreError> {
        let op = match contact {
            Some(c) => Op::RemoveContact(c.into()),
            None => Op::Clear,
        };
        Ok(self.apply(&Changes::new(aor).with(op), now)?.events)
    }
}

impl<S: LocationStore + ?Sized> LocationStore for &S {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        (**self).lookup(aor, now)
    }
    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        (**self).apply(changes, now)
    }
    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError> {
        (**self).expire(now, max)
    }
    fn counts(&self) -> Result<Counts, StoreError> {
        (**self).counts()
    }
    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        (**self).scan(cursor, max_aors, now, visit)
    }
    fn apply_all(&self, batch: &[Changes], now: Duration) -> Result<Vec<Applied>, StoreError> {
        (**self).apply_all(batch, now)
    }
    fn flush(&self, now: Duration) -> Result<usize, StoreError> {
        (**self).flush(now)
    }
    fn remove(
        &self,
        aor: &str,
        contact: Option<&str>,
        now: Duration,
    ) -> Result<Vec<Event>, StoreError> {
        (**self).remove(aor, contact, now)
    }
}
