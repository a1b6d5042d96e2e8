//! Where the server finds a user's secret: the [`CredentialStore`] trait and an in-memory
//! store.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};

use crate::algorithm::{HashKind, HexDigest};
use crate::digest;
use crate::error::FileError;

/// A user's secret for one realm and hash function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// HA1 = H(user ":" realm ":" password) for the requested hash (preferred: no plaintext).
    Ha1(HexDigest),
    /// The plain password (tests, legacy stores).
    Password(String),
}

impl Secret {
    /// The HA1 for `hash`.
    pub fn ha1(&self, hash: HashKind, username: &str, realm: &str) -> HexDigest {
        match self {
            Secret::Ha1(h) => *h,
            Secret::Password(p) => digest::ha1(hash, username, realm, p),
        }
    }
}

/// Lookup of credentials by user and realm. Synchronous so it works in `no_std`; a binary
/// with an async backend wraps it (e.g. preloading, or a blocking bridge).
pub trait CredentialStore {
    /// The secret of `username` in `realm` usable with `hash` (an HA1 must be the one for that
    /// hash: MD5 and SHA-256 HA1 differ). `None` for an unknown user or no such HA1.
    fn lookup(&self, username: &str, realm: &str, hash: HashKind) -> Option<Secret>;

    /// The HA1 of `username` in `realm` for `hash`: the stored one, or computed from a
    /// stored password. The default goes through [`CredentialStore::lookup`]; a store
    /// holding HA1 values can answer without building a [`Secret`].
    fn ha1(&self, username: &str, realm: &str, hash: HashKind) -> Option<HexDigest> {
        self.lookup(username, realm, hash)
            .map(|s| s.ha1(hash, username, realm))
    }

    /// The user whose `userhash` (H(user ":" realm), hex) is `userhash` (RFC 7616 §3.4.4).
    /// The default finds none, so `userhash=true` credentials fail as unknown users.
    fn user_for_hash(&self, userhash: &str, realm: &str, hash: HashKind) -> Option<String> {
        let _ = (userhash, realm, hash);
        None
    }
}

impl<T: CredentialStore + ?Sized> CredentialStore for &T {
    fn lookup(&self, username: &str, realm: &str, hash: HashKind) -> Option<Secret> {
        (**self).lookup(username, realm, hash)
    }
    fn ha1(&self, username: &str, realm: &str, hash: HashKind) -> Option<HexDigest> {
        (**self).ha1(username, realm, hash)
    }
    fn user_for_hash(&self, userhash: &str, realm: &str, hash: HashKind) -> Option<String> {
        (**self).user_for_hash(userhash, realm, hash)
    }
}

#[derive(Debug, Clone, Default)]
struct Entry {
    password: Option<String>,
    ha1: [Option<HexDigest>; 3],
}

fn slot(hash: HashKind) -> usize {
    match hash {
        HashKind::Md5 => 0,
        HashKind::Sha256 => 1,
        HashKind::Sha512_256 => 2,
    }
}

/// In-memory credential store: realm → user → password and/or HA1 per hash function.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    users: BTreeMap<String, BTreeMap<String, Entry>>,
    /// (realm, hex userhash) → user, for each hash function.
    hashes: [BTreeMap<(String, String), String>; 3],
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, user: &str, realm: &str) -> &mut Entry {
        if !self.users.get(realm).is_some_and(|m| m.contains_key(user)) {
            for h in HashKind::ALL {
                let uh = digest::userhash(h, user, realm);
                self.hashes[slot(h)].insert(
                    (realm.to_string(), uh.as_str().to_string()),
                    user.to_string(),
                );
            }
        }
        self.users
            .entry(realm.to_string())
            .or_default()
            .entry(user.to_string())
            .or_default()
    }

    /// Add or replace a user with a plain password (usable with every hash).
    pub fn add_password(&mut self, user: &str, realm: &str, password: &str) {
        let e = self.entry(user, realm);
        e.password = Some(password.to_string());
        e.ha1 = [None; 3];
    }

    /// Add or replace the HA1 of a user for one hash function.
    pub fn add_ha1(&mut self, user: &str, realm: &str, hash: HashKind, ha1: HexDigest) {
        self.entry(user, realm).ha1[slot(hash)] = Some(ha1);
    }

    /// Remove a user from a realm. Returns whether it was there.
    pub fn remove(&mut self, user: &str, realm: &str) -> bool {
        let removed = self
            .users
            .get_mut(realm)
            .and_then(|m| m.remove(user))
            .is_some();
        if removed {
            for h in HashKind::ALL {
                let uh = digest::userhash(h, user, realm);
                self.hashes[slot(h)].remove(&(realm.to_string(), uh.as_str().to_string()));
            }
        }
        removed
    }

    /// Number of (user, realm) entries.
    pub fn len(&self) -> usize {
        self.users.values().map(BTreeMap::len).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Load the plain `user:password` form (one per line; `#` comments and blank lines
    /// skipped), every user in `realm`. For tests and demos.
    pub fn from_plain(text: &str, realm: &str) -> Result<Self, FileError> {
        let mut s = Self::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((u, p)) if !u.is_empty() => s.add_password(u, realm, p),
                _ => {
                    return Err(FileError {
                        line: i + 1,
                        reason: "expected user:password",
                    });
                }
            }
        }
        Ok(s)
    }
}

impl CredentialStore for MemoryStore {
    fn lookup(&self, username: &str, realm: &str, hash: HashKind) -> Option<Secret> {
        let e = self.users.get(realm)?.get(username)?;
        if let Some(h) = e.ha1[slot(hash)] {
            return Some(Secret::Ha1(h));
        }
        e.password.clone().map(Secret::Password)
    }

    fn ha1(&self, username: &str, realm: &str, hash: HashKind) -> Option<HexDigest> {
        let e = self.users.get(realm)?.get(username)?;
        match (&e.ha1[slot(hash)], &e.password) {
            (Some(h), _) => Some(*h),
            (None, Some(p)) => Some(digest::ha1(hash, username, realm, p)),
            (None, None) => None,
        }
    }

    fn user_for_hash(&self, userhash: &str, realm: &str, hash: HashKind) -> Option<String> {
        let key = (realm.to_string(), userhash.to_ascii_lowercase());
        self.hashes[slot(hash)].get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_hash_kind() {
        let mut s = MemoryStore::new();
        s.add_password("alice", "r", "pw");
        let md5 = digest::ha1(HashKind::Md5, "bob", "r", "x");
        s.add_ha1("bob", "r", HashKind::Md5, md5);
        assert_eq!(
            s.lookup("alice", "r", HashKind::Sha256),
            Some(Secret::Password("pw".into()))
        );
        assert_eq!(s.lookup("bob", "r", HashKind::Md5), Some(Secret::Ha1(md5)));
        assert_eq!(s.lookup("bob", "r", HashKind::Sha256), None);
        assert_eq!(s.lookup("carol", "r", HashKind::Md5), None);
        assert_eq!(s.lookup("alice", "other", HashKind::Md5), None);
        let uh = digest::userhash(HashKind::Sha256, "alice", "r");
        assert_eq!(
            s.user_for_hash(uh.as_str(), "r", HashKind::Sha256),
            Some("alice".into())
        );
        assert!(s.remove("alice", "r"));
        assert_eq!(s.user_for_hash(uh.as_str(), "r", HashKind::Sha256), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn plain_form() {
        let s = MemoryStore::from_plain("# c\nalice:pw:with:colons\n\nbob:\n", "r").unwrap();
        assert_eq!(
            s.lookup("alice", "r", HashKind::Md5),
            Some(Secret::Password("pw:with:colons".into()))
        );
        assert_eq!(
            MemoryStore::from_plain("ok:1\nbad\n", "r")
                .unwrap_err()
                .line,
            2
        );
    }
}
