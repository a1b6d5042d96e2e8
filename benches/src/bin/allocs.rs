//! Counts heap allocations per message for every implementation × message × workload, with a
//! counting global allocator (`stats_alloc`). Prints one tab-separated line per measurement:
//! `impl  message  workload  allocations  reallocations  bytes_allocated`.
//!
//! Kept apart from the timing (`report`) so that the counting allocator's atomic counters never
//! slow down a timed run. `report` runs this binary itself.

use std::alloc::System;
use std::io::Write as _;

use sip_benches::{corpus, impls};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let messages = corpus::load();
    let mut out = std::io::stdout().lock();
    for imp in impls::all() {
        for msg in &messages {
            // One untimed run first, so one-time lazy initialisation inside a crate is not
            // charged to the message.
            let _ = (imp.parse)(&msg.bytes);
            let _ = (imp.proxy_fields)(&msg.bytes);

            let region = Region::new(GLOBAL);
            let _ = (imp.parse)(&msg.bytes);
            let parse = region.change();

            let region = Region::new(GLOBAL);
            let _ = (imp.proxy_fields)(&msg.bytes);
            let fields = region.change();

            for (workload, s) in [("parse", parse), ("proxy_fields", fields)] {
                writeln!(
                    out,
                    "{}\t{}\t{workload}\t{}\t{}\t{}",
                    imp.name, msg.name, s.allocations, s.reallocations, s.bytes_allocated
                )
                .expect("stdout");
            }
        }
    }
}
