//! The core fields parsed once: [`Message::index_core_fields`](crate::Message::index_core_fields)
//! keeps where the parts of To, From, CSeq and the top Via are, so that the accessors a
//! proxy calls many times per message ([`to`](crate::Message::to),
//! [`from`](crate::Message::from), [`cseq`](crate::Message::cseq),
//! [`top_via`](crate::Message::top_via)) rebuild their value from offsets instead of parsing
//! the field again. Only values that parsed are kept: a field that fails is parsed (and its
//! error reported) by the accessor as before.

use crate::chars::as_str;
use crate::frame::Span;
use crate::headers::CSeq;
use crate::name_addr::NameAddr;
use crate::params::Params;
use crate::via::Via;

/// Offsets of the core fields that parsed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CoreIndex {
    pub(crate) to: Option<AddrIndex>,
    pub(crate) from: Option<AddrIndex>,
    pub(crate) cseq: Option<CSeqIndex>,
    pub(crate) top_via: Option<ViaIndex>,
}

/// A text part: where it is in the buffer, or one of the static names the parser maps
/// well-known tokens to (methods, sent-protocol parts), or empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    At(Span),
    Known(&'static str),
}

impl Text {
    fn of(buf: &[u8], s: &str) -> Self {
        match span_in(buf, s.as_bytes()) {
            Some(sp) if !s.is_empty() => Text::At(sp),
            _ => Text::Known(known(s)),
        }
    }
    fn get(self, buf: &[u8]) -> &str {
        match self {
            Text::At(sp) => buf.get(sp.range()).and_then(as_str).unwrap_or_default(),
            Text::Known(s) => s,
        }
    }
    /// The part as a slice of `within` (the text of the span `outer`, converted once),
    /// falling back to converting the part alone.
    fn get_in<'b>(self, buf: &'b [u8], outer: Span, within: Option<&'b str>) -> &'b str {
        match (self, within) {
            (Text::At(sp), Some(t)) if sp.start >= outer.start && sp.end <= outer.end => t
                .get((sp.start - outer.start) as usize..(sp.end - outer.start) as usize)
                .unwrap_or_default(),
            _ => self.get(buf),
        }
    }
}

/// The static strings `method_str` and the Via sent-protocol reader return.
fn known(s: &str) -> &'static str {
    const NAMES: [&str; 22] = [
        "SIP",
        "2.0",
        "UDP",
        "TCP",
        "TLS",
        "SCTP",
        "WS",
        "WSS",
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "REGISTER",
        "OPTIONS",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "INFO",
        "PRACK",
        "UPDATE",
        "PUBLISH",
    ];
    NAMES.iter().find(|n| **n == s).copied().unwrap_or_default()
}

/// Where `part` lies in `buf` (`None` when it is not a slice of it).
fn span_in(buf: &[u8], part: &[u8]) -> Option<Span> {
    let b = buf.as_ptr_range();
    let p = part.as_ptr_range();
    (b.start <= p.start && p.end <= b.end).then(|| {
        let start = p.start as usize - b.start as usize;
        Span::new(start, start + part.len())
    })
}

/// A byte part (empty parts may be static slices outside the buffer: kept as empty).
fn bytes_span(buf: &[u8], part: &[u8]) -> Span {
    span_in(buf, part).unwrap_or_default()
}

fn at(buf: &[u8], sp: Span) -> &[u8] {
    buf.get(sp.range()).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddrIndex {
    display_name: Option<Span>,
    raw_uri: Span,
    bracketed: bool,
    params: Span,
    tag: Option<Span>,
}

impl AddrIndex {
    pub(crate) fn new(buf: &[u8], a: &NameAddr<'_>) -> Self {
        AddrIndex {
            display_name: a.display_name.map(|d| bytes_span(buf, d)),
            raw_uri: bytes_span(buf, a.raw_uri),
            bracketed: a.bracketed,
            params: bytes_span(buf, a.params.raw),
            tag: a.tag_bytes().map(|t| bytes_span(buf, t)),
        }
    }
    pub(crate) fn get(self, buf: &[u8]) -> NameAddr<'_> {
        NameAddr::from_parts(
            self.display_name.map(|d| at(buf, d)),
            at(buf, self.raw_uri),
            self.bracketed,
            Params {
                raw: at(buf, self.params),
            },
            self.tag.map(|t| at(buf, t)),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CSeqIndex {
    seq: u32,
    method: Text,
}

impl CSeqIndex {
    pub(crate) fn new(buf: &[u8], c: &CSeq<'_>) -> Self {
        CSeqIndex {
            seq: c.seq,
            method: Text::of(buf, c.method),
        }
    }
    pub(crate) fn get(self, buf: &[u8]) -> CSeq<'_> {
        CSeq {
            seq: self.seq,
            method: self.method.get(buf),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViaIndex {
    protocol: Text,
    version: Text,
    transport: Text,
    host: Text,
    port: Option<u16>,
    branch: Option<Text>,
    received: Option<Text>,
    #[allow(clippy::option_option, reason = "as `Via::rport`")]
    rport: Option<Option<u16>>,
    maddr: Option<Text>,
    ttl: Option<u8>,
    params: Span,
    raw: Span,
}

impl ViaIndex {
    pub(crate) fn new(buf: &[u8], v: &Via<'_>) -> Self {
        ViaIndex {
            protocol: Text::of(buf, v.protocol),
            version: Text::of(buf, v.version),
            transport: Text::of(buf, v.transport),
            host: Text::of(buf, v.host),
            port: v.port,
            branch: v.branch.map(|s| Text::of(buf, s)),
            received: v.received.map(|s| Text::of(buf, s)),
            rport: v.rport,
            maddr: v.maddr.map(|s| Text::of(buf, s)),
            ttl: v.ttl,
            params: bytes_span(buf, v.params.raw),
            raw: bytes_span(buf, v.raw),
        }
    }
    pub(crate) fn get(self, buf: &[u8]) -> Via<'_> {
        // One UTF-8 check of the whole entry; every part is a slice of it.
        let raw = at(buf, self.raw);
        let text = as_str(raw);
        let s = |t: Text| t.get_in(buf, self.raw, text);
        Via {
            protocol: s(self.protocol),
            version: s(self.version),
            transport: s(self.transport),
            host: s(self.host),
            port: self.port,
            branch: self.branch.map(s),
            received: self.received.map(s),
            rport: self.rport,
            maddr: self.maddr.map(s),
            ttl: self.ttl,
            params: Params {
                raw: at(buf, self.params),
            },
            raw,
        }
    }
}
