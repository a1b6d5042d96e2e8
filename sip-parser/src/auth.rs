//! `Authorization` / `Proxy-Authorization` credentials and `WWW-Authenticate` /
//! `Proxy-Authenticate` challenges: an auth scheme followed by comma-separated auth-params
//! (RFC 3261 §25.1 `credentials` / `challenge`, RFC 7235 §2.1, RFC 7616 §3.3-3.4) or by one
//! `token68` (RFC 7235 §2.1, e.g. `Bearer` of RFC 8898). This is the workspace's one
//! auth-param scanner: `sip-auth` reads its typed Digest views (`Credentials`, `Challenge`)
//! through [`AuthScanner`], so what a proxy's parser accepts is exactly what its verifier
//! checks.
//!
//! The grammar and the decisions taken where RFC 3261 and HTTP differ are documented on
//! [`AuthScanner`].

mod plain;

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::chars::{as_str, is_ws, skip_ws};
use crate::error::{FieldError, FieldErrorKind, PResult, syntax};

/// [`CLASS`] bit of RFC 7230 §3.2.6 `tchar`: the RFC 3261 `token` characters plus `#$&^|`.
const TCHAR: u8 = 1;
/// [`CLASS`] bit of RFC 7235 §2.1 `token68` characters (the `=` padding apart).
const TOKEN68: u8 = 2;

/// The character classes of the auth grammar, by byte.
static CLASS: [u8; 256] = {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let alnum = c.is_ascii_alphanumeric();
        if alnum
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
        {
            t[i] |= TCHAR;
        }
        if alnum || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/') {
            t[i] |= TOKEN68;
        }
        i += 1;
    }
    t
};

/// Index of the first byte at or after `i` not of class `class`.
#[inline]
fn run_end(s: &[u8], mut i: usize, class: u8) -> usize {
    while i < s.len() && CLASS[s[i] as usize] & class != 0 {
        i += 1;
    }
    i
}

/// Index just past the `tchar` run starting at `i`.
#[inline]
fn tchar_end(s: &[u8], i: usize) -> usize {
    run_end(s, i, TCHAR)
}

/// A credentials or challenge value: scheme plus auth-params (or a token68), checked once by
/// [`AuthValue::parse`] so that iterating it cannot fail.
///
/// ```
/// let a = sip_parser::AuthValue::parse(
///     br#"Digest username="bob", realm="example.com", nonce="ea9c8e88", uri="sip:example.com", response="bfa8", algorithm=MD5, nc=00000001, qop=auth"#,
/// ).unwrap();
/// assert_eq!(a.scheme, "Digest");
/// assert_eq!(a.param("USERNAME"), Some("bob"));
/// assert_eq!(a.param("nc"), Some("00000001"));
/// assert_eq!(a.params().count(), 8);
/// let b = sip_parser::AuthValue::parse(b"Bearer mF_9.B5f-4.1JqM==").unwrap();
/// assert_eq!((b.token68(), b.params().count()), (Some("mF_9.B5f-4.1JqM=="), 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthValue<'a> {
    /// Scheme as written (`Digest`).
    pub scheme: &'a str,
    src: &'a [u8],
    /// Where the parameters (or the token68) start.
    rest: usize,
    token68: Option<&'a str>,
}

/// One auth-param, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthParam<'a> {
    /// Parameter name (a `tchar` token, ASCII, compared case-insensitively).
    pub name: &'a [u8],
    /// The value: a token, or the text between the quotes of a quoted-string with its
    /// escapes and folds as written (see [`AuthParam::decoded`]).
    pub value: &'a [u8],
    /// True when the value was a quoted-string.
    pub quoted: bool,
    /// True when that quoted-string holds `\` escapes or folds, so that [`AuthParam::value`]
    /// differs from [`AuthParam::decoded`].
    pub escaped: bool,
    /// Byte offset of the name in the scanned value.
    pub name_offset: usize,
    /// Byte offset of the value in the scanned value (after the opening quote).
    pub value_offset: usize,
}

impl<'a> AuthParam<'a> {
    /// Whether this parameter is called `name` (case-insensitive).
    #[inline]
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value with escapes resolved and each fold read as one SP (RFC 3261 §7.3.1):
    /// borrowed unless [`AuthParam::escaped`].
    #[inline]
    pub fn decoded(&self) -> Cow<'a, [u8]> {
        if self.escaped {
            Cow::Owned(decode(self.value))
        } else {
            Cow::Borrowed(self.value)
        }
    }
}

/// [`AuthParam::decoded`] of a value with escapes or folds.
#[cold]
fn decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                out.push(v[i + 1]);
                i += 2;
            }
            b'\r' => {
                // A fold (the scanner let no other CR through): CRLF and the white space
                // after it become one SP.
                out.push(b' ');
                i += 2;
                while i < v.len() && matches!(v[i], b' ' | b'\t') {
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

impl<'a> AuthValue<'a> {
    /// Parses `scheme [1*LWS (token68 / auth-param *(COMMA auth-param))]`, checking every
    /// parameter. Offsets in the error are relative to `s`.
    pub fn parse(s: &'a [u8]) -> Result<Self, FieldError> {
        parse_auth(s).map_err(|(offset, kind)| FieldError {
            header: "Authorization",
            offset,
            kind,
        })
    }

    /// Iterates the parameters in order (none for a token68 value).
    pub fn params(&self) -> impl Iterator<Item = AuthParam<'a>> + 'a {
        let mut sc = self.scanner();
        // Checked by `parse`: no error can come, and the first ends the iteration.
        core::iter::from_fn(move || sc.next_param().ok()?)
    }

    /// The same parameters as a scanner (each `Ok`): for code written against
    /// [`AuthScanner`], so a value from [`Message`](crate::Message) and raw bytes are read
    /// alike.
    pub fn scanner(&self) -> AuthScanner<'a> {
        AuthScanner {
            src: self.src,
            pos: if self.token68.is_some() {
                self.src.len()
            } else {
                self.rest
            },
            scheme: self.scheme.as_bytes(),
            token68: self.token68,
            failed: false,
        }
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<AuthParam<'a>> {
        self.params().find(|p| p.is(name))
    }

    /// The value of a parameter (case-insensitive name) as text: quotes removed, escapes
    /// kept (see [`AuthParam::decoded`]).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(|p| as_str(p.value))
    }

    /// The token68 after the scheme (`Bearer <token>`, RFC 7235 §2.1), when the value is one.
    pub fn token68(&self) -> Option<&'a str> {
        self.token68
    }

    /// The whole value as given to the parser (the base of the parameters' offsets).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.src
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

/// The auth-param scanner: reads the scheme when made, then one parameter per
/// [`next`](Iterator::next), checking the grammar as it goes and stopping after the first
/// error. [`AuthValue::parse`] runs it to the end; a reader that keeps each parameter as it
/// comes (`sip-auth`'s `Credentials`) drives it directly and reads the value once.
///
/// ```
/// use sip_parser::AuthScanner;
/// let mut sc = AuthScanner::new(br#"Digest realm="a.com", qop="auth,auth-int", x=y/z"#).unwrap();
/// assert_eq!(sc.scheme(), "Digest");
/// let p = sc.next().unwrap().unwrap();
/// assert_eq!((p.name, p.value, p.quoted, p.name_offset, p.value_offset), (&b"realm"[..], &b"a.com"[..], true, 7, 14));
/// assert_eq!(sc.next().unwrap().unwrap().value, b"auth,auth-int");
/// assert_eq!(sc.next().unwrap().unwrap_err().offset, 46); // unquoted `/`
/// assert!(sc.next().is_none());
/// ```
///
/// # Grammar
///
/// ```text
/// value       = [LWS] auth-scheme [ 1*LWS ( token68 / auth-params ) ] [LWS]
/// auth-params = auth-param *( LWS* "," LWS* [ auth-param ] )     ; empty elements ignored
/// auth-param  = tchar-token LWS* "=" LWS* ( tchar-token / quoted-string )
/// ```
///
/// Where RFC 3261 and the HTTP grammar it was taken from differ, these are the decisions:
///
/// | case | decision | why |
/// |------|----------|-----|
/// | `#` `$` `&` `^` `\|` in a scheme, name or unquoted value | accepted | tokens are RFC 7230 §3.2.6 `tchar`, a superset of RFC 3261 `token`: HTTP-derived Digest stacks send them, and RFC 7616 takes its `token` from RFC 7230 |
/// | unquoted `/` `=` `:` `@` `;` in a value (`uri=sip:a@b`) | refused, with the offset | RFC 3261 §25.1 and RFC 7235 §2.1: an unquoted value is a token; `digest-uri` is quoted (`LDQUOT … RDQUOT`). Clients get quoting wrong the other way (`qop="auth"`, `cnonce=abc`), which is accepted: RFC 7235 §2.1 `auth-param` allows either form, and RFC 7235 §2.2 / RFC 7616 §3.4 ask recipients to read both where senders must use one |
/// | a fold (CRLF followed by SP/HTAB) inside a quoted-string | accepted, read as one SP | RFC 3261 §25.1 `qdtext = LWS / …` with `LWS = [*WSP CRLF] 1*WSP`; §7.3.1 reads a fold as a single SP. A message's header values keep their folds, so this is where one can appear |
/// | a bare CR or LF, or another control byte but HTAB, inside a quoted-string | refused, with the offset | not `qdtext`; a bare CR/LF would be a header injection |
/// | non-ASCII bytes inside a quoted-string | accepted when UTF-8 | RFC 3261 `UTF8-NONASCII`; the whole value is then UTF-8 |
/// | `\` escapes (`quoted-pair`) | kept in [`AuthParam::value`], resolved by [`AuthParam::decoded`] | RFC 3261 §25.1 `quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)`; `\` before CR, LF or a non-ASCII byte is refused |
/// | empty list elements (`a=1,,b=2`, a trailing `,`) | ignored | RFC 7230 §7 asks recipients to accept them |
/// | a repeated parameter name | left to the reader | RFC 7235 §2.1 forbids it; the typed views refuse a repeat of a parameter they read |
/// | `scheme token68` (`Bearer mF_9.B5f-4.1JqM`) | accepted, as [`AuthValue::token68`] | RFC 7235 §2.1; the rest of a value is a token68 when it is nothing else |
///
/// Every parameter keeps the byte offsets of its name and value, relative to the value given
/// to the parser (the accessors of [`Message`](crate::Message) report errors as message
/// offsets). Scanning allocates nothing; [`AuthParam::decoded`] copies a value only when it
/// holds escapes or folds.
#[derive(Debug, Clone)]
pub struct AuthScanner<'a> {
    src: &'a [u8],
    pos: usize,
    scheme: &'a [u8],
    token68: Option<&'a str>,
    failed: bool,
}

impl<'a> AuthScanner<'a> {
    /// Reads the scheme of `value` (and the token68, if that is what follows). Offsets, here
    /// and in the items, are relative to `value`.
    pub fn new(value: &'a [u8]) -> Result<Self, FieldError> {
        Self::start(value).map_err(|(offset, kind)| FieldError {
            header: "Authorization",
            offset,
            kind,
        })
    }

    fn start(s: &'a [u8]) -> PResult<Self> {
        let i = skip_ws(s, 0);
        let e = tchar_end(s, i);
        if e == i {
            return if i >= s.len() {
                Err((i, FieldErrorKind::Empty))
            } else {
                syntax(i, "auth scheme")
            };
        }
        if e < s.len() && !is_ws(s[e]) {
            return syntax(e, "auth scheme (white space expected after it)");
        }
        let rest = skip_ws(s, e);
        Ok(AuthScanner {
            src: s,
            pos: rest,
            scheme: &s[i..e],
            token68: token68(s, rest),
            failed: false,
        })
    }

    /// The scheme as written.
    pub fn scheme(&self) -> &'a str {
        as_str(self.scheme).unwrap_or_default()
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// The token68 after the scheme, when the value is one (then there are no parameters).
    pub fn token68(&self) -> Option<&'a str> {
        self.token68
    }

    /// The next parameter, `Ok(None)` at the end.
    #[inline]
    fn next_param(&mut self) -> PResult<Option<AuthParam<'a>>> {
        let s = self.src;
        if self.token68.is_some() {
            return Ok(None);
        }
        let mut i = self.pos;
        if i >= s.len() {
            return Ok(None);
        }
        let name_offset = i;
        let ne = tchar_end(s, i);
        if ne == i {
            return syntax(i, "auth-param name");
        }
        i = skip_ws(s, ne);
        if s.get(i) != Some(&b'=') {
            return syntax(i, "auth-param ('=' expected)");
        }
        i = skip_ws(s, i + 1);
        let (value_offset, value_end, quoted, escaped, mut j) = if s.get(i) == Some(&b'"') {
            let (close, escaped) = quoted_end(s, i)?;
            (i + 1, close, true, escaped, close + 1)
        } else {
            let e = tchar_end(s, i);
            if e == i {
                return syntax(i, "auth-param value (token or quoted-string)");
            }
            (i, e, false, false, e)
        };
        j = skip_ws(s, j);
        if j < s.len() {
            if s[j] != b',' {
                return syntax(j, "auth-param (',' expected)");
            }
            // Empty list elements are ignored (RFC 7230 §7).
            while j < s.len() && (s[j] == b',' || is_ws(s[j])) {
                j += 1;
            }
        }
        self.pos = j;
        Ok(Some(AuthParam {
            name: &s[name_offset..ne],
            value: &s[value_offset..value_end],
            quoted,
            escaped,
            name_offset,
            value_offset,
        }))
    }
}

impl<'a> Iterator for AuthScanner<'a> {
    type Item = Result<AuthParam<'a>, FieldError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_param() {
            Ok(p) => p.map(Ok),
            Err((offset, kind)) => {
                self.failed = true;
                Some(Err(FieldError {
                    header: "Authorization",
                    offset,
                    kind,
                }))
            }
        }
    }
}

/// The token68 starting at `i` when it is all that is left of `s` (but white space).
fn token68(s: &[u8], i: usize) -> Option<&str> {
    let mut e = run_end(s, i, TOKEN68);
    if e == i {
        return None;
    }
    while e < s.len() && s[e] == b'=' {
        e += 1;
    }
    (skip_ws(s, e) == s.len())
        .then(|| as_str(&s[i..e]))
        .flatten()
}

/// Given `s[open] == b'"'`, the index of the closing quote and whether the text holds
/// escapes or folds. Checks `qdtext` / `quoted-pair` of RFC 3261 §25.1 and that non-ASCII
/// text is UTF-8.
fn quoted_end(s: &[u8], open: usize) -> PResult<(usize, bool)> {
    let mut j = open + 1;
    let mut escaped = false;
    let mut non_ascii = false;
    loop {
        j = plain::plain_end(s, j);
        let Some(&c) = s.get(j) else {
            return syntax(open, "quoted-string (not closed)");
        };
        match c {
            b'"' => break,
            b'\\' => match s.get(j + 1) {
                Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => {
                    escaped = true;
                    j += 2;
                }
                Some(_) => return syntax(j, "quoted-pair"),
                None => return syntax(open, "quoted-string (not closed)"),
            },
            b'\r' if s.get(j + 1) == Some(&b'\n') && matches!(s.get(j + 2), Some(b' ' | b'\t')) => {
                escaped = true;
                j += 3;
            }
            b'\r' | b'\n' => return syntax(j, "quoted-string (CR or LF outside a fold)"),
            b'\t' => j += 1,
            0x80.. => {
                non_ascii = true;
                j += 1;
            }
            _ => return syntax(j, "quoted-string (control character)"),
        }
    }
    if non_ascii {
        if let Err(e) = core::str::from_utf8(&s[open + 1..j]) {
            return syntax(open + 1 + e.valid_up_to(), "quoted-string (not UTF-8)");
        }
    }
    Ok((j, escaped))
}

/// Parses and checks a whole value (the accessors of [`Message`](crate::Message) map the
/// offset to the message).
pub(crate) fn parse_auth(s: &[u8]) -> PResult<AuthValue<'_>> {
    let mut sc = AuthScanner::start(s)?;
    let rest = sc.pos;
    while sc.next_param()?.is_some() {}
    Ok(AuthValue {
        scheme: sc.scheme(),
        src: sc.src,
        rest,
        token68: sc.token68,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn params(s: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
        parse_auth(s)
            .unwrap()
            .params()
            .map(|p| (p.name, p.decoded().into_owned()))
            .collect()
    }

    fn err(s: &[u8]) -> (usize, FieldErrorKind) {
        parse_auth(s).unwrap_err()
    }

    #[test]
    fn parses_and_rejects() {
        let a = parse_auth(b"NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!(a.param("opaque-data"), Some("here"));
        let a = parse_auth(b"Digest realm=\"a,b\" ,\r\n nonce=\"x\\\"y\", stale=TRUE").unwrap();
        assert_eq!(a.param("realm"), Some("a,b"));
        assert_eq!(a.param("nonce"), Some("x\\\"y"));
        assert_eq!(a.get("nonce").unwrap().decoded(), &b"x\"y"[..]);
        assert_eq!(a.param("stale"), Some("TRUE"));
        // A lone word after the scheme is a token68 (RFC 7235 §2.1), not a parameter.
        assert_eq!(
            parse_auth(b"Digest realm").unwrap().token68(),
            Some("realm")
        );
        assert!(parse_auth(b"Digest realm=\"x").is_err());
        assert!(parse_auth(b"Digest a=b c=d").is_err());
        assert!(parse_auth(b"").is_err());
        assert!(parse_auth(b"Digestrealm=\"a\"").is_err());
        assert_eq!(parse_auth(b"Basic").unwrap().params().count(), 0);
    }

    /// RFC 7230 §3.2.6 `tchar` (`#$&^|` besides the RFC 3261 token characters) in the
    /// scheme, names and unquoted values.
    #[test]
    fn http_token_characters() {
        let v = params(b"X#$&^|-Scheme a#$&^|=b#$&^|, c=d");
        assert_eq!(
            v,
            [
                (&b"a#$&^|"[..], b"b#$&^|".to_vec()),
                (&b"c"[..], b"d".to_vec())
            ]
        );
        assert_eq!(parse_auth(b"X#$&^| a=b").unwrap().scheme, "X#$&^|");
        // Still not token characters: separators of RFC 7230 §3.2.6.
        for bad in [
            &b"Digest a@=1"[..],
            b"Digest a=b@c",
            b"Digest a=(b)",
            b"Digest a=b{",
        ] {
            assert!(parse_auth(bad).is_err(), "{:?}", core::str::from_utf8(bad));
        }
    }

    /// RFC 3261 §25.1 / RFC 7235 §2.1: an unquoted value is a token; `/ = : @ ;` need quotes.
    #[test]
    fn unquoted_uri_characters_need_quotes() {
        assert_eq!(err(b"Digest uri=sip:a@b.com, x=1").0, 14);
        assert_eq!(err(b"Digest opaque=abc/def").0, 17);
        assert_eq!(err(b"Digest nonce=abc==").0, 16);
        assert_eq!(err(b"Digest uri=sip:a;lr").0, 14);
        let v = params(br#"Digest uri="sip:a@b.com;lr", nonce="abc==", x="a/b""#);
        assert_eq!(v[0].1, b"sip:a@b.com;lr");
        assert_eq!(v[1].1, b"abc==");
        // Either form for any parameter (RFC 7235 §2.1 auth-param): quoted tokens, unquoted
        // cnonce.
        let v = params(br#"Digest qop="auth", algorithm="MD5", cnonce=n5uldz1r"#);
        assert_eq!(v[0].1, b"auth");
        assert_eq!(v[2].1, b"n5uldz1r");
    }

    /// RFC 3261 §25.1 `qdtext = LWS / ...`: a fold inside quotes is white space (§7.3.1:
    /// one SP); a bare CR or LF, or another control byte, is refused.
    #[test]
    fn cr_lf_inside_quotes() {
        let a = parse_auth(b"Digest realm=\"atlanta\r\n\t .com\", nonce=\"n\"").unwrap();
        let p = a.get("realm").unwrap();
        assert!(p.escaped);
        assert_eq!(p.value, b"atlanta\r\n\t .com");
        assert_eq!(p.decoded(), &b"atlanta .com"[..]);
        assert_eq!(err(b"Digest realm=\"a\r\nb\"").0, 15);
        assert_eq!(err(b"Digest realm=\"a\rb\"").0, 15);
        assert_eq!(err(b"Digest realm=\"a\nb\"").0, 15);
        assert_eq!(err(b"Digest realm=\"a\0b\"").0, 15);
        assert_eq!(err(b"Digest realm=\"a\x7fb\"").0, 15);
        assert_eq!(err(b"Digest realm=\"a\\\rb\"").0, 15);
        // HTAB is qdtext; a fold between parameters is LWS.
        assert_eq!(params(b"Digest a=\"x\ty\",\r\n b=c")[0].1, b"x\ty");
        // Non-ASCII text must be UTF-8.
        assert_eq!(
            params("Digest u=\"J\u{e4}s\"".as_bytes())[0].1,
            "J\u{e4}s".as_bytes()
        );
        assert_eq!(err(b"Digest u=\"J\xe4s\"").0, 11);
    }

    #[test]
    fn offsets_empty_elements_and_token68() {
        let a = parse_auth(b" Digest  a = \"q\" ,, b=c ,").unwrap();
        let p: Vec<_> = a
            .params()
            .map(|p| (p.name_offset, p.value_offset))
            .collect();
        assert_eq!(p, [(9, 14), (20, 22)]);
        assert_eq!(a.token68(), None);
        let t = parse_auth(b"Bearer abc.DEF-_~+/== ").unwrap();
        assert_eq!(t.token68(), Some("abc.DEF-_~+/=="));
        assert_eq!(t.params().count(), 0);
        // `name=` alone reads as a token68 (RFC 7235: a token68 when nothing else fits).
        assert_eq!(parse_auth(b"Bearer a=").unwrap().token68(), Some("a="));
        assert!(parse_auth(b"Bearer a=b=").is_err());
        // The scanner stops after its first error.
        let mut sc = AuthScanner::new(b"Digest a=1, b, c=2").unwrap();
        assert!(sc.next().unwrap().is_ok());
        assert_eq!(sc.next().unwrap().unwrap_err().offset, 13);
        assert!(sc.next().is_none());
    }
}
