//! `sipx-sip` 1.0: `parse_datagram(Bytes, &Limits)` frames the message into header spans over
//! the input buffer; typed headers are decoded on demand with `Headers::typed::<H>()`.

use bytes::Bytes;
use sipx_sip::error::ParseError;
use sipx_sip::headers::{CSeq, CallId, ContentLength, From, MaxForwards, Route, To, Via};
use sipx_sip::{Limits, Message};

use crate::Outcome;
use crate::sink::{Field, Sink};

/// Parses one message as a datagram with the crate's datagram limits.
#[inline]
pub fn parse(b: &Bytes) -> Result<Message, ParseError> {
    sipx_sip::parse_datagram(b.clone(), &Limits::datagram())
}

/// Parses one message and reads the proxy fields through `sipx-sip`'s typed headers.
#[inline]
pub fn proxy_fields_into<S: Sink>(b: &Bytes, sink: &mut S) -> Outcome {
    let msg = parse(b).map_err(|_| "parse")?;
    match &msg {
        Message::Request(req) => {
            sink.shown(Field::Method, &req.method);
            sink.opaque(Field::RequestUri, &req.uri);
        }
        Message::Response(resp) => sink.num(Field::Status, u64::from(resp.status.code())),
    }
    let headers = msg.headers();

    let via = headers.typed::<Via>().ok_or("via")?.map_err(|_| "via")?;
    if let Some(branch) = via.branch() {
        sink.text(Field::TopViaBranch, branch);
    }

    let call_id = headers
        .typed::<CallId>()
        .ok_or("call-id")?
        .map_err(|_| "call-id")?;
    sink.text(Field::CallId, &call_id.0);

    let cseq = headers.typed::<CSeq>().ok_or("cseq")?.map_err(|_| "cseq")?;
    sink.num(Field::CSeqSeq, u64::from(cseq.sequence));
    sink.shown(Field::CSeqMethod, &cseq.method);

    let from = headers.typed::<From>().ok_or("from")?.map_err(|_| "from")?;
    if let Some(tag) = from.tag() {
        sink.text(Field::FromTag, tag);
    }
    let to = headers.typed::<To>().ok_or("to")?.map_err(|_| "to")?;
    if let Some(tag) = to.tag() {
        sink.text(Field::ToTag, tag);
    }

    if let Some(max_forwards) = headers.typed::<MaxForwards>() {
        let n = max_forwards.map_err(|_| "max-forwards")?;
        sink.num(Field::MaxForwards, u64::from(n.0));
    }

    if let Some(route) = headers.typed::<Route>() {
        let route = route.map_err(|_| "route")?;
        sink.opaque(Field::FirstRoute, &route.uri);
    }

    let content_length = headers
        .typed::<ContentLength>()
        .ok_or("content-length")?
        .map_err(|_| "content-length")?;
    sink.num(Field::ContentLength, content_length.0);
    Ok(())
}

/// [`proxy_fields_into`] with every value handed to [`core::hint::black_box`].
#[inline]
pub fn proxy_fields(b: &Bytes) -> Outcome {
    proxy_fields_into(b, &mut crate::sink::BlackBox)
}
