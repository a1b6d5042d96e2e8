//! The routing decision for each request (the fixed pipeline of `docs/pipeline.md`, modelled
//! on Kamailio's default script): sanity answers, in-dialog routing, local users, upstream
//! sets with failover and health probes, relaying.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use sip_parser::{Message, RequestBuilder, ResponseBuilder, Transport, Uri};
use sip_transaction::{ClientTxId, Flow, Forking, ForwardPlan, NextHop, ServerTxId, Target};

use super::dispatch::{Change, Key};
use super::local::Caller;
use super::{Proxy, Work};
use crate::config::Mode;

/// Per-transaction memory of the routing logic: the upstream destinations still to try
/// (failover), and which OPTIONS probe went where.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The destination being tried, and those left.
    failover: Mutex<HashMap<ServerTxId, (SocketAddr, Vec<SocketAddr>)>>,
    /// Probes in flight: destination and when the probe was sent (monotonic).
    probes: Mutex<HashMap<ClientTxId, (SocketAddr, std::time::Duration)>>,
    /// Per destination, when the probe whose outcome was last applied had been sent: an
    /// older probe's outcome arriving later (a timeout after 64·T1, longer than the probe
    /// interval) is stale and ignored, so a destination that came back is not marked down
    /// again by a probe sent while it was away. One entry per upstream destination.
    probe_applied: Mutex<HashMap<SocketAddr, std::time::Duration>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Proxy {
    /// Answers server transaction `tx` with `status`.
    pub(crate) fn respond(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        status: u16,
        headers: &[(&str, &str)],
    ) {
        self.respond_reason(
            w,
            tx,
            req,
            status,
            sip_parser::reason_phrase(status),
            headers,
        );
    }

    /// [`respond`](Self::respond) with a reason phrase saying why.
    pub(crate) fn respond_reason(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) {
        // An initial INVITE answered here never reaches the dialog tracker: its attempt and
        // final status count in the call KPIs from here (a 407 is subtracted from ASR's
        // denominator, a 404 or 480 is a failed attempt).
        if let (Some(t), Some("INVITE"), 200..) = (&self.local.dialogs, req.method(), status) {
            if req.to().ok().and_then(|to| to.tag()).is_none() {
                t.kpi().record(sip_dialog::CallEvent::Attempt);
                t.kpi().record(sip_dialog::CallEvent::Final { status });
            }
        }
        let mut b = ResponseBuilder::new(req, status, reason);
        for (n, v) in headers {
            b.header(n.to_string(), v.to_string());
        }
        if self
            .layer
            .respond_built(w.now.mono, tx, status, b.build(), &mut w.scratch)
            .is_err()
        {
            tracing::debug!(status, "response refused by the transaction");
        }
    }

    /// Where a URI points: transport and address (literal IP, or resolved).
    pub(crate) fn resolve_uri(&self, raw: &[u8]) -> Option<(Transport, SocketAddr)> {
        let raw = sip_parser::NameAddr::parse(raw).map_or(raw, |n| n.raw_uri);
        let u = Uri::parse(raw).ok()?;
        if !u.is_sip() {
            return None;
        }
        let transport = u
            .params
            .get("transport")
            .flatten()
            .and_then(Transport::parse)
            .unwrap_or(if u.scheme == sip_parser::Scheme::Sips {
                Transport::Tls
            } else {
                Transport::Udp
            });
        let host = u.host.trim_start_matches('[').trim_end_matches(']');
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => *self.resolver.resolve(host).first()?,
        };
        Some((
            transport,
            SocketAddr::new(ip, u.port.unwrap_or(transport.default_port())),
        ))
    }

    /// A flow to `remote` over `transport`, from our listener of that transport (same address
    /// family first).
    pub(crate) fn flow_to(&self, transport: Transport, remote: SocketAddr) -> Option<Flow> {
        let ls = &self.cfg.listen;
        let pick = ls
            .iter()
            .find(|l| {
                l.address.transport == transport && l.address.addr.is_ipv4() == remote.is_ipv4()
            })
            .or_else(|| ls.iter().find(|l| l.address.transport == transport))?;
        Some(Flow {
            transport,
            local: pick.address.addr,
            remote,
            conn: None,
        })
    }

    fn target_uri(&self, raw: &[u8]) -> Option<Target> {
        let (t, a) = self.resolve_uri(raw)?;
        Some(Target::to(self.flow_to(t, a)?))
    }

    /// The listener a Route entry names: its address and port, or its advertised host and
    /// port.
    fn listener_named(&self, raw: &[u8]) -> Option<SocketAddr> {
        let u = Uri::parse(raw).ok()?;
        let host = u.host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<IpAddr>().ok();
        self.cfg.listen.iter().find_map(|l| {
            let a = l.address.addr;
            let by_addr = ip == Some(a.ip()) && u.port.unwrap_or(5060) == a.port();
            let by_advertise = l.advertise.as_ref().is_some_and(|ad| {
                ad.host.eq_ignore_ascii_case(u.host)
                    && u.port.unwrap_or(5060) == ad.port.unwrap_or(a.port())
            });
            (by_addr || by_advertise).then_some(a)
        })
    }

    /// The target of an in-dialog request: like [`target_uri`](Self::target_uri), but sent
    /// from the listener the last of our leading Route entries names. With double
    /// Record-Route that is the listener on the next hop's side (RFC 5658's double
    /// Record-Routing: the request leaves through the interface the route set recorded for
    /// that side), not the first listener of the transport.
    fn in_dialog_target(&self, req: &Message, raw: &[u8]) -> Option<Target> {
        let (t, a) = self.resolve_uri(raw)?;
        let mut flow = self.flow_to(t, a)?;
        let side = req
            .routes()
            .map_while(|r| r.ok().and_then(|r| self.listener_named(r.raw_uri)))
            .last();
        if let Some(local) = side {
            let usable = self.cfg.listen.iter().any(|l| {
                l.address.addr == local
                    && l.address.transport == t
                    && local.is_ipv4() == a.is_ipv4()
            });
            if usable {
                flow.local = local;
            }
        }
        Some(Target::to(flow))
    }

    /// Whether a host names this proxy (a domain served, or a listener).
    pub(crate) fn is_our_host(&self, host: &str, port: Option<u16>) -> bool {
        let h = host.to_ascii_lowercase();
        // A domain of ours, on a port we listen on (or none): sip:alice@127.0.0.1:5070 is
        // somebody else on our host, not us.
        let our_port =
            port.is_none_or(|p| self.cfg.listen.iter().any(|l| l.address.addr.port() == p));
        if our_port && self.domains.contains(&h) {
            return true;
        }
        let bare = h.trim_start_matches('[').trim_end_matches(']');
        self.cfg.listen.iter().any(|l| {
            let a = l.address.addr;
            let port_ok = port.is_none_or(|p| p == a.port());
            let addr_ok = bare.parse::<IpAddr>().is_ok_and(|ip| ip == a.ip());
            // The advertised address with its own port (what a provider was given as our
            // Contact, `uplink`).
            let advertised = l.advertise.as_ref().is_some_and(|ad| {
                ad.host.eq_ignore_ascii_case(host)
                    && port.is_none_or(|p| p == ad.port.unwrap_or(a.port()))
            });
            (addr_ok && port_ok) || advertised
        })
    }

    pub(crate) fn forward_to(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        targets: Vec<Target>,
        rr: bool,
        failover: bool,
    ) {
        let plan = ForwardPlan {
            targets,
            record_route: rr,
            forking: if self.cfg.sequential_forking {
                Forking::Sequential
            } else {
                Forking::Parallel
            },
            on_failure: failover,
        };
        if let Err(e) = self.layer.forward(w.now.mono, tx, plan, &mut w.scratch) {
            tracing::debug!(error = %e, "not forwarded");
        }
    }

    /// Dialog-creating methods get our Record-Route.
    pub(crate) fn creates_dialog(req: &Message) -> bool {
        matches!(
            req.method(),
            Some("INVITE" | "SUBSCRIBE" | "REFER" | "NOTIFY")
        )
    }

    pub(crate) fn route_request(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        flow: Flow,
    ) {
        // §16.3 step 3 first, even for OPTIONS to us.
        if let Ok(Some(0)) = req.max_forwards() {
            return self.respond(w, tx, req, 483, &[]);
        }
        match req.request_uri_parsed() {
            Some(Ok(u)) if u.is_sip() || u.scheme == sip_parser::Scheme::Tel => {}
            _ => return self.respond(w, tx, req, 416, &[]),
        }
        let unsupported: Vec<&str> = req.proxy_require().filter_map(Result::ok).collect();
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            return self.respond(w, tx, req, 420, &[("Unsupported", &list)]);
        }
        let in_dialog = req.to().ok().and_then(|t| t.tag()).is_some();
        if in_dialog {
            self.dialog_request(w, req);
        }
        if self.draining() && !in_dialog {
            return self.respond(w, tx, req, 503, &[("Retry-After", "5")]);
        }
        if in_dialog {
            return self.route_in_dialog(w, tx, req);
        }
        if req.method() == Some("CANCEL") {
            // A CANCEL matching no transaction (§16.10 says forward statelessly; we have
            // nothing to cancel it against).
            return self.respond(w, tx, req, 481, &[]);
        }
        if req.routes().next().is_some() {
            // Pre-loaded Route: ours popped; a next hop that is not us is a foreign
            // destination (authentication and `allow_relay`), never a free ride.
            match self.layer.next_hop(req) {
                NextHop::Route(hop) => return self.route_preloaded(w, tx, req, flow, hop),
                NextHop::RequestUri(hop) if Some(hop) != req.request_uri() => {
                    // A strict router before us moved the next hop into the last Route.
                    let ours = Uri::parse(hop).is_ok_and(|u| self.is_our_host(u.host, u.port));
                    if !ours {
                        return self.route_preloaded(w, tx, req, flow, hop);
                    }
                }
                NextHop::RequestUri(_) => {}
            }
        }
        match self.cfg.mode {
            Mode::Stateful => self.route_stateful(w, tx, req, flow),
            _ => self.route_initial(w, tx, req, flow),
        }
    }

    /// An initial request whose pre-loaded Route names a foreign next hop (ours popped).
    /// Kamailio's default script removes such Route headers; here the next hop is treated
    /// as what it is, a foreign destination: REGISTER is refused, other requests are
    /// authenticated like any call (step 7) and need `allow_relay` (else `403`).
    fn route_preloaded(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        flow: Flow,
        hop: &[u8],
    ) {
        const NOT_RELAYING: &str = "Not relaying: pre-loaded Route to a foreign host";
        if req.method() == Some("REGISTER") {
            self.stats.not_routed.inc();
            return self.respond_reason(w, tx, req, 403, NOT_RELAYING, &[]);
        }
        let caller = self.authorize_call(w, tx, req, flow);
        if caller == Caller::Answered {
            return;
        }
        if !self.cfg.limits.allow_relay {
            self.stats.not_routed.inc();
            return self.respond_reason(w, tx, req, 403, NOT_RELAYING, &[]);
        }
        if self.refuse_foreign(w, tx, req, caller) {
            return;
        }
        if let Some(t) = self.target_uri(hop) {
            let rr = self.cfg.record_route && Self::creates_dialog(req);
            self.forward_to(w, tx, vec![t], rr, false);
        } else {
            self.stats.not_routed.inc();
            self.respond(w, tx, req, 404, &[]);
        }
    }

    fn route_in_dialog(&self, w: &mut Work<'_>, tx: ServerTxId, req: &Message) {
        let uri = match self.layer.next_hop(req) {
            NextHop::Route(r) => r,
            NextHop::RequestUri(r) => {
                if Uri::parse(r).is_ok_and(|u| self.is_our_host(u.host, u.port)) {
                    // Addressed to us within a dialog we do not hold (§12.2.2: 481).
                    self.stats.not_routed.inc();
                    return self.respond(w, tx, req, 481, &[]);
                }
                r
            }
        };
        if let Some(t) = self.in_dialog_target(req, uri) {
            self.forward_to(w, tx, vec![t], false, false);
        } else {
            self.stats.not_routed.inc();
            self.respond(w, tx, req, 404, &[]);
        }
    }

    /// The load harness's `stateful` role: every initial request to the default set (or by
    /// its Request-URI), Record-Routed.
    fn route_stateful(&self, w: &mut Work<'_>, tx: ServerTxId, req: &Message, flow: Flow) {
        let set = self
            .dispatcher
            .index("default")
            .or(if self.dispatcher.is_empty() {
                None
            } else {
                Some(0)
            });
        if let Some(set) = set {
            return self.dispatch(w, tx, req, set, flow);
        }
        match req.request_uri().and_then(|u| self.target_uri(u)) {
            Some(t) => self.forward_to(w, tx, vec![t], self.cfg.record_route, false),
            None => self.respond(w, tx, req, 404, &[]),
        }
    }

    fn route_initial(&self, w: &mut Work<'_>, tx: ServerTxId, req: &Message, flow: Flow) {
        let Some(Ok(uri)) = req.request_uri_parsed() else {
            return self.respond(w, tx, req, 416, &[]);
        };
        let ours = self.is_our_host(uri.host, uri.port);
        if req.method() == Some("REGISTER") {
            if ours {
                return self.route_register(w, tx, req, flow);
            }
            self.stats.not_routed.inc();
            return self.respond(w, tx, req, 403, &[]);
        }
        // OPTIONS to the proxy itself: a health answer.
        if ours && req.method() == Some("OPTIONS") && uri.user.is_none() {
            return self.respond(
                w,
                tx,
                req,
                200,
                &[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, UPDATE, PRACK")],
            );
        }
        let caller = self.authorize_call(w, tx, req, flow);
        if caller == Caller::Answered {
            return;
        }
        // Local users take calls from anyone (Kamailio's default script too).
        if ours && self.route_local_user(w, tx, req, flow, &uri) {
            return;
        }
        // Upstream sets (PSTN, PBXs) and foreign destinations: vouched callers only.
        let set = self
            .dispatcher
            .set_for(uri.user, uri.host)
            .or_else(|| ours.then(|| self.dispatcher.index("default")).flatten());
        if let Some(set) = set {
            if self.refuse_foreign(w, tx, req, caller) {
                return;
            }
            return self.dispatch(w, tx, req, set, flow);
        }
        if ours {
            self.stats.not_routed.inc();
            return self.respond(w, tx, req, 404, &[]);
        }
        if !self.cfg.limits.allow_relay {
            self.stats.not_routed.inc();
            return self.respond(w, tx, req, 403, &[]);
        }
        if self.refuse_foreign(w, tx, req, caller) {
            return;
        }
        if let Some(t) = req.request_uri().and_then(|u| self.target_uri(u)) {
            let rr = self.cfg.record_route && Self::creates_dialog(req);
            self.forward_to(w, tx, vec![t], rr, false);
        } else {
            self.stats.not_routed.inc();
            self.respond(w, tx, req, 404, &[]);
        }
    }

    /// Sends to the set's first choice; the others wait for a failover.
    fn dispatch(&self, w: &mut Work<'_>, tx: ServerTxId, req: &Message, set: usize, inbound: Flow) {
        let from_user = req
            .from()
            .ok()
            .and_then(|f| f.uri().ok().and_then(|u| u.user))
            .unwrap_or_default();
        let key = Key {
            call_id: req.call_id().unwrap_or_default(),
            from_user,
        };
        let mut order = self.dispatcher.order(set, key);
        if order.is_empty() {
            return self.respond(w, tx, req, 503, &[]);
        }
        let first = order.remove(0);
        let Some(flow) = self.flow_to(Transport::Udp, first) else {
            return self.respond(w, tx, req, 500, &[]);
        };
        if self.cfg.mode == Mode::Full && !self.track_dialog(w, tx, req, inbound, &flow) {
            return;
        }
        let failover = !order.is_empty();
        if failover {
            lock(&self.pending.failover).insert(tx, (first, order));
        }
        self.stats.dispatched.inc();
        let rr = self.cfg.record_route && Self::creates_dialog(req);
        self.forward_to(w, tx, vec![Target::to(flow)], rr, failover);
    }

    /// Every branch failed: on a timeout or a 5xx, mark the destination down and try the
    /// next of the set (Kamailio's `failure_route` with `ds_next_dst`); otherwise (486,
    /// 404 …) the answer stands.
    pub(crate) fn failover(&self, w: &mut Work<'_>, tx: ServerTxId, best: u16) {
        let retry = best == 408 || (500..600).contains(&best);
        let next = {
            let mut m = lock(&self.pending.failover);
            match m.get_mut(&tx) {
                Some((current, rest)) if retry && !rest.is_empty() => {
                    let failed = *current;
                    *current = rest.remove(0);
                    let next = *current;
                    if rest.is_empty() {
                        m.remove(&tx);
                    }
                    Some((failed, next))
                }
                _ => {
                    m.remove(&tx);
                    None
                }
            }
        };
        let Some((failed, next)) = next else {
            let _ = self.layer.finish(w.now.mono, tx, &mut w.scratch);
            return;
        };
        if best == 408 || best == 503 {
            Self::log_changes(&self.dispatcher.failure(failed));
        }
        let Some(flow) = self.flow_to(Transport::Udp, next) else {
            let _ = self.layer.finish(w.now.mono, tx, &mut w.scratch);
            return;
        };
        self.stats.failovers.inc();
        let more = lock(&self.pending.failover).contains_key(&tx);
        let plan = ForwardPlan {
            targets: vec![Target::to(flow)],
            record_route: self.cfg.record_route,
            forking: Forking::Parallel,
            on_failure: more,
        };
        if self
            .layer
            .forward(w.now.mono, tx, plan, &mut w.scratch)
            .is_err()
        {
            let _ = self.layer.finish(w.now.mono, tx, &mut w.scratch);
        }
    }

    /// A server transaction ended: drop what routing kept for it.
    pub(crate) fn forget(&self, tx: ServerTxId) {
        lock(&self.pending.failover).remove(&tx);
    }

    /// The ACK of a 2xx: forwarded statelessly along the route (§16.7 … §13.2.2.4).
    pub(crate) fn route_ack(&self, w: &mut Work<'_>, req: &Message, flow: Flow) {
        if req.to().ok().and_then(|t| t.tag()).is_none() {
            return; // no dialog to route it in (a 2xx always carries a To tag)
        }
        let uri = match self.layer.next_hop(req) {
            NextHop::Route(r) | NextHop::RequestUri(r) => r,
        };
        let ours = Uri::parse(uri).is_ok_and(|u| self.is_our_host(u.host, u.port));
        if ours {
            return; // an ACK for a 2xx we sent ourselves (none today): absorbed
        }
        if let Some(t) = self.in_dialog_target(req, uri) {
            let _ = self.layer.relay(req, flow, &t, false, &mut w.scratch);
        }
    }

    /// The load harness's `stateless` role (Kamailio `forward()`): requests along their Route
    /// or to the default set / Request-URI, responses by Via.
    pub(crate) fn stateless(&self, w: &mut Work<'_>, msg: &Message, flow: Flow) {
        if !msg.is_request() {
            if self.layer.relay_response(msg, &mut w.scratch).is_err() {
                self.stats.stray_dropped.inc();
            }
            return;
        }
        let target = match self.layer.next_hop(msg) {
            NextHop::Route(r) => self.in_dialog_target(msg, r),
            NextHop::RequestUri(r) => {
                let ours = Uri::parse(r).is_ok_and(|u| self.is_our_host(u.host, u.port));
                if ours {
                    let set = self
                        .dispatcher
                        .index("default")
                        .or(if self.dispatcher.is_empty() {
                            None
                        } else {
                            Some(0)
                        });
                    set.and_then(|s| {
                        let key = Key {
                            call_id: msg.call_id().unwrap_or_default(),
                            from_user: b"",
                        };
                        self.dispatcher.order(s, key).first().copied()
                    })
                    .and_then(|a| self.flow_to(Transport::Udp, a))
                    .map(Target::to)
                } else {
                    self.target_uri(r)
                }
            }
        };
        match target {
            Some(t) => {
                if let Err(e) = self.layer.relay(msg, flow, &t, false, &mut w.scratch) {
                    tracing::debug!(error = %e, "not relayed");
                }
            }
            None => self.stats.not_routed.inc(),
        }
    }

    /// OPTIONS probes due now.
    pub(crate) fn probe(&self, w: &mut Work<'_>) {
        for addr in self.dispatcher.due_probes(w.now.mono) {
            let Some(flow) = self.flow_to(Transport::Udp, addr) else {
                continue;
            };
            let target = format!("sip:{addr}");
            let from = format!("<sip:probe@{}>", flow.local);
            let call_id = format!("probe-{}-{}", w.now.mono.as_millis(), addr.port());
            let r = self.layer.send_request(
                w.now.mono,
                flow,
                |via| {
                    let mut b = RequestBuilder::new("OPTIONS", target.as_str());
                    b.via(via)
                        .from(from.as_str(), Some("probe"))
                        .to(target.as_str(), None)
                        .call_id(call_id.as_str())
                        .cseq(1);
                    b.build()
                },
                &mut w.scratch,
            );
            if let Ok(tx) = r {
                lock(&self.pending.probes).insert(tx, (addr, w.now.mono));
            }
        }
    }

    pub(crate) fn own_response(&self, _w: &mut Work<'_>, tx: ClientTxId, resp: &Message) {
        if resp.status().unwrap_or(0) < 200 {
            return;
        }
        if let Some(addr) = self.probe_outcome(tx) {
            Self::log_changes(&self.dispatcher.success(addr));
        }
    }

    pub(crate) fn own_failure(&self, _w: &mut Work<'_>, tx: ClientTxId) {
        if let Some(addr) = self.probe_outcome(tx) {
            Self::log_changes(&self.dispatcher.failure(addr));
        }
    }

    /// The destination of probe `tx`, unless its outcome is stale: a later probe to the
    /// same destination has had its outcome already.
    fn probe_outcome(&self, tx: ClientTxId) -> Option<SocketAddr> {
        let (addr, sent) = lock(&self.pending.probes).remove(&tx)?;
        let mut applied = lock(&self.pending.probe_applied);
        if applied.get(&addr).is_some_and(|last| *last > sent) {
            tracing::debug!(dst = %addr, "outcome of an older probe ignored");
            return None;
        }
        applied.insert(addr, sent);
        Some(addr)
    }

    fn log_changes(changes: &[(String, SocketAddr, Change)]) {
        for (set, addr, c) in changes {
            match c {
                Change::Down => {
                    tracing::warn!(target: "dispatcher", set = %set, dst = %addr, "dispatcher:dst-down");
                }
                Change::Up => {
                    tracing::info!(target: "dispatcher", set = %set, dst = %addr, "dispatcher:dst-up");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use sip_parser::{Message, Transport};
    use sip_transaction::Flow;

    use crate::config::Config;
    use crate::proxy::{Now, Parts, Proxy, SystemResolver};

    const PRIVATE: &str = "127.0.0.1:5060";
    const PUBLIC: &str = "127.0.0.2:5062";

    fn proxy() -> Proxy {
        proxy_with("")
    }

    fn proxy_with(extra: &str) -> Proxy {
        let cfg = Config::from_toml(
            &format!(
                "domains = [\"sip.test\"]\n[[listen]]\naddress = \"udp:{PRIVATE}\"\n\
                 [[listen]]\naddress = \"udp:{PUBLIC}\"\n{extra}"
            ),
            "test.toml",
        )
        .unwrap()
        .finish()
        .unwrap();
        Proxy::new(
            cfg,
            Parts {
                seed: [7; 32],
                capture: None,
                resolver: Arc::new(SystemResolver),
            },
            Duration::from_secs(1_700_000_000),
        )
        .unwrap()
    }

    /// A BYE within a dialog whose route set is `routes`, sent to the proxy's listener
    /// `at` from `from`, for the UA at `to`. Returns the local address and top Via of what
    /// the proxy sent to `to`.
    fn forward_in_dialog(
        method: &str,
        routes: &[&str],
        at: &str,
        from: &str,
        to: &str,
    ) -> (String, String) {
        let p = proxy();
        let route = routes
            .iter()
            .map(|r| format!("<sip:{r};lr>"))
            .collect::<Vec<_>>()
            .join(", ");
        let bye = format!(
            "{method} sip:ua@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{method}1\r\n\
             Route: {route}\r\nFrom: <sip:a@sip.test>;tag=1\r\nTo: <sip:b@sip.test>;tag=2\r\n\
             Call-ID: rr-side\r\nCSeq: 2 {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let mut out = Vec::new();
        let flow = Flow {
            transport: Transport::Udp,
            local: at.parse().unwrap(),
            remote: from.parse().unwrap(),
            conn: None,
        };
        let now = Now {
            mono: Duration::from_secs(1),
            wall: Duration::from_secs(1_700_000_001),
        };
        p.on_datagram(now, Bytes::from(bye), flow, &mut out);
        let sent = out
            .iter()
            .find(|t| t.flow.remote.to_string() == to)
            .unwrap_or_else(|| panic!("nothing sent to {to}: {out:?}"));
        let m = Message::parse(sent.payload.clone()).unwrap();
        let via = String::from_utf8_lossy(m.via().next().unwrap().unwrap().raw).into_owned();
        (sent.flow.local.to_string(), via)
    }

    /// A request at the header-count limit (128 lines, most of them Vias) still gets its
    /// answer, though the response, with the Content-Length the proxy adds, is one line past
    /// that limit (the fuzz finding of 2026-12-03: the proxy re-read its own response with the
    /// receive limits and sent nothing).
    #[test]
    fn a_request_at_the_header_limit_gets_its_answer() {
        let p = proxy();
        let mut req = String::from("INVITE sip:nobody@sip.test SIP/2.0\r\n");
        req.extend(
            (0..124).map(|i| format!("v: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-edge{i}\r\n")),
        );
        req.push_str("f: <sip:a@sip.test>;tag=1\r\nt: <sip:nobody@sip.test>\r\n");
        req.push_str("i: header-edge\r\nCSeq: 1 INVITE\r\n\r\n");
        assert!(Message::parse(Bytes::from(req.clone())).is_ok());
        let flow = Flow {
            transport: Transport::Udp,
            local: PRIVATE.parse().unwrap(),
            remote: "127.0.0.1:4000".parse().unwrap(),
            conn: None,
        };
        let now = Now {
            mono: Duration::from_secs(1),
            wall: Duration::from_secs(1_700_000_001),
        };
        let mut out = Vec::new();
        p.on_datagram(now, Bytes::from(req), flow, &mut out);
        let finals: Vec<_> = out
            .iter()
            .filter_map(|t| Message::parse_with(t.payload.clone(), &sip_parser::Limits::BUILT).ok())
            .filter_map(|m| m.status())
            .filter(|s| *s >= 200)
            .collect();
        assert_eq!(finals, [404], "{out:?}");
    }

    #[test]
    fn in_dialog_requests_leave_from_the_listener_the_route_set_names_for_their_side() {
        // BYE (a transaction) and the ACK of a 2xx (relayed statelessly) alike.
        for m in ["BYE", "ACK"] {
            // Double Record-Route (RFC 5658): a request entering on the private side pops
            // both of our entries and leaves from the public listener, the last one popped…
            let (local, via) = forward_in_dialog(
                m,
                &[PRIVATE, PUBLIC],
                PRIVATE,
                "127.0.0.1:4000",
                "127.0.0.2:4002",
            );
            assert_eq!(local, PUBLIC, "{m}");
            assert!(via.contains(PUBLIC), "{m}: {via}");
            // …and the mirror image.
            let (local, via) = forward_in_dialog(
                m,
                &[PUBLIC, PRIVATE],
                PUBLIC,
                "127.0.0.2:4002",
                "127.0.0.1:4000",
            );
            assert_eq!(local, PRIVATE, "{m}");
            assert!(via.contains(PRIVATE), "{m}: {via}");
            // A single entry: the listener it names.
            let (local, _) =
                forward_in_dialog(m, &[PUBLIC], PUBLIC, "127.0.0.2:4002", "127.0.0.2:4004");
            assert_eq!(local, PUBLIC, "{m}");
        }
    }

    #[test]
    fn a_late_probe_timeout_does_not_mark_down_a_destination_a_newer_probe_found_up() {
        // T1 = 50 ms: a probe times out after 64·T1 = 3.2 s (RFC 3261 §17.1.2.2, Timer F),
        // longer than the 1 s probe interval, so several probes are in flight at once.
        let upstream = "127.0.0.1:7001";
        let p = proxy_with(&format!(
            "[timers]\nt1_ms = 50\n[[upstream]]\nname = \"pbx\"\n\
             targets = [\"udp:{upstream}\"]\nprobe_interval = 1\n"
        ));
        let is_up = || p.dispatcher.table().sets()[0].destinations[0].is_up();
        let mut up_at = Vec::new();
        let mut answered = 0;
        // The upstream is away for the first 4.5 s, then answers every probe sent after.
        for step in 0..90u64 {
            let now = Now {
                mono: Duration::from_millis(1_000 + step * 100),
                wall: Duration::from_millis(1_700_000_001_000 + step * 100),
            };
            let mut out = Vec::new();
            p.on_timer(now, &mut out);
            for t in out {
                let Ok(m) = Message::parse(t.payload.clone()) else {
                    continue;
                };
                let fresh = now.mono >= Duration::from_millis(5_500);
                if m.method() == Some("OPTIONS") && fresh {
                    let ok = sip_parser::ResponseBuilder::new(&m, 200, "OK").build();
                    let mut more = Vec::new();
                    p.on_datagram(now, ok, t.flow, &mut more);
                    answered += 1;
                }
            }
            up_at.push(is_up());
        }
        assert!(answered >= 2, "probes answered: {answered}");
        // Down once the first probes timed out (1 s + 3.2 s)…
        assert!(!up_at[35], "{up_at:?}");
        // …up from the first answered probe on, for good: the probes sent while it was
        // away time out later (until 8.7 s) and are stale by then.
        let back = up_at.iter().rposition(|u| !u).unwrap() + 1;
        assert!(back < 50, "up again at step {back}: {up_at:?}");
        assert!(up_at[back..].iter().all(|u| *u), "{up_at:?}");
    }
}
