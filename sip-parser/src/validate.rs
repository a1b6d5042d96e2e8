//! `validate()`: the RFC 3261 checks a proxy makes before processing a message
//! (§16.3 request validation, §8.2 and §18.3 well-formedness), kept apart from framing so
//! that a proxy can still forward or answer what does not pass.

use crate::chars::trim;
use crate::error::{FieldError, FieldErrorKind, ValidationError};
use crate::frame::{ClIssue, Start};
use crate::headers::{check_call_id, check_date};
use crate::message::Message;
use crate::name::HeaderName;
use crate::name_addr::{Contact, NameAddr};

/// Headers that may appear once only (RFC 3261 §7.3.1: not comma-list headers).
const SINGLE: [HeaderName; 7] = [
    HeaderName::To,
    HeaderName::From,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentType,
    HeaderName::Expires,
];

impl<B: AsRef<[u8]>> Message<B> {
    /// Checks what a proxy checks before processing (RFC 3261 §16.3 and §8.2):
    ///
    /// * SIP-Version is `SIP/2.0` (else 505);
    /// * the request line has single SPs and a well-formed Request-URI without LWS, `<>` or,
    ///   for SIP/SIPS, escaped headers;
    /// * To, From, Call-ID, CSeq and Via are present, parse, and are not repeated
    ///   (Max-Forwards may be absent, as RFC 2543 peers send none);
    /// * CSeq fits 32 bits and its method equals the request method;
    /// * Max-Forwards ≤ 255, Contact / Route / Record-Route entries and Expires, Date and
    ///   Content-Type values are well-formed;
    /// * Content-Length frames the body.
    ///
    /// A response gets the checks forwarding it needs and no more: SIP-Version, To, From,
    /// Call-ID, CSeq and Via present, single and parsing (the To/From name-addr and its
    /// tag, not the URI inside), and Content-Length. The URIs of To, From, Contact, Route
    /// and Record-Route, Max-Forwards, Expires, Content-Type and Date are not looked at: a
    /// proxy relays them as they are, and whoever reads them later (a dialog tracker taking
    /// the route set and remote target of a 2xx) parses them itself and must cope with
    /// errors there anyway.
    ///
    /// ```
    /// use sip_parser::Message;
    /// let head = "Via: SIP/2.0/UDP p.example.com;branch=z9hG4bK1\r\n\
    ///     To: <sip:b@example.com>;tag=2\r\nFrom: <sip:a@example.com>;tag=1\r\n\
    ///     Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:b@[::1>\r\n";
    /// let resp = format!("SIP/2.0 200 OK\r\n{head}Content-Length: 0\r\n\r\n");
    /// assert!(Message::parse_slice(resp.as_bytes()).unwrap().validate().is_ok());
    /// let req = format!("INVITE sip:b@example.com SIP/2.0\r\n{head}Content-Length: 0\r\n\r\n");
    /// let err = Message::parse_slice(req.as_bytes()).unwrap().validate().unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// ```
    ///
    /// Messages that are well-formed but call for a special answer — unknown Request-URI
    /// scheme (416), unknown Require option (420), Max-Forwards 0 (483) — pass: those
    /// answers are the caller's policy. Each failure carries the status and reason phrase to
    /// answer with ([`ValidationError::status`], [`ValidationError::reason_phrase`]).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let version = self.version();
        if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            let offset = version.as_ptr() as usize - self.buf.as_ref().as_ptr() as usize;
            return Err(ValidationError::Version { offset });
        }
        if let Start::Request { irregular, uri, .. } = self.layout.start {
            if irregular {
                return Err(ValidationError::RequestLine {
                    offset: self.layout.msg_start as usize,
                    reason: "extra white space between request-line elements",
                });
            }
            let raw = self.at(uri);
            let offset = uri.start as usize;
            if raw.first() == Some(&b'<') {
                return Err(ValidationError::RequestLine {
                    offset,
                    reason: "Request-URI enclosed in <>",
                });
            }
            if raw.iter().any(|&b| b == b' ' || b == b'\t') {
                return Err(ValidationError::RequestLine {
                    offset,
                    reason: "white space inside the Request-URI",
                });
            }
            if let Some(parsed) = self.request_uri_parsed() {
                let u = parsed?;
                if u.is_sip() && u.headers.is_some() {
                    return Err(ValidationError::RequestLine {
                        offset,
                        reason: "escaped headers in the Request-URI",
                    });
                }
            }
        }
        // Mandatory, single-valued, well-formed. One pass over the fields finds the second
        // occurrence of each single-valued header; the first in `SINGLE` order is reported.
        let mut seen = 0u8;
        let mut second = [None; SINGLE.len()];
        for e in &self.layout.headers {
            let Some(k) = SINGLE.iter().position(|&n| n == e.kind) else {
                continue;
            };
            if seen & (1 << k) == 0 {
                seen |= 1 << k;
            } else if second[k].is_none() {
                second[k] = Some(e.name.start as usize);
            }
        }
        if let Some((k, offset)) = second
            .iter()
            .enumerate()
            .find_map(|(k, o)| o.map(|o| (k, o)))
        {
            return Err(ValidationError::Repeated {
                header: SINGLE[k].as_str().unwrap_or("header"),
                offset,
            });
        }
        let request = self.is_request();
        let to = self.to()?;
        if request {
            self.addr_uri_ok("To", &to)?;
        }
        let from = self.from()?;
        if request {
            self.addr_uri_ok("From", &from)?;
        }
        let call_id = self.first_value(HeaderName::CallId).ok_or(FieldError {
            header: "Call-ID",
            offset: self.layout.headers_end as usize,
            kind: FieldErrorKind::Missing,
        })?;
        check_call_id(trim(call_id.1)).map_err(|(o, kind)| FieldError {
            header: "Call-ID",
            offset: call_id.0 + o,
            kind,
        })?;
        let cseq = self.cseq()?;
        if let Some(m) = self.method() {
            if cseq.method != m {
                let offset = self.first_value(HeaderName::CSeq).map_or(0, |v| v.0);
                return Err(ValidationError::CSeqMethodMismatch { offset });
            }
        }
        if self.check_vias()? == 0 {
            return Err(FieldError {
                header: "Via",
                offset: self.layout.headers_end as usize,
                kind: FieldErrorKind::Missing,
            }
            .into());
        }
        if request {
            self.request_fields_ok()?;
        }
        match self.layout.cl_issue {
            ClIssue::None => Ok(()),
            ClIssue::TooLarge { offset } => Err(ValidationError::ContentLength {
                offset: offset as usize,
                reason: "larger than the datagram's body",
            }),
            ClIssue::Invalid { offset } => Err(ValidationError::ContentLength {
                offset: offset as usize,
                reason: "not a non-negative integer",
            }),
            ClIssue::Conflict { offset } => Err(ValidationError::ContentLength {
                offset: offset as usize,
                reason: "conflicting Content-Length values",
            }),
        }
    }

    /// The checks only a request gets: Max-Forwards, the Contact / Route / Record-Route
    /// entries and their URIs, Expires, Content-Type and Date.
    fn request_fields_ok(&self) -> Result<(), ValidationError> {
        self.max_forwards()?;
        for c in self.contacts() {
            if let Contact::Addr(a) = c? {
                self.addr_uri_ok("Contact", &a)?;
            }
        }
        for r in self.routes() {
            self.addr_uri_ok("Route", &r?)?;
        }
        for r in self.record_routes() {
            self.addr_uri_ok("Record-Route", &r?)?;
        }
        self.expires()?;
        self.content_type()?;
        if let Some((o, d)) = self.first_value(HeaderName::Date) {
            check_date(d).map_err(|(p, kind)| FieldError {
                header: "Date",
                offset: o + p,
                kind,
            })?;
        }
        Ok(())
    }

    /// Parses an address's URI, reporting errors at their offset in the message.
    fn addr_uri_ok(&self, header: &'static str, a: &NameAddr<'_>) -> Result<(), FieldError> {
        let base = a.raw_uri.as_ptr() as usize - self.buf.as_ref().as_ptr() as usize;
        crate::uri::parse_uri(a.raw_uri)
            .map(|_| ())
            .map_err(|(o, kind)| FieldError {
                header,
                offset: base + o,
                kind,
            })
    }

    fn first_value(&self, name: HeaderName) -> Option<(usize, &[u8])> {
        self.first(name)
            .map(|e| (e.value.start as usize, self.at(e.value)))
    }
}
