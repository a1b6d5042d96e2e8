//! Throughput of the memory store and the registrar on one and two threads:
//!
//! * `lookup`: `MemoryStore::lookup` of a random AOR among 100 000 (one typical binding each);
//! * `refresh`: `MemoryStore::apply` of a re-registration (one `Put` replacing the binding);
//! * `register`: `registrar::register` of a parsed refresh REGISTER (lookup, §10.3 rules,
//!   apply, the 200 built), i.e. what a REGISTER costs past parsing and authentication.
//!
//! Two threads split the same number of operations between them (`iter_custom`), so the
//! reported rate is the aggregate. Bytes per binding: `--bench memory`.

#[path = "../tests/support/typical.rs"]
mod typical;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use sip_location::registrar;
use sip_location::{Changes, LocationStore, MemoryStore, Op, Policy, Source};
use sip_parser::{Message, Transport};

const AORS: usize = 100_000;
const REG_AORS: usize = 10_000;

fn now() -> Duration {
    Duration::from_secs(typical::T0 + 10)
}

/// Runs `iters` operations split over `threads` threads; `op(thread, i)`.
fn split(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mine = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                for i in 0..mine {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let store = typical::store(AORS * 2);
    typical::fill(&store, AORS);
    let aors: Vec<String> = (0..AORS).map(typical::aor).collect();
    // A fixed pseudo-random walk over the AORs, the same for every run.
    let pick = |t: usize, i: u64| -> usize {
        let x = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (t as u64 * 0x632b_e59b_d9b4_e019)) >> 17;
        (x % AORS as u64) as usize
    };
    let refreshes: Vec<Changes> = (0..AORS)
        .map(|i| Changes::new(aors[i].clone()).with(Op::Put(typical::binding(i))))
        .collect();

    let mut g = c.benchmark_group("location");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        g.bench_function(format!("lookup/{threads}thread"), |b| {
            b.iter_custom(|iters| {
                split(threads, iters, &|t, i| {
                    let snap = store.lookup(&aors[pick(t, i)], now()).unwrap();
                    black_box(snap.len());
                })
            });
        });
        g.bench_function(format!("refresh/{threads}thread"), |b| {
            b.iter_custom(|iters| {
                split(threads, iters, &|t, i| {
                    let a = store.apply(&refreshes[pick(t, i)], now()).unwrap();
                    black_box(a.version);
                })
            });
        });
    }

    // Full REGISTER processing. Two Call-IDs per AOR, alternated from one pass over the AORs
    // to the next, so every REGISTER is a valid refresh (§10.3 step 7: a new Call-ID updates
    // whatever the CSeq).
    let policy = Policy::default();
    let src = Source::new("198.51.100.7:5060".parse().unwrap(), Transport::Udp);
    let messages: Vec<[Message; 2]> = (0..REG_AORS)
        .map(|i| {
            [0, 1].map(|k| {
                Message::parse(
                    format!(
                        "REGISTER sip:example.com SIP/2.0\r\n\
                         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-{i}-{k};rport\r\n\
                         Max-Forwards: 70\r\nTo: <sip:u{i:07}@example.com>\r\n\
                         From: <sip:u{i:07}@example.com>;tag=9{i}\r\n\
                         Call-ID: {i:010}-{k}-a84b4c76e6671@pc33\r\nCSeq: 1 REGISTER\r\n\
                         Contact: <sip:u{i:07}@198.51.100.7:5060;line=abc>\r\nExpires: 3600\r\n\
                         User-Agent: Grandstream GXP2170 1.0.1\r\nContent-Length: 0\r\n\r\n"
                    )
                    .into_bytes()
                    .into(),
                )
                .unwrap()
            })
        })
        .collect();
    // Per thread, how many REGISTERs it has sent over all runs, so that every pass over the
    // AORs alternates the Call-ID; and how many got anything but a 200 (must stay 0).
    let sent = [AtomicU64::new(0), AtomicU64::new(0)];
    let not_ok = AtomicU64::new(0);
    for threads in [1usize, 2] {
        let reg_store = MemoryStore::default();
        g.bench_function(format!("register/{threads}thread"), |b| {
            b.iter_custom(|iters| {
                split(threads, iters, &|t, _| {
                    // Thread t takes the AORs = t (mod threads): no two threads race on one AOR.
                    let k = sent[t].fetch_add(1, Ordering::Relaxed) as usize;
                    let n = k * threads + t;
                    let aor = n % REG_AORS;
                    let pass = (n / REG_AORS) % 2;
                    let r =
                        registrar::register(&reg_store, &messages[aor][pass], &src, now(), &policy);
                    if r.reply.as_ref().map(|r| r.status) != Some(200) {
                        not_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    black_box(r.reply);
                })
            });
        });
        for c in &sent {
            c.store(0, Ordering::Relaxed);
        }
    }
    assert_eq!(
        not_ok.load(Ordering::Relaxed),
        0,
        "every REGISTER got its 200"
    );
    g.finish();
}

mod group {
    #![allow(missing_docs)]
    criterion::criterion_group! {
        name = location;
        config = criterion::Criterion::default()
            .measurement_time(std::time::Duration::from_secs(4))
            .warm_up_time(std::time::Duration::from_secs(1));
        targets = super::bench
    }
}
criterion_main!(group::location);
