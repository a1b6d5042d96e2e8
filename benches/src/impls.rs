//! The table of implementations the bench, the allocation counter and the report iterate over.

use core::hint::black_box;

use bytes::Bytes;

use crate::{Outcome, peers};

/// One implementation under test.
#[derive(Debug, Clone, Copy)]
pub struct Impl {
    /// Name used in benchmark ids and in the report.
    pub name: &'static str,
    /// `parse` workload; `true` when the message parsed. The parsed message is dropped inside,
    /// so freeing it is part of the cost.
    pub parse: fn(&Bytes) -> bool,
    /// `proxy_fields` workload.
    pub proxy_fields: fn(&Bytes) -> Outcome,
    /// Whether this is a real parser (`false` for the memchr floor).
    pub is_parser: bool,
}

macro_rules! entry {
    ($name:literal, $is_parser:expr, $($module:ident)::+) => {
        Impl {
            name: $name,
            parse: |b| {
                let parsed = $($module)::+::parse(black_box(b));
                let ok = parsed.is_ok();
                let _ = black_box(parsed);
                ok
            },
            proxy_fields: |b| $($module)::+::proxy_fields(black_box(b)),
            is_parser: $is_parser,
        }
    };
}

/// Every implementation: the floor, `sip-parser` (feature `ours`, on by default) and the peers.
pub fn all() -> Vec<Impl> {
    vec![
        entry!("memchr-floor", false, peers::floor),
        #[cfg(feature = "ours")]
        entry!("sip-parser", true, crate::ours),
        entry!("rsip", true, peers::rsip),
        entry!("rsipstack", true, peers::rsipstack),
        entry!("sipx-sip", true, peers::sipx),
        entry!("ezk-sip-types", true, peers::ezk),
    ]
}

/// The published peers (not the floor, not ours).
pub const PEERS: &[&str] = &["rsip", "rsipstack", "sipx-sip", "ezk-sip-types"];

/// `(implementation, message, failing step)` for every corpus message an implementation fails
/// to read in `proxy_fields`. Every corpus message is valid RFC 3261; these are limitations of
/// the peers, kept here so that the test (`tests/fields.rs`) notices when one changes, and
/// printed in the report.
pub const KNOWN_REJECTIONS: &[(&str, &str, &str)] = &[
    // rsip 0.4's tokenizer does not accept header folding (RFC 3261 §7.3.1 continuation
    // lines); the same message unfolded parses.
    ("rsip", "invite_compact_folded", "parse"),
];
