//! A deterministic simulation of the whole proxy (model: FoundationDB's and TigerBeetle's
//! simulation testing; the layer-level harness in `sip-transaction/tests/sim`).
//!
//! The proxy node is the real [`sip_proxy::proxy::Proxy`], driven through its sans-IO entry
//! points (`on_datagram`, `on_timer`, `next_timeout`). Around it, simulated user agents
//! ([`ua::Ua`], each on its own `sip_transaction::TransactionLayer` with a scripted
//! transaction user) register, call, answer, cancel and hang up, over a simulated network
//! ([`world::World`]) with loss, duplication, reordering and delay, in virtual time. Every
//! address is a literal `127.0.0.x`; the resolver is a table; nothing touches a socket, a
//! thread or the clock, and one seed drives every random choice, so a seed replays exactly.
//!
//! * [`world`]: the network, the event loop, the datagram trace and the proxy node;
//! * [`ua`]: simulated user agents (callers, callees, upstream servers, registering phones);
//! * [`check`]: the invariants checked after every run;
//! * [`known`]: known bugs of the proxy, recognised in a trace (tolerated unless
//!   `SIM_STRICT=1`);
//! * [`worlds`]: random worlds built from a seed;
//! * [`run_seeds`]: many seeds, a failing one printed with its trace (`SIM_SEED=N` replays it).
//!
//! A scenario: build a `Config` (start from [`worlds::base_config`]), make a
//! [`World`] with a seed and [`Faults`], add [`Ua`]s with scripted [`Action`]s at virtual
//! times (`Ua::at`) and a [`Callee`] policy, schedule outages (`World::at` with
//! `world::Change`), `run_until` the end of the script, then
//! `check::settle_and_check(&mut w, limit).assert_ok(&w)` and assert on what the UAs
//! recorded (`Ua::calls`, `incoming`, `registrations`, `requests`, `strays`, `inbox`), on
//! the trace (`World::datagrams`), the proxy's log lines (`World::logged_at`) and its
//! counters (`w.proxy.stats`).
//!
//! Replaying: `SIM_SEED=N SIM_TRACE=1 cargo test -p sip-proxy --test sim_proxy many_seeds --
//! --nocapture` prints the run's datagram trace; a failing run also writes the trace with
//! every payload to `$TMPDIR/sim-proxy-TEST-seed-N.trace`. `SIM_SEEDS=A..B` runs other
//! seeds, `SIM_STRICT=1` stops tolerating the known bugs of [`known`].

#![allow(
    dead_code,
    unreachable_pub,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::missing_panics_doc,
    clippy::struct_excessive_bools,
    clippy::too_many_lines
)]

pub mod check;
pub mod known;
pub mod ua;
pub mod world;
pub mod worlds;

use std::fmt::Write as _;
use std::time::Duration;

pub use check::Report;
pub use ua::{Action, Answer, CallPlan, Callee, Expect, ReqPlan, Ua};
pub use world::{Faults, World};

/// xorshift64*: small, seeded, good enough for fault injection and behaviour choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
    /// A duration in `lo..=hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
    /// A uniform float in `[lo, hi)`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// A seed for a sub-generator (so that adding a node does not shift every other choice).
    pub fn fork(&mut self) -> u64 {
        self.next_u64()
    }
    /// 32 bytes (transaction-layer keys).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        b
    }
}

/// Which seeds to run: `SIM_SEED=N` runs only `N` (and prints its whole trace when
/// `SIM_TRACE=1`); `SIM_SEEDS=A..B` or `SIM_SEEDS=N` (the first N) overrides `default`.
pub fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    if let Some(s) = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return vec![s];
    }
    match std::env::var("SIM_SEEDS") {
        Ok(s) => match s.split_once("..") {
            Some((a, b)) => {
                (a.trim().parse().unwrap_or(0)..b.trim().parse().unwrap_or(0)).collect()
            }
            None => (0..s.trim().parse().unwrap_or(default.end - default.start)).collect(),
        },
        Err(_) => default.collect(),
    }
}

/// Whether the whole trace of every run is to be printed (`SIM_TRACE=1`).
pub fn tracing_on() -> bool {
    std::env::var("SIM_TRACE").is_ok_and(|v| v != "0")
}

/// Runs `run` for every seed. Each run builds its world, drives it and checks it; a panic
/// inside (the proxy's or an assertion's) counts as a failure too. Every failure is
/// collected; at the end the first one is printed with the tail of its trace (the whole
/// trace is written to a file), and the test fails naming every failing seed and the
/// command that replays one.
pub fn run_seeds(
    test: &str,
    seeds: &[u64],
    build: fn(u64) -> World,
    drive: fn(&mut World) -> Report,
) {
    run_seeds_with(test, seeds, build, drive, known::tolerated());
}

/// [`run_seeds`], tolerating the known bugs or not.
pub fn run_seeds_with(
    test: &str,
    seeds: &[u64],
    build: fn(u64) -> World,
    drive: fn(&mut World) -> Report,
    tolerate_known: bool,
) {
    let mut failures: Vec<(u64, String, String)> = Vec::new();
    let mut known: std::collections::BTreeMap<&'static str, Vec<u64>> =
        std::collections::BTreeMap::new();
    let mut virtual_time = Duration::ZERO;
    let mut datagrams = 0usize;
    let mut calls = 0usize;
    for &seed in seeds {
        let mut w = build(seed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(&mut w)));
        virtual_time += w.now;
        datagrams += w.sent_datagrams();
        calls += w.uas.iter().map(|u| u.calls.len()).sum::<usize>();
        let problems: Vec<String> = match result {
            Ok(mut report) => {
                if tolerate_known {
                    known::classify(&w, &mut report);
                }
                for (bug, _) in &report.known {
                    let seeds = known.entry(bug).or_default();
                    if seeds.last() != Some(&seed) {
                        seeds.push(seed);
                    }
                }
                report.problems.iter().map(ToString::to_string).collect()
            }
            Err(p) => vec![format!(
                "panicked at {:.3}s: {}",
                w.now.as_secs_f64(),
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
            )],
        };
        if tracing_on() {
            eprintln!("{}", w.dump(false));
        }
        if !problems.is_empty() {
            let path = std::env::temp_dir().join(format!("sim-proxy-{test}-seed-{seed}.trace"));
            let _ = std::fs::write(&path, w.dump(true));
            let mut text = String::new();
            for p in problems.iter().take(20) {
                let _ = writeln!(text, "  - {p}");
            }
            if problems.len() > 20 {
                let _ = writeln!(text, "  … {} more", problems.len() - 20);
            }
            failures.push((
                seed,
                text,
                format!(
                    "{}\n(whole trace with payloads: {})",
                    w.tail(150),
                    path.display()
                ),
            ));
        }
    }
    eprintln!(
        "{test}: {} seeds, {calls} calls, {datagrams} datagrams, {:.0} s of virtual time",
        seeds.len(),
        virtual_time.as_secs_f64()
    );
    for (bug, seeds) in &known {
        eprintln!(
            "{test}: known bug {bug} hit in {} seeds: {seeds:?} (SIM_STRICT=1 fails on them)",
            seeds.len()
        );
    }
    if let Some((seed, problems, trace)) = failures.first() {
        let list: Vec<String> = failures.iter().map(|f| f.0.to_string()).collect();
        panic!(
            "{} of {} seeds failed: {}\nfirst failure, seed {seed}:\n{problems}\nlast datagrams of seed {seed}:\n{trace}\nreplay: SIM_SEED={seed} SIM_TRACE=1 cargo test -p sip-proxy --test sim_proxy {test} -- --nocapture",
            failures.len(),
            seeds.len(),
            list.join(", ")
        );
    }
}
