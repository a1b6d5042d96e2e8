//! Typed Digest views over the auth-params that `sip_parser::AuthScanner` reads
//! ([`Credentials`] for `Authorization` / `Proxy-Authorization`, [`Challenge`] for
//! `WWW-Authenticate` / `Proxy-Authenticate`, RFC 7616 §3.3-3.4), and the writing of those
//! values. The grammar is sip-parser's (see its `AuthScanner`); this module adds the Digest
//! rules: the scheme is `Digest`, a parameter read here may not be repeated, the required
//! ones must be present, `nc` is 8 hex digits and `username*` an RFC 8187 ext-value.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use sip_parser::{AuthParam, AuthScanner, AuthValue, FieldError, FieldErrorKind};

use crate::algorithm::Algorithm;
use crate::error::DigestHeaderError;

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

    fn from_bytes(b: &[u8]) -> Option<Self> {
        [Qop::Auth, Qop::AuthInt]
            .into_iter()
            .find(|q| q.as_str().as_bytes().eq_ignore_ascii_case(b))
    }
}

/// A scanner error as this crate reports it.
fn syntax(e: FieldError) -> DigestHeaderError {
    DigestHeaderError::Syntax {
        offset: e.offset,
        what: match e.kind {
            FieldErrorKind::Syntax(what) => what,
            _ => "empty value",
        },
    }
}

/// Runs `sc` over a Digest value, handing each parameter to `each`.
fn read<'a>(
    sc: Result<AuthScanner<'a>, FieldError>,
    mut each: impl FnMut(AuthParam<'a>) -> Result<(), DigestHeaderError>,
) -> Result<(), DigestHeaderError> {
    let sc = sc.map_err(syntax)?;
    if !sc.is_digest() {
        return Err(DigestHeaderError::NotDigest);
    }
    for p in sc {
        each(p.map_err(syntax)?)?;
    }
    Ok(())
}

/// A parameter's text: borrowed unless it held escapes or folds.
fn text<'a>(p: &AuthParam<'a>) -> Cow<'a, str> {
    // The scanner checked that the value is UTF-8; the fallbacks are never taken.
    match p.decoded() {
        Cow::Borrowed(b) => Cow::Borrowed(core::str::from_utf8(b).unwrap_or_default()),
        Cow::Owned(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
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
    /// Parse a challenge header value. A parameter read here may not be repeated; unknown
    /// ones are ignored.
    pub fn parse(value: &'a [u8]) -> Result<Self, DigestHeaderError> {
        Self::read(AuthScanner::new(value))
    }

    /// Parse a challenge header value given as `&str`.
    pub fn parse_str(value: &'a str) -> Result<Self, DigestHeaderError> {
        Self::parse(value.as_bytes())
    }

    fn read(sc: Result<AuthScanner<'a>, FieldError>) -> Result<Self, DigestHeaderError> {
        const NAMES: [&str; 7] = [
            "realm",
            "nonce",
            "opaque",
            "stale",
            "algorithm",
            "qop",
            "userhash",
        ];
        let mut seen = [None; NAMES.len()];
        read(sc, |p| {
            if let Some(k) = NAMES.iter().position(|n| p.is(n)) {
                if seen[k].replace(p).is_some() {
                    return Err(DigestHeaderError::Duplicate {
                        offset: p.name_offset,
                    });
                }
            }
            Ok(())
        })?;
        let [realm, nonce, opaque, stale, algorithm, qop, userhash] = seen;
        let flag =
            |p: Option<AuthParam<'_>>| p.is_some_and(|p| p.value.eq_ignore_ascii_case(b"true"));
        let mut qops = Vec::new();
        if let Some(q) = &qop {
            for q in q
                .value
                .split(|&c| c == b',')
                .filter_map(|q| Qop::from_bytes(q.trim_ascii()))
            {
                if !qops.contains(&q) {
                    qops.push(q);
                }
            }
        }
        Ok(Challenge {
            realm: text(&realm.ok_or(DigestHeaderError::Missing("realm"))?),
            nonce: text(&nonce.ok_or(DigestHeaderError::Missing("nonce"))?),
            opaque: opaque.as_ref().map(text),
            stale: flag(stale),
            algorithm: algorithm.map_or(Some(Algorithm::Md5), |a| Algorithm::from_bytes(a.value)),
            qop: qops,
            qop_present: qop.is_some(),
            userhash: flag(userhash),
        })
    }
}

impl<'a> TryFrom<AuthValue<'a>> for Challenge<'a> {
    type Error = DigestHeaderError;

    /// The challenge in a value from `Message::www_authenticate()` /
    /// `proxy_authenticate()`, read without scanning it again for syntax.
    fn try_from(v: AuthValue<'a>) -> Result<Self, DigestHeaderError> {
        Self::read(Ok(v.scanner()))
    }
}

/// The credentials parameters this crate reads; each indexes [`FIELDS`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Username,
    UsernameExt,
    Realm,
    Nonce,
    Uri,
    Response,
    Algorithm,
    Cnonce,
    Opaque,
    Qop,
    Nc,
    Userhash,
}

impl Field {
    /// The field called `name` (any case): told apart by length and first letter, then
    /// compared once.
    #[inline]
    fn of(name: &[u8]) -> Option<Field> {
        use Field::{
            Algorithm, Cnonce, Nc, Nonce, Opaque, Qop, Realm, Response, Uri, Userhash, Username,
            UsernameExt,
        };
        let f = match (name.len(), name.first()? | 0x20) {
            (2, b'n') => Nc,
            (3, b'u') => Uri,
            (3, b'q') => Qop,
            (5, b'r') => Realm,
            (5, b'n') => Nonce,
            (6, b'c') => Cnonce,
            (6, b'o') => Opaque,
            (8, b'r') => Response,
            (8, b'u') if name[4] | 0x20 == b'h' => Userhash,
            (8, b'u') => Username,
            (9, b'a') => Algorithm,
            (9, b'u') => UsernameExt,
            _ => return None,
        };
        // The names are lower-case letters and `*`, and `name` is a token (checked by the
        // scanner): setting the case bit matches exactly the two cases of each letter.
        let want = FIELDS[f as usize].0.as_bytes();
        (want.len() == name.len() && name.iter().zip(want).all(|(&c, &w)| c | 0x20 == w))
            .then_some(f)
    }
}

/// The name of each [`Field`], in its order.
const FIELDS: [(&str, Field); 12] = [
    ("username", Field::Username),
    ("username*", Field::UsernameExt),
    ("realm", Field::Realm),
    ("nonce", Field::Nonce),
    ("uri", Field::Uri),
    ("response", Field::Response),
    ("algorithm", Field::Algorithm),
    ("cnonce", Field::Cnonce),
    ("opaque", Field::Opaque),
    ("qop", Field::Qop),
    ("nc", Field::Nc),
    ("userhash", Field::Userhash),
];

/// Parsed `Digest` credentials (`Authorization` / `Proxy-Authorization`).
///
/// Parsing allocates nothing: each value this crate reads is kept borrowed from the header
/// value, and copied only when it must be rewritten (a quoted-string holding `\` escapes or
/// a fold, or a `username*` ext-value when asked for). Unknown parameters are checked for
/// syntax (by the scanner) and otherwise ignored.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// Each [`Field`]'s value, quotes removed, escapes and folds resolved.
    values: [Option<Cow<'a, [u8]>>; FIELDS.len()],
    algorithm: Option<Algorithm>,
    qop: Option<Result<Qop, ()>>,
    nc: Option<u32>,
}

impl<'a> Credentials<'a> {
    /// Parse a credentials header value. A known parameter given twice (or both `username`
    /// and `username*`, RFC 7616 §3.4.4) is an error with its offset; unknown parameters
    /// are ignored.
    pub fn parse(value: &'a [u8]) -> Result<Self, DigestHeaderError> {
        Self::read(AuthScanner::new(value))
    }

    /// Parse a credentials header value given as `&str`.
    pub fn parse_str(value: &'a str) -> Result<Self, DigestHeaderError> {
        Self::parse(value.as_bytes())
    }

    fn read(sc: Result<AuthScanner<'a>, FieldError>) -> Result<Self, DigestHeaderError> {
        use Field::{Username, UsernameExt};
        let mut c = Credentials {
            values: Default::default(),
            algorithm: Some(Algorithm::Md5),
            qop: None,
            nc: None,
        };
        read(sc, |p| {
            let Some(f) = Field::of(p.name) else {
                return Ok(());
            };
            // `username` and `username*` exclude each other like a repeated name.
            let twin = match f {
                Username => UsernameExt,
                UsernameExt => Username,
                f => f,
            };
            if c.bytes(f).is_some() || c.bytes(twin).is_some() {
                return Err(DigestHeaderError::Duplicate {
                    offset: p.name_offset,
                });
            }
            c.values[f as usize] = Some(p.decoded());
            c.check(f, p.value_offset)
        })?;
        if c.bytes(Username).is_none() && c.bytes(UsernameExt).is_none() {
            return Err(DigestHeaderError::Missing("username"));
        }
        for (name, f) in &FIELDS[2..6] {
            if c.bytes(*f).is_none() {
                return Err(DigestHeaderError::Missing(name));
            }
        }
        Ok(c)
    }

    /// Reads the fields that are more than text as they arrive (value at `offset`).
    fn check(&mut self, f: Field, offset: usize) -> Result<(), DigestHeaderError> {
        let v = self.value(f);
        match f {
            Field::Algorithm => self.algorithm = Algorithm::from_bytes(v),
            Field::Qop => self.qop = Some(Qop::from_bytes(v).ok_or(())),
            Field::Nc => {
                let hex = |n: u32, &c: &u8| Some(n << 4 | char::from(c).to_digit(16)?);
                let n = (v.len() == 8).then(|| v.iter().try_fold(0, hex)).flatten();
                self.nc = Some(n.ok_or(DigestHeaderError::BadNonceCount { offset })?);
            }
            Field::UsernameExt if ext_value(&self.text(f)).is_none() => {
                return Err(DigestHeaderError::BadExtValue { offset });
            }
            _ => {}
        }
        Ok(())
    }

    /// The bytes of `f` if present.
    #[inline]
    pub(crate) fn bytes(&self, f: Field) -> Option<&[u8]> {
        self.values[f as usize].as_deref()
    }

    /// The bytes of `f` (empty if absent).
    #[inline]
    pub(crate) fn value(&self, f: Field) -> &[u8] {
        self.bytes(f).unwrap_or_default()
    }

    /// The text of `f` (empty if absent): borrowed unless it held escapes or folds.
    fn text(&self, f: Field) -> Cow<'a, str> {
        // The scanner checked that the whole value is UTF-8; the fallbacks are never taken.
        match &self.values[f as usize] {
            Some(Cow::Borrowed(b)) => Cow::Borrowed(core::str::from_utf8(b).unwrap_or_default()),
            Some(Cow::Owned(v)) => Cow::Owned(String::from_utf8_lossy(v).into_owned()),
            None => Cow::Borrowed(""),
        }
    }

    fn get(&self, f: Field) -> Option<Cow<'a, str>> {
        self.bytes(f).is_some().then(|| self.text(f))
    }

    /// The user name: `username`, or the decoded `username*` ext-value (RFC 7616 §3.4.4,
    /// RFC 8187) when that form was sent. With [`Credentials::userhash`] it is the user
    /// hash, not the name.
    pub fn username(&self) -> Cow<'a, str> {
        match self.get(Field::UsernameExt) {
            None => self.text(Field::Username),
            // Checked by the parser; the fallback is never taken.
            Some(Cow::Borrowed(v)) => ext_value(v).unwrap_or(Cow::Borrowed(v)),
            Some(Cow::Owned(v)) => Cow::Owned(ext_value(&v).map_or(v.clone(), Cow::into_owned)),
        }
    }

    /// `realm`.
    pub fn realm(&self) -> Cow<'a, str> {
        self.text(Field::Realm)
    }

    /// `nonce`.
    pub fn nonce(&self) -> Cow<'a, str> {
        self.text(Field::Nonce)
    }

    /// `uri` (the digest-uri).
    pub fn uri(&self) -> Cow<'a, str> {
        self.text(Field::Uri)
    }

    /// `response` (hex, as sent).
    pub fn response(&self) -> Cow<'a, str> {
        self.text(Field::Response)
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
        self.value(Field::Userhash).eq_ignore_ascii_case(b"true")
    }
}

impl<'a> TryFrom<AuthValue<'a>> for Credentials<'a> {
    type Error = DigestHeaderError;

    /// The credentials in a value from `Message::authorization()` /
    /// `proxy_authorization()`, read without scanning it again for syntax.
    fn try_from(v: AuthValue<'a>) -> Result<Self, DigestHeaderError> {
        Self::read(Ok(v.scanner()))
    }
}

impl core::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Credentials");
        for (name, field) in FIELDS {
            if let Some(v) = self.get(field) {
                d.field(name, &v);
            }
        }
        d.finish()
    }
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
            let hex = core::str::from_utf8(vb.get(k + 1..k + 3)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
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

/// Append `, name="value"` (no comma directly after the scheme's space).
pub(crate) fn push_param_quoted(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push_str(", ");
    }
    out.push_str(name);
    out.push('=');
    push_quoted(out, value);
}

/// Append `, name=token`.
pub(crate) fn push_param_token(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push_str(", ");
    }
    let _ = write!(out, "{name}={value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use DigestHeaderError as E;

    const TAIL: &str = r#"realm="r", nonce="n", uri="u", response="x""#;

    fn creds(extra: &str) -> Result<Credentials<'static>, DigestHeaderError> {
        let s: &'static str = alloc::format!("Digest username=\"a\", {TAIL}{extra}").leak();
        Credentials::parse_str(s)
    }

    #[test]
    fn credentials_with_escapes_case_and_whitespace() {
        let h = br#"digest USERNAME="bo\"b", Realm = "atlanta.com" ,nonce="abc",uri="sip:a@b",response="0123456789abcdef0123456789ABCDEF",QOP=auth,nc=0000000a,cnonce="x",ALGORITHM=md5-SESS"#;
        let c = Credentials::parse(h).unwrap();
        assert_eq!(c.username(), "bo\"b");
        assert!(matches!(c.username(), Cow::Owned(_)));
        assert!(matches!(c.realm(), Cow::Borrowed("atlanta.com")));
        assert_eq!((c.qop(), c.nc()), (Some(Ok(Qop::Auth)), Some(10)));
        assert_eq!(c.nc_raw().as_deref(), Some("0000000a"));
        assert_eq!(c.algorithm(), Some(Algorithm::Md5Sess));
        assert_eq!((c.cnonce().as_deref(), c.opaque()), (Some("x"), None));
        assert!(!c.userhash());
        // A fold inside quotes reads as one SP (RFC 3261 §7.3.1).
        let c = creds(", cnonce=\"a\r\n b\"").unwrap();
        assert_eq!(c.cnonce().as_deref(), Some("a b"));
    }

    #[test]
    fn field_names() {
        for (i, (name, f)) in FIELDS.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert!(Field::of(name.as_bytes()) == Some(*f));
            assert!(Field::of(name.to_uppercase().as_bytes()) == Some(*f));
            assert!(Field::of(format!("{name}x").as_bytes()).is_none());
        }
        for other in ["", "x", "ncc", "nonc3", "usernamf", "userhasx", "algorith*"] {
            assert!(Field::of(other.as_bytes()).is_none(), "{other}");
        }
    }

    #[test]
    fn digest_rules() {
        assert_eq!(Credentials::parse(b"Basic abc"), Err(E::NotDigest));
        assert_eq!(
            Credentials::parse(b""),
            Err(E::Syntax {
                offset: 0,
                what: "empty value"
            })
        );
        assert_eq!(
            Credentials::parse(b"Digest realm"),
            Err(E::Missing("username"))
        );
        assert!(matches!(
            Credentials::parse(b"Digest realm=\"x"),
            Err(E::Syntax { offset: 13, .. })
        ));
        assert_eq!(creds(", USERNAME=\"b\""), Err(E::Duplicate { offset: 66 }));
        // Unknown parameters are ignored, repeated or not.
        assert!(creds(", x=1, x=2").is_ok());
        for bad in ["nc=1", "nc=0000000g", "nc=000000001", "nc=+0000001"] {
            assert_eq!(
                creds(&format!(", {bad}")),
                Err(E::BadNonceCount { offset: 69 }),
                "{bad}"
            );
        }
        assert_eq!(creds(", nc=\"0000001F\"").unwrap().nc(), Some(0x1f));
        let h = r#"Digest username="a", realm="r", nonce="n", uri="u""#;
        assert_eq!(Credentials::parse_str(h), Err(E::Missing("response")));
        assert_eq!(creds(", qop=foo").unwrap().qop(), Some(Err(())));
        assert_eq!(creds(", algorithm=foo").unwrap().algorithm(), None);
        assert!(creds(", userhash=TRUE").unwrap().userhash());
    }

    #[test]
    fn username_ext_value() {
        let h = format!("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, {TAIL}");
        assert_eq!(
            Credentials::parse_str(&h).unwrap().username(),
            "J\u{e4}s\u{f8}n Doe"
        );
        let h = format!("Digest USERNAME* = iso-8859-1'en'J%E4s%F8n, {TAIL}");
        assert_eq!(
            Credentials::parse_str(&h).unwrap().username(),
            "J\u{e4}s\u{f8}n"
        );
        let h = format!("Digest username*=UTF-8''plain, {TAIL}");
        assert!(matches!(
            Credentials::parse_str(&h).unwrap().username(),
            Cow::Borrowed("plain")
        ));
        for bad in [
            "UTF-8''%C3",     // truncated UTF-8
            "UTF-8''%G1",     // bad escape
            "UTF-8''%4",      // short escape
            "UTF-8'abc",      // one quote
            "KOI8-R''abc",    // unknown charset
            "\"UTF-8''a b\"", // space is not an attr-char
        ] {
            let h = format!("Digest username*={bad}, {TAIL}");
            assert!(
                matches!(
                    Credentials::parse_str(&h),
                    Err(E::BadExtValue { offset: 17 | 18 })
                ),
                "{bad}"
            );
        }
        let h = format!("Digest username*=UTF-8''a, {TAIL}, username=\"a\"");
        assert_eq!(Credentials::parse_str(&h), Err(E::Duplicate { offset: 72 }));
    }

    /// The typed view reads the scanner's parameters: from raw bytes or from a checked
    /// `AuthValue` (as `Message::authorization()` gives it), the same fields.
    #[test]
    fn from_auth_value_agrees() {
        let h = br#"Digest username="a\\b", realm="r", nonce="n", uri="sip:x", response="y", qop=auth, nc=00000001, cnonce="c""#;
        let v = AuthValue::parse(h).unwrap();
        assert_eq!(Credentials::try_from(v), Credentials::parse(h));
        assert_eq!(Credentials::parse(h).unwrap().username(), "a\\b");
        let ch = br#"Digest realm="r", nonce="n", qop="auth-int, auth,foo""#;
        let c = Challenge::try_from(AuthValue::parse(ch).unwrap()).unwrap();
        assert_eq!(c, Challenge::parse(ch).unwrap());
        assert_eq!(c.qop, [Qop::AuthInt, Qop::Auth]);
    }

    #[test]
    fn challenge() {
        let h = br#"Digest realm="biloxi.com", qop="auth,auth-int,foo", nonce="n1", opaque="o", stale=TRUE, algorithm=SHA-256"#;
        let c = Challenge::parse(h).unwrap();
        assert_eq!(c.qop, [Qop::Auth, Qop::AuthInt]);
        assert!(c.stale && c.qop_present && !c.userhash);
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        let c = Challenge::parse(br#"Digest realm="r", nonce="n", algorithm=FOO"#).unwrap();
        assert_eq!((c.algorithm, c.qop_present, c.stale), (None, false, false));
        assert_eq!(
            Challenge::parse(br#"Digest realm="r", nonce="n", Realm="s""#),
            Err(E::Duplicate { offset: 29 })
        );
        assert_eq!(
            Challenge::parse(br#"Digest nonce="n""#),
            Err(E::Missing("realm"))
        );
    }

    #[test]
    fn writing_round_trips() {
        let mut s = String::from("Digest ");
        push_param_quoted(&mut s, "realm", "a\"b\\c\r\n");
        push_param_token(&mut s, "algorithm", "MD5");
        push_param_quoted(&mut s, "nonce", "n");
        assert_eq!(s, r#"Digest realm="a\"b\\c", algorithm=MD5, nonce="n""#);
        let c = Challenge::parse_str(&s).unwrap();
        assert_eq!(
            (c.realm.as_ref(), c.algorithm),
            ("a\"b\\c", Some(Algorithm::Md5))
        );
    }
}
