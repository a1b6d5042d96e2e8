//! Digest algorithms (RFC 7616 §3.2, RFC 8760) and the hashing they need.
//!
//! Everything here works on the stack: a digest is at most 32 bytes, its hex form at most 64.

use core::fmt;

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

/// A Digest `algorithm` value, spelled on the wire exactly as the RFCs do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `MD5` (RFC 2617; the default when no `algorithm` parameter is present).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (RFC 7616, RFC 8760).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

/// The hash function under an [`Algorithm`], which is also what an HA1 is computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    /// MD5 (16-byte digest).
    Md5,
    /// SHA-256 (32-byte digest).
    Sha256,
    /// SHA-512/256 (32-byte digest).
    Sha512_256,
}

impl HashKind {
    /// Every hash kind, weakest first.
    pub const ALL: [HashKind; 3] = [HashKind::Md5, HashKind::Sha256, HashKind::Sha512_256];

    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashKind::Md5 => 16,
            HashKind::Sha256 | HashKind::Sha512_256 => 32,
        }
    }

    /// The non-session algorithm using this hash.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            HashKind::Md5 => Algorithm::Md5,
            HashKind::Sha256 => Algorithm::Sha256,
            HashKind::Sha512_256 => Algorithm::Sha512_256,
        }
    }

    /// Hash the concatenation of `parts`, returning the lower-case hex digest.
    pub fn hex(self, parts: &[&[u8]]) -> HexDigest {
        let mut h = Hasher::new(self);
        for p in parts {
            h.update(p);
        }
        h.finish()
    }
}

impl Algorithm {
    /// Every algorithm, weakest first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// The token as written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Parse a wire token, case-insensitively. `None` for unknown algorithms.
    pub fn parse(token: &str) -> Option<Self> {
        Self::from_bytes(token.as_bytes())
    }

    /// [`Algorithm::parse`] on bytes.
    pub(crate) fn from_bytes(token: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().as_bytes().eq_ignore_ascii_case(token))
    }

    /// The hash function.
    pub const fn hash(self) -> HashKind {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashKind::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashKind::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashKind::Sha512_256,
        }
    }

    /// Whether this is a `-sess` variant (HA1 mixes in nonce and cnonce).
    pub const fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Strength rank used by the client to pick among offered challenges (higher is stronger).
    pub(crate) const fn strength(self) -> u8 {
        match self {
            Algorithm::Md5Sess => 0,
            Algorithm::Md5 => 1,
            Algorithm::Sha256Sess => 2,
            Algorithm::Sha256 => 3,
            Algorithm::Sha512_256Sess => 4,
            Algorithm::Sha512_256 => 5,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incremental hasher over one of the three hash functions.
#[derive(Clone)]
pub(crate) enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
    Sha512_256(Sha512_256),
}

impl Hasher {
    pub(crate) fn new(kind: HashKind) -> Self {
        match kind {
            HashKind::Md5 => Hasher::Md5(Md5::new()),
            HashKind::Sha256 => Hasher::Sha256(Sha256::new()),
            HashKind::Sha512_256 => Hasher::Sha512_256(Sha512_256::new()),
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512_256(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> HexDigest {
        let mut raw = [0u8; 32];
        let len = match self {
            Hasher::Md5(h) => {
                raw[..16].copy_from_slice(&h.finalize());
                16
            }
            Hasher::Sha256(h) => {
                raw.copy_from_slice(&h.finalize());
                32
            }
            Hasher::Sha512_256(h) => {
                raw.copy_from_slice(&h.finalize());
                32
            }
        };
        HexDigest::from_raw(&raw[..len])
    }
}

/// A lower-case hex digest of up to 32 bytes (64 hex characters), kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexDigest {
    buf: [u8; 64],
    len: u8,
}

impl HexDigest {
    /// Hex-encode raw digest bytes (at most 32; longer input is truncated).
    #[inline]
    pub fn from_raw(raw: &[u8]) -> Self {
        let raw = &raw[..raw.len().min(32)];
        let mut src = [0u8; 32];
        src[..raw.len()].copy_from_slice(raw);
        let len = raw.len() * 2;
        let mut buf = hex32(&src);
        // Bytes past `len` stay zero: equality and hashing see the whole buffer.
        buf[len..].fill(0);
        HexDigest {
            buf,
            len: len as u8,
        }
    }

    /// [`HexDigest::from_raw`] for a digest whose length is known at compile time (16 or
    /// 32 bytes): fixed-size copies, no calls.
    #[inline]
    pub(crate) fn from_array<const N: usize>(raw: &[u8; N]) -> Self {
        let n = N.min(32);
        let mut src = [0u8; 32];
        src[..n].copy_from_slice(&raw[..n]);
        let mut buf = hex32(&src);
        buf[2 * n..].fill(0);
        HexDigest {
            buf,
            len: (2 * n) as u8,
        }
    }

    /// Parse a hex string of 32 or 64 characters (any case), normalising to lower case.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 32 && b.len() != 64 {
            return None;
        }
        let mut buf = [0u8; 64];
        for (i, c) in b.iter().enumerate() {
            buf[i] = match c {
                b'0'..=b'9' | b'a'..=b'f' => *c,
                b'A'..=b'F' => c + 32,
                _ => return None,
            };
        }
        Some(HexDigest {
            buf,
            len: b.len() as u8,
        })
    }

    /// The hex characters as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The hex characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// Lower-case hex of 32 bytes, branch-free and table-free so that it vectorises.
#[inline]
fn hex32(src: &[u8; 32]) -> [u8; 64] {
    #[inline]
    fn digit(n: u8) -> u8 {
        n + b'0' + u8::from(n > 9) * (b'a' - b'0' - 10)
    }
    let mut hi = [0u8; 32];
    let mut lo = [0u8; 32];
    for k in 0..32 {
        hi[k] = digit(src[k] >> 4);
        lo[k] = digit(src[k] & 0x0f);
    }
    let mut out = [0u8; 64];
    for k in 0..32 {
        out[2 * k] = hi[k];
        out[2 * k + 1] = lo[k];
    }
    out
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexDigest({})", self.as_str())
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b) {
        acc |= x ^ y;
    }
    core::hint::black_box(acc) == 0
}

/// Compare a received hex response with the expected one, ignoring the case of the received
/// hex digits, in constant time.
pub(crate) fn ct_eq_hex(received: &[u8], expected: &HexDigest) -> bool {
    let exp = expected.as_bytes();
    if received.len() != exp.len() {
        return false;
    }
    // Fixed lengths (SHA-256 and MD5 hex): a loop the compiler vectorises.
    if let (Ok(r), Ok(e)) = (<&[u8; 64]>::try_from(received), <&[u8; 64]>::try_from(exp)) {
        return core::hint::black_box(fold_xor(r, e)) == 0;
    }
    if let (Ok(r), Ok(e)) = (<&[u8; 32]>::try_from(received), <&[u8; 32]>::try_from(exp)) {
        return core::hint::black_box(fold_xor(r, e)) == 0;
    }
    let mut acc = 0u8;
    for (x, y) in received.iter().zip(exp) {
        // Lower-case ASCII letters; digits are unaffected by the 0x20 bit only when the
        // received byte is a letter, so fold case only for A-F.
        let x = if x.is_ascii_uppercase() { x | 0x20 } else { *x };
        acc |= x ^ y;
    }
    core::hint::black_box(acc) == 0
}

/// OR of the differences of `received` (A-F folded to lower case) and `expected`.
#[inline]
fn fold_xor<const N: usize>(received: &[u8; N], expected: &[u8; N]) -> u8 {
    let mut acc = 0u8;
    for k in 0..N {
        let x = received[k];
        let upper = u8::from(x.wrapping_sub(b'A') < 26);
        acc |= (x | (upper << 5)) ^ expected[k];
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_round_trips() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
            assert_eq!(Algorithm::parse(&a.as_str().to_ascii_lowercase()), Some(a));
        }
        assert_eq!(Algorithm::parse("SHA-512"), None);
        assert_eq!(Algorithm::parse(""), None);
    }

    #[test]
    fn known_hashes() {
        assert_eq!(
            HashKind::Md5.hex(&[b"abc"]).as_str(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            HashKind::Sha256.hex(&[b"abc"]).as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            HashKind::Sha512_256.hex(&[b"abc"]).as_str(),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn hex_parse_and_ct_eq() {
        let d = HashKind::Md5.hex(&[b"abc"]);
        let up = d.as_str().to_ascii_uppercase();
        assert_eq!(HexDigest::parse(&up), Some(d));
        assert!(ct_eq_hex(up.as_bytes(), &d));
        assert!(!ct_eq_hex(b"900150983cd24fb0d6963f7d28e17f73", &d));
        assert!(!ct_eq_hex(b"", &d));
        assert!(HexDigest::parse("xyz").is_none());
        assert!(ct_eq(b"a", b"a") && !ct_eq(b"a", b"b") && !ct_eq(b"a", b"ab"));
    }
}
