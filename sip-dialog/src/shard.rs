//! One shard of the tracker's table: a slab of dialogs indexed by Call-ID hash and by id,
//! and a heap of deadlines (lifetimes and keepalives). Deadlines that move later are not
//! re-pushed: the heap entry fires at the old time and is pushed again at the new one, so a
//! dialog has at most one lifetime entry plus those left by the rare moves earlier (CANCEL,
//! a failed keepalive, an explicit new lifetime), and nothing ever scans the table.

use alloc::collections::BinaryHeap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::time::Duration;

use hashbrown::HashTable;

use crate::record::{DialogRecord, Direction};
use crate::uid::DialogUid;

/// No deadline.
pub(crate) const NEVER: u64 = u64::MAX;

/// Milliseconds of a wall-clock time, rounded up (a deadline never fires early).
pub(crate) fn ms_up(t: Duration) -> u64 {
    let ms = t.as_millis() + u128::from(t.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(ms).unwrap_or(NEVER - 1)
}

/// Milliseconds of a wall-clock time, rounded down.
pub(crate) fn ms_down(t: Duration) -> u64 {
    u64::try_from(t.as_millis()).unwrap_or(NEVER - 1)
}

pub(crate) fn uid_hash(uid: DialogUid) -> u64 {
    // Ids are handed out by trackers, never chosen by the network: a multiplicative mix is
    // enough.
    uid.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

/// A tracked dialog and what the tracker keeps beside its record.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) rec: Arc<DialogRecord>,
    /// Hash of the Call-ID (the shard index and the Call-ID index key).
    pub(crate) hash: u64,
    pub(crate) generation: u32,
    /// When this dialog's lifetime entry in the heap fires (≤ its timeout).
    pub(crate) due: u64,
    /// When its keepalive entry fires.
    pub(crate) ka_due: u64,
    /// Failed keepalives in a row, caller then callee.
    pub(crate) ka_fail: [u8; 2],
    /// The initial INVITE's CSeq number.
    pub(crate) invite_cseq: u32,
    /// Record-Route entries the INVITE carried when it reached the proxy.
    pub(crate) caller_rr: u8,
    /// Record-Route entries the proxy added.
    pub(crate) own_rr: u8,
    /// An 18x was seen (post-dial delay counted).
    pub(crate) ringing: bool,
    /// The record was reported as [`Change::Insert`](crate::Change): its changes and end are
    /// reported too.
    pub(crate) written: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub(crate) at: u64,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    pub(crate) keepalive: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_call_id: HashTable<u32>,
    by_uid: HashTable<u32>,
    timers: BinaryHeap<Reverse<Timer>>,
    generation: u32,
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub(crate) fn timers(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub(crate) fn entry_mut(&mut self, slot: u32) -> Option<&mut Entry> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.slots.iter().filter_map(Option::as_ref)
    }

    /// Inserts a dialog; `generation` and the deadlines are set here.
    pub(crate) fn insert(&mut self, mut e: Entry) -> u32 {
        self.generation = self.generation.wrapping_add(1);
        e.generation = self.generation;
        e.due = NEVER;
        e.ka_due = NEVER;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as u32
        });
        let (hash, uh) = (e.hash, uid_hash(e.rec.id));
        self.slots[slot as usize] = Some(e);
        let slots = &self.slots;
        let h = |&s: &u32| slots[s as usize].as_ref().map_or(0, |e| e.hash);
        self.by_call_id.insert_unique(hash, slot, h);
        let slots = &self.slots;
        let h = |&s: &u32| slots[s as usize].as_ref().map_or(0, |e| uid_hash(e.rec.id));
        self.by_uid.insert_unique(uh, slot, h);
        slot
    }

    /// Takes a dialog out of the table (its heap entries go stale).
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Entry> {
        let e = self.slots.get_mut(slot as usize)?.take()?;
        if let Ok(o) = self.by_call_id.find_entry(e.hash, |&s| s == slot) {
            o.remove();
        }
        if let Ok(o) = self.by_uid.find_entry(uid_hash(e.rec.id), |&s| s == slot) {
            o.remove();
        }
        self.free.push(slot);
        if self.by_uid.is_empty() {
            // Nothing left to fire: drop the stale entries at once.
            self.timers.clear();
        }
        Some(e)
    }

    /// The slot of dialog `uid`.
    pub(crate) fn find_uid(&self, uid: DialogUid) -> Option<u32> {
        self.by_uid
            .find(uid_hash(uid), |&s| {
                self.entry(s).is_some_and(|e| e.rec.id == uid)
            })
            .copied()
    }

    /// Which way a request with these tags travels in `e`, if it belongs to it: From tag the
    /// caller's and To tag the callee's (or any To tag while no 2xx fixed it), or the other
    /// way round.
    pub(crate) fn direction(
        e: &Entry,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
    ) -> Option<Direction> {
        let r = &e.rec;
        if &*r.call_id != call_id {
            return None;
        }
        let open = !r.state.is_confirmed();
        if &*r.from_tag == from_tag && (open || &*r.to_tag == to_tag) {
            Some(Direction::Downstream)
        } else if &*r.from_tag == to_tag && (open || &*r.to_tag == from_tag) {
            Some(Direction::Upstream)
        } else {
            None
        }
    }

    /// The dialog a message with this Call-ID and tags belongs to.
    pub(crate) fn find_sip(
        &self,
        hash: u64,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
    ) -> Option<(u32, Direction)> {
        // A confirmed dialog with both tags equal wins over an early one of the same call.
        let mut early = None;
        for &slot in self.by_call_id.iter_hash(hash) {
            let Some(e) = self.entry(slot) else { continue };
            if let Some(d) = Self::direction(e, call_id, from_tag, to_tag) {
                if e.rec.state.is_confirmed() {
                    return Some((slot, d));
                }
                early.get_or_insert((slot, d));
            }
        }
        early
    }

    /// Dialogs with this Call-ID.
    pub(crate) fn count_call_id(&self, hash: u64, call_id: &str) -> usize {
        self.by_call_id
            .iter_hash(hash)
            .filter(|&&s| self.entry(s).is_some_and(|e| &*e.rec.call_id == call_id))
            .count()
    }

    /// The dialog of an initial INVITE (Call-ID, From tag, CSeq number) not confirmed yet.
    pub(crate) fn find_setup(
        &self,
        hash: u64,
        call_id: &str,
        from_tag: &str,
        invite_cseq: u32,
    ) -> Option<u32> {
        self.by_call_id.iter_hash(hash).copied().find(|&s| {
            self.entry(s).is_some_and(|e| {
                &*e.rec.call_id == call_id
                    && &*e.rec.from_tag == from_tag
                    && e.invite_cseq == invite_cseq
            })
        })
    }

    /// Makes the lifetime entry fire no later than `at` (ms).
    pub(crate) fn schedule(&mut self, slot: u32, at: u64) {
        let Some(e) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if at < e.due {
            e.due = at;
            self.timers.push(Reverse(Timer {
                at,
                slot,
                generation: e.generation,
                keepalive: false,
            }));
        }
    }

    /// Sets the keepalive entry (`NEVER` to stop).
    pub(crate) fn schedule_keepalive(&mut self, slot: u32, at: u64) {
        let Some(e) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        e.ka_due = at;
        if at != NEVER {
            self.timers.push(Reverse(Timer {
                at,
                slot,
                generation: e.generation,
                keepalive: true,
            }));
        }
    }

    /// The earliest heap entry (possibly stale).
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.timers.peek().map(|t| t.0.at)
    }

    /// Pops the next heap entry due at or before `now_ms` that is still current.
    pub(crate) fn pop_due(&mut self, now_ms: u64) -> Option<Timer> {
        while let Some(&Reverse(t)) = self.timers.peek() {
            if t.at > now_ms {
                return None;
            }
            self.timers.pop();
            let current = self.entry(t.slot).is_some_and(|e| {
                e.generation == t.generation
                    && if t.keepalive {
                        e.ka_due == t.at
                    } else {
                        e.due == t.at
                    }
            });
            if current {
                if let Some(e) = self.entry_mut(t.slot) {
                    if t.keepalive {
                        e.ka_due = NEVER;
                    } else {
                        e.due = NEVER;
                    }
                }
                return Some(t);
            }
        }
        None
    }
}
