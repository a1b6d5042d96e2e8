//! Criterion benchmarks of the shared server-side state under contention: the same work from
//! one thread and from two threads at once on one shared `DigestServer` (replay table on),
//! `FailureTracker` and `AuthCache`. Each figure is the wall time per operation per thread,
//! so without a global lock the two-thread figure stays near the one-thread figure (on a
//! machine with two free cores); behind one mutex it doubles. The `global_mutex` rows wrap
//! the same structure in one `Mutex`, the way a proxy had to before, for comparison.
//!
//! Run: `cargo bench -p sip-auth --bench shared`.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_main};
use sip_auth::{
    AuthCache, BanConfig, ClientRequest, DigestClient, DigestServer, FailureTracker, HashKind,
    MemoryStore, NonceSecrets, Outcome, ReplayTable, Request, ServerConfig,
};

const NOW: u64 = 1_700_000_000;
const CR: ClientRequest<'static> = ClientRequest {
    method: "REGISTER",
    uri: "sip:atlanta.com",
    body: b"",
};

/// Run `op(thread, i)` for `i in 0..iters` on `threads` threads started together; the wall
/// time of the slowest thread. `prepare(thread, iters)` runs before the clock starts.
fn contended<P: Send>(
    threads: usize,
    iters: u64,
    prepare: impl Fn(usize, u64) -> P + Sync,
    op: impl Fn(&P, u64) + Sync,
) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, prepare, op) = (&start, &prepare, &op);
                s.spawn(move || {
                    let p = prepare(t, iters);
                    start.wait();
                    let t0 = Instant::now();
                    for i in 0..iters {
                        op(&p, i);
                    }
                    t0.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

fn request(t: usize) -> Request<'static> {
    Request {
        method: b"REGISTER",
        request_uri: b"sip:atlanta.com",
        source: Some(IpAddr::from([192, 0, 2, t as u8 + 1])),
        ..Request::default()
    }
}

fn benches(c: &mut Criterion) {
    // Verify with the replay table on: every iteration a fresh nc on the thread's own nonce,
    // the responses computed before the clock starts.
    let mut cfg = ServerConfig::new("atlanta.com");
    cfg.algorithms = vec![sip_auth::Algorithm::Sha256];
    let server = DigestServer::new(cfg, NonceSecrets::new(1, &[7u8; 32]));
    let mut store = MemoryStore::new();
    store.add_password("alice", "atlanta.com", "secret");
    let prepare_responses = |t: usize, iters: u64| {
        let rq = request(t);
        let ch = server.challenge(&rq, NOW, false);
        let ch: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
        let mut client = DigestClient::new("alice", "secret");
        let mut v = vec![client.respond(&ch, &CR, "cn").unwrap()];
        for _ in 1..iters {
            v.push(client.authorize(&CR, "cn").unwrap());
        }
        (rq, v)
    };
    let mut g = c.benchmark_group("shared_verify");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for threads in [1, 2] {
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, prepare_responses, |(rq, v), i| {
                    let o = server.verify(v[i as usize].as_bytes(), rq, &store, NOW);
                    debug_assert!(matches!(o, Outcome::Ok(_)));
                    black_box(o);
                })
            });
        });
    }
    g.finish();

    // The replay check alone: each thread presents increasing nc on its own nonce; the
    // nonces are issued one after the other, as a busy server's are.
    let table = ReplayTable::new(65_536, false);
    let mut g = c.benchmark_group("shared_replay_check");
    for threads in [1, 2] {
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                let nids: Vec<u32> = (0..threads).map(|_| table.issue()).collect();
                contended(
                    threads,
                    iters,
                    |t, _| nids[t],
                    |nid, i| {
                        black_box(table.check(*nid, Some(i as u32 + 1)));
                    },
                )
            });
        });
    }
    g.finish();

    // Ban check: 10 000 tracked sources; each thread asks about its own 1 024 of them.
    let bans = FailureTracker::new(BanConfig::default());
    for i in 0..10_000u32 {
        bans.record_failure(IpAddr::from(i.to_be_bytes()), None, Duration::from_secs(1));
    }
    let global = Mutex::new(FailureTracker::new(BanConfig::default()));
    for i in 0..10_000u32 {
        global.lock().unwrap().record_failure(
            IpAddr::from(i.to_be_bytes()),
            None,
            Duration::from_secs(1),
        );
    }
    let probes = |t: usize, _| -> Vec<IpAddr> {
        (0..1024u32)
            .map(|i| IpAddr::from((i * 7 + t as u32 * 5000).to_be_bytes()))
            .collect()
    };
    let now = Duration::from_secs(2);
    let mut g = c.benchmark_group("shared_ban_check");
    for threads in [1, 2] {
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, probes, |p, i| {
                    black_box(bans.is_banned(p[i as usize & 1023], now));
                })
            });
        });
        g.bench_function(BenchmarkId::new("global_mutex", threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, probes, |p, i| {
                    black_box(global.lock().unwrap().is_banned(p[i as usize & 1023], now));
                })
            });
        });
    }
    g.finish();

    // Cache hit: 10 000 cached users; each thread looks up its own 1 024.
    let cache = AuthCache::new(65_536, Duration::from_secs(1800));
    let h = HashKind::Md5.hex(&[b"x"]);
    let users: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
    for u in &users {
        cache.insert(u, "atlanta.com", None, HashKind::Md5, h, Duration::ZERO);
    }
    let global = Mutex::new(AuthCache::new(65_536, Duration::from_secs(1800)));
    for u in &users {
        global
            .lock()
            .unwrap()
            .insert(u, "atlanta.com", None, HashKind::Md5, h, Duration::ZERO);
    }
    let mine = |t: usize, _| -> Vec<&str> {
        (0..1024)
            .map(|i| users[i * 3 + t * 5000].as_str())
            .collect()
    };
    let now = Duration::from_secs(1);
    let mut g = c.benchmark_group("shared_cache_hit");
    for threads in [1, 2] {
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, mine, |u, i| {
                    let u = u[i as usize & 1023];
                    black_box(cache.get(u, "atlanta.com", None, HashKind::Md5, now));
                })
            });
        });
        g.bench_function(BenchmarkId::new("global_mutex", threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, mine, |u, i| {
                    let u = u[i as usize & 1023];
                    let c = global.lock().unwrap();
                    black_box(c.get(u, "atlanta.com", None, HashKind::Md5, now));
                })
            });
        });
    }
    g.finish();
}

/// The benchmark group (a module so the generated function may go undocumented).
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(shared, super::benches);
}
criterion_main!(group::shared);
