//! [`Persister`]: Kamailio's `db_mode` between the tracker's [`Change`]s and a
//! [`DialogStore`] — when each change is written (at once, every `update_period`, or only at
//! shutdown), what a restart restores, and which node ends a dialog whose lifetime is over.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::error::StoreError;
use crate::record::DialogRecord;
use crate::store::{Change, Claim, DialogStore};
use crate::sync::Lock;
use crate::uid::DialogUid;

/// When changes reach the store: Kamailio `dialog` module's `db_mode`, same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum DbMode {
    /// 0, NO_DB: nothing is written; nothing survives a restart.
    #[default]
    NoDb = 0,
    /// 1, REALTIME: every change is written when it is recorded, before the caller goes on
    /// (a failed write is queued and retried at the next [`Persister::flush_due`]). The only
    /// mode for several nodes sharing a store: the store is then the truth about which
    /// dialogs exist, and [`Persister::expire`] lets exactly one node end each.
    Realtime = 1,
    /// 2, DELAYED: changes are queued, merged per dialog, and written together every
    /// `update_period` by [`Persister::flush_due`] (and at shutdown). A dialog that starts and
    /// ends between two flushes is never written. A crash loses at most the last period.
    Delayed = 2,
    /// 3, SHUTDOWN: nothing is written while running; [`Persister::shutdown`] replaces the
    /// stored dialogs with the live ones. A crash loses everything since the last shutdown
    /// (a restart then restores the dialogs of that shutdown).
    Shutdown = 3,
}

impl DbMode {
    /// The mode from its number (`db_mode` 0–3).
    pub fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::NoDb,
            1 => Self::Realtime,
            2 => Self::Delayed,
            3 => Self::Shutdown,
            _ => return None,
        })
    }
}

/// What to do with a dialog whose lifetime ended, decided by [`Persister::expire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// End it: send the BYEs (when its flags ask for them). The store no longer holds it
    /// (or will not after the next flush).
    SendBye,
    /// Another node ended or claimed it: do nothing.
    Skip,
    /// Another node restarted its lifetime: track this record again
    /// ([`Tracker::insert_record`](crate::Tracker::insert_record)) instead of ending it.
    Refreshed(DialogRecord),
}

/// A write that failed: the error, and the dialogs whose changes were not written (they stay
/// queued and are retried at the next flush, unless a later change of the same dialog
/// replaces them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({} dialog change(s) not written, kept for the next flush)", .unwritten.len())]
pub struct PersistError {
    /// What the store said.
    pub error: StoreError,
    /// The dialogs concerned.
    pub unwritten: Vec<DialogUid>,
}

/// A queued change, merged per dialog.
#[derive(Debug, Clone)]
enum Pending {
    /// Not in the store yet.
    Insert(Arc<DialogRecord>),
    /// In the store, changed since.
    Update(Arc<DialogRecord>),
    /// In the store, ended.
    Remove(u64),
    /// Inserted and removed between two flushes: nothing to write, but older revisions
    /// arriving late are ignored.
    Gone(u64),
}

impl Pending {
    fn rev(&self) -> u64 {
        match self {
            Pending::Insert(r) | Pending::Update(r) => r.rev,
            Pending::Remove(rev) | Pending::Gone(rev) => *rev,
        }
    }

    fn change(&self, id: DialogUid) -> Option<Change> {
        match self {
            Pending::Insert(r) => Some(Change::Insert(r.clone())),
            Pending::Update(r) => Some(Change::Update(r.clone())),
            Pending::Remove(rev) => Some(Change::Remove { id, rev: *rev }),
            Pending::Gone(_) => None,
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    pending: BTreeMap<DialogUid, Pending>,
    next_flush: Option<Duration>,
}

impl Queue {
    /// Merges `change` into what is queued for its dialog.
    fn push(&mut self, change: &Change) {
        let id = change.id();
        let incoming = match change {
            Change::Insert(r) => Pending::Insert(r.clone()),
            Change::Update(r) => Pending::Update(r.clone()),
            Change::Remove { rev, .. } => Pending::Remove(*rev),
        };
        let merged = match self.pending.remove(&id) {
            None => incoming,
            Some(old) if old.rev() > incoming.rev() => old,
            Some(Pending::Insert(_) | Pending::Gone(_)) => match incoming {
                Pending::Update(r) | Pending::Insert(r) => Pending::Insert(r),
                Pending::Remove(rev) | Pending::Gone(rev) => Pending::Gone(rev),
            },
            Some(Pending::Update(_) | Pending::Remove(_)) => match incoming {
                Pending::Insert(r) | Pending::Update(r) => Pending::Update(r),
                Pending::Remove(rev) | Pending::Gone(rev) => Pending::Remove(rev),
            },
        };
        self.pending.insert(id, merged);
    }
}

/// Applies a [`DbMode`] to the changes a [`Tracker`](crate::Tracker) reports, writing them to
/// a [`DialogStore`]. Shared by the worker threads by reference, like the tracker; the store
/// is only called outside the persister's own lock.
///
/// The caller's loop: [`record`](Self::record) every [`Change`] the tracker returns;
/// [`flush_due`](Self::flush_due) when [`next_flush`](Self::next_flush) comes (modes 1 and 2);
/// [`expire`](Self::expire) every confirmed dialog whose lifetime the tracker reports ended,
/// before sending its BYEs; [`restore`](Self::restore) at start-up and
/// [`shutdown`](Self::shutdown) at the end.
///
/// ```
/// use std::time::Duration;
/// use sip_dialog::{Change, DbMode, DialogStore, MemoryStore, Persister};
/// # let rec = std::sync::Arc::new(sip_dialog::doc_record());
/// let p = Persister::new(MemoryStore::new(), DbMode::Delayed, Duration::from_secs(10));
/// let t0 = Duration::from_secs(1_700_000_000);
/// p.record(&Change::Insert(rec.clone()), t0)?;
/// assert_eq!(p.store().len(), 0); // queued
/// assert_eq!(p.flush_due(t0 + Duration::from_secs(9))?, 0);
/// assert_eq!(p.flush_due(t0 + Duration::from_secs(10))?, 1); // written with the period
/// assert_eq!(p.restore()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Persister<S> {
    store: S,
    mode: DbMode,
    period: Duration,
    queue: Lock<Queue>,
}

impl<S: DialogStore> Persister<S> {
    /// A persister writing to `store` in `mode`; `update_period` is the flush interval of
    /// [`DbMode::Delayed`] and the retry interval of failed [`DbMode::Realtime`] writes
    /// (Kamailio `db_update_period`, 60 s by default there).
    pub fn new(store: S, mode: DbMode, update_period: Duration) -> Self {
        Persister {
            store,
            mode,
            period: update_period,
            queue: Lock::new(Queue::default()),
        }
    }

    /// The mode.
    pub fn mode(&self) -> DbMode {
        self.mode
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Changes waiting for a flush.
    pub fn pending(&self) -> usize {
        self.queue.with(|q| {
            q.pending
                .values()
                .filter(|p| !matches!(p, Pending::Gone(_)))
                .count()
        })
    }

    /// When [`flush_due`](Self::flush_due) has work next (`None`: nothing queued).
    pub fn next_flush(&self) -> Option<Duration> {
        self.queue.with(|q| q.next_flush)
    }

    fn enqueue(&self, change: &Change, now: Duration) {
        self.queue.with(|q| {
            q.push(change);
            if q.next_flush.is_none() {
                q.next_flush = Some(now.saturating_add(self.period));
            }
        });
    }

    /// Takes a change the tracker reported at `now`. REALTIME writes it now (a failure is
    /// returned and the change queued for a retry); DELAYED queues it for the next flush;
    /// NO_DB and SHUTDOWN ignore it.
    pub fn record(&self, change: &Change, now: Duration) -> Result<(), PersistError> {
        match self.mode {
            DbMode::NoDb | DbMode::Shutdown => Ok(()),
            DbMode::Delayed => {
                self.enqueue(change, now);
                Ok(())
            }
            DbMode::Realtime => {
                let r = match change {
                    Change::Insert(r) | Change::Update(r) => self.store.put(r),
                    Change::Remove { id, rev } => self.store.remove(*id, *rev),
                };
                r.map_err(|error| {
                    self.enqueue(change, now);
                    PersistError {
                        error,
                        unwritten: alloc::vec![change.id()],
                    }
                })
            }
        }
    }

    /// Writes the queued changes if their time has come (`now` at or after
    /// [`next_flush`](Self::next_flush)), in one [`DialogStore::apply`] batch; returns how many
    /// were written. On failure everything stays queued for the next period.
    pub fn flush_due(&self, now: Duration) -> Result<usize, PersistError> {
        let due = self.queue.with(|q| q.next_flush.is_some_and(|t| now >= t));
        if !due {
            return Ok(0);
        }
        let n = self.flush()?;
        self.queue.with(|q| {
            q.next_flush = (!q.pending.is_empty()).then_some(now.saturating_add(self.period));
        });
        Ok(n)
    }

    /// Writes every queued change now, whatever the time (DELAYED at shutdown, or a caller
    /// that wants a checkpoint).
    pub fn flush(&self) -> Result<usize, PersistError> {
        let taken = self.queue.with(|q| {
            q.next_flush = None;
            core::mem::take(&mut q.pending)
        });
        let batch: Vec<Change> = taken.iter().filter_map(|(&id, p)| p.change(id)).collect();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.store.apply(&batch) {
            Ok(()) => Ok(batch.len()),
            Err(error) => {
                // Put everything back under what was queued meanwhile (newer wins).
                let unwritten = batch.iter().map(Change::id).collect();
                self.queue.with(|q| {
                    for c in &batch {
                        q.push(c);
                    }
                });
                Err(PersistError { error, unwritten })
            }
        }
    }

    /// The dialogs to restore at start-up (none in NO_DB): give each to
    /// [`Tracker::insert_record`](crate::Tracker::insert_record). Dialogs whose lifetime
    /// passed while the proxy was down expire at the tracker's next poll (and get their
    /// BYEs).
    pub fn restore(&self) -> Result<Vec<DialogRecord>, StoreError> {
        match self.mode {
            DbMode::NoDb => Ok(Vec::new()),
            _ => self.store.load_all(),
        }
    }

    /// Decides what to do with `record`, a confirmed dialog whose lifetime the tracker just
    /// reported ended, and takes it out of the store:
    ///
    /// * NO_DB, SHUTDOWN: this node is the only one and its memory the truth:
    ///   [`Expiry::SendBye`].
    /// * DELAYED (one node): [`Expiry::SendBye`]; the dialog's removal is queued.
    /// * REALTIME: the store decides atomically ([`DialogStore::claim_expired`]), so that of
    ///   several nodes holding the dialog exactly one ends it: [`Expiry::SendBye`] when this
    ///   call claimed it (or when a failed write of this node is still queued for it: its
    ///   memory is newer than the store), [`Expiry::Skip`] when the store no longer has it,
    ///   [`Expiry::Refreshed`] when another node restarted its lifetime.
    ///
    /// A store error is returned as is: whether to send the BYEs anyway is the caller's
    /// policy (the dialog is no longer in the tracker).
    pub fn expire(&self, record: &DialogRecord, now: Duration) -> Result<Expiry, StoreError> {
        let removal = Change::Remove {
            id: record.id,
            rev: record.rev.saturating_add(1),
        };
        match self.mode {
            DbMode::NoDb | DbMode::Shutdown => Ok(Expiry::SendBye),
            DbMode::Delayed => {
                self.enqueue(&removal, now);
                Ok(Expiry::SendBye)
            }
            DbMode::Realtime => {
                let queued = self.queue.with(|q| q.pending.contains_key(&record.id));
                if queued {
                    self.enqueue(&removal, now);
                    return Ok(Expiry::SendBye);
                }
                Ok(match self.store.claim_expired(record.id, now)? {
                    Claim::Claimed(_) => Expiry::SendBye,
                    Claim::Absent => Expiry::Skip,
                    Claim::Refreshed(r) => Expiry::Refreshed(r),
                })
            }
        }
    }

    /// REALTIME with several nodes: claims up to `limit` stored dialogs whose lifetime passed
    /// (those of a node that died included) and returns them; send their BYEs and drop them
    /// from the local tracker ([`Tracker::forget`](crate::Tracker::forget)). Every node may
    /// call it periodically: each dialog is returned to exactly one. Other modes: nothing (the
    /// tracker's own timers cover a single node).
    pub fn reap(&self, now: Duration, limit: usize) -> Result<Vec<DialogRecord>, StoreError> {
        if self.mode != DbMode::Realtime {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for id in self.store.expired(now, limit)? {
            if let Claim::Claimed(r) = self.store.claim_expired(id, now)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// At shutdown, with the tracker's live dialogs
    /// ([`Tracker::snapshot`](crate::Tracker::snapshot)): REALTIME and DELAYED write what is
    /// still queued; SHUTDOWN replaces the stored dialogs with the confirmed live ones.
    /// Returns how many changes or dialogs were written.
    pub fn shutdown(&self, live: &[Arc<DialogRecord>]) -> Result<usize, PersistError> {
        match self.mode {
            DbMode::NoDb => Ok(0),
            DbMode::Realtime | DbMode::Delayed => self.flush(),
            DbMode::Shutdown => {
                let batch: Vec<Change> = live
                    .iter()
                    .filter(|r| r.state.is_confirmed())
                    .map(|r| Change::Insert(r.clone()))
                    .collect();
                let fail = |error| PersistError {
                    error,
                    unwritten: batch.iter().map(Change::id).collect(),
                };
                self.store.clear().map_err(fail)?;
                self.store.apply(&batch).map_err(fail)?;
                Ok(batch.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::doc_record;

    fn rec(rev: u64) -> Arc<DialogRecord> {
        let mut r = doc_record();
        r.rev = rev;
        Arc::new(r)
    }

    #[test]
    fn merging_keeps_the_newest_and_drops_short_lived_dialogs() {
        let mut q = Queue::default();
        let id = doc_record().id;
        q.push(&Change::Insert(rec(1)));
        q.push(&Change::Update(rec(3)));
        q.push(&Change::Update(rec(2))); // late, older
        assert!(matches!(&q.pending[&id], Pending::Insert(r) if r.rev == 3));
        q.push(&Change::Remove { id, rev: 4 });
        assert!(matches!(q.pending[&id], Pending::Gone(4)));
        q.push(&Change::Update(rec(3))); // stale, after the removal
        assert!(matches!(q.pending[&id], Pending::Gone(4)));
        assert_eq!(q.pending[&id].change(id), None);

        let mut q = Queue::default();
        q.push(&Change::Update(rec(5)));
        q.push(&Change::Remove { id, rev: 6 });
        assert_eq!(
            q.pending[&id].change(id),
            Some(Change::Remove { id, rev: 6 })
        );
    }
}
