//! Heap bytes per binding in the memory store, at 10 000 and 1 000 000 typical bindings
//! (40-byte Contact, 30-byte Call-ID, 25-byte User-Agent, no Path; one per AOR), counted by
//! a counting global allocator, and the process's RSS growth beside it.
//!
//! `cargo bench -p sip-location --bench memory` (kept out of the criterion bench so that the
//! counting allocator never slows a timed run; `tests/memory.rs` asserts the 400-byte target).
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)] // byte counts as ratios

#[path = "../tests/support/typical.rs"]
mod typical;

use std::alloc::System;

use sip_location::LocationStore;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    println!("bindings\theap_bytes_per_binding\tallocations_per_binding\trss_growth_MB");
    for n in [10_000usize, 1_000_000] {
        let rss = typical::rss();
        let region = Region::new(GLOBAL);
        let store = typical::store(n);
        typical::fill(&store, n);
        let s = region.change();
        assert_eq!(store.counts().unwrap().bindings, n);
        let held = s.bytes_allocated as f64 - s.bytes_deallocated as f64;
        let blocks = s.allocations as f64 - s.deallocations as f64;
        let grown = match (rss, typical::rss()) {
            (Some(a), Some(b)) => format!("{:.1}", b.saturating_sub(a) as f64 / 1e6),
            _ => "-".into(),
        };
        println!(
            "{n}\t{:.1}\t{:.2}\t{grown}",
            held / n as f64,
            blocks / n as f64
        );
        drop(store);
    }
}
