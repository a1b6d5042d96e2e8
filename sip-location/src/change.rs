//! What flows between the registrar, a store and its subscribers: a [`Snapshot`] read,
//! [`Changes`] to one AOR written, [`Event`]s out.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;

use smallvec::SmallVec;

use crate::binding::Binding;

/// The version of an AOR's binding set as a store last wrote it: every write to the AOR
/// gives a new value, never reused for that AOR while the store lives (optimistic
/// concurrency, like Redis `WATCH` or a version column). An AOR without bindings has
/// version [`Version::ABSENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Version(pub u64);

impl Version {
    /// The version of an AOR that has no bindings.
    pub const ABSENT: Version = Version(0);
}

/// The current bindings of one AOR, unexpired at the time of the lookup, in
/// [lookup order](order), and the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The version read; pass it back in [`Changes::expected`].
    pub version: Version,
    bindings: SmallVec<[Binding; 4]>,
}

impl Snapshot {
    /// A snapshot of these bindings (sorted here into lookup order).
    pub fn new(version: Version, bindings: impl IntoIterator<Item = Binding>) -> Self {
        let mut bindings: SmallVec<[Binding; 4]> = bindings.into_iter().collect();
        bindings.sort_by(order);
        Self { version, bindings }
    }
    /// The bindings, best first.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }
    /// True when the AOR has no binding.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
    /// The number of bindings.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }
    /// The bindings registered by one instance (RFC 5627 §5: a request to a GRUU is routed
    /// to the contacts of its instance), given the `gr` URI parameter value.
    pub fn by_instance<'s>(&'s self, gr: &'s str) -> impl Iterator<Item = &'s Binding> + 's {
        self.bindings.iter().filter(move |b| {
            b.instance()
                .is_some_and(|i| crate::gruu::instance_matches(i, gr))
        })
    }
}

impl IntoIterator for Snapshot {
    type Item = Binding;
    type IntoIter = smallvec::IntoIter<[Binding; 4]>;
    fn into_iter(self) -> Self::IntoIter {
        self.bindings.into_iter()
    }
}

/// Lookup order: higher `q` first (a binding without `q` ranks as `q=1.0`, the top
/// preference of RFC 3261 §20.10), then the most recently registered or refreshed, then the
/// contact text (so the order is total and the same in every store).
pub fn order(a: &Binding, b: &Binding) -> Ordering {
    let q = |x: &Binding| x.q().unwrap_or(1000);
    q(b).cmp(&q(a))
        .then_with(|| b.last_modified_ms().cmp(&a.last_modified_ms()))
        .then_with(|| a.contact().cmp(b.contact()))
}

/// One write to an AOR's binding set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Adds the binding, or replaces the one it is the same as
    /// ([`Binding::same_binding`]): a [`EventKind::Saved`] or [`EventKind::Refreshed`]
    /// event.
    Put(Binding),
    /// Removes the binding this one is the same as ([`Binding::same_binding`]), if any: a
    /// [`EventKind::Removed`] event.
    Remove(Binding),
    /// Removes every binding whose contact is this URI ([`same_contact`](crate::same_contact),
    /// flows included): administration (`sip-proxy ctl location remove AOR CONTACT`).
    RemoveContact(String),
    /// Removes every binding of the AOR (`Contact: *`, `ctl location remove AOR`).
    Clear,
}

/// The changes to one AOR, applied atomically by [`LocationStore::apply`]
/// (RFC 3261 §10.3: "a particular REGISTER request is either processed completely or not at
/// all").
///
/// [`LocationStore::apply`]: crate::LocationStore::apply
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The canonical AOR ([`sip_parser::Aor`] text).
    pub aor: String,
    /// Apply only if the AOR is still at this version (else [`StoreError::Conflict`]);
    /// `None` applies unconditionally (administration, replication, write-back flushes).
    ///
    /// [`StoreError::Conflict`]: crate::StoreError::Conflict
    pub expected: Option<Version>,
    /// The writes, in order.
    pub ops: Vec<Op>,
}

impl Changes {
    /// Unconditional changes to `aor`.
    pub fn new(aor: impl Into<String>) -> Self {
        Self {
            aor: aor.into(),
            expected: None,
            ops: Vec::new(),
        }
    }
    /// Changes that apply only at version `expected`.
    pub fn expecting(aor: impl Into<String>, expected: Version) -> Self {
        Self {
            expected: Some(expected),
            ..Self::new(aor)
        }
    }
    /// Adds an op.
    #[must_use]
    pub fn with(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What happened to a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new binding (Kamailio's `UL_CONTACT_INSERT`).
    Saved,
    /// An existing binding re-registered (`UL_CONTACT_UPDATE`).
    Refreshed,
    /// Removed by a REGISTER with expires 0, `Contact: *`, a replacement or administration
    /// (`UL_CONTACT_DELETE`).
    Removed,
    /// Its time ran out (`UL_CONTACT_EXPIRE`).
    Expired,
}

/// A change a store made: what a replicator (a shared database, Redis pub/sub, Kamailio's
/// DMQ) or a logger subscribes to. Stores return them from
/// [`apply`](crate::LocationStore::apply) and [`expire`](crate::LocationStore::expire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The canonical AOR.
    pub aor: Arc<str>,
    /// The binding as it now is ([`Saved`](EventKind::Saved) /
    /// [`Refreshed`](EventKind::Refreshed)) or as it was (removed, expired).
    pub binding: Binding,
}

/// The result of a successful [`apply`](crate::LocationStore::apply).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The AOR's version after the write.
    pub version: Version,
    /// What changed (bindings that had expired unseen are reported as
    /// [`Expired`](EventKind::Expired)).
    pub events: Vec<Event>,
}
