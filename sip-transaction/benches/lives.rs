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
//! (e.g. 40 and 20 batches, which cancels the first batch's allocations) divided by the
//! difference in lives (20 · 1024). Without valgrind it just runs.

#![allow(missing_docs)]

mod common;

use common::{BATCH, Client, Meter, Proxy, ServerInvite, ServerNonInvite};

/// Everything measured runs inside [`measured`].
struct Callgrind;

/// The function callgrind's `--toggle-collect='*measured*'` counts in.
#[inline(never)]
fn measured<R>(f: impl FnOnce() -> R) -> R {
    f()
}

impl Meter for Callgrind {
    fn measure<R>(&mut self, _step: usize, f: impl FnOnce() -> R) -> R {
        measured(f)
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let scenario = args.next().unwrap_or_else(|| "server_non_invite".into());
    let batches: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let m = &mut Callgrind;
    match scenario.as_str() {
        "server_non_invite" => {
            let mut s = ServerNonInvite::new();
            (0..batches).for_each(|_| s.lives(BATCH, m));
        }
        "server_invite" => {
            let mut s = ServerInvite::new();
            (0..batches).for_each(|_| s.lives(BATCH, m));
        }
        "client_non_invite" | "client_invite" => {
            let method = if scenario == "client_invite" {
                "INVITE"
            } else {
                "OPTIONS"
            };
            let mut s = Client::new(method);
            (0..batches).for_each(|_| s.lives(BATCH, m));
        }
        "proxy_invite" => {
            let mut s = Proxy::new();
            (0..batches).for_each(|_| s.lives(BATCH, m));
        }
        other => panic!("unknown scenario {other}"),
    }
}
