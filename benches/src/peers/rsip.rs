//! `rsip` 0.4: `SipMessage::try_from(Bytes)` tokenizes the whole message and converts every
//! header into an untyped `Header` variant holding an owned `String`; typed views are parsed on
//! demand with `ToTypedHeader::typed()`.

use bytes::Bytes;
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::{HasHeaders, HeadersExt};
use rsip::{Header, SipMessage};

use crate::Outcome;
use crate::sink::{Field, Sink};

/// Parses one message.
#[inline]
pub fn parse(b: &Bytes) -> Result<SipMessage, rsip::Error> {
    SipMessage::try_from(b.clone())
}

/// Parses one message and reads the proxy fields through `rsip`'s typed accessors.
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
        .via_header()
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

    if let Ok(max_forwards) = msg.max_forwards_header() {
        let n = max_forwards.num().map_err(|_| "max-forwards")?;
        sink.num(Field::MaxForwards, u64::from(n));
    }

    if let Some(route) = msg.route_header() {
        let route = route.typed().map_err(|_| "route")?;
        let first = route.uris().first().ok_or("route")?;
        sink.opaque(Field::FirstRoute, &first.uri);
    }

    let content_length = msg
        .headers()
        .iter()
        .find_map(|h| match h {
            Header::ContentLength(len) => Some(len),
            _ => None,
        })
        .ok_or("content-length")?
        .length()
        .map_err(|_| "content-length")?;
    sink.num(Field::ContentLength, u64::from(content_length));
    Ok(())
}

/// [`proxy_fields_into`] with every value handed to [`core::hint::black_box`].
#[inline]
pub fn proxy_fields(b: &Bytes) -> Outcome {
    proxy_fields_into(b, &mut crate::sink::BlackBox)
}
