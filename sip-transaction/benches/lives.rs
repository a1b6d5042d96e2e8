//! A fixed workload for `valgrind --tool=callgrind`, which counts instructions repeatably on
//! a loaded machine: `BATCHES` batches of 1024 transaction lives of one scenario, the same
//! lives (and the same measured parts) as the criterion benchmark `transactions` (see
//! `common/mod.rs`). Only what runs inside [`measured`] counts:
//!
//! ```text
//! cargo bench -p sip-transaction --bench lives --no-run
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/deps/lives-HASH SCENARIO BATCHES
//! ```
//!
//! `SCENARIO` is one of `server_non_invite`, `server_invite`, `client_non_invite`,
//! `client_invite`, `proxy_invite`. Instructions per life: the difference between two runs
//! (e.g. 20 and 10 batches, which cancels the first batch's allocations) divided by the
//! difference in lives (10 · 1024).
//!
//! Run without valgrind, it prints the wall-clock time of the measured parts per life: the
//! median over batches and the fastest batch (each batch is about a millisecond, so on a
//! loaded machine the fastest is the one no other process interrupted).

#![allow(missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{BATCH, Client, Meter, Proxy, ServerInvite, ServerNonInvite};

/// Everything measured runs inside [`measured`]; its wall-clock time is added up per batch.
#[derive(Default)]
struct Callgrind {
    batch: Duration,
}

/// The function callgrind's `--toggle-collect='*measured*'` counts in.
#[inline(never)]
fn measured<R>(f: impl FnOnce() -> R) -> R {
    f()
}

impl Meter for Callgrind {
    fn measure<R>(&mut self, _step: usize, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = measured(f);
        self.batch += start.elapsed();
        r
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let scenario = args.next().unwrap_or_else(|| "server_non_invite".into());
    let batches: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut m = Callgrind::default();
    let mut times = Vec::with_capacity(batches);
    let mut run = |life: &mut dyn FnMut(&mut Callgrind)| {
        for _ in 0..batches {
            m.batch = Duration::ZERO;
            life(&mut m);
            times.push(m.batch);
        }
    };
    match scenario.as_str() {
        "server_non_invite" => {
            let mut s = ServerNonInvite::new();
            run(&mut |m| s.lives(BATCH, m));
        }
        "server_invite" => {
            let mut s = ServerInvite::new();
            run(&mut |m| s.lives(BATCH, m));
        }
        "client_non_invite" | "client_invite" => {
            let method = if scenario == "client_invite" {
                "INVITE"
            } else {
                "OPTIONS"
            };
            let mut s = Client::new(method);
            run(&mut |m| s.lives(BATCH, m));
        }
        "proxy_invite" => {
            let mut s = Proxy::new();
            run(&mut |m| s.lives(BATCH, m));
        }
        other => panic!("unknown scenario {other}"),
    }
    times.sort_unstable();
    let per_life = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(BATCH as u32);
    if let (Some(fastest), Some(median)) = (times.first(), times.get(times.len() / 2)) {
        eprintln!(
            "{scenario}: {:.0} ns per life (median of {} batches), fastest batch {:.0} ns",
            per_life(*median),
            times.len(),
            per_life(*fastest)
        );
    }
}
