//! A minimal UDP registrar: `sip-location`'s registrar and memory store behind one
//! `std::net::UdpSocket`, the wall clock, and a timer that expires bindings.
//!
//! ```text
//! cargo run -p sip-location --example registrar -- 127.0.0.1:5060 [seconds]
//! ```
//!
//! It answers REGISTER for any domain (no authentication: a loopback toy, not a server),
//! resends its last answer to a retransmitted REGISTER (what a transaction layer does), and
//! prints one line per REGISTER. `tests/sipp_registrar.rs` runs SIPp against [`serve`].

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip_location::registrar;
use sip_location::{LocationStore, MemoryStore, Policy, Source};
use sip_parser::bytes::Bytes;
use sip_parser::{Message, Transport};

/// Wall-clock time since the Unix epoch: the store's time base.
fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Serves REGISTERs on `sock` until `stop()` says so; returns how many were answered.
pub(crate) fn serve(
    sock: &UdpSocket,
    store: &MemoryStore,
    policy: &Policy,
    stop: &dyn Fn() -> bool,
    log: bool,
) -> usize {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let local = sock.local_addr().ok();
    let mut buf = vec![0u8; 65_535];
    // Last answer per Via branch, to resend on a retransmission (bounded).
    let mut answered: HashMap<Vec<u8>, Bytes> = HashMap::new();
    let mut handled = 0;
    let mut last_expiry = Instant::now();
    while !stop() {
        if last_expiry.elapsed() >= Duration::from_secs(1) {
            last_expiry = Instant::now();
            while store.expire(now(), 1000).map_or(0, |e| e.len()) == 1000 {}
        }
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(msg) = Message::parse(Bytes::copy_from_slice(&buf[..n])) else {
            continue; // not SIP: drop
        };
        if msg.method() != Some("REGISTER") {
            continue;
        }
        let branch = match msg.top_via() {
            Ok(Some(v)) => v.branch.unwrap_or_default().as_bytes().to_vec(),
            _ => continue,
        };
        if let Some(resp) = answered.get(&branch) {
            let _ = sock.send_to(resp, peer);
            continue;
        }
        let source = Source {
            addr: peer,
            transport: Transport::Udp,
            local,
            flow: None,
        };
        let r = registrar::register(store, &msg, &source, now(), policy);
        let Some(reply) = r.reply else {
            continue; // not our domain: a proxy would forward it
        };
        if log {
            println!(
                "REGISTER {} from {peer}: {} ({} bindings){}",
                msg.call_id().unwrap_or("-"),
                reply.status,
                reply.bindings.len(),
                r.error.map(|e| format!(", {e}")).unwrap_or_default()
            );
        }
        let _ = sock.send_to(&reply.response, peer);
        if answered.len() >= 1024 {
            answered.clear();
        }
        answered.insert(branch, reply.response);
        handled += 1;
    }
    handled
}

#[allow(dead_code)] // also compiled into the SIPp test, which calls `serve` only
fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5060".into());
    let seconds: Option<u64> = args.next().and_then(|s| s.parse().ok());
    let sock = UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    println!("registrar on udp:{}", sock.local_addr().expect("bound"));
    let store = MemoryStore::default();
    let start = Instant::now();
    let stop = move || seconds.is_some_and(|s| start.elapsed() >= Duration::from_secs(s));
    let n = serve(&sock, &store, &Policy::default(), &stop, true);
    println!("{n} REGISTERs answered");
}
