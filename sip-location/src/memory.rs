//! [`MemoryStore`]: the sharded in-memory location store.
//!
//! The AOR's hash (ahash under caller-given seeds, so a remote party cannot aim many AORs at
//! one bucket) picks a shard; each shard is behind its own lock and holds
//!
//! * an index `HashTable<u32>` from AOR text to an AOR slot (4 bytes per AOR plus the
//!   table's control byte),
//! * a slab of AOR slots: the AOR text interned once (`Arc<str>`, shared with the events),
//!   the first binding slot, the version;
//! * a slab of binding slots: the [`Binding`] (one shared buffer holding all its strings),
//!   its AOR and the next binding of the same AOR (an intrusive list: no per-AOR vector);
//! * an [`ExpiryHeap`](crate::heap) of (expiry, slot): expiring is popping the top.
//!
//! Freed slots are reused (free lists threaded through the slabs), so memory follows the
//! peak number of bindings. Every limit is explicit in [`MemoryConfig`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use ahash::RandomState;
use hashbrown::HashTable;
use smallvec::SmallVec;

use crate::binding::Binding;
use crate::change::{Applied, Changes, Event, EventKind, Snapshot, Version};
use crate::heap::ExpiryHeap;
use crate::merge::{Merged, merge};
use crate::store::{Counts, Cursor, LocationStore, StoreError};
use crate::sync::Lock;

const NIL: u32 = u32::MAX;

/// Limits and layout of a [`MemoryStore`].
///
/// ```
/// let cfg = sip_location::MemoryConfig::default();
/// assert_eq!((cfg.shards, cfg.max_bindings, cfg.max_per_aor), (64, 2_000_000, 256));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Shards, each its own lock (clamped to 1..=4096). More shards, less contention.
    pub shards: usize,
    /// Bindings the store may hold in total (about 300 bytes each); past it, writes that
    /// add bindings fail with [`StoreError::Full`].
    pub max_bindings: usize,
    /// Hard limit of bindings per AOR ([`StoreError::TooManyBindings`]); the registrar's
    /// softer `max_contacts` policy applies first.
    pub max_per_aor: usize,
    /// Seeds of the AOR hash (pass random ones: the store draws none itself).
    pub seeds: [u64; 4],
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            shards: 64,
            max_bindings: 2_000_000,
            max_per_aor: 256,
            seeds: [
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ],
        }
    }
}

#[derive(Debug)]
struct AorSlot {
    /// `None` for a free slot.
    name: Option<Arc<str>>,
    /// First binding slot, or the next free AOR slot when free.
    head: u32,
    version: u64,
}

#[derive(Debug)]
struct Slot {
    /// `None` for a free slot.
    binding: Option<Binding>,
    aor: u32,
    /// Next binding of the same AOR, or the next free slot when free.
    next: u32,
}

#[derive(Debug, Default)]
struct Shard {
    index: HashTable<u32>,
    aors: Vec<AorSlot>,
    free_aor: u32,
    slots: Vec<Slot>,
    free_slot: u32,
    heap: ExpiryHeap,
    aor_count: usize,
    bindings: usize,
    /// Versions handed out in this shard: never reused, so no AOR sees one twice.
    last_version: u64,
}

impl Shard {
    fn new() -> Self {
        Self {
            free_aor: NIL,
            free_slot: NIL,
            ..Self::default()
        }
    }

    fn find(&self, hash: u64, aor: &str) -> Option<u32> {
        self.index
            .find(hash, |&i| {
                self.aors[i as usize]
                    .name
                    .as_deref()
                    .is_some_and(|n| n == aor)
            })
            .copied()
    }

    /// The bindings of AOR slot `a`, in list order, with their slots.
    fn list(&self, a: u32) -> SmallVec<[(u32, Binding); 4]> {
        let mut out = SmallVec::new();
        let mut s = self.aors[a as usize].head;
        while s != NIL {
            let slot = &self.slots[s as usize];
            if let Some(b) = &slot.binding {
                out.push((s, b.clone()));
            }
            s = slot.next;
        }
        out
    }

    fn alloc_slot(&mut self, binding: Binding, aor: u32, next: u32) -> u32 {
        let at = binding.expires_at();
        let s = if self.free_slot == NIL {
            self.slots.push(Slot {
                binding: Some(binding),
                aor,
                next,
            });
            (self.slots.len() - 1) as u32
        } else {
            let s = self.free_slot;
            let slot = &mut self.slots[s as usize];
            self.free_slot = slot.next;
            *slot = Slot {
                binding: Some(binding),
                aor,
                next,
            };
            s
        };
        self.heap.push(s, at);
        self.bindings += 1;
        s
    }

    fn free_slot(&mut self, s: u32) -> Option<Binding> {
        self.heap.remove(s);
        let slot = &mut self.slots[s as usize];
        let b = slot.binding.take();
        slot.next = self.free_slot;
        slot.aor = NIL;
        self.free_slot = s;
        if b.is_some() {
            self.bindings -= 1;
        }
        b
    }

    fn alloc_aor(&mut self, hasher: &RandomState, hash: u64, name: Arc<str>) -> u32 {
        let a = if self.free_aor == NIL {
            self.aors.push(AorSlot {
                name: Some(name),
                head: NIL,
                version: 0,
            });
            (self.aors.len() - 1) as u32
        } else {
            let a = self.free_aor;
            let slot = &mut self.aors[a as usize];
            self.free_aor = slot.head;
            *slot = AorSlot {
                name: Some(name),
                head: NIL,
                version: 0,
            };
            a
        };
        let aors = &self.aors;
        self.index.insert_unique(hash, a, |&i| {
            hasher.hash_one(aors[i as usize].name.as_deref().unwrap_or(""))
        });
        self.aor_count += 1;
        a
    }

    fn free_aor(&mut self, hash: u64, a: u32) {
        if let Ok(e) = self.index.find_entry(hash, |&i| i == a) {
            e.remove();
        }
        let slot = &mut self.aors[a as usize];
        slot.name = None;
        slot.head = self.free_aor;
        self.free_aor = a;
        self.aor_count -= 1;
    }

    fn next_version(&mut self) -> u64 {
        self.last_version += 1;
        self.last_version
    }
}

/// The sharded in-memory [`LocationStore`]: fine-grained locks, O(log n) expiry, about 300
/// bytes of heap per typical binding including its indexes (see the crate README for the
/// measurement).
///
/// Shared by worker threads by reference (`&MemoryStore` is `Send + Sync` with `std`;
/// without `std` it works from one thread).
///
/// ```
/// use core::time::Duration;
/// use sip_location::{Binding, BindingFields, Changes, LocationStore, MemoryStore, Op};
///
/// let store = MemoryStore::default();
/// let now = Duration::from_secs(1_700_000_000);
/// let b = Binding::new(&BindingFields::new("sip:alice@192.0.2.4", 1_700_000_060)).unwrap();
/// store.apply(&Changes::new("sip:alice@example.com").with(Op::Put(b.clone())), now).unwrap();
/// assert_eq!(store.lookup("sip:alice@example.com", now).unwrap().bindings(), [b]);
/// // A minute later the binding is gone, and `expire` says so.
/// let later = now + Duration::from_secs(60);
/// assert!(store.lookup("sip:alice@example.com", later).unwrap().is_empty());
/// assert_eq!(store.expire(later, 100).unwrap().len(), 1);
/// assert_eq!(store.counts().unwrap().bindings, 0);
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Lock<Shard>]>,
    hasher: RandomState,
    total: AtomicUsize,
    cfg: MemoryConfig,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new(cfg: MemoryConfig) -> Self {
        let n = cfg.shards.clamp(1, 4096);
        let [a, b, c, d] = cfg.seeds;
        Self {
            shards: (0..n).map(|_| Lock::new(Shard::new())).collect(),
            hasher: RandomState::with_seeds(a, b, c, d),
            total: AtomicUsize::new(0),
            cfg: MemoryConfig { shards: n, ..cfg },
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.cfg
    }

    fn locate(&self, aor: &str) -> (u64, &Lock<Shard>) {
        let h = self.hasher.hash_one(aor);
        // The high half picks the shard; the table inside uses the low bits and the top 7.
        let i = ((h >> 32) * self.shards.len() as u64) >> 32;
        (h, &self.shards[i as usize])
    }

    fn apply_in(
        &self,
        shard: &mut Shard,
        hash: u64,
        changes: &Changes,
        now: Duration,
    ) -> Result<Applied, StoreError> {
        let found = shard.find(hash, &changes.aor);
        let current = found.map_or(Version::ABSENT, |a| Version(shard.aors[a as usize].version));
        if let Some(expected) = changes.expected {
            if expected != current {
                return Err(StoreError::Conflict {
                    aor: changes.aor.clone(),
                });
            }
        }
        if changes.ops.is_empty() {
            return Ok(Applied {
                version: current,
                events: Vec::new(),
            });
        }
        let old = found.map(|a| shard.list(a)).unwrap_or_default();
        let name: Arc<str> = match found {
            Some(a) => shard.aors[a as usize].name.clone().unwrap_or_default(),
            None => Arc::from(changes.aor.as_str()),
        };
        // The new list, computed aside so that a refused write changes nothing.
        let Merged { live, events } =
            merge(&name, old.iter().map(|(_, b)| b.clone()), &changes.ops, now);
        if live.len() > self.cfg.max_per_aor {
            return Err(StoreError::TooManyBindings {
                aor: changes.aor.clone(),
                limit: self.cfg.max_per_aor,
            });
        }
        if live.len() > old.len() {
            let grow = live.len() - old.len();
            let reserved = self.total.fetch_add(grow, Ordering::Relaxed);
            if reserved + grow > self.cfg.max_bindings {
                self.total.fetch_sub(grow, Ordering::Relaxed);
                return Err(StoreError::Full {
                    limit: self.cfg.max_bindings,
                });
            }
        } else {
            self.total
                .fetch_sub(old.len() - live.len(), Ordering::Relaxed);
        }
        // Commit: the old slots go, the new list takes fresh ones.
        for &(s, _) in &old {
            shard.free_slot(s);
        }
        if live.is_empty() {
            if let Some(a) = found {
                shard.free_aor(hash, a);
            }
            return Ok(Applied {
                version: Version::ABSENT,
                events,
            });
        }
        let a = match found {
            Some(a) => a,
            None => shard.alloc_aor(&self.hasher, hash, name),
        };
        let mut head = NIL;
        for b in live.into_iter().rev() {
            head = shard.alloc_slot(b, a, head);
        }
        let version = shard.next_version();
        let slot = &mut shard.aors[a as usize];
        slot.head = head;
        slot.version = version;
        Ok(Applied {
            version: Version(version),
            events,
        })
    }

    /// Pops expired bindings of one shard (at most `max`).
    fn expire_shard(&self, shard: &mut Shard, now: Duration, max: usize, out: &mut Vec<Event>) {
        let now_s = now.as_secs();
        let start = out.len();
        while out.len() - start < max {
            let Some((at, s)) = shard.heap.peek() else {
                break;
            };
            if u64::from(at) > now_s {
                break;
            }
            let slot = &shard.slots[s as usize];
            let a = slot.aor;
            let expired = slot.binding.as_ref().is_some_and(|b| b.is_expired(now));
            if !expired {
                break; // saturated far expiry: nothing below it is due either
            }
            // Unlink from the AOR's list.
            let next = slot.next;
            let mut p = shard.aors[a as usize].head;
            if p == s {
                shard.aors[a as usize].head = next;
            } else {
                while p != NIL {
                    let n = shard.slots[p as usize].next;
                    if n == s {
                        shard.slots[p as usize].next = next;
                        break;
                    }
                    p = n;
                }
            }
            let binding = shard.free_slot(s);
            self.total.fetch_sub(1, Ordering::Relaxed);
            let name = shard.aors[a as usize].name.clone().unwrap_or_default();
            if shard.aors[a as usize].head == NIL {
                let hash = self.hasher.hash_one(&*name);
                shard.free_aor(hash, a);
            }
            if let Some(binding) = binding {
                out.push(Event {
                    kind: EventKind::Expired,
                    aor: name,
                    binding,
                });
            }
        }
    }
}

impl LocationStore for MemoryStore {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        let (hash, lock) = self.locate(aor);
        Ok(lock.with(|shard| {
            let Some(a) = shard.find(hash, aor) else {
                return Snapshot::default();
            };
            let mut live: SmallVec<[Binding; 4]> = SmallVec::new();
            let mut s = shard.aors[a as usize].head;
            while s != NIL {
                let slot = &shard.slots[s as usize];
                if let Some(b) = slot.binding.as_ref().filter(|b| !b.is_expired(now)) {
                    live.push(b.clone());
                }
                s = slot.next;
            }
            Snapshot::new(Version(shard.aors[a as usize].version), live)
        }))
    }

    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        let (hash, lock) = self.locate(&changes.aor);
        lock.with(|shard| self.apply_in(shard, hash, changes, now))
    }

    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for lock in &*self.shards {
            if out.len() >= max {
                break;
            }
            let left = max - out.len();
            lock.with(|shard| self.expire_shard(shard, now, left, &mut out));
        }
        Ok(out)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let mut c = Counts::default();
        for lock in &*self.shards {
            lock.with(|s| {
                c.aors += s.aor_count;
                c.bindings += s.bindings;
            });
        }
        Ok(c)
    }

    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        // Cursor: shard in the high half, AOR slot in the low half.
        let mut shard_i = (cursor.0 >> 32) as usize;
        let mut slot_i = (cursor.0 & 0xffff_ffff) as usize;
        let mut page: Vec<(Arc<str>, Snapshot)> = Vec::new();
        while shard_i < self.shards.len() && page.len() < max_aors {
            let done = self.shards[shard_i].with(|shard| {
                while slot_i < shard.aors.len() && page.len() < max_aors {
                    let a = &shard.aors[slot_i];
                    if let Some(name) = &a.name {
                        let live = shard
                            .list(slot_i as u32)
                            .into_iter()
                            .map(|(_, b)| b)
                            .filter(|b| !b.is_expired(now));
                        page.push((name.clone(), Snapshot::new(Version(a.version), live)));
                    }
                    slot_i += 1;
                }
                slot_i >= shard.aors.len()
            });
            if done {
                shard_i += 1;
                slot_i = 0;
            }
        }
        // The visitor runs outside the locks: it may call the store.
        for (aor, snap) in &page {
            if !snap.is_empty() {
                visit(aor, snap.bindings());
            }
        }
        Ok((shard_i < self.shards.len())
            .then_some(Cursor(((shard_i as u64) << 32) | slot_i as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::BindingFields;
    use crate::change::Op;
    use alloc::format;
    use alloc::string::String;

    const T0: u64 = 1_700_000_000;

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn b(contact: &str, expires_at: u64) -> Binding {
        Binding::new(&BindingFields::new(contact, expires_at)).unwrap()
    }

    fn small() -> MemoryStore {
        MemoryStore::new(MemoryConfig {
            shards: 2,
            max_bindings: 5,
            max_per_aor: 3,
            ..MemoryConfig::default()
        })
    }

    #[test]
    fn put_refresh_remove_clear_events() {
        let s = small();
        let now = at(T0);
        let a = s
            .apply(
                &Changes::new("sip:a@x").with(Op::Put(b("sip:1@h", T0 + 10))),
                now,
            )
            .unwrap();
        assert_eq!(a.events[0].kind, EventKind::Saved);
        let v1 = a.version;
        // Same contact, written differently (§19.1.4): a refresh, not a second binding.
        let a = s
            .apply(
                &Changes::new("sip:a@x").with(Op::Put(b("sip:1@H", T0 + 20))),
                now,
            )
            .unwrap();
        assert_eq!(a.events[0].kind, EventKind::Refreshed);
        assert_ne!(a.version, v1);
        let snap = s.lookup("sip:a@x", now).unwrap();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap.bindings()[0].expires_at(), T0 + 20);
        assert_eq!(snap.version, a.version);
        let r = s
            .apply(
                &Changes::new("sip:a@x")
                    .with(Op::Put(b("sip:2@h", T0 + 20)))
                    .with(Op::Remove(b("sip:1@h", 0))),
                now,
            )
            .unwrap();
        let kinds: Vec<_> = r.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Saved, EventKind::Removed]);
        let r = s.remove("sip:a@x", None, now).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(s.counts().unwrap(), Counts::default());
        assert!(s.lookup("sip:a@x", now).unwrap().is_empty());
    }

    #[test]
    fn versions_guard_against_concurrent_writers() {
        let s = small();
        let now = at(T0);
        let snap = s.lookup("sip:a@x", now).unwrap();
        assert_eq!(snap.version, Version::ABSENT);
        let w = Changes::expecting("sip:a@x", snap.version).with(Op::Put(b("sip:1@h", T0 + 9)));
        s.apply(&w, now).unwrap();
        // A second writer that read the same (absent) state loses.
        assert!(matches!(s.apply(&w, now), Err(StoreError::Conflict { .. })));
        // Removed and re-created: the old version never comes back (no ABA).
        let v = s.lookup("sip:a@x", now).unwrap().version;
        s.remove("sip:a@x", None, now).unwrap();
        s.apply(
            &Changes::new("sip:a@x").with(Op::Put(b("sip:1@h", T0 + 9))),
            now,
        )
        .unwrap();
        let again = Changes::expecting("sip:a@x", v).with(Op::Clear);
        assert!(matches!(
            s.apply(&again, now),
            Err(StoreError::Conflict { .. })
        ));
    }

    #[test]
    fn limits_refuse_the_whole_write() {
        let s = small();
        let now = at(T0);
        let three = Changes::new("sip:a@x")
            .with(Op::Put(b("sip:1@h", T0 + 9)))
            .with(Op::Put(b("sip:2@h", T0 + 9)))
            .with(Op::Put(b("sip:3@h", T0 + 9)));
        s.apply(&three, now).unwrap();
        let four = Changes::new("sip:a@x").with(Op::Put(b("sip:4@h", T0 + 9)));
        assert!(matches!(
            s.apply(&four, now),
            Err(StoreError::TooManyBindings { limit: 3, .. })
        ));
        assert_eq!(s.lookup("sip:a@x", now).unwrap().len(), 3);
        let two = Changes::new("sip:b@x")
            .with(Op::Put(b("sip:1@h", T0 + 9)))
            .with(Op::Put(b("sip:2@h", T0 + 9)));
        s.apply(&two, now).unwrap();
        let one_more = Changes::new("sip:c@x").with(Op::Put(b("sip:1@h", T0 + 9)));
        assert!(matches!(
            s.apply(&one_more, now),
            Err(StoreError::Full { limit: 5 })
        ));
        assert_eq!(s.counts().unwrap().bindings, 5);
        assert_eq!(StoreError::Full { limit: 5 }.status(), 503);
        // Freed room is usable again.
        s.remove("sip:b@x", None, now).unwrap();
        s.apply(&one_more, now).unwrap();
    }

    #[test]
    fn expiry_pops_in_order_and_in_batches() {
        let s = small();
        for (i, t) in [30u64, 10, 20].iter().enumerate() {
            s.apply(
                &Changes::new(format!("sip:{i}@x")).with(Op::Put(b("sip:c@h", T0 + t))),
                at(T0),
            )
            .unwrap();
        }
        assert!(s.expire(at(T0 + 9), 10).unwrap().is_empty());
        let e = s.expire(at(T0 + 25), 1).unwrap();
        assert_eq!(e.len(), 1);
        let e2 = s.expire(at(T0 + 25), 10).unwrap();
        let mut got: Vec<u64> = e
            .iter()
            .chain(&e2)
            .map(|e| e.binding.expires_at())
            .collect();
        got.sort_unstable();
        assert_eq!(got, [T0 + 10, T0 + 20]);
        assert!(e.iter().all(|e| e.kind == EventKind::Expired));
        assert_eq!(
            s.counts().unwrap(),
            Counts {
                aors: 1,
                bindings: 1
            }
        );
        // An apply on an AOR whose binding expired unseen reports it.
        let r = s
            .apply(
                &Changes::new("sip:0@x").with(Op::Put(b("sip:d@h", T0 + 99))),
                at(T0 + 31),
            )
            .unwrap();
        let kinds: Vec<_> = r.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Expired, EventKind::Saved]);
    }

    #[test]
    fn scan_visits_every_aor_once_in_pages() {
        let s = MemoryStore::new(MemoryConfig {
            shards: 3,
            ..MemoryConfig::default()
        });
        for i in 0..50 {
            s.apply(
                &Changes::new(format!("sip:u{i}@x")).with(Op::Put(b("sip:c@h", T0 + 100))),
                at(T0),
            )
            .unwrap();
        }
        let mut seen: Vec<String> = Vec::new();
        let mut cursor = Some(Cursor::START);
        let mut pages = 0;
        while let Some(c) = cursor {
            cursor = s
                .scan(c, 7, at(T0), &mut |aor, bs| {
                    assert_eq!(bs.len(), 1);
                    seen.push(aor.into());
                })
                .unwrap();
            pages += 1;
            assert!(pages < 100);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 50);
    }
}
