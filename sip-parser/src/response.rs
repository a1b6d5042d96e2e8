//! Building a response to a request (RFC 3261 §8.2.6): what a proxy or registrar needs to
//! answer 100, 400, 401/407, 483, 2xx… without a full UA stack.

use core::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::message::Message;
use crate::name::HeaderName;
use crate::via_stamp::ViaStamp;

/// Builds a response from a request: copies every Via, From, To, Call-ID and CSeq field as
/// written (and Timestamp for 100), adds a To tag to non-100 responses whose To has none,
/// and sets Content-Length. [`reason_phrase`](crate::reason_phrase) gives the usual phrase
/// for a status.
///
/// Without [`to_tag`](Self::to_tag), the tag is derived from the request (Call-ID, From tag,
/// top Via branch), so retransmissions of the same request get the same tag.
///
/// Setters take `&mut self`: chain them on a temporary, or keep a builder in a variable and
/// set it in a loop; [`build`](Self::build) borrows it, so one builder can serialise
/// several times.
///
/// ```
/// use bytes::Bytes;
/// use sip_parser::{Message, ResponseBuilder};
/// let req = Message::parse(Bytes::from_static(
///     b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK9\r\n\
///       To: <sip:bob@example.com>\r\nFrom: <sip:bob@example.com>;tag=77\r\nCall-ID: r1\r\n\
///       CSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n",
/// )).unwrap();
/// let resp = ResponseBuilder::new(&req, 401, sip_parser::reason_phrase(401))
///     .header("WWW-Authenticate", r#"Digest realm="example.com", nonce="abc""#)
///     .build();
/// let resp = Message::parse(resp).unwrap();
/// assert_eq!(resp.status(), Some(401));
/// assert_eq!(resp.cseq().unwrap().seq, 2);
/// assert!(resp.to().unwrap().tag().is_some());
/// assert_eq!(resp.www_authenticate().count(), 1);
/// assert!(resp.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'m, B> {
    req: &'m Message<B>,
    status: u16,
    reason: &'m str,
    to_tag: Option<Bytes>,
    extra: SmallVec<[(Bytes, Bytes); 4]>,
    body: Option<(Bytes, Bytes)>,
    record_route: bool,
    via_stamp: Option<ViaStamp>,
}

impl<'m, B: AsRef<[u8]>> ResponseBuilder<'m, B> {
    /// A response with `status` and `reason` to `req`.
    pub fn new(req: &'m Message<B>, status: u16, reason: &'m str) -> Self {
        Self {
            req,
            status,
            reason,
            to_tag: None,
            extra: SmallVec::new(),
            body: None,
            record_route: false,
            via_stamp: None,
        }
    }
    /// Uses this To tag (when the request's To has none and status > 100).
    pub fn to_tag(&mut self, tag: impl Into<Bytes>) -> &mut Self {
        self.to_tag = Some(tag.into());
        self
    }
    /// Adds a header field.
    pub fn header(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        self.extra.push((name.into(), value.into()));
        self
    }
    /// Sets a body and its Content-Type.
    pub fn body(&mut self, content_type: impl Into<Bytes>, body: impl Into<Bytes>) -> &mut Self {
        self.body = Some((content_type.into(), body.into()));
        self
    }

    /// Copies the request's Record-Route fields, in order and as written, into a 101–299
    /// response: what a UAS does for a response that establishes a dialog (RFC 3261
    /// §12.1.1: it "MUST copy all Record-Route header field values from the request into
    /// the response [...] and MUST maintain the order of those values"). Ignored for other
    /// statuses.
    ///
    /// ```
    /// use sip_parser::{Message, ResponseBuilder};
    /// let invite = Message::parse_slice(
    ///     b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP p1.example.com;branch=z9hG4bK2\r\n\
    ///       Record-Route: <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p1.example.com;lr>\r\n\
    ///       To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=9f\r\nCall-ID: c3\r\n\
    ///       CSeq: 1 INVITE\r\n\r\n",
    /// ).unwrap();
    /// let ok = ResponseBuilder::new(&invite, 200, "OK")
    ///     .copy_record_route()
    ///     .header("Contact", "<sip:bob@192.0.2.4>")
    ///     .build();
    /// let ok = Message::parse(ok).unwrap();
    /// let rr: Vec<_> = ok.record_routes().map(|r| r.unwrap().raw_uri).collect();
    /// assert_eq!(rr, [&b"sip:p2.example.com;lr"[..], b"sip:p1.example.com;lr"]);
    /// ```
    pub fn copy_record_route(&mut self) -> &mut Self {
        self.record_route = true;
        self
    }

    /// Fills in the copied top Via as the server transport does on receipt (RFC 3261
    /// §18.2.1, RFC 3581 §4; see [`Editor::fill_via_received`](crate::Editor::fill_via_received)),
    /// for a server that answers without editing the request: the client learns its public
    /// address and port from `received` / `rport`. A top Via that does not parse is copied
    /// as written.
    ///
    /// ```
    /// use sip_parser::{Message, ResponseBuilder};
    /// let reg = Message::parse_slice(
    ///     b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;rport;branch=z9hG4bK5\r\n\
    ///       To: <sip:a@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: r\r\nCSeq: 9 REGISTER\r\n\r\n",
    /// ).unwrap();
    /// let ok = ResponseBuilder::new(&reg, 200, "OK")
    ///     .fill_via_received("203.0.113.9:40312".parse().unwrap())
    ///     .build();
    /// let via = Message::parse(ok).unwrap();
    /// let via = via.top_via().unwrap().unwrap();
    /// assert_eq!((via.received, via.rport), (Some("203.0.113.9"), Some(Some(40312))));
    /// ```
    pub fn fill_via_received(&mut self, source: SocketAddr) -> &mut Self {
        self.via_stamp = self.req.first_index(HeaderName::Via).and_then(|i| {
            let value = self.req.at(self.req.layout.headers[i].value);
            let decide = |via: &crate::Via<'_>| {
                let received = via.needs_received(source.ip()).then(|| source.ip());
                (received, via.rport.map(|_| source.port()))
            };
            ViaStamp::new(i as u16, value, decide).ok().flatten()
        });
        self
    }

    fn derived_tag(&self) -> [u8; 16] {
        // FNV-1a over what identifies the request; deterministic, no RNG needed (no_std).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |s: &[u8]| {
            for &b in s {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        feed(self.req.call_id().unwrap_or("").as_bytes());
        if let Ok(f) = self.req.from() {
            feed(f.tag().unwrap_or("").as_bytes());
        }
        if let Ok(Some(v)) = self.req.top_via() {
            feed(v.branch.unwrap_or("").as_bytes());
        }
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = b"0123456789abcdef"[((h >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }

    /// Whether a To tag must be added, and the derived one (computed only when needed: it
    /// hashes Call-ID, From tag and branch).
    fn tag_plan(&self) -> (bool, [u8; 16]) {
        let needs = self.status > 100 && self.req.to().is_ok_and(|t| t.tag().is_none());
        let derived = if needs && self.to_tag.is_none() {
            self.derived_tag()
        } else {
            [0; 16]
        };
        (needs, derived)
    }

    fn pieces(&self, needs_tag: bool, derived: &[u8; 16], mut f: impl FnMut(&[u8])) {
        let req = self.req;
        let buf = req.buf.as_ref();
        let hs = &req.layout.headers;
        f(b"SIP/2.0 ");
        let code = [
            b'0' + (self.status / 100 % 10) as u8,
            b'0' + (self.status / 10 % 10) as u8,
            b'0' + (self.status % 10) as u8,
        ];
        f(&code);
        f(b" ");
        f(self.reason.as_bytes());
        f(b"\r\n");
        let record_route = self.record_route && (101..300).contains(&self.status);
        for (i, h) in hs.iter().enumerate() {
            let copy = match h.kind {
                HeaderName::Via => {
                    if let Some(st) = self.via_stamp.as_ref().filter(|s| s.field as usize == i) {
                        f(req.at(h.name));
                        f(b": ");
                        st.pieces(req.at(h.value), &mut f);
                        f(b"\r\n");
                        continue;
                    }
                    true
                }
                HeaderName::From | HeaderName::CallId | HeaderName::CSeq => true,
                HeaderName::RecordRoute => record_route,
                HeaderName::Timestamp => self.status == 100,
                HeaderName::To => {
                    if needs_tag {
                        f(req.at(h.name));
                        f(b": ");
                        f(req.at(h.value));
                        f(b";tag=");
                        f(self.to_tag.as_deref().unwrap_or(derived));
                        f(b"\r\n");
                        continue;
                    }
                    true
                }
                _ => false,
            };
            if copy {
                let end = hs
                    .get(i + 1)
                    .map_or(req.layout.headers_end, |n| n.name.start)
                    as usize;
                f(&buf[h.name.start as usize..end]);
            }
        }
        for (n, v) in &self.extra {
            f(n);
            f(b": ");
            f(v);
            f(b"\r\n");
        }
        let body: &[u8] = match &self.body {
            Some((ct, b)) => {
                f(b"Content-Type: ");
                f(ct);
                f(b"\r\n");
                b
            }
            None => &[],
        };
        f(b"Content-Length: ");
        let mut digits = [0u8; 20];
        f(crate::chars::decimal(body.len() as u64, &mut digits));
        f(b"\r\n\r\n");
        f(body);
    }

    /// Writes the response into `out`.
    pub fn write_to(&self, out: &mut impl BufMut) {
        let (needs, derived) = self.tag_plan();
        self.pieces(needs, &derived, |p| out.put_slice(p));
    }

    /// Serialises the response in one allocation.
    pub fn build(&self) -> Bytes {
        let (needs, derived) = self.tag_plan();
        let mut len = 0;
        self.pieces(needs, &derived, |p| len += p.len());
        let mut out = BytesMut::with_capacity(len);
        self.pieces(needs, &derived, |p| out.put_slice(p));
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;rport, SIP/2.0/UDP p0;branch=z9hG4bK0\r\n\
        Record-Route: <sip:p1.example.com;lr>, <sip:p0.example.com;lr>\r\n\
        To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=9f\r\nCall-ID: c3\r\n\
        CSeq: 1 INVITE\r\nTimestamp: 54\r\n\r\n";

    /// RFC 3261 §12.1.1: Record-Route copied, in order, into dialog-establishing responses
    /// (101–299) only.
    #[test]
    fn record_route_only_where_a_dialog_can_be_established() {
        let req = Message::parse_slice(REQ).unwrap();
        for (status, copied) in [
            (100, false),
            (180, true),
            (200, true),
            (299, true),
            (486, false),
        ] {
            let mut b = ResponseBuilder::new(&req, status, crate::reason_phrase(status));
            b.copy_record_route();
            let m = Message::parse(b.build()).unwrap();
            m.validate().unwrap();
            let rr: Vec<_> = m.record_routes().map(|r| r.unwrap().raw_uri).collect();
            if copied {
                assert_eq!(
                    rr,
                    [&b"sip:p1.example.com;lr"[..], b"sip:p0.example.com;lr"]
                );
            } else {
                assert!(rr.is_empty(), "{status}");
            }
            assert_eq!(m.header("Timestamp").is_some(), status == 100);
        }
        let m = Message::parse(ResponseBuilder::new(&req, 200, "OK").build()).unwrap();
        assert_eq!(m.record_routes().count(), 0);
    }

    #[test]
    fn via_received_in_the_response_and_a_reused_builder() {
        let req = Message::parse_slice(REQ).unwrap();
        let mut b = ResponseBuilder::new(&req, 100, "Trying");
        b.fill_via_received("198.51.100.2:7000".parse().unwrap());
        let first = b.build();
        assert_eq!(first, b.build());
        let m = Message::parse(first).unwrap();
        let vias: Vec<_> = m.via().map(|v| v.unwrap().raw).collect();
        assert_eq!(
            vias,
            [
                &b"SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;rport=7000;received=198.51.100.2"[..],
                b"SIP/2.0/UDP p0;branch=z9hG4bK0"
            ]
        );
        // Nothing to fill: the Via is copied as written.
        let plain = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\r\n",
        )
        .unwrap();
        let mut b = ResponseBuilder::new(&plain, 200, "OK");
        b.fill_via_received("192.0.2.1:5060".parse().unwrap());
        let m = Message::parse(b.build()).unwrap();
        assert_eq!(m.header("Via"), plain.header("Via"));
    }
}
