//! Heap bytes per live INVITE server + client transaction pair in a proxy, measured with a
//! counting global allocator: `N` INVITEs (as SIPp's `uac_call.xml` sends them, 531 bytes
//! with SDP) are received and forwarded with Record-Route, then each gets a 180 and
//! later a 200 (with SDP) from downstream, and the live heap is read at each step.
//!
//! What a pair stores (see `layer.rs`): the server transaction (its state machine and timers,
//! the received request as a `Message` over its datagram buffer, the matching key as offsets
//! into it, the response route, the last response sent, the proxy context with its branch
//! list) and the client transaction (state machine, the forwarded request's bytes as sent,
//! its method and branch), each boxed in a slab slot, plus the index and timer-wheel
//! entries. The byte figure is printed (`--nocapture`) and bounded here.
//!
//! One test in this binary, so no other test's allocations are counted.

use core::time::Duration;
use std::alloc::System;

use bytes::Bytes;
use sip_parser::{Message, ResponseBuilder, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardPlan, Listener, Output, Target, TransactionLayer,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 10_000;
const UAC: &str = "127.0.0.1:5080";
const PROXY: &str = "127.0.0.1:5060";
const UAS: &str = "127.0.0.1:5070";
const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Bytes allocated and not freed so far.
fn live() -> isize {
    let s = GLOBAL.stats();
    let signed = |n: usize| isize::try_from(n).expect("less than isize::MAX bytes");
    signed(s.bytes_allocated) - signed(s.bytes_deallocated) + s.bytes_reallocated
}

/// SIPp's INVITE for call `i`, in a buffer of its own exact size (as a UDP receive copies it).
fn invite(i: usize) -> Message {
    let text = format!(
        "INVITE sip:100000@{PROXY} SIP/2.0\r\nVia: SIP/2.0/UDP {UAC};branch=z9hG4bK-{i}-1-0\r\n\
         From: \"sipp\" <sip:sipp@{UAC}>;tag={i}SIPpTag001\r\nTo: <sip:100000@{PROXY}>\r\n\
         Call-ID: {i}-31707@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:sipp@{UAC}>\r\n\
         Max-Forwards: 70\r\nUser-Agent: sipp-load\r\nSubject: Performance Test\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    Message::parse(Bytes::copy_from_slice(text.as_bytes())).unwrap()
}

/// A downstream response, in a buffer of its own.
fn answer(req: &Message, status: u16) -> Message {
    let reason = if status == 200 { "OK" } else { "Ringing" };
    let mut b = ResponseBuilder::new(req, status, reason);
    b.to_tag("31707SIPpTag011")
        .header("Contact", "<sip:127.0.0.1:5070>");
    if status == 200 {
        b.body("application/sdp", SDP);
    }
    Message::parse(Bytes::copy_from_slice(&b.build())).unwrap()
}

#[test]
fn heap_bytes_per_proxied_invite() {
    let cfg = Config {
        listeners: vec![Listener::new(Transport::Udp, PROXY.parse().unwrap())],
        ..Config::default()
    };
    let up = Flow::udp(PROXY.parse().unwrap(), UAC.parse().unwrap());
    let down = Flow::udp(PROXY.parse().unwrap(), UAS.parse().unwrap());
    let now = Duration::from_secs(1);
    let mut out = Output::new();
    // Output capacity is the caller's and reused: size it before measuring.
    out.transmits.reserve(8);
    out.events.reserve(8);

    let base = live();
    let layer = TransactionLayer::new(&cfg, [7; 32]);
    let empty = live() - base;

    let mut forwarded = Vec::with_capacity(N);
    let before = live();
    for i in 0..N {
        layer.receive(now, invite(i), up, &mut out).unwrap();
        let Some(Event::Request { tx, .. }) = out.events.pop() else {
            panic!("no new transaction")
        };
        let plan = ForwardPlan {
            targets: vec![Target::to(down)],
            record_route: true,
            ..ForwardPlan::default()
        };
        layer.forward(now, tx, plan, &mut out).unwrap();
        // Keep the forwarded bytes only as long as it takes to answer (below, not counted).
        forwarded.push(out.transmits.pop().unwrap().payload);
        out.clear();
    }
    // (`forwarded` was allocated before; the bytes it holds are the client transactions'.)
    let trying = live() - before;
    let sent = forwarded.iter().map(Bytes::len).sum::<usize>() / N;
    assert_eq!(layer.len(), 2 * N);

    let before = live();
    for f in &forwarded {
        let req = Message::parse(f.clone()).unwrap();
        layer
            .receive(now, answer(&req, 180), down, &mut out)
            .unwrap();
        out.clear();
    }
    let ringing = trying + live() - before;

    let before = live();
    for f in &forwarded {
        let req = Message::parse(f.clone()).unwrap();
        layer
            .receive(now, answer(&req, 200), down, &mut out)
            .unwrap();
        out.clear();
    }
    let accepted = ringing + live() - before;
    drop(forwarded);
    assert_eq!(layer.len(), 2 * N);

    let per = |bytes: isize| bytes / isize::try_from(N).unwrap();
    eprintln!(
        "heap per live INVITE server+client pair through the proxy ({N} pairs; empty layer {empty} B):\n  \
         after INVITE forwarded (100 Trying stored): {} B\n  \
         after 180 forwarded: {} B\n  \
         after 200 forwarded (RFC 6026 Accepted): {} B\n  \
         (the forwarded INVITE is {} B, the received one 531 B; a `Message` is {} B inline)",
        per(trying),
        per(ringing),
        per(accepted),
        sent,
        size_of::<Message>()
    );
    // A bound, not a hard-coded figure: the stored messages alone are ~2.2 kB.
    for b in [trying, ringing, accepted] {
        assert!(per(b) < 16 * 1024, "{} B per pair", per(b));
    }

    // Everything is freed once the timers ran.
    layer.handle_timeout(now + Duration::from_secs(40), &mut out);
    out.clear();
    assert!(layer.is_empty());
}
