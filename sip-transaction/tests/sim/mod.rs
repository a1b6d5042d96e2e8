//! A deterministic simulation: user agents and proxies, each a `TransactionLayer` with a small
//! scripted transaction user, exchanging datagrams over a simulated network with loss,
//! duplication, reordering and delay, in virtual time (model: quinn-proto's `tests/`).
//!
//! Everything is driven from one thread by a seeded generator, so a failing seed replays
//! exactly.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::too_many_lines,
    clippy::missing_panics_doc,
    clippy::cast_precision_loss,
    clippy::needless_pass_by_value,
    clippy::format_collect,
    clippy::map_unwrap_or
)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sip_parser::{Message, RequestBuilder, ResponseBuilder, Transport};
use sip_transaction::{
    ClientTxId, Config, Event, Flow, Forking, ForwardPlan, Listener, NextHop, Output, ServerTxId,
    Target, Timers, TransactionLayer,
};

/// xorshift64*: small, seeded, good enough for fault injection.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Network faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub dup: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra random delay up to this (reorders datagrams).
    pub jitter: Duration,
}

/// A rule that drops specific datagrams: the `nth` (1-based) datagram from `from` to `to`
/// whose first line starts with `prefix`.
#[derive(Debug, Clone)]
pub struct Drop {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub prefix: &'static str,
    pub nth: usize,
    seen: usize,
}

impl Drop {
    pub fn new(from: SocketAddr, to: SocketAddr, prefix: &'static str, nth: usize) -> Self {
        Drop {
            from,
            to,
            prefix,
            nth,
            seen: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Packet {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Bytes,
}

/// What a UAS does with an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 180 after `ring`, then `status` after `after` (from arrival).
    After {
        ring: Option<Duration>,
        status: u16,
        after: Duration,
    },
    /// 180 then nothing (Timer C).
    RingForever,
    /// Nothing at all (the layer sends 100 after 200 ms).
    Silent,
}

/// What happened to one call at the UAC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLog {
    pub provisional: Vec<u16>,
    /// Every final status received on the INVITE transaction, in order (2xx repeats
    /// included).
    pub finals: Vec<u16>,
    pub timed_out: bool,
    pub acked: usize,
    pub bye: Option<u16>,
    pub bye_timed_out: bool,
    pub cancel_sent: bool,
}

impl CallLog {
    /// The first final status.
    pub fn outcome(&self) -> Option<u16> {
        self.finals.first().copied()
    }
    /// Every final response of the transaction has the same status class (2xx may repeat).
    pub fn consistent(&self) -> bool {
        self.finals.windows(2).all(|w| w[0] == w[1])
    }
}

pub struct UacTu {
    pub calls: BTreeMap<ClientTxId, CallLog>,
    /// Client tx of each BYE, by the INVITE it ends.
    byes: BTreeMap<ClientTxId, ClientTxId>,
    /// Planned: (time, call index) to start; (time, call) to cancel; hang up after.
    pub plan: Vec<(Duration, Option<Duration>)>,
    pub hangup_after: Duration,
    pub next_call: usize,
    pub proxy: SocketAddr,
    pub target: String,
    started: Vec<(ClientTxId, Duration)>,
    pending_byes: Vec<(Duration, ClientTxId, Message)>,
    pending_cancels: Vec<(Duration, ClientTxId)>,
    pub method: &'static str,
}

pub struct UasTu {
    pub answer: Answer,
    /// INVITE server transactions and their schedules.
    pending: Vec<(Duration, ServerTxId, Message, u16)>,
    /// 2xx being retransmitted by the UAS core until ACKed (§13.3.1.4).
    retrans: Vec<(ServerTxId, Message, Duration, Duration, Duration)>,
    pub invites: usize,
    pub acks: usize,
    pub byes: usize,
    pub cancels: usize,
    pub others: usize,
    /// Call-IDs acknowledged.
    acked_calls: Vec<String>,
    pub tag: &'static str,
    /// Extra headers for non-2xx finals (e.g. a challenge).
    pub final_headers: Vec<(&'static str, &'static str)>,
}

pub struct ProxyTu {
    /// Where new dialog-creating requests go.
    pub targets: Vec<(SocketAddr, u16)>,
    pub forking: Forking,
    pub record_route: bool,
    /// A spiral: a request whose Request-URI is not `.0` is retargeted to `.0` and sent to
    /// ourselves; one whose Request-URI is `.0` goes to `.1`.
    pub rewrite: Option<(String, SocketAddr)>,
    pub forwarded_errors: Vec<sip_transaction::ForwardError>,
    pub on_failure: bool,
    pub failovers: Vec<SocketAddr>,
}

pub enum Tu {
    Uac(UacTu),
    Uas(UasTu),
    Proxy(ProxyTu),
}

pub struct Node {
    pub addr: SocketAddr,
    pub layer: TransactionLayer,
    pub tu: Tu,
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn cfg(a: SocketAddr, timers: Timers) -> Config {
    Config {
        listeners: vec![Listener::new(Transport::Udp, a)],
        shards: 4,
        timers,
        ..Config::default()
    }
}

impl Node {
    pub fn uac(port: u16, proxy: SocketAddr, target: &str, timers: Timers) -> Self {
        let a = addr(port);
        Node {
            addr: a,
            layer: TransactionLayer::new(&cfg(a, timers), [port as u8; 32]),
            tu: Tu::Uac(UacTu {
                calls: BTreeMap::new(),
                byes: BTreeMap::new(),
                plan: Vec::new(),
                hangup_after: Duration::from_secs(2),
                next_call: 0,
                proxy,
                target: target.to_owned(),
                started: Vec::new(),
                pending_byes: Vec::new(),
                pending_cancels: Vec::new(),
                method: "INVITE",
            }),
        }
    }

    pub fn uas(port: u16, answer: Answer, timers: Timers) -> Self {
        let a = addr(port);
        Node {
            addr: a,
            layer: TransactionLayer::new(&cfg(a, timers), [port as u8; 32]),
            tu: Tu::Uas(UasTu {
                answer,
                pending: Vec::new(),
                retrans: Vec::new(),
                invites: 0,
                acks: 0,
                byes: 0,
                cancels: 0,
                others: 0,
                acked_calls: Vec::new(),
                tag: "uas",
                final_headers: Vec::new(),
            }),
        }
    }

    pub fn proxy(port: u16, targets: Vec<(SocketAddr, u16)>, timers: Timers) -> Self {
        let a = addr(port);
        Node {
            addr: a,
            layer: TransactionLayer::new(&cfg(a, timers), [port as u8; 32]),
            tu: Tu::Proxy(ProxyTu {
                targets,
                forking: Forking::Parallel,
                record_route: true,
                rewrite: None,
                forwarded_errors: Vec::new(),
                on_failure: false,
                failovers: Vec::new(),
            }),
        }
    }

    pub fn uac_tu(&mut self) -> &mut UacTu {
        match &mut self.tu {
            Tu::Uac(u) => u,
            _ => panic!("not a UAC"),
        }
    }
    pub fn uas_tu(&mut self) -> &mut UasTu {
        match &mut self.tu {
            Tu::Uas(u) => u,
            _ => panic!("not a UAS"),
        }
    }
    pub fn proxy_tu(&mut self) -> &mut ProxyTu {
        match &mut self.tu {
            Tu::Proxy(u) => u,
            _ => panic!("not a proxy"),
        }
    }

    /// The node's own next wake-up (TU schedules).
    fn tu_deadline(&self) -> Option<Duration> {
        match &self.tu {
            Tu::Uac(u) => [
                u.plan.get(u.next_call).map(|p| p.0),
                u.pending_byes.iter().map(|p| p.0).min(),
                u.pending_cancels.iter().map(|p| p.0).min(),
            ]
            .into_iter()
            .flatten()
            .min(),
            Tu::Uas(u) => [
                u.pending.iter().map(|p| p.0).min(),
                u.retrans.iter().map(|r| r.2).min(),
            ]
            .into_iter()
            .flatten()
            .min(),
            Tu::Proxy(_) => None,
        }
    }
}

/// URI host:port → address (literal IPv4 only; the simulation has no DNS).
pub fn resolve(uri: &[u8]) -> Option<SocketAddr> {
    let raw = sip_parser::NameAddr::parse(uri).map_or(uri, |n| n.raw_uri);
    let u = sip_parser::Uri::parse(raw).ok()?;
    let ip: std::net::IpAddr = u.host.parse().ok()?;
    Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
}

pub struct World {
    pub now: Duration,
    pub nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    packets: BTreeMap<u64, Packet>,
    seq: u64,
    pub rng: Rng,
    pub faults: Faults,
    pub drops: Vec<Drop>,
    /// Every datagram sent: (time, from, to, first line).
    pub trace: Vec<(Duration, SocketAddr, SocketAddr, String)>,
    /// The payloads of `trace`, same order.
    pub payloads: Vec<Bytes>,
    pub delivered: usize,
    pub lost: usize,
}

fn first_line(b: &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r')
        .unwrap_or(b.len().min(60));
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl World {
    pub fn new(seed: u64, faults: Faults) -> Self {
        World {
            now: Duration::from_secs(1),
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            packets: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            faults,
            drops: Vec::new(),
            trace: Vec::new(),
            payloads: Vec::new(),
            delivered: 0,
            lost: 0,
        }
    }

    pub fn add(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    pub fn node(&mut self, a: SocketAddr) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.addr == a).expect("node")
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, payload: Bytes) {
        self.trace.push((self.now, from, to, first_line(&payload)));
        self.payloads.push(payload.clone());
        for d in &mut self.drops {
            if d.from == from && d.to == to && payload.starts_with(d.prefix.as_bytes()) {
                d.seen += 1;
                if d.seen == d.nth {
                    self.lost += 1;
                    return;
                }
            }
        }
        if self.rng.chance(self.faults.loss) {
            self.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.faults.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = self.faults.jitter.as_micros() as u64;
            let at =
                self.now + self.faults.delay + Duration::from_micros(self.rng.below(jitter + 1));
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq)));
            self.packets.insert(
                self.seq,
                Packet {
                    from,
                    to,
                    payload: payload.clone(),
                },
            );
        }
    }

    fn flush(&mut self, from: SocketAddr, out: &mut Output) {
        for t in out.transmits.drain(..) {
            assert_eq!(
                t.flow.local, from,
                "sent from a socket the node does not have"
            );
            self.send_packet(from, t.flow.remote, t.payload);
        }
    }

    fn send_packet(&mut self, from: SocketAddr, to: SocketAddr, payload: Bytes) {
        self.send(from, to, payload);
    }

    /// Runs until `until` (virtual), or until nothing is left to do.
    pub fn run_until(&mut self, until: Duration) {
        for _ in 0..5_000_000 {
            let next_packet = self.queue.peek().map(|r| r.0.0);
            let next_node = self
                .nodes
                .iter()
                .flat_map(|n| [n.layer.next_timeout(), n.tu_deadline()])
                .flatten()
                .min();
            let next = match (next_packet, next_node) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => return,
                },
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            self.step();
        }
        panic!("simulation did not settle");
    }

    fn step(&mut self) {
        let now = self.now;
        // Datagrams due.
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > now {
                break;
            }
            self.queue.pop();
            let p = self.packets.remove(&seq).expect("packet");
            self.deliver(p);
        }
        // Timers and TU schedules.
        for i in 0..self.nodes.len() {
            let mut out = Output::new();
            self.nodes[i].layer.handle_timeout(now, &mut out);
            self.tu_tick(i, &mut out);
            self.drain(i, out);
        }
    }

    fn deliver(&mut self, p: Packet) {
        let Some(i) = self.nodes.iter().position(|n| n.addr == p.to) else {
            self.lost += 1;
            return; // nobody there
        };
        self.delivered += 1;
        let Ok(msg) = Message::parse(p.payload) else {
            return;
        };
        let mut out = Output::new();
        let flow = Flow::udp(p.to, p.from);
        if let Err(e) = self.nodes[i].layer.receive(self.now, msg, flow, &mut out) {
            panic!("receive refused: {e}");
        }
        self.drain(i, out);
    }

    /// Hands events to the node's TU until nothing is left, sending every transmit.
    fn drain(&mut self, i: usize, mut out: Output) {
        for _ in 0..1000 {
            let from = self.nodes[i].addr;
            self.flush(from, &mut out);
            if out.events.is_empty() {
                return;
            }
            let events: Vec<Event> = out.events.drain(..).collect();
            for e in events {
                self.tu_event(i, e, &mut out);
            }
        }
        panic!("event storm");
    }

    fn tu_tick(&mut self, i: usize, out: &mut Output) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let layer = &node.layer;
        let me = node.addr;
        match &mut node.tu {
            Tu::Uac(u) => {
                while u.plan.get(u.next_call).is_some_and(|p| p.0 <= now) {
                    let (_, cancel_after) = u.plan[u.next_call];
                    let n = u.next_call;
                    u.next_call += 1;
                    let target = u.target.clone();
                    let method = u.method;
                    let tx = layer
                        .send_request(
                            now,
                            Flow::udp(me, u.proxy),
                            |via| {
                                let (tag, call, contact) = (
                                    format!("a{n}"),
                                    format!("call-{n}"),
                                    format!("<sip:alice@{me}>"),
                                );
                                let mut b = RequestBuilder::new(method, target.as_str());
                                b.via(via)
                                    .from("<sip:alice@127.0.0.1>", Some(tag.as_str()))
                                    .to("<sip:bob@example.com>", None)
                                    .call_id(call.as_str())
                                    .cseq(1)
                                    .contact(contact.as_str());
                                b.build()
                            },
                            out,
                        )
                        .expect("send");
                    u.calls.insert(tx, CallLog::default());
                    u.started.push((tx, now));
                    if let Some(c) = cancel_after {
                        u.pending_cancels.push((now + c, tx));
                    }
                }
                let due: Vec<_> = u
                    .pending_cancels
                    .iter()
                    .filter(|c| c.0 <= now)
                    .map(|c| c.1)
                    .collect();
                u.pending_cancels.retain(|c| c.0 > now);
                for tx in due {
                    if layer.cancel(now, tx, out).is_ok() {
                        if let Some(c) = u.calls.get_mut(&tx) {
                            c.cancel_sent = true;
                        }
                    }
                }
                let due: Vec<_> = u
                    .pending_byes
                    .iter()
                    .filter(|b| b.0 <= now)
                    .cloned()
                    .collect();
                u.pending_byes.retain(|b| b.0 > now);
                for (_, inv, ok) in due {
                    let bye = uac_bye(layer, now, me, &ok, out);
                    if let Some(b) = bye {
                        u.byes.insert(b, inv);
                    }
                }
            }
            Tu::Uas(u) => {
                let due: Vec<_> = u.pending.iter().filter(|p| p.0 <= now).cloned().collect();
                u.pending.retain(|p| p.0 > now);
                for (_, tx, req, status) in due {
                    let resp = uas_response(&req, status, u.tag, me, &u.final_headers);
                    if layer.respond(now, tx, &resp, out).is_ok() && (200..300).contains(&status) {
                        let t1 = Duration::from_millis(500);
                        u.retrans.push((tx, resp, now + t1, t1, now + t1 * 64));
                    }
                }
                // §13.3.1.4: retransmit the 2xx until the ACK or 64·T1.
                let mut keep = Vec::new();
                for (tx, resp, at, iv, end) in std::mem::take(&mut u.retrans) {
                    let call = resp.call_id().unwrap_or_default().to_owned();
                    if u.acked_calls.contains(&call) || now >= end {
                        continue;
                    }
                    if at <= now {
                        let _ = layer.respond(now, tx, &resp, out);
                        let iv2 = (iv * 2).min(Duration::from_secs(4));
                        keep.push((tx, resp, now + iv2, iv2, end));
                    } else {
                        keep.push((tx, resp, at, iv, end));
                    }
                }
                u.retrans = keep;
            }
            Tu::Proxy(_) => {}
        }
    }

    fn tu_event(&mut self, i: usize, e: Event, out: &mut Output) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let layer = &node.layer;
        let me = node.addr;
        match &mut node.tu {
            Tu::Uac(u) => match e {
                Event::Response { tx, response } => {
                    let status = response.status().unwrap_or(0);
                    if let Some(inv) = u.byes.get(&tx).copied() {
                        if status >= 200 {
                            u.calls.get_mut(&inv).unwrap().bye = Some(status);
                        }
                        return;
                    }
                    let Some(log) = u.calls.get_mut(&tx) else {
                        return;
                    };
                    if status < 200 {
                        log.provisional.push(status);
                        return;
                    }
                    log.finals.push(status);
                    if (200..300).contains(&status) && u.method == "INVITE" {
                        uac_ack(layer, me, &response, out);
                        log.acked += 1;
                        if log.finals.len() == 1 {
                            u.pending_byes.push((now + u.hangup_after, tx, response));
                        }
                    }
                }
                Event::Timeout { tx } | Event::TransportError { tx } => {
                    if let Some(inv) = u.byes.get(&tx).copied() {
                        u.calls.get_mut(&inv).unwrap().bye_timed_out = true;
                    } else if let Some(log) = u.calls.get_mut(&tx) {
                        log.timed_out = true;
                    }
                }
                _ => {}
            },
            Tu::Uas(u) => match e {
                Event::Request { tx, request, .. } => match request.method() {
                    Some("INVITE") => {
                        u.invites += 1;
                        match u.answer {
                            Answer::After {
                                ring,
                                status,
                                after,
                            } => {
                                if let Some(r) = ring {
                                    u.pending.push((now + r, tx, request.clone(), 180));
                                }
                                u.pending.push((now + after, tx, request, status));
                            }
                            Answer::RingForever => {
                                let r = uas_response(&request, 180, u.tag, me, &[]);
                                let _ = layer.respond(now, tx, &r, out);
                            }
                            Answer::Silent => {}
                        }
                    }
                    Some("BYE") => {
                        u.byes += 1;
                        let r = uas_response(&request, 200, u.tag, me, &[]);
                        layer.respond(now, tx, &r, out).unwrap();
                    }
                    _ => {
                        u.others += 1;
                        let status = match u.answer {
                            Answer::After { status, .. } => status,
                            _ => 200,
                        };
                        let r = uas_response(&request, status, u.tag, me, &[]);
                        let _ = layer.respond(now, tx, &r, out);
                    }
                },
                Event::Ack { request, .. } => {
                    u.acks += 1;
                    u.acked_calls
                        .push(request.call_id().unwrap_or_default().to_owned());
                }
                Event::Cancelled { tx } => {
                    u.cancels += 1;
                    u.pending.retain(|p| p.1 != tx);
                }
                _ => {}
            },
            Tu::Proxy(p) => match e {
                Event::Request { tx, request, flow } => {
                    let in_dialog = request.to().ok().and_then(|t| t.tag()).is_some();
                    let dests: Vec<(Target, bool)> = if in_dialog || request.routes().count() > 0 {
                        let hop = match layer.next_hop(&request) {
                            NextHop::Route(r) | NextHop::RequestUri(r) => resolve(r),
                        };
                        match hop {
                            Some(a) => vec![(Target::to(Flow::udp(me, a)), false)],
                            None => vec![],
                        }
                    } else {
                        match &p.rewrite {
                            Some((uri, _)) if request.request_uri() != Some(uri.as_bytes()) => {
                                vec![(
                                    Target::to(Flow::udp(me, me))
                                        .with_uri(Bytes::from(uri.clone())),
                                    true,
                                )]
                            }
                            Some((_, dest)) => vec![(Target::to(Flow::udp(me, *dest)), true)],
                            None => p
                                .targets
                                .iter()
                                .map(|(a, q)| (Target::to(Flow::udp(me, *a)).with_q(*q), true))
                                .collect(),
                        }
                    };
                    let _ = flow;
                    let plan = ForwardPlan {
                        targets: dests.into_iter().map(|d| d.0).collect(),
                        record_route: p.record_route && !in_dialog,
                        forking: p.forking,
                        on_failure: p.on_failure,
                    };
                    if let Err(e) = layer.forward(now, tx, plan, out) {
                        p.forwarded_errors.push(e);
                    }
                }
                Event::Ack { request, flow } => {
                    let hop = match layer.next_hop(&request) {
                        NextHop::Route(r) | NextHop::RequestUri(r) => resolve(r),
                    };
                    if let Some(a) = hop {
                        let _ =
                            layer.relay(&request, flow, &Target::to(Flow::udp(me, a)), false, out);
                    }
                }
                Event::StrayResponse { response, .. } => {
                    let _ = layer.relay_response(&response, out);
                }
                Event::BranchesFailed { tx, .. } => {
                    if let Some(a) = p.failovers.pop() {
                        let plan = ForwardPlan {
                            targets: vec![Target::to(Flow::udp(me, a))],
                            record_route: p.record_route,
                            forking: p.forking,
                            on_failure: !p.failovers.is_empty(),
                        };
                        layer.forward(now, tx, plan, out).unwrap();
                    } else {
                        layer.finish(now, tx, out).unwrap();
                    }
                }
                _ => {}
            },
        }
    }

    /// The last datagram sent to `to` whose first line starts with `prefix`.
    pub fn last_payload_to(&self, to: SocketAddr, prefix: &str) -> Option<Bytes> {
        self.trace
            .iter()
            .zip(&self.payloads)
            .rev()
            .find(|(t, _)| t.2 == to && t.3.starts_with(prefix))
            .map(|(_, p)| p.clone())
    }

    /// Every node's table is empty.
    pub fn all_empty(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.layer.is_empty() && n.layer.timer_entries() == 0)
    }

    pub fn dump_trace(&self) -> String {
        self.trace
            .iter()
            .map(|(t, f, to, l)| {
                format!(
                    "{:>9.3} {} -> {} {l}\n",
                    t.as_secs_f64(),
                    f.port(),
                    to.port()
                )
            })
            .collect()
    }
}

/// The UAS's response: To tag, Contact, and the Record-Route set copied into 1xx/2xx (§12.1.1).
pub fn uas_response(
    req: &Message,
    status: u16,
    tag: &str,
    me: SocketAddr,
    extra: &[(&'static str, &'static str)],
) -> Message {
    let reason = sip_parser::reason_phrase(status);
    let mut b = ResponseBuilder::new(req, status, reason);
    b.to_tag(tag.to_owned()).copy_record_route();
    if status < 300 && status > 100 {
        b.header("Contact", format!("<sip:bob@{me}>"));
    }
    if status >= 300 {
        for (n, v) in extra {
            b.header(*n, *v);
        }
    }
    Message::parse(b.build()).unwrap()
}

/// The route set and remote target of the UAC's dialog from a 2xx (§12.1.2): Record-Route
/// reversed, Contact.
fn dialog_of(ok: &Message) -> (Vec<Bytes>, Bytes) {
    let mut routes: Vec<Bytes> = ok
        .record_routes()
        .filter_map(Result::ok)
        .map(|r| Bytes::from(format!("<{}>", String::from_utf8_lossy(r.raw_uri))))
        .collect();
    routes.reverse();
    let contact = ok
        .contacts()
        .next()
        .and_then(Result::ok)
        .and_then(|c| c.addr().map(|a| Bytes::copy_from_slice(a.raw_uri)))
        .unwrap_or_default();
    (routes, contact)
}

fn next_hop_of(routes: &[Bytes], contact: &[u8]) -> Option<SocketAddr> {
    match routes.first() {
        Some(r) => resolve(r),
        None => resolve(contact),
    }
}

/// The UAC's ACK for a 2xx: a new transaction-less request along the route set (§13.2.2.4).
pub fn uac_ack(layer: &TransactionLayer, me: SocketAddr, ok: &Message, out: &mut Output) {
    let _ = layer;
    let (routes, contact) = dialog_of(ok);
    let Some(hop) = next_hop_of(&routes, &contact) else {
        return;
    };
    let from = ok.header("From").unwrap_or_default();
    let to = ok.header("To").unwrap_or_default();
    let call_id = ok.call_id().unwrap_or_default();
    let seq = ok.cseq().map(|c| c.seq).unwrap_or(1);
    let via = format!("SIP/2.0/UDP {me};branch=z9hG4bKack{seq}{}", call_id.len());
    let mut b = RequestBuilder::new("ACK", &contact[..]);
    b.via(via.as_str())
        .from(from, None)
        .to(to, None)
        .call_id(call_id)
        .cseq(seq);
    for r in &routes {
        b.route(&r[..]);
    }
    out.transmits.push(sip_transaction::Transmit {
        flow: Flow::udp(me, hop),
        destination: sip_transaction::Destination::Addr,
        payload: b.build(),
        tx: None,
    });
}

/// The UAC's BYE, as a client transaction along the route set.
pub fn uac_bye(
    layer: &TransactionLayer,
    now: Duration,
    me: SocketAddr,
    ok: &Message,
    out: &mut Output,
) -> Option<ClientTxId> {
    let (routes, contact) = dialog_of(ok);
    let hop = next_hop_of(&routes, &contact)?;
    let from = ok.header("From").unwrap_or_default().to_vec();
    let to = ok.header("To").unwrap_or_default().to_vec();
    let call_id = ok.call_id().unwrap_or_default().to_owned();
    layer
        .send_request(
            now,
            Flow::udp(me, hop),
            |via| {
                let mut b = RequestBuilder::new("BYE", &contact[..]);
                b.via(via)
                    .from(&from[..], None)
                    .to(&to[..], None)
                    .call_id(call_id.as_str())
                    .cseq(2);
                for r in &routes {
                    b.route(&r[..]);
                }
                b.build()
            },
            out,
        )
        .ok()
}
