//! Criterion suite for `sip_parser::Uri::equivalent` (RFC 3261 §19.1.4) and `sip_parser::Aor`:
//! the common case (no escapes, a few parameters), escapes, and parameter lists long enough
//! to take the sorted path.
//!
//! `cargo bench -p sip-benches --bench uri_eq`

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sip_parser::{Aor, Uri, UserCase};

fn long_params(reverse: bool) -> String {
    let mut p: Vec<String> = (0..20).map(|i| format!(";p{i}={i}")).collect();
    if reverse {
        p.reverse();
    }
    format!("sip:alice@atlanta.com{}", p.concat())
}

fn bench(c: &mut Criterion) {
    let (long_a, long_b) = (long_params(false), long_params(true));
    let pairs: [(&str, &str, &str); 4] = [
        (
            "plain",
            "sip:alice@atlanta.com;transport=tcp;lr",
            "sip:alice@AtLanTa.CoM;lr;Transport=TCP",
        ),
        (
            "escaped",
            "sip:%61lice@atlanta.com;transport=TCP?subject=project%20x",
            "sip:alice@AtLanTa.CoM;Transport=tcp?Subject=project%20x",
        ),
        (
            "ipv6",
            "sip:bob@[2001:db8::1]:5060",
            "sip:bob@[2001:DB8:0:0:0:0:0:1]:5060",
        ),
        ("20_params", &long_a, &long_b),
    ];
    let mut group = c.benchmark_group("uri_equivalent");
    for (name, a, b) in pairs {
        let (a, b) = (
            Uri::parse(a.as_bytes()).unwrap(),
            Uri::parse(b.as_bytes()).unwrap(),
        );
        assert!(a.equivalent(&b), "{name}");
        group.bench_function(name, |bench| {
            bench.iter(|| black_box(&a).equivalent(black_box(&b)));
        });
    }
    group.finish();
    let mut group = c.benchmark_group("aor_new");
    for (name, s) in [
        ("plain", "sip:alice@atlanta.com;transport=tcp"),
        ("escaped_ipv6", "sip:%61lice@[2001:DB8::1]:5060;user=ip"),
    ] {
        let uri = Uri::parse(s.as_bytes()).unwrap();
        group.bench_function(name, |bench| {
            bench.iter(|| Aor::new(black_box(&uri), UserCase::Sensitive));
        });
    }
    group.finish();
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
