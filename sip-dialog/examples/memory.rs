//! Heap bytes per tracked dialog: creates N confirmed dialogs (INVITE with one Record-Route
//! from the caller's side, 200 with the callee's proxy, ours and the caller's) and prints the
//! tracker's net heap growth per dialog, counted by a counting global allocator. The messages
//! are parsed before counting starts: only what the tracker keeps is counted.
//!
//! `cargo run --release -p sip-dialog --example memory`

use std::alloc::System;
use std::time::Duration;

use sip_dialog::{CreateOptions, Tracker, TrackerConfig};
use sip_parser::Message;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn parse(s: String) -> Message {
    Message::parse(s.into_bytes().into()).expect("message")
}

fn main() {
    let now = Duration::from_secs(1_700_000_000);
    for n in [10_000usize, 100_000] {
        let msgs: Vec<(Message, Message)> = (0..n)
            .map(|i| {
                let d = |to_tag: &str, cseq: &str| {
                    format!(
                        "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl{i}\r\n\
                         To: <sip:bob@biloxi.example.com>{to_tag}\r\n\
                         Call-ID: {i:08}-3848276298220188511@atlanta.example.com\r\nCSeq: {cseq}\r\n"
                    )
                };
                (
                    parse(format!(
                        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\n\
                         Max-Forwards: 69\r\nRecord-Route: <sip:p1.atlanta.example.com;lr>\r\n{}\
                         Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n\r\n",
                        d("", "1 INVITE")
                    )),
                    parse(format!(
                        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\n\
                         Record-Route: <sip:p3.biloxi.example.com;lr>, <sip:us.example.com;lr>, <sip:p1.atlanta.example.com;lr>\r\n\
                         {}Contact: <sip:bob@192.0.2.4:5060;transport=udp>\r\n\r\n",
                        d(";tag=314159", "1 INVITE")
                    )),
                )
            })
            .collect();
        let region = Region::new(GLOBAL);
        let tracker = Tracker::new(
            TrackerConfig {
                max_dialogs: n,
                ..TrackerConfig::default()
            },
            [1, 2, 3, 4],
            now,
        );
        let opts = CreateOptions {
            caller_socket: b"udp:192.0.2.1:5060",
            callee_socket: b"udp:192.0.2.1:5060",
            ..CreateOptions::default()
        };
        for (invite, ok) in &msgs {
            tracker.create(invite, &opts, now).expect("room");
            tracker.on_response(ok, now);
        }
        let s = region.change();
        let grown = usize::try_from(s.bytes_reallocated).unwrap_or(0);
        let net = (s.bytes_allocated + grown).saturating_sub(s.bytes_deallocated);
        println!(
            "{n} confirmed dialogs: {net} bytes of heap, {} bytes per dialog ({} allocations per dialog)",
            net / n,
            (s.allocations - s.deallocations) / n
        );
        assert_eq!(tracker.len(), n);
    }
}
