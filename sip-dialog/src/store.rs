//! The persistence seam: [`Change`] (what the tracker reports after each change of a dialog,
//! for a store or a replicator to pick up), the [`DialogStore`] trait a backend implements
//! (in memory here; SQLite and Redis in the proxy), and [`MemoryStore`].

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::error::StoreError;
use crate::record::DialogRecord;
use crate::sync::Lock;
use crate::uid::DialogUid;

/// A change of a tracked dialog, as the tracker reports it (when
/// [`TrackerConfig::record_changes`](crate::TrackerConfig) is on): the event stream a
/// [`Persister`](crate::Persister) turns into store writes according to its
/// [`DbMode`](crate::DbMode), and that a replicator may publish to other nodes.
///
/// Like Kamailio's `dialog` module, only confirmed dialogs are written: a dialog is
/// [`Insert`](Self::Insert)ed when its 2xx is seen, [`Update`](Self::Update)d on each later
/// change (ACK, CSeq, Contact refresh, new timeout, flags), and [`Remove`](Self::Remove)d when
/// it ends. Unconfirmed and early dialogs, and calls that fail, produce no change at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A dialog was confirmed: its first write.
    Insert(Arc<DialogRecord>),
    /// A written dialog changed: the whole new record.
    Update(Arc<DialogRecord>),
    /// A written dialog ended.
    Remove {
        /// The dialog.
        id: DialogUid,
        /// Its last revision (the removal is the dialog's final change).
        rev: u64,
    },
}

impl Change {
    /// The dialog concerned.
    pub fn id(&self) -> DialogUid {
        match self {
            Change::Insert(r) | Change::Update(r) => r.id,
            Change::Remove { id, .. } => *id,
        }
    }

    /// The revision the change brings the dialog to.
    pub fn rev(&self) -> u64 {
        match self {
            Change::Insert(r) | Change::Update(r) => r.rev,
            Change::Remove { rev, .. } => *rev,
        }
    }
}

/// What [`DialogStore::claim_expired`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The stored dialog's timeout has passed and this call removed it: the caller is the
    /// one (node) that ends it, sending the BYEs. The record as stored.
    Claimed(DialogRecord),
    /// The stored dialog's timeout is later than `now` (another node saw an in-dialog request
    /// and restarted its lifetime): do not end it; track this newer record instead.
    Refreshed(DialogRecord),
    /// Nothing is stored under that id: another node ended or claimed it, or it was never
    /// written.
    Absent,
}

/// Where tracked dialogs are kept beyond the process: Kamailio's `dialog` table. The
/// methods take `&self` (backends synchronise inside, as several worker threads share one)
/// and may block on I/O; every failure is a [`StoreError`] saying what was not done.
///
/// The trait fits the backends that follow the in-memory one:
///
/// * **SQLite** (one node, restart-safe): `put`/`remove`/`apply` are an upsert, a delete and
///   one transaction; `load_all` restores at start-up; `claim_expired` is a conditional
///   delete. `find` and `expired` are indexed queries.
/// * **Redis** (several nodes sharing dialogs): `put` writes a hash per dialog plus an index
///   by Call-ID and a sorted set of timeouts; `get`/`find` let a node route and track a
///   dialog another node created (after a miss in its own tracker); `claim_expired` is one
///   atomic script (delete the dialog if its stored timeout has passed), so that when
///   several nodes see the same lifetime end, exactly one wins and sends the BYEs; `expired`
///   lets every node reap the dialogs of a node that died.
///
/// Rules for implementations:
///
/// * `put` keeps the record with the highest [`rev`](DialogRecord::rev): a `put` whose rev is
///   not greater than the stored one is ignored (threads may deliver changes out of order).
/// * `remove(id, rev)` is final: a later `put` of the same id with a rev ≤ `rev` must not
///   bring it back (keep a tombstone for a while, or compare revs in one transaction).
/// * `claim_expired` is atomic with respect to every other call, on every node.
pub trait DialogStore {
    /// Writes a dialog (insert or replace; see the rev rule above).
    fn put(&self, record: &DialogRecord) -> Result<(), StoreError>;
    /// Deletes a dialog that ended at revision `rev`.
    fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError>;
    /// Applies several changes, in order (one transaction where the backend has them). The
    /// default applies them one by one and stops at the first failure.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        for c in changes {
            match c {
                Change::Insert(r) | Change::Update(r) => self.put(r)?,
                Change::Remove { id, rev } => self.remove(*id, *rev)?,
            }
        }
        Ok(())
    }
    /// Every stored dialog (restore at start-up).
    fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError>;
    /// One dialog by id.
    fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError>;
    /// The dialog with this Call-ID whose tags are `tag_a` and `tag_b`, in either order (the
    /// From and To tags of an in-dialog request, whichever way it travels).
    fn find(
        &self,
        call_id: &str,
        tag_a: &str,
        tag_b: &str,
    ) -> Result<Option<DialogRecord>, StoreError>;
    /// Atomically removes the dialog if its stored timeout is at or before `now` (see
    /// [`Claim`]).
    fn claim_expired(&self, id: DialogUid, now: Duration) -> Result<Claim, StoreError>;
    /// Up to `limit` ids of stored dialogs whose timeout is at or before `now`, earliest
    /// first.
    fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError>;
    /// Deletes every stored dialog (the SHUTDOWN mode rewrites the table at each shutdown).
    fn clear(&self) -> Result<(), StoreError>;
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        impl<S: DialogStore + ?Sized> DialogStore for $ty {
            fn put(&self, record: &DialogRecord) -> Result<(), StoreError> {
                (**self).put(record)
            }
            fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError> {
                (**self).remove(id, rev)
            }
            fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
                (**self).apply(changes)
            }
            fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError> {
                (**self).load_all()
            }
            fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
                (**self).get(id)
            }
            fn find(
                &self,
                call_id: &str,
                tag_a: &str,
                tag_b: &str,
            ) -> Result<Option<DialogRecord>, StoreError> {
                (**self).find(call_id, tag_a, tag_b)
            }
            fn claim_expired(&self, id: DialogUid, now: Duration) -> Result<Claim, StoreError> {
                (**self).claim_expired(id, now)
            }
            fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError> {
                (**self).expired(now, limit)
            }
            fn clear(&self) -> Result<(), StoreError> {
                (**self).clear()
            }
        }
    )*};
}

forward_store!(&S, Box<S>, Arc<S>);

/// Tombstones a [`MemoryStore`] keeps by default.
pub const DEFAULT_TOMBSTONES: usize = 65_536;

/// An in-memory [`DialogStore`]: the reference implementation of the trait's rules, the
/// backend of tests, and a shared store for several trackers in one process. Indexed by id,
/// by Call-ID and by timeout, so every method but `load_all` costs O(log n).
///
/// ```
/// use sip_dialog::{Claim, DialogStore, MemoryStore};
/// # let rec = sip_dialog::doc_record();
/// let store = MemoryStore::new();
/// store.put(&rec)?;
/// assert_eq!(store.find(&rec.call_id, &rec.to_tag, &rec.from_tag)?, Some(rec.clone()));
/// assert_eq!(store.expired(rec.timeout, 10)?, [rec.id]);
/// assert_eq!(store.claim_expired(rec.id, rec.timeout)?, Claim::Claimed(rec.clone()));
/// assert_eq!(store.claim_expired(rec.id, rec.timeout)?, Claim::Absent); // exactly once
/// # Ok::<(), sip_dialog::StoreError>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    inner: Lock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<DialogUid, DialogRecord>,
    by_call_id: BTreeMap<Box<str>, Vec<DialogUid>>,
    by_timeout: BTreeSet<(Duration, DialogUid)>,
    tombstones: BTreeMap<DialogUid, u64>,
    tombstone_order: VecDeque<DialogUid>,
    max_tombstones: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store keeping [`DEFAULT_TOMBSTONES`] tombstones.
    pub fn new() -> Self {
        Self::with_tombstones(DEFAULT_TOMBSTONES)
    }

    /// An empty store remembering the last `max` removals (so that a stale `put` arriving
    /// after a `remove` does not bring a dialog back).
    pub fn with_tombstones(max: usize) -> Self {
        MemoryStore {
            inner: Lock::new(Inner {
                max_tombstones: max,
                ..Inner::default()
            }),
        }
    }

    /// Dialogs stored.
    pub fn len(&self) -> usize {
        self.inner.with(|i| i.records.len())
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn unlink(&mut self, id: DialogUid) -> Option<DialogRecord> {
        let old = self.records.remove(&id)?;
        self.by_timeout.remove(&(old.timeout, id));
        if let Some(ids) = self.by_call_id.get_mut(&old.call_id) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_call_id.remove(&old.call_id);
            }
        }
        Some(old)
    }

    fn tombstone(&mut self, id: DialogUid, rev: u64) {
        if self.max_tombstones == 0 {
            return;
        }
        if self.tombstones.insert(id, rev).is_none() {
            self.tombstone_order.push_back(id);
        }
        while self.tombstone_order.len() > self.max_tombstones {
            if let Some(old) = self.tombstone_order.pop_front() {
                self.tombstones.remove(&old);
            }
        }
    }
}

impl DialogStore for MemoryStore {
    fn put(&self, record: &DialogRecord) -> Result<(), StoreError> {
        self.inner.with(|i| {
            if i.tombstones
                .get(&record.id)
                .is_some_and(|&r| r >= record.rev)
            {
                return;
            }
            if i.records
                .get(&record.id)
                .is_some_and(|r| r.rev >= record.rev)
            {
                return;
            }
            i.unlink(record.id);
            i.by_timeout.insert((record.timeout, record.id));
            i.by_call_id
                .entry(record.call_id.clone())
                .or_default()
                .push(record.id);
            i.records.insert(record.id, record.clone());
        });
        Ok(())
    }

    fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError> {
        self.inner.with(|i| {
            i.unlink(id);
            i.tombstone(id, rev);
        });
        Ok(())
    }

    fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError> {
        Ok(self.inner.with(|i| i.records.values().cloned().collect()))
    }

    fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
        Ok(self.inner.with(|i| i.records.get(&id).cloned()))
    }

    fn find(
        &self,
        call_id: &str,
        tag_a: &str,
        tag_b: &str,
    ) -> Result<Option<DialogRecord>, StoreError> {
        Ok(self.inner.with(|i| {
            let ids = i.by_call_id.get(call_id)?;
            ids.iter().filter_map(|id| i.records.get(id)).find_map(|r| {
                let (f, t) = (&*r.from_tag, &*r.to_tag);
                ((f == tag_a && t == tag_b) || (f == tag_b && t == tag_a)).then(|| r.clone())
            })
        }))
    }

    fn claim_expired(&self, id: DialogUid, now: Duration) -> Result<Claim, StoreError> {
        Ok(self.inner.with(|i| match i.records.get(&id) {
            None => Claim::Absent,
            Some(r) if r.timeout > now => Claim::Refreshed(r.clone()),
            Some(r) => {
                let rev = r.rev;
                let rec = i.unlink(id);
                i.tombstone(id, rev);
                rec.map_or(Claim::Absent, Claim::Claimed)
            }
        }))
    }

    fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError> {
        Ok(self.inner.with(|i| {
            i.by_timeout
                .iter()
                .take_while(|(t, _)| *t <= now)
                .take(limit)
                .map(|&(_, id)| id)
                .collect()
        }))
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.inner.with(|i| {
            i.records.clear();
            i.by_call_id.clear();
            i.by_timeout.clear();
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::doc_record;

    #[test]
    fn revisions_only_go_forward_and_removals_stay() {
        let s = MemoryStore::with_tombstones(2);
        let mut r = doc_record();
        r.rev = 5;
        s.put(&r).unwrap();
        let mut stale = r.clone();
        stale.rev = 4;
        stale.caller_cseq = 99;
        s.put(&stale).unwrap();
        assert_eq!(s.get(r.id).unwrap().unwrap().caller_cseq, r.caller_cseq);
        s.remove(r.id, 6).unwrap();
        s.put(&r).unwrap(); // a stale write after the removal
        assert!(s.is_empty());
        // Tombstones are bounded: the oldest is forgotten.
        s.remove(DialogUid(1), 1).unwrap();
        s.remove(DialogUid(2), 1).unwrap();
        s.put(&r).unwrap();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn refreshed_dialogs_are_not_claimed() {
        let s = MemoryStore::new();
        let r = doc_record();
        s.put(&r).unwrap();
        let early = r.timeout.saturating_sub(Duration::from_secs(1));
        assert_eq!(s.expired(early, 10).unwrap(), []);
        assert_eq!(
            s.claim_expired(r.id, early).unwrap(),
            Claim::Refreshed(r.clone())
        );
        assert_eq!(s.len(), 1);
        s.clear().unwrap();
        assert!(s.load_all().unwrap().is_empty());
        assert_eq!(s.find(&r.call_id, &r.from_tag, &r.to_tag).unwrap(), None);
    }
}
