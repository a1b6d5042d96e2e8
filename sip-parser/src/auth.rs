//! Authorization / Proxy-Authorization credentials and WWW-/Proxy-Authenticate challenges:
//! `scheme` followed by comma-separated `name=value` parameters (token or quoted string).
//! Digest semantics (hashing, nonces) live in the `sip-auth` crate.

use crate::chars::{as_str, is_token, quoted_end, skip_ws, token_end};
use crate::error::{FieldErrorKind, PResult, syntax};

/// A credentials or challenge value: scheme plus auth-params.
///
/// ```
/// let a = sip_parser::AuthValue::parse(
///     br#"Digest username="bob", realm="example.com", nonce="ea9c8e88", uri="sip:example.com", response="bfa8", algorithm=MD5, nc=00000001, qop=auth"#,
/// ).unwrap();
/// assert_eq!(a.scheme, "Digest");
/// assert_eq!(a.param("USERNAME"), Some("bob"));
/// assert_eq!(a.param("nc"), Some("00000001"));
/// assert_eq!(a.params().count(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthValue<'a> {
    /// Scheme as written (`Digest`).
    pub scheme: &'a str,
    raw_params: &'a [u8],
}

/// One auth-param: name and value (quotes removed, escapes kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthParam<'a> {
    /// Parameter name.
    pub name: &'a str,
    /// Value without surrounding quotes.
    pub value: &'a [u8],
    /// True when the value was a quoted string.
    pub quoted: bool,
}

impl<'a> AuthValue<'a> {
    /// Parses `scheme LWS auth-param *(COMMA auth-param)`.
    pub fn parse(s: &'a [u8]) -> Result<Self, crate::FieldError> {
        parse_auth(s).map_err(|(offset, kind)| crate::FieldError {
            header: "Authorization",
            offset,
            kind,
        })
    }
    /// Iterates the parameters in order.
    pub fn params(&self) -> impl Iterator<Item = AuthParam<'a>> + 'a {
        let s = self.raw_params;
        let mut i = 0;
        core::iter::from_fn(move || {
            let r = next_param(s, i).ok()??;
            i = r.1;
            Some(r.0)
        })
    }
    /// The value of a parameter (case-insensitive name), as text.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| as_str(p.value))
    }
    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

/// Parses one param at `i` (after optional comma/LWS); `Ok(None)` at the end.
fn next_param(s: &[u8], i: usize) -> PResult<Option<(AuthParam<'_>, usize)>> {
    let mut i = skip_ws(s, i);
    if i >= s.len() {
        return Ok(None);
    }
    let ne = token_end(s, i);
    if ne == i {
        return syntax(i, "auth-param name");
    }
    let name = as_str(&s[i..ne]).unwrap_or_default();
    i = skip_ws(s, ne);
    if s.get(i) != Some(&b'=') {
        return syntax(i, "auth-param ('=' expected)");
    }
    i = skip_ws(s, i + 1);
    let (value, quoted, mut j) = if s.get(i) == Some(&b'"') {
        let Some(e) = quoted_end(s, i) else {
            return syntax(i, "auth-param (unterminated quoted string)");
        };
        (&s[i + 1..e - 1], true, e)
    } else {
        let mut e = i;
        while e < s.len() && (is_token(s[e]) || matches!(s[e], b'/' | b'=' | b':')) {
            e += 1;
        }
        if e == i {
            return syntax(i, "auth-param value");
        }
        (&s[i..e], false, e)
    };
    j = skip_ws(s, j);
    if j < s.len() {
        if s[j] != b',' {
            return syntax(j, "auth-param (',' expected)");
        }
        j += 1;
    }
    Ok(Some((
        AuthParam {
            name,
            value,
            quoted,
        },
        j,
    )))
}

pub(crate) fn parse_auth(s: &[u8]) -> PResult<AuthValue<'_>> {
    let i = skip_ws(s, 0);
    let e = token_end(s, i);
    if e == i {
        return if i >= s.len() {
            Err((i, FieldErrorKind::Empty))
        } else {
            syntax(i, "auth scheme")
        };
    }
    let scheme = as_str(&s[i..e]).unwrap_or_default();
    let raw_params = &s[e..];
    // Validate every param once, so iteration later cannot fail.
    let mut j = 0;
    let mut n = 0;
    while let Some((_, next)) = next_param(raw_params, j).map_err(|(o, k)| (e + o, k))? {
        j = next;
        n += 1;
    }
    if n == 0 && e < s.len() && !crate::chars::trim(raw_params).is_empty() {
        return syntax(e, "auth params");
    }
    Ok(AuthValue { scheme, raw_params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let a = parse_auth(b"NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!(a.param("opaque-data"), Some("here"));
        let a = parse_auth(b"Digest realm=\"a,b\" ,\r\n nonce=\"x\\\"y\", stale=TRUE").unwrap();
        assert_eq!(a.param("realm"), Some("a,b"));
        assert_eq!(a.param("nonce"), Some("x\\\"y"));
        assert_eq!(a.param("stale"), Some("TRUE"));
        assert!(parse_auth(b"Digest realm").is_err());
        assert!(parse_auth(b"Digest realm=\"x").is_err());
        assert!(parse_auth(b"Digest a=b c=d").is_err());
        assert!(parse_auth(b"").is_err());
        assert_eq!(parse_auth(b"Basic").unwrap().params().count(), 0);
    }
}
