//! Decodes the benchmark's 1 KB SIP packet in a loop, for `valgrind --tool=callgrind`
//! (instruction counts) and `perf`: `decode_loop [iterations]`.

use std::hint::black_box;

use hep_codec::{HepPacket, IpProto, Mode};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut payload = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n".to_vec();
    payload.resize(1024, b'a');
    let packet = HepPacket::sip(
        "192.0.2.1:5060".parse().unwrap(),
        "192.0.2.2:5060".parse().unwrap(),
        IpProto::UDP,
        1_700_000_000,
        123_456,
        &payload,
    );
    let mut wire = Vec::new();
    packet.encode(&mut wire).unwrap();
    let mut sum = 0usize;
    for _ in 0..n {
        let p = HepPacket::decode_with(black_box(&wire), Mode::Strict).unwrap();
        sum += black_box(p.payload.map_or(0, <[u8]>::len));
    }
    println!("{sum}");
}
