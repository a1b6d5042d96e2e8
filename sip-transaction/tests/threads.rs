//! One proxy table driven from 4 threads at once: each thread receives INVITEs and proxies
//! them, but the downstream responses are delivered by *another* thread, as happens when
//! every worker reads its own `SO_REUSEPORT` socket. Every call must get exactly one 200
//! upstream, and the table must drain.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use sip_parser::{Message, ResponseBuilder, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardPlan, Listener, Output, Target, TransactionLayer,
};

const THREADS: usize = 4;
const CALLS: usize = 500;

fn invite(t: usize, i: usize) -> Message {
    Message::parse(Bytes::from(format!(
        "INVITE sip:bob@127.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{t}-{i}\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.2>\r\nFrom: <sip:a@127.0.0.1>;tag=f{t}x{i}\r\n\
         Call-ID: thr-{t}-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:{port}>\r\n\
         Content-Length: 0\r\n\r\n",
        port = 6000 + t
    )))
    .unwrap()
}

#[test]
fn four_threads_share_one_table() {
    let me: std::net::SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let uas: std::net::SocketAddr = "127.0.0.2:5060".parse().unwrap();
    let layer = TransactionLayer::new(
        &Config {
            listeners: vec![Listener::new(Transport::Udp, me)],
            shards: 16,
            ..Config::default()
        },
        [3; 32],
    );
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Bytes>()).unzip();
    let now = Duration::from_secs(10);
    let results: Vec<HashMap<String, usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(t, rx)| {
                let layer = &layer;
                // Thread t hands the UAS responses for its calls to thread t+1.
                let next = senders[(t + 1) % THREADS].clone();
                s.spawn(move || {
                    let mut out = Output::new();
                    let mut ok_upstream: HashMap<String, usize> = HashMap::new();
                    let mut sent = 0;
                    let mut received = 0;
                    while sent < CALLS || received < CALLS {
                        if sent < CALLS {
                            let from =
                                Flow::udp(me, format!("127.0.0.1:{}", 6000 + t).parse().unwrap());
                            layer.receive(now, invite(t, sent), from, &mut out).unwrap();
                            sent += 1;
                        }
                        for e in out.events.drain(..).collect::<Vec<_>>() {
                            if let Event::Request { tx, .. } = e {
                                let plan = ForwardPlan {
                                    targets: vec![Target::to(Flow::udp(me, uas))],
                                    record_route: true,
                                    ..ForwardPlan::default()
                                };
                                layer.forward(now, tx, plan, &mut out).unwrap();
                            }
                        }
                        for tr in out.transmits.drain(..) {
                            if tr.payload.starts_with(b"INVITE") {
                                // The UAS answers; another thread receives it.
                                let m = Message::parse(tr.payload).unwrap();
                                let ok = ResponseBuilder::new(&m, 200, "OK").to_tag("u").build();
                                next.send(ok).unwrap();
                            } else if tr.payload.starts_with(b"SIP/2.0 200") {
                                let m = Message::parse(tr.payload).unwrap();
                                *ok_upstream
                                    .entry(m.call_id().unwrap().to_owned())
                                    .or_default() += 1;
                            }
                        }
                        while let Ok(resp) = rx.try_recv() {
                            layer
                                .receive(
                                    now,
                                    Message::parse(resp).unwrap(),
                                    Flow::udp(me, uas),
                                    &mut out,
                                )
                                .unwrap();
                            received += 1;
                        }
                        if sent == CALLS && received < CALLS {
                            if let Ok(resp) = rx.recv_timeout(Duration::from_secs(10)) {
                                layer
                                    .receive(
                                        now,
                                        Message::parse(resp).unwrap(),
                                        Flow::udp(me, uas),
                                        &mut out,
                                    )
                                    .unwrap();
                                received += 1;
                            }
                        }
                        for tr in out.transmits.drain(..) {
                            if tr.payload.starts_with(b"SIP/2.0 200") {
                                let m = Message::parse(tr.payload).unwrap();
                                *ok_upstream
                                    .entry(m.call_id().unwrap().to_owned())
                                    .or_default() += 1;
                            }
                        }
                        out.events.clear();
                    }
                    ok_upstream
                })
            })
            .collect();
        drop(senders);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: HashMap<String, usize> = HashMap::new();
    for r in results {
        for (k, v) in r {
            *all.entry(k).or_default() += v;
        }
    }
    assert_eq!(all.len(), THREADS * CALLS, "every call answered upstream");
    assert!(all.values().all(|&n| n == 1), "each exactly once");
    assert_eq!(layer.len(), 2 * THREADS * CALLS);
    let mut out = Output::new();
    layer.handle_timeout(now + Duration::from_secs(40), &mut out);
    assert!(layer.is_empty(), "{} left", layer.len());
    assert_eq!(layer.timer_entries(), 0);
}
