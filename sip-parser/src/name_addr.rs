//! `name-addr` / `addr-spec` values: From, To, Contact, Route, Record-Route, Path, …

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::chars::{as_str, is_token, is_ws, quoted_end, skip_ws};
use crate::error::{FieldErrorKind, PResult, syntax};
use crate::params::{Params, parse_params_visit};
use crate::uri::Uri;

/// An address: optional display name, URI, header parameters.
///
/// ```
/// use sip_parser::NameAddr;
/// let a = NameAddr::parse(br#""Alice \"A\"" <sip:alice@example.com;lr>;tag=1928"#).unwrap();
/// assert_eq!(a.display_name, Some(&br#"Alice \"A\""#[..]));
/// assert_eq!(&*a.display_name_unescaped().unwrap(), br#"Alice "A""#);
/// let uri = a.uri().unwrap();
/// assert_eq!(uri.host, "example.com");
/// assert!(uri.params.has("lr"));
/// assert_eq!(a.tag(), Some("1928"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written: the inside of a quoted string (escapes kept), or the
    /// unquoted tokens, trimmed.
    pub display_name: Option<&'a [u8]>,
    /// The URI as written (inside the `<…>` when bracketed); [`NameAddr::uri`] parses it.
    /// Lazy on purpose: reading a tag or forwarding a Route needs no URI parse.
    pub raw_uri: &'a [u8],
    /// True when the URI was enclosed in `<…>` (name-addr form).
    pub bracketed: bool,
    /// Header parameters after the address (`;tag=…;expires=…`).
    pub params: Params<'a>,
    /// The `tag` value, found during the one walk over the params.
    tag: Option<&'a [u8]>,
}

impl<'a> NameAddr<'a> {
    /// Parses one address (name-addr or addr-spec form).
    pub fn parse(s: &'a [u8]) -> Result<Self, crate::FieldError> {
        parse_name_addr(s, true).map_err(|(offset, kind)| crate::FieldError {
            header: "address",
            offset,
            kind,
        })
    }

    /// The URI, parsed (SIP/SIPS, `tel:` or any absolute URI). Error offsets are relative
    /// to [`raw_uri`](Self::raw_uri).
    pub fn uri(&self) -> Result<Uri<'a>, crate::FieldError> {
        Uri::parse(self.raw_uri)
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.tag.and_then(as_str)
    }

    pub(crate) fn tag_bytes(&self) -> Option<&'a [u8]> {
        self.tag
    }

    pub(crate) fn from_parts(
        display_name: Option<&'a [u8]>,
        raw_uri: &'a [u8],
        bracketed: bool,
        params: Params<'a>,
        tag: Option<&'a [u8]>,
    ) -> Self {
        NameAddr {
            display_name,
            raw_uri,
            bracketed,
            params,
            tag,
        }
    }

    /// The display name with quoted-pair escapes removed.
    pub fn display_name_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        let d = self.display_name?;
        if crate::chars::find(b'\\', d).is_none() {
            return Some(Cow::Borrowed(d));
        }
        let mut out = Vec::with_capacity(d.len());
        let mut i = 0;
        while i < d.len() {
            if d[i] == b'\\' && i + 1 < d.len() {
                i += 1;
            }
            out.push(d[i]);
            i += 1;
        }
        Some(Cow::Owned(out))
    }
}

/// Parses `name-addr / addr-spec` followed by header params; `allow_addr_spec` false means
/// the `<…>` form is required (Route, Record-Route, Path).
pub(crate) fn parse_name_addr(s: &[u8], allow_addr_spec: bool) -> PResult<NameAddr<'_>> {
    let mut i = skip_ws(s, 0);
    if i >= s.len() {
        return Err((i, FieldErrorKind::Empty));
    }
    let mut display_name = None;
    let lt;
    if s[i] == b'"' {
        let Some(e) = quoted_end(s, i) else {
            return syntax(i, "quoted display name (unterminated)");
        };
        display_name = Some(&s[i + 1..e - 1]);
        i = skip_ws(s, e);
        if s.get(i) != Some(&b'<') {
            return syntax(i, "name-addr ('<' expected after the display name)");
        }
        lt = i;
    } else if let Some(p) = crate::chars::find(b'<', &s[i..]) {
        lt = i + p;
        let d = &s[i..lt];
        if !d.iter().all(|&b| is_token(b) || is_ws(b)) {
            return syntax(i, "display name (unquoted non-token characters)");
        }
        let mut e = d.len();
        while e > 0 && is_ws(d[e - 1]) {
            e -= 1;
        }
        if e > 0 {
            display_name = Some(&d[..e]);
        }
    } else {
        if !allow_addr_spec {
            return syntax(i, "name-addr ('<' required)");
        }
        // addr-spec: the URI ends at the first ';' or LWS; what follows are header params.
        let mut e = i;
        while e < s.len() && s[e] != b';' && !is_ws(s[e]) {
            e += 1;
        }
        let raw = &s[i..e];
        if memchr::memchr2(b'?', b',', raw).is_some() {
            return syntax(
                i,
                "addr-spec (a URI with '?' or ',' must be enclosed in <>)",
            );
        }
        if raw.is_empty() {
            return syntax(i, "addr-spec");
        }
        let mut tag = None;
        let (params, end) = parse_params_visit(s, e, |n, v| find_tag(n, v, &mut tag))?;
        if end != s.len() {
            return syntax(end, "address (trailing characters)");
        }
        return Ok(NameAddr {
            display_name: None,
            raw_uri: raw,
            bracketed: false,
            tag,
            params,
        });
    }
    let Some(gt) = crate::chars::find(b'>', &s[lt..]).map(|p| lt + p) else {
        return syntax(lt, "name-addr (no '>')");
    };
    let raw = &s[lt + 1..gt];
    if raw.is_empty() || crate::chars::is_ws(raw[0]) || crate::chars::is_ws(raw[raw.len() - 1]) {
        return syntax(lt + 1, "name-addr (white space or nothing inside <>)");
    }
    let mut tag = None;
    let (params, end) = parse_params_visit(s, gt + 1, |n, v| find_tag(n, v, &mut tag))?;
    if end != s.len() {
        return syntax(end, "address (trailing characters)");
    }
    Ok(NameAddr {
        display_name,
        raw_uri: raw,
        bracketed: true,
        tag,
        params,
    })
}

#[allow(clippy::unnecessary_wraps)] // the visitor signature of parse_params_visit
fn find_tag<'a>(name: &[u8], value: Option<&'a [u8]>, tag: &mut Option<&'a [u8]>) -> PResult<()> {
    if tag.is_none() && name.eq_ignore_ascii_case(b"tag") {
        *tag = value.map(crate::unquote);
    }
    Ok(())
}

/// A Contact entry: `*` or an address with `expires`, `q`, `+sip.instance`, `reg-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removing every binding).
    Star,
    /// A contact address.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Self::Star => None,
            Self::Addr(a) => Some(a),
        }
    }
    /// The `expires` parameter in seconds, saturating at `u32::MAX` (RFC 3261 §10.2.1.1):
    /// `Ok(None)` when absent (and for `*`), an error when present but not `1*DIGIT` (no
    /// value, empty, quoted, signed…), which a registrar answers with 400. The error's offset
    /// is relative to the contact's parameters ([`Params::as_bytes`]);
    /// [`Message::contact_expiry`](crate::Message::contact_expiry) reports it in the message.
    ///
    /// ```
    /// use sip_parser::{Contact, NameAddr};
    /// let c = |s: &'static [u8]| Contact::Addr(NameAddr::parse(s).unwrap());
    /// assert_eq!(c(b"<sip:a@192.0.2.1>;expires=3600").expires(), Ok(Some(3600)));
    /// assert_eq!(c(b"<sip:a@192.0.2.1>").expires(), Ok(None));
    /// assert!(c(b"<sip:a@192.0.2.1>;expires=soon").expires().is_err());
    /// ```
    pub fn expires(&self) -> Result<Option<u32>, crate::FieldError> {
        let Some(addr) = self.addr() else {
            return Ok(None);
        };
        let Some(value) = addr.params.get("expires") else {
            return Ok(None);
        };
        let raw = addr.params.as_bytes();
        match value.and_then(crate::chars::parse_digits) {
            Some(n) => Ok(Some(n.min(u64::from(u32::MAX)) as u32)),
            None => Err(crate::FieldError {
                header: "Contact",
                offset: value.map_or(0, |v| v.as_ptr() as usize - raw.as_ptr() as usize),
                kind: FieldErrorKind::Syntax("Contact expires (delta-seconds expected)"),
            }),
        }
    }
    /// The `q` parameter in thousandths (`q=0.7` → 700), `None` when absent or malformed.
    pub fn q(&self) -> Option<u16> {
        parse_qvalue(self.addr()?.params.get("q")??)
    }
    /// The `+sip.instance` parameter (RFC 5626), quotes removed.
    pub fn sip_instance(&self) -> Option<&'a str> {
        self.addr()?.params.get_str("+sip.instance")
    }
    /// The `reg-id` parameter (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        let v = self.addr()?.params.get("reg-id")??;
        crate::chars::parse_digits(v).and_then(|n| u32::try_from(n).ok())
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
pub(crate) fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let s = as_str(v)?;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut f: u16 = 0;
    for (k, b) in frac.bytes().enumerate() {
        f += u16::from(b - b'0') * [100, 10, 1][k];
    }
    match int {
        "0" => Some(f),
        "1" if f == 0 => Some(1000),
        _ => None,
    }
}

pub(crate) fn parse_contact(s: &[u8]) -> PResult<Contact<'_>> {
    if crate::chars::trim(s) == b"*" {
        return Ok(Contact::Star);
    }
    parse_name_addr(s, true).map(Contact::Addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = parse_name_addr(
            b"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            true,
        )
        .unwrap();
        assert!(!a.bracketed);
        assert_eq!(a.tag(), Some("1918181833n"));
        let a = parse_name_addr(b"caller<sip:caller@example.com>;tag=323", true).unwrap();
        assert_eq!(a.display_name, Some(&b"caller"[..]));
        let a = parse_name_addr(b"sip:user@host;unknownparam", true).unwrap();
        assert!(a.params.get("unknownparam").is_some());
        assert!(!a.uri().unwrap().params.has("unknownparam"));
        let a = parse_name_addr(b"<sip:user@host;unknownparam>", true).unwrap();
        assert!(a.uri().unwrap().params.has("unknownparam") && a.params.is_empty());
    }

    #[test]
    fn rejects() {
        for s in [
            &b"\"Mr. J. User <sip:j.user@example.com>"[..],
            b"< sip:t.watson@example.org >",
            b"Bell, Alexander <sip:a.g.bell@example.com>",
            b"sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            b"\"Joe\" <sip:joe@example.org>;;;;",
            b"",
            b"<sip:a@b> junk",
        ] {
            assert!(
                parse_name_addr(s, true).is_err(),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
        assert!(parse_name_addr(b"sip:a@b", false).is_err());
    }

    #[test]
    fn contact_params() {
        let c = parse_contact(
            b"<sip:a@b>;expires=280297596632815;q=0.33;+sip.instance=\"<urn:uuid:1>\";reg-id=2",
        )
        .unwrap();
        assert_eq!(c.expires(), Ok(Some(u32::MAX)));
        assert_eq!(c.q(), Some(330));
        assert_eq!(c.sip_instance(), Some("<urn:uuid:1>"));
        assert_eq!(c.reg_id(), Some(2));
        assert_eq!(parse_contact(b" * ").unwrap(), Contact::Star);
        assert_eq!(Contact::Star.expires(), Ok(None));
        for bad in [
            &b"<sip:a@b>;expires"[..],
            b"<sip:a@b>;expires=\"60\"",
            b"<sip:a@b>;expires=-1",
        ] {
            let e = parse_contact(bad).unwrap().expires().unwrap_err();
            assert_eq!(e.header, "Contact", "{}", String::from_utf8_lossy(bad));
        }
        let e = parse_contact(b"<sip:a@b>;q=1;expires=1x")
            .unwrap()
            .expires()
            .unwrap_err();
        assert_eq!(e.offset, 13); // in ";q=1;expires=1x"
        assert_eq!(parse_qvalue(b"1.000"), Some(1000));
        assert_eq!(parse_qvalue(b"1.1"), None);
    }
}
