//! Registrar processing (RFC 3261 §10.3, with RFC 3327 Path, RFC 5626 Outbound and RFC 5627
//! public GRUUs) as a pure function, and a driver that runs it against a [`LocationStore`].
//!
//! [`process`] takes the REGISTER, where it came from, the AOR's current bindings (a
//! [`Snapshot`]), the time and the [`Policy`], and returns an [`Outcome`]: the response to
//! send and, when bindings change, the [`Changes`] to apply first. Nothing is written by
//! `process`: the caller applies the changes to its store and sends the 200 only when the
//! write succeeded (a failed write becomes a 500/503, never a claimed registration), which is
//! what [`register`] does, re-reading and retrying when another writer got there first.
//!
//! What stays with the caller: authentication (step 3, `sip-auth`) and the decision whether
//! the authenticated user may register this AOR (step 4: answer 403 when not), and the
//! transaction layer (retransmissions of a REGISTER are absorbed there, §17.2).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::time::Duration;

use sip_parser::bytes::Bytes;
use sip_parser::{
    Aor, Contact, HeaderName, HostKind, Message, ResponseBuilder, SipDate, Transport, Uri,
    reason_phrase,
};

use crate::binding::{Binding, BindingFields, Flags, Source};
use crate::change::{Changes, Event, Op, Snapshot, order};
use crate::gruu::pub_gruu;
use crate::policy::{Keepalive, PathMode, Policy, WhenFull};
use crate::store::{LocationStore, StoreError};

/// How many times [`register`] re-reads and redoes a REGISTER whose write lost a race.
pub const MAX_ATTEMPTS: usize = 4;

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its status code.
    pub status: u16,
    /// The whole response, ready for the transport.
    pub response: Bytes,
    /// The bindings it lists (the AOR's bindings once the changes are applied), best first.
    pub bindings: Vec<Binding>,
}

/// What to do with a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The Request-URI names a domain this registrar does not serve (§10.3 step 1): proxy
    /// it to that domain, or refuse it (403).
    NotResponsible,
    /// Send this response; nothing changes (an error, or a query without Contact).
    Reply(Reply),
    /// Apply these changes to the store, then send this 200; if the write fails, send
    /// [`failure`] instead.
    Update {
        /// The writes, conditional on the snapshot's version.
        changes: Changes,
        /// The 200 to send once they are applied.
        reply: Reply,
    },
}

impl Outcome {
    /// The status of the response, `None` for [`Outcome::NotResponsible`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::NotResponsible => None,
            Self::Reply(r) | Self::Update { reply: r, .. } => Some(r.status),
        }
    }
}

/// Why [`aor_of`] found no AOR to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The Request-URI names a domain this registrar does not serve (§10.3 step 1).
    NotResponsible,
    /// Answer this (405, 400, 420, 404).
    Reply(Reply),
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotResponsible => Outcome::NotResponsible,
            Refusal::Reply(r) => Outcome::Reply(r),
        }
    }
}

/// The canonical AOR a REGISTER is about: §10.3 steps 1, 2 and 5 (Request-URI domain,
/// `Require`, To → AOR), done before the store is read.
pub fn aor_of<B: AsRef<[u8]>>(request: &Message<B>, policy: &Policy) -> Result<Aor, Refusal> {
    let fail = |status, reason| Err(Refusal::Reply(reply(request, status, reason, |_| {})));
    if request.method() != Some("REGISTER") {
        // RFC 3261 §21.4.6: "The response MUST include an Allow header field containing a
        // list of valid methods for the indicated address."
        return Err(Refusal::Reply(reply(
            request,
            405,
            reason_phrase(405),
            |b| {
                b.header("Allow", "REGISTER");
            },
        )));
    }
    // Step 1: "The registrar inspects the Request-URI to determine whether it has access to
    // bindings for the domain identified in the Request-URI."
    let Some(Ok(ruri)) = request.request_uri_parsed() else {
        return fail(400, "Bad Request-URI");
    };
    if !policy.is_local_domain(ruri.host) {
        return Err(Refusal::NotResponsible);
    }
    // Step 2: "the registrar MUST process the Require header field values as described for
    // UASs in Section 8.2.2" (420 Bad Extension listing what it does not support).
    let mut unsupported = String::new();
    for tag in request.require() {
        let Ok(tag) = tag else {
            return fail(400, "Bad Require");
        };
        let ok = (tag.eq_ignore_ascii_case("path") && policy.path != PathMode::Ignore)
            || (tag.eq_ignore_ascii_case("outbound") && policy.outbound)
            || (tag.eq_ignore_ascii_case("gruu") && policy.gruu);
        if !ok {
            if !unsupported.is_empty() {
                unsupported.push_str(", ");
            }
            unsupported.push_str(tag);
        }
    }
    if !unsupported.is_empty() {
        return Err(Refusal::Reply(reply(
            request,
            420,
            reason_phrase(420),
            |b| {
                b.header("Unsupported", unsupported);
            },
        )));
    }
    // Step 5: "The registrar extracts the address-of-record from the To header field of the
    // request. If the address-of-record is not valid for the domain in the Request-URI, the
    // registrar MUST send a 404 (Not Found) response".
    let Ok(to) = request.to() else {
        return fail(400, "Bad To");
    };
    let Ok(to_uri) = to.uri() else {
        return fail(400, "Bad To");
    };
    if !policy.is_local_domain(to_uri.host) {
        return fail(404, reason_phrase(404));
    }
    Aor::new(&to_uri, policy.user_case).or_else(|_| fail(404, reason_phrase(404)))
}

/// One binding of the tentative set.
struct Tentative {
    binding: Binding,
    /// Written by this request (so not a candidate for replace-oldest, and not checked
    /// again for CSeq order).
    touched: bool,
}

/// Processes a REGISTER against the AOR's current bindings (RFC 3261 §10.3 steps 1, 2 and
/// 5–8; steps 3 and 4 are the caller's). `current` is what the store returned for
/// [`aor_of`]`(request)`; `source` is where the request came from; `now` is wall-clock
/// time since the Unix epoch.
///
/// Pure: the same inputs give the same outcome, and nothing is written.
pub fn process<B: AsRef<[u8]>>(
    request: &Message<B>,
    source: &Source,
    current: &Snapshot,
    now: Duration,
    policy: &Policy,
) -> Outcome {
    match aor_of(request, policy) {
        Ok(aor) => process_aor(request, &aor, source, current, now, policy),
        Err(refusal) => refusal.into(),
    }
}

/// [`process`] for the AOR [`aor_of`] gave (so that [`register`] works it out once).
fn process_aor<B: AsRef<[u8]>>(
    request: &Message<B>,
    aor: &Aor,
    source: &Source,
    current: &Snapshot,
    now: Duration,
    policy: &Policy,
) -> Outcome {
    let fail =
        |status, reason: &'static str| Outcome::Reply(reply(request, status, reason, |_| {}));
    let Some(call_id) = request.call_id().filter(|c| !c.is_empty()) else {
        return fail(400, "Missing Call-ID");
    };
    let cseq = match request.cseq() {
        Ok(c) if c.method == "REGISTER" => c.seq,
        _ => return fail(400, "Bad CSeq"),
    };
    let contacts: Vec<Contact<'_>> = match request.contacts().collect::<Result<_, _>>() {
        Ok(c) => c,
        Err(_) => return fail(400, "Bad Contact"),
    };
    if contacts.len() > policy.max_contacts_per_request {
        return fail(400, "Too Many Contacts In Request");
    }
    let supported = |tag: &str| {
        request
            .supported()
            .chain(request.require())
            .any(|t| t.is_ok_and(|t| t.eq_ignore_ascii_case(tag)))
    };
    let outbound = policy.outbound && supported("outbound");
    let gruu = policy.gruu && supported("gruu");

    // RFC 3327 §5.3: the registrar stores the Path vector with each contact of the REGISTER
    // and copies the Path header field values into the 200.
    let (path, echo_path) = match path_of(request, policy, supported("path")) {
        Ok(p) => p,
        Err(r) => return Outcome::Reply(r),
    };

    // RFC 5626 §6: a flow registered through a proxy needs that first hop to support
    // outbound, which it shows with the `ob` parameter of the Path it added (the last one).
    if outbound
        && contacts
            .iter()
            .any(|c| c.reg_id().is_some() && c.sip_instance().is_some())
        && request.via().count() > 1
    {
        let ob = request
            .paths()
            .last()
            .and_then(Result::ok)
            .and_then(|p| p.uri().ok())
            .is_some_and(|u| u.params.has("ob"));
        if !ob {
            return fail(439, reason_phrase(439));
        }
    }

    // Step 6: "If the Contact header field is present, the registrar checks if there is one
    // Contact field value that contains the special value "*" and an Expires field. If the
    // request has additional Contact fields or an expiration time other than zero, the
    // request is invalid, and the server MUST return a 400 (Invalid Request)".
    if contacts.iter().any(|c| matches!(c, Contact::Star)) {
        if contacts.len() != 1 {
            return fail(400, "Wildcard Contact Not Alone");
        }
        if request.expires() != Ok(Some(0)) {
            return fail(400, "Wildcard Contact Without Expires 0");
        }
        // "the registrar checks whether the Call-ID agrees with the value stored for each
        // binding. If not, it MUST remove the binding. If it does agree, it MUST remove the
        // binding only if the CSeq in the request is higher than the value stored for that
        // binding. Otherwise, the update MUST be aborted and the request fails."
        if current
            .bindings()
            .iter()
            .any(|b| b.call_id() == call_id && b.cseq() >= cseq)
        {
            return fail(400, OUT_OF_ORDER);
        }
        let changes = Changes::expecting(aor.as_str(), current.version).with(Op::Clear);
        let r = ok_reply(
            request,
            source,
            aor,
            &[],
            now,
            policy,
            gruu,
            echo_path,
            false,
        );
        return Outcome::Update { changes, reply: r };
    }

    // Step 7: each contact in turn.
    let now_s = now.as_secs();
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let user_agent = user_agent(request, policy.max_user_agent_len);
    let mut set: Vec<Tentative> = current
        .bindings()
        .iter()
        .map(|b| Tentative {
            binding: b.clone(),
            touched: false,
        })
        .collect();
    let mut ops: Vec<Op> = Vec::new();
    let mut flows = false;
    for contact in &contacts {
        let Some(addr) = contact.addr() else {
            continue; // `*` handled above
        };
        let Ok(uri_text) = core::str::from_utf8(addr.raw_uri) else {
            return fail(400, "Bad Contact");
        };
        if uri_text.len() > policy.max_contact_len {
            return fail(400, "Contact Too Long");
        }
        let Ok(uri) = addr.uri() else {
            return fail(400, "Bad Contact");
        };
        // "If the field value has an "expires" parameter, that value MUST be taken as the
        // requested expiration. If there is no such parameter, but the request has an
        // Expires header field, that value MUST be taken [...]. If there is neither, a
        // locally-configured default value MUST be taken".
        let Ok(mut expires) = request.contact_expiry(contact, policy.default_expires) else {
            return fail(400, "Bad Expires");
        };
        if expires != 0 && expires < policy.min_expires {
            // "If and only if the requested expiration interval is greater than zero AND
            // smaller than one hour AND less than a registrar-configured minimum, the
            // registrar MAY reject the registration with a response of 423 (Interval Too
            // Brief). This response MUST contain a Min-Expires header field".
            if expires < 3600 {
                let min = policy.min_expires;
                return Outcome::Reply(reply(request, 423, reason_phrase(423), |b| {
                    b.header("Min-Expires", format!("{min}"));
                }));
            }
            expires = policy.min_expires; // an hour or more, below a minimum above an hour
        }
        // "The registrar MAY choose an expiration less than the requested expiration
        // interval."
        expires = expires.min(policy.max_expires);

        let instance = contact.sip_instance();
        // RFC 5626 §6: with `outbound` supported, a contact with +sip.instance and reg-id
        // is a flow, identified by the two (not by its URI).
        let reg_id = contact.reg_id().filter(|_| outbound && instance.is_some());
        let mut flags = Flags::empty();
        if reg_id.is_some() {
            flags = flags | Flags::OUTBOUND;
            flows = true;
        } else {
            let rport = request
                .top_via()
                .ok()
                .flatten()
                .is_some_and(|v| v.rport.is_some());
            if behind_nat(&uri, source, rport) {
                flags = flags | Flags::NAT;
            }
            let ping = match policy.keepalive {
                Keepalive::Off => false,
                Keepalive::NatUdp => {
                    flags.contains(Flags::NAT) && source.transport == Transport::Udp
                }
                Keepalive::All => true,
            };
            if ping {
                flags = flags | Flags::KEEPALIVE;
            }
        }
        let fields = BindingFields {
            contact: uri_text,
            expires_at: now_s.saturating_add(u64::from(expires)),
            last_modified_ms: now_ms,
            q: contact.q().or(policy.default_q),
            call_id,
            cseq,
            path: &path,
            user_agent,
            instance,
            reg_id,
            source: Some(*source),
            flags,
        };
        let Ok(new) = Binding::new(&fields) else {
            return fail(400, "Bad Contact");
        };
        // "For each address, the registrar then searches the list of current bindings using
        // the URI comparison rules."
        match set.iter().position(|t| t.binding.same_binding(&new)) {
            Some(i) => {
                let old = &set[i];
                // "If the Call-ID value in the existing binding differs from the Call-ID
                // value in the request, the binding MUST be removed if the expiration time is
                // zero and updated otherwise. If they are the same, the registrar compares
                // the CSeq value. If the value is higher than that of the existing binding,
                // it MUST update or remove the binding as above. If not, the update MUST be
                // aborted and the request fails."
                if !old.touched && old.binding.call_id() == call_id && old.binding.cseq() >= cseq {
                    return fail(400, OUT_OF_ORDER);
                }
                if old.binding.contact() != new.contact() {
                    // A flow re-registered with another URI: replace it whole.
                    ops.push(Op::Remove(old.binding.clone()));
                }
                if expires == 0 {
                    ops.push(Op::Remove(set.remove(i).binding));
                } else {
                    ops.push(Op::Put(new.clone()));
                    set[i] = Tentative {
                        binding: new,
                        touched: true,
                    };
                }
            }
            // "If the binding does not exist, it is tentatively added."
            None if expires != 0 => {
                ops.push(Op::Put(new.clone()));
                set.push(Tentative {
                    binding: new,
                    touched: true,
                });
            }
            None => {}
        }
    }

    if let Some(max) = policy.max_contacts {
        if set.len() > max.limit {
            let fresh = set.iter().filter(|t| t.touched).count();
            if max.when_full == WhenFull::Reject || fresh > max.limit {
                return Outcome::Reply(reply(request, 503, TOO_MANY, |b| {
                    if let Some(s) = policy.retry_after {
                        b.header("Retry-After", format!("{s}"));
                    }
                }));
            }
            // Drop the least recently refreshed untouched bindings.
            while set.len() > max.limit {
                let Some(i) = set
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| !t.touched)
                    .min_by_key(|(_, t)| (t.binding.last_modified_ms(), t.binding.expires_at()))
                    .map(|(i, _)| i)
                else {
                    break;
                };
                ops.push(Op::Remove(set.remove(i).binding));
            }
        }
    }

    // Step 8.
    let mut bindings: Vec<Binding> = set.into_iter().map(|t| t.binding).collect();
    bindings.sort_by(order);
    let r = ok_reply(
        request, source, aor, &bindings, now, policy, gruu, echo_path, flows,
    );
    if ops.is_empty() {
        return Outcome::Reply(r);
    }
    let mut changes = Changes::expecting(aor.as_str(), current.version);
    changes.ops = ops;
    Outcome::Update { changes, reply: r }
}

const OUT_OF_ORDER: &str = "Out-of-order CSeq";
const TOO_MANY: &str = "Too Many Registered Contacts";

/// The Path vector of the request (values joined with commas as received) and whether to
/// echo it, or the refusal.
fn path_of<B: AsRef<[u8]>>(
    request: &Message<B>,
    policy: &Policy,
    supported: bool,
) -> Result<(String, bool), Reply> {
    let fail = |status, reason| Err(reply(request, status, reason, |_| {}));
    let mut path = String::new();
    if policy.path == PathMode::Ignore {
        return Ok((path, false));
    }
    for h in request.headers_of(HeaderName::Path) {
        let Ok(v) = core::str::from_utf8(h.value) else {
            return fail(400, "Bad Path");
        };
        if !path.is_empty() {
            path.push(',');
        }
        path.push_str(v);
    }
    if path.is_empty() {
        return Ok((path, false));
    }
    if request.paths().any(|p| p.is_err()) {
        return fail(400, "Bad Path");
    }
    if path.len() > policy.max_path_len {
        return fail(400, "Path Too Long");
    }
    match policy.path {
        PathMode::Strict if !supported => Err(reply(request, 421, reason_phrase(421), |b| {
            b.header("Require", "path");
        })),
        PathMode::Lenient => Ok((path, supported)),
        _ => Ok((path, true)),
    }
}

/// The User-Agent to store: UTF-8, cut at a character boundary, else nothing.
fn user_agent<B: AsRef<[u8]>>(request: &Message<B>, max: usize) -> &str {
    let Some(ua) = request
        .user_agent()
        .and_then(|u| core::str::from_utf8(u).ok())
    else {
        return "";
    };
    if ua.len() <= max {
        return ua;
    }
    let mut end = max;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    &ua[..end]
}

/// Kamailio `nat_uac_test` flags 1 + 2 + 16 in one: the Contact names an IP address other
/// than the one the REGISTER came from (or another port), or a private address.
/// Whether a contact is behind a NAT (Kamailio `nat_uac_test`): its IP is not the one the
/// REGISTER came from, or only the port differs and the client asked for symmetric response
/// routing with `rport` (RFC 3581). A UA that sends from one port and receives on another
/// of the same address without `rport` (several sockets, not a NAT) is reached at its
/// Contact.
fn behind_nat(contact: &Uri<'_>, source: &Source, rport: bool) -> bool {
    let host = contact.host.trim_start_matches('[').trim_end_matches(']');
    let ip = match contact.host_kind() {
        Some(HostKind::Ipv4 | HostKind::Ipv6) => host.parse::<core::net::IpAddr>().ok(),
        _ => None,
    };
    let Some(ip) = ip else {
        return false; // a host name: nothing to compare
    };
    if ip != source.addr.ip() {
        return true;
    }
    let port = contact.port.unwrap_or(match source.transport {
        Transport::Tls | Transport::Wss => 5061,
        _ => 5060,
    });
    rport
        && port != source.addr.port()
        && !matches!(source.transport, Transport::Ws | Transport::Wss)
}

/// Writes `q=` for a q in thousandths (`1000` → `1`, `500` → `0.5`).
fn write_q(out: &mut String, q: u16) {
    if q >= 1000 {
        out.push('1');
        return;
    }
    let mut frac = format!("{q:03}");
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac.is_empty() {
        out.push('0');
    } else {
        let _ = write!(out, "0.{frac}");
    }
}

/// The Contact value of a binding in a 200 (§10.3 step 8: "Each Contact value MUST feature
/// an "expires" parameter indicating its expiration interval chosen by the registrar").
pub fn contact_value(b: &Binding, aor: &str, now: Duration, gruu: bool) -> String {
    let mut v = String::with_capacity(b.contact().len() + 64);
    let _ = write!(v, "<{}>;expires={}", b.contact(), b.remaining(now));
    if let Some(q) = b.q() {
        v.push_str(";q=");
        write_q(&mut v, q);
    }
    if let Some(i) = b.instance() {
        // RFC 5626 §6 / RFC 5627 §3.2: the instance goes back with its contact.
        let _ = write!(v, ";+sip.instance=\"{i}\"");
        if gruu {
            let _ = write!(v, ";pub-gruu=\"{}\"", pub_gruu(aor, i));
        }
    }
    if let Some(r) = b.reg_id().filter(|_| b.flags().contains(Flags::OUTBOUND)) {
        let _ = write!(v, ";reg-id={r}");
    }
    v
}

#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
fn ok_reply<B: AsRef<[u8]>>(
    request: &Message<B>,
    source: &Source,
    aor: &Aor,
    bindings: &[Binding],
    now: Duration,
    policy: &Policy,
    gruu: bool,
    echo_path: bool,
    flows: bool,
) -> Reply {
    let mut builder = ResponseBuilder::new(request, 200, reason_phrase(200));
    builder.fill_via_received(source.addr);
    for b in bindings {
        builder.header("Contact", contact_value(b, aor.as_str(), now, gruu));
    }
    if echo_path {
        for h in request.headers_of(HeaderName::Path) {
            builder.header("Path", Bytes::copy_from_slice(h.value));
        }
    }
    if flows {
        // RFC 5626 §6: the registrar that set up a flow says so with Require: outbound.
        builder.header("Require", "outbound");
        if let Some(t) = policy.flow_timer {
            builder.header("Flow-Timer", format!("{t}"));
        }
    }
    if policy.date {
        builder.header(
            "Date",
            String::from(SipDate::from_unix(now.as_secs()).as_str()),
        );
    }
    Reply {
        status: 200,
        response: builder.build(),
        bindings: bindings.to_vec(),
    }
}

fn reply<B: AsRef<[u8]>>(
    request: &Message<B>,
    status: u16,
    reason: &'static str,
    extra: impl FnOnce(&mut ResponseBuilder<'_, B>),
) -> Reply {
    let mut b = ResponseBuilder::new(request, status, reason);
    extra(&mut b);
    Reply {
        status,
        response: b.build(),
        bindings: Vec::new(),
    }
}

/// The response for a REGISTER whose bindings could not be read or written: 500, or 503
/// (with `Retry-After` when the policy sets one) when retrying may work
/// ([`StoreError::status`]). §10.3 step 7: "If any one of them fails (for example, because
/// the back-end database commit failed), the request MUST fail with a 500 (Server Error)
/// response".
pub fn failure<B: AsRef<[u8]>>(request: &Message<B>, error: &StoreError, policy: &Policy) -> Reply {
    let status = error.status();
    reply(request, status, reason_phrase(status), |b| {
        if let (503, Some(s)) = (status, policy.retry_after) {
            b.header("Retry-After", format!("{s}"));
        }
    })
}

/// What [`register`] did.
#[derive(Debug)]
pub struct Registration {
    /// The response to send; `None` when the registrar is not responsible for the domain
    /// (§10.3 step 1: forward the request, or answer 403).
    pub reply: Option<Reply>,
    /// What changed in the store.
    pub events: Vec<Event>,
    /// The store error behind a 500/503, for the log.
    pub error: Option<StoreError>,
}

/// Runs a REGISTER through the registrar against `store`: [`aor_of`], `lookup`, [`process`],
/// `apply`; on a [`StoreError::Conflict`] (another thread or node wrote the AOR in between)
/// it reads again and redoes the request, up to [`MAX_ATTEMPTS`] times. A store error
/// becomes a 500/503 ([`failure`]), so the client is never told it registered when the
/// binding was not stored.
pub fn register<S: LocationStore + ?Sized, B: AsRef<[u8]>>(
    store: &S,
    request: &Message<B>,
    source: &Source,
    now: Duration,
    policy: &Policy,
) -> Registration {
    let done = |reply, events, error| Registration {
        reply,
        events,
        error,
    };
    let aor = match aor_of(request, policy) {
        Ok(aor) => aor,
        Err(Refusal::Reply(r)) => return done(Some(r), Vec::new(), None),
        Err(Refusal::NotResponsible) => return done(None, Vec::new(), None),
    };
    let mut last = None;
    for _ in 0..MAX_ATTEMPTS {
        let snapshot = match store.lookup(aor.as_str(), now) {
            Ok(s) => s,
            Err(e) => return done(Some(failure(request, &e, policy)), Vec::new(), Some(e)),
        };
        match process_aor(request, &aor, source, &snapshot, now, policy) {
            Outcome::NotResponsible => return done(None, Vec::new(), None),
            Outcome::Reply(r) => return done(Some(r), Vec::new(), None),
            Outcome::Update { changes, reply } => match store.apply(&changes, now) {
                Ok(applied) => return done(Some(reply), applied.events, None),
                Err(e @ StoreError::Conflict { .. }) => last = Some(e),
                Err(e) => return done(Some(failure(request, &e, policy)), Vec::new(), Some(e)),
            },
        }
    }
    let e = last.unwrap_or(StoreError::Conflict {
        aor: aor.as_str().into(),
    });
    done(Some(failure(request, &e, policy)), Vec::new(), Some(e))
}
