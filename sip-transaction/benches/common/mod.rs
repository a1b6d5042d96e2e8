//! The transaction lives measured by the criterion benchmark (`benches/transactions.rs`) and
//! counted by the callgrind workload (`benches/lives.rs`), written once.
//!
//! Each scenario runs `n` transactions (one batch) through one [`TransactionLayer`] on one
//! thread: created, matched (a request retransmission or a response), answered, and ended by
//! their timers (one [`TransactionLayer::handle_timeout`] per batch, the clock moved past every
//! timer). What a [`Meter`] measures is exactly the layer's work and the caller's minimum
//! around it: messages from the network arrive pre-parsed and are moved into `receive`, as a
//! receive loop moves its freshly parsed message in (the copies a batch consumes are made
//! before it, unmeasured); the outputs are drained (`Output::clear`, which drops the transmits
//! and events); whatever the layer builds (100 Trying, the ACK of a non-2xx, a proxied
//! request) is measured, and so is the framing of a request the TU hands to `send_request` as
//! bytes. Not measured: building and parsing the messages the peers send.

#![allow(dead_code)] // each bench binary uses part of it

use core::time::Duration;
use std::hint::black_box;

use bytes::Bytes;
use sip_parser::{Message, ResponseBuilder, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardPlan, Listener, Output, ServerTxId, Target, TransactionLayer,
};

/// Transactions alive at once (one batch), ended together by one `handle_timeout`.
pub(crate) const BATCH: usize = 1024;
/// Past every timer of a finished transaction (64·T1 = 32 s, Timer D 32 s).
pub(crate) const LATER: Duration = Duration::from_secs(40);

const UAC: &str = "127.0.0.1:5080";
const PROXY: &str = "127.0.0.1:5060";
const UAS: &str = "127.0.0.1:5070";

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Measures the parts of a batch that count, step by step.
pub(crate) trait Meter {
    /// Runs `f`, the measured work of step `step` (0 when a scenario has one step).
    fn measure<R>(&mut self, step: usize, f: impl FnOnce() -> R) -> R;
}

/// A layer listening on `addr` (UDP), with a fixed seed.
pub(crate) fn layer(addr: &str) -> TransactionLayer {
    let cfg = Config {
        listeners: vec![Listener::new(Transport::Udp, addr.parse().unwrap())],
        ..Config::default()
    };
    TransactionLayer::new(&cfg, [7; 32])
}

/// A request as SIPp's `uac_call.xml` sends it (call `i`), without the Via line.
fn request_rest(method: &str, i: usize) -> String {
    let body = if method == "INVITE" { SDP } else { "" };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "From: \"sipp\" <sip:sipp@{UAC}>;tag={i}SIPpTag00\r\n\
         To: <sip:100000@{PROXY}>\r\nCall-ID: {i}-bench@127.0.0.1\r\nCSeq: 1 {method}\r\n\
         Contact: <sip:sipp@{UAC}>\r\nMax-Forwards: 70\r\nUser-Agent: sipp-load\r\n\
         {ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The whole request from the UAC, with its own branch.
fn request(method: &str, i: usize) -> Message {
    let text = format!(
        "{method} sip:100000@{PROXY} SIP/2.0\r\nVia: SIP/2.0/UDP {UAC};branch=z9hG4bK-bench-{i}\r\n{}",
        request_rest(method, i)
    );
    Message::parse(Bytes::from(text)).unwrap()
}

fn response(req: &Message, status: u16, reason: &str) -> Message {
    Message::parse(
        ResponseBuilder::new(req, status, reason)
            .to_tag("uas1")
            .build(),
    )
    .unwrap()
}

/// The messages a batch receives in one role (first copies, retransmissions, ACKs…), copied
/// before the batch and moved out one by one: one copy each, about what a receive loop costs
/// when it hands over the message it just parsed.
struct Inbound(Vec<Message>);

impl Inbound {
    fn new() -> Self {
        Inbound(Vec::with_capacity(BATCH))
    }

    /// Copies of `msgs`, to be taken in their order.
    fn fill<'a>(&mut self, msgs: impl DoubleEndedIterator<Item = &'a Message>) {
        self.0.clear();
        self.0.extend(msgs.rev().cloned());
    }

    fn take(&mut self) -> Message {
        self.0.pop().expect("one message per life")
    }
}

fn new_tx(out: &mut Output) -> ServerTxId {
    match out.events.pop() {
        Some(Event::Request { tx, .. }) => tx,
        _ => panic!("no new transaction"),
    }
}

/// `server/non_invite`: OPTIONS received, received again (retransmission, absorbed),
/// answered 200, Timer J. `server/non_invite_step/*` runs the same one step at a time over
/// the batch (steps: create, retransmission, respond, terminate).
pub(crate) struct ServerNonInvite {
    layer: TransactionLayer,
    flow: Flow,
    out: Output,
    now: Duration,
    options: Vec<(Message, Message)>,
    /// This batch's received requests: first copies and retransmissions.
    first: Inbound,
    again: Inbound,
    txs: Vec<ServerTxId>,
}

impl ServerNonInvite {
    pub(crate) fn new() -> Self {
        ServerNonInvite {
            layer: layer(PROXY),
            flow: Flow::udp(PROXY.parse().unwrap(), UAC.parse().unwrap()),
            out: Output::new(),
            now: Duration::from_secs(1),
            options: (0..BATCH)
                .map(|i| {
                    let r = request("OPTIONS", i);
                    let ok = response(&r, 200, "OK");
                    (r, ok)
                })
                .collect(),
            first: Inbound::new(),
            again: Inbound::new(),
            txs: Vec::with_capacity(BATCH),
        }
    }

    fn receive_batch(&mut self, n: usize) {
        let requests = || self.options[..n].iter().map(|(req, _)| req);
        self.first.fill(requests());
        self.again.fill(requests());
    }

    /// Whole lives, each transaction from creation to its answer in turn (one step).
    pub(crate) fn lives(&mut self, n: usize, m: &mut impl Meter) {
        self.receive_batch(n);
        let (l, flow, now, out) = (&self.layer, self.flow, self.now, &mut self.out);
        let (options, first, again) = (&self.options[..n], &mut self.first, &mut self.again);
        m.measure(0, || {
            for (_, ok) in options {
                l.receive(now, first.take(), flow, out).unwrap();
                let tx = new_tx(out);
                l.receive(now, again.take(), flow, out).unwrap();
                l.respond(now, tx, ok, out).unwrap();
                out.clear();
            }
            l.handle_timeout(now + LATER, out);
            black_box(&*out);
            out.clear();
        });
        assert!(l.is_empty());
        self.now += LATER;
    }

    /// The same lives, one step at a time over the batch.
    pub(crate) fn steps(&mut self, n: usize, m: &mut impl Meter) {
        self.receive_batch(n);
        let (l, flow, now, out) = (&self.layer, self.flow, self.now, &mut self.out);
        let (options, first, again) = (&self.options[..n], &mut self.first, &mut self.again);
        m.measure(0, || {
            for _ in options {
                l.receive(now, first.take(), flow, out).unwrap();
            }
        });
        self.txs.clear();
        self.txs.extend(out.events.drain(..).map(|e| match e {
            Event::Request { tx, .. } => tx,
            _ => panic!("no new transaction"),
        }));
        out.clear();
        m.measure(1, || {
            for _ in options {
                l.receive(now, again.take(), flow, out).unwrap();
            }
            out.clear();
        });
        let txs = &self.txs;
        m.measure(2, || {
            for ((_, ok), tx) in options.iter().zip(txs) {
                l.respond(now, *tx, ok, out).unwrap();
            }
            out.clear();
        });
        m.measure(3, || {
            l.handle_timeout(now + LATER, out);
            out.clear();
        });
        assert!(l.is_empty());
        self.now += LATER;
    }
}

/// `server/invite`: INVITE received, retransmission absorbed, answered 486, ACK matched,
/// Timer I.
pub(crate) struct ServerInvite {
    layer: TransactionLayer,
    flow: Flow,
    out: Output,
    now: Duration,
    invites: Vec<(Message, Message, Message)>,
    /// This batch's received messages: INVITEs, their retransmissions, the ACKs.
    first: Inbound,
    again: Inbound,
    acks: Inbound,
}

impl ServerInvite {
    pub(crate) fn new() -> Self {
        let invites = (0..BATCH)
            .map(|i| {
                let r = request("INVITE", i);
                let busy = response(&r, 486, "Busy Here");
                let ack = format!(
                    "ACK sip:100000@{PROXY} SIP/2.0\r\nVia: SIP/2.0/UDP {UAC};branch=z9hG4bK-bench-{i}\r\n\
                     From: \"sipp\" <sip:sipp@{UAC}>;tag={i}SIPpTag00\r\nTo: <sip:100000@{PROXY}>;tag=uas1\r\n\
                     Call-ID: {i}-bench@127.0.0.1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                );
                (r, busy, Message::parse(Bytes::from(ack)).unwrap())
            })
            .collect();
        ServerInvite {
            layer: layer(PROXY),
            flow: Flow::udp(PROXY.parse().unwrap(), UAC.parse().unwrap()),
            out: Output::new(),
            now: Duration::from_secs(1),
            invites,
            first: Inbound::new(),
            again: Inbound::new(),
            acks: Inbound::new(),
        }
    }

    pub(crate) fn lives(&mut self, n: usize, m: &mut impl Meter) {
        let invites = &self.invites[..n];
        self.first.fill(invites.iter().map(|(req, _, _)| req));
        self.again.fill(invites.iter().map(|(req, _, _)| req));
        self.acks.fill(invites.iter().map(|(_, _, ack)| ack));
        let (l, flow, now, out) = (&self.layer, self.flow, self.now, &mut self.out);
        let (first, again, acks) = (&mut self.first, &mut self.again, &mut self.acks);
        m.measure(0, || {
            for (_, busy, _) in invites {
                l.receive(now, first.take(), flow, out).unwrap();
                let tx = new_tx(out);
                l.receive(now, again.take(), flow, out).unwrap();
                l.respond(now, tx, busy, out).unwrap();
                l.receive(now, acks.take(), flow, out).unwrap();
                out.clear();
            }
            l.handle_timeout(now + LATER, out);
            black_box(&*out);
            out.clear();
        });
        assert!(l.is_empty());
        self.now += LATER;
    }
}

/// `client/non_invite`: OPTIONS sent (`send_request`, which frames the request the TU
/// built), 200 received, Timer K. `client/invite`: INVITE sent, 180 and 486 received (the
/// layer builds and sends the ACK), Timer D.
pub(crate) struct Client {
    layer: TransactionLayer,
    flow: Flow,
    out: Output,
    now: Duration,
    invite: bool,
    head: String,
    rests: Vec<String>,
    responses: Vec<Message>,
}

impl Client {
    pub(crate) fn new(method: &str) -> Self {
        Client {
            layer: layer(UAC),
            flow: Flow::udp(UAC.parse().unwrap(), PROXY.parse().unwrap()),
            out: Output::new(),
            now: Duration::from_secs(1),
            invite: method == "INVITE",
            head: format!("{method} sip:100000@{PROXY} SIP/2.0\r\nVia: "),
            rests: (0..BATCH).map(|i| request_rest(method, i)).collect(),
            responses: Vec::with_capacity(2 * BATCH),
        }
    }

    pub(crate) fn lives(&mut self, n: usize, m: &mut impl Meter) {
        let (l, flow, now, out) = (&self.layer, self.flow, self.now, &mut self.out);
        let (head, rests) = (&self.head, &self.rests[..n]);
        m.measure(0, || {
            for rest in rests {
                l.send_request(
                    now,
                    flow,
                    |via| {
                        let mut v = Vec::with_capacity(head.len() + via.len() + rest.len() + 2);
                        v.extend_from_slice(head.as_bytes());
                        v.extend_from_slice(via.as_bytes());
                        v.extend_from_slice(b"\r\n");
                        v.extend_from_slice(rest.as_bytes());
                        Bytes::from(v)
                    },
                    out,
                )
                .unwrap();
            }
        });
        // Not measured: the peer's responses.
        self.responses.clear();
        for t in &out.transmits {
            let req = Message::parse(t.payload.clone()).unwrap();
            if self.invite {
                self.responses.push(response(&req, 180, "Ringing"));
                self.responses.push(response(&req, 486, "Busy Here"));
            } else {
                self.responses.push(response(&req, 200, "OK"));
            }
        }
        m.measure(0, || out.clear());
        let responses = &mut self.responses;
        m.measure(0, || {
            for r in responses.drain(..) {
                l.receive(now, r, flow, out).unwrap();
                out.clear();
            }
            l.handle_timeout(now + LATER, out);
            black_box(&*out);
            out.clear();
        });
        assert!(l.is_empty());
        self.now += LATER;
    }
}

/// `proxy/invite`: a server and a client transaction: INVITE received and forwarded with
/// Record-Route (100 Trying upstream, our Via and a new branch downstream), the downstream 180
/// and 200 forwarded upstream, Timers L and M. Steps: receive + forward, the two responses,
/// the timers.
pub(crate) struct Proxy {
    layer: TransactionLayer,
    up: Flow,
    down: Flow,
    out: Output,
    now: Duration,
    invites: Vec<Message>,
    inbound: Inbound,
    forwarded: Vec<Bytes>,
    responses: Vec<Message>,
}

impl Proxy {
    pub(crate) fn new() -> Self {
        Proxy {
            layer: layer(PROXY),
            up: Flow::udp(PROXY.parse().unwrap(), UAC.parse().unwrap()),
            down: Flow::udp(PROXY.parse().unwrap(), UAS.parse().unwrap()),
            out: Output::new(),
            now: Duration::from_secs(1),
            invites: (0..BATCH).map(|i| request("INVITE", i)).collect(),
            inbound: Inbound::new(),
            forwarded: Vec::with_capacity(BATCH),
            responses: Vec::with_capacity(2 * BATCH),
        }
    }

    pub(crate) fn lives(&mut self, n: usize, m: &mut impl Meter) {
        self.inbound.fill(self.invites[..n].iter());
        let (l, up, down, now, out) = (&self.layer, self.up, self.down, self.now, &mut self.out);
        let (inbound, forwarded) = (&mut self.inbound, &mut self.forwarded);
        forwarded.clear();
        m.measure(0, || {
            for _ in 0..n {
                l.receive(now, inbound.take(), up, out).unwrap();
                let tx = new_tx(out);
                let plan = ForwardPlan {
                    targets: vec![Target::to(down)],
                    record_route: true,
                    ..ForwardPlan::default()
                };
                l.forward(now, tx, plan, out).unwrap();
                // [100 Trying upstream, INVITE downstream]
                forwarded.push(out.transmits.pop().unwrap().payload);
                out.clear();
            }
        });
        // Not measured: the UAS answers.
        self.responses.clear();
        for f in forwarded.drain(..) {
            let req = Message::parse(f).unwrap();
            self.responses.push(response(&req, 180, "Ringing"));
            let ok = ResponseBuilder::new(&req, 200, "OK")
                .to_tag("uas1")
                .body("application/sdp", SDP)
                .build();
            self.responses.push(Message::parse(ok).unwrap());
        }
        let responses = &mut self.responses;
        m.measure(1, || {
            for r in responses.drain(..) {
                l.receive(now, r, down, out).unwrap();
                out.clear();
            }
        });
        m.measure(2, || {
            l.handle_timeout(now + LATER, out);
            black_box(&*out);
            out.clear();
        });
        assert!(l.is_empty());
        self.now += LATER;
    }
}
