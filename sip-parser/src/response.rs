//! Building a response to a request (RFC 3261 §8.2.6): what a proxy or registrar needs to
//! answer 100, 400, 401/407, 483, 2xx… without a full UA stack.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::message::Message;
use crate::name::HeaderName;

/// Builds a response from a request: copies every Via, From, To, Call-ID and CSeq field as
/// written (and Timestamp for 100), adds a To tag to non-100 responses whose To has none,
/// and sets Content-Length.
///
/// Without [`to_tag`](Self::to_tag), the tag is derived from the request (Call-ID, From tag,
/// top Via branch), so retransmissions of the same request get the same tag.
///
/// ```
/// use bytes::Bytes;
/// use sip_parser::{Message, ResponseBuilder};
/// let req = Message::parse(Bytes::from_static(
///     b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK9\r\n\
///       To: <sip:bob@example.com>\r\nFrom: <sip:bob@example.com>;tag=77\r\nCall-ID: r1\r\n\
///       CSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n",
/// )).unwrap();
/// let resp = ResponseBuilder::new(&req, 401, "Unauthorized")
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
        }
    }
    /// Uses this To tag (when the request's To has none and status > 100).
    pub fn to_tag(mut self, tag: impl Into<Bytes>) -> Self {
        self.to_tag = Some(tag.into());
        self
    }
    /// Adds a header field.
    pub fn header(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }
    /// Sets a body and its Content-Type.
    pub fn body(mut self, content_type: impl Into<Bytes>, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.into(), body.into()));
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

    fn pieces(&self, mut f: impl FnMut(&[u8])) {
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
        let derived = self.derived_tag();
        let needs_tag = self.status > 100 && req.to().is_ok_and(|t| t.tag().is_none());
        for (i, h) in hs.iter().enumerate() {
            let copy = match h.kind {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => true,
                HeaderName::Timestamp => self.status == 100,
                HeaderName::To => {
                    if needs_tag {
                        f(req.at(h.name));
                        f(b": ");
                        f(req.at(h.value));
                        f(b";tag=");
                        f(self.to_tag.as_deref().unwrap_or(&derived));
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
        self.pieces(|p| out.put_slice(p));
    }

    /// Serialises the response in one allocation.
    pub fn build(&self) -> Bytes {
        let mut len = 0;
        self.pieces(|p| len += p.len());
        let mut out = BytesMut::with_capacity(len);
        self.write_to(&mut out);
        out.freeze()
    }
}
