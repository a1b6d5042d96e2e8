//! Criterion benchmarks of the proxy-side tracker: a whole tracked call (create, 180, 200,
//! ACK, BYE), a failed one (create, 486), and matching an in-dialog request among 100 000
//! live dialogs by cookie and by Call-ID + tags; the whole call also from two threads
//! sharing one tracker. Messages are parsed once beforehand: what is measured is the
//! tracker, not the parser.
//!
//! `cargo bench -p sip-dialog --bench tracker`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use sip_dialog::{CreateOptions, MatchMode, Outcome, Tracker, TrackerConfig};
use sip_parser::Message;

fn parse(s: String) -> Message {
    Message::parse(s.into_bytes().into()).expect("bench message")
}

fn now() -> Duration {
    Duration::from_secs(1_700_000_000)
}

/// The messages of one call, as the proxy sees them.
struct CallMsgs {
    invite: Message,
    ringing: Message,
    ok: Message,
    ack: Message,
    bye: Message,
    busy: Message,
}

fn call_msgs(i: usize) -> CallMsgs {
    let cid = format!("{i:08x}-5e1c7a40b1@atlanta.example.com");
    let head = |first: &str, via: &str| {
        format!("{first}\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK-{i}\r\nMax-Forwards: 69\r\n")
    };
    let dialog = |from_tag: &str, to_tag: Option<&str>, cseq: &str| {
        let to = to_tag.map_or(String::new(), |t| format!(";tag={t}"));
        format!(
            "From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}\r\n\
             To: Bob <sip:bob@biloxi.example.com>{to}\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\n"
        )
    };
    let rr = "Record-Route: <sip:p3.biloxi.example.com;lr>, <sip:us.example.com;lr>, <sip:p1.atlanta.example.com;lr>\r\n";
    let contact = "Contact: <sip:bob@192.0.2.4>\r\nContent-Length: 0\r\n\r\n";
    CallMsgs {
        invite: parse(format!(
            "{}Record-Route: <sip:p1.atlanta.example.com;lr>\r\n{}Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Length: 0\r\n\r\n",
            head(
                "INVITE sip:bob@biloxi.example.com SIP/2.0",
                "p1.atlanta.example.com"
            ),
            dialog("9fxced76sl", None, "1 INVITE")
        )),
        ringing: parse(format!(
            "{}{rr}{}{contact}",
            head("SIP/2.0 180 Ringing", "us.example.com"),
            dialog("9fxced76sl", Some("314159"), "1 INVITE")
        )),
        ok: parse(format!(
            "{}{rr}{}{contact}",
            head("SIP/2.0 200 OK", "us.example.com"),
            dialog("9fxced76sl", Some("314159"), "1 INVITE")
        )),
        busy: parse(format!(
            "{}{}Content-Length: 0\r\n\r\n",
            head("SIP/2.0 486 Busy Here", "us.example.com"),
            dialog("9fxced76sl", Some("314159"), "1 INVITE")
        )),
        ack: parse(format!(
            "{}Route: <sip:us.example.com;lr>, <sip:p3.biloxi.example.com;lr>\r\n{}Content-Length: 0\r\n\r\n",
            head("ACK sip:bob@192.0.2.4 SIP/2.0", "p1.atlanta.example.com"),
            dialog("9fxced76sl", Some("314159"), "1 ACK")
        )),
        bye: parse(format!(
            "{}Route: <sip:us.example.com;lr>, <sip:p3.biloxi.example.com;lr>\r\n{}Content-Length: 0\r\n\r\n",
            head("BYE sip:bob@192.0.2.4 SIP/2.0", "p1.atlanta.example.com"),
            dialog("9fxced76sl", Some("314159"), "2 BYE")
        )),
    }
}

fn tracker() -> Tracker {
    Tracker::new(
        TrackerConfig {
            max_dialogs: 1_000_000,
            ..TrackerConfig::default()
        },
        [1, 2, 3, 4],
        now(),
    )
}

fn whole_call(tr: &Tracker, m: &CallMsgs) {
    let t = now();
    black_box(tr.on_request(&m.invite, t));
    let h = tr
        .create(&m.invite, &CreateOptions::default(), t)
        .expect("room");
    black_box(h);
    black_box(tr.on_response(&m.ringing, t));
    black_box(tr.on_response(&m.ok, t));
    black_box(tr.on_request(&m.ack, t));
    let o = tr.on_request(&m.bye, t);
    debug_assert!(matches!(&o, Outcome::Tracked(x) if x.ended.is_some()));
    black_box(o);
}

fn bench(c: &mut Criterion) {
    let calls: Vec<CallMsgs> = (0..4096).map(call_msgs).collect();

    let mut g = c.benchmark_group("tracker");
    g.throughput(Throughput::Elements(1));
    let tr = tracker();
    let mut i = 0;
    g.bench_function("call_create_180_200_ack_bye", |b| {
        b.iter(|| {
            whole_call(&tr, &calls[i % calls.len()]);
            i += 1;
        });
    });
    assert!(tr.is_empty());

    let mut i = 0;
    g.bench_function("call_create_486", |b| {
        b.iter(|| {
            let m = &calls[i % calls.len()];
            let t = now();
            black_box(
                tr.create(&m.invite, &CreateOptions::default(), t)
                    .expect("room"),
            );
            black_box(tr.on_response(&m.busy, t));
            i += 1;
        });
    });
    assert!(tr.is_empty());

    // 100 000 confirmed dialogs; match an in-dialog request of one of them.
    for (name, mode) in [
        ("match_by_cookie_100k", MatchMode::DidOnly),
        ("match_by_call_id_100k", MatchMode::SipOnly),
    ] {
        let tr = Tracker::new(
            TrackerConfig {
                max_dialogs: 200_000,
                match_mode: mode,
                ..TrackerConfig::default()
            },
            [1, 2, 3, 4],
            now(),
        );
        let mut infos = Vec::new();
        for n in 0..100_000 {
            let m = if n < calls.len() {
                &calls[n]
            } else {
                &call_msgs(n)
            };
            let h = tr
                .create(&m.invite, &CreateOptions::default(), now())
                .expect("room")
                .handle();
            tr.on_response(&m.ok, now());
            if n % 25 == 0 {
                let cid = m.invite.call_id().unwrap_or_default();
                infos.push(parse(format!(
                    "INFO sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK-i{n}\r\n\
                     Max-Forwards: 69\r\nRoute: <sip:us.example.com;lr;{}>\r\n\
                     From: <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
                     To: <sip:bob@biloxi.example.com>;tag=314159\r\nCall-ID: {cid}\r\n\
                     CSeq: 5 INFO\r\nContent-Length: 0\r\n\r\n",
                    tr.cookie(h)
                )));
            }
        }
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let o = tr.on_request(&infos[i % infos.len()], now());
                debug_assert!(matches!(o, Outcome::Tracked(_)));
                black_box(o);
                i += 1;
            });
        });
    }

    // Two threads sharing one tracker, each running whole calls on its own Call-IDs.
    g.throughput(Throughput::Elements(2));
    let shared = Arc::new(tracker());
    let calls = Arc::new(calls);
    g.bench_function("call_two_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let workers: Vec<_> = (0..2)
                .map(|w| {
                    let tr = shared.clone();
                    let calls = calls.clone();
                    std::thread::spawn(move || {
                        for k in 0..iters as usize {
                            let idx = (k * 2 + w) % calls.len();
                            whole_call(&tr, &calls[idx]);
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().expect("worker");
            }
            start.elapsed()
        });
    });
    assert!(shared.is_empty());
    g.finish();
}

/// The benchmark group (a module so the generated function may go undocumented).
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(tracker, super::bench);
}
criterion_main!(group::tracker);
