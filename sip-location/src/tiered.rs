//! [`Tiered`]: a cache store in front of a backing store, with the four persistence modes of
//! Kamailio's `usrloc` `db_mode`. Any [`LocationStore`] can be either tier: the in-memory
//! store in front of an SQLite or Redis one is the intended use.
//!
//! | [`Mode`] | `db_mode` | reads | a write (`apply`) | `flush` | `expire` |
//! |---|---|---|---|---|---|
//! | `MemoryOnly` | 0 | cache | cache | nothing | cache |
//! | `WriteThrough` | 1 | cache | backing, then cache, before returning (either fails → neither changed) | nothing | backing, then cache |
//! | `WriteBack` | 2 | cache | cache; the AOR is marked dirty | the current set of each dirty AOR, replacing the backing's | cache; the AOR is marked dirty |
//! | `StoreOnly` | 3 | backing | backing | the backing's own | backing |
//!
//! Write-back coalesces: however often an AOR changes between two flushes, the backing gets
//! one write with its latest bindings, and the dirty set holds at most one entry per AOR.
//! A flush hands the backing [`FLUSH_BATCH`] AORs per [`LocationStore::apply_all`] call (one
//! transaction in an SQL backend), and flushes never overlap (a second caller waits), so an
//! older set of an AOR never overwrites a newer one in the backing.
//! [`Tiered::load`] fills the cache from the backing at start-up.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::binding::Binding;
use crate::change::{Applied, Changes, Event, Op, Snapshot};
use crate::store::{Counts, Cursor, LocationStore, StoreError};
use crate::sync::Lock;

/// AORs written per [`LocationStore::apply_all`] call by a write-back flush.
pub const FLUSH_BATCH: usize = 512;

/// Where bindings live and when the backing store is written (Kamailio `usrloc` `db_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 0 (`NO_DB`): the cache only; the backing is never touched.
    MemoryOnly,
    /// 1 (`WRITE_THROUGH`): every change is in the backing before `apply` returns.
    WriteThrough,
    /// 2 (`WRITE_BACK`): changes are written to the backing by [`LocationStore::flush`],
    /// which the caller runs periodically (and at shutdown).
    WriteBack,
    /// 3 (`DB_ONLY`): the backing only; the cache is never used.
    StoreOnly,
}

impl Mode {
    /// The mode of a Kamailio `db_mode` value (0–3).
    ///
    /// ```
    /// use sip_location::Mode;
    /// assert_eq!(Mode::from_db_mode(2), Some(Mode::WriteBack));
    /// assert_eq!(Mode::from_db_mode(4), None);
    /// ```
    pub fn from_db_mode(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::MemoryOnly,
            1 => Self::WriteThrough,
            2 => Self::WriteBack,
            3 => Self::StoreOnly,
            _ => return None,
        })
    }
}

/// A cache store in front of a backing store (see the module docs).
///
/// Write-back over a second memory store standing for SQLite or Redis:
///
/// ```
/// use core::time::Duration;
/// use sip_location::{Binding, BindingFields, Changes, LocationStore, MemoryStore, Mode, Op, Tiered};
///
/// let now = Duration::from_secs(1_700_000_000);
/// let store = Tiered::new(MemoryStore::default(), MemoryStore::default(), Mode::WriteBack);
/// let b = Binding::new(&BindingFields::new("sip:alice@192.0.2.4", 1_700_003_600)).unwrap();
/// store.apply(&Changes::new("sip:alice@example.com").with(Op::Put(b)), now).unwrap();
/// assert_eq!(store.lookup("sip:alice@example.com", now).unwrap().len(), 1);
/// assert_eq!(store.backing().counts().unwrap().bindings, 0); // not yet written
/// assert_eq!(store.flush(now).unwrap(), 1);                   // the periodic flush
/// assert_eq!(store.backing().counts().unwrap().bindings, 1);
/// ```
#[derive(Debug)]
pub struct Tiered<C, B> {
    cache: C,
    backing: B,
    mode: Mode,
    dirty: Lock<BTreeSet<String>>,
    /// Held for the whole of a write-back flush.
    flushing: Lock<()>,
    /// Write-through serialises writers of one AOR here (the backing write and the cache
    /// write must not interleave with another writer's).
    stripes: alloc::boxed::Box<[Lock<()>]>,
}

impl<C: LocationStore, B: LocationStore> Tiered<C, B> {
    /// `cache` in front of `backing`, in `mode`.
    pub fn new(cache: C, backing: B, mode: Mode) -> Self {
        Self {
            cache,
            backing,
            mode,
            dirty: Lock::new(BTreeSet::new()),
            flushing: Lock::new(()),
            stripes: (0..64).map(|_| Lock::new(())).collect(),
        }
    }
    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The cache tier.
    pub fn cache(&self) -> &C {
        &self.cache
    }
    /// The backing tier.
    pub fn backing(&self) -> &B {
        &self.backing
    }
    /// AORs changed in the cache and not yet flushed (write-back).
    pub fn dirty(&self) -> usize {
        self.dirty.with(|d| d.len())
    }

    /// Fills the cache with everything in the backing (start-up restore); returns how many
    /// AORs were loaded. Does nothing in `MemoryOnly` and `StoreOnly` modes.
    pub fn load(&self, now: Duration) -> Result<usize, StoreError> {
        if matches!(self.mode, Mode::MemoryOnly | Mode::StoreOnly) {
            return Ok(0);
        }
        let mut pages: Vec<Changes> = Vec::new();
        let mut cursor = Some(Cursor::START);
        let mut n = 0;
        while let Some(c) = cursor {
            cursor = self.backing.scan(c, 256, now, &mut |aor, bindings| {
                let mut ch = Changes::new(aor).with(Op::Clear);
                ch.ops.extend(bindings.iter().cloned().map(Op::Put));
                pages.push(ch);
            })?;
            for ch in pages.drain(..) {
                self.cache.apply(&ch, now)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn stripe(&self, aor: &str) -> &Lock<()> {
        // FNV-1a: only spreads writers over the stripes, no adversary gains by colliding.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in aor.as_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.stripes[(h % self.stripes.len() as u64) as usize]
    }

    fn write_through(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        self.stripe(&changes.aor).with(|()| {
            let before = self.cache.lookup(&changes.aor, now)?;
            if let Some(expected) = changes.expected {
                if expected != before.version {
                    return Err(StoreError::Conflict {
                        aor: changes.aor.clone(),
                    });
                }
            }
            let applied = self.cache.apply(changes, now)?;
            let unconditional = Changes {
                expected: None,
                ..changes.clone()
            };
            if let Err(e) = self.backing.apply(&unconditional, now) {
                // Put the cache back as it was: the write did not happen.
                let mut undo = Changes::new(changes.aor.clone()).with(Op::Clear);
                undo.ops.extend(before.into_iter().map(Op::Put));
                self.cache.apply(&undo, now)?;
                return Err(e);
            }
            Ok(applied)
        })
    }
}

impl<C: LocationStore, B: LocationStore> LocationStore for Tiered<C, B> {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        match self.mode {
            Mode::StoreOnly => self.backing.lookup(aor, now),
            _ => self.cache.lookup(aor, now),
        }
    }

    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        match self.mode {
            Mode::MemoryOnly => self.cache.apply(changes, now),
            Mode::StoreOnly => self.backing.apply(changes, now),
            Mode::WriteThrough => self.write_through(changes, now),
            Mode::WriteBack => {
                let applied = self.cache.apply(changes, now)?;
                self.dirty.with(|d| d.insert(changes.aor.clone()));
                Ok(applied)
            }
        }
    }

    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError> {
        match self.mode {
            Mode::MemoryOnly => self.cache.expire(now, max),
            Mode::StoreOnly => self.backing.expire(now, max),
            Mode::WriteThrough => {
                // The backing first: if it fails, both still hold the expired bindings and
                // the next call retries.
                while max > 0 && self.backing.expire(now, max)?.len() == max {}
                self.cache.expire(now, max)
            }
            Mode::WriteBack => {
                let events = self.cache.expire(now, max)?;
                self.dirty.with(|d| {
                    for e in &events {
                        d.insert(String::from(&*e.aor));
                    }
                });
                Ok(events)
            }
        }
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        match self.mode {
            Mode::StoreOnly => self.backing.counts(),
            _ => self.cache.counts(),
        }
    }

    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        match self.mode {
            Mode::StoreOnly => self.backing.scan(cursor, max_aors, now, visit),
            _ => self.cache.scan(cursor, max_aors, now, visit),
        }
    }

    fn flush(&self, now: Duration) -> Result<usize, StoreError> {
        match self.mode {
            Mode::MemoryOnly | Mode::WriteThrough => Ok(0),
            Mode::StoreOnly => self.backing.flush(now),
            Mode::WriteBack => self.flushing.with(|()| {
                let pending: Vec<String> = self
                    .dirty
                    .with(|d| core::mem::take(d).into_iter().collect());
                let mut written = 0;
                for (i, chunk) in pending.chunks(FLUSH_BATCH).enumerate() {
                    let result = chunk
                        .iter()
                        .map(|aor| {
                            let snap = self.cache.lookup(aor, now)?;
                            let mut ch = Changes::new(aor.clone()).with(Op::Clear);
                            ch.ops.extend(snap.into_iter().map(Op::Put));
                            Ok(ch)
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                        .and_then(|batch| self.backing.apply_all(&batch, now));
                    if let Err(e) = result {
                        // Not written: keep this batch, and everything not tried yet, for
                        // next time.
                        let rest = &pending[i * FLUSH_BATCH..];
                        self.dirty.with(|d| d.extend(rest.iter().cloned()));
                        return Err(e);
                    }
                    written += chunk.len();
                }
                Ok(written)
            }),
        }
    }
}
