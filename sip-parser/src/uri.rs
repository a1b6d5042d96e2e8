//! URIs: SIP/SIPS (RFC 3261 §19.1, IPv6 references per RFC 5118), `tel:` (RFC 3966) and
//! other absolute URIs, parsed zero-copy.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::chars::{as_str, escapes_ok, is_unreserved, is_user, unescape_into};
use crate::error::{PResult, syntax};
use crate::params::UriParams;

/// The URI scheme, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Any other absolute URI scheme (kept opaque).
    Other,
}

/// What kind of host a URI or Via names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// A DNS name.
    Domain,
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// A bracketed IPv6 reference (`[2001:db8::1]`).
    Ipv6,
}

/// A parsed URI. Every part borrows from the message; `%HEX` escapes are kept as written
/// (see [`Uri::user_unescaped`]) so nothing, `%00` included, is lost.
///
/// ```
/// let uri = sip_parser::Uri::parse(b"sips:alice:pw@[2001:db8::10]:5061;transport=tcp?subject=hi").unwrap();
/// assert_eq!(uri.scheme, sip_parser::Scheme::Sips);
/// assert_eq!(uri.user, Some(&b"alice"[..]));
/// assert_eq!(uri.host, "[2001:db8::10]");
/// assert_eq!(uri.port, Some(5061));
/// assert_eq!(uri.params.get("transport"), Some(Some(&b"tcp"[..])));
/// assert_eq!(uri.headers, Some(&b"subject=hi"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI as written.
    pub raw: &'a [u8],
    /// Classified scheme.
    pub scheme: Scheme,
    /// Scheme as written (`"sip"`, `"SIP"`, `"soap.beep"`, …).
    pub scheme_str: &'a str,
    /// User part (SIP/SIPS), or the subscriber number (`tel:`), escapes kept.
    pub user: Option<&'a [u8]>,
    /// Password (SIP/SIPS only).
    pub password: Option<&'a [u8]>,
    /// Host as written, IPv6 references with their brackets; empty for `tel:` and opaque URIs.
    pub host: &'a str,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;lr;transport=tcp`).
    pub params: UriParams<'a>,
    /// The header part after `?`, without the `?`.
    pub headers: Option<&'a [u8]>,
}

impl<'a> Uri<'a> {
    /// Parses a URI. Accepts SIP/SIPS and `tel:` per their grammars and any other
    /// `scheme:rest` absolute URI without white space or `<>"`.
    pub fn parse(s: &'a [u8]) -> Result<Self, crate::FieldError> {
        parse_uri(s).map_err(|(offset, kind)| crate::FieldError {
            header: "URI",
            offset,
            kind,
        })
    }

    /// User part with `%HEX` escapes decoded (`%00` becomes a NUL byte; nothing is dropped).
    pub fn user_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        let u = self.user?;
        if crate::chars::find(b'%', u).is_none() {
            return Some(Cow::Borrowed(u));
        }
        let mut v = Vec::with_capacity(u.len());
        unescape_into(u, &mut v);
        Some(Cow::Owned(v))
    }

    /// What the host is; `None` for `tel:` and opaque URIs.
    pub fn host_kind(&self) -> Option<HostKind> {
        if self.host.is_empty() {
            None
        } else {
            Some(host_kind(self.host))
        }
    }

    /// True for `sip:` and `sips:`.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }
}

/// Classifies a host string (as in a URI or a Via sent-by).
pub fn host_kind(host: &str) -> HostKind {
    if host.starts_with('[') {
        HostKind::Ipv6
    } else if is_ipv4(host.as_bytes()) {
        HostKind::Ipv4
    } else {
        HostKind::Domain
    }
}

fn is_ipv4(s: &[u8]) -> bool {
    let mut parts = 0;
    for p in s.split(|&b| b == b'.') {
        parts += 1;
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return false;
        }
        if crate::chars::parse_digits(p).unwrap_or(256) > 255 {
            return false;
        }
    }
    parts == 4
}

/// `host [":" port]` at the start of `s`; returns (host, port, end).
pub(crate) fn parse_hostport(
    s: &[u8],
    allow_ws_colon: bool,
) -> PResult<(usize, Option<u16>, usize)> {
    let (host_end, i) = if s.first() == Some(&b'[') {
        let Some(close) = crate::chars::find(b']', s) else {
            return syntax(0, "IPv6 reference (no ']')");
        };
        let inner = &s[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return syntax(1, "IPv6 reference");
        }
        (close + 1, close + 1)
    } else {
        let j = crate::chars::hostname_end(s, 0);
        if j == 0 {
            return syntax(0, "host");
        }
        (j, j)
    };
    let mut k = i;
    if allow_ws_colon {
        k = crate::chars::skip_ws(s, k);
    }
    if k < s.len() && s[k] == b':' {
        k += 1;
        if allow_ws_colon {
            k = crate::chars::skip_ws(s, k);
        }
        // The digits, read and valued in one pass (saturating, like `parse_digits`).
        let ds = k;
        let mut port = 0u64;
        while let Some(d) = s.get(k).filter(|b| b.is_ascii_digit()) {
            port = port.saturating_mul(10).saturating_add(u64::from(d - b'0'));
            k += 1;
        }
        if k == ds || port > 65535 {
            return syntax(ds, "port");
        }
        return Ok((host_end, Some(port as u16), k));
    }
    Ok((host_end, None, i))
}

/// The scheme of a URI that is not `sip:`/`sips:` (those take the fast path): classified, and
/// the index of its ':'.
fn scheme_of(s: &[u8]) -> PResult<(Scheme, usize)> {
    let Some(colon) = crate::chars::find(b':', s) else {
        return syntax(0, "URI scheme");
    };
    let scheme_b = &s[..colon];
    if scheme_b.is_empty()
        || !scheme_b[0].is_ascii_alphabetic()
        || !scheme_b
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return syntax(0, "URI scheme");
    }
    let scheme = if scheme_b.eq_ignore_ascii_case(b"sip") {
        Scheme::Sip
    } else if scheme_b.eq_ignore_ascii_case(b"sips") {
        Scheme::Sips
    } else if scheme_b.eq_ignore_ascii_case(b"tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    };
    Ok((scheme, colon))
}

pub(crate) fn parse_uri(s: &[u8]) -> PResult<Uri<'_>> {
    let (scheme, colon) = match s {
        [b's' | b'S', b'i' | b'I', b'p' | b'P', b':', ..] => (Scheme::Sip, 3),
        [b's' | b'S', b'i' | b'I', b'p' | b'P', b's' | b'S', b':', ..] => (Scheme::Sips, 4),
        _ => scheme_of(s)?,
    };
    if !matches!(scheme, Scheme::Sip | Scheme::Sips) {
        // tel: and opaque URIs: every byte must be allowed in a URI. (SIP/SIPS URIs are
        // checked part by part below, which covers every byte.)
        if let Some(bad) = s.iter().position(|&b| !crate::chars::is_uric(b)) {
            return syntax(bad, "URI (white space or forbidden character)");
        }
    }
    // The scheme is ASCII letters (checked above); the usual spellings need no conversion.
    let scheme_str = match &s[..colon] {
        b"sip" => "sip",
        b"sips" => "sips",
        b"SIP" => "SIP",
        b"SIPS" => "SIPS",
        other => as_str(other).unwrap_or_default(),
    };
    let rest = &s[colon + 1..];
    let base = colon + 1;
    let mut uri = Uri {
        raw: s,
        scheme,
        scheme_str,
        user: None,
        password: None,
        host: "",
        port: None,
        params: UriParams::default(),
        headers: None,
    };
    match scheme {
        Scheme::Other => {
            if rest.is_empty() {
                return syntax(base, "URI (empty after scheme)");
            }
        }
        Scheme::Tel => {
            let end = crate::chars::find(b';', rest).unwrap_or(rest.len());
            let num = &rest[..end];
            if num.is_empty()
                || !num.iter().all(|&b| {
                    b.is_ascii_hexdigit()
                        || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
                })
            {
                return syntax(base, "telephone number");
            }
            uri.user = Some(num);
            uri.params = check_params(&rest[end..], base + end)?;
        }
        Scheme::Sip | Scheme::Sips => {
            let mut i = 0;
            // '@' cannot appear unescaped after the userinfo, so the first one ends it.
            if let Some(at) = crate::chars::find(b'@', rest) {
                let userinfo = &rest[..at];
                let (user, password) = match crate::chars::find(b':', userinfo) {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() || !user.iter().all(|&b| is_user(b)) || !escapes_ok(user) {
                    return syntax(base, "URI user part");
                }
                if let Some(p) = password {
                    let ok = p.iter().all(|&b| {
                        is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
                    });
                    if !ok || !escapes_ok(p) {
                        return syntax(base + user.len() + 1, "URI password");
                    }
                }
                uri.user = Some(user);
                uri.password = password;
                i = at + 1;
            }
            let (host_end, port, hp_end) =
                parse_hostport(&rest[i..], false).map_err(|(o, k)| (base + i + o, k))?;
            // Host characters are ASCII (checked by parse_hostport).
            uri.host = as_str(&rest[i..i + host_end]).unwrap_or_default();
            uri.port = port;
            let i = i + hp_end;
            let (pend, hstart) = match crate::chars::find(b'?', &rest[i..]) {
                Some(q) => (i + q, Some(i + q + 1)),
                None => (rest.len(), None),
            };
            if pend > i && rest[i] != b';' {
                return syntax(base + i, "URI (junk after host)");
            }
            uri.params = check_params(&rest[i..pend], base + i)?;
            if let Some(h) = hstart {
                let hs = &rest[h..];
                if hs.is_empty() || !hs.iter().all(|&b| crate::chars::is_uric(b)) || !escapes_ok(hs)
                {
                    return syntax(base + h, "URI headers");
                }
                uri.headers = Some(hs);
            }
        }
    }
    Ok(uri)
}

fn check_params(p: &[u8], base: usize) -> PResult<UriParams<'_>> {
    // `*( ";" pname [ "=" pvalue ] )`: paramchars only, no empty name, in one pass; then the
    // escapes (rare) are checked.
    let mut prev_semi = false;
    let mut escapes = false;
    for (k, &b) in p.iter().enumerate() {
        if !crate::chars::is_paramc(b) || (prev_semi && (b == b';' || b == b'=')) {
            return syntax(base + k, "URI parameter");
        }
        prev_semi = b == b';';
        escapes |= b == b'%';
    }
    if prev_semi {
        return syntax(base + p.len(), "URI parameter (empty name)");
    }
    if escapes && !escapes_ok(p) {
        return syntax(base, "URI parameter (bad escape)");
    }
    Ok(UriParams::new(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Uri<'_> {
        parse_uri(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn sip_uris() {
        let u = ok("sip:vivekg@chair-dnrc.example.com;unknownparam");
        assert_eq!(u.user, Some(&b"vivekg"[..]));
        assert_eq!(u.host, "chair-dnrc.example.com");
        assert!(u.params.has("unknownparam"));
        let u = ok("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(&*u.user_unescaped().unwrap(), b"user;par=u@example.net");
        let u = ok(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.password,
            Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
        );
        let u = ok("sip:null-%00-null@example.com");
        assert_eq!(&*u.user_unescaped().unwrap(), b"null-\0-null");
        let u = ok("sip:[2001:db8::10]:5070");
        assert_eq!((u.host, u.port), ("[2001:db8::10]", Some(5070)));
        assert_eq!(u.host_kind(), Some(HostKind::Ipv6));
        let u = ok("sip:[2001:db8::10:5070]");
        assert_eq!((u.host, u.port), ("[2001:db8::10:5070]", None));
        assert_eq!(ok("sip:192.0.2.1").host_kind(), Some(HostKind::Ipv4));
        let u = ok("sip:user@example.com?Route=%3Csip:sip.example.com%3E");
        assert_eq!(u.headers, Some(&b"Route=%3Csip:sip.example.com%3E"[..]));
    }

    #[test]
    fn other_schemes() {
        assert_eq!(
            ok("tel:+1-201-555-0123;phone-context=x").user,
            Some(&b"+1-201-555-0123"[..])
        );
        assert_eq!(
            ok("nobodyKnowsThisScheme:totallyopaquecontent").scheme,
            Scheme::Other
        );
        assert_eq!(ok("soap.beep://192.0.2.103:3002").scheme_str, "soap.beep");
    }

    #[test]
    fn bad_uris() {
        for s in [
            "sip:2001:db8::10",
            "sip:user@example.com; lr",
            "<sip:user@example.com>",
            "sip:",
            "sip:user@",
            "sip:host:99999",
            "sip:host;;lr",
            "sip:us er@host",
            "sip:bad%zz@host",
            ":nothing",
            "tel:",
            "sip:[::1",
        ] {
            assert!(parse_uri(s.as_bytes()).is_err(), "{s}");
        }
    }
}
