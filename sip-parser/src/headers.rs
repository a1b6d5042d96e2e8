//! Small typed header values: CSeq, Call-ID, Content-Type, Event, Subscription-State, Reason,
//! Date, and token lists (Allow, Supported, Require, …).

use crate::chars::{all_token, as_str, is_word, parse_digits, skip_ws, token_end, trim};
use crate::error::{FieldErrorKind, PResult, syntax};
use crate::params::{Params, parse_params};

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (must fit in 32 bits, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: &'a str,
}

pub(crate) fn parse_cseq(s: &[u8]) -> PResult<CSeq<'_>> {
    let s = trim(s);
    let d = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if d == 0 {
        return syntax(0, "CSeq number");
    }
    let Some(seq) = parse_digits(&s[..d]).and_then(|n| u32::try_from(n).ok()) else {
        return Err((0, FieldErrorKind::OutOfRange));
    };
    let m = skip_ws(s, d);
    if m == d {
        return syntax(d, "CSeq (LWS expected before the method)");
    }
    if !all_token(&s[m..]) {
        return syntax(m, "CSeq method");
    }
    Ok(CSeq {
        seq,
        method: crate::chars::method_str(&s[m..]).unwrap_or_default(),
    })
}

/// Checks `callid = word [ "@" word ]`.
pub(crate) fn check_call_id(s: &[u8]) -> PResult<()> {
    let parts: &[&[u8]] = &match crate::chars::find(b'@', s) {
        Some(at) => [&s[..at], &s[at + 1..]],
        None => [s, b"x"],
    };
    if parts
        .iter()
        .all(|p| !p.is_empty() && p.iter().all(|&b| is_word(b)))
    {
        Ok(())
    } else {
        syntax(0, "Call-ID")
    }
}

/// Parses a header holding one unsigned decimal number (Max-Forwards, Expires,
/// Min-Expires). `max` bounds it; `saturate` clamps instead of failing (RFC 3261 §20.19 for
/// Expires).
pub(crate) fn parse_uint(s: &[u8], max: u64, saturate: bool) -> PResult<u64> {
    let s = trim(s);
    match parse_digits(s) {
        None if s.is_empty() => Err((0, FieldErrorKind::Empty)),
        None => syntax(0, "number"),
        Some(n) if n > max && saturate => Ok(max),
        Some(n) if n > max => Err((0, FieldErrorKind::OutOfRange)),
        Some(n) => Ok(n),
    }
}

/// A media type (Content-Type, Accept entries): `type/subtype;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Top-level type (`application`).
    pub kind: &'a str,
    /// Subtype (`sdp`).
    pub subtype: &'a str,
    /// Parameters (`;boundary=…`).
    pub params: Params<'a>,
}

impl MediaType<'_> {
    /// Case-insensitive match on `type/subtype`.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

pub(crate) fn parse_media_type(s: &[u8]) -> PResult<MediaType<'_>> {
    let i = skip_ws(s, 0);
    let e = token_end(s, i);
    if e == i {
        return syntax(i, "media type");
    }
    let j = skip_ws(s, e);
    if s.get(j) != Some(&b'/') {
        return syntax(j, "media type ('/' expected)");
    }
    let k = skip_ws(s, j + 1);
    let f = token_end(s, k);
    if f == k {
        return syntax(k, "media subtype");
    }
    let (params, end) = parse_params(s, f)?;
    if end != s.len() {
        return syntax(end, "media type (trailing characters)");
    }
    Ok(MediaType {
        kind: as_str(&s[i..e]).unwrap_or_default(),
        subtype: as_str(&s[k..f]).unwrap_or_default(),
        params,
    })
}

/// A `token *(;param)` value: Event, Subscription-State, Reason (protocol), …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParams<'a> {
    /// The leading token (`presence`, `active`, `SIP`, …).
    pub value: &'a str,
    /// Its parameters.
    pub params: Params<'a>,
}

pub(crate) fn parse_token_params(s: &[u8]) -> PResult<TokenParams<'_>> {
    let i = skip_ws(s, 0);
    let e = token_end(s, i);
    if e == i {
        return if i >= s.len() {
            Err((i, FieldErrorKind::Empty))
        } else {
            syntax(i, "token")
        };
    }
    let (params, end) = parse_params(s, e)?;
    if end != s.len() {
        return syntax(end, "value (trailing characters)");
    }
    Ok(TokenParams {
        value: as_str(&s[i..e]).unwrap_or_default(),
        params,
    })
}

pub(crate) fn parse_token(s: &[u8]) -> PResult<&str> {
    let t = trim(s);
    if t.is_empty() {
        return Err((0, FieldErrorKind::Empty));
    }
    if !all_token(t) {
        return syntax(0, "token");
    }
    Ok(as_str(t).unwrap_or_default())
}

/// Checks an RFC 1123 date as SIP requires (`Sat, 13 Nov 2010 23:29:00 GMT`, GMT only).
pub(crate) fn check_date(s: &[u8]) -> PResult<()> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let s = trim(s);
    let digits =
        |r: core::ops::Range<usize>| s.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let ok = s.len() == 29
        && DAYS.contains(&&s[0..3])
        && &s[3..5] == b", "
        && digits(5..7)
        && s[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && s[11] == b' '
        && digits(12..16)
        && s[16] == b' '
        && digits(17..19)
        && s[19] == b':'
        && digits(20..22)
        && s[22] == b':'
        && digits(23..25)
        && &s[25..] == b" GMT";
    if ok {
        Ok(())
    } else {
        syntax(0, "SIP-date (RFC 1123, GMT)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        assert_eq!(
            parse_cseq(b"0009\r\n  INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: "INVITE"
            }
        );
        assert_eq!(
            parse_cseq(b"36893488147419103232 INVITE").unwrap_err().1,
            FieldErrorKind::OutOfRange
        );
        assert!(parse_cseq(b"1INVITE").is_err());
        assert!(parse_cseq(b"INVITE").is_err());
        assert!(parse_cseq(b"1 INVITE x").is_err());
    }

    #[test]
    fn misc() {
        assert!(check_call_id(b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{").is_ok());
        assert!(check_call_id(b"a b").is_err());
        assert!(check_call_id(b"a@").is_err());
        assert_eq!(parse_uint(b"0068", 255, false), Ok(68));
        assert_eq!(
            parse_uint(b"300", 255, false).unwrap_err().1,
            FieldErrorKind::OutOfRange
        );
        assert_eq!(
            parse_uint(b"1000000000000000000000000", u64::from(u32::MAX), true),
            Ok(u64::from(u32::MAX))
        );
        let m = parse_media_type(b"multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(m.is("Multipart", "MIXED"));
        assert_eq!(m.params.get_str("boundary"), Some("7a9cbec02ceef655"));
        assert!(check_date(b"Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert!(check_date(b"Fri, 01 Jan 2010 16:00:00 EST").is_err());
        let e = parse_token_params(b"terminated;reason=timeout").unwrap();
        assert_eq!(
            (e.value, e.params.get_str("reason")),
            ("terminated", Some("timeout"))
        );
    }
}
