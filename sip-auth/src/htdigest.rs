//! Apache `htdigest` credential files (see [`HtdigestFile`]).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::algorithm::{Algorithm, HashKind, HexDigest};
use crate::digest;
use crate::error::FileError;
use crate::store::MemoryStore;

const EXT_PREFIX: &str = "#sip-auth:";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Entry {
        user: String,
        realm: String,
        ha1: HexDigest,
    },
    Ext {
        hash: HashKind,
        user: String,
        realm: String,
        ha1: HexDigest,
        md5: HexDigest,
    },
    Other(String),
}

/// One user of an htdigest file, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// User name.
    pub user: String,
    /// Realm.
    pub realm: String,
    /// Hash functions an HA1 is stored for (MD5 always first).
    pub hashes: Vec<HashKind>,
}

/// An htdigest file in memory, keeping comments and order.
///
/// Apache `htdigest` files hold MD5 HA1 values; this type adds SHA-256 / SHA-512-256 HA1
/// values, kept in a way plain htdigest readers ignore.
///
/// Format, one entry per line:
///
/// ```text
/// alice:atlanta.com:<MD5 HA1, 32 hex>
/// #sip-auth:SHA-256:alice:atlanta.com:<SHA-256 HA1, 64 hex>:<the MD5 HA1 above>
/// #sip-auth:SHA-512-256:alice:atlanta.com:<SHA-512-256 HA1, 64 hex>:<the MD5 HA1 above>
/// ```
///
/// The first line is exactly Apache's `user:realm:HA1`. The extension lines start with `#`,
/// which Apache's `mod_authn_file` and the `htdigest` tool treat as comments (the tool copies
/// them through unchanged). Each extension line repeats the MD5 HA1 it was written with: if
/// the password is later changed with Apache's `htdigest`, the MD5 HA1 no longer matches and
/// the stale SHA lines are ignored (and dropped at the next rewrite), so a user is never left
/// with two different passwords. Other `#` lines and blank lines are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtdigestFile {
    lines: Vec<Line>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains([':', '\n', '\r', '\0'])
}

impl HtdigestFile {
    /// Parse a file. A malformed line is reported with its 1-based number.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            let err = |reason| FileError {
                line: i + 1,
                reason,
            };
            if let Some(rest) = line.strip_prefix(EXT_PREFIX) {
                let f: Vec<&str> = rest.split(':').collect();
                let [alg, user, realm, ha1, md5] = f[..] else {
                    return Err(err("expected #sip-auth:ALGORITHM:user:realm:HA1:MD5-HA1"));
                };
                let hash = Algorithm::parse(alg)
                    .filter(|a| !a.is_session() && a.hash() != HashKind::Md5)
                    .ok_or(err("unknown algorithm in #sip-auth line"))?
                    .hash();
                let ha1 = HexDigest::parse(ha1)
                    .filter(|h| h.as_bytes().len() == 2 * hash.output_len())
                    .ok_or(err("HA1 is not a hex digest of the right length"))?;
                let md5 = HexDigest::parse(md5)
                    .filter(|h| h.as_bytes().len() == 32)
                    .ok_or(err("MD5 HA1 is not 32 hex digits"))?;
                if !valid_name(user) || !valid_name(realm) {
                    return Err(err("empty user or realm"));
                }
                lines.push(Line::Ext {
                    hash,
                    user: user.to_string(),
                    realm: realm.to_string(),
                    ha1,
                    md5,
                });
            } else if line.trim().is_empty() || line.starts_with('#') {
                lines.push(Line::Other(line.to_string()));
            } else {
                let f: Vec<&str> = line.split(':').collect();
                let [user, realm, ha1] = f[..] else {
                    return Err(err("expected user:realm:HA1"));
                };
                if !valid_name(user) || !valid_name(realm) {
                    return Err(err("empty user or realm"));
                }
                let ha1 = HexDigest::parse(ha1)
                    .filter(|h| h.as_bytes().len() == 32)
                    .ok_or(err("HA1 is not 32 hex digits"))?;
                lines.push(Line::Entry {
                    user: user.to_string(),
                    realm: realm.to_string(),
                    ha1,
                });
            }
        }
        Ok(HtdigestFile { lines })
    }

    /// Add `user` in `realm` with `password`, or replace it (its line keeps its place). The
    /// MD5 line is always written; `extra` lists further hash functions to store
    /// (SHA-256, SHA-512-256; MD5 in it is ignored). Fails if user or realm is empty or
    /// contains `:` or a line break.
    pub fn set_password(
        &mut self,
        user: &str,
        realm: &str,
        password: &str,
        extra: &[HashKind],
    ) -> Result<(), FileError> {
        if !valid_name(user) || !valid_name(realm) {
            return Err(FileError {
                line: 0,
                reason: "user and realm must be non-empty and contain no ':' or line break",
            });
        }
        let md5 = digest::ha1(HashKind::Md5, user, realm, password);
        let mut new_lines = Vec::new();
        new_lines.push(Line::Entry {
            user: user.to_string(),
            realm: realm.to_string(),
            ha1: md5,
        });
        for &hash in extra {
            if hash == HashKind::Md5
                || new_lines
                    .iter()
                    .any(|l| matches!(l, Line::Ext { hash: h, .. } if *h == hash))
            {
                continue;
            }
            new_lines.push(Line::Ext {
                hash,
                user: user.to_string(),
                realm: realm.to_string(),
                ha1: digest::ha1(hash, user, realm, password),
                md5,
            });
        }
        let pos = self.lines.iter().position(|l| is_user(l, user, realm));
        self.remove(user, realm);
        let at = pos.unwrap_or(self.lines.len()).min(self.lines.len());
        self.lines.splice(at..at, new_lines);
        Ok(())
    }

    /// Remove every line of `user` in `realm`. Returns whether there was one.
    pub fn remove(&mut self, user: &str, realm: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|l| !is_user(l, user, realm));
        self.lines.len() != before
    }

    /// The users, in file order, with the hash functions that have a current HA1.
    pub fn users(&self) -> Vec<UserEntry> {
        let index = self.index();
        let mut out: Vec<UserEntry> = Vec::new();
        for l in &self.lines {
            if let Line::Entry { user, realm, .. } = l {
                let mut hashes = alloc::vec![HashKind::Md5];
                for h in [HashKind::Sha256, HashKind::Sha512_256] {
                    if index.current_ext(user, realm, h).is_some() {
                        hashes.push(h);
                    }
                }
                out.push(UserEntry {
                    user: user.clone(),
                    realm: realm.clone(),
                    hashes,
                });
            }
        }
        out
    }

    /// Every user's current HA1s in one pass (the MD5 HA1 and the extension lines made beside it,
    /// by user: a file of
    /// 50 000 users loads in milliseconds, not minutes).
    fn index(&self) -> Index<'_> {
        let mut md5: BTreeMap<(&str, &str), HexDigest> = BTreeMap::new();
        let mut ext: BTreeMap<(&str, &str), Vec<ExtLine>> = BTreeMap::new();
        for l in &self.lines {
            match l {
                Line::Entry { user, realm, ha1 } => {
                    md5.entry((user.as_str(), realm.as_str())).or_insert(*ha1);
                }
                Line::Ext {
                    hash,
                    user,
                    realm,
                    ha1,
                    md5: m,
                } => ext
                    .entry((user.as_str(), realm.as_str()))
                    .or_default()
                    .push((*hash, *m, *ha1)),
                Line::Other(_) => {}
            }
        }
        Index { md5, ext }
    }

    /// Write the file back. Extension lines whose MD5 HA1 no longer matches are dropped.
    pub fn to_text(&self) -> String {
        let index = self.index();
        let mut s = String::new();
        for l in &self.lines {
            match l {
                Line::Entry { user, realm, ha1 } => {
                    let _ = writeln!(s, "{user}:{realm}:{ha1}");
                }
                Line::Ext {
                    hash,
                    user,
                    realm,
                    ha1,
                    md5,
                } => {
                    if index.md5.get(&(user.as_str(), realm.as_str())) == Some(md5) {
                        let _ = writeln!(
                            s,
                            "{EXT_PREFIX}{}:{user}:{realm}:{ha1}:{md5}",
                            hash.algorithm()
                        );
                    }
                }
                Line::Other(o) => {
                    let _ = writeln!(s, "{o}");
                }
            }
        }
        s
    }

    /// A credential store holding every current HA1 of the file.
    pub fn to_store(&self) -> MemoryStore {
        let index = self.index();
        let mut s = MemoryStore::new();
        for l in &self.lines {
            if let Line::Entry { user, realm, ha1 } = l {
                s.add_ha1(user, realm, HashKind::Md5, *ha1);
                for h in [HashKind::Sha256, HashKind::Sha512_256] {
                    if let Some(x) = index.current_ext(user, realm, h) {
                        s.add_ha1(user, realm, h, x);
                    }
                }
            }
        }
        s
    }
}

/// The current HA1s of every user of a file, by (user, realm): [`HtdigestFile::index`].
struct Index<'a> {
    /// The first MD5 entry of each user.
    md5: BTreeMap<(&'a str, &'a str), HexDigest>,
    /// Extension lines of each user, in file order: (hash, the MD5 HA1 they were made
    /// beside, HA1).
    ext: BTreeMap<(&'a str, &'a str), Vec<ExtLine>>,
}

/// An extension line: (hash, the MD5 HA1 it was made beside, HA1).
type ExtLine = (HashKind, HexDigest, HexDigest);

impl Index<'_> {
    /// The HA1 for `hash` made beside the user's current MD5 HA1 (an extension line
    /// left from an older password does not count).
    fn current_ext(&self, user: &str, realm: &str, hash: HashKind) -> Option<HexDigest> {
        let md5 = self.md5.get(&(user, realm))?;
        self.ext
            .get(&(user, realm))?
            .iter()
            .find(|(h, m, _)| *h == hash && m == md5)
            .map(|(_, _, ha1)| *ha1)
    }
}

fn is_user(l: &Line, user: &str, realm: &str) -> bool {
    match l {
        Line::Entry {
            user: u, realm: r, ..
        }
        | Line::Ext {
            user: u, realm: r, ..
        } => u == user && r == realm,
        Line::Other(_) => false,
    }
}

impl MemoryStore {
    /// Load an htdigest file (see [`HtdigestFile`]).
    pub fn from_htdigest(text: &str) -> Result<Self, FileError> {
        Ok(HtdigestFile::parse(text)?.to_store())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CredentialStore, Secret};

    #[test]
    fn apache_line_and_extensions() {
        // `htdigest -c f atlanta.com alice` with password "secret" writes this line.
        let apache = "alice:atlanta.com:".to_string()
            + digest::ha1(HashKind::Md5, "alice", "atlanta.com", "secret").as_str();
        let mut f = HtdigestFile::parse(&(apache.clone() + "\n# keep me\n")).unwrap();
        f.set_password(
            "bob",
            "atlanta.com",
            "pw",
            &[HashKind::Sha256, HashKind::Sha512_256],
        )
        .unwrap();
        let text = f.to_text();
        assert!(text.starts_with(&(apache + "\n# keep me\nbob:atlanta.com:")));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("#sip-auth:")).count(),
            2
        );
        let f2 = HtdigestFile::parse(&text).unwrap();
        assert_eq!(f2, f);
        let store = f2.to_store();
        assert_eq!(
            store.lookup("bob", "atlanta.com", HashKind::Sha256),
            Some(Secret::Ha1(digest::ha1(
                HashKind::Sha256,
                "bob",
                "atlanta.com",
                "pw"
            )))
        );
        assert_eq!(store.lookup("alice", "atlanta.com", HashKind::Sha256), None);
        let users = f2.users();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].hashes.len(), 3);

        // Replacing keeps the position and the count.
        let mut f3 = f2.clone();
        f3.set_password("alice", "atlanta.com", "new", &[]).unwrap();
        assert_eq!(f3.users()[0].user, "alice");
        assert_eq!(f3.users().len(), 2);
        assert!(f3.remove("bob", "atlanta.com"));
        assert!(!f3.remove("bob", "atlanta.com"));
        assert!(!f3.to_text().contains("#sip-auth"));
    }

    #[test]
    fn stale_extension_ignored_after_htdigest_password_change() {
        // Apache's htdigest rewrites only the MD5 line, keeping the comment lines.
        let text = alloc::format!(
            "bob:r:{}\n#sip-auth:SHA-256:bob:r:{}:{}\n",
            digest::ha1(HashKind::Md5, "bob", "r", "new"),
            digest::ha1(HashKind::Sha256, "bob", "r", "old"),
            digest::ha1(HashKind::Md5, "bob", "r", "old"),
        );
        let f = HtdigestFile::parse(&text).unwrap();
        assert_eq!(f.to_store().lookup("bob", "r", HashKind::Sha256), None);
        assert_eq!(f.users()[0].hashes, [HashKind::Md5]);
        assert!(!f.to_text().contains("#sip-auth"));
    }

    #[test]
    fn malformed_lines_have_numbers() {
        let ok = alloc::format!("a:r:{}\n", digest::ha1(HashKind::Md5, "a", "r", "p"));
        for (bad, reason) in [
            ("a:r\n", "expected user:realm:HA1"),
            ("a:r:xyz\n", "HA1 is not 32 hex digits"),
            (
                ":r:0123456789abcdef0123456789abcdef\n",
                "empty user or realm",
            ),
            (
                "#sip-auth:MD5:a:r:x:y\n",
                "unknown algorithm in #sip-auth line",
            ),
        ] {
            let e = HtdigestFile::parse(&(ok.clone() + "\n" + bad)).unwrap_err();
            assert_eq!((e.line, e.reason), (3, reason));
        }
        assert!(
            HtdigestFile::default()
                .set_password("a:b", "r", "p", &[])
                .is_err()
        );
    }
}
