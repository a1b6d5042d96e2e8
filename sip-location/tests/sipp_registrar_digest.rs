//! The registrar of `examples/registrar_digest.rs` (Digest, transaction layer, HEP) against
//! a real client: SIPp (Debian package `sip-tester`) on loopback registers with Digest
//! (`tests/sipp/register_digest.xml`: 401, then `[authentication]` with the right password,
//! a 200 listing the contact, `rport` filled), and from 127.0.0.2 tries a wrong password six
//! times (`tests/sipp/register_digest_wrong.xml`: 401 every time, then the source is banned).
//! Every datagram in and out is mirrored with HEP to a socket of the test, which decodes
//! them back into the conversation. A second test sends a REGISTER retransmission by hand:
//! the transaction layer answers it with the same 200, where the verifier alone would have
//! refused it as a replay.
//!
//! The test fails, never skips, when `sipp` is missing: install it with
//! `apt-get install sip-tester` (scripts/test does it from scripts/apt-packages.txt).

#[path = "../examples/registrar_digest.rs"]
mod example;
#[path = "../../sip-auth/tests/support/sipp.rs"]
mod support_sipp;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hep_codec::{Collector, HepConfig, HepPacket, HepSender, Mode, NullSink, Transport};
use sip_auth::{
    Challenge, ClientRequest, Credentials, DigestClient, FailReason, HashKind, HtdigestFile,
    NonceSecrets, Outcome,
};
use sip_location::LocationStore;
use sip_parser::bytes::Bytes;
use sip_parser::{HeaderName, Message};
use support_sipp::{require_sipp, sipp};

const REALM: &str = "registrar.test";
/// Whatever happens, the registrar stops after this long, so a failure cannot hang the test.
const DEADLINE: Duration = Duration::from_secs(60);

/// The registrar with one user, alice / secret, from an htdigest file: Apache's line alone
/// (an MD5 HA1), or with the SHA-256 line `sip-proxy users add` writes too.
fn registrar(sha256: bool) -> example::Registrar {
    let users = if sha256 {
        let mut file = HtdigestFile::default();
        file.set_password("alice", REALM, "secret", &[HashKind::Sha256])
            .unwrap();
        file.to_text()
    } else {
        let ha1 = sip_auth::ha1(HashKind::Md5, "alice", REALM, "secret");
        format!("alice:{REALM}:{ha1}\n")
    };
    example::Registrar::new(&users, NonceSecrets::random().unwrap()).unwrap()
}

/// Sets the flag when dropped: the server thread stops even when the test body panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn unused_port(ip: &str) -> SocketAddr {
    UdpSocket::bind((ip, 0)).unwrap().local_addr().unwrap()
}

fn wall_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// SIPp with `tests/sipp/SCENARIO` from `client` against `server`, one call.
fn run(scenario: &str, server: SocketAddr, client: SocketAddr) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    sipp(&path, server, client)
}

/// One captured datagram, decoded from HEP.
struct Captured {
    src: SocketAddr,
    dst: SocketAddr,
    sip: Message,
}

/// The conversation between `client` and the registrar at `server`, in order, each distinct
/// datagram once (SIPp retransmits after 500 ms without an answer, and the layer resends its
/// answer to each retransmission: both would show up twice).
fn conversation(all: &[Captured], client: SocketAddr, server: SocketAddr) -> Vec<&Captured> {
    let mut seen = HashSet::new();
    all.iter()
        .filter(|c| (c.src, c.dst) == (client, server) || (c.src, c.dst) == (server, client))
        .filter(|c| seen.insert((c.src, c.sip.buffer().clone())))
        .collect()
}

fn cseq(m: &Message) -> u32 {
    m.cseq().unwrap().seq
}

fn header(m: &Message, name: HeaderName) -> &[u8] {
    m.headers_of(name).next().expect("header present").value
}

#[test]
fn sipp_registers_with_digest_and_every_message_is_captured_with_hep() {
    require_sipp();
    let reg = registrar(false);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = sock.local_addr().unwrap();
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = HepConfig {
        capture_id: 2001,
        ..HepConfig::default()
    };
    let hep = HepSender::start(
        Collector::udp(collector.local_addr().unwrap()),
        config,
        1024,
    )
    .unwrap();
    let (good, bad) = (unused_port("127.0.0.1"), unused_port("127.0.0.2"));
    let (start, first_second) = (Instant::now(), wall_secs());
    let stop = AtomicBool::new(false);

    let stop_ = || stop.load(Ordering::SeqCst) || start.elapsed() > DEADLINE;
    let (right, wrong) = thread::scope(|s| {
        let server_thread = s.spawn(|| example::serve(&sock, &reg, &hep, &stop_));
        let _guard = StopOnDrop(&stop);
        let right = run("register_digest.xml", server, good);
        let wrong = run("register_digest_wrong.xml", server, bad);
        stop.store(true, Ordering::SeqCst);
        server_thread.join().unwrap().unwrap();
        (right, wrong)
    });
    right.unwrap();
    wrong.unwrap();

    // The right password registered the contact, with the source address for NAT.
    let now = Duration::from_secs(wall_secs());
    let alice = reg.bindings.lookup("sip:alice@127.0.0.1", now).unwrap();
    let contacts: Vec<_> = alice
        .bindings()
        .iter()
        .map(|b| b.contact().to_owned())
        .collect();
    assert_eq!(contacts, [format!("sip:alice@{good}")]);
    assert_eq!(alice.bindings()[0].source().unwrap().addr, good);
    // Six wrong passwords banned 127.0.0.2 (five allowed), and only it.
    assert!(reg.bans.is_banned(bad.ip(), reg.epoch.elapsed()));
    assert!(!reg.bans.is_banned(good.ip(), reg.epoch.elapsed()));

    // Every datagram in and out reached the collector as HEP.
    let stats = hep.close();
    assert_eq!(stats.dropped(), 0);
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let mut all = Vec::new();
    for _ in 0..stats.sent() {
        let n = collector.recv(&mut buf).expect("a HEP packet");
        let packet = HepPacket::decode_with(&buf[..n], Mode::Strict).unwrap();
        assert!(packet.is_sip());
        assert_eq!(packet.capture_id, Some(2001));
        assert_eq!(
            packet.ip_proto.and_then(hep_codec::IpProto::transport),
            Some(Transport::Udp)
        );
        let ts = u64::from(packet.ts_sec.unwrap());
        assert!((first_second..=wall_secs()).contains(&ts), "{ts}");
        let sip = Bytes::copy_from_slice(packet.payload.unwrap());
        all.push(Captured {
            src: packet.src().unwrap(),
            dst: packet.dst().unwrap(),
            sip: Message::parse(sip).unwrap(),
        });
    }
    let right = conversation(&all, good, server);
    let wrong = conversation(&all, bad, server);
    assert_eq!(
        (right.len(), wrong.len()),
        (4, 14),
        "distinct datagrams captured of each conversation"
    );

    // 1. REGISTER without credentials → 401 offering MD5 (the only HA1 an Apache line
    // holds), rport filled.
    let (first, challenge) = (&right[0].sip, &right[1].sip);
    assert_eq!(
        (right[0].src, first.method(), cseq(first)),
        (good, Some("REGISTER"), 1)
    );
    assert!(first.headers_of(HeaderName::Authorization).next().is_none());
    assert_eq!(
        (right[1].dst, challenge.status(), cseq(challenge)),
        (good, Some(401), 1)
    );
    assert_eq!(challenge.headers_of(HeaderName::WwwAuthenticate).count(), 1);
    let offered = Challenge::parse(header(challenge, HeaderName::WwwAuthenticate)).unwrap();
    assert_eq!(offered.realm, REALM);
    assert_eq!(offered.algorithm, Some(sip_auth::Algorithm::Md5));
    let via = challenge.top_via().unwrap().unwrap();
    assert_eq!(via.rport, Some(Some(good.port())));
    // 2. SIPp's answer, on that nonce → 200 listing the contact, rport filled.
    let (second, ok) = (&right[2].sip, &right[3].sip);
    assert_eq!(
        (right[2].src, second.method(), cseq(second)),
        (good, Some("REGISTER"), 2)
    );
    let credentials = Credentials::parse(header(second, HeaderName::Authorization)).unwrap();
    assert_eq!(
        (credentials.username(), credentials.nonce()),
        ("alice".into(), offered.nonce)
    );
    assert_eq!((right[3].dst, ok.status(), cseq(ok)), (good, Some(200), 2));
    let contact = format!("<sip:alice@{good}>;expires=1800");
    assert_eq!(header(ok, HeaderName::Contact), contact.as_bytes());
    assert_eq!(
        ok.top_via().unwrap().unwrap().rport,
        Some(Some(good.port()))
    );

    // The wrong password: REGISTER and 401 in turn, seven times, every request answered.
    for (i, pair) in wrong.chunks(2).enumerate() {
        let (req, resp) = (&pair[0], &pair[1]);
        let n = i as u32 + 1;
        assert_eq!(
            (req.src, req.sip.method(), cseq(&req.sip)),
            (bad, Some("REGISTER"), n)
        );
        assert_eq!(
            req.sip
                .headers_of(HeaderName::Authorization)
                .next()
                .is_some(),
            n > 1
        );
        assert_eq!(
            (resp.dst, resp.sip.status(), cseq(&resp.sip)),
            (bad, Some(401), n)
        );
    }
}

#[test]
fn a_retransmitted_register_gets_its_200_again_not_a_replay_401() {
    let reg = registrar(true);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = sock.local_addr().unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = phone.local_addr().unwrap();
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    // The phone's Via names another address than the one it sends from (a NAT), with rport.
    let register = |cseq: u32, branch: &str, authorization: &str| {
        format!(
            "REGISTER sip:{REALM} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=r1\r\nTo: <sip:alice@{REALM}>\r\n\
             Call-ID: retransmitted\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:alice@127.0.0.2:5060>\r\n{authorization}Content-Length: 0\r\n\r\n"
        )
    };
    let exchange = |request: &str| {
        phone.send_to(request.as_bytes(), server).unwrap();
        let mut buf = vec![0u8; 65_535];
        let (n, from) = phone.recv_from(&mut buf).expect("an answer");
        assert_eq!(from, server);
        Message::parse(Bytes::copy_from_slice(&buf[..n])).unwrap()
    };

    let stop_ = || stop.load(Ordering::SeqCst) || start.elapsed() > DEADLINE;
    thread::scope(|s| {
        s.spawn(|| example::serve(&sock, &reg, &NullSink, &stop_).unwrap());
        let _guard = StopOnDrop(&stop);

        // Not a REGISTER: 405 with Allow, before any challenge.
        let options = register(1, "options", "").replace("REGISTER", "OPTIONS");
        let refused = exchange(&options);
        assert_eq!(refused.status(), Some(405));
        assert_eq!(refused.header("Allow"), Some(&b"REGISTER"[..]));

        let first = register(1, "first", "");
        let challenge = exchange(&first);
        assert_eq!(challenge.status(), Some(401));
        // The 401 carries received and rport, like the 200 (RFC 3581 §4).
        let via = challenge.top_via().unwrap().unwrap();
        assert_eq!(
            (via.received, via.rport),
            (Some("127.0.0.1"), Some(Some(me.port())))
        );
        // Retransmitted, the REGISTER gets the same 401: the same nonce, no new transaction.
        assert_eq!(exchange(&first).buffer(), challenge.buffer());

        let offered: Vec<&[u8]> = challenge
            .headers_of(HeaderName::WwwAuthenticate)
            .map(|h| h.value)
            .collect();
        let uri = format!("sip:{REALM}");
        let creq = ClientRequest {
            method: "REGISTER",
            uri: &uri,
            body: b"",
        };
        let mut client = DigestClient::new("alice", "secret");
        // MD5 and SHA-256 offered (the file has both HA1s); this client takes the strongest.
        assert_eq!(offered.len(), 2);
        let authorization = client.respond(&offered, &creq, "c0ffee").unwrap();
        assert!(authorization.contains("algorithm=SHA-256"));
        let second = register(2, "second", &format!("Authorization: {authorization}\r\n"));
        let ok = exchange(&second);
        assert_eq!(ok.status(), Some(200));
        let via = ok.top_via().unwrap().unwrap();
        assert_eq!(
            (via.received, via.rport),
            (Some("127.0.0.1"), Some(Some(me.port())))
        );

        // The 200 was "lost": the phone sends the same REGISTER again and gets the same 200
        // from the transaction layer, the verifier never seeing it.
        assert_eq!(exchange(&second).buffer(), ok.buffer());
        // Had the verifier seen it, it would have been a replay (same nonce, same nc).
        let again = Message::parse(Bytes::from(second.clone().into_bytes())).unwrap();
        let now = wall_secs();
        assert_eq!(
            reg.digest.verify_message(&again, me.ip(), &reg.users, now),
            Outcome::Failed(FailReason::Replay)
        );
    });

    // Registered once, reached at the address the REGISTER came from (NAT).
    let now = Duration::from_secs(wall_secs());
    let alice = reg
        .bindings
        .lookup("sip:alice@registrar.test", now)
        .unwrap();
    assert_eq!(alice.bindings().len(), 1);
    assert_eq!(alice.bindings()[0].contact(), "sip:alice@127.0.0.2:5060");
    assert_eq!(alice.bindings()[0].send_to().unwrap().addr, me);
    assert!(!reg.bans.is_banned(me.ip(), reg.epoch.elapsed()));
}
