//! The proxy pipeline, sans-IO: bytes, where they came from and the time go in; datagrams
//! to send and the next timer come out. The socket and thread loop (`net`) is thin around
//! it, and the whole proxy runs the same way inside the deterministic simulator
//! (`tests/sim_proxy.rs`).
//!
//! Everything here is policy: which request goes where. Every protocol rule it relies on
//! lives in a crate (`sip-parser`, `sip-transaction`, `sip-auth`, `sip-location`,
//! `sip-dialog`, `hep-codec`).

pub mod admin;
pub mod dispatch;
mod local;
mod persist;
mod route;
pub mod stats;
pub mod uplink;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use hep_codec::{CaptureEvent, CaptureSink};
use sip_auth::IpNet;
use sip_parser::{Limits, Message, ParseError, ResponseBuilder, Transport};
use sip_transaction::{
    Config as TxConfig, Destination, Event, Flow, Listener, Output, ReceiveError, Timers,
    TransactionLayer, Transmit,
};

use crate::config::{Config, Mode};
use dispatch::Dispatcher;
pub use local::SetupError;
pub use stats::Stats;

/// The two clocks: monotonic for timers, wall-clock for what is persisted or shared (nonces,
/// registrations, dialogs, capture timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time since any fixed instant.
    pub mono: Duration,
    /// Time since the Unix epoch.
    pub wall: Duration,
}

/// Name resolution for next hops given as host names (the simulator passes a table; the
/// binary the system resolver).
pub trait Resolve: Send + Sync {
    /// Addresses of `host` (no port).
    fn resolve(&self, host: &str) -> Vec<IpAddr>;
}

/// The system resolver (blocking `getaddrinfo`).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> Vec<IpAddr> {
        use std::net::ToSocketAddrs;
        (host, 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }
}

/// What the proxy is built from besides its configuration.
pub struct Parts {
    /// 32 random bytes keying the transaction table and branches.
    pub seed: [u8; 32],
    /// Where captured messages go (HEP sender, or nothing).
    pub capture: Option<Arc<dyn CaptureSink + Send + Sync>>,
    /// Name resolution.
    pub resolver: Arc<dyn Resolve>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").finish_non_exhaustive()
    }
}

/// The proxy. Shared by every worker thread by reference.
pub struct Proxy {
    pub(crate) cfg: Config,
    pub(crate) layer: TransactionLayer,
    pub(crate) dispatcher: Dispatcher,
    /// Counters (also the metrics).
    pub stats: Stats,
    capture: Option<Arc<dyn CaptureSink + Send + Sync>>,
    pub(crate) resolver: Arc<dyn Resolve>,
    relay_to: ArcSwap<Vec<IpNet>>,
    pub(crate) domains: Vec<String>,
    limits: Limits,
    pub(crate) pending: route::Pending,
    pub(crate) local: local::Local,
    /// Registrations to providers (`uplink`).
    uplinks: uplink::Uplinks,
    draining: std::sync::atomic::AtomicBool,
    /// The configuration in force: the one started with, with the keys a reload applies
    /// ([`admin::RELOADABLE`]) as last reloaded.
    pub(crate) current: ArcSwap<Config>,
    /// What administration calls made the proxy send (BYEs of `dialog end`): handed out by
    /// the next [`Proxy::on_timer`].
    pub(crate) admin_out: Mutex<Vec<Transmit>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("mode", &self.cfg.mode)
            .finish_non_exhaustive()
    }
}

/// One call's working state.
pub(crate) struct Work<'a> {
    pub(crate) now: Now,
    pub(crate) out: &'a mut Vec<Transmit>,
    pub(crate) scratch: Output,
}

std::thread_local! {
    /// The layer's output buffer of this thread, kept between calls so that its lists keep
    /// their capacity (two allocations and frees per message fewer).
    static SCRATCH: std::cell::RefCell<Output> = std::cell::RefCell::new(Output::new());
}

impl<'a> Work<'a> {
    /// Work at `now` whose sends end in `out`, with this thread's scratch output.
    pub(crate) fn new(now: Now, out: &'a mut Vec<Transmit>) -> Self {
        let scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        Work { now, out, scratch }
    }
}

impl Drop for Work<'_> {
    fn drop(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        SCRATCH.with(|s| *s.borrow_mut() = scratch);
    }
}

impl Proxy {
    /// A proxy for a finished configuration (`Config::finish`), keeping registrations and
    /// dialogs in memory whatever `cfg.storage` says (the binary opens the database and
    /// uses [`with_storage`](Self::with_storage)). `now_wall` is the time since the Unix
    /// epoch (dialog bookkeeping starts there).
    pub fn new(cfg: Config, parts: Parts, now_wall: Duration) -> Result<Self, SetupError> {
        Self::with_storage(cfg, parts, crate::storage::Opened::memory(), now_wall)
    }

    /// A proxy over the storage `run` opened ([`crate::storage::open`]): what the database
    /// holds is restored now (bindings into the memory store, dialogs into the tracker).
    pub fn with_storage(
        cfg: Config,
        parts: Parts,
        storage: crate::storage::Opened,
        now_wall: Duration,
    ) -> Result<Self, SetupError> {
        let local = local::Local::new(&cfg, &parts.seed, storage, now_wall)?;
        let uplinks = uplink::Uplinks::new(&cfg, &parts.seed)?;
        let listeners = cfg
            .listen
            .iter()
            .map(|l| {
                let mut x = Listener::new(l.address.transport, l.address.addr);
                if let Some(a) = &l.advertise {
                    x = x.advertise(&a.host, a.port);
                }
                x
            })
            .collect();
        let t = &cfg.timers;
        let tx_cfg = TxConfig {
            timers: Timers {
                t1: Duration::from_millis(t.t1_ms),
                t2: Duration::from_millis(t.t2_ms),
                t4: Duration::from_millis(t.t4_ms),
                timer_c: Duration::from_millis(t.timer_c_ms),
                linger: Some(Duration::from_millis(t.linger_ms)),
                ..Timers::default()
            },
            max_transactions: cfg.limits.max_transactions,
            listeners,
            aliases: cfg
                .domains
                .iter()
                .map(|d| (d.clone(), None))
                .chain(crate::redis::peer_aliases(&cfg.redis.peers))
                .collect(),
            ..TxConfig::default()
        };
        Ok(Proxy {
            local,
            uplinks,
            layer: TransactionLayer::new(&tx_cfg, parts.seed),
            dispatcher: Dispatcher::new(&cfg.upstream, &cfg.dispatch),
            stats: Stats::default(),
            capture: parts.capture,
            resolver: parts.resolver,
            relay_to: ArcSwap::from_pointee(local::networks(&cfg.limits.relay_to)),
            domains: cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            limits: Limits {
                max_message_size: cfg.limits.max_message_size,
                ..Limits::DEFAULT
            },
            pending: route::Pending::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            current: ArcSwap::from_pointee(cfg.clone()),
            admin_out: Mutex::new(Vec::new()),
            cfg,
        })
    }

    /// The configuration started with (see [`Proxy::current_config`] for reloaded keys).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The configuration in force: [`Proxy::config`] with the reloadable keys as last
    /// reloaded.
    pub fn current_config(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Live transactions.
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// A datagram (or a stream frame) arrived over `flow`. What to send is appended to `out`.
    pub fn on_datagram(&self, now: Now, data: Bytes, flow: Flow, out: &mut Vec<Transmit>) {
        self.stats.received.inc();
        let len = data.len();
        let mut msg = match Message::parse_with(data, &self.limits) {
            Ok(m) => m,
            Err(ParseError::KeepAlive) => {
                // RFC 5626 §4.4.1: a double-CRLF ping is answered with a single CRLF
                // (where relay_to allows: it bounds every send).
                if len >= 4 && self.may_send_to(flow.remote.ip()) {
                    out.push(Transmit {
                        flow,
                        destination: Destination::Addr,
                        payload: Bytes::from_static(b"\r\n"),
                        tx: None,
                    });
                }
                return;
            }
            Err(e) => {
                self.stats.parse_errors.inc();
                tracing::debug!(from = %flow.remote, error = %e, "unparseable datagram dropped");
                return;
            }
        };
        msg.index_core_fields();
        self.handle(now, msg, flow, out);
    }

    /// A message framed off a stream (TCP) arrived over `flow`: counted like a datagram
    /// (`received`).
    pub fn on_message(&self, now: Now, mut msg: Message, flow: Flow, out: &mut Vec<Transmit>) {
        self.stats.received.inc();
        msg.index_core_fields();
        self.handle(now, msg, flow, out);
    }

    /// A keep-alive (CRLFCRLF ping or CRLF pong) arrived on a stream: counted like a
    /// datagram (`received`); the reader answers a ping itself.
    pub fn on_stream_keepalive(&self) {
        self.stats.received.inc();
    }

    /// A stream frame that does not parse (skipped, or losing the framing): counted like an
    /// unparseable datagram (`received`, `parse_errors`).
    pub fn on_stream_error(&self, flow: Flow, error: &sip_parser::StreamError) {
        self.stats.received.inc();
        self.stats.parse_errors.inc();
        tracing::debug!(from = %flow.remote, error = %error, "unparseable stream frame");
    }

    // Owned like every message the layer keeps; one clone goes to the layer so that the
    // 503 for a full table can still be built from it.
    #[allow(clippy::needless_pass_by_value)]
    fn handle(&self, now: Now, msg: Message, flow: Flow, out: &mut Vec<Transmit>) {
        self.capture_event(
            now,
            flow.remote,
            flow.local,
            flow.transport,
            msg.as_wire(),
            &msg,
        );
        let mut w = Work::new(now, out);
        if msg.is_request() {
            self.stats.requests.inc();
            self.stats.methods.inc(msg.method());
            if self.drop_source(&w, flow.remote.ip()) {
                return;
            }
            if let Err(e) = msg.validate() {
                self.stats.invalid.inc();
                tracing::debug!(from = %flow.remote, error = %e, "invalid request answered");
                if msg.method() != Some("ACK") {
                    let r = ResponseBuilder::new(&msg, e.status(), e.reason_phrase()).build();
                    self.send_stateless(&mut w, &msg, flow, r);
                }
                return;
            }
        } else {
            self.stats.responses.inc();
            self.stats.classes.inc(msg.status());
            if msg.validate().is_err() {
                self.stats.invalid.inc();
                return;
            }
        }
        if self.cfg.mode == Mode::Stateless {
            self.stateless(&mut w, &msg, flow);
            self.emit(&mut w);
            return;
        }
        match self
            .layer
            .receive(now.mono, msg.clone(), flow, &mut w.scratch)
        {
            Ok(()) => {}
            Err(ReceiveError::TableFull) => {
                self.stats.table_full.inc();
                let r = ResponseBuilder::new(&msg, 503, "Service Unavailable").build();
                self.send_stateless(&mut w, &msg, flow, r);
            }
            Err(ReceiveError::Unmatchable) => {
                self.stats.invalid.inc();
            }
            Err(_) => {}
        }
        self.pump(&mut w);
    }

    /// Fires due timers (transactions, probes, registrations, dialogs), and hands out what
    /// administration calls made the proxy send since the last call.
    pub fn on_timer(&self, now: Now, out: &mut Vec<Transmit>) {
        out.append(&mut admin::lock(&self.admin_out));
        let mut w = Work::new(now, out);
        self.layer.handle_timeout(now.mono, &mut w.scratch);
        self.probe(&mut w);
        self.uplinks_due(&mut w);
        self.housekeeping(&mut w);
        self.pump(&mut w);
    }

    /// When [`on_timer`](Self::on_timer) should run next.
    pub fn next_timeout(&self) -> Option<Duration> {
        // Bindings and dialogs run on the wall clock: looked at once a second.
        let tick = Some(Duration::from_millis(self.local_tick()));
        if !admin::lock(&self.admin_out).is_empty() {
            return Some(Duration::ZERO);
        }
        [
            self.layer.next_timeout(),
            self.dispatcher.next_probe(),
            self.uplinks.next_due(),
            tick,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Shutting down: new requests are answered 503 while transactions in flight finish.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The caller could not send a transmit: its transaction learns it (§17.1.4).
    pub fn transport_error(&self, now: Now, tx: sip_transaction::TxRef, out: &mut Vec<Transmit>) {
        let mut w = Work::new(now, out);
        self.layer.transport_error(now.mono, tx, &mut w.scratch);
        self.pump(&mut w);
    }

    /// Hands the layer's events to the routing logic until none are left.
    pub(crate) fn pump(&self, w: &mut Work<'_>) {
        for _ in 0..64 {
            self.emit(w);
            if w.scratch.events.is_empty() {
                return;
            }
            let mut events = std::mem::take(&mut w.scratch.events);
            for e in events.drain(..) {
                self.on_event(w, e);
            }
            // Most events raise none: the list goes back with its capacity.
            if w.scratch.events.is_empty() {
                w.scratch.events = events;
            }
        }
        self.emit(w);
    }

    /// Whether the `relay_to` allow-list lets us send to `ip`; a refusal is counted and
    /// logged.
    fn may_send_to(&self, ip: std::net::IpAddr) -> bool {
        let relay_to = self.relay_to.load();
        if relay_to.is_empty() || relay_to.iter().any(|n| n.contains(ip)) {
            return true;
        }
        self.stats.relay_denied.inc();
        tracing::debug!(to = %ip, "not sent: outside relay_to");
        false
    }

    /// Moves the layer's transmits to the output: allow-list, capture.
    pub(crate) fn emit(&self, w: &mut Work<'_>) {
        for t in w.scratch.transmits.drain(..) {
            if !self.may_send_to(t.flow.remote.ip()) {
                continue;
            }
            // Parsed only for the capture's correlation id, and only when capturing.
            if self.capture.is_some()
                && let Ok(m) = Message::parse_with(t.payload.clone(), &Limits::BUILT)
            {
                self.capture_event(
                    w.now,
                    t.flow.local,
                    t.flow.remote,
                    t.flow.transport,
                    &t.payload,
                    &m,
                );
            }
            self.stats.sent.inc();
            self.stats.sent_classes.inc_wire(&t.payload);
            w.out.push(t);
        }
    }

    fn capture_event(
        &self,
        now: Now,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        payload: &[u8],
        msg: &Message,
    ) {
        let Some(sink) = &self.capture else { return };
        let mut ev = CaptureEvent::sip(src, dst, transport, now.wall, payload);
        if let Some(cid) = msg.call_id() {
            ev = ev.with_correlation_id(cid.as_bytes());
        }
        sink.capture(&ev);
    }

    /// A response built without a transaction (400, 503 …), sent where the Via says.
    pub(crate) fn send_stateless(&self, w: &mut Work<'_>, req: &Message, flow: Flow, resp: Bytes) {
        let remote = match req.top_via() {
            Ok(Some(v)) => match v.response_target(flow.transport, Some(flow.remote)) {
                sip_parser::ResponseTarget::Connection(a) | sip_parser::ResponseTarget::Addr(a) => {
                    a
                }
                sip_parser::ResponseTarget::Host { .. } => flow.remote,
            },
            _ => return,
        };
        w.scratch.transmits.push(Transmit {
            flow: Flow { remote, ..flow },
            destination: Destination::Addr,
            payload: resp,
            tx: None,
        });
        self.emit(w);
    }

    fn on_event(&self, w: &mut Work<'_>, e: Event) {
        match e {
            Event::Request { tx, request, flow } => self.route_request(w, tx, &request, flow),
            Event::Ack { request, flow } => {
                self.dialog_request(w, &request);
                self.route_ack(w, &request, flow);
            }
            Event::StrayResponse { response, .. }
                if self
                    .layer
                    .relay_response(&response, &mut w.scratch)
                    .is_err() =>
            {
                self.stats.stray_dropped.inc();
            }
            Event::Forwarded {
                status, response, ..
            } => {
                if status >= 200 {
                    self.stats.finals_forwarded.inc();
                }
                self.dialog_response(w, &response);
            }
            Event::BranchesFailed { tx, last, .. } => self.failover(w, tx, last),
            Event::ServerTerminated { tx, .. } => self.forget(tx),
            Event::Response { tx, response } if !self.uplink_response(w, tx, &response) => {
                self.own_response(w, tx, &response);
            }
            Event::Timeout { tx } | Event::TransportError { tx } if !self.uplink_failure(w, tx) => {
                self.own_failure(w, tx);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use sip_parser::Transport;
    use sip_transaction::Flow;

    use super::{Now, Parts, Proxy, SystemResolver};
    use crate::config::Config;

    #[test]
    fn relay_to_bounds_keepalive_answers_too() {
        let cfg = Config::from_toml(
            "[[listen]]\naddress = \"udp:127.0.0.1:5060\"\n[limits]\nrelay_to = [\"127.0.0.0/8\"]\n",
            "test.toml",
        )
        .unwrap()
        .finish()
        .unwrap();
        let p = Proxy::new(
            cfg,
            Parts {
                seed: [3; 32],
                capture: None,
                resolver: Arc::new(SystemResolver),
            },
            Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let now = Now {
            mono: Duration::from_secs(1),
            wall: Duration::from_secs(1_700_000_001),
        };
        let ping = |from: &str| {
            let mut out = Vec::new();
            let flow = Flow {
                transport: Transport::Udp,
                local: "127.0.0.1:5060".parse().unwrap(),
                remote: from.parse().unwrap(),
                conn: None,
            };
            p.on_datagram(now, Bytes::from_static(b"\r\n\r\n"), flow, &mut out);
            out.into_iter().map(|t| t.payload).collect::<Vec<_>>()
        };
        // RFC 5626 §4.4.1: CRLFCRLF is answered with CRLF, inside the allow-list…
        assert_eq!(ping("127.0.0.1:4000"), [Bytes::from_static(b"\r\n")]);
        assert_eq!(p.stats.relay_denied.get(), 0);
        // …and not outside it: a counted refusal.
        assert!(ping("192.0.2.1:5060").is_empty());
        assert_eq!(p.stats.relay_denied.get(), 1);
    }
}
