//! `ezk-sip-types` 0.6: the crate has no one-call message parser; its transport layer
//! (`ezk-sip-core`) splits the head into lines with `msg::PullParser`, parses the first with
//! `MessageLine::parse` and every other with `msg::Line::parse` into a `Headers` map of
//! `BytesStr` values sharing the input buffer, then slices the body by Content-Length. [`parse`]
//! does exactly that on the caller's `Bytes` (no copy). Typed headers are decoded on demand with
//! `Headers::get_named::<H>()` / `Headers::get::<H>(name)`.

use bytes::Bytes;
use ezk_sip_types::header::typed::{
    CSeq, CallID, ContentLength, FromTo, MaxForwards, Routing, Via,
};
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::{Headers, Name};

use crate::Outcome;
use crate::sink::{Field, Sink};

/// A message as `ezk-sip-core` hands it to the transaction layer.
#[derive(Debug)]
pub struct Message {
    /// Request or status line.
    pub line: MessageLine,
    /// Header map.
    pub headers: Headers,
    /// Body, a slice of the input.
    pub body: Bytes,
}

/// Why a message did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The head is not terminated by an empty line.
    Incomplete,
    /// A line is not UTF-8.
    Utf8,
    /// The request/status line did not parse.
    StartLine,
    /// A header line did not parse.
    HeaderLine,
    /// The body is shorter than Content-Length.
    Body,
}

/// Parses one message the way `ezk-sip-core`'s transport does.
pub fn parse(b: &Bytes) -> Result<Message, Error> {
    let mut parser = PullParser::new(b, 0);
    let mut line = None;
    let mut headers = Headers::new();
    for item in &mut parser {
        let raw = item.map_err(|_| Error::Incomplete)?;
        let text = core::str::from_utf8(raw).map_err(|_| Error::Utf8)?;
        if line.is_none() {
            let (_, start) = MessageLine::parse(b)(text).map_err(|_| Error::StartLine)?;
            line = Some(start);
        } else {
            let (_, header) = Line::parse(b, text).map_err(|_| Error::HeaderLine)?;
            headers.insert(header.name, header.value);
        }
    }
    let head_end = parser.head_end();
    let body = match headers.get_named::<ContentLength>() {
        Ok(len) if len.0 == 0 => Bytes::new(),
        Ok(len) => {
            let end = head_end.checked_add(len.0).ok_or(Error::Body)?;
            if end > b.len() {
                return Err(Error::Body);
            }
            b.slice(head_end..end)
        }
        Err(_) => b.slice(head_end..),
    };
    Ok(Message {
        line: line.ok_or(Error::StartLine)?,
        headers,
        body,
    })
}

/// Parses one message and reads the proxy fields through `ezk-sip-types`' typed headers.
#[inline]
pub fn proxy_fields_into<S: Sink>(b: &Bytes, sink: &mut S) -> Outcome {
    let msg = parse(b).map_err(|_| "parse")?;
    match &msg.line {
        MessageLine::Request(req) => {
            sink.shown(Field::Method, &req.method);
            sink.opaque(Field::RequestUri, &req.uri);
        }
        MessageLine::Response(status) => sink.num(Field::Status, u64::from(status.code.into_u16())),
    }
    let headers = &msg.headers;

    let via = headers.get_named::<Via>().map_err(|_| "via")?;
    if let Some(branch) = via.params.get_val("branch") {
        sink.text(Field::TopViaBranch, branch.as_bytes());
    }

    let call_id = headers.get_named::<CallID>().map_err(|_| "call-id")?;
    sink.text(Field::CallId, call_id.0.as_bytes());

    let cseq = headers.get_named::<CSeq>().map_err(|_| "cseq")?;
    sink.num(Field::CSeqSeq, u64::from(cseq.cseq));
    sink.shown(Field::CSeqMethod, &cseq.method);

    let from = headers.get::<FromTo>(Name::FROM).map_err(|_| "from")?;
    if let Some(tag) = &from.tag {
        sink.text(Field::FromTag, tag.as_bytes());
    }
    let to = headers.get::<FromTo>(Name::TO).map_err(|_| "to")?;
    if let Some(tag) = &to.tag {
        sink.text(Field::ToTag, tag.as_bytes());
    }

    if let Some(max_forwards) = headers.try_get_named::<MaxForwards>() {
        let n = max_forwards.map_err(|_| "max-forwards")?;
        sink.num(Field::MaxForwards, u64::from(n.0));
    }

    if let Some(route) = headers.try_get::<Routing>(Name::ROUTE) {
        let route = route.map_err(|_| "route")?;
        sink.opaque(Field::FirstRoute, &route.uri.uri);
    }

    let content_length = headers
        .get_named::<ContentLength>()
        .map_err(|_| "content-length")?;
    sink.num(Field::ContentLength, content_length.0 as u64);
    Ok(())
}

/// [`proxy_fields_into`] with every value handed to [`core::hint::black_box`].
#[inline]
pub fn proxy_fields(b: &Bytes) -> Outcome {
    proxy_fields_into(b, &mut crate::sink::BlackBox)
}
