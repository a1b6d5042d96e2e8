//! [`Message`]: a framed SIP message over its original buffer, with lazy typed accessors.

use bytes::Bytes;

use crate::auth::{AuthValue, parse_auth};
use crate::chars::{as_str, skip_ws, trim};
use crate::error::{FieldError, FieldErrorKind, PResult, ParseError};
use crate::frame::{Entry, Layout, Mode, NOT_SEEN, Start, frame};
use crate::headers::{
    CSeq, MediaType, TokenParams, parse_cseq, parse_media_type, parse_token, parse_token_params,
    parse_uint,
};
use crate::limits::Limits;
use crate::list::Split;
use crate::name::HeaderName;
use crate::name_addr::{Contact, NameAddr, parse_contact, parse_name_addr};
use crate::uri::{Uri, parse_uri};
use crate::via::{Via, parse_via, parse_via_entry};

/// A framed SIP message. `B` is the buffer: [`Bytes`] (owned, cheap to clone and slice) or
/// `&[u8]` (borrowed, see [`Message::parse_slice`]).
///
/// Framing is eager and cheap; header values are interpreted on access, zero-copy. A
/// message whose CSeq or Via value is garbage still frames: only that accessor fails, and
/// [`Message::as_wire`] still gives the exact bytes to forward.
///
/// ```
/// use sip_parser::Message;
/// let raw = b"INVITE sip:bob@example.com SIP/2.0\r\n\
/// Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
/// Max-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\n\
/// From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
/// Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\n\
/// Content-Length: 0\r\n\r\n";
/// let msg = Message::parse(bytes::Bytes::from_static(raw)).unwrap();
/// assert_eq!(msg.method(), Some("INVITE"));
/// assert_eq!(msg.call_id(), Some("a84b4c76e66710@pc33.example.com"));
/// assert_eq!(msg.cseq().unwrap().seq, 314159);
/// assert_eq!(msg.from().unwrap().tag(), Some("1928301774"));
/// assert_eq!(msg.top_via().unwrap().unwrap().branch, Some("z9hG4bK776asdhds"));
/// assert_eq!(msg.max_forwards().unwrap(), Some(70));
/// assert!(msg.validate().is_ok());
/// assert_eq!(msg.as_wire(), &raw[..]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<B = Bytes> {
    pub(crate) buf: B,
    pub(crate) layout: Layout,
}

/// Request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A request (has a method and Request-URI).
    Request,
    /// A response (has a status code).
    Response,
}

/// One header field as it appears in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Name as written (`v`, `VIA`, `X-Foo`).
    pub name: &'a [u8],
    /// Value as written, leading/trailing LWS trimmed (folds inside kept).
    pub value: &'a [u8],
    /// Classified name.
    pub kind: HeaderName,
    /// Byte offset of the header's name in the buffer.
    pub offset: usize,
}

impl Message<Bytes> {
    /// Frames one datagram (UDP) with the default [`Limits`].
    #[inline]
    pub fn parse(buf: Bytes) -> Result<Self, ParseError> {
        Self::parse_with(buf, &Limits::DEFAULT)
    }
    /// Frames one datagram with explicit limits.
    #[inline]
    pub fn parse_with(buf: Bytes, limits: &Limits) -> Result<Self, ParseError> {
        Self::from_buf(buf, limits)
    }
    /// The whole buffer given to the parser.
    pub fn buffer(&self) -> &Bytes {
        &self.buf
    }
    /// A zero-copy [`Bytes`] for a slice of this message (as returned by the accessors).
    ///
    /// # Panics
    /// When `sub` does not point into this message's buffer.
    pub fn bytes_of(&self, sub: &[u8]) -> Bytes {
        self.buf.slice_ref(sub)
    }
    /// The body as [`Bytes`] (zero-copy).
    pub fn body_bytes(&self) -> Bytes {
        self.buf.slice(self.layout.body.range())
    }
}

impl<'a> Message<&'a [u8]> {
    /// Frames one datagram held in a borrowed slice (no copy at all).
    #[inline]
    pub fn parse_slice(buf: &'a [u8]) -> Result<Self, ParseError> {
        Self::from_buf(buf, &Limits::DEFAULT)
    }
    /// Converts to an owned message (one copy of the bytes).
    pub fn to_owned_message(&self) -> Message<Bytes> {
        Message {
            buf: Bytes::copy_from_slice(self.buf),
            layout: self.layout.clone(),
        }
    }
}

impl<B: AsRef<[u8]>> Message<B> {
    /// Frames one datagram held in any buffer.
    #[inline]
    pub fn from_buf(buf: B, limits: &Limits) -> Result<Self, ParseError> {
        let layout = frame(buf.as_ref(), limits, Mode::Datagram)?;
        Ok(Self { buf, layout })
    }

    #[inline]
    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    #[inline]
    pub(crate) fn at(&self, span: crate::frame::Span) -> &[u8] {
        &self.b()[span.range()]
    }

    /// The message's bytes as received: start line to end of body (leading CRLFs and
    /// trailing datagram octets beyond Content-Length excluded).
    pub fn as_wire(&self) -> &[u8] {
        &self.b()[self.layout.msg_start as usize..self.layout.body.end as usize]
    }

    /// Byte offset in the buffer of a slice that an accessor of this message returned (a
    /// header value, [`Via::raw`], a URI part…); `None` when `part` is not inside the buffer.
    ///
    /// ```
    /// let m = sip_parser::Message::parse_slice(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x1\r\n\r\n").unwrap();
    /// assert_eq!(m.offset_of(m.call_id().unwrap().as_bytes()), Some(34));
    /// assert_eq!(m.offset_of(b"x1"), None);
    /// ```
    pub fn offset_of(&self, part: &[u8]) -> Option<usize> {
        let buf = self.b().as_ptr_range();
        let p = part.as_ptr_range();
        (buf.start <= p.start && p.end <= buf.end).then(|| p.start as usize - buf.start as usize)
    }

    /// Request or response.
    pub fn kind(&self) -> Kind {
        match self.layout.start {
            Start::Request { .. } => Kind::Request,
            Start::Response { .. } => Kind::Response,
        }
    }
    /// True for requests.
    pub fn is_request(&self) -> bool {
        self.kind() == Kind::Request
    }
    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&str> {
        match self.layout.start {
            Start::Request { method, .. } => crate::chars::method_str(self.at(method)),
            Start::Response { .. } => None,
        }
    }
    /// The Request-URI as written (`None` for responses).
    pub fn request_uri(&self) -> Option<&[u8]> {
        match self.layout.start {
            Start::Request { uri, .. } => Some(self.at(uri)),
            Start::Response { .. } => None,
        }
    }
    /// The Request-URI parsed (`None` for responses).
    pub fn request_uri_parsed(&self) -> Option<Result<Uri<'_>, FieldError>> {
        let Start::Request { uri, .. } = self.layout.start else {
            return None;
        };
        Some(parse_uri(self.at(uri)).map_err(|(o, kind)| FieldError {
            header: "Request-URI",
            offset: uri.start as usize + o,
            kind,
        }))
    }
    /// SIP-Version as written (`SIP/2.0`).
    pub fn version(&self) -> &[u8] {
        match self.layout.start {
            Start::Request { version, .. } | Start::Response { version, .. } => self.at(version),
        }
    }
    /// Status code (`None` for requests).
    pub fn status(&self) -> Option<u16> {
        match self.layout.start {
            Start::Response { status, .. } => Some(status),
            Start::Request { .. } => None,
        }
    }
    /// Reason phrase (`None` for requests; may be empty).
    pub fn reason(&self) -> Option<&[u8]> {
        match self.layout.start {
            Start::Response { reason, .. } => Some(self.at(reason)),
            Start::Request { .. } => None,
        }
    }
    /// The body (Content-Length octets, or the rest of the datagram without one).
    pub fn body(&self) -> &[u8] {
        self.at(self.layout.body)
    }
    /// Content-Length as framed (`None` when absent or unusable).
    pub fn content_length(&self) -> Option<u32> {
        self.layout.content_length
    }

    // ---- generic header access -------------------------------------------------------

    fn header_of(&self, e: &Entry) -> Header<'_> {
        Header {
            name: self.at(e.name),
            value: self.at(e.value),
            kind: e.kind,
            offset: e.name.start as usize,
        }
    }
    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.layout.headers.len()
    }
    /// Every header field, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = Header<'_>> + '_ {
        self.layout.headers.iter().map(|e| self.header_of(e))
    }
    /// Every header field with this (well-known) name, compact forms included.
    pub fn headers_of(&self, name: HeaderName) -> impl Iterator<Item = Header<'_>> + '_ {
        self.layout
            .headers
            .iter()
            .filter(move |e| e.kind == name)
            .map(|e| self.header_of(e))
    }
    /// Every header field named `name` (case-insensitive; compact and long forms of known
    /// headers match each other).
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Header<'s>> + 's {
        let kind = HeaderName::classify(name.as_bytes());
        self.layout
            .headers
            .iter()
            .filter(move |e| {
                HeaderName::names_field(kind, name.as_bytes(), e.kind, self.at(e.name))
            })
            .map(|e| self.header_of(e))
    }
    /// The first value of header `name` (see [`headers_named`](Self::headers_named)).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let kind = HeaderName::classify(name.as_bytes());
        self.layout
            .headers
            .iter()
            .find(|e| HeaderName::names_field(kind, name.as_bytes(), e.kind, self.at(e.name)))
            .map(|e| self.at(e.value))
    }

    /// Index of the first field named `name` (O(1) for well-known names).
    pub(crate) fn first_index(&self, name: HeaderName) -> Option<usize> {
        let hs = &self.layout.headers;
        match self.layout.first.get(name as usize) {
            Some(&i) if i != NOT_SEEN => Some(i as usize),
            // Absent, unless it hides past the indexed range (more than 254 fields).
            Some(_) if hs.len() <= NOT_SEEN as usize => None,
            _ => hs.iter().position(|e| e.kind == name),
        }
    }

    pub(crate) fn first(&self, name: HeaderName) -> Option<&Entry> {
        self.first_index(name)
            .and_then(|i| self.layout.headers.get(i))
    }

    fn typed<'s, T>(
        &'s self,
        name: HeaderName,
        f: impl FnOnce(&'s [u8]) -> PResult<T>,
    ) -> Result<Option<T>, FieldError> {
        let Some(e) = self.first(name) else {
            return Ok(None);
        };
        f(self.at(e.value))
            .map(Some)
            .map_err(|(o, kind)| FieldError {
                header: name.as_str().unwrap_or("header"),
                offset: e.value.start as usize + o,
                kind,
            })
    }

    fn required<'s, T>(
        &'s self,
        name: HeaderName,
        f: impl FnOnce(&'s [u8]) -> PResult<T>,
    ) -> Result<T, FieldError> {
        self.typed(name, f)?.ok_or(FieldError {
            header: name.as_str().unwrap_or("header"),
            offset: self.layout.headers_end as usize,
            kind: FieldErrorKind::Missing,
        })
    }

    /// Iterates the comma-separated entries of every field of a list header, in order.
    pub(crate) fn entries(&self, name: HeaderName) -> Entries<'_> {
        Entries {
            buf: self.b(),
            headers: &self.layout.headers,
            name,
            idx: self.first_index(name).unwrap_or(self.layout.headers.len()),
            split: None,
            count: 0,
            max: self.layout.max_list_entries,
        }
    }

    fn list<'s, T: 's>(
        &'s self,
        name: HeaderName,
        f: impl Fn(&'s [u8]) -> PResult<T> + 's,
    ) -> impl Iterator<Item = Result<T, FieldError>> + 's {
        let header = name.as_str().unwrap_or("header");
        self.entries(name).map(move |r| {
            let (off, item) = r.map_err(|off| FieldError {
                header,
                offset: off,
                kind: FieldErrorKind::TooManyEntries,
            })?;
            if item.is_empty() {
                return Err(FieldError {
                    header,
                    offset: off,
                    kind: FieldErrorKind::Empty,
                });
            }
            f(item).map_err(|(o, kind)| FieldError {
                header,
                offset: off + o,
                kind,
            })
        })
    }

    // ---- typed accessors -------------------------------------------------------------

    /// Every Via entry, top first, across all Via fields.
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'_>, FieldError>> + '_ {
        self.list(HeaderName::Via, parse_via)
    }
    /// The topmost Via entry.
    pub fn top_via(&self) -> Result<Option<Via<'_>>, FieldError> {
        if let Some(v) = self.layout.index.as_ref().and_then(|i| i.top_via) {
            return Ok(Some(v.get(self.b())));
        }
        self.parse_top_via()
    }

    fn parse_top_via(&self) -> Result<Option<Via<'_>>, FieldError> {
        // Direct: the first entry of the first Via field, without the list iterator.
        let Some(e) = self.first(HeaderName::Via) else {
            return Ok(None);
        };
        let value = self.at(e.value);
        // Read where it starts, the Via grammar finding where it ends: when that succeeds
        // and a comma (or nothing) follows, it is exactly the item the list splitter would
        // cut, since the grammar reads no comma, `<` or unquoted `"` — except inside a `[…]`
        // parameter value, which sends the entry the long way. So does any error, to be
        // reported as the list accessor reports it.
        let start = skip_ws(value, 0);
        if let Ok((via, end, false)) = parse_via_entry(&value[start..]) {
            if matches!(value.get(start + end), None | Some(b',')) {
                return Ok(Some(via));
            }
        }
        let Some((off, item)) = Split::new(value).next() else {
            return Ok(None);
        };
        let offset = e.value.start as usize + off;
        if item.is_empty() {
            return Err(FieldError {
                header: "Via",
                offset,
                kind: FieldErrorKind::Empty,
            });
        }
        parse_via(item).map(Some).map_err(|(o, kind)| FieldError {
            header: "Via",
            offset: offset + o,
            kind,
        })
    }
    /// Call-ID, trimmed (`None` when absent or not UTF-8; `validate()` checks its grammar).
    pub fn call_id(&self) -> Option<&str> {
        self.first(HeaderName::CallId)
            .and_then(|e| as_str(trim(self.at(e.value))))
    }
    /// CSeq (an error when absent or malformed; the sequence number must fit 32 bits).
    pub fn cseq(&self) -> Result<CSeq<'_>, FieldError> {
        if let Some(c) = self.layout.index.as_ref().and_then(|i| i.cseq) {
            return Ok(c.get(self.b()));
        }
        self.required(HeaderName::CSeq, parse_cseq)
    }
    /// From.
    pub fn from(&self) -> Result<NameAddr<'_>, FieldError> {
        if let Some(a) = self.layout.index.as_ref().and_then(|i| i.from) {
            return Ok(a.get(self.b()));
        }
        self.required(HeaderName::From, |s| parse_name_addr(s, true))
    }
    /// To.
    pub fn to(&self) -> Result<NameAddr<'_>, FieldError> {
        if let Some(a) = self.layout.index.as_ref().and_then(|i| i.to) {
            return Ok(a.get(self.b()));
        }
        self.required(HeaderName::To, |s| parse_name_addr(s, true))
    }

    /// Parses To, From, CSeq and the top Via once and keeps where their parts are, so that
    /// later calls of [`to`](Self::to), [`from`](Self::from), [`cseq`](Self::cseq) and
    /// [`top_via`](Self::top_via) rebuild the value from offsets instead of parsing the
    /// field again. What a proxy calls right after framing: it reads these fields several
    /// times per message (validation, transaction matching, routing, dialog tracking).
    /// Every accessor returns exactly what it returned before (a field that does not parse
    /// is not indexed and still reports its error); an indexed message compares equal to
    /// the same message unindexed.
    ///
    /// ```
    /// let m = sip_parser::Message::parse_slice(
    ///     b"BYE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
    ///       To: <sip:b@example.com>;tag=2\r\nFrom: <sip:a@example.com>;tag=1\r\n\
    ///       Call-ID: c\r\nCSeq: 2 BYE\r\n\r\n",
    /// ).unwrap();
    /// let mut x = m.clone();
    /// x.index_core_fields();
    /// assert_eq!(x.to().unwrap(), m.to().unwrap());
    /// assert_eq!(x.from().unwrap().tag(), Some("1"));
    /// assert_eq!(x.cseq().unwrap().method, "BYE");
    /// assert_eq!(x.top_via().unwrap(), m.top_via().unwrap());
    /// assert_eq!(x, m);
    /// ```
    pub fn index_core_fields(&mut self) {
        let b = self.buf.as_ref();
        let index = crate::index::CoreIndex {
            to: self.to().ok().map(|a| crate::index::AddrIndex::new(b, &a)),
            from: self
                .from()
                .ok()
                .map(|a| crate::index::AddrIndex::new(b, &a)),
            cseq: self
                .cseq()
                .ok()
                .map(|c| crate::index::CSeqIndex::new(b, &c)),
            top_via: self
                .parse_top_via()
                .ok()
                .flatten()
                .map(|v| crate::index::ViaIndex::new(b, &v)),
        };
        self.layout.index = Some(alloc::sync::Arc::new(index));
    }

    /// Checks that every Via entry parses and counts them; the top entry is not parsed again
    /// when it is indexed (the index holds only an entry that parsed, and it is the entry
    /// the list splitter cuts first, see `parse_top_via`).
    pub(crate) fn check_vias(&self) -> Result<usize, FieldError> {
        let mut items = self.entries(HeaderName::Via);
        let mut n = 0;
        if self
            .layout
            .index
            .as_ref()
            .is_some_and(|i| i.top_via.is_some())
        {
            items.next();
            n = 1;
        }
        for r in items {
            let (off, item) = r.map_err(|off| FieldError {
                header: "Via",
                offset: off,
                kind: FieldErrorKind::TooManyEntries,
            })?;
            if item.is_empty() {
                return Err(FieldError {
                    header: "Via",
                    offset: off,
                    kind: FieldErrorKind::Empty,
                });
            }
            parse_via(item).map_err(|(o, kind)| FieldError {
                header: "Via",
                offset: off + o,
                kind,
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// The `n`-th Via entry (0 is the topmost), parsing only that one: what a proxy relaying
    /// a response reads to find where it goes (the entry below its own, §16.7 step 9 and
    /// §18.2.2). `None` when there are fewer entries.
    ///
    /// ```
    /// let m = sip_parser::Message::parse_slice(
    ///     b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK2, SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n",
    /// ).unwrap();
    /// assert_eq!(m.via_entry(1).unwrap().unwrap().host, "a");
    /// assert!(m.via_entry(2).is_none());
    /// ```
    pub fn via_entry(&self, n: usize) -> Option<Result<Via<'_>, FieldError>> {
        if n == 0 {
            return self.top_via().transpose();
        }
        let (off, item) = match self.entries(HeaderName::Via).nth(n)? {
            Ok(e) => e,
            Err(off) => {
                return Some(Err(FieldError {
                    header: "Via",
                    offset: off,
                    kind: FieldErrorKind::TooManyEntries,
                }));
            }
        };
        if item.is_empty() {
            return Some(Err(FieldError {
                header: "Via",
                offset: off,
                kind: FieldErrorKind::Empty,
            }));
        }
        Some(parse_via(item).map_err(|(o, kind)| FieldError {
            header: "Via",
            offset: off + o,
            kind,
        }))
    }
    /// Max-Forwards (0–255; `None` when absent, as RFC 2543 peers send none).
    pub fn max_forwards(&self) -> Result<Option<u8>, FieldError> {
        self.typed(HeaderName::MaxForwards, |s| {
            parse_uint(s, 255, false).map(|n| n as u8)
        })
    }
    /// Contact entries (`*` included).
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'_>, FieldError>> + '_ {
        self.list(HeaderName::Contact, parse_contact)
    }
    /// Route entries, top first.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, FieldError>> + '_ {
        self.list(HeaderName::Route, |s| parse_name_addr(s, false))
    }
    /// Record-Route entries, top first.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, FieldError>> + '_ {
        self.list(HeaderName::RecordRoute, |s| parse_name_addr(s, false))
    }
    /// Path entries (RFC 3327).
    pub fn paths(&self) -> impl Iterator<Item = Result<NameAddr<'_>, FieldError>> + '_ {
        self.list(HeaderName::Path, |s| parse_name_addr(s, false))
    }
    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, FieldError> {
        self.typed(HeaderName::ContentType, parse_media_type)
    }
    /// Expires in seconds (saturating at 2³²−1 as RFC 3261 §20.19 allows).
    pub fn expires(&self) -> Result<Option<u32>, FieldError> {
        self.typed(HeaderName::Expires, |s| {
            parse_uint(s, u64::from(u32::MAX), true).map(|n| n as u32)
        })
    }
    /// How long a registrar should keep `contact` (RFC 3261 §10.3 step 7): its `expires`
    /// parameter, else this message's Expires header, else `default` (the registrar's
    /// choice; §10.2.1.1 suggests 3600). Clamping to the registrar's minimum and maximum is
    /// the caller's policy (423 Interval Too Brief below the minimum). A malformed value in
    /// either place is an error (answer 400), with its offset in this message.
    ///
    /// ```
    /// use sip_parser::Message;
    /// let reg = Message::parse_slice(
    ///     b"REGISTER sip:example.com SIP/2.0\r\n\
    ///       Contact: <sip:a@192.0.2.1>;expires=60, <sip:a@192.0.2.2>\r\nExpires: 1800\r\n\r\n",
    /// ).unwrap();
    /// let ttl: Vec<u32> = reg.contacts().map(|c| reg.contact_expiry(&c.unwrap(), 3600).unwrap()).collect();
    /// assert_eq!(ttl, [60, 1800]);
    /// ```
    pub fn contact_expiry(&self, contact: &Contact<'_>, default: u32) -> Result<u32, FieldError> {
        let own = contact.expires().map_err(|mut e| {
            if let Some(base) = contact
                .addr()
                .and_then(|a| self.offset_of(a.params.as_bytes()))
            {
                e.offset += base;
            }
            e
        })?;
        match own {
            Some(secs) => Ok(secs),
            None => Ok(self.expires()?.unwrap_or(default)),
        }
    }
    /// Min-Expires in seconds.
    pub fn min_expires(&self) -> Result<Option<u32>, FieldError> {
        self.typed(HeaderName::MinExpires, |s| {
            parse_uint(s, u64::from(u32::MAX), true).map(|n| n as u32)
        })
    }
    /// Option tags / methods of a token-list header (Require, Proxy-Require, Supported,
    /// Unsupported, Allow, Allow-Events, …).
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = Result<&str, FieldError>> + '_ {
        self.list(name, parse_token)
    }
    /// `Require` option tags.
    pub fn require(&self) -> impl Iterator<Item = Result<&str, FieldError>> + '_ {
        self.tokens(HeaderName::Require)
    }
    /// `Proxy-Require` option tags.
    pub fn proxy_require(&self) -> impl Iterator<Item = Result<&str, FieldError>> + '_ {
        self.tokens(HeaderName::ProxyRequire)
    }
    /// `Supported` option tags.
    pub fn supported(&self) -> impl Iterator<Item = Result<&str, FieldError>> + '_ {
        self.tokens(HeaderName::Supported)
    }
    /// `Unsupported` option tags.
    pub fn unsupported(&self) -> impl Iterator<Item = Result<&str, FieldError>> + '_ {
        self.tokens(HeaderName::Unsupported)
    }
    /// `Allow` methods.
    pub fn allow(&self) -> impl Iterator<Item = Result<&str, FieldError>> + '_ {
        self.tokens(HeaderName::Allow)
    }
    /// `Authorization` credentials (one per field; several realms may each have one).
    pub fn authorization(&self) -> impl Iterator<Item = Result<AuthValue<'_>, FieldError>> + '_ {
        self.auth_values(HeaderName::Authorization)
    }
    /// `Proxy-Authorization` credentials.
    pub fn proxy_authorization(
        &self,
    ) -> impl Iterator<Item = Result<AuthValue<'_>, FieldError>> + '_ {
        self.auth_values(HeaderName::ProxyAuthorization)
    }
    /// `WWW-Authenticate` challenges.
    pub fn www_authenticate(&self) -> impl Iterator<Item = Result<AuthValue<'_>, FieldError>> + '_ {
        self.auth_values(HeaderName::WwwAuthenticate)
    }
    /// `Proxy-Authenticate` challenges.
    pub fn proxy_authenticate(
        &self,
    ) -> impl Iterator<Item = Result<AuthValue<'_>, FieldError>> + '_ {
        self.auth_values(HeaderName::ProxyAuthenticate)
    }
    fn auth_values(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<AuthValue<'_>, FieldError>> + '_ {
        // Auth params are comma-separated themselves, so each field is one value.
        self.layout
            .headers
            .iter()
            .filter(move |e| e.kind == name)
            .map(move |e| {
                parse_auth(self.at(e.value)).map_err(|(o, kind)| FieldError {
                    header: name.as_str().unwrap_or("header"),
                    offset: e.value.start as usize + o,
                    kind,
                })
            })
    }
    /// `Event` (RFC 6665).
    pub fn event(&self) -> Result<Option<TokenParams<'_>>, FieldError> {
        self.typed(HeaderName::Event, parse_token_params)
    }
    /// `Subscription-State` (RFC 6665).
    pub fn subscription_state(&self) -> Result<Option<TokenParams<'_>>, FieldError> {
        self.typed(HeaderName::SubscriptionState, parse_token_params)
    }
    /// `Reason` entries (RFC 3326): protocol with `cause` / `text` params.
    pub fn reasons(&self) -> impl Iterator<Item = Result<TokenParams<'_>, FieldError>> + '_ {
        self.list(HeaderName::Reason, parse_token_params)
    }
    /// `User-Agent` as written.
    pub fn user_agent(&self) -> Option<&[u8]> {
        self.first(HeaderName::UserAgent).map(|e| self.at(e.value))
    }
    /// `Server` as written.
    pub fn server(&self) -> Option<&[u8]> {
        self.first(HeaderName::Server).map(|e| self.at(e.value))
    }
}

/// Iterator over raw list entries: `Ok((absolute_offset, item))`, or `Err(offset)` once
/// when the entry limit is exceeded.
pub(crate) struct Entries<'m> {
    buf: &'m [u8],
    headers: &'m [Entry],
    name: HeaderName,
    idx: usize,
    split: Option<(usize, Split<'m>)>,
    count: u32,
    max: u32,
}

impl<'m> Iterator for Entries<'m> {
    type Item = Result<(usize, &'m [u8]), usize>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((base, split)) = &mut self.split {
                let base = *base;
                if let Some((o, item)) = split.next() {
                    self.count += 1;
                    if self.count > self.max {
                        self.idx = self.headers.len();
                        self.split = None;
                        return Some(Err(base + o));
                    }
                    return Some(Ok((base + o, item)));
                }
                self.split = None;
            }
            let e = self.headers[self.idx..]
                .iter()
                .position(|e| e.kind == self.name)?;
            let entry = self.headers[self.idx + e];
            self.idx += e + 1;
            self.split = Some((
                entry.value.start as usize,
                Split::new(&self.buf[entry.value.range()]),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    #[test]
    #[allow(clippy::format_push_string)]
    fn lookups_past_the_indexed_range_still_work() {
        let mut s = String::from("OPTIONS sip:a@b SIP/2.0\r\n");
        for i in 0..300 {
            s += &alloc::format!("X-Filler-{i}: {i}\r\n");
        }
        s += "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: late\r\nRoute: <sip:r1;lr>\r\nRoute: <sip:r2;lr>\r\n\r\n";
        let limits = Limits {
            max_headers: 400,
            max_message_size: 1 << 20,
            ..Limits::DEFAULT
        };
        let m = Message::from_buf(s.as_bytes(), &limits).unwrap();
        assert_eq!(m.call_id(), Some("late"));
        assert_eq!(m.top_via().unwrap().unwrap().branch, Some("z9hG4bK1"));
        let routes: Vec<_> = m.routes().map(|r| r.unwrap().raw_uri).collect();
        assert_eq!(routes, [&b"sip:r1;lr"[..], b"sip:r2;lr"]);
        assert_eq!(m.header("x-filler-299"), Some(&b"299"[..]));
        assert!(m.cseq().is_err());
    }

    #[test]
    fn first_index_agrees_with_a_scan() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\ni: c\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
        let m = Message::parse_slice(raw).unwrap();
        for (i, h) in m.layout.headers.iter().enumerate() {
            let want = m
                .layout
                .headers
                .iter()
                .position(|e| e.kind == h.kind)
                .unwrap();
            if h.kind != HeaderName::Other {
                assert_eq!(m.first_index(h.kind), Some(want), "{i}");
            }
        }
        assert_eq!(m.first_index(HeaderName::Route), None);
        assert_eq!(m.via().count(), 2);
    }
}
