//! Decodes the benchmark's 1 KB SIP packet in a loop, for `valgrind --tool=callgrind`
//! (instruction counts) and `perf`: `decode_loop [iterations]`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use hep_codec::{HepPacket, Mode};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let payload = common::sip_1k();
    let packet = common::sip_packet(&payload);
    let mut wire = Vec::new();
    packet.encode(&mut wire).unwrap();
    let mut sum = 0usize;
    for _ in 0..n {
        let p = HepPacket::decode_with(black_box(&wire), Mode::Strict).unwrap();
        sum += black_box(p.payload.map_or(0, <[u8]>::len));
    }
    println!("{sum}");
}
