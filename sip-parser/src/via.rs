//! The Via header (RFC 3261 §20.42, §18.2.1, RFC 3581 `rport`).

use crate::chars::{as_str, is_ws, parse_digits, skip_ws, token_end};
use crate::error::{FieldErrorKind, PResult, syntax};
use crate::params::{Params, parse_params_visit};
use crate::uri::parse_hostport;

/// One Via entry.
///
/// ```
/// let msg = sip_parser::Message::parse_slice(
///     b"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport\r\n\r\n",
/// ).unwrap();
/// let via = msg.top_via().unwrap().unwrap();
/// assert_eq!(via.transport, "UDP");
/// assert_eq!((via.host, via.port), ("192.0.2.1", Some(5060)));
/// assert_eq!(via.branch, Some("z9hG4bK1"));
/// assert_eq!(via.rport, Some(None));
/// assert_eq!(via.raw, b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport");
/// assert_eq!(msg.offset_of(via.raw), Some(40));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name, normally `SIP`.
    pub protocol: &'a str,
    /// Protocol version, normally `2.0`.
    pub version: &'a str,
    /// Transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, …).
    pub transport: &'a str,
    /// sent-by host (IPv6 references keep their brackets).
    pub host: &'a str,
    /// sent-by port.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<&'a str>,
    /// `received` parameter (brackets kept if the sender wrote them, RFC 5118 §4.5).
    pub received: Option<&'a str>,
    /// `rport`: `None` absent, `Some(None)` present without value, `Some(Some(p))` with one.
    pub rport: Option<Option<u16>>,
    /// `maddr` parameter.
    pub maddr: Option<&'a str>,
    /// `ttl` parameter.
    pub ttl: Option<u8>,
    /// Every parameter, known ones included, in order.
    pub params: Params<'a>,
    /// The whole entry as written (LWS around it trimmed): what to copy to keep this Via
    /// byte-exact. [`Message::offset_of`](crate::Message::offset_of) gives its place in
    /// the buffer.
    pub raw: &'a [u8],
}

impl Via<'_> {
    /// True when the branch starts with the RFC 3261 magic cookie `z9hG4bK`.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch.is_some_and(|b| b.starts_with("z9hG4bK"))
    }

    /// The transport, classified (`None` for a name this crate does not know).
    pub fn transport_kind(&self) -> Option<crate::Transport> {
        crate::Transport::parse(self.transport.as_bytes())
    }
}

/// One Via entry (a list item, LWS trimmed).
pub(crate) fn parse_via(s: &[u8]) -> PResult<Via<'_>> {
    let (mut via, end, _) = parse_via_entry(s)?;
    if end != s.len() {
        return syntax(end, "Via (trailing characters)");
    }
    via.raw = s;
    Ok(via)
}

/// The Via entry at the start of `s`, read as far as its grammar goes: the entry (its `raw`
/// ends where the entry does, trailing LWS left out), the index where it stopped (after any
/// LWS that follows it), and whether a parameter value was a `[…]` reference (the one part
/// of an entry that is not checked character by character, see `Message::top_via`).
pub(crate) fn parse_via_entry<'a>(s: &'a [u8]) -> PResult<(Via<'a>, usize, bool)> {
    let mut i = skip_ws(s, 0);
    if i >= s.len() {
        return Err((i, FieldErrorKind::Empty));
    }
    // The sent-protocol's well-known names become static strings (as `method()` does), the
    // rest `&str` slices through one conversion of what follows them.
    let mut parts = [""; 3];
    // The usual sent-protocol starts `SIP/2.0/`: its first two tokens read at once (what the
    // loop below would find), the transport by the loop.
    let mut first = 0;
    if s[i..].starts_with(b"SIP/2.0/") {
        parts[0] = "SIP";
        parts[1] = "2.0";
        i += 7;
        first = 2;
    }
    for (k, part) in parts.iter_mut().enumerate().skip(first) {
        if k > 0 {
            i = skip_ws(s, i);
            if s.get(i) != Some(&b'/') {
                return syntax(i, "Via sent-protocol ('/' expected)");
            }
            i = skip_ws(s, i + 1);
        }
        let e = token_end(s, i);
        if e == i {
            return syntax(i, "Via sent-protocol");
        }
        *part = sent_protocol_str(&s[i..e]);
        i = e;
    }
    let ws = skip_ws(s, i);
    if ws == i {
        return syntax(i, "Via (LWS expected before sent-by)");
    }
    i = ws;
    let rest = &s[i..];
    let text = core::str::from_utf8(rest).ok();
    let (host_end, port, e) = parse_hostport(rest, true).map_err(|(o, k)| (i + o, k))?;
    let host = sub_str(text, rest, 0, host_end);
    i += e;
    let mut via = Via {
        protocol: parts[0],
        version: parts[1],
        transport: parts[2],
        host,
        port,
        branch: None,
        received: None,
        rport: None,
        maddr: None,
        ttl: None,
        params: crate::params::Params::default(),
        raw: s,
    };
    let str_of = |v: &'a [u8]| {
        let at = v.as_ptr() as usize - rest.as_ptr() as usize;
        sub_str(text, rest, at, at + v.len())
    };
    let mut bracketed = false;
    let (params, end) = parse_params_visit(s, i, |name, value| {
        bracketed |= value.is_some_and(|v| v.first() == Some(&b'['));
        match name.len() {
            6 if name.eq_ignore_ascii_case(b"branch") => via.branch = value.map(str_of),
            8 if name.eq_ignore_ascii_case(b"received") => via.received = value.map(str_of),
            5 if name.eq_ignore_ascii_case(b"rport") => {
                via.rport = Some(match value {
                    None => None,
                    Some(pv) => match parse_digits(pv).filter(|&n| n <= 65535) {
                        Some(n) => Some(n as u16),
                        None => return syntax(0, "Via rport"),
                    },
                });
            }
            5 if name.eq_ignore_ascii_case(b"maddr") => via.maddr = value.map(str_of),
            3 if name.eq_ignore_ascii_case(b"ttl") => {
                match value.and_then(parse_digits).filter(|&n| n <= 255) {
                    Some(n) => via.ttl = Some(n as u8),
                    None => return syntax(0, "Via ttl"),
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    via.params = params;
    let mut raw_end = end;
    while raw_end > 0 && is_ws(s[raw_end - 1]) {
        raw_end -= 1;
    }
    via.raw = &s[..raw_end];
    Ok((via, end, bracketed))
}

/// `whole[a..b]` as `&str`, through the one conversion of `whole` when it was UTF-8.
fn sub_str<'a>(text: Option<&'a str>, whole: &'a [u8], a: usize, b: usize) -> &'a str {
    match text {
        Some(t) => t.get(a..b).unwrap_or_default(),
        None => as_str(&whole[a..b]).unwrap_or_default(),
    }
}

/// A sent-protocol token as `&str`: the usual names as static strings, others converted.
fn sent_protocol_str(t: &[u8]) -> &str {
    match t {
        b"SIP" => "SIP",
        b"2.0" => "2.0",
        b"UDP" => "UDP",
        b"TCP" => "TCP",
        b"TLS" => "TLS",
        b"SCTP" => "SCTP",
        b"WS" => "WS",
        b"WSS" => "WSS",
        other => as_str(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_and_spaced() {
        let v = parse_via(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!((v.protocol, v.version, v.transport), ("SIP", "2.0", "UDP"));
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch, Some("390skdjuw"));
        let v = parse_via(b"SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239")
            .unwrap();
        assert_eq!(v.branch, Some("z9hG4bK30239"));
        let v = parse_via(b"SIP/2.0/UDP [2001:db8::9:1]:5070;received=[2001:db8::9:255];branch=z9hG4bKas3-111;rport=5061;ttl=1;maddr=224.2.0.1").unwrap();
        assert_eq!((v.host, v.port), ("[2001:db8::9:1]", Some(5070)));
        assert_eq!(v.received, Some("[2001:db8::9:255]"));
        assert_eq!(v.rport, Some(Some(5061)));
        assert_eq!(v.ttl, Some(1));
        assert_eq!(v.maddr, Some("224.2.0.1"));
        let v = parse_via(b"SIP/2.0/UDP h;received=2001:db8::9:255").unwrap();
        assert_eq!(v.received, Some("2001:db8::9:255"));
    }

    #[test]
    fn rejects() {
        for s in [
            &b"SIP/2.0/UDP 192.0.2.15;;"[..],
            b"",
            b"SIP/2.0 host",
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP host;ttl=300",
            b"SIP/2.0/UDP h x",
        ] {
            assert!(parse_via(s).is_err(), "{}", String::from_utf8_lossy(s));
        }
    }
}
