//! Dialog profiles (Kamailio `dlg_profile`): counters of live dialogs per profile and value
//! (calls per user, per upstream, per trunk), with an optional limit checked and counted in
//! one step so that concurrent INVITEs cannot both pass a call limit.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ahash::RandomState;
use hashbrown::HashTable;

use crate::sync::Lock;

/// A profile a new dialog is counted in: Kamailio's `set_dlg_profile(name[, value])`, with
/// the check of `get_profile_size` folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile<'a> {
    /// The profile's name (`"caller"`, `"outbound"`).
    pub name: &'a str,
    /// The value (the caller's AOR, the upstream's name); `None` for a profile without
    /// values.
    pub value: Option<&'a str>,
    /// Refuse the dialog when the profile (this value, or the whole profile when `value` is
    /// `None`) already counts this many.
    pub limit: Option<u32>,
}

#[derive(Debug)]
struct Entry {
    name: Box<str>,
    value: Option<Box<str>>,
    count: u32,
}

/// The counters, in shards keyed by (name, value).
#[derive(Debug)]
pub(crate) struct Profiles {
    shards: Vec<Lock<HashTable<Entry>>>,
    hasher: RandomState,
}

impl Profiles {
    pub(crate) fn new(shards: usize, hasher: RandomState) -> Self {
        Profiles {
            shards: (0..shards).map(|_| Lock::new(HashTable::new())).collect(),
            hasher,
        }
    }

    fn hash(&self, name: &str, value: Option<&str>) -> u64 {
        self.hasher.hash_one((name, value))
    }

    fn shard(&self, hash: u64) -> &Lock<HashTable<Entry>> {
        &self.shards[(hash as usize) % self.shards.len()]
    }

    /// Adds 1 to (name, value) unless it is at `limit`; returns false when refused.
    fn add_one(&self, name: &str, value: Option<&str>, limit: Option<u32>) -> bool {
        let h = self.hash(name, value);
        self.shard(h).with(|t| {
            let hasher = &self.hasher;
            if let Some(e) = t.find_mut(h, |e| &*e.name == name && e.value.as_deref() == value) {
                if limit.is_some_and(|l| e.count >= l) {
                    return false;
                }
                e.count += 1;
                return true;
            }
            if limit == Some(0) {
                return false;
            }
            t.insert_unique(
                h,
                Entry {
                    name: name.into(),
                    value: value.map(Into::into),
                    count: 1,
                },
                |e| hasher.hash_one((&*e.name, e.value.as_deref())),
            );
            true
        })
    }

    fn sub_one(&self, name: &str, value: Option<&str>) {
        let h = self.hash(name, value);
        self.shard(h).with(|t| {
            if let Ok(mut e) = t.find_entry(h, |e| &*e.name == name && e.value.as_deref() == value)
            {
                let entry = e.get_mut();
                entry.count = entry.count.saturating_sub(1);
                if entry.count == 0 {
                    e.remove();
                }
            }
        });
    }

    /// Counts a dialog in `name` (and in `name`/`value` when there is a value), checking the
    /// limit of the entry the profile names. Returns false (and counts nothing) when refused.
    pub(crate) fn enter(&self, p: &Profile<'_>) -> bool {
        match p.value {
            None => self.add_one(p.name, None, p.limit),
            Some(v) => {
                if !self.add_one(p.name, Some(v), p.limit) {
                    return false;
                }
                self.add_one(p.name, None, None);
                true
            }
        }
    }

    /// Undoes [`enter`](Self::enter).
    pub(crate) fn leave(&self, name: &str, value: Option<&str>) {
        self.sub_one(name, None);
        if value.is_some() {
            self.sub_one(name, value);
        }
    }

    /// Dialogs counted in `name` (all values) or in `name`/`value`.
    pub(crate) fn size(&self, name: &str, value: Option<&str>) -> u32 {
        let h = self.hash(name, value);
        self.shard(h).with(|t| {
            t.find(h, |e| &*e.name == name && e.value.as_deref() == value)
                .map_or(0, |e| e.count)
        })
    }

    /// Entries held (for bounds checks).
    pub(crate) fn entries(&self) -> usize {
        self.shards.iter().map(|s| s.with(|t| t.len())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_and_release() {
        let p = Profiles::new(4, RandomState::with_seeds(1, 2, 3, 4));
        let alice = Profile {
            name: "caller",
            value: Some("alice"),
            limit: Some(2),
        };
        assert!(p.enter(&alice));
        assert!(p.enter(&alice));
        assert!(!p.enter(&alice));
        let bob = Profile {
            value: Some("bob"),
            ..alice
        };
        assert!(p.enter(&bob));
        assert_eq!(p.size("caller", None), 3);
        assert_eq!(p.size("caller", Some("alice")), 2);
        let total = Profile {
            name: "caller",
            value: None,
            limit: Some(3),
        };
        assert!(!p.enter(&total));
        p.leave("caller", Some("alice"));
        p.leave("caller", Some("alice"));
        p.leave("caller", Some("bob"));
        assert_eq!(p.size("caller", None), 0);
        assert_eq!(p.entries(), 0);
        assert!(!p.enter(&Profile {
            limit: Some(0),
            ..total
        }));
    }
}
