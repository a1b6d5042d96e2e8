//! Interop with a real SIP client: SIPp (Debian package `sip-tester`) sends REGISTER on
//! loopback, a minimal UDP responder parses it with sip-parser, challenges it with a 401
//! built by sip-auth under the default configuration (MD5 offered first: SIPp 3.6 reads only
//! the first challenge) and verifies the retried REGISTER (SIPp's `[authentication]`
//! keyword) straight from the parsed message, answering 200.
//!
//! The test fails, never skips, when `sipp` is missing: install it with
//! `apt-get install sip-tester` (scripts/test does it from scripts/apt-packages.txt).

#[path = "support/sipp.rs"]
mod support_sipp;

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip_auth::{
    Bindings, DigestServer, FailReason, MemoryStore, NonceSecrets, Outcome, Request, ServerConfig,
};
use sip_parser::Message;
use support_sipp::{require_sipp, sipp};

const SIPP_DEADLINE: Duration = Duration::from_secs(30);

/// Header values named `name` (case-insensitive), unfolded lines not needed for SIPp.
fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

fn response(req: &str, status: &str, extra: &[String]) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for v in headers(req, name) {
            let _ = write!(out, "{name}: {v}\r\n");
        }
    }
    for v in headers(req, "To") {
        let _ = write!(out, "To: {v};tag=sipauth1\r\n");
    }
    for e in extra {
        out.push_str(e);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the responder until `stop` says so or the deadline passes; returns the outcomes of
/// every verification.
fn responder(sock: &UdpSocket, stop: &Mutex<bool>) -> Vec<Outcome<'static>> {
    let mut cfg = ServerConfig::new("sip-auth.test");
    cfg.bindings = Bindings {
        source_ip: true,
        call_id: true,
        from_tag: false,
        request_uri: true,
    };
    let server = DigestServer::new(cfg, NonceSecrets::random().unwrap());
    let mut store = MemoryStore::new();
    store.add_password("alice", "sip-auth.test", "secret");
    let mut outcomes = Vec::new();
    let deadline = Instant::now() + SIPP_DEADLINE;
    let mut buf = vec![0u8; 65_535];
    while Instant::now() < deadline && !*stop.lock().unwrap() {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let (Ok(msg), Ok(parsed)) = (
            std::str::from_utf8(&buf[..n]),
            Message::parse_slice(&buf[..n]),
        ) else {
            continue;
        };
        if parsed.method() != Some("REGISTER") {
            continue;
        }
        let reply = match server.verify_message(&parsed, peer.ip(), &store, unix_now()) {
            Outcome::Failed(FailReason::NoCredentials) => {
                let req = Request::from_message(&parsed, peer.ip());
                let ch = server.challenge(&req, unix_now(), false);
                let extra: Vec<String> = ch
                    .iter()
                    .map(|c| format!("WWW-Authenticate: {c}"))
                    .collect();
                response(msg, "401 Unauthorized", &extra)
            }
            o => {
                let status = match &o {
                    Outcome::Ok(_) => "200 OK",
                    Outcome::Stale | Outcome::Failed(_) => "403 Forbidden",
                };
                outcomes.push(o.into_owned());
                response(msg, status, &[])
            }
        };
        let _ = sock.send_to(reply.as_bytes(), peer);
    }
    outcomes
}

#[test]
fn sipp_register_with_digest_is_verified() {
    require_sipp();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr: SocketAddr = sock.local_addr().unwrap();
    // A free local address for SIPp.
    let client = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let stop = Arc::new(Mutex::new(false));
    let stop2 = Arc::clone(&stop);
    let server = thread::spawn(move || responder(&sock, &stop2));

    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register_digest.xml");
    let ran = sipp(&scenario, addr, client);
    *stop.lock().unwrap() = true;
    let outcomes = server.join().unwrap();

    if let Err(e) = ran {
        panic!("{e}; outcomes {outcomes:?}");
    }
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    match &outcomes[0] {
        Outcome::Ok(ok) => assert_eq!(
            (ok.user.as_ref(), ok.realm.as_ref()),
            ("alice", "sip-auth.test")
        ),
        o => panic!("verifier refused SIPp's credentials: {o:?}"),
    }
}
