//! Building requests (RFC 3261 §8.1.1): from scratch ([`RequestBuilder::new`]), and derived
//! from a stored request: the CANCEL of a client INVITE ([`RequestBuilder::cancel`], §9.1) and
//! the ACK of a non-2xx final response ([`RequestBuilder::ack`], §17.1.1.3).
//!
//! The builder borrows every value (from the caller or from the stored [`Message`]) and
//! serialises in one allocation, so a transaction layer can build a CANCEL or ACK on every
//! branch without copying the INVITE.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::chars::trim;
use crate::error::{FieldError, FieldErrorKind};
use crate::list::Split;
use crate::message::Message;
use crate::name::HeaderName;

/// An address header (From / To): the value as written, and a tag to append.
#[derive(Debug, Clone, Copy, Default)]
struct Addr<'a> {
    value: &'a [u8],
    tag: Option<&'a [u8]>,
}

/// Builds a SIP request: `method Request-URI SIP/2.0`, then Via, Route, Max-Forwards, From,
/// To, Call-ID, CSeq, Contact, the extra header fields, Content-Type (with a body) and
/// Content-Length (always), in that order.
///
/// Every value is borrowed and written as given: the caller vouches for its grammar (no CR or
/// LF except as folding). The CSeq method is the request method, so the two always agree.
/// The result parses and passes [`Message::validate`] when a Via, From, To, Call-ID and CSeq
/// were given with well-formed values.
///
/// Setters take `&mut self` and return `&mut Self`: chain them on a builder held in a
/// variable, or on a temporary inside one expression.
///
/// An OPTIONS probe to a next hop (RFC 3261 §11.1):
///
/// ```
/// use sip_parser::{Message, RequestBuilder};
/// let wire = RequestBuilder::new("OPTIONS", "sip:proxy.example.com")
///     .via("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-probe-1")
///     .from("<sip:ping@192.0.2.10>", Some("a73kszlfl"))
///     .to("<sip:proxy.example.com>", None)
///     .call_id("probe-1@192.0.2.10")
///     .cseq(1)
///     .header("Accept", "application/sdp")
///     .build();
/// let m = Message::parse(wire).unwrap();
/// assert!(m.validate().is_ok());
/// assert_eq!(m.method(), Some("OPTIONS"));
/// assert_eq!(m.cseq().unwrap().method, "OPTIONS");
/// assert_eq!(m.max_forwards().unwrap(), Some(70));
/// assert_eq!(m.from().unwrap().tag(), Some("a73kszlfl"));
/// assert_eq!(m.content_length(), Some(0));
/// ```
///
/// A BYE toward one side of a dialog (§15.1.1, built as any in-dialog request, §12.2.1.1):
///
/// ```
/// use sip_parser::{Message, RequestBuilder};
/// let mut bye = RequestBuilder::new("BYE", "sip:bob@192.0.2.4");
/// bye.via("SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-bye-7")
///     .route("<sip:p2.example.com;lr>")
///     .from("<sip:alice@atlanta.example.com>", Some("9fxced76sl"))
///     .to("<sip:bob@biloxi.example.com>", Some("8321234356"))
///     .call_id("3848276298220188511@atlanta.example.com")
///     .cseq(2);
/// let m = Message::parse(bye.build()).unwrap();
/// assert!(m.validate().is_ok());
/// assert_eq!(m.to().unwrap().tag(), Some("8321234356"));
/// assert_eq!(m.routes().count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder<'a> {
    method: &'a str,
    uri: &'a [u8],
    vias: SmallVec<[&'a [u8]; 1]>,
    routes: SmallVec<[&'a [u8]; 2]>,
    max_forwards: u8,
    from: Addr<'a>,
    to: Addr<'a>,
    call_id: &'a [u8],
    cseq: u32,
    contact: Option<&'a [u8]>,
    extra: SmallVec<[(&'a [u8], &'a [u8]); 2]>,
    body: Option<(&'a [u8], &'a [u8])>,
}

impl<'a> RequestBuilder<'a> {
    /// A request with this method (a token) and Request-URI; Max-Forwards 70, CSeq 1, no
    /// header otherwise.
    pub fn new(method: &'a str, request_uri: &'a (impl AsRef<[u8]> + ?Sized)) -> Self {
        Self {
            method,
            uri: request_uri.as_ref(),
            vias: SmallVec::new(),
            routes: SmallVec::new(),
            max_forwards: 70,
            from: Addr::default(),
            to: Addr::default(),
            call_id: &[],
            cseq: 1,
            contact: None,
            extra: SmallVec::new(),
            body: None,
        }
    }

    /// The CANCEL for a client INVITE (RFC 3261 §9.1): the INVITE's Request-URI, Call-ID,
    /// From and To (as written, so no new tag), its CSeq number with the method CANCEL, its
    /// top Via entry only (so the branch is the INVITE's), its Route header fields, and
    /// Max-Forwards 70. Nothing else: in particular no Require or Proxy-Require.
    ///
    /// `invite` is the request as this element sent it on the branch. Fails when it is a
    /// response or lacks a Via, From, To, Call-ID or a usable CSeq. (§9.1 says a CANCEL
    /// SHOULD NOT be sent for a request other than INVITE; that choice is the caller's.)
    ///
    /// ```
    /// use sip_parser::{Message, RequestBuilder};
    /// let invite = Message::parse_slice(
    ///     b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
    ///       Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p1, SIP/2.0/UDP pc33.example.com;branch=z9hG4bK-a\r\n\
    ///       Route: <sip:edge.biloxi.example.com;lr>\r\nMax-Forwards: 69\r\n\
    ///       To: Bob <sip:bob@biloxi.example.com>\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
    ///       Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nProxy-Require: foo\r\n\
    ///       Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    /// ).unwrap();
    /// let cancel = Message::parse(RequestBuilder::cancel(&invite)?.build()).unwrap();
    /// assert!(cancel.validate().is_ok());
    /// assert_eq!(cancel.request_uri(), invite.request_uri());
    /// assert_eq!(cancel.cseq()?.seq, 314159);
    /// assert_eq!(cancel.cseq()?.method, "CANCEL");
    /// assert_eq!(cancel.via().count(), 1);
    /// assert_eq!(cancel.top_via()?.unwrap().branch, Some("z9hG4bK-p1"));
    /// assert_eq!(cancel.to()?, invite.to()?);
    /// assert_eq!(cancel.proxy_require().count(), 0);
    /// assert!(cancel.body().is_empty());
    /// # Ok::<(), sip_parser::FieldError>(())
    /// ```
    pub fn cancel<B: AsRef<[u8]>>(invite: &'a Message<B>) -> Result<Self, FieldError> {
        let mut b = Self::from_request("CANCEL", invite)?;
        b.to.value = field(invite, HeaderName::To)?;
        Ok(b)
    }

    /// The ACK for a non-2xx final response to a client INVITE (RFC 3261 §17.1.1.3): the
    /// INVITE's Request-URI, Call-ID, From, CSeq number (method ACK), top Via entry only and
    /// Route header fields; the To of `response` (with the tag the UAS added); Max-Forwards
    /// 70.
    ///
    /// `response` must be the 300–699 final response: the ACK of a 2xx is a new transaction
    /// built by the UA core from the dialog (§13.2.2.4), with [`RequestBuilder::new`].
    ///
    /// ```
    /// use sip_parser::{Message, RequestBuilder};
    /// // The example of RFC 3261 §17.1.1.3.
    /// let invite = Message::parse_slice(
    ///     b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
    ///       Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKkjshdyff\r\n\
    ///       To: Bob <sip:bob@biloxi.com>\r\nFrom: Alice <sip:alice@atlanta.com>;tag=88sja8x\r\n\
    ///       Max-Forwards: 70\r\nCall-ID: 987asjd97y7atg\r\nCSeq: 986759 INVITE\r\n\r\n",
    /// ).unwrap();
    /// let busy = Message::parse_slice(
    ///     b"SIP/2.0 486 Busy Here\r\n\
    ///       Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKkjshdyff\r\n\
    ///       To: Bob <sip:bob@biloxi.com>;tag=99sa0xk\r\nFrom: Alice <sip:alice@atlanta.com>;tag=88sja8x\r\n\
    ///       Call-ID: 987asjd97y7atg\r\nCSeq: 986759 INVITE\r\nContent-Length: 0\r\n\r\n",
    /// ).unwrap();
    /// let ack = RequestBuilder::ack(&invite, &busy)?.build();
    /// assert_eq!(
    ///     &ack[..],
    ///     b"ACK sip:bob@biloxi.com SIP/2.0\r\n\
    ///       Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKkjshdyff\r\n\
    ///       Max-Forwards: 70\r\n\
    ///       From: Alice <sip:alice@atlanta.com>;tag=88sja8x\r\n\
    ///       To: Bob <sip:bob@biloxi.com>;tag=99sa0xk\r\n\
    ///       Call-ID: 987asjd97y7atg\r\n\
    ///       CSeq: 986759 ACK\r\n\
    ///       Content-Length: 0\r\n\r\n"
    /// );
    /// # Ok::<(), sip_parser::FieldError>(())
    /// ```
    pub fn ack<B: AsRef<[u8]>, C: AsRef<[u8]>>(
        invite: &'a Message<B>,
        response: &'a Message<C>,
    ) -> Result<Self, FieldError> {
        let mut b = Self::from_request("ACK", invite)?;
        b.to.value = field(response, HeaderName::To)?;
        Ok(b)
    }

    /// What CANCEL and ACK share: everything but To.
    fn from_request<B: AsRef<[u8]>>(
        method: &'a str,
        req: &'a Message<B>,
    ) -> Result<Self, FieldError> {
        let uri = req.request_uri().ok_or(FieldError {
            header: "Request-URI",
            offset: 0,
            kind: FieldErrorKind::Missing,
        })?;
        let mut b = Self::new(method, uri);
        b.vias.push(top_via_entry(req)?);
        for r in req.headers_of(HeaderName::Route) {
            b.routes.push(r.value);
        }
        b.from.value = field(req, HeaderName::From)?;
        b.call_id = trim(field(req, HeaderName::CallId)?);
        b.cseq = req.cseq()?.seq;
        Ok(b)
    }

    /// Adds a Via header field value; the first one given is the top Via.
    pub fn via(&mut self, value: &'a (impl AsRef<[u8]> + ?Sized)) -> &mut Self {
        self.vias.push(value.as_ref());
        self
    }

    /// Adds a Route header field (the route set in order, first call first; one value may
    /// list several comma-separated entries).
    pub fn route(&mut self, value: &'a (impl AsRef<[u8]> + ?Sized)) -> &mut Self {
        self.routes.push(value.as_ref());
        self
    }

    /// Sets Max-Forwards (70 unless set, as RFC 3261 §8.1.1.6 recommends).
    pub fn max_forwards(&mut self, hops: u8) -> &mut Self {
        self.max_forwards = hops;
        self
    }

    /// Sets From: the address as written (`"Alice <sip:alice@example.com>"`, header
    /// parameters allowed) and a tag to append as `;tag=…` (`None` when `address` carries it
    /// already or there is none).
    pub fn from(
        &mut self,
        address: &'a (impl AsRef<[u8]> + ?Sized),
        tag: Option<&'a str>,
    ) -> &mut Self {
        self.from = Addr {
            value: address.as_ref(),
            tag: tag.map(str::as_bytes),
        };
        self
    }

    /// Sets To, as [`from`](Self::from) does From (a request outside a dialog has no To tag).
    pub fn to(
        &mut self,
        address: &'a (impl AsRef<[u8]> + ?Sized),
        tag: Option<&'a str>,
    ) -> &mut Self {
        self.to = Addr {
            value: address.as_ref(),
            tag: tag.map(str::as_bytes),
        };
        self
    }

    /// Sets Call-ID.
    pub fn call_id(&mut self, call_id: &'a (impl AsRef<[u8]> + ?Sized)) -> &mut Self {
        self.call_id = call_id.as_ref();
        self
    }

    /// Sets the CSeq sequence number (the CSeq method is always the request method).
    pub fn cseq(&mut self, seq: u32) -> &mut Self {
        self.cseq = seq;
        self
    }

    /// Sets Contact (as written, e.g. `<sip:alice@192.0.2.4>`).
    pub fn contact(&mut self, value: &'a (impl AsRef<[u8]> + ?Sized)) -> &mut Self {
        self.contact = Some(value.as_ref());
        self
    }

    /// Adds a header field after the ones above, in call order.
    pub fn header(
        &mut self,
        name: &'a (impl AsRef<[u8]> + ?Sized),
        value: &'a (impl AsRef<[u8]> + ?Sized),
    ) -> &mut Self {
        self.extra.push((name.as_ref(), value.as_ref()));
        self
    }

    /// Sets a body and its Content-Type.
    pub fn body(
        &mut self,
        content_type: &'a (impl AsRef<[u8]> + ?Sized),
        body: &'a (impl AsRef<[u8]> + ?Sized),
    ) -> &mut Self {
        self.body = Some((content_type.as_ref(), body.as_ref()));
        self
    }

    fn pieces(&self, mut f: impl FnMut(&[u8])) {
        let mut digits = [0u8; 20];
        f(self.method.as_bytes());
        f(b" ");
        f(self.uri);
        f(b" SIP/2.0\r\n");
        for v in &self.vias {
            line(&mut f, b"Via", v);
        }
        for r in &self.routes {
            line(&mut f, b"Route", r);
        }
        line(
            &mut f,
            b"Max-Forwards",
            crate::chars::decimal(u64::from(self.max_forwards), &mut digits),
        );
        for (name, a) in [(&b"From"[..], &self.from), (b"To", &self.to)] {
            f(name);
            f(b": ");
            f(a.value);
            if let Some(tag) = a.tag {
                f(b";tag=");
                f(tag);
            }
            f(b"\r\n");
        }
        line(&mut f, b"Call-ID", self.call_id);
        f(b"CSeq: ");
        f(crate::chars::decimal(u64::from(self.cseq), &mut digits));
        f(b" ");
        f(self.method.as_bytes());
        f(b"\r\n");
        if let Some(c) = self.contact {
            line(&mut f, b"Contact", c);
        }
        for (n, v) in &self.extra {
            line(&mut f, n, v);
        }
        let body: &[u8] = match self.body {
            Some((ct, b)) => {
                line(&mut f, b"Content-Type", ct);
                b
            }
            None => &[],
        };
        line(
            &mut f,
            b"Content-Length",
            crate::chars::decimal(body.len() as u64, &mut digits),
        );
        f(b"\r\n");
        f(body);
    }

    /// Length of the serialised request.
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.pieces(|p| n += p.len());
        n
    }

    /// Always false: a request has at least a request line.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the request into `out`.
    pub fn write_to(&self, out: &mut impl BufMut) {
        self.pieces(|p| out.put_slice(p));
    }

    /// Serialises the request in one allocation.
    pub fn build(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        self.write_to(&mut out);
        out.freeze()
    }
}

fn line(f: &mut impl FnMut(&[u8]), name: &[u8], value: &[u8]) {
    f(name);
    f(b": ");
    f(value);
    f(b"\r\n");
}

/// The value of the first field `name` of `m`, as written.
fn field<B: AsRef<[u8]>>(m: &Message<B>, name: HeaderName) -> Result<&[u8], FieldError> {
    match m.first(name) {
        Some(e) => Ok(m.at(e.value)),
        None => Err(FieldError {
            header: name.as_str().unwrap_or("header"),
            offset: m.layout.headers_end as usize,
            kind: FieldErrorKind::Missing,
        }),
    }
}

/// The top Via entry as written (the first entry of the first Via field).
fn top_via_entry<B: AsRef<[u8]>>(m: &Message<B>) -> Result<&[u8], FieldError> {
    let value = field(m, HeaderName::Via)?;
    match Split::new(value).next() {
        Some((_, entry)) if !entry.is_empty() => Ok(entry),
        _ => Err(FieldError {
            header: "Via",
            offset: value.as_ptr() as usize - m.buf.as_ref().as_ptr() as usize,
            kind: FieldErrorKind::Empty,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        v: SIP/2.0/TCP p1.example.com;branch=z9hG4bK-p1;received=192.0.2.7\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK-a\r\n\
        Route: <sip:p2.example.com;lr>,\r\n <sip:p3.example.com;lr>\r\n\
        Record-Route: <sip:p1.example.com;lr>\r\n\
        Max-Forwards: 69\r\n\
        t: Bob <sip:bob@biloxi.example.com>\r\n\
        f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        i:  a84b4c76e66710 \r\n\
        CSeq: 314159 INVITE\r\n\
        Require: 100rel\r\nProxy-Require: foo\r\n\
        Route: <sip:p4.example.com;lr>\r\n\
        Contact: <sip:alice@pc33.example.com>\r\n\
        Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

    /// RFC 3261 §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From
    /// header fields in the CANCEL request MUST be identical to those in the request being
    /// cancelled, including tags. A CANCEL constructed by a client MUST have only a single
    /// Via header field value matching the top Via value in the request being cancelled.
    /// [...] the method part of the CSeq header field MUST have a value of CANCEL. [...] If
    /// the request being cancelled contains a Route header field, the CANCEL request MUST
    /// include that Route header field's values. [...] The CANCEL request MUST NOT contain
    /// any Require or Proxy-Require header fields."
    #[test]
    fn cancel_follows_section_9_1() {
        let invite = Message::parse_slice(INVITE).unwrap();
        let wire = RequestBuilder::cancel(&invite).unwrap().build();
        let c = Message::parse(wire.clone()).unwrap();
        c.validate().unwrap();
        assert_eq!(c.method(), Some("CANCEL"));
        assert_eq!(c.request_uri(), invite.request_uri());
        assert_eq!(c.call_id(), invite.call_id());
        assert_eq!(c.to().unwrap(), invite.to().unwrap());
        assert_eq!(c.from().unwrap(), invite.from().unwrap());
        assert_eq!(c.cseq().unwrap().seq, 314_159);
        assert_eq!(c.cseq().unwrap().method, "CANCEL");
        let vias: Vec<_> = c.via().map(Result::unwrap).collect();
        assert_eq!(vias.len(), 1);
        assert_eq!(vias[0], invite.top_via().unwrap().unwrap());
        let routes: Vec<_> = c.routes().map(|r| r.unwrap().raw_uri).collect();
        let want: Vec<_> = invite.routes().map(|r| r.unwrap().raw_uri).collect();
        assert_eq!(routes, want);
        assert_eq!(routes.len(), 3);
        assert_eq!(c.require().count() + c.proxy_require().count(), 0);
        assert_eq!(c.record_routes().count() + c.contacts().count(), 0);
        assert!(c.content_type().unwrap().is_none());
        assert_eq!(c.content_length(), Some(0));
        assert_eq!(c.max_forwards().unwrap(), Some(70));
        assert_eq!(wire.len(), RequestBuilder::cancel(&invite).unwrap().len());
    }

    /// RFC 3261 §17.1.1.3: To from the response, a single Via equal to the INVITE's top Via,
    /// the INVITE's Route header fields, CSeq number of the INVITE with method ACK.
    #[test]
    fn ack_follows_section_17_1_1_3() {
        let invite = Message::parse_slice(INVITE).unwrap();
        let resp = Message::parse_slice(
            b"SIP/2.0 404 Not Found\r\n\
              Via: SIP/2.0/TCP p1.example.com;branch=z9hG4bK-p1;received=192.0.2.7\r\n\
              Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK-a\r\n\
              To: Bob <sip:bob@biloxi.example.com>;tag=99sa0xk\r\n\
              From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
              Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let a = Message::parse(RequestBuilder::ack(&invite, &resp).unwrap().build()).unwrap();
        a.validate().unwrap();
        assert_eq!(a.method(), Some("ACK"));
        assert_eq!(a.request_uri(), invite.request_uri());
        assert_eq!(a.to().unwrap().tag(), Some("99sa0xk"));
        assert_eq!(a.from().unwrap(), invite.from().unwrap());
        assert_eq!(a.call_id(), Some("a84b4c76e66710"));
        assert_eq!(
            (a.cseq().unwrap().seq, a.cseq().unwrap().method),
            (314_159, "ACK")
        );
        assert_eq!(a.via().count(), 1);
        assert_eq!(a.top_via().unwrap().unwrap().branch, Some("z9hG4bK-p1"));
        assert_eq!(a.routes().count(), 3);
        assert!(a.body().is_empty());
    }

    #[test]
    fn derived_builders_report_what_is_missing() {
        let resp = Message::parse_slice(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n").unwrap();
        assert_eq!(
            RequestBuilder::cancel(&resp).unwrap_err().header,
            "Request-URI"
        );
        let no_via = Message::parse_slice(
            b"INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        )
        .unwrap();
        let e = RequestBuilder::cancel(&no_via).unwrap_err();
        assert_eq!((e.header, e.kind), ("Via", FieldErrorKind::Missing));
        let empty_via = Message::parse_slice(
            b"INVITE sip:a@b SIP/2.0\r\nVia: ,SIP/2.0/UDP h\r\nTo: <sip:a@b>\r\n\r\n",
        )
        .unwrap();
        let e = RequestBuilder::cancel(&empty_via).unwrap_err();
        assert_eq!(
            (e.header, e.kind, e.offset),
            ("Via", FieldErrorKind::Empty, 29)
        );
        let bad_cseq = Message::parse_slice(
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>\r\nCall-ID: x\r\nCSeq: x INVITE\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            RequestBuilder::cancel(&bad_cseq).unwrap_err().header,
            "CSeq"
        );
    }

    #[test]
    fn extra_headers_and_body_in_order() {
        let mut b = RequestBuilder::new("MESSAGE", "sip:bob@example.com");
        b.via("SIP/2.0/UDP a.example.com;branch=z9hG4bK1")
            .from("<sip:alice@example.com>", Some("t1"))
            .to("<sip:bob@example.com>", None)
            .call_id("m1")
            .cseq(7)
            .max_forwards(10)
            .contact("<sip:alice@192.0.2.1>")
            .header("Subject", "hi")
            .header("X-A", "1")
            .body("text/plain", "hello");
        let wire = b.build();
        assert_eq!(wire.len(), b.len());
        let m = Message::parse(wire).unwrap();
        m.validate().unwrap();
        let names: Vec<_> = m.headers().map(|h| h.name).collect();
        assert_eq!(
            names,
            [
                &b"Via"[..],
                b"Max-Forwards",
                b"From",
                b"To",
                b"Call-ID",
                b"CSeq",
                b"Contact",
                b"Subject",
                b"X-A",
                b"Content-Type",
                b"Content-Length"
            ]
        );
        assert_eq!(m.body(), b"hello");
        assert_eq!(m.max_forwards().unwrap(), Some(10));
    }
}
