//! Counters of everything the proxy did or refused, shared by every thread (relaxed atomics:
//! each is exact, a snapshot of several is not atomic). The metrics endpoint reads them.

use std::sync::atomic::{AtomicU64, Ordering};

/// One counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// The proxy's counters.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: Counter,)*
        }

        impl Stats {
            /// Every counter with its name.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.get()),)*]
            }
        }
    };
}

stats! {
    /// Datagrams / frames received.
    received,
    /// Messages sent.
    sent,
    /// Requests received.
    requests,
    /// Responses received.
    responses,
    /// Datagrams that did not parse (dropped).
    parse_errors,
    /// Messages that parsed but failed validation (400 for requests, dropped responses).
    invalid,
    /// Requests refused because the transaction table was full (503).
    table_full,
    /// Sends refused by the relay_to allow-list.
    relay_denied,
    /// Responses matching nothing and not ours to relay (dropped).
    stray_dropped,
    /// Final responses forwarded upstream.
    finals_forwarded,
    /// Requests forwarded to an upstream set.
    dispatched,
    /// Failovers to another upstream destination.
    failovers,
    /// Requests answered 404 / 480 / 403 / 481 by routing.
    not_routed,
    /// Datagrams dropped from banned sources.
    banned_drops,
    /// Datagrams dropped as floods.
    flood_drops,
    /// Successful digest authentications.
    auth_ok,
    /// Stale nonces (re-challenged, not counted against the source).
    auth_stale,
    /// Failed authentications.
    auth_failed,
    /// Sources banned.
    bans,
    /// REGISTERs answered by the registrar.
    registrations,
    /// Dialogs tracked.
    dialogs_created,
    /// Dialogs ended by their maximum duration (BYE sent to both sides).
    dialogs_expired,
    /// Storage operations that failed (registrations or dialog changes not written, reads
    /// that failed); each is logged, at most once per 10 s with the count in between.
    store_failures,
}
