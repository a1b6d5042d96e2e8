//! Encode of a 1 KB SIP payload beside a plain copy of the same bytes, and decode.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hep_codec::{HepPacket, IpProto, Mode};

fn sip_1k() -> Vec<u8> {
    let mut m = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\n"
        .to_vec();
    m.extend_from_slice(b"Content-Length: ");
    let body_len = 1024 - m.len() - b"NNN\r\n\r\n".len();
    m.extend_from_slice(format!("{body_len:03}\r\n\r\n").as_bytes());
    m.resize(1024, b'a');
    m
}

fn bench(c: &mut Criterion) {
    let payload = sip_1k();
    assert_eq!(payload.len(), 1024);
    let packet = HepPacket::sip(
        "192.0.2.1:5060".parse().unwrap(),
        "192.0.2.2:5060".parse().unwrap(),
        IpProto::UDP,
        1_700_000_000,
        123_456,
        &payload,
    );
    let mut buf = Vec::with_capacity(2048);

    let mut g = c.benchmark_group("hep_1k_sip");
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("memcpy_payload", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&payload));
            black_box(buf.len())
        });
    });
    g.bench_function("encode_v3", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&packet).encode(&mut buf).unwrap();
            black_box(buf.len())
        });
    });
    let mut wire = Vec::new();
    packet.encode(&mut wire).unwrap();
    g.bench_function("decode_v3_strict", |b| {
        b.iter(|| {
            let p = HepPacket::decode_with(black_box(&wire), Mode::Strict).unwrap();
            black_box(p.payload.map(<[u8]>::len))
        });
    });
    g.bench_function("walk_chunks_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for c in hep_codec::ChunkIter::new(black_box(&wire)) {
                n += c.unwrap().1.value.len();
            }
            black_box(n)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
