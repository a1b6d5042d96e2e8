//! Criterion suite: `parse/<message>` and `proxy_fields/<message>`, one function per
//! implementation (see `sip_benches::impls`), throughput in bytes.
//!
//! `cargo bench -p sip-benches --bench parsers` (`--no-default-features` leaves `sip-parser`
//! out).

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sip_benches::{corpus, impls};

fn bench(c: &mut Criterion) {
    let messages = corpus::load();
    let impls = impls::all();
    for workload in ["parse", "proxy_fields"] {
        for msg in &messages {
            let mut group = c.benchmark_group(format!("{workload}/{}", msg.name));
            group.throughput(Throughput::Bytes(msg.bytes.len() as u64));
            for imp in &impls {
                let id = BenchmarkId::from_parameter(imp.name);
                if workload == "parse" {
                    let f = imp.parse;
                    group.bench_with_input(id, &msg.bytes, |b, m| b.iter(|| f(m)));
                } else {
                    let f = imp.proxy_fields;
                    group.bench_with_input(id, &msg.bytes, |b, m| b.iter(|| f(m)));
                }
            }
            group.finish();
        }
    }
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
