//! Parsing and writing of `Authorization` / `WWW-Authenticate` Digest header values
//! (RFC 3261 §25.1 `credentials` / `challenge`, RFC 7616 §3.3-3.4).
//!
//! Both parsers run on one scanner that walks the value once and hands out each parameter
//! as byte ranges: names are matched case-insensitively, duplicates are rejected, quoted
//! strings are checked (escapes, control characters) without being copied, and nothing
//! panics. [`Credentials`] keeps only those ranges: it allocates nothing, except one
//! buffer for the values that held `\` escapes, unescaped once. A header in the usual form
//! (printable ASCII, `, ` between parameters, each name directly followed by `=`) takes a
//! shorter path that accepts exactly that form and leaves anything else to the general
//! scanner. [`DigestParams`] is the general form, for challenges and any parameter this
//! crate does not know.
//!
//! Tokens are the union of RFC 3261 `token` and RFC 7230 `tchar` (which adds
//! `#$&^|`), so nothing an HTTP-derived client sends is refused.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::ops::Range;

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
        Self::parse_str(utf8(value)?)
    }

    /// Parse a header value `Digest name=value, ...`.
    pub fn parse_str(s: &'a str) -> Result<Self, ParseError> {
        let mut sink = GeneralSink {
            src: s,
            params: Vec::new(),
        };
        scan(s.as_bytes(), &mut sink)?;
        Ok(DigestParams {
            params: sink.params,
        })
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

/// The header value as `str`, after the length check.
#[inline]
fn utf8(value: &[u8]) -> Result<&str, ParseError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(ParseError::TooLong);
    }
    core::str::from_utf8(value).map_err(|e| ParseError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// A byte range of a header value (which is at most [`MAX_HEADER_LEN`] bytes long).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    #[inline]
    fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= MAX_HEADER_LEN);
        Span {
            start: start as u16,
            end: end as u16,
        }
    }

    #[inline]
    fn start(self) -> usize {
        usize::from(self.start)
    }

    #[inline]
    fn range(self) -> Range<usize> {
        usize::from(self.start)..usize::from(self.end)
    }
}

/// What [`scan`] hands the parameters to.
trait Sink {
    /// What a recognised parameter name is told apart by.
    type Key: Copy;
    /// The name at `i` if it is one this sink cares about, written the usual way (followed
    /// directly by `=`), with its length, having matched every byte of it.
    fn known(b: &[u8], i: usize) -> Option<(Self::Key, usize)>;
    /// The same for a name the general path delimited.
    fn named(name: &[u8]) -> Option<Self::Key>;
    /// Take one parameter (in order; an error ends the scan).
    fn param(&mut self, p: RawParam<Self::Key>) -> Result<(), ParseError>;
}

/// The sink of [`DigestParams`]: every parameter, unescaped, names unique.
struct GeneralSink<'a> {
    src: &'a str,
    params: Vec<Param<'a>>,
}

impl Sink for GeneralSink<'_> {
    type Key = ();

    fn known(_: &[u8], _: usize) -> Option<((), usize)> {
        None
    }

    fn named(_: &[u8]) -> Option<()> {
        None
    }

    fn param(&mut self, p: RawParam<()>) -> Result<(), ParseError> {
        let name = &self.src[p.name.range()];
        if self
            .params
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(name))
        {
            return Err(ParseError::Duplicate {
                offset: p.name.start(),
            });
        }
        self.params.push(Param {
            name,
            value: text(self.src, p.value, p.escaped),
            quoted: p.quoted,
        });
        Ok(())
    }
}

/// One parameter as the scanner found it.
#[derive(Clone, Copy)]
struct RawParam<K> {
    /// The name, if the caller's classifier knew it.
    known: Option<K>,
    /// The name.
    name: Span,
    /// The value; for a quoted-string, the text between the quotes.
    value: Span,
    /// Whether the value was a quoted-string.
    quoted: bool,
    /// Whether that quoted-string holds `\` escapes (its text must be unescaped).
    escaped: bool,
}

/// The text of `span` in `s`, unescaped if `escaped`.
#[inline]
fn text(s: &str, span: Span, escaped: bool) -> Cow<'_, str> {
    let v = s.get(span.range()).unwrap_or_default();
    if escaped {
        Cow::Owned(String::from_utf8(unescape_bytes(v.as_bytes())).unwrap_or_default())
    } else {
        Cow::Borrowed(v)
    }
}

/// Resolve the quoted-pairs of a quoted-string's text (already checked by the scanner). A
/// quoted-pair escapes one ASCII byte, so UTF-8 text stays UTF-8.
#[cold]
#[inline(never)]
fn unescape_bytes(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut it = v.iter();
    while let Some(&c) = it.next() {
        if c == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Scan `Digest name=value, ...`, handing each parameter to `sink`. Allocates nothing;
/// checks the whole grammar (names and unquoted values are tokens, quoted-strings are
/// closed and hold no CR, LF or NUL, escapes are valid, parameters are separated by
/// commas), counts parameters against [`MAX_PARAMS`] and reports errors with their offset.
#[inline]
fn scan<S: Sink>(b: &[u8], sink: &mut S) -> Result<(), ParseError> {
    if b.len() > MAX_HEADER_LEN {
        return Err(ParseError::TooLong);
    }
    let mut i = scheme(b)?;
    let mut count = 0usize;
    loop {
        i = skip_lws(b, i);
        if i >= b.len() {
            break;
        }
        let ns = i;
        let known = if let Some((k, len)) = S::known(b, i) {
            i += len;
            Some(k)
        } else {
            i = token_end(b, i);
            if ns == i {
                return Err(ParseError::Expected {
                    what: "parameter name",
                    offset: i,
                });
            }
            S::named(&b[ns..i])
        };
        let name = Span::new(ns, i);
        i = skip_lws(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(ParseError::Expected {
                what: "'='",
                offset: i,
            });
        }
        i = skip_lws(b, i + 1);
        let p = if b.get(i) == Some(&b'"') {
            let (close, escaped) = quoted_end(b, i)?;
            let p = RawParam {
                known,
                name,
                value: Span::new(i + 1, close),
                quoted: true,
                escaped,
            };
            i = close + 1;
            p
        } else {
            let vs = i;
            i = token_end(b, i);
            if vs == i {
                return Err(ParseError::Expected {
                    what: "parameter value",
                    offset: i,
                });
            }
            RawParam {
                known,
                name,
                value: Span::new(vs, i),
                quoted: false,
                escaped: false,
            }
        };
        if count >= MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        count += 1;
        sink.param(p)?;
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
fn scheme(b: &[u8]) -> Result<usize, ParseError> {
    // Fast path: `Digest ` at the very start, any case.
    if load8(b, 0) & 0x00ff_ffff_ffff_ffff | 0x0000_2020_2020_2020
        == word(b"digest") | (u64::from(b' ') << 48)
    {
        return Ok(6);
    }
    let mut i = skip_lws(b, 0);
    let start = i;
    i = skip_token(b, i);
    if !b[start..i].eq_ignore_ascii_case(b"Digest") {
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
    let rest = b.get(i..).unwrap_or_default();
    if let Some(w) = rest.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    load8_tail(rest)
}

/// [`load8`] of the last few bytes.
#[cold]
fn load8_tail(rest: &[u8]) -> u64 {
    let mut t = [0u8; 8];
    let n = rest.len().min(8);
    t[..n].copy_from_slice(&rest[..n]);
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

/// `MASKS[n]`: the first `n` bytes of a [`load8`] word.
const MASKS: [u64; 9] = {
    let mut m = [u64::MAX; 9];
    let mut n = 0;
    while n < 8 {
        m[n] = (1u64 << (8 * n)) - 1;
        n += 1;
    }
    m
};

/// High bit set in exactly the bytes of `w` equal to `c`.
#[inline]
fn eq_bytes(w: u64, c: u8) -> u64 {
    let v = w ^ (LO * u64::from(c));
    !(((v & !HI) + !HI) | v) & HI
}

/// The credentials parameters this crate reads, each with a bit in [`Credentials`]' masks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Nc,
    Uri,
    Qop,
    Realm,
    Nonce,
    Cnonce,
    Opaque,
    Username,
    UsernameExt,
    Response,
    Userhash,
    Algorithm,
}

/// Number of [`Field`]s.
const FIELDS: usize = Field::Algorithm as usize + 1;

/// Slots for field ranges: a power of two, so a masked index needs no bounds check.
const SPANS: usize = FIELDS.next_power_of_two();

impl Field {
    #[inline]
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// The known credentials parameter whose name starts at `i` (any case) and its length, or
/// `None`. The name is read as one word and compared whole, not byte by byte; the byte
/// after it must not continue the token.
#[allow(
    clippy::inline_always,
    reason = "two hot loops call it; out of line it costs a call and spills per parameter (callgrind)"
)]
#[inline(always)]
fn field(b: &[u8], i: usize) -> Option<(Field, usize)> {
    // Folding with 0x20 lower-cases letters and maps no other token character onto a
    // letter, so a masked compare against a lower-case name is a case-insensitive match.
    const NC: u64 = word(b"nc");
    const URI: u64 = word(b"uri");
    const QOP: u64 = word(b"qop");
    const REALM: u64 = word(b"realm");
    const NONCE: u64 = word(b"nonce");
    const CNONCE: u64 = word(b"cnonce");
    const OPAQUE: u64 = word(b"opaque");
    const USERNAME: u64 = word(b"username");
    const RESPONSE: u64 = word(b"response");
    const USERHASH: u64 = word(b"userhash");
    const ALGORITH: u64 = word(b"algorith");
    let raw = load8(b, i);
    // A known name is followed directly by `=` (a name followed by whitespace, rare, takes
    // the general path): its length is where the first `=` of the word is, 8 for none.
    let len = (eq_bytes(raw, b'=').trailing_zeros() / 8) as usize;
    let w = raw | 0x2020_2020_2020_2020;
    let m = w & MASKS[len];
    let next = |k: usize| b.get(i + k).copied().unwrap_or(0);
    // Conditional branches, not a jump table: an if-chain in the usual order of the
    // parameters.
    let f = if len == 8 {
        // No `=` in the word: an eight-byte name or a longer one.
        let (f, len) = if w == USERNAME {
            if next(8) == b'*' {
                (Field::UsernameExt, 9)
            } else {
                (Field::Username, 8)
            }
        } else if w == RESPONSE {
            (Field::Response, 8)
        } else if w == ALGORITH && next(8) | 0x20 == b'm' {
            (Field::Algorithm, 9)
        } else if w == USERHASH {
            (Field::Userhash, 8)
        } else {
            return None;
        };
        if next(len) != b'=' {
            return None;
        }
        (f, len)
    } else if m == REALM && len == 5 {
        (Field::Realm, 5)
    } else if m == NONCE && len == 5 {
        (Field::Nonce, 5)
    } else if m == URI && len == 3 {
        (Field::Uri, 3)
    } else if m == CNONCE && len == 6 {
        (Field::Cnonce, 6)
    } else if m == QOP && len == 3 {
        (Field::Qop, 3)
    } else if m == NC && len == 2 {
        (Field::Nc, 2)
    } else if m == OPAQUE && len == 6 {
        (Field::Opaque, 6)
    } else {
        return None;
    };
    // Each branch gives its length as a constant: where the value starts then depends on
    // the (predicted) branch, not on the bytes just loaded.
    Some(f)
}

/// The sink of [`Credentials`]: where each known field's value is.
struct FieldSink {
    spans: [Span; SPANS],
    /// [`Field::bit`]s of the fields seen.
    present: u16,
    /// [`Field::bit`]s of the values holding escapes.
    escaped: u16,
}

impl FieldSink {
    fn new() -> Self {
        FieldSink {
            spans: [Span::default(); SPANS],
            present: 0,
            escaped: 0,
        }
    }
}

/// The fast path of [`Credentials::parse_str`], for a value as clients write it: parameters
/// joined by `,` or `, `, each name followed directly by `=`, quoted values free of escapes
/// and control characters. Fills `sink` and returns `true` when the value is exactly that
/// and well-formed; `false` for anything else (other whitespace, a repeated field, any
/// syntax error, too many parameters), and the general [`scan`] starts over, finding and
/// reporting any error exactly. What this path accepts, the general one accepts with the
/// same ranges; it only skips the checks and branches the usual form does not need.
#[inline]
fn fields_plain(b: &[u8], mut i: usize, sink: &mut FieldSink) -> bool {
    const USER: u16 = Field::Username.bit() | Field::UsernameExt.bit();
    const SPECIAL: u16 =
        Field::Algorithm.bit() | Field::Qop.bit() | Field::Nc.bit() | Field::Userhash.bit();
    const HEXLIKE: u16 = Field::Nonce.bit() | Field::Response.bit();
    let mut count = 0usize;
    i = skip_lws(b, i);
    loop {
        // The name, then `=` right after it.
        let (f, vs) = if let Some((f, len)) = field(b, i) {
            (Some(f), i + len + 1)
        } else {
            let e = token_end(b, i);
            if e == i || b.get(e) != Some(&b'=') {
                return false;
            }
            (None, e + 1)
        };
        // The value, quoted or a token.
        let (value, next) = if b.get(vs) == Some(&b'"') {
            // A nonce or response of the usual hex length is checked in one branch-free
            // pass; any other value is scanned for its closing quote.
            let hexlike = f.is_some_and(|f| f.bit() & HEXLIKE != 0);
            let close = if hexlike {
                fixed_close(b, vs + 1).or_else(|| quoted_stop(b, vs + 1))
            } else {
                quoted_stop(b, vs + 1)
            };
            match close {
                Some(close) if b[close] == b'"' => (Span::new(vs + 1, close), close + 1),
                _ => return false,
            }
        } else {
            // `algorithm`, `qop`, `nc` and `userhash` are read word by word later, which
            // checks them (see `Credentials::finish`); other values are checked here.
            let special = f.is_some_and(|f| f.bit() & SPECIAL != 0);
            let e = if special {
                delim_end(b, vs)
            } else {
                token_end(b, vs)
            };
            if e == vs {
                return false;
            }
            (Span::new(vs, e), e)
        };
        count += 1;
        if count > MAX_PARAMS {
            return false;
        }
        if let Some(f) = f {
            // A repeat goes to the general path, which reports it (`username` with
            // `username*` is checked once at the end).
            let bit = f.bit();
            if sink.present & bit != 0 {
                return false;
            }
            sink.present |= bit;
            sink.spans[f as usize & (SPANS - 1)] = value;
        }
        // `,` or `, ` before the next parameter, or the end.
        match b.get(next) {
            None => return sink.present & USER != USER,
            Some(&b',') => {
                // `, ` as a branch, not a select: the next name's position is then known
                // before the space is loaded (the usual form predicts it).
                i = if b.get(next + 1) == Some(&b' ') {
                    next + 2
                } else {
                    after_comma(next)
                };
                if i >= b.len() {
                    return sink.present & USER != USER;
                }
            }
            Some(_) => return false,
        }
    }
}

/// 1 if `x` ends a run of plain (ASCII) quoted-string text: `"`, `\\`, a byte below 14 or
/// a non-ASCII byte; 0 otherwise. Branch-free, so loops over it vectorise.
#[inline]
fn ends_plain_text(x: u8) -> u8 {
    u8::from(x == b'"') | u8::from(x == b'\\') | u8::from(x.wrapping_add(0x80) < 0x8e)
}

/// The closing quote of a quoted value starting at `start` that is 64 or 32 bytes long (a
/// SHA-256 or MD5 response, this crate's nonce) and plain text: checked without a branch
/// per chunk. `None` for any other value.
#[inline]
fn fixed_close(b: &[u8], start: usize) -> Option<usize> {
    fn plain<const N: usize>(v: &[u8; N]) -> bool {
        v.iter().fold(0, |bad, &x| bad | ends_plain_text(x)) == 0
    }
    let rest = b.get(start..)?;
    if rest.get(64) == Some(&b'"') && rest.first_chunk::<64>().is_some_and(plain) {
        return Some(start + 64);
    }
    if rest.get(32) == Some(&b'"') && rest.first_chunk::<32>().is_some_and(plain) {
        return Some(start + 32);
    }
    None
}

/// The position after a `,` at `comma` that no space follows: out of line, so the usual
/// `, ` stays a predicted branch.
#[cold]
#[inline(never)]
fn after_comma(comma: usize) -> usize {
    comma + 1
}

impl Sink for FieldSink {
    type Key = Field;

    #[inline]
    fn known(b: &[u8], i: usize) -> Option<(Field, usize)> {
        field(b, i)
    }

    fn named(name: &[u8]) -> Option<Field> {
        field_named(name)
    }

    #[inline]
    fn param(&mut self, p: RawParam<Field>) -> Result<(), ParseError> {
        const USER: u16 = Field::Username.bit() | Field::UsernameExt.bit();
        let Some(f) = p.known else {
            return Ok(());
        };
        let bit = f.bit();
        // `username` and `username*` exclude each other like a repeated name.
        let clash = if bit & USER != 0 { USER } else { bit };
        if self.present & clash != 0 {
            return Err(ParseError::Duplicate {
                offset: p.name.start(),
            });
        }
        self.present |= bit;
        self.escaped |= if p.escaped { bit } else { 0 };
        self.spans[f as usize] = p.value;
        Ok(())
    }
}

/// [`field`] for a name found by the general path (one followed by whitespace).
#[cold]
fn field_named(name: &[u8]) -> Option<Field> {
    const NAMES: [(&[u8], Field); FIELDS] = [
        (b"nc", Field::Nc),
        (b"uri", Field::Uri),
        (b"qop", Field::Qop),
        (b"realm", Field::Realm),
        (b"nonce", Field::Nonce),
        (b"cnonce", Field::Cnonce),
        (b"opaque", Field::Opaque),
        (b"username", Field::Username),
        (b"username*", Field::UsernameExt),
        (b"response", Field::Response),
        (b"userhash", Field::Userhash),
        (b"algorithm", Field::Algorithm),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, f)| f)
}

/// The quoted-string opening at `open`: the index of its closing quote and whether it
/// holds escapes. Checks every quoted-pair and refuses CR, LF and NUL.
#[inline]
fn quoted_end(b: &[u8], open: usize) -> Result<(usize, bool), ParseError> {
    let mut i = open + 1;
    let mut escaped = false;
    loop {
        let Some(j) = quoted_stop(b, i) else {
            return Err(ParseError::UnterminatedQuote { offset: open });
        };
        let c = b[j];
        if c == b'"' {
            return Ok((j, escaped));
        }
        i = quoted_special(b, open, j)?;
        escaped |= c == b'\\';
    }
}

/// Past the byte at `j` inside the quoted-string opening at `open`, which is `\`, a
/// control character below 14 or a non-ASCII byte (not the closing quote): the index to go
/// on from, or the error it is.
#[cold]
fn quoted_special(b: &[u8], open: usize, j: usize) -> Result<usize, ParseError> {
    let c = b[j];
    if c == b'\\' {
        // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
        let Some(&next) = b.get(j + 1) else {
            return Err(ParseError::UnterminatedQuote { offset: open });
        };
        if next > 0x7f || next == b'\r' || next == b'\n' {
            return Err(ParseError::BadEscape { offset: j });
        }
        Ok(j + 2)
    } else if c == 0 || c == b'\r' || c == b'\n' {
        Err(ParseError::BadCharacter { offset: j })
    } else {
        // Another control character below 14 (e.g. HTAB), or a non-ASCII byte (the value was
        // checked to be UTF-8 before this path): plain text.
        Ok(j + 1)
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is `"`, `\`, below 14 (CR, LF, NUL and a few
/// harmless controls) or not ASCII. Borrows only run upward from a true match, so the
/// lowest set bit is exact.
#[inline]
fn quoted_specials(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(x ^ (LO * u64::from(b'"')))
        | zero(x ^ (LO * u64::from(b'\\')))
        | (x.wrapping_sub(LO * 14) & !x & HI)
        | (x & HI)
}

/// Index of the first byte at or after `i` that ends a run of plain (ASCII) quoted-string
/// text: `"`, `\`, a byte below 14 or a non-ASCII byte. Runs are tested 16 bytes at a time with a branch-free
/// reduction the compiler vectorises, and the hit located in its chunk with two SWAR words.
#[allow(
    clippy::inline_always,
    reason = "two hot loops call it; out of line it costs a call and spills per parameter (callgrind)"
)]
#[inline(always)]
fn quoted_stop(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(c) = b.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        if c.iter().fold(0, |any, &x| any | ends_plain_text(x)) != 0 {
            let (lo, hi) = c.split_at(8);
            let m = quoted_specials(u64::from_le_bytes(lo.try_into().unwrap_or_default()));
            if m != 0 {
                return Some(i + (m.trailing_zeros() / 8) as usize);
            }
            let m = quoted_specials(u64::from_le_bytes(hi.try_into().unwrap_or_default()));
            return Some(i + 8 + (m.trailing_zeros() / 8) as usize);
        }
        i += 16;
    }
    quoted_stop_tail(b, i)
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
        .position(|&c| ends_plain_text(c) != 0)
        .map(|k| i + k)
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

/// Token characters: RFC 3261 `token` and RFC 7230 `tchar` (`#$&^|` besides).
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'!'
                    | b'%'
                    | b'*'
                    | b'_'
                    | b'+'
                    | b'`'
                    | b'\''
                    | b'~'
                    | b'#'
                    | b'$'
                    | b'&'
                    | b'^'
                    | b'|'
            );
        i += 1;
    }
    t
};

/// [`skip_token`] for a name or value of up to 15 bytes followed by a delimiter (`=`, `,`,
/// whitespace or the end), the usual case: the delimiter is found in one or
/// two words and the bytes before it checked against the table without a data-dependent
/// loop.
#[allow(
    clippy::inline_always,
    reason = "two hot loops call it; out of line it costs a call and spills per parameter (callgrind)"
)]
#[inline(always)]
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

/// Index of the first delimiter (`=`, `,`, whitespace, a control byte or the end) at or
/// after `i`, a word at a time: where an unquoted value ends if it is well-formed.
#[inline]
fn delim_end(b: &[u8], mut i: usize) -> usize {
    loop {
        let d = delimiters(load8(b, i));
        if d != 0 {
            return (i + (d.trailing_zeros() / 8) as usize).min(b.len());
        }
        i += 8;
    }
}

/// Whether every byte of `v` is a token character (byte by byte: for the rare values the
/// word compares did not recognise).
#[cold]
fn is_token(v: &[u8]) -> bool {
    !v.is_empty() && skip_token(v, 0) == v.len()
}

/// High bit set in each byte of `w` that is whitespace, a control byte, `,` or `=` (exact
/// up to the lowest one): what ends a parameter name or an unquoted value.
#[inline]
fn delimiters(w: u64) -> u64 {
    let eq = |c: u8| {
        let v = w ^ (LO * u64::from(c));
        v.wrapping_sub(LO) & !v & HI
    };
    (w.wrapping_sub(LO * 0x21) & !w & HI) | eq(b',') | eq(b'=')
}

/// Whether the first `len` bytes of `w` are token characters: letters, digits and `-` (what
/// `algorithm`, `qop`, `nc` and most values hold) in one SWAR test, the table otherwise.
#[inline]
fn all_token(w: u64, len: usize) -> bool {
    /// High bit set in the bytes of `x` (all below 0x80) within `lo..=hi`.
    #[inline]
    fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
        let ge = x + LO * u64::from(0x80 - lo);
        let gt = x + LO * u64::from(0x7f - hi);
        ge & !gt & HI
    }
    // Pad past `len` with a letter.
    let x = (w & MASKS[len]) | ((LO * u64::from(b'a')) & !MASKS[len]);
    if x & HI == 0 {
        let ok =
            in_range(x, b'0', b'9') | in_range(x | (LO * 0x20), b'a', b'z') | eq_bytes(x, b'-');
        if ok == HI {
            return true;
        }
    }
    all_token_table(w, len)
}

/// [`all_token`] byte by byte.
#[cold]
fn all_token_table(w: u64, len: usize) -> bool {
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
        Self::from_bytes(s.as_bytes())
    }

    /// [`Qop::parse`] on bytes.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        // One word compare each; only the letters are case-folded.
        const AUTH: u64 = word(b"auth");
        const AUTH_INT: u64 = word(b"auth-int");
        match b.len() {
            4 => (load8(b, 0) | 0x2020_2020 == AUTH).then_some(Qop::Auth),
            8 => (load8(b, 0) | 0x2020_2000_2020_2020 == AUTH_INT).then_some(Qop::AuthInt),
            _ => None,
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

/// Parsed `Digest` credentials (`Authorization` / `Proxy-Authorization`).
///
/// Parsing allocates nothing: the value is kept as a borrowed string plus the byte range of
/// each parameter this crate reads, and the accessors slice it. A value is copied only when
/// it must be rewritten: a quoted-string holding `\` escapes, or a `username*` ext-value.
/// Unknown parameters are checked for syntax and otherwise ignored.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The whole header value.
    src: &'a [u8],
    /// The values that held escapes, unescaped, one after another (empty, and never
    /// allocated, for a header without escapes). Their ranges point here.
    unescaped: Vec<u8>,
    /// Where each known parameter's value is (the text between the quotes if quoted).
    spans: [Span; SPANS],
    /// [`Field::bit`]s of the parameters present.
    present: u16,
    /// [`Field::bit`]s of the values that hold escapes.
    escaped: u16,
    algorithm: Option<Algorithm>,
    qop: Option<Result<Qop, ()>>,
    nc: Option<u32>,
    userhash: bool,
}

impl<'a> Credentials<'a> {
    /// Parse a credentials header value. A known parameter given twice (or both `username`
    /// and `username*`, RFC 7616 §3.4.4) is an error; unknown parameters are ignored.
    ///
    /// A value in the usual form (printable ASCII, `, ` separators) is checked byte by byte
    /// as it is parsed, so it needs no UTF-8 pass; any other value is checked to be UTF-8
    /// first.
    #[inline]
    pub fn parse(value: &'a [u8]) -> Result<Self, ParseError> {
        if value.len() > MAX_HEADER_LEN {
            return Err(ParseError::TooLong);
        }
        let mut sink = FieldSink::new();
        if scheme(value).is_ok_and(|i| fields_plain(value, i, &mut sink)) {
            if let Some(c) = Self::finish(value, &sink, true)? {
                return Ok(c);
            }
        }
        utf8(value)?;
        sink = FieldSink::new();
        scan(value, &mut sink)?;
        Self::finish(value, &sink, false)?.ok_or(ParseError::Expected {
            what: "token",
            offset: 0,
        })
    }

    /// Parse a credentials header value given as `&str`.
    #[inline]
    pub fn parse_str(value: &'a str) -> Result<Self, ParseError> {
        Self::parse(value.as_bytes())
    }

    /// The required fields, and the values read as more than text. With `check_tokens`
    /// (after [`fields_plain`], which leaves the syntax of `algorithm`, `qop`, `nc` and
    /// `userhash` to this step), a value not recognised here is checked to be a token, and
    /// `Ok(None)` sends the header to the general path if it is not.
    #[inline]
    fn finish(
        src: &'a [u8],
        sink: &FieldSink,
        check_tokens: bool,
    ) -> Result<Option<Self>, ParseError> {
        const USER: u16 = Field::Username.bit() | Field::UsernameExt.bit();
        const REQUIRED: u16 =
            Field::Realm.bit() | Field::Nonce.bit() | Field::Uri.bit() | Field::Response.bit();
        let &FieldSink {
            spans,
            present,
            escaped,
        } = sink;
        if present & USER == 0 || present & REQUIRED != REQUIRED {
            return Err(ParseError::Missing(Self::first_missing(present)));
        }
        let mut c = Credentials {
            src,
            unescaped: Vec::new(),
            spans,
            present,
            escaped,
            algorithm: Some(Algorithm::Md5),
            qop: None,
            nc: None,
            userhash: false,
        };
        if escaped != 0 {
            c.unescape_values();
        }
        let unchecked = |v: &[u8]| check_tokens && !is_token(v);
        if let Some(v) = c.bytes(Field::Algorithm) {
            let a = Algorithm::from_bytes(v);
            if a.is_none() && unchecked(v) {
                return Ok(None);
            }
            c.algorithm = a;
        }
        if let Some(v) = c.bytes(Field::Qop) {
            let q = Qop::from_bytes(v);
            if q.is_none() && unchecked(v) {
                return Ok(None);
            }
            c.qop = Some(q.ok_or(()));
        }
        if let Some(v) = c.bytes(Field::Nc) {
            let Some(n) = parse_nc(v) else {
                if unchecked(v) {
                    return Ok(None);
                }
                return Err(ParseError::BadNonceCount);
            };
            c.nc = Some(n);
        }
        if let Some(v) = c.bytes(Field::Userhash) {
            let yes = v.eq_ignore_ascii_case(b"true");
            if !yes && !v.eq_ignore_ascii_case(b"false") && unchecked(v) {
                return Ok(None);
            }
            c.userhash = yes;
        }
        if let Some(v) = c.get(Field::UsernameExt) {
            if ext_value(&v).is_none() {
                return Err(ParseError::BadExtValue {
                    offset: c.spans[Field::UsernameExt as usize].start(),
                });
            }
        }
        Ok(Some(c))
    }

    /// The first required field missing from `present`, in the order they are listed.
    #[cold]
    fn first_missing(present: u16) -> &'static str {
        const USER: u16 = Field::Username.bit() | Field::UsernameExt.bit();
        [
            (USER, "username"),
            (Field::Realm.bit(), "realm"),
            (Field::Nonce.bit(), "nonce"),
            (Field::Uri.bit(), "uri"),
            (Field::Response.bit(), "response"),
        ]
        .iter()
        .find(|(bit, _)| present & bit == 0)
        .map_or("username", |&(_, name)| name)
    }

    /// Resolve the escapes of every value that has some into [`Credentials::unescaped`],
    /// pointing their ranges there (the rare path).
    #[cold]
    fn unescape_values(&mut self) {
        for k in 0..FIELDS {
            if self.escaped & (1 << k) != 0 {
                let v = self.src.get(self.spans[k].range()).unwrap_or_default();
                let start = self.unescaped.len();
                self.unescaped.extend_from_slice(&unescape_bytes(v));
                self.spans[k] = Span::new(start, self.unescaped.len());
            }
        }
    }

    /// The bytes of `f` if present, escapes resolved.
    #[inline]
    pub(crate) fn bytes(&self, f: Field) -> Option<&[u8]> {
        (self.present & f.bit() != 0).then(|| self.value(f))
    }

    /// The bytes of `f`, escapes resolved (empty if absent).
    #[inline]
    pub(crate) fn value(&self, f: Field) -> &[u8] {
        let buf = if self.escaped & f.bit() == 0 {
            self.src
        } else {
            &self.unescaped
        };
        buf.get(self.spans[f as usize & (SPANS - 1)].range())
            .unwrap_or_default()
    }

    /// The value of `f` if present: borrowed, unless it held escapes.
    #[inline]
    fn get(&self, f: Field) -> Option<Cow<'a, str>> {
        (self.present & f.bit() != 0).then(|| self.required(f))
    }

    /// The value of a field that parsing guarantees. Every value is UTF-8 (the parser
    /// checked the header, or found it ASCII), so the fallbacks are never taken.
    #[inline]
    fn required(&self, f: Field) -> Cow<'a, str> {
        if self.escaped & f.bit() == 0 {
            let v = self
                .src
                .get(self.spans[f as usize].range())
                .unwrap_or_default();
            Cow::Borrowed(core::str::from_utf8(v).unwrap_or_default())
        } else {
            Cow::Owned(String::from_utf8_lossy(self.value(f)).into_owned())
        }
    }

    /// The user name: `username`, or the decoded `username*` ext-value (RFC 7616 §3.4.4,
    /// RFC 8187) when that form was sent. With [`Credentials::userhash`] it is the user
    /// hash, not the name.
    pub fn username(&self) -> Cow<'a, str> {
        match self.get(Field::UsernameExt) {
            None => self.required(Field::Username),
            // Checked by the parser; the fallback is never taken.
            Some(Cow::Borrowed(v)) => ext_value(v).unwrap_or(Cow::Borrowed(v)),
            Some(Cow::Owned(v)) => Cow::Owned(ext_value(&v).map_or(v.clone(), Cow::into_owned)),
        }
    }

    /// `realm`.
    pub fn realm(&self) -> Cow<'a, str> {
        self.required(Field::Realm)
    }

    /// [`Credentials::username`] and [`Credentials::realm`] together: when both are plain
    /// they are read as text with one UTF-8 check over the range holding both (usually
    /// adjacent), which costs less than two checks of short strings.
    pub(crate) fn username_and_realm(&self) -> (Cow<'a, str>, Cow<'a, str>) {
        const PLAIN: u16 = Field::Username.bit() | Field::Realm.bit() | Field::UsernameExt.bit();
        if self.escaped & PLAIN == 0 && self.present & Field::UsernameExt.bit() == 0 {
            let (u, r) = (
                self.spans[Field::Username as usize].range(),
                self.spans[Field::Realm as usize].range(),
            );
            let lo = u.start.min(r.start);
            let hi = u.end.max(r.end);
            let text = self.src.get(lo..hi).map(core::str::from_utf8);
            if let Some(Ok(t)) = text {
                if let (Some(user), Some(realm)) = (
                    t.get(u.start - lo..u.end - lo),
                    t.get(r.start - lo..r.end - lo),
                ) {
                    return (Cow::Borrowed(user), Cow::Borrowed(realm));
                }
            }
        }
        (self.username(), self.realm())
    }

    /// `nonce`.
    pub fn nonce(&self) -> Cow<'a, str> {
        self.required(Field::Nonce)
    }

    /// `uri` (the digest-uri).
    pub fn uri(&self) -> Cow<'a, str> {
        self.required(Field::Uri)
    }

    /// `response` (hex, as sent).
    pub fn response(&self) -> Cow<'a, str> {
        self.required(Field::Response)
    }

    /// `algorithm` (MD5 when absent); `None` when present but unknown to this crate.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm
    }

    /// `cnonce`, if present.
    pub fn cnonce(&self) -> Option<Cow<'a, str>> {
        self.get(Field::Cnonce)
    }

    /// `opaque`, if present.
    pub fn opaque(&self) -> Option<Cow<'a, str>> {
        self.get(Field::Opaque)
    }

    /// `qop`: `None` when absent (RFC 2069 form); `Some(Err(()))` when present but unknown.
    pub fn qop(&self) -> Option<Result<Qop, ()>> {
        self.qop
    }

    /// `nc` as a number (8 hex digits on the wire), if present.
    pub fn nc(&self) -> Option<u32> {
        self.nc
    }

    /// The `nc` text as sent (it is hashed as written), if present.
    pub fn nc_raw(&self) -> Option<Cow<'a, str>> {
        self.get(Field::Nc)
    }

    /// `userhash=true` (RFC 7616 §3.4.4): `username` is a hash of the user name and realm.
    pub fn userhash(&self) -> bool {
        self.userhash
    }
}

impl core::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username())
            .field("realm", &self.realm())
            .field("nonce", &self.nonce())
            .field("uri", &self.uri())
            .field("response", &self.response())
            .field("algorithm", &self.algorithm)
            .field("cnonce", &self.cnonce())
            .field("opaque", &self.opaque())
            .field("qop", &self.qop)
            .field("nc", &self.nc)
            .field("userhash", &self.userhash)
            .finish()
    }
}

/// `nc`: exactly 8 hex digits (any case), decoded in one word.
#[inline]
fn parse_nc(v: &[u8]) -> Option<u32> {
    let v: &[u8; 8] = v.try_into().ok()?;
    let mut bad = 0u8;
    for &c in v {
        let digit = c.wrapping_sub(b'0') < 10;
        let letter = (c | 0x20).wrapping_sub(b'a') < 6;
        bad |= u8::from(!(digit | letter));
    }
    if bad != 0 {
        return None;
    }
    let w = u64::from_le_bytes(*v);
    // '0'..'9' -> 0..9; 'a'..'f' and 'A'..'F' -> 1..6 + 9 (bit 6 marks a letter).
    let n = (w & (LO * 0x0f)) + ((w >> 6) & LO) * 9;
    // Byte 2k becomes (high nibble << 4) | low nibble; then the even bytes are packed.
    let p = ((n << 4) | (n >> 8)) & 0x00ff_00ff_00ff_00ff;
    let p = (p | (p >> 8)) & 0x0000_ffff_0000_ffff;
    let p = p | (p >> 16);
    Some(u32::from_be_bytes([
        p as u8,
        (p >> 8) as u8,
        (p >> 16) as u8,
        (p >> 24) as u8,
    ]))
}

/// Decode an RFC 8187 ext-value, `charset'[language]'value-chars`, in UTF-8 or ISO-8859-1
/// (case-insensitive); `None` for another charset, a bad `%` escape, a character outside
/// `attr-char`, or bytes that are not UTF-8. Borrowed when nothing is escaped.
fn ext_value(v: &str) -> Option<Cow<'_, str>> {
    let (charset, rest) = v.split_once('\'')?;
    let (_language, value) = rest.split_once('\'')?;
    let latin1 = if charset.eq_ignore_ascii_case("UTF-8") {
        false
    } else if charset.eq_ignore_ascii_case("ISO-8859-1") {
        true
    } else {
        return None;
    };
    let attr_char = |c: u8| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            )
    };
    let vb = value.as_bytes();
    if vb.iter().all(|&c| attr_char(c)) {
        return Some(Cow::Borrowed(value));
    }
    let mut bytes = Vec::with_capacity(vb.len());
    let mut k = 0;
    while k < vb.len() {
        let c = vb[k];
        if c == b'%' {
            let hex = vb.get(k + 1..k + 3)?;
            let digit = |h: u8| char::from(h).to_digit(16);
            bytes.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
            k += 3;
        } else if attr_char(c) {
            bytes.push(c);
            k += 1;
        } else {
            return None;
        }
    }
    if latin1 {
        Some(Cow::Owned(bytes.iter().map(|&c| char::from(c)).collect()))
    } else {
        String::from_utf8(bytes).ok().map(Cow::Owned)
    }
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
        assert_eq!(c.username(), "bo\"b");
        assert!(matches!(c.username(), Cow::Owned(_)));
        assert_eq!(c.realm(), "atlanta.com");
        assert!(matches!(c.realm(), Cow::Borrowed(_)));
        assert_eq!(c.qop(), Some(Ok(Qop::Auth)));
        assert_eq!(c.nc(), Some(10));
        assert_eq!(c.nc_raw().as_deref(), Some("0000000a"));
        assert_eq!(c.algorithm(), Some(Algorithm::Md5Sess));
        assert_eq!(c.cnonce().as_deref(), Some("x"));
        assert_eq!(c.opaque(), None);
        assert!(!c.userhash());
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
    fn non_ascii_values_are_checked_utf8() {
        let h = "Digest username=\"J\u{e4}s\u{f8}n\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        let c = Credentials::parse(h.as_bytes()).unwrap();
        assert_eq!(c.username(), "J\u{e4}s\u{f8}n");
        assert!(matches!(c.username(), Cow::Borrowed(_)));
        let bad =
            b"Digest username=\"J\xe4s\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        assert_eq!(
            Credentials::parse(bad),
            Err(ParseError::NotUtf8 { offset: 18 })
        );
        let bad = b"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", x=\"\xc3(\"";
        assert!(matches!(
            Credentials::parse(bad),
            Err(ParseError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn username_ext_value() {
        let h = "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        let c = Credentials::parse_str(h).unwrap();
        assert_eq!(c.username(), "J\u{e4}s\u{f8}n Doe");
        let h = "Digest USERNAME* = iso-8859-1'en'J%E4s%F8n, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        assert_eq!(
            Credentials::parse_str(h).unwrap().username(),
            "J\u{e4}s\u{f8}n"
        );
        let h =
            "Digest username*=UTF-8''plain, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        assert!(matches!(
            Credentials::parse_str(h).unwrap().username(),
            Cow::Borrowed("plain")
        ));
        for bad in [
            "UTF-8''%C3",     // truncated UTF-8
            "UTF-8''%G1",     // bad escape
            "UTF-8''%4",      // short escape
            "UTF-8'abc",      // one quote
            "KOI8-R''abc",    // unknown charset
            "UTF-8''a%2",     // short escape at the end
            "\"UTF-8''a b\"", // space is not an attr-char
        ] {
            let h = format!(
                "Digest username*={bad}, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\""
            );
            assert!(
                matches!(
                    Credentials::parse_str(&h),
                    Err(ParseError::BadExtValue { offset: 17 | 18 })
                ),
                "{bad}: {:?}",
                Credentials::parse_str(&h)
            );
        }
        let h = "Digest username*=UTF-8''a, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", username=\"a\"";
        assert_eq!(
            Credentials::parse_str(h),
            Err(ParseError::Duplicate { offset: 72 })
        );
        let h = "Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        assert_eq!(
            Credentials::parse_str(h),
            Err(ParseError::Missing("username"))
        );
    }

    #[test]
    fn names_with_whitespace_and_http_token_characters() {
        let h = "Digest username = \"a\" ,\trealm\t=\t\"r\", nonce=\"n\", uri=\"u\", response=\"x\", x#$&^|=a#$&^|, algorithm = SHA-256 , qop = auth-int, nc = 0000000F, cnonce = c";
        let c = Credentials::parse_str(h).unwrap();
        assert_eq!(c.username(), "a");
        assert_eq!(c.realm(), "r");
        assert_eq!(c.algorithm(), Some(Algorithm::Sha256));
        assert_eq!(c.qop(), Some(Ok(Qop::AuthInt)));
        assert_eq!(c.nc(), Some(15));
        assert_eq!(c.cnonce().as_deref(), Some("c"));
        for bad in ["nc=0000000g", "nc=000000001", "nc=\"0000001\""] {
            let h = format!(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", {bad}"
            );
            assert_eq!(
                Credentials::parse_str(&h),
                Err(ParseError::BadNonceCount),
                "{bad}"
            );
        }
        assert_eq!(parse_nc(b"DeadBeef"), Some(0xdead_beef));
        assert_eq!(parse_nc(b"0123abcd"), Some(0x0123_abcd));
        assert_eq!(parse_nc(b"0123abc:"), None);
        assert_eq!(Qop::parse("AUTH"), Some(Qop::Auth));
        assert_eq!(Qop::parse("Auth-Int"), Some(Qop::AuthInt));
        assert_eq!(Qop::parse("auth\rint"), None);
        assert_eq!(Qop::parse("auth-in"), None);
        // Unknown values keep their syntax checks.
        for bad in ["algorithm=MD5\"x", "qop=au(th", "x=a/b", "x@=1"] {
            let h = format!(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", {bad}"
            );
            assert!(Credentials::parse_str(&h).is_err(), "{bad}");
        }
    }

    /// The usual form goes through `fields_plain` (a regression there would still parse,
    /// through the general path, only slower); anything else does not.
    #[test]
    fn usual_form_takes_the_fast_path() {
        for h in [
            &br#"Digest username="alice", realm="atlanta.com", nonce="01000000006553f10000000001000001675ecf5555f0634f721ec5c64ca6e1a0", uri="sip:atlanta.com", response="2069d5e6987505c91ab0c90b3e0b47551387a62957ce1aaf4d446862f250e58d", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="0a4f113b""#[..],
            br#"Digest username="a",realm="b",nonce="c",uri="d",response="e",x-y=z,opaque="""#,
            br#"digest USERNAME="a", Realm="b", NONCE="c", URI="d", RESPONSE="e""#,
        ] {
            let mut sink = FieldSink::new();
            let i = scheme(h).unwrap();
            assert!(fields_plain(h, i, &mut sink), "{}", String::from_utf8_lossy(h));
        }
        for h in [
            &br#"Digest username="a\"b", realm="b", nonce="c", uri="d", response="e""#[..],
            br#"Digest username="a",  realm="b", nonce="c", uri="d", response="e""#,
            br#"Digest username = "a", realm="b", nonce="c", uri="d", response="e""#,
            br#"Digest username="a", realm="b", nonce="c", uri="d", response="e", x="y"z""#,
            b"Digest username=\"a\tb\", realm=\"b\", nonce=\"c\", uri=\"d\", response=\"e\"",
            "Digest username=\"J\u{e4}s\", realm=\"b\", nonce=\"c\", uri=\"d\", response=\"e\""
                .as_bytes(),
            br#"Digest username="a", realm="b", realm="c", nonce="c", uri="d", response="e""#,
        ] {
            let mut sink = FieldSink::new();
            let i = scheme(h).unwrap();
            assert!(
                !fields_plain(h, i, &mut sink),
                "{}",
                String::from_utf8_lossy(h)
            );
        }
    }

    /// `fixed_close` never disagrees with the scan: when it finds a closing quote, it is the
    /// first stop the scan finds too.
    #[test]
    fn fixed_length_close_agrees_with_the_scan() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut pick = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let alphabet = b"0123456789abcdef\"\\\t\x80 ,=";
        let mut found = 0;
        for _ in 0..20_000 {
            let len = match pick(3) {
                0 => 64,
                1 => 32,
                _ => pick(80) as usize,
            };
            let mut v = vec![b'"'];
            for _ in 0..len {
                // Mostly hex, sometimes a byte that stops the scan.
                let c = if pick(60) == 0 {
                    alphabet[16 + pick((alphabet.len() - 16) as u64) as usize]
                } else {
                    alphabet[pick(16) as usize]
                };
                v.push(c);
            }
            if pick(2) == 0 {
                v.push(b'"');
            }
            v.extend_from_slice(b", x=1");
            if let Some(c) = fixed_close(&v, 1) {
                assert_eq!(
                    Some(c),
                    quoted_stop(&v, 1),
                    "{:?}",
                    String::from_utf8_lossy(&v)
                );
                assert_eq!(v[c], b'"');
                assert!(c == 33 || c == 65);
                found += 1;
            }
        }
        assert!(found > 1_000, "{found}");
        let mut v = vec![b'"'];
        v.extend_from_slice(&[b'a'; 64]);
        v.push(b'"');
        assert_eq!(fixed_close(&v, 1), Some(65));
        v[10] = b'"';
        assert_eq!(fixed_close(&v, 1), None);
        assert_eq!(fixed_close(b"\"abc\"", 1), None);
    }

    #[test]
    fn names_match_exactly() {
        // Every known name in any case, followed by `=`, is recognised with its length.
        for (name, f) in [
            ("nc", Field::Nc),
            ("uri", Field::Uri),
            ("qop", Field::Qop),
            ("realm", Field::Realm),
            ("nonce", Field::Nonce),
            ("cnonce", Field::Cnonce),
            ("opaque", Field::Opaque),
            ("username", Field::Username),
            ("username*", Field::UsernameExt),
            ("response", Field::Response),
            ("userhash", Field::Userhash),
            ("algorithm", Field::Algorithm),
        ] {
            for n in [name.to_string(), name.to_uppercase()] {
                let h = format!("{n}=x");
                assert!(field(h.as_bytes(), 0) == Some((f, name.len())), "{h}");
                assert!(field_named(n.as_bytes()) == Some(f), "{n}");
                // Not followed by `=`, or longer, or with a byte that only folds onto a
                // letter or onto `=`: not a match.
                for bad in [
                    format!("{n} =x"),
                    format!("{n}x=x"),
                    format!("{n}\x1dx"),
                    n.clone(),
                    format!("{}@{}", &n[..1], &n[1..]),
                ] {
                    assert!(field(bad.as_bytes(), 0).is_none(), "{bad:?}");
                }
            }
        }
        assert!(field(b"usernamE*=", 0) == Some((Field::UsernameExt, 9)));
        assert!(field(b"user=x", 0).is_none());
        assert!(field(b"", 0).is_none());
        // A control byte that folds onto `=` does not pass for one.
        let h = b"Digest username=\"a\", realm\x1d\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        assert!(Credentials::parse(h).is_err());
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
