//! Encode of a 1 KB SIP payload beside a plain copy of the same bytes, and decode.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use common::sip_1k;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hep_codec::{HepPacket, Mode};

fn bench(c: &mut Criterion) {
    let payload = sip_1k();
    assert_eq!(payload.len(), 1024);
    let packet = common::sip_packet(&payload);
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
