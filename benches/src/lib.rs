//! Benchmark harness that holds the workspace's `sip-parser` against the published Rust SIP
//! parsers (`rsip`, `rsipstack`'s `sip` module, `sipx-sip`, `ezk-sip-types`) and a `memchr`
//! line-count floor.
//!
//! Every implementation exposes the same two workloads, so the criterion bench
//! (`benches/parsers.rs`), the allocation counter (`src/bin/allocs.rs`) and the report generator
//! (`src/bin/report.rs`) all call exactly the same code:
//!
//! - `parse(&Bytes)`: bytes → that crate's message type, as its API intends;
//! - `proxy_fields(&Bytes)`: parse, then read what a proxy reads on every message (method and
//!   Request-URI or status, top Via branch, Call-ID, CSeq seq + method, From tag, To tag,
//!   Max-Forwards, first Route URI, Content-Length) through that crate's typed accessors.
//!
//! Each field read goes through a [`sink::Sink`]: the benchmarks use [`sink::BlackBox`], which
//! hands every value to [`core::hint::black_box`], and the tests use [`sink::Record`] to check
//! that every implementation reads the right values.

pub mod corpus;
pub mod impls;
#[cfg(feature = "ours")]
pub mod ours;
pub mod peers;
pub mod sink;

/// What an implementation's `proxy_fields` answers: `Ok` when every field was read, or the name
/// of the step that failed (`"parse"`, `"via"`, `"cseq"`, …). Static strings keep the error path
/// free of allocations.
pub type Outcome = Result<(), &'static str>;
