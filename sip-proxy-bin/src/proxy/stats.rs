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

/// The request methods counted one by one (RFC 3261 and the extensions a proxy meets);
/// every other method is counted as `other`, so that no network input adds a series.
pub const METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// Requests by method: [`METHODS`], then `other`.
#[derive(Debug, Default)]
pub struct ByMethod([Counter; METHODS.len() + 1]);

impl ByMethod {
    /// Counts one request (methods are case-sensitive, RFC 3261 §7.1).
    pub fn inc(&self, method: Option<&str>) {
        let i = method
            .and_then(|m| METHODS.iter().position(|&k| k == m))
            .unwrap_or(METHODS.len());
        self.0[i].inc();
    }
    /// Every method (and `other`) with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        METHODS
            .iter()
            .copied()
            .chain(["other"])
            .zip(self.0.iter().map(Counter::get))
    }
}

/// Responses by status class, `1xx` … `6xx`.
#[derive(Debug, Default)]
pub struct ByClass([Counter; 6]);

impl ByClass {
    const NAMES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

    /// Counts one response with `status` (none outside 100..=699: the parser refuses them).
    pub fn inc(&self, status: Option<u16>) {
        if let Some(c) = status.and_then(|s| self.0.get(usize::from(s / 100).wrapping_sub(1))) {
            c.inc();
        }
    }
    /// Counts a response about to be sent, from its status line (`SIP/2.0 404 …`); a request
    /// is not counted.
    pub fn inc_wire(&self, payload: &[u8]) {
        if let (Some(b"SIP/2.0 "), Some(d)) = (payload.get(..8), payload.get(8)) {
            if d.is_ascii_digit() {
                self.inc(Some(u16::from(d - b'0') * 100));
            }
        }
    }
    /// Every class with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Self::NAMES
            .iter()
            .copied()
            .zip(self.0.iter().map(Counter::get))
    }
}

macro_rules! stats {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// The proxy's counters.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[doc = $doc])* pub $name: Counter,)*
            /// Requests received, by method (their sum is `requests`).
            pub methods: ByMethod,
            /// Responses received, by class (their sum is `responses`).
            pub classes: ByClass,
            /// Responses sent (forwarded or our own), by class.
            pub sent_classes: ByClass,
        }

        impl Stats {
            /// Every counter with its name.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.get()),)*]
            }

            /// Every counter's name and description (its doc comment), in
            /// [`snapshot`](Self::snapshot)'s order.
            pub const DESCRIPTIONS: &[(&str, &str)] =
                &[$((stringify!($name), concat!($($doc),*).trim_ascii()),)*];
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
    /// Writes to the persistent store (location, dialogs) that failed: logged, and what was
    /// not written stays in memory only.
    store_write_failures,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_counted_case_sensitively_with_other() {
        let m = ByMethod::default();
        m.inc(Some("INVITE"));
        m.inc(Some("INVITE"));
        m.inc(Some("UPDATE"));
        // RFC 3261 §7.1: "The method names are case-sensitive"; an unknown one is `other`.
        m.inc(Some("invite"));
        m.inc(Some("FOO"));
        m.inc(None);
        let got: Vec<_> = m.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(got, [("INVITE", 2), ("UPDATE", 1), ("other", 3)]);
        assert_eq!(m.iter().count(), METHODS.len() + 1);
    }

    #[test]
    fn classes_from_status_and_status_line() {
        let c = ByClass::default();
        for s in [100, 180, 200, 202, 302, 404, 407, 503, 603] {
            c.inc(Some(s));
        }
        c.inc(None);
        c.inc(Some(99));
        c.inc(Some(700));
        // RFC 3261 §7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase.
        c.inc_wire(b"SIP/2.0 486 Busy Here\r\n");
        c.inc_wire(b"INVITE sip:bob@example.com SIP/2.0\r\n");
        c.inc_wire(b"SIP/2.0 ");
        let got: Vec<_> = c.iter().collect();
        assert_eq!(
            got,
            [
                ("1xx", 2),
                ("2xx", 2),
                ("3xx", 1),
                ("4xx", 3),
                ("5xx", 1),
                ("6xx", 1)
            ]
        );
    }

    #[test]
    fn every_counter_has_its_description() {
        let s = Stats::default();
        s.store_write_failures.inc();
        let names: Vec<_> = s.snapshot().into_iter().map(|(n, _)| n).collect();
        let described: Vec<_> = Stats::DESCRIPTIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, described);
        let (_, help) = Stats::DESCRIPTIONS
            .iter()
            .find(|(n, _)| *n == "store_write_failures")
            .unwrap();
        assert!(help.starts_with("Writes to the persistent store"), "{help}");
        assert!(
            help.contains("what was not written"),
            "lines joined: {help}"
        );
        assert!(Stats::DESCRIPTIONS.iter().all(|(_, h)| !h.is_empty()));
    }
}
