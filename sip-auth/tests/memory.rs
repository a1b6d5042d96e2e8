//! The memory figures of the README's "Memory" table, measured: a counting global allocator
//! (`stats_alloc`) gives the heap bytes each bounded structure holds once built, then once
//! filled to capacity and churned with four times as many distinct keys. The test checks
//!
//! - that those bytes equal the structure's own `memory_bytes()` exactly, before and after
//!   the churn (nothing grows; for the auth cache, plus the user and realm strings it holds);
//! - that `memory_bytes() / capacity` is within 1 % of the per-entry figure the crate
//!   exports (the rest is the fixed per-shard headers);
//! - that the README states those per-entry figures (on 64-bit targets).
//!
//! The file holds this one test, run without libtest's harness (`harness = false` in
//! Cargo.toml): no other test and no harness thread allocates while it measures.

use std::alloc::System;
use std::net::IpAddr;
use std::time::Duration;

use sip_auth::{
    AuthCache, BanConfig, FailureTracker, HashKind, RateConfig, RateLimiter, ReplayTable,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Capacity of every structure measured (the defaults of `BanConfig`, `RateConfig` and the
/// replay table).
const CAP: usize = 65_536;
const SEEDS: [u64; 4] = [11, 22, 33, 44];
/// Tolerance between the measured bytes per entry and the documented figure: 1 part in 100.
const TOLERANCE: usize = 100;

/// Heap bytes allocated and not freed since `r` started.
fn held(r: &Region<'_, System>) -> usize {
    let c = r.change();
    c.bytes_allocated - c.bytes_deallocated
}

fn ip(i: usize) -> IpAddr {
    IpAddr::from((i as u32).to_be_bytes())
}

fn ms(i: usize) -> Duration {
    Duration::from_millis(i as u64)
}

/// Check the per-entry figure and print it.
fn per_entry(what: &str, memory_bytes: usize, documented: usize) {
    let hundredths = memory_bytes * 100 / CAP;
    println!(
        "{what}: {}.{:02} bytes per entry measured, {documented} documented",
        hundredths / 100,
        hundredths % 100
    );
    assert!(
        memory_bytes.abs_diff(documented * CAP) * TOLERANCE <= documented * CAP,
        "{what}: {memory_bytes} bytes for {CAP} entries, documented {documented} per entry"
    );
}

fn main() {
    memory_figures();
    println!("test memory_figures ... ok");
}

fn memory_figures() {
    let readme = include_str!("../README.md");

    // Failure tracker: threshold 5, so 6 failure times per source.
    let r = Region::new(GLOBAL);
    let t = FailureTracker::with_seeds(BanConfig::default(), SEEDS);
    let built = held(&r);
    assert_eq!(built, t.memory_bytes());
    for i in 0..4 * CAP {
        t.record_failure(ip(i), None, ms(i));
    }
    assert_eq!(t.tracked(), CAP);
    assert_eq!((held(&r), t.memory_bytes()), (built, built));
    per_entry("failure tracker", built, t.bytes_per_ip());
    drop(t);

    // Rate limiter.
    let r = Region::new(GLOBAL);
    let l = RateLimiter::with_seeds(RateConfig::default(), SEEDS);
    let built = held(&r);
    assert_eq!(built, l.memory_bytes());
    for i in 0..4 * CAP {
        l.admit(ip(i), ms(i));
    }
    assert_eq!(l.tracked(), CAP);
    assert_eq!((held(&r), l.memory_bytes()), (built, built));
    per_entry("rate limiter", built, RateLimiter::BYTES_PER_SOURCE);
    drop(l);

    // Auth cache: each entry also holds its user (8 bytes here) and realm (11) strings.
    let users: Vec<String> = (0..4 * CAP).map(|i| format!("u{i:07}")).collect();
    let r = Region::new(GLOBAL);
    let c = AuthCache::with_seeds(CAP, Duration::from_secs(1800), SEEDS);
    let built = held(&r);
    assert_eq!(built, c.memory_bytes());
    let h = HashKind::Md5.hex(&[b"x"]);
    for (i, u) in users.iter().enumerate() {
        c.insert(u, "atlanta.com", Some(ip(i)), HashKind::Md5, h, ms(i));
    }
    assert_eq!(c.len(), CAP);
    assert_eq!(c.memory_bytes(), built);
    assert_eq!(held(&r), built + CAP * (8 + 11));
    per_entry("auth cache", built, AuthCache::BYTES_PER_ENTRY);
    drop(c);

    // Replay table.
    let r = Region::new(GLOBAL);
    let t = ReplayTable::new(CAP, false);
    let built = held(&r);
    assert_eq!(built, t.memory_bytes());
    for _ in 0..4 * CAP {
        let nid = t.issue();
        t.check(nid, Some(1));
    }
    assert_eq!(held(&r), built);
    per_entry("replay table", built, ReplayTable::BYTES_PER_NONCE);
    drop(t);
    let r = Region::new(GLOBAL);
    let big = ReplayTable::new(1 << 20, false);
    assert_eq!(held(&r), 8 << 20, "1 Mi nonces take 8 MiB");
    drop(big);

    // What the README states, for 64-bit targets.
    if cfg!(target_pointer_width = "64") {
        let t = FailureTracker::with_seeds(BanConfig::default(), SEEDS);
        for (figure, text) in [
            (
                ReplayTable::BYTES_PER_NONCE,
                "**8 bytes per tracked nonce**",
            ),
            (t.bytes_per_ip(), "**128 bytes per tracked IP**"),
            (RateLimiter::BYTES_PER_SOURCE, "**80 bytes per tracked IP**"),
            (AuthCache::BYTES_PER_ENTRY, "**200 bytes per entry**"),
        ] {
            assert!(readme.contains(text), "README lacks {text}");
            assert!(
                text.contains(&format!("**{figure} bytes")),
                "{text}: {figure}"
            );
        }
    }
}
