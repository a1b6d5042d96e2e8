//! The workspace's own parser, `sip-parser`: the plug-in point of the suite.
//!
//! Compiled with the `ours` feature (on by default). Both workloads are the two functions
//! below; the criterion bench, the allocation counter, the report and the field test all call
//! them through [`crate::impls::all`].

use bytes::Bytes;
use sip_parser::{Message, ParseError};

use crate::Outcome;
use crate::sink::{Field, Sink};

/// Parses one message (frames it; header values are interpreted lazily).
#[inline]
pub fn parse(b: &Bytes) -> Result<Message, ParseError> {
    Message::parse(b.clone())
}

/// Parses one message and reads the proxy fields through `sip-parser`'s typed accessors.
#[inline]
pub fn proxy_fields_into<S: Sink>(b: &Bytes, sink: &mut S) -> Outcome {
    let msg = parse(b).map_err(|_| "parse")?;
    if let Some(method) = msg.method() {
        sink.shown(Field::Method, method);
        // Parsed, as every peer hands the Request-URI over parsed; `msg.request_uri()` is the
        // raw bytes a proxy forwards unchanged.
        let uri = msg
            .request_uri_parsed()
            .ok_or("request-uri")?
            .map_err(|_| "request-uri")?;
        sink.opaque(Field::RequestUri, &uri);
    }
    if let Some(status) = msg.status() {
        sink.num(Field::Status, u64::from(status));
    }

    let via = msg.top_via().map_err(|_| "via")?.ok_or("via")?;
    if let Some(branch) = via.branch {
        sink.text(Field::TopViaBranch, branch.as_bytes());
    }

    sink.text(Field::CallId, msg.call_id().ok_or("call-id")?.as_bytes());

    let cseq = msg.cseq().map_err(|_| "cseq")?;
    sink.num(Field::CSeqSeq, u64::from(cseq.seq));
    sink.shown(Field::CSeqMethod, cseq.method);

    let from = msg.from().map_err(|_| "from")?;
    if let Some(tag) = from.tag() {
        sink.text(Field::FromTag, tag.as_bytes());
    }
    let to = msg.to().map_err(|_| "to")?;
    if let Some(tag) = to.tag() {
        sink.text(Field::ToTag, tag.as_bytes());
    }

    if let Some(n) = msg.max_forwards().map_err(|_| "max-forwards")? {
        sink.num(Field::MaxForwards, u64::from(n));
    }

    if let Some(route) = msg.routes().next() {
        let route = route.map_err(|_| "route")?;
        // Parsed, like the Request-URI above and like every peer's Route URI: a proxy needs the
        // next hop's host, port and `lr`. (`route.raw_uri` alone would skip that work.)
        let uri = route.uri().map_err(|_| "route")?;
        sink.opaque(Field::FirstRoute, &uri);
    }

    let content_length = msg.content_length().ok_or("content-length")?;
    sink.num(Field::ContentLength, u64::from(content_length));
    Ok(())
}

/// [`proxy_fields_into`] with every value handed to [`core::hint::black_box`].
#[inline]
pub fn proxy_fields(b: &Bytes) -> Outcome {
    proxy_fields_into(b, &mut crate::sink::BlackBox)
}
