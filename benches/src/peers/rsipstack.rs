//! `rsipstack` 0.7, its own `sip` module (`rsipstack::sip`, a descendant of `rsip`):
//! `SipMessage::try_from(Bytes)` runs `sip::parser::parse_message`, which keeps each header
//! as an untyped variant holding a `String`; typed views are parsed on demand.

use bytes::Bytes;
use rsipstack::sip::headers::untyped::ToTypedHeader;
use rsipstack::sip::message::{HasHeaders, HeadersExt};
use rsipstack::sip::typed;
use rsipstack::sip::{Header, SipMessage};

use crate::Outcome;
use crate::sink::{Field, Sink};

/// Parses one message.
#[inline]
pub fn parse(b: &Bytes) -> Result<SipMessage, rsipstack::sip::Error> {
    SipMessage::try_from(b.clone())
}

/// Parses one message and reads the proxy fields through `rsipstack::sip`'s accessors.
#[inline]
pub fn proxy_fields_into<S: Sink>(b: &Bytes, sink: &mut S) -> Outcome {
    let msg = parse(b).map_err(|_| "parse")?;
    match &msg {
        SipMessage::Request(req) => {
            sink.shown(Field::Method, &req.method);
            sink.opaque(Field::RequestUri, &req.uri);
        }
        SipMessage::Response(resp) => sink.num(Field::Status, u64::from(resp.status_code.code())),
    }

    let via = msg
        .top_via_header()
        .map_err(|_| "via")?
        .typed()
        .map_err(|_| "via")?;
    if let Some(branch) = via.branch() {
        sink.text(Field::TopViaBranch, branch.value().as_bytes());
    }

    sink.text(
        Field::CallId,
        msg.call_id_header()
            .map_err(|_| "call-id")?
            .value()
            .as_bytes(),
    );

    let cseq = msg
        .cseq_header()
        .map_err(|_| "cseq")?
        .typed()
        .map_err(|_| "cseq")?;
    sink.num(Field::CSeqSeq, u64::from(cseq.seq));
    sink.shown(Field::CSeqMethod, &cseq.method);

    let from = msg
        .from_header()
        .map_err(|_| "from")?
        .tag()
        .map_err(|_| "from")?;
    if let Some(tag) = &from {
        sink.text(Field::FromTag, tag.value().as_bytes());
    }
    let to = msg.to_header().map_err(|_| "to")?.tag().map_err(|_| "to")?;
    if let Some(tag) = &to {
        sink.text(Field::ToTag, tag.value().as_bytes());
    }

    // Max-Forwards and Content-Length are untyped in rsipstack: the value is parsed the way the
    // crate itself reads them.
    if let Ok(max_forwards) = msg.max_forwards_header() {
        let n: u32 = max_forwards
            .value()
            .trim()
            .parse()
            .map_err(|_| "max-forwards")?;
        sink.num(Field::MaxForwards, u64::from(n));
    }

    if let Some(route) = msg.route_header() {
        let routes = typed::Route::parse_header_list(route.value()).map_err(|_| "route")?;
        let first = routes.first().ok_or("route")?;
        sink.opaque(Field::FirstRoute, &first.uri);
    }

    let content_length: u32 = msg
        .headers()
        .iter()
        .find_map(|h| match h {
            Header::ContentLength(len) => Some(len),
            _ => None,
        })
        .ok_or("content-length")?
        .value()
        .trim()
        .parse()
        .map_err(|_| "content-length")?;
    sink.num(Field::ContentLength, u64::from(content_length));
    Ok(())
}

/// [`proxy_fields_into`] with every value handed to [`core::hint::black_box`].
#[inline]
pub fn proxy_fields(b: &Bytes) -> Outcome {
    proxy_fields_into(b, &mut crate::sink::BlackBox)
}
