//! The real `sip-proxy run` against SIPp and raw UDP on loopback, at its edges: digest
//! REGISTER (SIPp `[authentication]`), a source banned after more than `--ban-after` wrong
//! passwords in a row (no answer at all) and unbanned after `--ban-seconds`; 483 for
//! Max-Forwards 0 (before anything else, even for an OPTIONS to the proxy itself); 400
//! naming the problem for malformed requests, and a dropped, counted datagram for an
//! unparseable one.
//!
//! SIPp (Debian `sip-tester`) must be installed: a missing `sipp` fails these tests.

mod support;

use std::time::Duration;

use support::dir::TempDir;
use support::net::{LO1, LO2, free_addr};
use support::proxy::{DOMAIN, Proxy};
use support::sipp::{Sipp, register};
use support::ua::{Ua, reason};
use support::users::users_file;

const ALICE: (&str, &str) = ("alice", "alice-secret");

#[test]
fn wrong_passwords_ban_the_source_until_the_ban_time_is_over() {
    let dir = TempDir::new("ban");
    let users = users_file(&dir, &[ALICE]);
    let proxy = Proxy::start(
        &dir,
        &[free_addr(LO1)],
        &[
            "--users",
            users.to_str().unwrap(),
            "--ban-after",
            "5",
            "--ban-seconds",
            "2",
        ],
    );
    let p = proxy.addr();

    // The right password from 127.0.0.1: 401, then 200 with the binding.
    let good = free_addr(LO1);
    register(&dir, p, good, ALICE, &format!("sip:alice@{good}"));
    assert_eq!(proxy.counter("auth_ok"), 1);

    // Six wrong passwords in a row from 127.0.0.2: each REGISTER without credentials is
    // challenged (no failure), each with them is refused with a new challenge (a failure).
    // The sixth is more than --ban-after 5: the source is banned.
    let bad = free_addr(LO2);
    let run = Sipp::new(&dir, "wrong-password", "register_wrong", bad)
        .key("user", ALICE.0)
        .key("domain", DOMAIN)
        .key("contact", &format!("sip:alice@{bad}"))
        .key("expires", "300")
        .auth(ALICE.0, "not-the-password", DOMAIN)
        .calls(6)
        .timeout(Duration::from_secs(15))
        .run(p);
    run.assert_ok();
    assert_eq!(run.received_responses(401).len(), 12, "{:#?}", run.messages);
    assert_eq!(proxy.counter("auth_failed"), 6);
    assert_eq!(proxy.counter("bans"), 1);
    assert!(
        proxy.wait_log(
            &["banned after repeated authentication failures", "127.0.0.2"],
            Duration::from_secs(2)
        ),
        "{}",
        proxy.log_text()
    );

    // Banned: 127.0.0.2 gets no answer at all, not even to an OPTIONS or a REGISTER
    // without credentials; 127.0.0.1 is still served.
    let banned = Ua::bind(LO2);
    let options = banned.request("OPTIONS", &format!("sip:{p}"), "ban-opt-1", &[]);
    banned.send(p, &options);
    let register_req = banned.request("REGISTER", &format!("sip:{DOMAIN}"), "ban-reg-1", &[]);
    banned.send(p, &register_req);
    assert!(
        banned.drain(Duration::from_millis(500)).is_empty(),
        "a banned source got an answer"
    );
    assert!(proxy.counter("banned_drops") >= 2);
    let other = Ua::bind(LO1);
    other.send(
        p,
        &other.request("OPTIONS", &format!("sip:{p}"), "ban-opt-2", &[]),
    );
    let ok = other
        .recv_final(Duration::from_secs(2))
        .expect("127.0.0.1 is not banned");
    assert_eq!(ok.status(), Some(200));

    // After --ban-seconds (2 s), the right password from 127.0.0.2 registers again.
    std::thread::sleep(Duration::from_millis(2_300));
    let again = free_addr(LO2);
    register(&dir, p, again, ALICE, &format!("sip:alice@{again}"));
    assert_eq!(proxy.counter("auth_ok"), 2);
    assert_eq!(proxy.counter("bans"), 1, "no second ban");
}

#[test]
fn max_forwards_zero_is_483_and_malformed_requests_400_naming_the_problem() {
    let dir = TempDir::new("sanity");
    let mut proxy = Proxy::start(&dir, &[free_addr(LO1)], &[]);
    let p = proxy.addr();
    let ua = Ua::bind(LO1);
    // The final answer to `req` (matched by Call-ID: the 483 to the INVITE is
    // retransmitted until ACKed, RFC 3261 §17.2.1, and we do not ACK it).
    let exchange = |req: &[u8]| {
        ua.send(p, req);
        let cid = sip_parser::Message::parse(bytes::Bytes::from(req.to_vec()))
            .ok()
            .and_then(|m| m.call_id().map(str::to_owned));
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let r = ua
                .recv_final(left)
                .unwrap_or_else(|| panic!("no answer to {}", String::from_utf8_lossy(req)));
            // (A request without Call-ID gets an answer without one.)
            if r.call_id().map(str::to_owned) == cid {
                return r;
            }
        }
    };

    // RFC 3261 §16.3 step 3: Max-Forwards 0 → 483, even for an OPTIONS to the proxy
    // itself (the check comes first), and for a call to a user.
    for (method, uri) in [
        ("OPTIONS", format!("sip:{p}")),
        ("INVITE", format!("sip:bob@{DOMAIN}")),
        ("MESSAGE", "sip:carol@example.com".to_owned()),
    ] {
        let id = format!("mf0-{method}");
        let r = exchange(&ua.request(method, &uri, &id, &["Max-Forwards: 0"]));
        assert_eq!(r.status(), Some(483), "{method}: {}", reason(&r));
        assert_eq!(r.call_id(), Some(id.as_str()));
    }
    // The same OPTIONS with Max-Forwards 70 is the proxy's own 200.
    let r = exchange(&ua.request("OPTIONS", &format!("sip:{p}"), "mf70", &[]));
    assert_eq!(r.status(), Some(200));

    // Parseable but invalid: 400 with a reason phrase naming what is wrong.
    let via = format!("Via: SIP/2.0/UDP {};rport;branch=z9hG4bK-bad", ua.addr);
    let malformed: [(&str, String, &str); 3] = [
        (
            "CSeq method differs from the request's",
            format!(
                "OPTIONS sip:{p} SIP/2.0\r\n{via}1\r\nFrom: <sip:a@{DOMAIN}>;tag=1\r\n\
                 To: <sip:{p}>\r\nCall-ID: bad-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
            "cseq",
        ),
        (
            "no Call-ID",
            format!(
                "OPTIONS sip:{p} SIP/2.0\r\n{via}2\r\nFrom: <sip:a@{DOMAIN}>;tag=1\r\n\
                 To: <sip:{p}>\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
            "call-id",
        ),
        (
            "a non-numeric Max-Forwards",
            format!(
                "OPTIONS sip:{p} SIP/2.0\r\n{via}3\r\nFrom: <sip:a@{DOMAIN}>;tag=1\r\n\
                 To: <sip:{p}>\r\nCall-ID: bad-3\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: many\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
            "max-forwards",
        ),
    ];
    let invalid_before = proxy.counter("invalid");
    for (what, req, names) in &malformed {
        let r = exchange(req.as_bytes());
        let phrase = reason(&r);
        assert_eq!(r.status(), Some(400), "{what}: {phrase}");
        assert!(
            phrase.to_ascii_lowercase().contains(names),
            "{what}: the reason phrase `{phrase}` does not name `{names}`"
        );
    }
    assert_eq!(
        proxy.counter("invalid") - invalid_before,
        malformed.len() as u64
    );

    // Unparseable: no answer, a counted drop (from a fresh socket: the 483 to the INVITE
    // above may still be retransmitted to `ua`).
    let parse_errors = proxy.counter("parse_errors");
    let fresh = Ua::bind(LO1);
    fresh.send(p, b"\x00\x01 this is not SIP\r\n\r\n");
    fresh.send(p, b"INVITE\r\n\r\n");
    assert!(fresh.drain(Duration::from_millis(300)).is_empty());
    assert_eq!(proxy.counter("parse_errors") - parse_errors, 2);

    // Still serving.
    let r = exchange(&ua.request("OPTIONS", &format!("sip:{p}"), "after", &[]));
    assert_eq!(r.status(), Some(200));
    assert!(proxy.running());
}
