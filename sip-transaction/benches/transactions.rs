//! Transactions per second through the state machines on one core (one thread).
//!
//! Each measured transaction runs its whole life: it is created, matched (a request
//! retransmission or a response), answered, and ended by its timers. The lives and what is
//! measured of them are in `common/mod.rs`, shared with the callgrind workload
//! (`benches/lives.rs`):
//!
//! * `server/non_invite`: OPTIONS received, received again (retransmission, absorbed),
//!   answered 200, Timer J.
//! * `server/invite`: INVITE received, retransmission absorbed, answered 486, ACK matched,
//!   Timer I.
//! * `client/non_invite`: OPTIONS sent (`send_request`, which frames the request the TU
//!   built), 200 received, Timer K.
//! * `client/invite`: INVITE sent, 180 and 486 received (the layer builds and sends the ACK),
//!   Timer D.
//! * `proxy/invite`: a server and a client transaction: INVITE received and forwarded with
//!   Record-Route (100 Trying upstream, our Via and a new branch downstream), the downstream
//!   180 and 200 forwarded upstream, Timers L and M.
//! * `server/non_invite_step/*` and `proxy/invite_step/*`: the same lives run one step at a
//!   time over a whole batch, each step timed alone (where the time goes).
//!
//! `cargo bench -p sip-transaction --bench transactions`

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use core::time::Duration;
use std::time::Instant;

use common::{BATCH, Client, Meter, Proxy, ServerInvite, ServerNonInvite};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Wall-clock time per step.
#[derive(Default)]
struct Clock([Duration; 4]);

impl Meter for Clock {
    fn measure<R>(&mut self, step: usize, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        self.0[step] += start.elapsed();
        r
    }
}

/// Runs `iters` transactions in batches of at most [`BATCH`]; `pick` says which steps
/// count (`None`: all).
fn batches(iters: u64, pick: Option<usize>, mut batch: impl FnMut(usize, &mut Clock)) -> Duration {
    let mut clock = Clock::default();
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(BATCH);
        batch(n, &mut clock);
        left -= n;
    }
    pick.map_or(clock.0.iter().sum(), |i| clock.0[i])
}

fn server(c: &mut Criterion) {
    let mut g = c.benchmark_group("server");
    g.throughput(Throughput::Elements(1));
    g.bench_function("non_invite", |b| {
        let mut s = ServerNonInvite::new();
        b.iter_custom(|iters| batches(iters, None, |n, m| s.lives(n, m)));
    });
    for (step, name) in ["create", "retransmission", "respond", "terminate"]
        .into_iter()
        .enumerate()
    {
        g.bench_function(format!("non_invite_step/{name}"), |b| {
            let mut s = ServerNonInvite::new();
            b.iter_custom(|iters| batches(iters, Some(step), |n, m| s.steps(n, m)));
        });
    }
    g.bench_function("invite", |b| {
        let mut s = ServerInvite::new();
        b.iter_custom(|iters| batches(iters, None, |n, m| s.lives(n, m)));
    });
    g.finish();
}

fn client(c: &mut Criterion) {
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    for (method, name) in [("OPTIONS", "non_invite"), ("INVITE", "invite")] {
        g.bench_function(name, |b| {
            let mut s = Client::new(method);
            b.iter_custom(|iters| batches(iters, None, |n, m| s.lives(n, m)));
        });
    }
    g.finish();
}

fn proxy(c: &mut Criterion) {
    let mut g = c.benchmark_group("proxy");
    g.throughput(Throughput::Elements(1));
    for (step, name) in [
        (None, "invite"),
        (Some(0), "invite_step/forward"),
        (Some(1), "invite_step/responses"),
        (Some(2), "invite_step/terminate"),
    ] {
        g.bench_function(name, |b| {
            let mut s = Proxy::new();
            b.iter_custom(|iters| batches(iters, step, |n, m| s.lives(n, m)));
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = server, client, proxy
}
criterion_main!(benches);
