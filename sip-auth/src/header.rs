//! Parsing and writing of `Authorization` / `WWW-Authenticate` Digest header values
//! (RFC 3261 §25.1 `credentials` / `challenge`, RFC 7616 §3.3-3.4).
//!
//! The parser takes the header *value* (after `Authorization:`), borrows from it where it can
//! (quoted strings containing `\` escapes are unescaped into an owned string), matches scheme
//! and parameter names case-insensitively, rejects duplicates, and never panics.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::algorithm::Algorithm;
use crate::error::ParseError;

/// Maximum number of parameters accepted in one header value (bounds the work per header).
pub const MAX_PARAMS: usize = 32;

/// Maximum length of a header value accepted by the parser.
pub const MAX_HEADER_LEN: usize = 8192;

/// One `name=value` parameter; the value is unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a str,
    /// Value, without quotes, escapes resolved.
    pub value: Cow<'a, str>,
    /// Whether the value was a quoted-string.
    pub quoted: bool,
}

/// A parsed `Digest` header value: the parameters after the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestParams<'a> {
    params: Vec<Param<'a>>,
}

impl<'a> DigestParams<'a> {
    /// Parse a header value `Digest name=value, ...` from bytes (must be UTF-8).
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        if value.len() > MAX_HEADER_LEN {
            return Err(ParseError::TooLong);
        }
        let s = core::str::from_utf8(value).map_err(|e| ParseError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Self::parse_str(s)
    }

    /// Parse a header value `Digest name=value, ...`.
    pub fn parse_str(s: &'a str) -> Result<Self, ParseError> {
        let mut params: Vec<Param<'a>> = Vec::new();
        scan(s, |p, offset| {
            if params.iter().any(|q| q.name.eq_ignore_ascii_case(p.name)) {
                return Err(ParseError::Duplicate { offset });
            }
            params.push(p);
            Ok(())
        })?;
        Ok(DigestParams { params })
    }

    /// The value of parameter `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_ref())
    }

    /// All parameters in order.
    pub fn params(&self) -> &[Param<'a>] {
        &self.params
    }
}

/// Scan `Digest name=value, ...`, handing each parameter and its offset to `f`, without
/// allocating (except to unescape quoted strings).
fn scan<'a>(
    s: &'a str,
    mut f: impl FnMut(Param<'a>, usize) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    if s.len() > MAX_HEADER_LEN {
        return Err(ParseError::TooLong);
    }
    let b = s.as_bytes();
    let mut i = scheme(s)?;
    let mut count = 0usize;
    loop {
        i = skip_lws(b, i);
        if i >= b.len() {
            break;
        }
        // name
        let ns = i;
        i = skip_token(b, i);
        if ns == i {
            return Err(ParseError::Expected {
                what: "parameter name",
                offset: i,
            });
        }
        let name = &s[ns..i];
        i = skip_lws(b, i);
        if i >= b.len() || b[i] != b'=' {
            return Err(ParseError::Expected {
                what: "'='",
                offset: i,
            });
        }
        i = skip_lws(b, i + 1);
        let (value, quoted) = if i < b.len() && b[i] == b'"' {
            let (v, next) = parse_quoted(s, i)?;
            i = next;
            (v, true)
        } else {
            let vs = i;
            i = skip_token(b, i);
            if vs == i {
                return Err(ParseError::Expected {
                    what: "parameter value",
                    offset: i,
                });
            }
            (Cow::Borrowed(&s[vs..i]), false)
        };
        if count >= MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        f(
            Param {
                name,
                value,
                quoted,
            },
            ns,
        )?;
        count += 1;
        i = skip_lws(b, i);
        if i >= b.len() {
            break;
        }
        if b[i] != b',' {
            return Err(ParseError::Expected {
                what: "','",
                offset: i,
            });
        }
        i += 1;
    }
    if count == 0 {
        return Err(ParseError::Expected {
            what: "parameter",
            offset: b.len(),
        });
    }
    Ok(())
}

/// Check the `Digest` scheme and the whitespace after it; the index after the scheme.
#[inline]
fn scheme(s: &str) -> Result<usize, ParseError> {
    let b = s.as_bytes();
    // Fast path: `Digest ` at the very start, any case.
    if load8(b, 0) & 0x00ff_ffff_ffff_ffff | 0x0000_2020_2020_2020
        == word(b"digest") | (u64::from(b' ') << 48)
    {
        return Ok(6);
    }
    let mut i = skip_lws(b, 0);
    let start = i;
    i = skip_token(b, i);
    if !s[start..i].eq_ignore_ascii_case("Digest") {
        return Err(ParseError::NotDigest);
    }
    if i >= b.len() || !is_lws(b[i]) {
        return Err(ParseError::Expected {
            what: "whitespace after scheme",
            offset: i,
        });
    }
    Ok(i)
}

/// Up to 8 bytes of `b` from `i`, little-endian, zero-padded past the end.
#[inline]
fn load8(b: &[u8], i: usize) -> u64 {
    let mut t = [0u8; 8];
    if let Some(w) = b.get(i..i + 8) {
        t.copy_from_slice(w);
    } else {
        let rest = b.get(i..).unwrap_or_default();
        t[..rest.len()].copy_from_slice(rest);
    }
    u64::from_le_bytes(t)
}

/// `s` (at most 8 bytes) packed as [`load8`] would read it.
const fn word(s: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut k = 0;
    while k < s.len() {
        w |= (s[k] as u64) << (8 * k);
        k += 1;
    }
    w
}

/// Mask of the first `n` bytes of a [`load8`] word.
const fn mask(n: u32) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    }
}

/// Slots of the credentials parameters this crate reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Nc,
    Uri,
    Qop,
    Realm,
    Nonce,
    Cnonce,
    Opaque,
    Username,
    Response,
    Userhash,
    Algorithm,
}

/// Number of [`Field`]s.
const FIELDS: usize = Field::Algorithm as usize + 1;

/// The known credentials parameter whose name starts at `i` (any case), and the name's
/// length; `None` for any other name. Reads the name as one word instead of byte by byte.
#[inline]
fn known_param(b: &[u8], i: usize) -> Option<(Field, usize)> {
    // Folding with 0x20 lower-cases letters and maps no other byte onto a letter, so a
    // masked compare against a lower-case name is a case-insensitive match.
    const NC: u64 = word(b"nc");
    const NONCE: u64 = word(b"nonce");
    const URI: u64 = word(b"uri");
    const USERNAME: u64 = word(b"username");
    const USERHASH: u64 = word(b"userhash");
    const QOP: u64 = word(b"qop");
    const REALM: u64 = word(b"realm");
    const RESPONSE: u64 = word(b"response");
    const CNONCE: u64 = word(b"cnonce");
    const OPAQUE: u64 = word(b"opaque");
    const ALGORITH: u64 = word(b"algorith");
    let w = load8(b, i) | 0x2020_2020_2020_2020;
    let (w2, w3, w5, w6) = (w & mask(2), w & mask(3), w & mask(5), w & mask(6));
    let (f, len) = match w {
        _ if w2 == NC => (Field::Nc, 2),
        _ if w3 == URI => (Field::Uri, 3),
        _ if w3 == QOP => (Field::Qop, 3),
        _ if w5 == REALM => (Field::Realm, 5),
        _ if w5 == NONCE => (Field::Nonce, 5),
        _ if w6 == CNONCE => (Field::Cnonce, 6),
        _ if w6 == OPAQUE => (Field::Opaque, 6),
        USERNAME => (Field::Username, 8),
        RESPONSE => (Field::Response, 8),
        USERHASH => (Field::Userhash, 8),
        ALGORITH if b.get(i + 8).is_some_and(|&c| c | 0x20 == b'm') => (Field::Algorithm, 9),
        _ => return None,
    };
    if b.get(i + len).is_some_and(|&c| TOKEN[c as usize]) {
        return None;
    }
    Some((f, len))
}

#[inline]
fn parse_quoted(s: &str, open: usize) -> Result<(Cow<'_, str>, usize), ParseError> {
    let b = s.as_bytes();
    let start = open + 1;
    // Start of the text not yet copied into `owned` (after the last escape).
    let mut run = start;
    let mut i = start;
    let mut owned: Option<String> = None;
    loop {
        let Some(j) = quoted_stop(b, i) else {
            return Err(ParseError::UnterminatedQuote { offset: open });
        };
        let c = b[j];
        // An if-chain, common case first: a `match` here becomes a jump table whose
        // indirect branch mispredicts.
        if c == b'"' {
            let v = match owned {
                Some(mut o) => {
                    o.push_str(&s[run..j]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&s[start..j]),
            };
            return Ok((v, j + 1));
        } else if c == b'\\' {
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            let Some(&next) = b.get(j + 1) else {
                return Err(ParseError::UnterminatedQuote { offset: open });
            };
            if next > 0x7f || next == b'\r' || next == b'\n' {
                return Err(ParseError::BadEscape { offset: j });
            }
            let o = owned.get_or_insert_with(String::new);
            o.push_str(&s[run..j]);
            o.push(next as char);
            i = j + 2;
            run = i;
        } else if c == 0 || c == b'\r' || c == b'\n' {
            return Err(ParseError::BadCharacter { offset: j });
        } else {
            // Another control character below 14 (e.g. HTAB): plain text.
            i = j + 1;
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is `"`, `\` or below 14 (CR, LF, NUL and a few
/// harmless controls). Borrows only run upward from a true match, so the lowest set bit is
/// exact.
#[inline]
fn quoted_specials(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(x ^ (LO * u64::from(b'"')))
        | zero(x ^ (LO * u64::from(b'\\')))
        | (x.wrapping_sub(LO * 14) & !x & HI)
}

/// Index of the first byte at or after `i` that ends a run of plain quoted-string text: `"`,
/// `\`, or a byte below 14. Runs are tested 16 bytes at a time with a branch-free
/// reduction the compiler vectorises, and the hit located in its chunk with two SWAR words;
/// a run longer than 128 bytes goes to `memchr2` for the quote and backslash, then a
/// vectorised minimum rules out control bytes before the hit.
#[inline]
fn quoted_stop(b: &[u8], mut i: usize) -> Option<usize> {
    let limit = i + 128;
    while i < limit {
        let Some(c) = b.get(i..i + 16) else {
            return quoted_stop_tail(b, i);
        };
        let mut any = 0u8;
        for &x in c {
            any |= u8::from(x == b'"') | u8::from(x == b'\\') | u8::from(x < 14);
        }
        if any != 0 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&c[..8]);
            let m = quoted_specials(u64::from_le_bytes(w));
            if m != 0 {
                return Some(i + (m.trailing_zeros() / 8) as usize);
            }
            w.copy_from_slice(&c[8..]);
            let m = quoted_specials(u64::from_le_bytes(w));
            return Some(i + 8 + (m.trailing_zeros() / 8) as usize);
        }
        i += 16;
    }
    let rest = &b[i..];
    let hit = memchr::memchr2(b'"', b'\\', rest);
    let run = &rest[..hit.unwrap_or(rest.len())];
    if let Some(k) = first_control(run) {
        return Some(i + k);
    }
    hit.map(|k| i + k)
}

/// [`quoted_stop`] within the last 16 bytes of the input: SWAR words, then bytes.
fn quoted_stop_tail(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(w) = b.get(i..i + 8) {
        let mut t = [0u8; 8];
        t.copy_from_slice(w);
        let m = quoted_specials(u64::from_le_bytes(t));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 14)
        .map(|k| i + k)
}

/// Offset of the first byte below 14 in `b`. The common case, none, is decided by a
/// minimum the compiler vectorises.
#[inline]
fn first_control(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(16);
    let mut min = u8::MAX;
    for c in &mut chunks {
        for &x in c {
            min = min.min(x);
        }
    }
    for &x in chunks.remainder() {
        min = min.min(x);
    }
    if min >= 14 {
        return None;
    }
    b.iter().position(|&c| c < 14)
}

#[inline]
fn is_lws(c: u8) -> bool {
    // A bit test rather than a `match` (which may become a jump table).
    c <= b' ' && (1u64 << c) & (1 << b' ' | 1 << b'\t' | 1 << b'\r' | 1 << b'\n') != 0
}

#[inline]
fn skip_lws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_lws(b[i]) {
        i += 1;
    }
    i
}

/// RFC 3261 `token` characters.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// [`skip_token`] for a value of up to 15 bytes followed by a delimiter (`,`, whitespace or
/// the end), the usual `algorithm=`, `qop=`, `nc=` case: the delimiter is found in one or
/// two words and the bytes before it checked against the table without a data-dependent
/// loop.
#[inline]
fn token_end(b: &[u8], i: usize) -> usize {
    let w = load8(b, i);
    let delim = delimiters(w);
    if delim != 0 {
        let len = (delim.trailing_zeros() / 8) as usize;
        if all_token(w, len) {
            return i + len;
        }
    } else {
        let w2 = load8(b, i + 8);
        let delim = delimiters(w2);
        if delim != 0 {
            let len = (delim.trailing_zeros() / 8) as usize;
            if all_token(w, 8) & all_token(w2, len) {
                return i + 8 + len;
            }
        }
    }
    skip_token(b, i)
}

/// High bit set in each byte of `w` that is whitespace, a control byte or `,` (exact up to
/// the lowest one).
#[inline]
fn delimiters(w: u64) -> u64 {
    (w.wrapping_sub(LO * 0x21) & !w & HI) | {
        let v = w ^ (LO * u64::from(b','));
        v.wrapping_sub(LO) & !v & HI
    }
}

/// Whether the first `len` bytes of `w` are token characters.
#[inline]
fn all_token(w: u64, len: usize) -> bool {
    let mut bad = 0u8;
    for (k, &c) in w.to_le_bytes().iter().enumerate() {
        bad |= u8::from(!TOKEN[c as usize]) & u8::from(k < len);
    }
    bad == 0
}

/// Index of the first non-token byte at or after `i`.
fn skip_token(b: &[u8], i: usize) -> usize {
    i + b[i..]
        .iter()
        .position(|&c| !TOKEN[c as usize])
        .unwrap_or(b.len() - i)
}

/// `qop` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: method and digest-uri are protected.
    Auth,
    /// `auth-int`: the body is protected too.
    AuthInt,
}

impl Qop {
    /// The wire token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Parse a token, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// The fields of a `Digest` challenge (`WWW-Authenticate` / `Proxy-Authenticate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `opaque`, if present.
    pub opaque: Option<Cow<'a, str>>,
    /// `stale=true`.
    pub stale: bool,
    /// `algorithm` (MD5 when absent); `None` when present but unknown to this crate.
    pub algorithm: Option<Algorithm>,
    /// Offered qop values we understand, in the server's order (empty: RFC 2069 form).
    pub qop: Vec<Qop>,
    /// Whether `qop` was present at all (it may list only unknown values).
    pub qop_present: bool,
    /// `userhash=true` (RFC 7616 §3.4.4).
    pub userhash: bool,
}

impl<'a> Challenge<'a> {
    /// Parse a challenge header value.
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        Self::from_params(DigestParams::parse(value)?)
    }

    /// Parse a challenge header value given as `&str`.
    pub fn parse_str(value: &'a str) -> Result<Self, ParseError> {
        Self::from_params(DigestParams::parse_str(value)?)
    }

    fn from_params(p: DigestParams<'a>) -> Result<Self, ParseError> {
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut stale = false;
        let mut algorithm = Some(Algorithm::Md5);
        let mut qop = Vec::new();
        let mut qop_present = false;
        let mut userhash = false;
        for Param { name, value, .. } in p.params {
            let n = name;
            if n.eq_ignore_ascii_case("realm") {
                realm = Some(value);
            } else if n.eq_ignore_ascii_case("nonce") {
                nonce = Some(value);
            } else if n.eq_ignore_ascii_case("opaque") {
                opaque = Some(value);
            } else if n.eq_ignore_ascii_case("stale") {
                stale = value.eq_ignore_ascii_case("true");
            } else if n.eq_ignore_ascii_case("algorithm") {
                algorithm = Algorithm::parse(&value);
            } else if n.eq_ignore_ascii_case("qop") {
                qop_present = true;
                for q in value.split(',') {
                    if let Some(q) = Qop::parse(q.trim()) {
                        if !qop.contains(&q) {
                            qop.push(q);
                        }
                    }
                }
            } else if n.eq_ignore_ascii_case("userhash") {
                userhash = value.eq_ignore_ascii_case("true");
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(ParseError::Missing("realm"))?,
            nonce: nonce.ok_or(ParseError::Missing("nonce"))?,
            opaque,
            stale,
            algorithm,
            qop,
            qop_present,
            userhash,
        })
    }
}

/// The fields of `Digest` credentials (`Authorization` / `Proxy-Authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `username` (or the user hash when `userhash=true`).
    pub username: Cow<'a, str>,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `uri` (digest-uri).
    pub uri: Cow<'a, str>,
    /// `response` (hex).
    pub response: Cow<'a, str>,
    /// `algorithm` (MD5 when absent); `None` when present but unknown to this crate.
    pub algorithm: Option<Algorithm>,
    /// `cnonce`.
    pub cnonce: Option<Cow<'a, str>>,
    /// `opaque`.
    pub opaque: Option<Cow<'a, str>>,
    /// `qop`: `None` when absent (RFC 2069 form); `Some(Err(()))` when present but unknown.
    pub qop: Option<Result<Qop, ()>>,
    /// `nc` as a number (8 hex digits on the wire).
    pub nc: Option<u32>,
    /// The raw `nc` text (it is hashed as written).
    pub nc_raw: Option<Cow<'a, str>>,
    /// `userhash=true`.
    pub userhash: bool,
}

impl<'a> Credentials<'a> {
    /// Parse a credentials header value.
    #[inline]
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        if value.len() > MAX_HEADER_LEN {
            return Err(ParseError::TooLong);
        }
        let s = core::str::from_utf8(value).map_err(|e| ParseError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Self::parse_str(s)
    }

    /// Parse a credentials header value given as `&str`. A known parameter given twice is
    /// an error; unknown parameters are ignored.
    #[inline]
    pub fn parse_str(value: &'a str) -> Result<Self, ParseError> {
        if value.len() > MAX_HEADER_LEN {
            return Err(ParseError::TooLong);
        }
        let s = value;
        let b = s.as_bytes();
        let mut i = scheme(s)?;
        // One slot per known field, filled by index: no per-field dispatch in the loop.
        let mut slots: [Option<Cow<'a, str>>; FIELDS] = Default::default();
        let mut seen = 0u16;
        let mut count = 0usize;
        loop {
            i = skip_lws(b, i);
            if i >= b.len() {
                break;
            }
            let ns = i;
            let field = if let Some((f, len)) = known_param(b, i) {
                i += len;
                Some(f)
            } else {
                i = skip_token(b, i);
                None
            };
            if ns == i {
                return Err(ParseError::Expected {
                    what: "parameter name",
                    offset: i,
                });
            }
            i = skip_lws(b, i);
            if i >= b.len() || b[i] != b'=' {
                return Err(ParseError::Expected {
                    what: "'='",
                    offset: i,
                });
            }
            i = skip_lws(b, i + 1);
            let value = if i < b.len() && b[i] == b'"' {
                let (v, next) = parse_quoted(s, i)?;
                i = next;
                v
            } else {
                let vs = i;
                i = token_end(b, i);
                if vs == i {
                    return Err(ParseError::Expected {
                        what: "parameter value",
                        offset: i,
                    });
                }
                Cow::Borrowed(&s[vs..i])
            };
            if count >= MAX_PARAMS {
                return Err(ParseError::TooManyParams);
            }
            count += 1;
            if let Some(f) = field {
                let bit = 1u16 << (f as u16);
                if seen & bit != 0 {
                    return Err(ParseError::Duplicate { offset: ns });
                }
                seen |= bit;
                slots[f as usize] = Some(value);
            }
            i = skip_lws(b, i);
            if i >= b.len() {
                break;
            }
            if b[i] != b',' {
                return Err(ParseError::Expected {
                    what: "','",
                    offset: i,
                });
            }
            i += 1;
        }
        if count == 0 {
            return Err(ParseError::Expected {
                what: "parameter",
                offset: b.len(),
            });
        }
        let [
            nc_raw,
            uri,
            qop,
            realm,
            nonce,
            cnonce,
            opaque,
            username,
            response,
            userhash,
            algorithm,
        ] = slots;
        let algorithm = match &algorithm {
            None => Some(Algorithm::Md5),
            Some(v) => Algorithm::parse(v),
        };
        let qop = qop.map(|v| Qop::parse(&v).ok_or(()));
        let userhash = userhash.is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let nc = match &nc_raw {
            None => None,
            Some(v) => Some(parse_nc(v.as_bytes()).ok_or(ParseError::BadNonceCount)?),
        };
        Ok(Credentials {
            username: username.ok_or(ParseError::Missing("username"))?,
            realm: realm.ok_or(ParseError::Missing("realm"))?,
            nonce: nonce.ok_or(ParseError::Missing("nonce"))?,
            uri: uri.ok_or(ParseError::Missing("uri"))?,
            response: response.ok_or(ParseError::Missing("response"))?,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
            nc_raw,
            userhash,
        })
    }
}

/// `nc`: exactly 8 hex digits (any case).
fn parse_nc(v: &[u8]) -> Option<u32> {
    if v.len() != 8 {
        return None;
    }
    let mut n = 0u32;
    for &c in v {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u32::from(d);
    }
    Some(n)
}

/// Append `s` as a quoted-string, escaping `"` and `\`.
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        // CR/LF/NUL cannot be represented; drop them rather than emit a broken header.
        if c != '\r' && c != '\n' && c != '\0' {
            out.push(c);
        }
    }
    out.push('"');
}

/// Append `, name="value"`.
pub(crate) fn push_param_quoted(out: &mut String, name: &str, value: &str) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
    out.push_str(name);
    out.push('=');
    push_quoted(out, value);
}

/// Append `, name=token`.
pub(crate) fn push_param_token(out: &mut String, name: &str, value: &str) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
    let _ = write!(out, "{name}={value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials_with_escapes_and_case() {
        let h = br#"digest USERNAME="bo\"b", Realm = "atlanta.com" ,nonce="abc",uri="sip:a@b",response="0123456789abcdef0123456789ABCDEF",QOP=auth,nc=0000000a,cnonce="x",ALGORITHM=md5-SESS"#;
        let c = Credentials::parse(h).unwrap();
        assert_eq!(c.username, "bo\"b");
        assert!(matches!(c.username, Cow::Owned(_)));
        assert_eq!(c.realm, "atlanta.com");
        assert!(matches!(c.realm, Cow::Borrowed(_)));
        assert_eq!(c.qop, Some(Ok(Qop::Auth)));
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.algorithm, Some(Algorithm::Md5Sess));
    }

    #[test]
    fn rejects_malformed() {
        let bad: &[&[u8]] = &[
            b"",
            b"Basic abc",
            b"Digest",
            b"Digest ",
            b"Digest realm",
            b"Digest realm=",
            b"Digest realm=\"x",
            b"Digest realm=\"x\\",
            b"Digest realm=\"a\", realm=\"b\"",
            b"Digest realm=\"a\" nonce=\"b\"",
            b"Digest realm=\"a\r\n\"",
            b"Digest realm=\xff",
            b"Digestrealm=\"a\"",
        ];
        for b in bad {
            assert!(
                DigestParams::parse(b).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let c =
            br#"Digest username="a", realm="r", nonce="n", uri="u", response="r", USERNAME="b""#;
        assert_eq!(
            Credentials::parse(c),
            Err(ParseError::Duplicate { offset: 66 })
        );
        let c = br#"Digest username="a", realm="r", nonce="n", uri="u", response="r", x=1, x=2"#;
        assert!(Credentials::parse(c).is_ok());
        let c = br#"Digest username="a", realm="r", nonce="n", uri="u", response="r", nc=1"#;
        assert_eq!(Credentials::parse(c), Err(ParseError::BadNonceCount));
        let c = br#"Digest username="a", realm="r", nonce="n", uri="u""#;
        assert_eq!(Credentials::parse(c), Err(ParseError::Missing("response")));
    }

    #[test]
    fn parses_challenge() {
        let h = br#"Digest realm="biloxi.com", qop="auth,auth-int,foo", nonce="n1", opaque="o", stale=TRUE, algorithm=SHA-256"#;
        let c = Challenge::parse(h).unwrap();
        assert_eq!(c.qop, [Qop::Auth, Qop::AuthInt]);
        assert!(c.stale);
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        let c = Challenge::parse(br#"Digest realm="r", nonce="n", algorithm=FOO"#).unwrap();
        assert_eq!(c.algorithm, None);
        assert!(!c.qop_present);
    }

    #[test]
    fn quoting_round_trips() {
        let mut s = String::from("Digest ");
        push_param_quoted(&mut s, "realm", "a\"b\\c");
        push_param_token(&mut s, "algorithm", "MD5");
        let p = DigestParams::parse_str(&s).unwrap();
        assert_eq!(p.get("REALM"), Some("a\"b\\c"));
        assert_eq!(p.get("algorithm"), Some("MD5"));
    }
}
