//! The stateful proxy core (RFC 3261 §16): forwarding a server transaction's request to a
//! target set (parallel or sequential forking), the response context (best response,
//! challenge aggregation, CANCEL of pending branches, Timer C), upstream CANCEL, and the
//! stateless relay of §16.11.
//!
//! The TU makes the routing decision (a [`ForwardPlan`]); everything RFC 3261 says about
//! carrying it out lives here: Max-Forwards (483), loop detection (482), Route processing
//! (§16.4, loose and strict routers), Record-Route (doubled when the request changes
//! interface or transport), our Via with a fresh branch, `received`/`rport` on the upstream
//! Via (§18.2.1, RFC 3581), 100 Trying for INVITE, and then §16.7 for every response.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::Hasher;
use core::time::Duration;

use bytes::Bytes;
use sip_parser::{HeaderName, Limits, Message, ResponseBuilder, Uri};
use smallvec::SmallVec;

use crate::config::Locals;
use crate::io::{Destination, Event, Flow, Output, ServerTxId, Transmit};
use crate::key::Branch;
use crate::layer::{Core, Owner, SentRequest, TransactionLayer, TxError};

/// One destination of a proxied request (one branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The branch's Request-URI (a registered contact, an upstream server); `None` keeps the
    /// request's (after Route processing).
    pub uri: Option<Bytes>,
    /// Where to send it: transport, the local listener to send from, the resolved remote
    /// address.
    pub flow: Flow,
    /// q-value in thousandths (1000 = q 1.0), for [`Forking::Sequential`].
    pub q: u16,
    /// Route entries to put on top, in order (a registered contact's Path, RFC 3327 §5.3),
    /// each a full value such as `<sip:edge.example.com;lr>`.
    pub route: Vec<Bytes>,
}

impl Target {
    /// A target sent over `flow`, keeping the Request-URI.
    pub fn to(flow: Flow) -> Self {
        Target {
            uri: None,
            flow,
            q: 1000,
            route: Vec::new(),
        }
    }

    /// A target with a new Request-URI.
    #[must_use]
    pub fn with_uri(mut self, uri: impl Into<Bytes>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// A target with a q-value (thousandths).
    #[must_use]
    pub fn with_q(mut self, q: u16) -> Self {
        self.q = q;
        self
    }
}

/// How the targets of a plan are tried (RFC 3261 §16.6 and §16.7 step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Forking {
    /// Every target at once.
    Parallel,
    /// Groups of equal q-value, highest first; the next group starts when every branch of
    /// the current one ended without a 2xx or 6xx. Targets of equal q are tried in
    /// parallel.
    #[default]
    Sequential,
}

/// The TU's routing decision for a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardPlan {
    /// Where to send it.
    pub targets: Vec<Target>,
    /// Insert our Record-Route (two when the request leaves on another listener or
    /// transport than it came in on).
    pub record_route: bool,
    /// Parallel or by q-value groups.
    pub forking: Forking,
    /// When every branch fails (no 2xx, no 6xx), report [`Event::BranchesFailed`] and wait
    /// for the TU (failover to more targets with another `forward`, or `finish`) instead of
    /// sending the best response at once.
    pub on_failure: bool,
}

/// Why a request could not be forwarded. Where a response follows from the error the layer
/// has already sent it (483, 482, 400) and the server transaction completes normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The server transaction is gone or its id is stale.
    #[error("no such transaction")]
    NoTransaction,
    /// The transaction is already answered or already being proxied.
    #[error("transaction already answered or proxied")]
    WrongState,
    /// The plan has no target.
    #[error("no target")]
    NoTargets,
    /// Max-Forwards was 0: answered 483 Too Many Hops (§16.3 step 3).
    #[error("Max-Forwards is 0 (answered 483)")]
    TooManyHops,
    /// Max-Forwards is malformed: answered 400.
    #[error("Max-Forwards malformed (answered 400)")]
    BadMaxForwards,
    /// The request has come back unchanged: answered 482 Loop Detected (§16.3 step 4).
    #[error("loop detected (answered 482)")]
    Loop,
    /// No listener for the target's transport / local address.
    #[error("no listener to send from")]
    NoListener,
    /// (Stateless relay of a response) the top Via is not ours, or no Via is left.
    #[error("response not routable: top Via not ours or no next Via")]
    NotOurs,
}

impl From<TxError> for ForwardError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::NoTransaction => ForwardError::NoTransaction,
            _ => ForwardError::WrongState,
        }
    }
}

/// Where a request goes after Route processing (§16.4), for the TU's routing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop<'a> {
    /// A Route entry not ours remains: forward to this URI (loose routing), keeping the
    /// Request-URI.
    Route(&'a [u8]),
    /// No Route left: route by this Request-URI (the request's own, or, after a strict
    /// router, the last Route entry that replaces it).
    RequestUri(&'a [u8]),
}

/// Route processing for one request: how many of the top Route entries are ours (popped),
/// and whether the previous hop was a strict router (§16.4: the Request-URI is ours, the
/// last Route entry replaces it).
#[derive(Debug, Clone, Copy, Default)]
struct RouteEdits {
    strict: bool,
    pop: usize,
}

fn route_edits(locals: &Locals, msg: &Message) -> RouteEdits {
    route_plan(locals, msg).0
}

/// [`RouteEdits`] and the URIs of the Route entries it was computed from, top first.
fn route_plan<'m>(locals: &Locals, msg: &'m Message) -> (RouteEdits, SmallVec<[&'m [u8]; 4]>) {
    let routes: SmallVec<[&[u8]; 4]> = msg
        .routes()
        .filter_map(Result::ok)
        .map(|r| r.raw_uri)
        .collect();
    let ours = |raw: &[u8]| Uri::parse(raw).is_ok_and(|u| locals.is_our_uri(&u));
    // Our Record-Route URIs carry `lr`: one of them as the Request-URI means the previous
    // hop routed strictly and moved the next hop into the last Route entry.
    let strict = !routes.is_empty()
        && msg
            .request_uri_parsed()
            .and_then(Result::ok)
            .is_some_and(|u| u.params.has("lr") && locals.is_our_uri(&u));
    let usable = if strict {
        routes.len() - 1
    } else {
        routes.len()
    };
    let pop = routes[..usable].iter().take_while(|r| ours(r)).count();
    (RouteEdits { strict, pop }, routes)
}

impl TransactionLayer {
    /// Where `request` goes after Route processing (§16.4): the first Route entry that is
    /// not ours, or the Request-URI (rewritten from the last Route when the previous hop was
    /// a strict router). The TU routes by it; [`forward`](Self::forward) applies the same
    /// processing to the request it sends.
    pub fn next_hop<'m>(&self, request: &'m Message) -> NextHop<'m> {
        let (edits, routes) = route_plan(&self.locals, request);
        let usable = if edits.strict {
            routes.len() - 1
        } else {
            routes.len()
        };
        if edits.pop < usable {
            return NextHop::Route(routes[edits.pop]);
        }
        if edits.strict {
            if let Some(last) = routes.last() {
                return NextHop::RequestUri(last);
            }
        }
        NextHop::RequestUri(request.request_uri().unwrap_or_default())
    }

    /// Proxies server transaction `tx` to the plan's targets (RFC 3261 §16.6) and runs the
    /// response context (§16.7) until a final response went upstream. May be called again
    /// after [`Event::BranchesFailed`] with more targets (failover).
    ///
    /// For an INVITE, 100 Trying goes upstream at once. Errors that have an answer (483, 482,
    /// 400) are answered here.
    pub fn forward(
        &self,
        now: Duration,
        tx: ServerTxId,
        plan: ForwardPlan,
        out: &mut Output,
    ) -> Result<(), ForwardError> {
        let mut result = Ok(());
        self.run_on(tx, now, out, |core, slot| {
            result = core.forward(slot, plan);
            Ok(())
        })?;
        result
    }

    /// After [`Event::BranchesFailed`]: send the best response upstream now.
    pub fn finish(&self, now: Duration, tx: ServerTxId, out: &mut Output) -> Result<(), TxError> {
        self.run_on(tx, now, out, |core, slot| {
            let waiting = core
                .ctx(slot)
                .is_some_and(|c| c.awaiting_tu && !c.sent_final);
            if !waiting {
                return Err(TxError::WrongState);
            }
            if let Some(c) = core.ctx(slot) {
                c.awaiting_tu = false;
            }
            core.send_best(slot);
            Ok(())
        })
    }

    /// Forwards `request` statelessly (RFC 3261 §16.11, Kamailio's `forward()`): Route
    /// processing, Max-Forwards, optional Record-Route, and our Via with a branch derived
    /// from the request's own (so retransmissions and the CANCEL of a statelessly forwarded
    /// INVITE get the same branch). For the ACK of a 2xx ([`Event::Ack`]), and for a whole
    /// proxy run in stateless mode. `arrived` is where the request came from (for
    /// `received`/`rport` and Record-Route).
    pub fn relay(
        &self,
        request: &Message,
        arrived: Flow,
        target: &Target,
        record_route: bool,
        out: &mut Output,
    ) -> Result<(), ForwardError> {
        match request.max_forwards() {
            Ok(Some(0)) => return Err(ForwardError::TooManyHops),
            Err(_) => return Err(ForwardError::BadMaxForwards),
            _ => {}
        }
        let branch = self.stateless_branch(request);
        let bytes = build_branch(
            self,
            request,
            arrived,
            target,
            branch.as_bytes(),
            record_route,
        )?;
        out.transmits.push(Transmit {
            flow: target.flow,
            destination: Destination::Addr,
            payload: bytes,
            tx: None,
        });
        Ok(())
    }

    /// Forwards a response statelessly (§16.11, and the late 2xx of a finished proxy
    /// transaction, [`Event::StrayResponse`]): our top Via removed, sent where the next Via
    /// says (its `received`/`rport`, else its sent-by).
    pub fn relay_response(&self, response: &Message, out: &mut Output) -> Result<(), ForwardError> {
        let top = response
            .top_via()
            .ok()
            .flatten()
            .ok_or(ForwardError::NotOurs)?;
        let transport = top.transport_kind().ok_or(ForwardError::NotOurs)?;
        if !self.locals.is_us(top.host, top.port, transport) {
            return Err(ForwardError::NotOurs);
        }
        let next = response
            .via_entry(1)
            .and_then(Result::ok)
            .ok_or(ForwardError::NotOurs)?;
        let next_transport = next.transport_kind().ok_or(ForwardError::NotOurs)?;
        let local = self
            .locals
            .first_of(next_transport)
            .ok_or(ForwardError::NoListener)?;
        let (remote, destination) = match next.response_target(next_transport, None) {
            sip_parser::ResponseTarget::Connection(a) | sip_parser::ResponseTarget::Addr(a) => {
                (a, Destination::Addr)
            }
            sip_parser::ResponseTarget::Host { host, port } => (
                local.listener.local,
                Destination::Host {
                    host: response.bytes_of(host.as_bytes()),
                    port: port.unwrap_or(next_transport.default_port()),
                },
            ),
        };
        let mut e = response.edit();
        e.remove_top_via();
        out.transmits.push(Transmit {
            flow: Flow {
                transport: next_transport,
                local: local.listener.local,
                remote,
                conn: None,
            },
            destination,
            payload: e.to_bytes(),
            tx: None,
        });
        Ok(())
    }

    /// §16.11: a branch that is the same for every retransmission of a request (and for the
    /// CANCEL of a stateless INVITE): a keyed hash of its own branch and sent-by, or of the
    /// RFC 2543 fields.
    fn stateless_branch(&self, request: &Message) -> Branch {
        let mut h = self.prf.hasher();
        h.write(b"stateless");
        if let Ok(Some(v)) = request.top_via() {
            h.write(v.branch.unwrap_or_default().as_bytes());
            h.write(v.host.as_bytes());
            h.write_u16(v.port.unwrap_or(0));
        }
        if !request
            .top_via()
            .ok()
            .flatten()
            .is_some_and(|v| v.has_rfc3261_branch())
        {
            h.write(request.call_id().unwrap_or_default().as_bytes());
            h.write_u32(request.cseq().map_or(0, |c| c.seq));
            h.write(
                request
                    .from()
                    .ok()
                    .and_then(|f| f.tag())
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        let a = h.finish();
        h.write_u8(1);
        // Not decodable as one of our stateful branches (those name a live slot): the id
        // part is all ones, a slot no shard has.
        Branch::new(u64::MAX, a ^ h.finish(), None)
    }
}

/// Builds the request for one branch: Route processing (§16.4), Request-URI, Max-Forwards,
/// Record-Route, Path routes, `received`/`rport` on the upstream Via, and our Via.
fn build_branch(
    layer: &TransactionLayer,
    request: &Message,
    arrived: Flow,
    target: &Target,
    branch: &[u8],
    record_route: bool,
) -> Result<Bytes, ForwardError> {
    let locals = &layer.locals;
    let out_local = locals
        .find(target.flow.transport, target.flow.local)
        .ok_or(ForwardError::NoListener)?;
    let edits = route_edits(locals, request);
    let mut e = request.edit();
    if edits.strict {
        if let Some(last) = e.pop_last_route() {
            let uri = strip_brackets(last);
            e.set_request_uri(Bytes::copy_from_slice(uri));
        }
    }
    for _ in 0..edits.pop {
        e.pop_route();
    }
    if let Some(uri) = &target.uri {
        e.set_request_uri(uri.clone());
    }
    match e.decrement_max_forwards() {
        Ok(_) => {}
        Err(sip_parser::MaxForwardsError::Zero) => return Err(ForwardError::TooManyHops),
        Err(_) => return Err(ForwardError::BadMaxForwards),
    }
    if record_route {
        let in_local = locals.find(arrived.transport, arrived.local);
        if let Some(l) = in_local {
            e.prepend_record_route(l.record_route.clone());
        }
        let same = in_local.is_some_and(|l| {
            l.listener.local == out_local.listener.local
                && l.listener.transport == out_local.listener.transport
        });
        if !same {
            e.prepend_record_route(out_local.record_route.clone());
        }
    }
    for r in target.route.iter().rev() {
        e.prepend_header("Route", r.clone());
    }
    // §18.2.1 / RFC 3581: note where the request came from, so responses routed by Via
    // (statelessly, or after this transaction ended) find the way back.
    let _ = e.fill_via_received(arrived.remote);
    let mut via = Vec::with_capacity(out_local.via_prefix.len() + branch.len());
    via.extend_from_slice(&out_local.via_prefix);
    via.extend_from_slice(branch);
    e.prepend_via(Bytes::from(via));
    Ok(e.to_bytes())
}

fn strip_brackets(route: &[u8]) -> &[u8] {
    match sip_parser::NameAddr::parse(route) {
        Ok(a) => a.raw_uri,
        Err(_) => route,
    }
}

// ---- the response context -------------------------------------------------------------

/// One branch of a proxied request.
#[derive(Debug, Clone, Copy)]
struct BranchState {
    slot: u32,
    epoch: u16,
    /// Final status (a synthetic 408 on timeout, 503 on transport failure).
    status: Option<u16>,
}

/// The best final response so far (§16.7 step 6).
#[derive(Debug, Clone)]
struct Best {
    rank: u32,
    status: u16,
    branch: u16,
    /// `None` for a synthetic response (timeout, transport error).
    response: Option<Message>,
}

/// The response context of one proxied server transaction (§16.7).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyCtx {
    branches: SmallVec<[BranchState; 2]>,
    later: VecDeque<Vec<Target>>,
    record_route: bool,
    on_failure: bool,
    best: Option<Box<Best>>,
    /// WWW-/Proxy-Authenticate values of every 401/407, with their branch.
    challenges: Vec<(u16, &'static str, Bytes)>,
    pub(crate) sent_final: bool,
    sent_2xx: bool,
    cancelled: bool,
    six: bool,
    pub(crate) awaiting_tu: bool,
    /// The §16.6 item 8 hash of the request, put into every branch.
    loop_hash: Option<u64>,
    /// Where the branches of the latest group (or `forward` call) start.
    group_start: usize,
}

/// §16.7 step 6: 6xx first, then the lowest class; among 4xx, the ones that tell the client
/// how to resubmit (401, 407, 415, 420, 484).
fn rank(status: u16) -> u32 {
    let s = u32::from(status);
    match status {
        600..=699 => 0,
        300..=399 => 1000 + s,
        401 | 407 => 2000,
        415 => 2001,
        420 => 2002,
        484 => 2003,
        400..=499 => 2100 + s,
        500..=599 => 3000 + s,
        _ => 9000 + s,
    }
}

const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

impl Core<'_> {
    pub(crate) fn ctx(&mut self, slot: u32) -> Option<&mut ProxyCtx> {
        self.shard.server(slot)?.proxy.as_deref_mut()
    }

    fn forward(&mut self, slot: u32, plan: ForwardPlan) -> Result<(), ForwardError> {
        let locals = &self.layer.locals;
        let Some(s) = self.shard.server(slot) else {
            return Err(ForwardError::NoTransaction);
        };
        if !s.proceeding() {
            return Err(ForwardError::WrongState);
        }
        if plan.targets.is_empty() {
            return Err(ForwardError::NoTargets);
        }
        match &mut s.proxy {
            Some(c) if c.awaiting_tu && !c.sent_final => {
                c.awaiting_tu = false;
                c.on_failure = plan.on_failure;
            }
            Some(_) => return Err(ForwardError::WrongState),
            None => {
                // §16.3 step 3.
                let refuse = match s.request.max_forwards() {
                    Ok(Some(0)) => Some((483, "Too Many Hops", ForwardError::TooManyHops)),
                    Err(_) => Some((400, "Bad Max-Forwards", ForwardError::BadMaxForwards)),
                    _ => None,
                };
                // §16.3 step 4: our Via with this request's loop hash means it came back
                // unchanged.
                let loop_hash = s.request.loop_hash().ok();
                let refuse = refuse.or_else(|| {
                    is_loop(locals, &s.request, loop_hash).then_some((
                        482,
                        "Loop Detected",
                        ForwardError::Loop,
                    ))
                });
                if let Some((status, reason, err)) = refuse {
                    let r = ResponseBuilder::new(&s.request, status, reason).build();
                    let _ = self.server_respond(slot, r, status);
                    return Err(err);
                }
                s.proxy = Some(Box::new(ProxyCtx {
                    record_route: plan.record_route,
                    on_failure: plan.on_failure,
                    loop_hash: loop_hash.map(|h| h.0),
                    ..ProxyCtx::default()
                }));
                if s.is_invite() && !s.responded() {
                    let trying = ResponseBuilder::new(&s.request, 100, "Trying").build();
                    let _ = self.server_respond(slot, trying, 100);
                }
            }
        }
        let (first, later) = group(plan.targets, plan.forking);
        if let Some(c) = self.ctx(slot) {
            c.later = later;
        }
        self.start_group(slot, first);
        Ok(())
    }

    fn start_group(&mut self, slot: u32, targets: Vec<Target>) {
        let epoch = self.shard.epoch(slot);
        let Some(s) = self.shard.server(slot) else {
            return;
        };
        let request = s.request.clone();
        let arrived = s.flow;
        if let Some(c) = s.proxy.as_deref_mut() {
            c.group_start = c.branches.len();
        }
        let record_route = s.proxy.as_ref().is_some_and(|c| c.record_route);
        let loop_hash = s.proxy.as_ref().and_then(|c| c.loop_hash);
        for target in targets {
            let Some(index) = self
                .ctx(slot)
                .map(|c| c.branches.len())
                .filter(|&n| n < self.layer.max_branches)
            else {
                break;
            };
            let index = index as u16;
            let Some(cslot) = self.shard.alloc() else {
                self.push_failed_branch(slot, 503);
                continue;
            };
            let id = self.shard.id(cslot);
            let branch = Branch::new(id, self.shard.unguessable(&self.layer.prf), loop_hash);
            let built = build_branch(
                self.layer,
                &request,
                arrived,
                &target,
                branch.as_bytes(),
                record_route,
            );
            let Ok(wire) = built else {
                self.shard.free_unused(cslot);
                self.push_failed_branch(slot, 500);
                continue;
            };
            let cepoch = self.shard.epoch(cslot);
            if let Some(c) = self.ctx(slot) {
                c.branches.push(BranchState {
                    slot: cslot,
                    epoch: cepoch,
                    status: None,
                });
            }
            self.start_client(
                cslot,
                SentRequest::built(wire, request.method().unwrap_or_default()),
                target.flow,
                branch,
                Owner::Proxy { slot, epoch, index },
            );
        }
        self.check_complete(slot);
    }

    fn push_failed_branch(&mut self, slot: u32, status: u16) {
        let Some(c) = self.ctx(slot) else { return };
        let index = c.branches.len() as u16;
        c.branches.push(BranchState {
            slot: u32::MAX,
            epoch: 0,
            status: Some(status),
        });
        c.consider(index, status, None);
    }

    /// A response of branch `index` reached the TU level of its client transaction.
    pub(crate) fn proxy_response(
        &mut self,
        (slot, epoch, index): (u32, u16, u16),
        status: u16,
        msg: Message,
        flow: Flow,
    ) {
        if self
            .shard
            .server_at(slot, epoch)
            .and_then(|s| s.proxy.as_ref())
            .is_none()
        {
            // The server transaction is gone: the TU relays a late 2xx statelessly
            // (`relay_response`).
            if (200..300).contains(&status) {
                self.out.events.push(Event::StrayResponse {
                    response: msg,
                    flow,
                });
            }
            return;
        }
        match status {
            101..=199 if self.ctx(slot).is_some_and(|c| !c.sent_final) => {
                self.forward_upstream(slot, status, msg);
            }
            200..=299 => {
                if let Some(c) = self.ctx(slot) {
                    if let Some(b) = c.branches.get_mut(index as usize) {
                        b.status = Some(status);
                    }
                    c.sent_final = true;
                    c.sent_2xx = true;
                    c.later.clear();
                }
                self.forward_upstream(slot, status, msg);
                self.cancel_pending(slot, Some(COMPLETED_ELSEWHERE));
            }
            300..=699 => self.branch_final(slot, index, status, Some(msg)),
            _ => {}
        }
    }

    pub(crate) fn proxy_branch_failed(&mut self, slot: u32, epoch: u16, index: u16, status: u16) {
        if self
            .shard
            .server_at(slot, epoch)
            .and_then(|s| s.proxy.as_ref())
            .is_some()
        {
            self.branch_final(slot, index, status, None);
        }
    }

    fn branch_final(&mut self, slot: u32, index: u16, status: u16, msg: Option<Message>) {
        let Some(c) = self.ctx(slot) else { return };
        if let Some(b) = c.branches.get_mut(index as usize) {
            if b.status.is_some() {
                return;
            }
            b.status = Some(status);
        }
        if c.sent_final {
            return;
        }
        c.consider(index, status, msg);
        if (600..700).contains(&status) {
            c.six = true;
            c.later.clear();
            self.cancel_pending(slot, None);
        }
        self.check_complete(slot);
    }

    fn check_complete(&mut self, slot: u32) {
        let tx = self.server_id(slot);
        let Some(c) = self.ctx(slot) else { return };
        if c.sent_final || c.awaiting_tu || c.branches.iter().any(|b| b.status.is_none()) {
            return;
        }
        if !c.cancelled && !c.six {
            if let Some(next) = c.later.pop_front() {
                self.start_group(slot, next);
                return;
            }
            if c.on_failure {
                c.awaiting_tu = true;
                let best = c.best.as_ref().map_or(408, |b| b.status);
                // The best of the group that just ended: what failover decides on.
                let last = c.branches[c.group_start..]
                    .iter()
                    .filter_map(|b| b.status)
                    .min_by_key(|&st| rank(st))
                    .unwrap_or(best);
                self.out
                    .events
                    .push(Event::BranchesFailed { tx, best, last });
                return;
            }
        }
        self.send_best(slot);
    }

    /// Sends the chosen final response upstream (§16.7 steps 6–8).
    pub(crate) fn send_best(&mut self, slot: u32) {
        let tx = self.server_id(slot);
        let Some(s) = self.shard.server(slot) else {
            return;
        };
        let Some(c) = s.proxy.as_deref_mut() else {
            return;
        };
        if c.sent_final {
            return;
        }
        c.sent_final = true;
        let cancelled = c.cancelled;
        let best = c.best.take().map(|b| *b);
        let challenges = core::mem::take(&mut c.challenges);
        let invite = s.is_invite();
        let built = |status: u16| {
            let reason = sip_parser::reason_phrase(status);
            ResponseBuilder::new(&s.request, status, reason).build()
        };
        let (status, bytes) = match best {
            None => {
                let st = if cancelled { 487 } else { 408 };
                (st, built(st))
            }
            // §16.7 step 6: a 503 from downstream goes up as 500; the proxy's own 503 (no
            // branch could be created) stays 503.
            Some(Best {
                status: 503,
                response: Some(_),
                ..
            }) => (500, built(500)),
            Some(Best {
                status,
                response: None,
                ..
            }) => {
                let st = if cancelled && status == 408 {
                    487
                } else {
                    status
                };
                (st, built(st))
            }
            Some(Best {
                status,
                response: Some(resp),
                branch,
                ..
            }) => {
                let mut e = resp.edit();
                e.remove_top_via();
                if status == 401 || status == 407 {
                    for (b, name, value) in &challenges {
                        if *b != branch {
                            e.add_header(*name, value.clone());
                        }
                    }
                }
                (status, e.to_bytes())
            }
        };
        // RFC 4320 §4.2: no 408 to a non-INVITE request; the client has given up by now,
        // so the transaction ends without a final response.
        if !invite && status == 408 {
            self.terminate_server(slot, true);
            return;
        }
        let _ = self.server_respond(slot, bytes.clone(), status);
        if let Ok(m) = Message::parse_with(bytes, &Limits::BUILT) {
            self.out.events.push(Event::Forwarded {
                tx,
                status,
                response: m,
            });
        }
    }

    fn forward_upstream(&mut self, slot: u32, status: u16, msg: Message) {
        let tx = self.server_id(slot);
        let bytes = {
            let mut e = msg.edit();
            e.remove_top_via();
            e.to_bytes()
        };
        if self.server_respond(slot, bytes, status).is_ok() {
            self.out.events.push(Event::Forwarded {
                tx,
                status,
                response: msg,
            });
        }
    }

    fn cancel_pending(&mut self, slot: u32, reason: Option<&'static str>) {
        let pending: SmallVec<[(u32, u16); 4]> = match self.ctx(slot) {
            Some(c) => c
                .branches
                .iter()
                .filter(|b| b.status.is_none() && b.slot != u32::MAX)
                .map(|b| (b.slot, b.epoch))
                .collect(),
            None => return,
        };
        for (cslot, cepoch) in pending {
            if self.shard.epoch(cslot) == cepoch {
                self.cancel_client(cslot, reason);
                self.shard.reschedule(cslot);
            }
        }
    }

    /// An upstream CANCEL matched this proxied INVITE (§16.10).
    pub(crate) fn proxy_cancelled(&mut self, slot: u32) {
        let Some(c) = self.ctx(slot) else { return };
        if c.sent_final {
            return;
        }
        c.cancelled = true;
        c.later.clear();
        let waiting = core::mem::take(&mut c.awaiting_tu);
        self.cancel_pending(slot, None);
        if waiting {
            self.send_best(slot);
        } else {
            self.check_complete(slot);
        }
    }

    /// The TU-answer guard fired: stop waiting for the branches.
    pub(crate) fn proxy_give_up(&mut self, slot: u32) {
        self.cancel_pending(slot, None);
        if let Some(c) = self.ctx(slot) {
            c.later.clear();
            c.awaiting_tu = false;
        }
        self.send_best(slot);
    }
}

impl ProxyCtx {
    /// Weighs a final response of branch `index` against the best so far, and keeps its
    /// challenges (§16.7 step 7).
    fn consider(&mut self, index: u16, status: u16, msg: Option<Message>) {
        if let (401 | 407, Some(m)) = (status, &msg) {
            for h in m.headers() {
                let name = match h.kind {
                    HeaderName::WwwAuthenticate => "WWW-Authenticate",
                    HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
                    _ => continue,
                };
                self.challenges.push((index, name, m.bytes_of(h.value)));
            }
        }
        // A response received tells the caller more than one the proxy made up (a branch
        // timeout as 408, a send failure as 503): it wins within its class.
        let r = rank(status) + if msg.is_none() { 900 } else { 0 };
        if self.best.as_ref().is_none_or(|b| r < b.rank) {
            self.best = Some(Box::new(Best {
                rank: r,
                status,
                branch: index,
                response: msg,
            }));
        }
    }
}

/// Targets in the order they are tried: the first group, and the groups after it. Parallel
/// forking makes one group; sequential, groups of equal q, highest first. One group (the
/// usual single target) is the caller's vector as it came.
fn group(mut targets: Vec<Target>, forking: Forking) -> (Vec<Target>, VecDeque<Vec<Target>>) {
    let mut later = VecDeque::new();
    if forking == Forking::Sequential {
        targets.sort_by_key(|t| core::cmp::Reverse(t.q));
        // Split the groups off from the back, the lowest q last.
        while let Some(q) = targets.last().map(|t| t.q) {
            match targets.iter().rposition(|t| t.q != q) {
                Some(p) => later.push_front(targets.split_off(p + 1)),
                None => break,
            }
        }
    }
    (targets, later)
}

/// §16.3 step 4: one of our Vias carries this request's loop hash.
fn is_loop(locals: &Locals, request: &Message, hash: Option<sip_parser::LoopHash>) -> bool {
    let Some(hash) = hash else {
        return false;
    };
    request.via().filter_map(Result::ok).any(|v| {
        v.transport_kind()
            .is_some_and(|t| locals.is_us(v.host, v.port, t))
            && v.branch
                .and_then(|b| Branch::loop_hash(b.as_bytes()))
                .is_some_and(|h| h == hash.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(qs: &[u16]) -> Vec<Target> {
        let flow = Flow::udp(
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5070".parse().unwrap(),
        );
        qs.iter()
            .enumerate()
            .map(|(i, &q)| {
                Target::to(flow)
                    .with_q(q)
                    .with_uri(alloc::format!("sip:{i}@h"))
            })
            .collect()
    }

    fn uris(g: &[Target]) -> Vec<&[u8]> {
        g.iter()
            .map(|t| t.uri.as_deref().unwrap_or_default())
            .collect()
    }

    /// Sequential forking as `Forking::Sequential` documents it: groups of equal q, highest
    /// first, the targets of one group in the order given.
    #[test]
    fn sequential_forking_groups_by_q_highest_first() {
        let (first, later) = group(targets(&[500, 1000, 500, 800, 1000]), Forking::Sequential);
        assert_eq!(uris(&first), [&b"sip:1@h"[..], b"sip:4@h"]);
        assert_eq!(later.len(), 2);
        assert_eq!(uris(&later[0]), [&b"sip:3@h"[..]]);
        assert_eq!(uris(&later[1]), [&b"sip:0@h"[..], b"sip:2@h"]);
        // One q, or parallel forking: one group, as given.
        let (first, later) = group(targets(&[700, 700]), Forking::Sequential);
        assert_eq!((first.len(), later.len()), (2, 0));
        let (first, later) = group(targets(&[500, 1000]), Forking::Parallel);
        assert_eq!(uris(&first), [&b"sip:0@h"[..], b"sip:1@h"]);
        assert!(later.is_empty());
    }
}
