//! Messages as a proxy in the middle of a call sees them: Alice (caller, behind proxy p1)
//! calls Bob (callee, behind proxy p3) through us.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::time::Duration;

use sip_parser::Message;

pub const ALICE_CONTACT: &str = "sip:alice@pc33.atlanta.example.com";
pub const BOB_CONTACT: &str = "sip:bob@192.0.2.4";
/// The caller-side proxy's Record-Route.
pub const P1: &str = "<sip:p1.atlanta.example.com;lr>";
/// The callee-side proxy's Record-Route.
pub const P3: &str = "<sip:p3.biloxi.example.com;lr>";

/// A wall-clock instant `secs` after a fixed epoch (2023-11-14).
pub fn t(secs: f64) -> Duration {
    Duration::from_secs(1_700_000_000) + Duration::from_secs_f64(secs)
}

pub fn parse(s: String) -> Message {
    Message::parse(s.into_bytes().into()).unwrap_or_else(|e| panic!("test message: {e}"))
}

fn rr_lines(out: &mut String, name: &str, entries: &[&str]) {
    if !entries.is_empty() {
        let _ = write!(out, "{name}: {}\r\n", entries.join(", "));
    }
}

/// Alice's initial INVITE as it reaches us (after p1 record-routed it).
pub fn invite(
    call_id: &str,
    from_tag: &str,
    cseq: u32,
    caller_rr: &[&str],
    max_forwards: u8,
) -> Message {
    let mut s = format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP p1.atlanta.example.com;branch=z9hG4bK-{call_id}-{cseq}\r\n\
         Max-Forwards: {max_forwards}\r\n"
    );
    rr_lines(&mut s, "Record-Route", caller_rr);
    let _ = write!(
        s,
        "From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
         Contact: <{ALICE_CONTACT}>\r\nContent-Length: 0\r\n\r\n"
    );
    parse(s)
}

/// A response. `from_tag`/`to_tag` are as in the request it answers.
#[allow(clippy::too_many_arguments)]
pub fn response(
    status: u16,
    call_id: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    cseq: u32,
    method: &str,
    rr: &[&str],
    contact: Option<&str>,
) -> Message {
    let mut s = format!(
        "SIP/2.0 {status} Whatever\r\n\
         Via: SIP/2.0/UDP us.example.com;branch=z9hG4bK-us\r\n"
    );
    rr_lines(&mut s, "Record-Route", rr);
    let to = match to_tag {
        Some(t) => format!("<sip:bob@biloxi.example.com>;tag={t}"),
        None => "<sip:bob@biloxi.example.com>".into(),
    };
    let _ = write!(
        s,
        "From: <sip:alice@atlanta.example.com>;tag={from_tag}\r\nTo: {to}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
    );
    if let Some(c) = contact {
        let _ = write!(s, "Contact: <{c}>\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    parse(s)
}

/// A request within the dialog (or a CANCEL when `to_tag` is `None`).
#[allow(clippy::too_many_arguments)]
pub fn request(
    method: &str,
    call_id: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    cseq: u32,
    routes: &[&str],
    contact: Option<&str>,
    max_forwards: u8,
) -> Message {
    let mut s = format!(
        "{method} sip:somebody@192.0.2.99 SIP/2.0\r\n\
         Via: SIP/2.0/UDP x.example.com;branch=z9hG4bK-{method}-{cseq}\r\n\
         Max-Forwards: {max_forwards}\r\n"
    );
    rr_lines(&mut s, "Route", routes);
    let to = match to_tag {
        Some(t) => format!("<sip:x@example.com>;tag={t}"),
        None => "<sip:bob@biloxi.example.com>".into(),
    };
    let _ = write!(
        s,
        "From: <sip:y@example.com>;tag={from_tag}\r\nTo: {to}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
    );
    if let Some(c) = contact {
        let _ = write!(s, "Contact: <{c}>\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    parse(s)
}

/// Our own Record-Route entry with the dialog cookie.
pub fn ours(cookie: &dyn std::fmt::Display) -> String {
    format!("<sip:us.example.com;lr;{cookie}>")
}

/// Deterministic hash seeds for the tests.
pub const SEEDS: [u64; 4] = [1, 2, 3, 4];
