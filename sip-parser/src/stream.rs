//! Framing SIP over stream transports (TCP, TLS, WebSocket payloads): messages delimited by
//! Content-Length (mandatory, RFC 3261 §18.3), and RFC 5626 §4.4.1 CRLF keep-alives.

use bytes::{Buf, BytesMut};

use crate::error::ParseError;
use crate::frame::{Layout, Mode, Span, frame};
use crate::limits::Limits;
use crate::message::Message;
use crate::name::HeaderName;

/// What the decoder found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A complete message.
    Message(Message),
    /// A double-CRLF keep-alive ping: answer with a single CRLF (RFC 5626 §4.4.1).
    Ping,
    /// A single-CRLF keep-alive pong.
    Pong,
}

/// A framing failure on a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}{}", if *.fatal { " (stream framing lost: close the connection)" } else { " (message skipped)" })]
pub struct StreamError {
    /// What was wrong.
    pub error: ParseError,
    /// `true` when the framing is lost and the connection must be closed; `false` when the
    /// bad message was skipped and decoding can go on.
    pub fatal: bool,
}

/// A header section already framed, waiting for the rest of its message.
#[derive(Debug)]
enum Pending {
    /// A good message of this total length.
    Message(Layout, usize),
    /// A bad message of this total length, to skip once complete, then report.
    Skip(usize, ParseError),
}

/// Incremental decoder: feed it bytes as they arrive, in chunks of any size; it yields the
/// same items whatever the chunk boundaries.
///
/// ```
/// use sip_parser::{StreamDecoder, StreamItem};
/// let wire = b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 2\r\n\r\nhi";
/// let mut d = StreamDecoder::new(sip_parser::Limits::default());
/// let mut items = Vec::new();
/// for chunk in wire.chunks(7) {
///     d.feed(chunk);
///     while let Some(item) = d.decode().unwrap() {
///         items.push(item);
///     }
/// }
/// assert_eq!(items[0], StreamItem::Ping);
/// let StreamItem::Message(m) = &items[1] else { panic!() };
/// assert_eq!(m.body(), b"hi");
/// ```
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    limits: Limits,
    /// How far the search for the end of the header section has looked.
    scanned: usize,
    /// Header section framed, waiting for the body: (layout, total length).
    pending: Option<Pending>,
    failed: Option<ParseError>,
}

impl StreamDecoder {
    /// A decoder with these limits (`max_message_size` bounds what it buffers).
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: BytesMut::new(),
            limits,
            scanned: 0,
            pending: None,
            failed: None,
        }
    }

    /// Appends received bytes. Call [`decode`](Self::decode) until it returns `Ok(None)`
    /// after each feed: the decoder then never holds more than one read beyond
    /// [`Limits::max_message_size`], and a stream that exceeds it fails instead of growing.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Decodes the next item: `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<StreamItem>, StreamError> {
        if let Some(e) = &self.failed {
            return Err(StreamError {
                error: e.clone(),
                fatal: true,
            });
        }
        if let Some(p) = self.pending.take() {
            let total = match &p {
                Pending::Message(_, t) | Pending::Skip(t, _) => *t,
            };
            if self.buf.len() < total {
                // Not complete yet; nothing is re-scanned while the body trickles in.
                self.pending = Some(p);
                return Ok(None);
            }
            self.scanned = 0;
            return match p {
                Pending::Message(mut layout, _) => {
                    let bytes = self.buf.split_to(total).freeze();
                    layout.body = Span::new(layout.body.start as usize, total);
                    Ok(Some(StreamItem::Message(Message { buf: bytes, layout })))
                }
                Pending::Skip(_, error) => {
                    self.buf.advance(total);
                    Err(StreamError {
                        error,
                        fatal: false,
                    })
                }
            };
        }
        let b = &self.buf[..];
        if b.first() == Some(&b'\r') {
            match b {
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    self.buf.advance(4);
                    return Ok(Some(StreamItem::Ping));
                }
                [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    self.buf.advance(2);
                    return Ok(Some(StreamItem::Pong));
                }
                _ => {}
            }
        }
        let from = self.scanned.saturating_sub(3);
        let Some(p) = memchr::memmem::find(&b[from..], b"\r\n\r\n") else {
            self.scanned = b.len();
            if b.len() > self.limits.max_message_size {
                return Err(self.fail(ParseError::TooLarge {
                    size: b.len(),
                    limit: self.limits.max_message_size,
                }));
            }
            return Ok(None);
        };
        let head_end = from + p + 4;
        match frame(&b[..head_end], &self.limits, Mode::StreamHead) {
            Ok(layout) => {
                let total = head_end + layout.content_length.unwrap_or(0) as usize;
                if total > self.limits.max_message_size {
                    return Err(self.fail(ParseError::TooLarge {
                        size: total,
                        limit: self.limits.max_message_size,
                    }));
                }
                self.pending = Some(Pending::Message(layout, total));
                self.decode()
            }
            Err(error) => match error {
                ParseError::ContentLength { .. }
                | ParseError::MissingContentLength { .. }
                | ParseError::TooLarge { .. } => Err(self.fail(error)),
                _ => match sniff_content_length(&b[..head_end]) {
                    Some(n)
                        if head_end
                            .checked_add(n)
                            .is_some_and(|t| t <= self.limits.max_message_size) =>
                    {
                        // Skip the bad message once all of it is here; the next one frames.
                        self.pending = Some(Pending::Skip(head_end + n, error));
                        self.decode()
                    }
                    _ => Err(self.fail(error)),
                },
            },
        }
    }

    fn fail(&mut self, error: ParseError) -> StreamError {
        self.failed = Some(error.clone());
        self.buf.clear();
        StreamError { error, fatal: true }
    }
}

/// Finds a single, well-formed Content-Length in a header section that did not frame.
fn sniff_content_length(head: &[u8]) -> Option<usize> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = crate::chars::trim(&line[..colon]);
        if HeaderName::classify(name) == HeaderName::ContentLength {
            let v = crate::chars::parse_digits(crate::chars::trim(&line[colon + 1..]))?;
            if found.is_some_and(|f| f != v) {
                return None;
            }
            found = Some(v);
        }
    }
    found.and_then(|v| usize::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(d: &mut StreamDecoder) -> Result<Option<StreamItem>, StreamError> {
        d.decode()
    }

    #[test]
    fn bad_message_is_skipped_when_its_length_is_known() {
        let mut d = StreamDecoder::new(Limits::default());
        d.feed(b"BAD LINE\r\nno colon here\r\nContent-Length: 3\r\n\r\nabc");
        d.feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
        let e = item(&mut d).unwrap_err();
        assert!(!e.fatal);
        assert!(matches!(item(&mut d), Ok(Some(StreamItem::Message(_)))));
        assert_eq!(item(&mut d), Ok(None));
    }

    #[test]
    fn bad_message_trickled_in_is_skipped_once_complete() {
        let wire = b"BAD LINE\r\nno colon here\r\nContent-Length: 3\r\n\r\nabcOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        let mut d = StreamDecoder::new(Limits::default());
        let mut items = Vec::new();
        for b in wire {
            d.feed(&[*b]);
            loop {
                match d.decode() {
                    Ok(Some(i)) => items.push(Ok(i)),
                    Ok(None) => break,
                    Err(e) => items.push(Err(e.fatal)),
                }
            }
        }
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0], Err(false));
        assert!(matches!(&items[1], Ok(StreamItem::Message(m)) if m.method() == Some("OPTIONS")));
    }

    #[test]
    fn huge_sniffed_length_is_fatal_not_an_overflow() {
        let mut d = StreamDecoder::new(Limits::default());
        d.feed(b"**\n,S:\r\n\r\nL:\t99999999999999999999999\n\r\n\r\n");
        d.feed(b"x\r\nL: 18446744073709551615\r\n\r\n");
        for _ in 0..4 {
            if let Err(e) = item(&mut d) {
                if e.fatal {
                    return;
                }
            }
        }
        panic!("expected a fatal error");
    }

    #[test]
    fn keepalives() {
        let mut d = StreamDecoder::new(Limits::default());
        d.feed(b"\r\n");
        assert_eq!(item(&mut d), Ok(None));
        d.feed(b"\r\n\r\nO");
        assert_eq!(item(&mut d), Ok(Some(StreamItem::Ping)));
        assert_eq!(item(&mut d), Ok(Some(StreamItem::Pong)));
        assert_eq!(item(&mut d), Ok(None));
        assert_eq!(d.buffered(), 1);
    }

    #[test]
    fn oversize_is_fatal_and_sticky() {
        let mut d = StreamDecoder::new(Limits {
            max_message_size: 64,
            ..Limits::default()
        });
        d.feed(&[b'A'; 100]);
        assert!(item(&mut d).unwrap_err().fatal);
        d.feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
        assert!(item(&mut d).unwrap_err().fatal);
    }
}
