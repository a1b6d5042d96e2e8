//! The editing API a proxy needs (RFC 3261 §16.6): prepend Via, remove the top Via, decrement
//! or insert Max-Forwards, prepend Record-Route, pop Route, rewrite the Request-URI, add /
//! replace / remove headers, set the body. Edits are recorded against the original buffer and
//! applied when serialising, in one allocation; untouched header lines are copied byte-exact.

use core::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::error::{FieldError, FieldErrorKind};

use crate::frame::Start;
use crate::headers::parse_uint;
use crate::list::Split;
use crate::message::Message;
use crate::name::HeaderName;
use crate::via_stamp::ViaStamp;

/// A piece of output: borrowed from the original message, owned, or a short inline number.
#[derive(Debug, Clone)]
enum Val<'m> {
    Borrowed(&'m [u8]),
    Owned(Bytes),
    Inline([u8; 10], u8),
}

impl Val<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Val::Borrowed(s) => s,
            Val::Owned(b) => b,
            Val::Inline(a, n) => &a[..*n as usize],
        }
    }
    fn number(n: u32) -> Self {
        let mut tmp = [0u8; 20];
        let digits = crate::chars::decimal(u64::from(n), &mut tmp);
        let mut out = [0u8; 10];
        out[..digits.len()].copy_from_slice(digits);
        Val::Inline(out, digits.len() as u8)
    }
}

#[derive(Debug, Clone)]
enum Op<'m> {
    Remove,
    Replace(Val<'m>),
}

/// Why Max-Forwards could not be decremented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaxForwardsError {
    /// Max-Forwards is 0: a proxy answers 483 Too Many Hops (OPTIONS aside, §16.3 step 3).
    #[error("Max-Forwards is 0 (483 Too Many Hops)")]
    Zero,
    /// The value is not a number in 0–255.
    #[error("Max-Forwards is malformed")]
    Invalid,
}

/// Records edits to a [`Message`] and serialises the result.
///
/// ```
/// use bytes::Bytes;
/// use sip_parser::Message;
/// let req = Message::parse(Bytes::from_static(
///     b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n\
///       Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nMax-Forwards: 70\r\n\
///       To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: c1\r\n\
///       CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
/// )).unwrap();
/// let mut e = req.edit();
/// assert_eq!(e.pop_route(), Some(&b"<sip:p1.example.com;lr>"[..]));
/// assert_eq!(e.decrement_max_forwards(), Ok(69));
/// e.prepend_via("SIP/2.0/UDP p1.example.com;branch=z9hG4bK2");
/// e.prepend_record_route("<sip:p1.example.com;lr>");
/// let out = Message::parse(e.to_bytes()).unwrap();
/// assert_eq!(out.top_via().unwrap().unwrap().host, "p1.example.com");
/// assert_eq!(out.via().count(), 2);
/// assert_eq!(out.max_forwards().unwrap(), Some(69));
/// assert_eq!(out.routes().count(), 1);
/// assert_eq!(out.record_routes().count(), 1);
/// assert!(out.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Editor<'m, B> {
    msg: &'m Message<B>,
    uri: Option<Val<'m>>,
    ops: SmallVec<[(u16, Op<'m>); 4]>,
    before: SmallVec<[(u16, HeaderName, Val<'m>, Val<'m>); 4]>,
    append: SmallVec<[(Val<'m>, Val<'m>); 2]>,
    body: Option<Bytes>,
    via_stamp: Option<ViaStamp>,
    /// A new request method, and the CSeq field rewritten with it (index, number).
    method: Option<Bytes>,
    cseq: Option<(u16, u32)>,
}

impl<B: AsRef<[u8]>> Message<B> {
    /// Starts editing this message (nothing is copied until [`Editor::to_bytes`]).
    pub fn edit(&self) -> Editor<'_, B> {
        Editor {
            msg: self,
            uri: None,
            ops: SmallVec::new(),
            before: SmallVec::new(),
            append: SmallVec::new(),
            body: None,
            via_stamp: None,
            method: None,
            cseq: None,
        }
    }
}

impl<'m, B: AsRef<[u8]>> Editor<'m, B> {
    fn op(&self, i: usize) -> Option<&Op<'m>> {
        self.ops
            .iter()
            .rev()
            .find(|(k, _)| *k as usize == i)
            .map(|(_, o)| o)
    }
    fn set_op(&mut self, i: usize, op: Op<'m>) {
        // A stamp planned against the field's previous value no longer applies.
        if self
            .via_stamp
            .as_ref()
            .is_some_and(|v| v.field as usize == i)
        {
            self.via_stamp = None;
        }
        if self.cseq.is_some_and(|(k, _)| k as usize == i) {
            self.cseq = None;
        }
        self.ops.retain(|(k, _)| *k as usize != i);
        self.ops.push((i as u16, op));
    }
    /// Current value of header `i`, `None` when removed.
    fn current(&self, i: usize) -> Option<Val<'m>> {
        match self.op(i) {
            Some(Op::Remove) => None,
            Some(Op::Replace(v)) => Some(v.clone()),
            None => Some(Val::Borrowed(self.msg.at(self.msg.layout.headers[i].value))),
        }
    }
    fn first_live(&self, kind: HeaderName) -> Option<(usize, Val<'m>)> {
        let hs = &self.msg.layout.headers;
        (0..hs.len())
            .filter(|&i| hs[i].kind == kind)
            .find_map(|i| self.current(i).map(|v| (i, v)))
    }

    /// Removes the first entry of the first live field of `kind`, returning it.
    fn shift_entry(&mut self, kind: HeaderName) -> Option<Val<'m>> {
        let (i, v) = self.first_live(kind)?;
        let s = v.as_slice();
        let mut it = Split::new(s);
        let (a, first) = it.next()?;
        let (first_range, rest) = (a..a + first.len(), it.next().map(|(b, _)| b));
        let taken = sub(&v, first_range);
        match rest {
            Some(b) => {
                let r = sub(&v, b..s.len());
                self.set_op(i, Op::Replace(r));
            }
            None => self.set_op(i, Op::Remove),
        }
        Some(taken)
    }

    /// Rewrites the Request-URI (requests only; ignored for responses).
    pub fn set_request_uri(&mut self, uri: impl Into<Bytes>) -> &mut Self {
        self.uri = Some(Val::Owned(uri.into()));
        self
    }

    /// Changes the request method (requests only; ignored for responses), and the method of
    /// CSeq with it, keeping the sequence number, since the two must agree (RFC 3261
    /// §8.1.1.5; `validate()` refuses a mismatch). `method` must be a token. A CSeq that does
    /// not parse is left alone; to change the number too, call
    /// [`replace_header`](Self::replace_header)`("CSeq", …)` afterwards.
    ///
    /// For the CANCEL and ACK of an INVITE, which must also drop headers, use
    /// [`RequestBuilder::cancel`](crate::RequestBuilder::cancel) and
    /// [`RequestBuilder::ack`](crate::RequestBuilder::ack) instead.
    ///
    /// ```
    /// use sip_parser::Message;
    /// let req = Message::parse_slice(
    ///     b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
    ///       To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
    ///       Call-ID: c\r\nCSeq: 4711 INVITE\r\n\r\n",
    /// ).unwrap();
    /// let mut e = req.edit();
    /// e.set_method("OPTIONS");
    /// let out = Message::parse(e.to_bytes()).unwrap();
    /// assert_eq!(out.method(), Some("OPTIONS"));
    /// assert_eq!((out.cseq().unwrap().seq, out.cseq().unwrap().method), (4711, "OPTIONS"));
    /// assert!(out.validate().is_ok());
    /// ```
    pub fn set_method(&mut self, method: impl Into<Bytes>) -> &mut Self {
        if !self.msg.is_request() {
            return self;
        }
        self.method = Some(method.into());
        self.cseq = self.first_live(HeaderName::CSeq).and_then(|(i, v)| {
            crate::headers::parse_cseq(v.as_slice())
                .ok()
                .map(|c| (i as u16, c.seq))
        });
        self
    }

    /// Inserts `Via: value` above every existing Via.
    pub fn prepend_via(&mut self, value: impl Into<Bytes>) -> &mut Self {
        self.insert_first(Val::Borrowed(b"Via"), value.into(), true);
        self
    }

    /// Inserts `Record-Route: value` above every existing Record-Route (or at the end of the
    /// header section when there is none).
    pub fn prepend_record_route(&mut self, value: impl Into<Bytes>) -> &mut Self {
        self.insert_first(Val::Borrowed(b"Record-Route"), value.into(), false);
        self
    }

    /// Inserts `name: value` above every existing field of that name (compact forms
    /// included), or at the top of the header section when there is none: what RFC 3327
    /// §5.2 asks of a proxy adding its Path (and what any list header whose first value
    /// matters needs). Later prepends go above earlier ones.
    ///
    /// ```
    /// use sip_parser::Message;
    /// let reg = Message::parse_slice(
    ///     b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
    ///       Path: <sip:edge2.example.com;lr>\r\nSupported: path\r\n\r\n",
    /// ).unwrap();
    /// let mut e = reg.edit();
    /// e.prepend_header("Path", "<sip:edge1.example.com;lr>");
    /// let out = Message::parse(e.to_bytes()).unwrap();
    /// let paths: Vec<_> = out.paths().map(|p| p.unwrap().raw_uri).collect();
    /// assert_eq!(paths, [&b"sip:edge1.example.com;lr"[..], b"sip:edge2.example.com;lr"]);
    /// ```
    pub fn prepend_header(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        self.insert_first(Val::Owned(name.into()), value.into(), true);
        self
    }

    /// Inserts above the first field named `name`; when there is none, at the top of the
    /// header section (`top`) or at its end.
    fn insert_first(&mut self, name: Val<'m>, value: Bytes, top: bool) {
        let hs = &self.msg.layout.headers;
        let n = name.as_slice();
        let kind = HeaderName::classify(n);
        let found = hs
            .iter()
            .position(|h| HeaderName::names_field(kind, n, h.kind, self.msg.at(h.name)));
        match found {
            Some(i) => {
                // Later prepends go above earlier ones.
                let at = self
                    .before
                    .iter()
                    .position(|(k, ..)| *k as usize == i)
                    .unwrap_or(self.before.len());
                self.before
                    .insert(at, (i as u16, kind, name, Val::Owned(value)));
            }
            None if top && !hs.is_empty() => {
                self.before.insert(0, (0, kind, name, Val::Owned(value)));
            }
            None => {
                // Appended at the end, but later prepends still go above earlier ones.
                let at = self
                    .append
                    .iter()
                    .position(|(m, _)| {
                        let m = m.as_slice();
                        HeaderName::names_field(kind, n, HeaderName::classify(m), m)
                    })
                    .unwrap_or(self.append.len());
                self.append.insert(at, (name, Val::Owned(value)));
            }
        }
    }

    /// Removes the topmost Via entry (what a proxy does to a response before forwarding it;
    /// a Via this editor prepended counts as the topmost). Returns `false` when there was none.
    pub fn remove_top_via(&mut self) -> bool {
        if let Some(at) = self
            .before
            .iter()
            .position(|(_, k, ..)| *k == HeaderName::Via)
        {
            self.before.remove(at);
            return true;
        }
        self.shift_entry(HeaderName::Via).is_some()
    }

    /// Fills in the top Via of a received request as the server transport must (RFC 3261
    /// §18.2.1, RFC 3581 §4), `source` being where the packet came from: adds (or replaces)
    /// `received=<source IP>` when the sent-by host is a domain name or another IP, or when
    /// the Via has `rport`; and sets `rport=<source port>` when the Via has `rport`. Returns
    /// whether anything was set.
    ///
    /// The top Via is the first entry of the original message's Via fields (not one added
    /// by [`prepend_via`](Self::prepend_via)); the rest of the field is copied byte-exact and
    /// nothing is allocated. Fails when that entry is missing or does not parse.
    ///
    /// ```
    /// use sip_parser::Message;
    /// // The example of RFC 3581 §4: a request from 192.0.2.1:9988.
    /// let req = Message::parse_slice(
    ///     b"INVITE sip:user@domain.com SIP/2.0\r\n\
    ///       Via: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff\r\n\r\n",
    /// ).unwrap();
    /// let mut e = req.edit();
    /// assert_eq!(e.fill_via_received("192.0.2.1:9988".parse().unwrap()), Ok(true));
    /// let out = Message::parse(e.to_bytes()).unwrap();
    /// assert_eq!(
    ///     out.header("Via"),
    ///     Some(&b"SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1"[..])
    /// );
    /// ```
    pub fn fill_via_received(&mut self, source: SocketAddr) -> Result<bool, FieldError> {
        self.stamp_via(|via| {
            let received = via.needs_received(source.ip()).then(|| source.ip());
            (received, via.rport.map(|_| source.port()))
        })
    }

    /// Sets `received` and / or `rport` on the top Via (see
    /// [`fill_via_received`](Self::fill_via_received) for which entry), whatever its sent-by:
    /// each `Some` replaces the parameter's value, fills a valueless one, or appends it. What
    /// a proxy uses to force `rport` for a client that did not ask (NAT traversal). Earlier
    /// values set this way are kept unless replaced.
    ///
    /// ```
    /// use sip_parser::Message;
    /// let req = Message::parse_slice(
    ///     b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7;branch=z9hG4bK1\r\n\r\n",
    /// ).unwrap();
    /// let mut e = req.edit();
    /// e.set_via_received(Some("203.0.113.9".parse().unwrap()), Some(40312)).unwrap();
    /// let out = Message::parse(e.to_bytes()).unwrap();
    /// let via = out.top_via().unwrap().unwrap();
    /// assert_eq!((via.received, via.rport), (Some("203.0.113.9"), Some(Some(40312))));
    /// ```
    pub fn set_via_received(
        &mut self,
        received: Option<IpAddr>,
        rport: Option<u16>,
    ) -> Result<(), FieldError> {
        self.stamp_via(|_| (received, rport)).map(|_| ())
    }

    /// Plans a Via stamp on the top Via: `decide` says what to set from the parsed entry;
    /// values of an earlier stamp on the same field are kept unless replaced.
    fn stamp_via(
        &mut self,
        decide: impl FnOnce(&crate::Via<'_>) -> (Option<IpAddr>, Option<u16>),
    ) -> Result<bool, FieldError> {
        let (i, value) = self.top_via_field()?;
        let old = match &self.via_stamp {
            Some(old) if old.field as usize == i => (old.received, old.rport),
            _ => (None, None),
        };
        let mut changed = false;
        // The message's indexed top Via, when this field is still the original first one.
        let parsed = match value {
            Val::Borrowed(v)
                if self.msg.first_index(HeaderName::Via) == Some(i)
                    && core::ptr::eq(v, self.msg.at(self.msg.layout.headers[i].value)) =>
            {
                self.msg
                    .layout
                    .index
                    .as_ref()
                    .and_then(|x| x.top_via)
                    .map(|t| t.get(self.msg.buf.as_ref()))
            }
            _ => None,
        };
        let stamp = ViaStamp::new_parsed(i as u16, value.as_slice(), parsed, |via| {
            let (received, rport) = decide(via);
            changed = received.is_some() || rport.is_some();
            (received.or(old.0), rport.or(old.1))
        })
        .map_err(|(o, kind)| self.via_error(i, o, kind))?;
        if stamp.is_some() {
            self.via_stamp = stamp;
        }
        Ok(changed)
    }

    /// The first live Via field of the original message and its current value.
    fn top_via_field(&self) -> Result<(usize, Val<'m>), FieldError> {
        self.first_live(HeaderName::Via).ok_or(FieldError {
            header: "Via",
            offset: self.msg.layout.headers_end as usize,
            kind: FieldErrorKind::Missing,
        })
    }

    fn via_error(&self, i: usize, o: usize, kind: FieldErrorKind) -> FieldError {
        FieldError {
            header: "Via",
            offset: self.msg.layout.headers[i].value.start as usize + o,
            kind,
        }
    }

    /// Removes the topmost Route entry of the original message and returns it as written
    /// (loose routing, §16.4); `None` when no Route entry is left.
    pub fn pop_route(&mut self) -> Option<&'m [u8]> {
        match self.shift_entry(HeaderName::Route)? {
            Val::Borrowed(s) => Some(s),
            // Route values are only ever original or slices of them.
            Val::Owned(_) | Val::Inline(..) => Some(&[]),
        }
    }

    /// Removes the last Route entry of the original message and returns it as written: the
    /// strict-router rewrite of RFC 3261 §16.4 ("replace the Request-URI in the request with
    /// the last value from the Route header field, and remove that value"), done when the
    /// Request-URI is one this proxy put in a Record-Route. `None` when no Route entry is
    /// left.
    ///
    /// ```
    /// use sip_parser::{Message, NameAddr};
    /// // From a strict router: the Request-URI is our Record-Route URI.
    /// let req = Message::parse(bytes::Bytes::from_static(
    ///     b"BYE sip:proxy.example.com;lr SIP/2.0\r\nVia: SIP/2.0/UDP sr.example.net;branch=z9hG4bK1\r\n\
    ///       Route: <sip:p2.example.com;lr>, <sip:bob@192.0.2.4>\r\n\r\n",
    /// )).unwrap();
    /// let mut e = req.edit();
    /// let last = e.pop_last_route().unwrap();
    /// let uri = NameAddr::parse(last).unwrap().raw_uri;
    /// e.set_request_uri(req.bytes_of(uri)); // zero-copy
    /// let out = Message::parse(e.to_bytes()).unwrap();
    /// assert_eq!(out.request_uri(), Some(&b"sip:bob@192.0.2.4"[..]));
    /// assert_eq!(out.routes().count(), 1);
    /// ```
    pub fn pop_last_route(&mut self) -> Option<&'m [u8]> {
        let hs = &self.msg.layout.headers;
        let (i, v) = (0..hs.len())
            .rev()
            .filter(|&i| hs[i].kind == HeaderName::Route)
            .find_map(|i| self.current(i).map(|v| (i, v)))?;
        let s = v.as_slice();
        let mut prev_end = None;
        let mut last: Option<(usize, &[u8])> = None;
        for (o, item) in Split::new(s) {
            if let Some((lo, litem)) = last {
                prev_end = Some(lo + litem.len());
            }
            last = Some((o, item));
        }
        let (o, item) = last?;
        let taken = sub(&v, o..o + item.len());
        match prev_end {
            Some(e) => self.set_op(i, Op::Replace(sub(&v, 0..e))),
            None => self.set_op(i, Op::Remove),
        }
        match taken {
            Val::Borrowed(s) => Some(s),
            // Route values are only ever original or slices of them.
            Val::Owned(_) | Val::Inline(..) => Some(&[]),
        }
    }

    /// Decrements Max-Forwards, or inserts `Max-Forwards: 70` when absent (RFC 3261 §16.6
    /// step 3). Returns the new value.
    pub fn decrement_max_forwards(&mut self) -> Result<u8, MaxForwardsError> {
        match self.first_live(HeaderName::MaxForwards) {
            None => {
                self.append
                    .push((Val::Borrowed(b"Max-Forwards"), Val::number(70)));
                Ok(70)
            }
            Some((i, v)) => {
                let n =
                    parse_uint(v.as_slice(), 255, false).map_err(|_| MaxForwardsError::Invalid)?;
                if n == 0 {
                    return Err(MaxForwardsError::Zero);
                }
                let n = (n - 1) as u8;
                self.set_op(i, Op::Replace(Val::number(u32::from(n))));
                Ok(n)
            }
        }
    }

    /// Appends a header field at the end of the header section.
    pub fn add_header(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        self.append
            .push((Val::Owned(name.into()), Val::Owned(value.into())));
        self
    }

    /// Removes every field named `name` (compact forms included); returns how many.
    pub fn remove_header(&mut self, name: &str) -> usize {
        let idx: SmallVec<[usize; 4]> = self.matching(name).collect();
        for &i in &idx {
            self.set_op(i, Op::Remove);
        }
        idx.len()
    }

    /// Replaces the value of the first field named `name` and removes the others; appends the
    /// field when absent.
    pub fn replace_header(&mut self, name: &str, value: impl Into<Bytes>) -> &mut Self {
        let idx: SmallVec<[usize; 4]> = self.matching(name).collect();
        let value = Val::Owned(value.into());
        // Fields appended by earlier edits count too.
        let kind = HeaderName::classify(name.as_bytes());
        self.append.retain(|(n, _)| {
            let n = n.as_slice();
            !HeaderName::names_field(kind, name.as_bytes(), HeaderName::classify(n), n)
        });
        match idx.split_first() {
            None => self
                .append
                .push((Val::Owned(Bytes::copy_from_slice(name.as_bytes())), value)),
            Some((&first, rest)) => {
                self.set_op(first, Op::Replace(value));
                for &i in rest {
                    self.set_op(i, Op::Remove);
                }
            }
        }
        self
    }

    /// Removes every field named `name` whose current value satisfies `remove`, and returns
    /// how many: one credential out of several (RFC 3261 §22.3: a proxy removes the
    /// Proxy-Authorization for its own realm and forwards the others), one header value
    /// chosen by content or, counting calls, by position. Fields added by this editor are
    /// not visited.
    ///
    /// ```
    /// use sip_parser::{AuthValue, Message};
    /// let req = Message::parse_slice(
    ///     b"INVITE sip:bob@example.com SIP/2.0\r\n\
    ///       Proxy-Authorization: Digest username=\"a\", realm=\"upstream.example.net\"\r\n\
    ///       Proxy-Authorization: Digest username=\"a\", realm=\"example.com\"\r\n\r\n",
    /// ).unwrap();
    /// let mut e = req.edit();
    /// let ours = |v: &[u8]| AuthValue::parse(v).is_ok_and(|a| a.param("realm") == Some("example.com"));
    /// assert_eq!(e.remove_header_if("Proxy-Authorization", ours), 1);
    /// let out = Message::parse(e.to_bytes()).unwrap();
    /// let left: Vec<_> = out.proxy_authorization().map(|a| a.unwrap().param("realm")).collect();
    /// assert_eq!(left, [Some("upstream.example.net")]);
    /// ```
    pub fn remove_header_if(&mut self, name: &str, mut remove: impl FnMut(&[u8]) -> bool) -> usize {
        let idx: SmallVec<[usize; 4]> = self.matching(name).collect();
        let mut n = 0;
        for i in idx {
            if self.current(i).is_some_and(|v| remove(v.as_slice())) {
                self.set_op(i, Op::Remove);
                n += 1;
            }
        }
        n
    }

    fn matching<'s>(&'s self, name: &'s str) -> impl Iterator<Item = usize> + 's {
        let kind = HeaderName::classify(name.as_bytes());
        let hs = &self.msg.layout.headers;
        (0..hs.len()).filter(move |&i| {
            HeaderName::names_field(kind, name.as_bytes(), hs[i].kind, self.msg.at(hs[i].name))
        })
    }

    /// Replaces the body; Content-Length is rewritten to match, and Content-Type set when
    /// given (removed when the body is empty and no type is given).
    pub fn set_body(
        &mut self,
        body: impl Into<Bytes>,
        content_type: Option<&'static str>,
    ) -> &mut Self {
        let body = body.into();
        match content_type {
            Some(ct) => {
                self.replace_header("Content-Type", ct);
            }
            None if body.is_empty() => {
                self.remove_header("Content-Type");
            }
            None => {}
        }
        self.body = Some(body);
        self
    }

    /// True when field `i` is written from a Via stamp or a CSeq method change.
    fn rewrites(&self, i: usize) -> bool {
        self.via_stamp
            .as_ref()
            .is_some_and(|st| st.field as usize == i)
            || self.cseq.is_some_and(|(k, _)| k as usize == i)
    }

    /// Writes field `i` with its current `value`, applying a Via stamp or CSeq rewrite.
    fn field_line(&self, f: &mut impl FnMut(&[u8]), i: usize, name: &[u8], value: &[u8]) {
        f(name);
        f(b": ");
        match (&self.via_stamp, self.cseq) {
            (Some(st), _) if st.field as usize == i => st.pieces(value, f),
            (_, Some((k, seq))) if k as usize == i => {
                let mut digits = [0u8; 20];
                f(crate::chars::decimal(u64::from(seq), &mut digits));
                f(b" ");
                f(self.method.as_deref().unwrap_or_default());
            }
            _ => f(value),
        }
        f(b"\r\n");
    }

    /// Visits every output piece in order.
    fn pieces<F: FnMut(&[u8])>(&self, mut f: F) {
        let m = self.msg;
        let buf = m.buf.as_ref();
        let body: &[u8] = self.body.as_deref().unwrap_or_else(|| m.body());
        match m.layout.start {
            Start::Request {
                method,
                uri,
                version,
                ..
            } if self.uri.is_some() || self.method.is_some() => {
                f(self.method.as_deref().unwrap_or_else(|| m.at(method)));
                f(b" ");
                f(self.uri.as_ref().map_or_else(|| m.at(uri), Val::as_slice));
                f(b" ");
                f(m.at(version));
                f(b"\r\n");
            }
            _ => f(&buf[m.layout.msg_start as usize..m.layout.headers_start as usize]),
        }
        let hs = &m.layout.headers;
        let mut cl_written = false;
        let cl_val = Val::number(body.len() as u32);
        // Fields left as they are go out as one slice per run of them (from the start of
        // the run's first field to the start of the next field written otherwise).
        let mut run: Option<usize> = None;
        let flush = |f: &mut F, run: &mut Option<usize>, end: usize| {
            if let Some(start) = run.take() {
                f(&buf[start..end]);
            }
        };
        for (i, h) in hs.iter().enumerate() {
            let at = h.name.start as usize;
            let mut before = self.before.iter().filter(|(k, ..)| *k as usize == i);
            if let Some((_, _, n, v)) = before.next() {
                flush(&mut f, &mut run, at);
                line(&mut f, n.as_slice(), v.as_slice());
                for (_, _, n, v) in before {
                    line(&mut f, n.as_slice(), v.as_slice());
                }
            }
            if self.body.is_some() && h.kind == HeaderName::ContentLength {
                flush(&mut f, &mut run, at);
                if !cl_written {
                    line(&mut f, m.at(h.name), cl_val.as_slice());
                    cl_written = true;
                }
                continue;
            }
            match self.op(i) {
                Some(Op::Remove) => flush(&mut f, &mut run, at),
                Some(Op::Replace(v)) => {
                    flush(&mut f, &mut run, at);
                    self.field_line(&mut f, i, m.at(h.name), v.as_slice());
                }
                None if self.rewrites(i) => {
                    flush(&mut f, &mut run, at);
                    self.field_line(&mut f, i, m.at(h.name), m.at(h.value));
                }
                None => {
                    run.get_or_insert(at);
                }
            }
        }
        flush(&mut f, &mut run, m.layout.headers_end as usize);
        for (n, v) in &self.append {
            line(&mut f, n.as_slice(), v.as_slice());
        }
        if self.body.is_some() && !cl_written {
            line(&mut f, b"Content-Length", cl_val.as_slice());
        }
        f(&buf[m.layout.headers_end as usize..m.layout.body.start as usize]);
        f(body);
    }

    /// Length of the serialised message.
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.pieces(|p| n += p.len());
        n
    }

    /// True when the output would be empty (never, for a framed message).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the edited message into `out`.
    pub fn write_to(&self, out: &mut impl BufMut) {
        self.pieces(|p| out.put_slice(p));
    }

    /// Serialises the edited message in one allocation.
    pub fn to_bytes(&self) -> Bytes {
        // One pass over the pieces into a buffer sized from above (what `len` would count
        // exactly costs a second pass).
        let mut out = BytesMut::with_capacity(self.size_bound());
        self.write_to(&mut out);
        out.freeze()
    }

    /// At least [`len`](Self::len) (else the buffer grows once): the original message plus
    /// everything the edits add (a replaced field's `: ` and CRLF may be longer than the
    /// original's by 4 bytes; a Via stamp, a CSeq rewrite and a new Content-Length are
    /// short: 128 bytes cover them).
    fn size_bound(&self) -> usize {
        let line = |n: &Val<'_>, v: &Val<'_>| n.as_slice().len() + v.as_slice().len() + 4;
        let m = self.msg;
        let mut n = m.buf.as_ref().len() + 128;
        n += self.uri.as_ref().map_or(0, |u| u.as_slice().len());
        n += self.method.as_ref().map_or(0, |b| 2 * b.len());
        n += self.body.as_ref().map_or(0, Bytes::len);
        n += self
            .ops
            .iter()
            .map(|(_, o)| match o {
                Op::Remove => 0,
                Op::Replace(v) => v.as_slice().len() + 4,
            })
            .sum::<usize>();
        n += self
            .before
            .iter()
            .map(|(_, _, k, v)| line(k, v))
            .sum::<usize>();
        n += self.append.iter().map(|(k, v)| line(k, v)).sum::<usize>();
        n
    }
}

fn line(f: &mut impl FnMut(&[u8]), name: &[u8], value: &[u8]) {
    f(name);
    f(b": ");
    f(value);
    f(b"\r\n");
}

fn sub<'m>(v: &Val<'m>, r: core::ops::Range<usize>) -> Val<'m> {
    match v {
        Val::Borrowed(s) => Val::Borrowed(&s[r]),
        Val::Owned(b) => Val::Owned(b.slice(r)),
        Val::Inline(a, _) => {
            let mut out = [0u8; 10];
            let len = r.len();
            out[..len].copy_from_slice(&a[r]);
            Val::Inline(out, len as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Message;

    const REQ: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
        Via:  SIP/2.0/UDP pc33.example.com;rport;branch=z9hG4bK1 ,\r\n SIP/2.0/UDP p0;branch=z9hG4bK0\r\n\
        Via: SIP/2.0/UDP p9;branch=z9hG4bK9\r\n\
        To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
        Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    fn vias(wire: bytes::Bytes) -> Vec<String> {
        let m = Message::parse(wire).unwrap();
        m.validate().unwrap();
        m.via()
            .map(|v| String::from_utf8(v.unwrap().raw.to_vec()).unwrap())
            .collect()
    }

    /// `to_bytes` sizes its buffer from `size_bound` in one pass: the bound must hold for
    /// every kind of edit, on compact and unfolded fields alike (else the buffer regrows).
    #[test]
    fn size_bound_covers_every_edit() {
        let m = Message::parse_slice(
            b"OPTIONS sip:b@h SIP/2.0\r\nv:SIP/2.0/UDP h;rport;branch=z9hG4bK1\r\nMax-Forwards:9\r\n\
              i:c\r\nCSeq:1 OPTIONS\r\nRoute:<sip:r1;lr>,<sip:r2;lr>\r\nl:0\r\n\r\n",
        )
        .unwrap();
        let mut e = m.edit();
        assert!(e.size_bound() >= e.len());
        e.set_via_received(
            Some("2001:db8::ffff:ffff:ffff:ffff".parse().unwrap()),
            Some(65535),
        )
        .unwrap();
        e.decrement_max_forwards().unwrap();
        e.pop_route();
        e.set_method("SUBSCRIBE");
        e.set_request_uri("sip:someone.else@example.com:5080;transport=tcp");
        e.prepend_via("SIP/2.0/UDP p;branch=z9hG4bK2");
        e.prepend_record_route("<sip:p;lr>");
        e.replace_header("Call-ID", "a-much-longer-call-id@example.com");
        e.add_header("X-After", "1");
        e.set_body(bytes::Bytes::from_static(b"hello"), Some("text/plain"));
        let out = e.to_bytes();
        assert!(
            e.size_bound() >= e.len(),
            "{} < {}",
            e.size_bound(),
            e.len()
        );
        assert_eq!(out.len(), e.len());
        Message::parse(out).unwrap();
    }

    /// RFC 3261 §18.2.1 / RFC 3581 §4 on the first entry only; every other Via byte-exact.
    #[test]
    fn later_prepends_go_on_top_even_without_an_existing_field() {
        // A proxy with two interfaces adds two Record-Route values to a request that had
        // none: the one added last must be the topmost (RFC 3261 §16.6 step 4).
        let m = Message::parse_slice(
            b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let mut e = m.edit();
        e.prepend_record_route("<sip:first;lr>");
        e.prepend_record_route("<sip:second;lr>");
        e.add_header("X-After", "1");
        let out = Message::parse(e.to_bytes()).unwrap();
        let rr: alloc::vec::Vec<_> = out.record_routes().map(|r| r.unwrap().raw_uri).collect();
        assert_eq!(rr, [&b"sip:second;lr"[..], b"sip:first;lr"]);
    }

    #[test]
    fn via_received_touches_the_top_entry_only() {
        let m = Message::parse_slice(REQ).unwrap();
        let mut e = m.edit();
        assert_eq!(
            e.fill_via_received("192.0.2.4:5066".parse().unwrap()),
            Ok(true)
        );
        assert_eq!(
            vias(e.to_bytes()),
            [
                "SIP/2.0/UDP pc33.example.com;rport=5066;branch=z9hG4bK1;received=192.0.2.4",
                "SIP/2.0/UDP p0;branch=z9hG4bK0",
                "SIP/2.0/UDP p9;branch=z9hG4bK9"
            ]
        );
        assert_eq!(e.len(), e.to_bytes().len());
        // A Via prepended afterwards goes on top; the stamp stays on the received one.
        e.prepend_via("SIP/2.0/UDP proxy;branch=z9hG4bKp");
        let v = vias(e.to_bytes());
        assert_eq!(v[0], "SIP/2.0/UDP proxy;branch=z9hG4bKp");
        assert!(v[1].ends_with(";received=192.0.2.4"));
        // Removing the prepended Via, then the stamped one: the stamp goes with it.
        assert!(e.remove_top_via());
        assert!(e.remove_top_via());
        assert_eq!(
            vias(e.to_bytes()),
            [
                "SIP/2.0/UDP p0;branch=z9hG4bK0",
                "SIP/2.0/UDP p9;branch=z9hG4bK9"
            ]
        );
        // Now the top Via is p0: stamping works on the edited field value.
        e.set_via_received(None, Some(1)).unwrap();
        assert_eq!(
            vias(e.to_bytes())[0],
            "SIP/2.0/UDP p0;branch=z9hG4bK0;rport=1"
        );
        e.set_via_received(Some("2001:db8::7".parse().unwrap()), None)
            .unwrap();
        assert_eq!(
            vias(e.to_bytes())[0],
            "SIP/2.0/UDP p0;branch=z9hG4bK0;received=2001:db8::7;rport=1"
        );
    }

    #[test]
    fn via_received_when_nothing_is_needed_or_possible() {
        let m = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1\r\n\r\n",
        )
        .unwrap();
        let mut e = m.edit();
        assert_eq!(
            e.fill_via_received("192.0.2.4:5060".parse().unwrap()),
            Ok(false)
        );
        assert_eq!(&e.to_bytes()[..], m.as_wire());
        let m = Message::parse_slice(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0 h\r\n\r\n").unwrap();
        let err = m
            .edit()
            .fill_via_received("192.0.2.4:5060".parse().unwrap());
        assert_eq!(err.unwrap_err().offset, 38); // the "h" where "/" belongs
        let m = Message::parse_slice(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").unwrap();
        let err = m.edit().set_via_received(None, Some(1)).unwrap_err();
        assert_eq!(err.kind, crate::FieldErrorKind::Missing);
    }

    #[test]
    fn prepend_header_goes_above_its_name_or_on_top() {
        let m = Message::parse_slice(REQ).unwrap();
        let mut e = m.edit();
        e.prepend_header("Path", "<sip:p2;lr>")
            .prepend_header("Path", "<sip:p1;lr>")
            .prepend_header("t", "<sip:x@y>");
        let out = Message::parse(e.to_bytes()).unwrap();
        let names: Vec<_> = out.headers().map(|h| h.name).take(4).collect();
        assert_eq!(names, [&b"Path"[..], b"Path", b"Via", b"Via"]);
        let paths: Vec<_> = out.paths().map(|p| p.unwrap().raw_uri).collect();
        assert_eq!(paths, [&b"sip:p1;lr"[..], b"sip:p2;lr"]);
        // Above the existing To (written `To`), so To is now repeated: validate says so.
        let to: Vec<_> = out.headers_named("To").map(|h| h.value).collect();
        assert_eq!(to, [&b"<sip:x@y>"[..], b"<sip:bob@example.com>"]);
        assert!(out.validate().is_err());
    }

    /// RFC 3261 §16.4: the last Route value goes, whichever field it is in.
    #[test]
    fn pop_last_route_takes_entries_from_the_end() {
        let m = Message::parse_slice(
            b"ACK sip:p SIP/2.0\r\nRoute: <sip:a;lr>, <sip:b;lr>\r\nX: 1\r\nroute: <sip:c;lr> ,<sip:d>\r\n\r\n",
        )
        .unwrap();
        let mut e = m.edit();
        assert_eq!(e.pop_last_route(), Some(&b"<sip:d>"[..]));
        assert_eq!(e.pop_route(), Some(&b"<sip:a;lr>"[..]));
        assert_eq!(e.pop_last_route(), Some(&b"<sip:c;lr>"[..]));
        let out = Message::parse(e.to_bytes()).unwrap();
        let left: Vec<_> = out.routes().map(|r| r.unwrap().raw_uri).collect();
        assert_eq!(left, [&b"sip:b;lr"[..]]);
        assert_eq!(e.pop_last_route(), Some(&b"<sip:b;lr>"[..]));
        assert_eq!(e.pop_last_route(), None);
        assert_eq!(e.pop_route(), None);
        let out = Message::parse(e.to_bytes()).unwrap();
        assert_eq!(out.header_count(), 1);
    }

    #[test]
    fn remove_header_if_sees_current_values() {
        let m = Message::parse_slice(
            b"OPTIONS sip:a SIP/2.0\r\nX-A: 1\r\nx-a: 2\r\nX-B: 2\r\nX-A: 3\r\n\r\n",
        )
        .unwrap();
        let mut e = m.edit();
        assert_eq!(e.remove_header_if("X-A", |v| v == b"2"), 1);
        let mut nth = 0;
        assert_eq!(
            e.remove_header_if("x-a", |_| {
                nth += 1;
                nth == 2
            }),
            1
        );
        let out = Message::parse(e.to_bytes()).unwrap();
        let vals: Vec<_> = out.headers().map(|h| h.value).collect();
        assert_eq!(vals, [&b"1"[..], b"2"]);
        assert_eq!(out.header("X-B"), Some(&b"2"[..]));
    }

    /// RFC 3261 §8.1.1.5: "The method MUST match that of the request."
    #[test]
    fn set_method_keeps_the_request_line_and_cseq_in_step() {
        let m = Message::parse_slice(REQ).unwrap();
        let mut e = m.edit();
        e.set_method("MESSAGE").set_request_uri("sip:bob@192.0.2.4");
        let out = Message::parse(e.to_bytes()).unwrap();
        out.validate().unwrap();
        assert_eq!(out.method(), Some("MESSAGE"));
        assert_eq!(out.request_uri(), Some(&b"sip:bob@192.0.2.4"[..]));
        assert_eq!(out.cseq().unwrap().seq, 1);
        assert_eq!(out.cseq().unwrap().method, "MESSAGE");
        assert_eq!(e.len(), e.to_bytes().len());
        // A CSeq replaced afterwards wins (and must then agree by itself).
        e.replace_header("CSeq", "2 MESSAGE");
        let out = Message::parse(e.to_bytes()).unwrap();
        assert_eq!(out.cseq().unwrap().seq, 2);
        out.validate().unwrap();
        // Responses keep their status line.
        let r = Message::parse_slice(b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
        let mut e = r.edit();
        e.set_method("BYE");
        assert_eq!(&e.to_bytes()[..], r.as_wire());
        // An unparsable CSeq is left as written.
        let bad = Message::parse_slice(b"INVITE sip:a SIP/2.0\r\nCSeq: x\r\n\r\n").unwrap();
        let mut e = bad.edit();
        e.set_method("BYE");
        assert_eq!(&e.to_bytes()[..], b"BYE sip:a SIP/2.0\r\nCSeq: x\r\n\r\n");
    }
}
