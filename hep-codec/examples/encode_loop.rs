//! Encodes the benchmark's 1 KB SIP packet in a loop, for `valgrind --tool=callgrind`
//! (instruction counts) and `perf`: `encode_loop [iterations]`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let payload = common::sip_1k();
    let packet = common::sip_packet(&payload);
    let mut buf = Vec::with_capacity(2048);
    let mut sum = 0usize;
    for _ in 0..n {
        buf.clear();
        black_box(&packet).encode(&mut buf).unwrap();
        sum += black_box(buf.len());
    }
    println!("{sum}");
}
