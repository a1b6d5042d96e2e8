//! Criterion suite for what a transaction layer and a proxy do per branch with `sip-parser`
//! beyond parsing: build the CANCEL and the non-2xx ACK of a stored INVITE, fill in
//! `received`/`rport` on receipt, forward (Route pop, Max-Forwards, Via prepend), compute the
//! loop-detection hash, draw a branch.
//!
//! `cargo bench -p sip-benches --bench build`

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sip_parser::{Ident, Message, RequestBuilder, SystemRandom};

const INVITE: &[u8] = include_bytes!("../corpus/01_invite_sdp.sip");
const BUSY: &[u8] = b"SIP/2.0 486 Busy Here\r\n\
    Via: SIP/2.0/UDP p2.biloxi.example.com:5060;branch=z9hG4bK2d4790.1\r\n\
    To: \"Bob\" <sip:bob@biloxi.example.com>;tag=8321234356\r\n\
    From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
    Call-ID: 3848276298220188511@atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\
    Content-Length: 0\r\n\r\n";

fn bench(c: &mut Criterion) {
    let invite = Message::parse(Bytes::from_static(INVITE)).expect("corpus INVITE frames");
    let busy = Message::parse(Bytes::from_static(BUSY)).expect("486 frames");
    let source: SocketAddr = "203.0.113.9:40312".parse().expect("address");
    let mut g = c.benchmark_group("build");
    g.bench_function("cancel", |b| {
        b.iter(|| RequestBuilder::cancel(black_box(&invite)).map(|r| r.build()));
    });
    g.bench_function("ack_non_2xx", |b| {
        b.iter(|| RequestBuilder::ack(black_box(&invite), &busy).map(|r| r.build()));
    });
    g.finish();
    let mut g = c.benchmark_group("edit");
    g.bench_function("forward", |b| {
        b.iter(|| {
            let mut e = black_box(&invite).edit();
            e.pop_route();
            let _ = e.decrement_max_forwards();
            e.prepend_via(Bytes::from_static(
                b"SIP/2.0/UDP p3.example.com;branch=z9hG4bK1",
            ));
            e.to_bytes()
        });
    });
    g.bench_function("fill_via_received+forward", |b| {
        b.iter(|| {
            let mut e = black_box(&invite).edit();
            let _ = e.fill_via_received(black_box(source));
            e.pop_route();
            let _ = e.decrement_max_forwards();
            e.prepend_via(Bytes::from_static(
                b"SIP/2.0/UDP p3.example.com;branch=z9hG4bK1",
            ));
            e.to_bytes()
        });
    });
    g.finish();
    let mut g = c.benchmark_group("ident");
    let mut rng = SystemRandom::new();
    g.bench_function("loop_hash", |b| b.iter(|| black_box(&invite).loop_hash()));
    g.bench_function("branch", |b| b.iter(|| Ident::branch(&mut rng)));
    let hash = invite.loop_hash().expect("valid INVITE");
    g.bench_function("loop_branch", |b| b.iter(|| hash.branch(&mut rng)));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
