//! Calls through the real `sip-proxy run` between SIPp user agents on loopback: two
//! registered users calling each other (digest 401 and 407, Record-Route seen by both, ACK
//! and BYE routed back through the proxy from either side), forking to two registrations of
//! one user (the first 200 wins, the other branch is CANCELled), a CANCEL from the caller
//! (487), double Record-Route across two listeners (127.0.0.1 and 127.0.0.2 standing for
//! a private and a public network; with and without `--advertise`), and HEP mirroring of every message of a call to a
//! collector (a UDP socket here, decoding with `hep-codec`).
//!
//! SIPp (Debian `sip-tester`) must be installed: a missing `sipp` fails these tests.

mod support;

use std::net::SocketAddrV4;
use std::time::Duration;

use support::dir::TempDir;
use support::net::{LO1, LO2, free_addr};
use support::proxy::{DOMAIN, Proxy};
use support::sipp::{Sipp, SippRun, register};
use support::users::users_file;

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

/// A caller scenario (`caller`, `caller_hung_up`, `caller_cancel`) from `from` as `who`
/// calling `callee`.
fn call(
    dir: &TempDir,
    scenario: &str,
    proxy: SocketAddrV4,
    from: SocketAddrV4,
    (user, password): (&str, &str),
    callee: &str,
) -> SippRun {
    Sipp::new(dir, &format!("{scenario}-{user}"), scenario, from)
        .key("me", user)
        .key("domain", DOMAIN)
        .service(callee)
        .auth(user, password, &format!("{callee}@{DOMAIN}"))
        .calls(1)
        .timeout(Duration::from_secs(15))
        .run(proxy)
}

/// The last request with `method` in `run`, sent (`sent`) or received (the ACK of the
/// 2xx comes after the ACK of the 407).
fn last<'a>(run: &'a SippRun, method: &str, sent: bool) -> &'a support::sipp::Traced {
    let all = if sent {
        run.sent_requests(method)
    } else {
        run.received_requests(method)
    };
    assert!(
        !all.is_empty(),
        "{}: no {method} {}:\n{:#?}",
        run.name,
        if sent { "sent" } else { "received" },
        run.messages
    );
    all[all.len() - 1]
}

/// The 200 for the INVITE that `run` received.
fn invite_ok(run: &SippRun) -> &support::sipp::Traced {
    run.received_responses(200)
        .into_iter()
        .find(|m| m.text().contains(" INVITE\r\n"))
        .unwrap_or_else(|| panic!("{}: no 200 for the INVITE", run.name))
}

#[test]
fn registered_users_call_each_other_through_the_record_route() {
    let dir = TempDir::new("calls");
    let users = users_file(&dir, &[ALICE, BOB]);
    let mut proxy = Proxy::start(
        &dir,
        &[free_addr(LO1)],
        &["--users", users.to_str().unwrap()],
    );
    let p = proxy.addr();
    let rr = format!("sip:{p};lr");
    // Each user agent has one address: it registers, calls and is called from there.
    let (a, b) = (free_addr(LO1), free_addr(LO1));
    let (alice_contact, bob_contact) = (format!("sip:alice@{a}"), format!("sip:bob@{b}"));
    register(&dir, p, a, ALICE, &alice_contact);
    register(&dir, p, b, BOB, &bob_contact);

    // 1. alice calls bob and hangs up.
    let bob_uas = Sipp::new(&dir, "bob-callee", "callee", b).calls(1).spawn();
    let alice = call(&dir, "caller", p, a, ALICE, "bob");
    let bob = bob_uas.finish(Duration::from_secs(10));
    alice.assert_ok();
    bob.assert_ok();
    // alice was challenged once (407), then went through.
    assert_eq!(alice.received_responses(407).len(), 1);
    // 100 from the proxy at once, bob's 180 and 200 relayed.
    assert!(!alice.received_responses(100).is_empty());
    assert_eq!(alice.received_responses(180).len(), 1);
    assert_eq!(bob.sent().filter(|m| m.status() == Some(180)).count(), 1);
    let invite = last(&bob, "INVITE", false);
    assert_eq!(
        invite.first_line(),
        format!("INVITE {bob_contact} SIP/2.0"),
        "the Request-URI is bob's registered contact"
    );
    assert_eq!(invite.header_values("Record-Route"), [rr.as_str()]);
    assert_eq!(
        invite.header_values("Via").len(),
        2,
        "the proxy's Via above alice's"
    );
    assert_eq!(
        invite_ok(&alice).header_values("Record-Route"),
        [rr.as_str()]
    );
    for m in ["ACK", "BYE"] {
        let sent = last(&alice, m, true);
        assert_eq!(sent.header_values("Route"), [rr.as_str()], "{sent:?}");
        let got = last(&bob, m, false);
        assert!(got.header_values("Route").is_empty(), "our Route popped");
        assert!(
            got.header_values("Via")[0].contains(&p.to_string()),
            "{m} came through the proxy: {got:?}"
        );
    }

    // 2. bob calls alice, and alice (the callee) hangs up.
    let alice_uas = Sipp::new(&dir, "alice-callee", "callee_hangs_up", a)
        .calls(1)
        .spawn();
    let bob = call(&dir, "caller_hung_up", p, b, BOB, "alice");
    let alice = alice_uas.finish(Duration::from_secs(10));
    bob.assert_ok();
    alice.assert_ok();
    let invite = last(&alice, "INVITE", false);
    assert_eq!(
        invite.first_line(),
        format!("INVITE {alice_contact} SIP/2.0")
    );
    assert_eq!(invite.header_values("Record-Route"), [rr.as_str()]);
    assert_eq!(invite_ok(&bob).header_values("Record-Route"), [rr.as_str()]);
    let bye = last(&alice, "BYE", true);
    assert_eq!(bye.header_values("Route"), [rr.as_str()], "{bye:?}");
    assert_eq!(
        bye.first_line(),
        format!("BYE sip:bob@{b} SIP/2.0"),
        "to the caller's Contact"
    );
    let bye = last(&bob, "BYE", false);
    assert!(bye.header_values("Via")[0].contains(&p.to_string()));
    // What the proxy counted: 2 registrations and 2 calls authenticated, 2 dialogs.
    assert_eq!(proxy.counter("registrations"), 2);
    assert_eq!(proxy.counter("auth_ok"), 4);
    assert_eq!(proxy.counter("dialogs_created"), 2);
    assert_eq!(
        proxy.counter("requests{method=\"BYE\"}"),
        2,
        "the BYE of each call"
    );
    assert!(proxy.running(), "the proxy is still up");
}

#[test]
fn forking_to_two_registrations_first_200_wins_and_the_other_branch_is_cancelled() {
    let dir = TempDir::new("fork");
    let users = users_file(&dir, &[ALICE, BOB]);
    let proxy = Proxy::start(
        &dir,
        &[free_addr(LO1)],
        &["--users", users.to_str().unwrap()],
    );
    let p = proxy.addr();
    // bob is registered twice: a phone that answers after half a second, and one that
    // only rings.
    let (a, answers, rings) = (free_addr(LO1), free_addr(LO1), free_addr(LO1));
    register(&dir, p, answers, BOB, &format!("sip:bob@{answers}"));
    let reg = register(&dir, p, rings, BOB, &format!("sip:bob@{rings}"));
    let listed = reg.received_responses(200)[0].header_values("Contact");
    assert_eq!(listed.len(), 2, "both bindings of bob: {listed:?}");

    let winner = Sipp::new(&dir, "bob-answers", "callee", answers)
        .arg("-d")
        .arg("500")
        .calls(1)
        .spawn();
    let loser = Sipp::new(&dir, "bob-rings", "callee_ring", rings)
        .calls(1)
        .spawn();
    let alice = call(&dir, "caller", p, a, ALICE, "bob");
    let winner = winner.finish(Duration::from_secs(10));
    let loser = loser.finish(Duration::from_secs(10));
    alice.assert_ok();
    winner.assert_ok();
    loser.assert_ok();

    // Both phones got the INVITE (parallel forking).
    let inv_w = last(&winner, "INVITE", false);
    let inv_l = last(&loser, "INVITE", false);
    assert_eq!(
        inv_w.first_line(),
        format!("INVITE sip:bob@{answers} SIP/2.0")
    );
    assert_eq!(
        inv_l.first_line(),
        format!("INVITE sip:bob@{rings} SIP/2.0")
    );
    // The ringing one was cancelled: the CANCEL names the INVITE's branch (RFC 3261 §9.1).
    let cancel = last(&loser, "CANCEL", false);
    assert_eq!(
        cancel.header_values("Via"),
        inv_l.header_values("Via")[..1],
        "the CANCEL carries only the proxy's Via, the INVITE's"
    );
    assert_eq!(loser.received_requests("ACK").len(), 1, "the 487 is ACKed");
    // alice saw one final response, the winner's 200; the 487 stayed at the proxy.
    let finals: Vec<u16> = alice
        .received()
        .filter(|m| m.text().contains(" INVITE\r\n"))
        .filter_map(support::sipp::Traced::status)
        .filter(|s| *s >= 200)
        .collect();
    assert_eq!(finals, [407, 200], "{:#?}", alice.messages);
    let ok = invite_ok(&alice);
    assert!(
        ok.header_values("Contact")[0].contains(&answers.to_string()),
        "the winner's 200: {ok:?}"
    );
    // The dialog continues with the winner only.
    assert!(
        last(&alice, "BYE", true)
            .first_line()
            .contains(&answers.to_string())
    );
    assert_eq!(winner.received_requests("BYE").len(), 1);
    assert!(loser.received_requests("BYE").is_empty());
}

#[test]
fn cancel_from_the_caller_ends_the_call_with_487() {
    let dir = TempDir::new("cancel");
    let users = users_file(&dir, &[ALICE, BOB]);
    let proxy = Proxy::start(
        &dir,
        &[free_addr(LO1)],
        &["--users", users.to_str().unwrap()],
    );
    let p = proxy.addr();
    let (a, b) = (free_addr(LO1), free_addr(LO1));
    register(&dir, p, b, BOB, &format!("sip:bob@{b}"));
    let bob = Sipp::new(&dir, "bob-rings", "callee_ring", b)
        .calls(1)
        .spawn();
    let alice = call(&dir, "caller_cancel", p, a, ALICE, "bob");
    let bob = bob.finish(Duration::from_secs(10));
    alice.assert_ok();
    bob.assert_ok();
    // alice: 200 for her CANCEL, 487 for her INVITE.
    let ok = alice.received_responses(200);
    assert_eq!(ok.len(), 1);
    assert!(ok[0].text().contains(" CANCEL\r\n"), "{:?}", ok[0]);
    let terminated = alice.received_responses(487);
    assert_eq!(terminated.len(), 1, "{:#?}", alice.messages);
    assert!(terminated[0].text().contains("CSeq: 2 INVITE\r\n"));
    assert_eq!(
        terminated[0].header_values("Via"),
        last(&alice, "INVITE", true).header_values("Via"),
        "the 487 comes back with alice's own Via"
    );
    // bob: the proxy's CANCEL for the INVITE it forwarded, and the proxy's own ACK of the
    // 487 (hop by hop; alice's ACK stays at the proxy).
    let inv = last(&bob, "INVITE", false);
    let cancel = last(&bob, "CANCEL", false);
    assert_eq!(cancel.header_values("Via"), inv.header_values("Via")[..1]);
    let acks = bob.received_requests("ACK");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].header_values("Via"), inv.header_values("Via")[..1]);
}

/// The calls of the double Record-Route tests, on a proxy listening on 127.0.0.1 (the
/// private side, alice's) and 127.0.0.2 (the public side, bob's); each user registers and
/// calls through the listener of its side. Both calls are hung up by the callee, so ACK and
/// BYE each cross the proxy once in each direction:
/// 1. alice calls bob (in on 127.0.0.1, out on 127.0.0.2): alice ACKs, bob sends the BYE;
/// 2. bob calls alice (in on 127.0.0.2, out on 127.0.0.1): bob ACKs, alice sends the BYE.
struct DoubleRr {
    dir: TempDir,
    proxy: Proxy,
    p2: SocketAddrV4,
    b: SocketAddrV4,
    /// (caller, callee) of call 1 and of call 2.
    calls: [(SippRun, SippRun); 2],
    /// The Record-Route entries of the private and the public listener.
    rr: [String; 2],
    /// The sent-by of the private and the public listener in the proxy's Via.
    via: [String; 2],
}

/// The calls; with `advertise`, the listeners have `--advertise private.sip.test` (no
/// port: the listener's) and `--advertise public.sip.test:5099` (a NAT's port).
fn double_rr_calls(advertise: bool) -> DoubleRr {
    let dir = TempDir::new("double-rr");
    let users = users_file(&dir, &[ALICE, BOB]);
    let (p1, p2) = (free_addr(LO1), free_addr(LO2));
    let trace = dir.path("sip_trace.jsonl");
    let mut args = vec![
        "--users".to_owned(),
        users.to_str().unwrap().to_owned(),
        "--trace-file".to_owned(),
        trace.to_str().unwrap().to_owned(),
    ];
    let (rr, via) = if advertise {
        args.extend(
            [
                "--advertise",
                "private.sip.test",
                "--advertise",
                "public.sip.test:5099",
            ]
            .map(str::to_owned),
        );
        let private = format!("private.sip.test:{}", p1.port());
        let public = "public.sip.test:5099".to_owned();
        (
            [format!("sip:{private};lr"), format!("sip:{public};lr")],
            [private, public],
        )
    } else {
        (
            [format!("sip:{p1};lr"), format!("sip:{p2};lr")],
            [p1.to_string(), p2.to_string()],
        )
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = Proxy::start(&dir, &[p1, p2], &args);
    let (a, b) = (free_addr(LO1), free_addr(LO2));
    register(&dir, p1, a, ALICE, &format!("sip:alice@{a}"));
    register(&dir, p2, b, BOB, &format!("sip:bob@{b}"));
    let callee = Sipp::new(&dir, "bob-callee", "callee_hangs_up", b)
        .calls(1)
        .spawn();
    let caller = call(&dir, "caller_hung_up", p1, a, ALICE, "bob");
    let first = (caller, callee.finish(Duration::from_secs(10)));
    let callee = Sipp::new(&dir, "alice-callee", "callee_hangs_up", a)
        .calls(1)
        .spawn();
    let caller = call(&dir, "caller_hung_up", p2, b, BOB, "alice");
    let second = (caller, callee.finish(Duration::from_secs(10)));
    DoubleRr {
        dir,
        proxy,
        p2,
        b,
        calls: [first, second],
        rr,
        via,
    }
}

#[test]
fn double_record_route_across_two_listeners_with_advertised_addresses() {
    let mut t = double_rr_calls(true);
    let [rr1, rr2] = t.rr.clone();
    let [(alice, bob), (bob2, alice2)] = &t.calls;
    for run in [alice, bob, bob2, alice2] {
        run.assert_ok();
    }

    // 1. alice -> bob. The INVITE bob gets has two Record-Route entries, the top one
    // naming the side it left on; the 200 brings both back to alice.
    let invite = last(bob, "INVITE", false);
    assert_eq!(
        invite.header_values("Record-Route"),
        [rr2.clone(), rr1.clone()]
    );
    assert!(
        invite.header_values("Via")[0].contains(&t.via[1]),
        "sent from the public listener: {invite:?}"
    );
    assert_eq!(
        invite_ok(alice).header_values("Record-Route"),
        [rr2.clone(), rr1.clone()]
    );
    // alice's ACK: the route set reversed (her side first), sent to 127.0.0.1; it reaches
    // bob with both entries popped.
    assert_eq!(
        last(alice, "ACK", true).header_values("Route"),
        [rr1.clone(), rr2.clone()]
    );
    let ack = last(bob, "ACK", false);
    assert!(ack.header_values("Route").is_empty(), "{ack:?}");
    assert_eq!(ack.first_line(), format!("ACK sip:{} SIP/2.0", t.b));
    // bob's BYE: the route set as recorded (his side first), sent to 127.0.0.2; it reaches
    // alice from the private listener.
    assert_eq!(
        last(bob, "BYE", true).header_values("Route"),
        [rr2.clone(), rr1.clone()]
    );
    let bye = last(alice, "BYE", false);
    assert!(bye.header_values("Route").is_empty(), "{bye:?}");
    assert!(bye.header_values("Via")[0].contains(&t.via[0]));

    // 2. bob -> alice: the mirror image.
    let invite = last(alice2, "INVITE", false);
    assert_eq!(
        invite.header_values("Record-Route"),
        [rr1.clone(), rr2.clone()]
    );
    assert!(invite.header_values("Via")[0].contains(&t.via[0]));
    assert_eq!(
        last(bob2, "ACK", true).header_values("Route"),
        [rr2.clone(), rr1.clone()]
    );
    let ack = last(alice2, "ACK", false);
    assert!(ack.header_values("Route").is_empty(), "{ack:?}");
    assert!(ack.header_values("Via")[0].contains(&t.via[0]));
    assert_eq!(
        last(alice2, "BYE", true).header_values("Route"),
        [rr1.clone(), rr2.clone()]
    );
    let bye = last(bob2, "BYE", false);
    assert!(bye.header_values("Route").is_empty(), "{bye:?}");
    assert_eq!(bye.first_line(), format!("BYE sip:bob@{} SIP/2.0", t.b));
    assert!(t.proxy.running());
    drop(t.dir);
}

/// Every request the proxy sent to bob's public address must leave from its public
/// listener (127.0.0.2), with that listener in its Via: the in-dialog ones too, once both
/// of the proxy's Route entries are popped.
#[test]
fn in_dialog_requests_leave_from_the_listener_of_their_side() {
    let t = double_rr_calls(false);
    for (caller, callee) in &t.calls {
        caller.assert_ok();
        callee.assert_ok();
    }
    let trace = std::fs::read_to_string(t.dir.path("sip_trace.jsonl")).unwrap();
    let mut checked = 0;
    for row in trace.lines() {
        let row: serde_json::Value = serde_json::from_str(row).unwrap();
        let to = row["toip"].as_str().unwrap_or_default();
        if row["direction"] != "out" || !to.ends_with(&t.b.to_string()) {
            continue;
        }
        let method = row["method"].as_str().unwrap_or_default().to_owned();
        let from = row["fromip"].as_str().unwrap_or_default();
        assert!(
            from.ends_with(&t.p2.to_string()),
            "{method} to bob left from {from}, not the public listener {}:\n{row}",
            t.p2
        );
        checked += 1;
    }
    assert!(checked >= 4, "INVITE, ACK, BYE, 200 sent to bob: {trace}");
    let [(_, bob), (bob2, _)] = &t.calls;
    for (run, m) in [(bob, "ACK"), (bob2, "BYE")] {
        let got = last(run, m, false);
        assert!(
            got.header_values("Via")[0].contains(&t.p2.to_string()),
            "{m} reached bob with the private listener in its Via: {got:?}"
        );
    }
}

/// A HEP collector on a UDP socket of the test: every datagram it gets until stopped.
struct Collector {
    addr: SocketAddrV4,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

impl Collector {
    fn start() -> Collector {
        let sock = std::net::UdpSocket::bind((LO1, 0)).unwrap();
        let addr = match sock.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!(),
        };
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65_536];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    got.push(buf[..n].to_vec());
                }
            }
            got
        });
        Collector { addr, stop, thread }
    }

    fn finish(self) -> Vec<Vec<u8>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// (source, destination, message) of one datagram on the wire.
type Wire = (std::net::SocketAddr, std::net::SocketAddr, Vec<u8>);

#[test]
fn every_message_of_a_call_reaches_the_hep_collector_with_its_addresses() {
    let dir = TempDir::new("hep");
    let users = users_file(&dir, &[ALICE, BOB]);
    let collector = Collector::start();
    let proxy = Proxy::start(
        &dir,
        &[free_addr(LO1)],
        &[
            "--users",
            users.to_str().unwrap(),
            "--hep",
            &format!("udp:{}", collector.addr),
        ],
    );
    let p = proxy.addr();
    let (a, b) = (free_addr(LO1), free_addr(LO1));
    let mut runs = vec![
        register(&dir, p, a, ALICE, &format!("sip:alice@{a}")),
        register(&dir, p, b, BOB, &format!("sip:bob@{b}")),
    ];
    let bob = Sipp::new(&dir, "bob-callee", "callee", b).calls(1).spawn();
    let alice = call(&dir, "caller", p, a, ALICE, "bob");
    let bob = bob.finish(Duration::from_secs(10));
    alice.assert_ok();
    bob.assert_ok();
    runs.extend([alice, bob]);

    // What the SIPp user agents sent to the proxy and got from it, byte for byte: each is
    // a message the proxy received or sent.
    let local = |run: &SippRun| {
        let name = &run.name;
        if name.contains("alice") { a } else { b }
    };
    let mut expected: Vec<Wire> = Vec::new();
    for run in &runs {
        let ua = std::net::SocketAddr::V4(local(run));
        for m in &run.messages {
            let (src, dst) = if m.sent {
                (ua, std::net::SocketAddr::V4(p))
            } else {
                (std::net::SocketAddr::V4(p), ua)
            };
            expected.push((src, dst, m.data.clone()));
        }
    }
    // The HEP sender is asynchronous: wait until it has sent as many packets as there were
    // messages, give the collector a moment, then stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while proxy.counter("hep_sent") < expected.len() as u64 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let packets = collector.finish();
    assert_eq!(proxy.counter("hep_dropped"), 0);
    assert_eq!(proxy.counter("hep_errors"), 0);

    let mut captured: Vec<Wire> = Vec::new();
    for raw in &packets {
        let h = hep_codec::HepPacket::decode(raw).expect("a HEP packet");
        assert_eq!(h.version, hep_codec::Version::V3, "HEPv3 by default");
        assert_eq!(h.proto_type, Some(hep_codec::ProtoType::SIP));
        assert_eq!(h.ip_proto, Some(hep_codec::IpProto::UDP));
        let payload = h.payload.expect("the SIP message").to_vec();
        let msg = sip_parser::Message::parse(bytes::Bytes::from(payload.clone())).unwrap();
        assert_eq!(
            h.correlation_id,
            msg.call_id().map(str::as_bytes),
            "correlation id = Call-ID"
        );
        captured.push((h.src().unwrap(), h.dst().unwrap(), payload));
    }
    let show = |w: &[Wire]| {
        w.iter()
            .map(|(s, d, m)| {
                let first = String::from_utf8_lossy(m)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                format!("{s} -> {d}: {first}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    expected.sort();
    captured.sort();
    assert!(
        captured == expected,
        "captured:\n{}\n\nexpected:\n{}",
        show(&captured),
        show(&expected)
    );
    // Both legs of the call are there, each direction with its own addresses.
    let (pa, aa, ba) = (
        std::net::SocketAddr::V4(p),
        std::net::SocketAddr::V4(a),
        std::net::SocketAddr::V4(b),
    );
    for (src, dst, start) in [
        (aa, pa, "INVITE sip:bob@"),
        (pa, ba, "INVITE sip:bob@"),
        (ba, pa, "SIP/2.0 180"),
        (pa, aa, "SIP/2.0 180"),
        (ba, pa, "SIP/2.0 200"),
        (pa, aa, "SIP/2.0 200"),
        (aa, pa, "ACK sip:"),
        (pa, ba, "ACK sip:"),
        (aa, pa, "BYE sip:"),
        (pa, ba, "BYE sip:"),
        (pa, aa, "SIP/2.0 407"),
        (pa, ba, "SIP/2.0 401"),
    ] {
        assert!(
            captured
                .iter()
                .any(|(s, d, m)| *s == src && *d == dst && m.starts_with(start.as_bytes())),
            "no `{start}` {src} -> {dst} captured:\n{}",
            show(&captured)
        );
    }
}
