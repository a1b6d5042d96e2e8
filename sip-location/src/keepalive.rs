//! NAT keepalives (Kamailio `nathelper` `natping` with `sipping`): the bindings flagged
//! [`KEEPALIVE`](crate::Flags::KEEPALIVE) by the registrar get an OPTIONS request now and
//! then, sent to the address the REGISTER came from, so that the NAT keeps the UA's pinhole
//! open.
//!
//! [`due`] walks the store a page at a time (spread the pings of one interval over several
//! calls), [`options`] builds the request. Sending it, and matching or ignoring the answer,
//! is the caller's.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use sip_parser::RequestBuilder;
use sip_parser::bytes::Bytes;

use crate::binding::{Flags, Source};
use crate::store::{Cursor, LocationStore, StoreError};

/// One binding to ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its AOR.
    pub aor: Arc<str>,
    /// Its contact URI (the Request-URI of the ping).
    pub contact: String,
    /// Where to send it: the REGISTER's source address, transport, local socket and flow.
    pub send_to: Source,
}

/// The bindings to ping among the next `max_aors` AORs of the store from `cursor`, and the
/// cursor to continue from (`None` once the whole store has been walked: start again at
/// [`Cursor::START`] next interval).
pub fn due<S: LocationStore + ?Sized>(
    store: &S,
    cursor: Cursor,
    max_aors: usize,
    now: Duration,
) -> Result<(Vec<Target>, Option<Cursor>), StoreError> {
    let mut out = Vec::new();
    let next = store.scan(cursor, max_aors, now, &mut |aor, bindings| {
        let aor: Arc<str> = Arc::from(aor);
        for b in bindings {
            if !b.flags().contains(Flags::KEEPALIVE) {
                continue;
            }
            if let Some(send_to) = b.source() {
                out.push(Target {
                    aor: aor.clone(),
                    contact: b.contact().into(),
                    send_to,
                });
            }
        }
    })?;
    Ok((out, next))
}

/// The identity of one ping: who sends it and the identifiers of its transaction (fresh
/// ones from [`sip_parser::Ident`] per ping).
#[derive(Debug, Clone, Copy)]
pub struct Ping<'a> {
    /// The From URI (Kamailio `sipping_from`), e.g. `sip:keepalive@proxy.example.com`.
    pub from: &'a str,
    /// The Via sent-by of the proxy's socket, `host[:port]`.
    pub sent_by: &'a str,
    /// The Via branch (starting with `z9hG4bK`).
    pub branch: &'a str,
    /// The Call-ID.
    pub call_id: &'a str,
    /// The From tag.
    pub from_tag: &'a str,
}

/// The OPTIONS request for `target` (RFC 3261 §11: Request-URI and To are the contact,
/// Max-Forwards 70, CSeq 1), over the transport the binding registered on.
///
/// ```
/// use sip_location::keepalive::{options, Ping, Target};
/// use sip_location::Source;
/// use sip_parser::{Message, Transport};
///
/// let target = Target {
///     aor: "sip:alice@example.com".into(),
///     contact: "sip:alice@10.0.0.7:5060".into(),
///     send_to: Source::new("203.0.113.9:40312".parse().unwrap(), Transport::Udp),
/// };
/// let ping = Ping {
///     from: "sip:keepalive@proxy.example.com",
///     sent_by: "192.0.2.1:5060",
///     branch: "z9hG4bK-ka-1",
///     call_id: "ka-1@proxy.example.com",
///     from_tag: "9fxced76sl",
/// };
/// let m = Message::parse(options(&target, &ping)).unwrap();
/// assert!(m.validate().is_ok());
/// assert_eq!(m.method(), Some("OPTIONS"));
/// assert_eq!(m.request_uri(), Some(&b"sip:alice@10.0.0.7:5060"[..]));
/// assert_eq!(m.top_via().unwrap().unwrap().transport, "UDP");
/// ```
pub fn options(target: &Target, ping: &Ping<'_>) -> Bytes {
    let via = format!(
        "SIP/2.0/{} {};branch={}",
        target.send_to.transport.as_str(),
        ping.sent_by,
        ping.branch
    );
    let from = format!("<{}>", ping.from);
    let to = format!("<{}>", target.contact);
    RequestBuilder::new("OPTIONS", target.contact.as_str())
        .via(via.as_str())
        .from(from.as_str(), Some(ping.from_tag))
        .to(to.as_str(), None)
        .call_id(ping.call_id)
        .cseq(1)
        .build()
}
