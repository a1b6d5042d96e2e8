//! New identifiers: Via branches (RFC 3261 §8.1.1.7), tags (§19.3) and Call-IDs (§8.1.1.4),
//! drawn from a [`Random`] into a small inline buffer.

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;

use crate::random::Random;

/// The RFC 3261 branch magic cookie (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Inline capacity of an [`Ident`].
const CAP: usize = 48;

/// 64 characters that are valid in a token (branch, tag) and in a Call-ID `word`: six random
/// bits per character, no bias.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.";

/// Random characters in a branch and a Call-ID (132 bits).
const LONG: usize = 22;
/// Random characters in a tag (96 bits; RFC 3261 §19.3 asks for at least 32).
const SHORT: usize = 16;

/// A generated identifier (branch, tag, Call-ID, at most 48 characters) held inline: no
/// allocation. Dereferences to `&str`.
///
/// ```
/// use sip_parser::{Ident, Random};
/// # struct Fixed; impl Random for Fixed { fn fill(&mut self, b: &mut [u8]) { b.fill(7) } }
/// let mut rng = Fixed; // any `Random`; with `std`, `SystemRandom::new()`
/// let branch = Ident::branch(&mut rng);
/// assert!(branch.starts_with("z9hG4bK"));
/// assert_eq!(branch.len(), 7 + 22);
/// let via = format!("SIP/2.0/UDP 192.0.2.1;branch={branch}");
/// # assert!(via.ends_with(&*branch));
/// assert_eq!(Ident::tag(&mut rng).len(), 16);
/// assert_eq!(Ident::call_id(&mut rng).len(), 22);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ident {
    buf: [u8; CAP],
    len: u8,
}

impl Ident {
    pub(crate) fn empty() -> Self {
        Self {
            buf: [0; CAP],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, s: &[u8]) {
        let at = self.len as usize;
        self.buf[at..at + s.len()].copy_from_slice(s);
        self.len += s.len() as u8;
    }

    pub(crate) fn push_random(&mut self, rng: &mut (impl Random + ?Sized), n: usize) {
        let at = self.len as usize;
        let out = &mut self.buf[at..at + n];
        rng.fill(out);
        for b in out {
            *b = ALPHABET[(*b & 63) as usize];
        }
        self.len += n as u8;
    }

    /// A new branch: the magic cookie `z9hG4bK` and 22 random characters (132 bits), unique
    /// across space and time as §8.1.1.7 requires. (A proxy detecting loops uses
    /// [`LoopHash::branch`](crate::LoopHash::branch) instead.)
    pub fn branch(rng: &mut (impl Random + ?Sized)) -> Self {
        let mut id = Self::empty();
        id.push(MAGIC_COOKIE.as_bytes());
        id.push_random(rng, LONG);
        id
    }

    /// A new From / To tag: 16 random characters (96 bits; §19.3 asks for at least 32).
    pub fn tag(rng: &mut (impl Random + ?Sized)) -> Self {
        let mut id = Self::empty();
        id.push_random(rng, SHORT);
        id
    }

    /// A new Call-ID: 22 random characters (132 bits), as §8.1.1.4 recommends. Append
    /// `@host` when wanted (`format!("{id}@{host}")`).
    pub fn call_id(rng: &mut (impl Random + ?Sized)) -> Self {
        let mut id = Self::empty();
        id.push_random(rng, LONG);
        id
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII from ALPHABET, the cookie and hex digits is ever pushed.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The identifier's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// A copy as [`Bytes`] (one small allocation), for APIs that take owned values.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl Deref for Ident {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Ident {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Ident {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: a deterministic stand-in, so the tests can count.
    struct Xs(u64);
    impl Random for Xs {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
            }
        }
    }

    #[test]
    fn identifiers_have_their_grammar_and_differ() {
        let mut rng = Xs(0x9e37_79b9_7f4a_7c15);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let b = Ident::branch(&mut rng);
            assert!(b.starts_with(MAGIC_COOKIE));
            assert_eq!(b.len(), 29);
            assert!(crate::chars::all_token(b.as_bytes()));
            let t = Ident::tag(&mut rng);
            assert_eq!(t.len(), 16);
            assert!(crate::chars::all_token(t.as_bytes()));
            let c = Ident::call_id(&mut rng);
            assert!(crate::headers::check_call_id(c.as_bytes()).is_ok());
            assert!(seen.insert(b) && seen.insert(t) && seen.insert(c));
        }
    }

    #[test]
    fn every_alphabet_character_is_reachable() {
        struct All(u8);
        impl Random for All {
            fn fill(&mut self, buf: &mut [u8]) {
                for b in buf {
                    *b = self.0;
                    self.0 = self.0.wrapping_add(1);
                }
            }
        }
        let mut rng = All(0);
        let mut out = std::string::String::new();
        for _ in 0..4 {
            out += Ident::tag(&mut rng).as_str();
        }
        assert_eq!(out.as_bytes(), &ALPHABET[..]);
    }
}
