//! Transactions per second through the state machines on one core (one thread).
//!
//! Each measured transaction runs its whole life: it is created, matched (a request
//! retransmission or a response), answered, and ended by its timers
//! ([`TransactionLayer::handle_timeout`] once per batch of [`BATCH`], with the clock moved past
//! every timer). Messages from the network arrive pre-parsed (a `Message` clone per receive,
//! which is a reference count and a copy of the header index, is measured); what the layer
//! builds itself (100 Trying, the ACK of a non-2xx, a proxied request) is measured. Not
//! measured: building and parsing the responses a client transaction receives, whose branch
//! only exists once the request was sent (done between the timed sections).
//!
//! * `server/non_invite`: OPTIONS received, received again (retransmission, absorbed),
//!   answered 200, Timer J.
//! * `server/invite`: INVITE received, retransmission absorbed, answered 486, ACK matched,
//!   Timer I.
//! * `client/non_invite`: OPTIONS sent (`send_request`, which parses the request the TU
//!   built), 200 received, Timer K.
//! * `client/invite`: INVITE sent, 180 and 486 received (the layer builds and sends the ACK),
//!   Timer D.
//! * `proxy/invite`: a server and a client transaction: INVITE received and forwarded with
//!   Record-Route (100 Trying upstream, our Via and a new branch downstream), the downstream
//!   180 and 200 forwarded upstream, Timers L and M.
//! * `server/non_invite_step/*` and `proxy/invite_step/*`: the same lives run one step at a
//!   time over a whole batch, each step timed alone (where the time goes).
//!
//! `cargo bench -p sip-transaction --bench transactions`

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

use core::time::Duration;
use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_parser::{Message, ResponseBuilder, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardPlan, Listener, Output, Target, TransactionLayer,
};

/// Transactions alive at once (one batch), ended together by one `handle_timeout`.
const BATCH: usize = 1024;
/// Past every timer of a finished transaction (64·T1 = 32 s, Timer D 32 s).
const LATER: Duration = Duration::from_secs(40);

const UAC: &str = "127.0.0.1:5080";
const PROXY: &str = "127.0.0.1:5060";
const UAS: &str = "127.0.0.1:5070";

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn layer(addr: &str) -> TransactionLayer {
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

/// The request of a transmit, as the next hop parses it.
fn parsed(out: &Output, i: usize) -> Message {
    Message::parse(out.transmits[i].payload.clone()).unwrap()
}

/// Runs `iters` transactions in batches; `batch(layer, now, n)` runs `n` of them and returns
/// the time it measured.
fn batches(
    iters: u64,
    layer: &TransactionLayer,
    now: &mut Duration,
    mut batch: impl FnMut(&TransactionLayer, Duration, usize) -> Duration,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(BATCH);
        total += batch(layer, *now, n);
        *now += LATER;
        left -= n;
    }
    total
}

fn server(c: &mut Criterion) {
    let mut g = c.benchmark_group("server");
    g.throughput(Throughput::Elements(1));
    let flow = Flow::udp(PROXY.parse().unwrap(), UAC.parse().unwrap());

    let options: Vec<(Message, Message)> = (0..BATCH)
        .map(|i| {
            let r = request("OPTIONS", i);
            let ok = response(&r, 200, "OK");
            (r, ok)
        })
        .collect();
    g.bench_function("non_invite", |b| {
        let l = layer(PROXY);
        let mut out = Output::new();
        let mut now = Duration::from_secs(1);
        b.iter_custom(|iters| {
            batches(iters, &l, &mut now, |l, now, n| {
                let start = Instant::now();
                for (req, ok) in &options[..n] {
                    l.receive(now, req.clone(), flow, &mut out).unwrap();
                    let Some(Event::Request { tx, .. }) = out.events.pop() else {
                        panic!("no new transaction")
                    };
                    l.receive(now, req.clone(), flow, &mut out).unwrap();
                    l.respond(now, tx, ok, &mut out).unwrap();
                    out.clear();
                }
                l.handle_timeout(now + LATER, &mut out);
                black_box(&out);
                out.clear();
                let t = start.elapsed();
                assert!(l.is_empty());
                t
            })
        });
    });

    // The same, one step at a time over the whole batch, each step timed on its own.
    for (step, name) in ["create", "retransmission", "respond", "terminate"]
        .into_iter()
        .enumerate()
    {
        g.bench_function(format!("non_invite_step/{name}"), |b| {
            let l = layer(PROXY);
            let mut out = Output::new();
            let mut now = Duration::from_secs(1);
            let mut txs = Vec::with_capacity(BATCH);
            b.iter_custom(|iters| {
                batches(iters, &l, &mut now, |l, now, n| {
                    let mut t = [Duration::ZERO; 4];
                    let start = Instant::now();
                    for (req, _) in &options[..n] {
                        l.receive(now, req.clone(), flow, &mut out).unwrap();
                    }
                    t[0] = start.elapsed();
                    txs.clear();
                    txs.extend(out.events.drain(..).map(|e| match e {
                        Event::Request { tx, .. } => tx,
                        _ => panic!("no new transaction"),
                    }));
                    let start = Instant::now();
                    for (req, _) in &options[..n] {
                        l.receive(now, req.clone(), flow, &mut out).unwrap();
                    }
                    t[1] = start.elapsed();
                    let start = Instant::now();
                    for ((_, ok), tx) in options[..n].iter().zip(&txs) {
                        l.respond(now, *tx, ok, &mut out).unwrap();
                    }
                    out.clear();
                    t[2] = start.elapsed();
                    let start = Instant::now();
                    l.handle_timeout(now + LATER, &mut out);
                    out.clear();
                    t[3] = start.elapsed();
                    assert!(l.is_empty());
                    t[step]
                })
            });
        });
    }

    let invites: Vec<(Message, Message, Message)> = (0..BATCH)
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
    g.bench_function("invite", |b| {
        let l = layer(PROXY);
        let mut out = Output::new();
        let mut now = Duration::from_secs(1);
        b.iter_custom(|iters| {
            batches(iters, &l, &mut now, |l, now, n| {
                let start = Instant::now();
                for (req, busy, ack) in &invites[..n] {
                    l.receive(now, req.clone(), flow, &mut out).unwrap();
                    let Some(Event::Request { tx, .. }) = out.events.pop() else {
                        panic!("no new transaction")
                    };
                    l.receive(now, req.clone(), flow, &mut out).unwrap();
                    l.respond(now, tx, busy, &mut out).unwrap();
                    l.receive(now, ack.clone(), flow, &mut out).unwrap();
                    out.clear();
                }
                l.handle_timeout(now + LATER, &mut out);
                black_box(&out);
                out.clear();
                let t = start.elapsed();
                assert!(l.is_empty());
                t
            })
        });
    });
    g.finish();
}

fn client(c: &mut Criterion) {
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    let flow = Flow::udp(UAC.parse().unwrap(), PROXY.parse().unwrap());
    let from_proxy = Flow::udp(UAC.parse().unwrap(), PROXY.parse().unwrap());

    for method in ["OPTIONS", "INVITE"] {
        let head = format!("{method} sip:100000@{PROXY} SIP/2.0\r\nVia: ");
        let rests: Vec<String> = (0..BATCH).map(|i| request_rest(method, i)).collect();
        let name = if method == "INVITE" {
            "invite"
        } else {
            "non_invite"
        };
        g.bench_function(name, |b| {
            let l = layer(UAC);
            let mut out = Output::new();
            let mut now = Duration::from_secs(1);
            let mut responses: Vec<Message> = Vec::with_capacity(2 * BATCH);
            b.iter_custom(|iters| {
                batches(iters, &l, &mut now, |l, now, n| {
                    // Timed: send.
                    let start = Instant::now();
                    for rest in &rests[..n] {
                        l.send_request(
                            now,
                            flow,
                            |via| {
                                let mut v =
                                    Vec::with_capacity(head.len() + via.len() + rest.len() + 2);
                                v.extend_from_slice(head.as_bytes());
                                v.extend_from_slice(via.as_bytes());
                                v.extend_from_slice(b"\r\n");
                                v.extend_from_slice(rest.as_bytes());
                                Bytes::from(v)
                            },
                            &mut out,
                        )
                        .unwrap();
                    }
                    let mut t = start.elapsed();
                    // Not timed: the peer's responses.
                    responses.clear();
                    for i in 0..n {
                        let req = parsed(&out, i);
                        if method == "INVITE" {
                            responses.push(response(&req, 180, "Ringing"));
                            responses.push(response(&req, 486, "Busy Here"));
                        } else {
                            responses.push(response(&req, 200, "OK"));
                        }
                    }
                    out.clear();
                    // Timed: receive, terminate.
                    let start = Instant::now();
                    for r in &responses {
                        l.receive(now, r.clone(), from_proxy, &mut out).unwrap();
                        out.clear();
                    }
                    l.handle_timeout(now + LATER, &mut out);
                    black_box(&out);
                    out.clear();
                    t += start.elapsed();
                    assert!(l.is_empty());
                    t
                })
            });
        });
    }
    g.finish();
}

fn proxy(c: &mut Criterion) {
    let mut g = c.benchmark_group("proxy");
    g.throughput(Throughput::Elements(1));
    let up = Flow::udp(PROXY.parse().unwrap(), UAC.parse().unwrap());
    let down = Flow::udp(PROXY.parse().unwrap(), UAS.parse().unwrap());
    let invites: Vec<Message> = (0..BATCH).map(|i| request("INVITE", i)).collect();
    // Steps: [receive + forward, 180 and 200 forwarded, terminate]; `None` times them all.
    for (step, name) in [
        (None, "invite"),
        (Some(0), "invite_step/forward"),
        (Some(1), "invite_step/responses"),
        (Some(2), "invite_step/terminate"),
    ] {
        g.bench_function(name, |b| {
            let l = layer(PROXY);
            let mut out = Output::new();
            let mut now = Duration::from_secs(1);
            let mut responses: Vec<Message> = Vec::with_capacity(2 * BATCH);
            let mut forwarded = Vec::with_capacity(BATCH);
            b.iter_custom(|iters| {
                batches(iters, &l, &mut now, |l, now, n| {
                    let mut t = [Duration::ZERO; 3];
                    forwarded.clear();
                    let start = Instant::now();
                    for req in &invites[..n] {
                        l.receive(now, req.clone(), up, &mut out).unwrap();
                        let Some(Event::Request { tx, .. }) = out.events.pop() else {
                            panic!("no new transaction")
                        };
                        let plan = ForwardPlan {
                            targets: vec![Target::to(down)],
                            record_route: true,
                            ..ForwardPlan::default()
                        };
                        l.forward(now, tx, plan, &mut out).unwrap();
                        // [100 Trying upstream, INVITE downstream]
                        forwarded.push(out.transmits.pop().unwrap().payload);
                        out.clear();
                    }
                    t[0] = start.elapsed();
                    // Not timed: the UAS answers.
                    responses.clear();
                    for f in forwarded.drain(..) {
                        let req = Message::parse(f).unwrap();
                        responses.push(response(&req, 180, "Ringing"));
                        let ok = ResponseBuilder::new(&req, 200, "OK")
                            .to_tag("uas1")
                            .body("application/sdp", SDP)
                            .build();
                        responses.push(Message::parse(ok).unwrap());
                    }
                    let start = Instant::now();
                    for r in &responses {
                        l.receive(now, r.clone(), down, &mut out).unwrap();
                        out.clear();
                    }
                    t[1] = start.elapsed();
                    let start = Instant::now();
                    l.handle_timeout(now + LATER, &mut out);
                    black_box(&out);
                    out.clear();
                    t[2] = start.elapsed();
                    assert!(l.is_empty());
                    step.map_or(t.iter().sum(), |i| t[i])
                })
            });
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = server, client, proxy
}
criterion_main!(benches);
