//! The memory target of issue 11: a typical binding (40-byte Contact, 30-byte Call-ID,
//! 25-byte User-Agent, no Path) costs at most 400 bytes of heap in the store, indexes
//! included, and 1 000 000 of them fit in less than 500 MB. Measured with a counting global
//! allocator (`stats_alloc`): the net bytes the store holds after `fill`, divided by the
//! bindings. One test in this binary, so nothing else allocates meanwhile.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)] // byte counts as ratios

#[path = "support/typical.rs"]
mod typical;

use std::alloc::System;

use sip_location::LocationStore;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes held at the end of a region (stats_alloc counts a realloc's growth in
/// `bytes_allocated` and its shrinking in `bytes_deallocated`).
fn net(s: &stats_alloc::Stats) -> i64 {
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

#[test]
fn a_typical_binding_costs_at_most_400_bytes() {
    for n in [10_000usize, 1_000_000] {
        let rss_before = typical::rss();
        let region = Region::new(GLOBAL);
        let store = typical::store(n);
        typical::fill(&store, n);
        let per = net(&region.change()) as f64 / n as f64;
        assert_eq!(store.counts().unwrap().bindings, n);
        println!("{n} bindings: {per:.1} heap bytes per binding");
        assert!(
            per <= 400.0,
            "{n} bindings: {per:.1} bytes per binding (target 400)"
        );
        if let (Some(a), Some(b)) = (rss_before, typical::rss()) {
            let grown = b.saturating_sub(a);
            println!("{n} bindings: RSS grew {} MB", grown / 1_000_000);
            assert!(grown < 500_000_000, "{n} bindings: RSS grew {grown} bytes");
        }
        drop(store);
    }
}
