//! Parses every file given on the command line N times and reads the proxy fields: a fixed
//! workload for `valgrind --tool=callgrind` (instruction counts are repeatable on a noisy
//! machine).
//!
//! `cargo build --release -p sip-parser --example profile && valgrind --tool=callgrind \
//!  target/release/examples/profile 1000 benches/corpus/*.sip`

use std::hint::black_box;

use bytes::Bytes;
use sip_parser::Message;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let msgs: Vec<Bytes> = args
        .map(|p| Bytes::from(std::fs::read(p).expect("read")))
        .collect();
    let fields = std::env::var_os("PARSE_ONLY").is_none();
    for _ in 0..n {
        for b in &msgs {
            let m = Message::parse(b.clone()).expect("parse");
            if fields {
                black_box(m.method());
                black_box(m.request_uri_parsed());
                black_box(m.status());
                black_box(m.top_via().ok().flatten().and_then(|v| v.branch));
                black_box(m.call_id());
                black_box(m.cseq().ok());
                black_box(m.from().ok().and_then(|f| f.tag()));
                black_box(m.to().ok().and_then(|f| f.tag()));
                black_box(m.max_forwards().ok());
                black_box(m.routes().next().map(|r| r.map(|r| r.uri())));
                black_box(m.content_length());
            }
            black_box(&m);
        }
    }
}
