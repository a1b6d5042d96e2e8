//! The registrar rules, one REGISTER case per rule, each from the text of its RFC: the
//! status answered, the Contact values of the response (URI and `expires`) and the bindings
//! left in the store.

use core::fmt::Write as _;
use core::time::Duration;

use sip_location::registrar::{self, Outcome};
use sip_location::{
    Binding, EventKind, Flags, Keepalive, LocationStore, MaxContacts, MemoryStore, PathMode,
    Policy, Snapshot, Source, WhenFull,
};
use sip_parser::{Message, Transport};

const T0: u64 = 1_700_000_000;
const AOR: &str = "sip:alice@example.com";

fn at(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn source() -> Source {
    Source::new("192.0.2.10:5060".parse().unwrap(), Transport::Udp)
}

/// A REGISTER from alice's phone with this Call-ID, CSeq and extra header lines (a `To:` or
/// `CSeq:` line replaces the default one).
fn register_msg(call_id: &str, cseq: u32, lines: &[&str]) -> Message {
    let overrides = |name: &str| lines.iter().any(|l| l.starts_with(name));
    let mut s = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{call_id}-{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: Alice <sip:alice@example.com>;tag=456248\r\n\
         Call-ID: {call_id}\r\n"
    );
    if !overrides("To:") {
        s.push_str("To: Alice <sip:alice@example.com>\r\n");
    }
    if !overrides("CSeq:") {
        let _ = write!(s, "CSeq: {cseq} REGISTER\r\n");
    }
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(s.into_bytes().into()).expect("test REGISTER frames")
}

/// The (URI, expires) pairs of the Contact header fields of a response.
fn listed(resp: &Message) -> Vec<(String, u64)> {
    resp.contacts()
        .map(|c| {
            let c = c.unwrap();
            let a = c.addr().unwrap();
            (
                String::from_utf8(a.raw_uri.to_vec()).unwrap(),
                u64::from(
                    c.expires()
                        .unwrap()
                        .expect("every Contact of a 200 has expires"),
                ),
            )
        })
        .collect()
}

struct Case {
    /// The rule, quoted or cited.
    rule: &'static str,
    policy: fn(&mut Policy),
    /// REGISTERs sent first (each must get a 200), at T0.
    before: &'static [(&'static str, u32, &'static [&'static str])],
    /// The REGISTER under test, `secs` after T0.
    request: (&'static str, u32, &'static [&'static str]),
    secs: u64,
    status: u16,
    /// Contact values of the response (200 only), best first.
    listed: &'static [(&'static str, u64)],
    /// Contacts in the store afterwards.
    stored: &'static [&'static str],
    /// A header the response must carry (name, value).
    header: Option<(&'static str, &'static str)>,
}

const fn case(rule: &'static str) -> Case {
    Case {
        rule,
        policy: |_| {},
        before: &[],
        request: ("c1", 1, &[]),
        secs: 0,
        status: 200,
        listed: &[],
        stored: &[],
        header: None,
    }
}

const PHONE: &[&str] = &["Contact: <sip:alice@192.0.2.10>", "Expires: 600"];
const PHONE_AND_LAPTOP: &[&str] = &[
    "Contact: <sip:alice@192.0.2.10>;q=0.5",
    "Contact: <sip:alice@198.51.100.7>;q=0.9",
    "Expires: 600",
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            request: ("c1", 1, &[]),
            ..case(
                "§10.3 step 6: no Contact: \"it skips to the last step\" (a query, 200 listing nothing)",
            )
        },
        Case {
            before: &[("c1", 1, PHONE)],
            request: ("c9", 1, &[]),
            secs: 100,
            listed: &[("sip:alice@192.0.2.10", 500)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 8: \"The response MUST contain Contact header field values enumerating all current bindings\" with the time left",
            )
        },
        Case {
            request: ("c1", 1, PHONE),
            listed: &[("sip:alice@192.0.2.10", 600)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: no expires parameter, \"but the request has an Expires header field, that value MUST be taken\"",
            )
        },
        Case {
            request: (
                "c1",
                1,
                &[
                    "Contact: <sip:alice@192.0.2.10>;expires=120",
                    "Expires: 600",
                ],
            ),
            listed: &[("sip:alice@192.0.2.10", 120)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: \"If the field value has an expires parameter, that value MUST be taken\"",
            )
        },
        Case {
            request: ("c1", 1, &["Contact: <sip:alice@192.0.2.10>"]),
            listed: &[("sip:alice@192.0.2.10", 3600)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: \"If there is neither, a locally-configured default value MUST be taken\"",
            )
        },
        Case {
            request: ("c1", 1, &["Contact: <sip:alice@192.0.2.10>;expires=86400"]),
            listed: &[("sip:alice@192.0.2.10", 3600)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: \"The registrar MAY choose an expiration less than the requested expiration interval\" (max_expires)",
            )
        },
        Case {
            request: ("c1", 1, &["Contact: <sip:alice@192.0.2.10>;expires=30"]),
            status: 423,
            header: Some(("Min-Expires", "60")),
            ..case(
                "§10.3 step 7: greater than zero, under an hour, under the minimum: 423 \"MUST contain a Min-Expires header field\"",
            )
        },
        Case {
            policy: |p| {
                p.min_expires = 7200;
                p.max_expires = 86_400;
            },
            request: ("c1", 1, &["Contact: <sip:alice@192.0.2.10>;expires=3600"]),
            listed: &[("sip:alice@192.0.2.10", 7200)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: 423 only \"If and only if the requested expiration interval is [...] smaller than one hour\" (raised to the minimum instead)",
            )
        },
        Case {
            request: ("c1", 1, &["Contact: <sip:alice@192.0.2.10>;expires=soon"]),
            status: 400,
            ..case("§20.10 / §10.2.1.1: expires is delta-seconds; anything else is a bad request")
        },
        Case {
            before: &[("c1", 1, PHONE_AND_LAPTOP)],
            request: ("c1", 2, &["Contact: <sip:alice@192.0.2.10>;expires=0"]),
            listed: &[("sip:alice@198.51.100.7", 600)],
            stored: &["sip:alice@198.51.100.7"],
            ..case("§10.3 step 7: \"the binding MUST be removed if the expiration time is zero\"")
        },
        Case {
            before: &[("c1", 1, PHONE_AND_LAPTOP)],
            request: ("c1", 2, &["Contact: *", "Expires: 0"]),
            ..case("§10.3 step 6: Contact \"*\" with Expires 0 removes every binding")
        },
        Case {
            before: &[("c1", 1, PHONE)],
            request: ("c1", 2, &["Contact: *"]),
            status: 400,
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 6: \"*\" needs \"an Expires field\": without one the request is invalid (400)",
            )
        },
        Case {
            before: &[("c1", 1, PHONE)],
            request: ("c1", 2, &["Contact: *", "Expires: 10"]),
            status: 400,
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 6: \"an expiration time other than zero, the request is invalid\" (400)",
            )
        },
        Case {
            before: &[("c1", 1, PHONE)],
            request: (
                "c1",
                2,
                &[
                    "Contact: *",
                    "Contact: <sip:alice@192.0.2.10>",
                    "Expires: 0",
                ],
            ),
            status: 400,
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 6: \"If the request has additional Contact fields [...] the server MUST return a 400\"",
            )
        },
        Case {
            before: &[("c1", 5, PHONE)],
            request: ("c1", 5, &["Contact: *", "Expires: 0"]),
            status: 400,
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 6: same Call-ID, CSeq not higher: \"the update MUST be aborted and the request fails\"",
            )
        },
        Case {
            before: &[("c1", 5, PHONE)],
            request: ("c2", 1, &["Contact: *", "Expires: 0"]),
            ..case(
                "§10.3 step 6: \"checks whether the Call-ID agrees [...] If not, it MUST remove the binding\" (whatever the CSeq)",
            )
        },
        Case {
            before: &[("c1", 5, PHONE)],
            request: (
                "c1",
                4,
                &["Contact: <sip:alice@192.0.2.10>", "Expires: 900"],
            ),
            status: 400,
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: same Call-ID, lower CSeq: \"If not, the update MUST be aborted and the request fails\"",
            )
        },
        Case {
            before: &[("c1", 5, PHONE)],
            request: (
                "c2",
                1,
                &["Contact: <sip:alice@192.0.2.10>", "Expires: 900"],
            ),
            listed: &[("sip:alice@192.0.2.10", 900)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "§10.3 step 7: \"If the Call-ID value in the existing binding differs [...] updated otherwise\"",
            )
        },
        Case {
            before: &[(
                "c1",
                1,
                &[
                    "Contact: <sip:alice@PC33.example.com;transport=UDP>",
                    "Expires: 600",
                ],
            )],
            request: (
                "c1",
                2,
                &[
                    "Contact: <sip:alice@pc33.example.com;transport=udp;x=1>",
                    "Expires: 900",
                ],
            ),
            listed: &[("sip:alice@pc33.example.com;transport=udp;x=1", 900)],
            stored: &["sip:alice@pc33.example.com;transport=udp;x=1"],
            ..case(
                "§10.3 step 7: \"searches the list of current bindings using the URI comparison rules\" (§19.1.4: host case, param case, extra params)",
            )
        },
        Case {
            request: ("c1", 1, PHONE_AND_LAPTOP),
            listed: &[
                ("sip:alice@198.51.100.7", 600),
                ("sip:alice@192.0.2.10", 600),
            ],
            stored: &["sip:alice@198.51.100.7", "sip:alice@192.0.2.10"],
            ..case("§10.2.1.2 / §20.10: q-values kept and returned, the highest first")
        },
        Case {
            policy: |p| p.domains = vec!["example.com".into()],
            request: (
                "c1",
                1,
                &[
                    "Contact: <sip:alice@192.0.2.10>",
                    "To: <sip:alice@example.org>",
                ],
            ),
            status: 404,
            ..case(
                "§10.3 step 5: \"If the address-of-record is not valid for the domain in the Request-URI, the registrar MUST send a 404\"",
            )
        },
        Case {
            request: (
                "c1",
                1,
                &["Contact: <sip:alice@192.0.2.10>", "Require: foo, path"],
            ),
            status: 420,
            header: Some(("Unsupported", "foo")),
            ..case(
                "§10.3 step 2 / §8.2.2.3: unsupported Require option tags get 420 with Unsupported",
            )
        },
        Case {
            request: (
                "c1",
                1,
                &[
                    "Contact: <sip:alice@192.0.2.10>",
                    "Path: <sip:edge.example.com;lr>",
                ],
            ),
            status: 421,
            header: Some(("Require", "path")),
            ..case(
                "RFC 3327 §5.3: Path from a UA that did not say Supported: path is refused (421 Extension Required, Require: path)",
            )
        },
        Case {
            request: (
                "c1",
                1,
                &[
                    "Contact: <sip:alice@192.0.2.10>",
                    "Supported: path",
                    "Path: <sip:edge.example.com;lr>",
                ],
            ),
            listed: &[("sip:alice@192.0.2.10", 3600)],
            stored: &["sip:alice@192.0.2.10"],
            header: Some(("Path", "<sip:edge.example.com;lr>")),
            ..case(
                "RFC 3327 §5.3: the Path vector is stored with the contact and copied into the 200",
            )
        },
        Case {
            policy: |p| p.path = PathMode::Lenient,
            request: (
                "c1",
                1,
                &[
                    "Contact: <sip:alice@192.0.2.10>",
                    "Path: <sip:edge.example.com;lr>",
                ],
            ),
            listed: &[("sip:alice@192.0.2.10", 3600)],
            stored: &["sip:alice@192.0.2.10"],
            ..case(
                "PathMode::Lenient (Kamailio path_mode 1): Path stored without Supported: path, not echoed",
            )
        },
        Case {
            before: &[(
                "c1",
                1,
                &[
                    "Contact: <sip:line1@192.0.2.10;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1",
                    "Supported: outbound",
                ],
            )],
            request: (
                "c1",
                2,
                &[
                    "Contact: <sip:line1@192.0.2.11;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1",
                    "Supported: outbound",
                ],
            ),
            listed: &[("sip:line1@192.0.2.11;transport=tcp", 3600)],
            stored: &["sip:line1@192.0.2.11;transport=tcp"],
            header: Some(("Require", "outbound")),
            ..case(
                "RFC 5626 §6: a registration with the same instance and reg-id replaces the old flow, whatever its URI; 200 has Require: outbound",
            )
        },
        Case {
            before: &[(
                "c1",
                1,
                &[
                    "Contact: <sip:line1@192.0.2.10;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1",
                    "Supported: outbound",
                ],
            )],
            request: (
                "c2",
                1,
                &[
                    "Contact: <sip:line1@192.0.2.10;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=2",
                    "Supported: outbound",
                ],
            ),
            listed: &[
                ("sip:line1@192.0.2.10;transport=tcp", 3600),
                ("sip:line1@192.0.2.10;transport=tcp", 3600),
            ],
            stored: &[
                "sip:line1@192.0.2.10;transport=tcp",
                "sip:line1@192.0.2.10;transport=tcp",
            ],
            ..case(
                "RFC 5626 §6: two flows (reg-id 1 and 2) of one instance are two bindings, even with the same URI",
            )
        },
        Case {
            policy: |p| {
                p.max_contacts = Some(MaxContacts {
                    limit: 1,
                    when_full: WhenFull::Reject,
                });
                p.retry_after = Some(30);
            },
            before: &[("c1", 1, PHONE)],
            request: ("c2", 1, &["Contact: <sip:alice@198.51.100.7>"]),
            status: 503,
            stored: &["sip:alice@192.0.2.10"],
            header: Some(("Retry-After", "30")),
            ..case("max_contacts with Reject (Kamailio): 503, Retry-After, bindings unchanged")
        },
        Case {
            policy: |p| {
                p.max_contacts = Some(MaxContacts {
                    limit: 1,
                    when_full: WhenFull::ReplaceOldest,
                });
            },
            before: &[("c1", 1, PHONE)],
            request: ("c2", 1, &["Contact: <sip:alice@198.51.100.7>"]),
            secs: 10,
            listed: &[("sip:alice@198.51.100.7", 3600)],
            stored: &["sip:alice@198.51.100.7"],
            ..case(
                "max_contacts with ReplaceOldest: the least recently refreshed binding makes room",
            )
        },
        Case {
            policy: |p| {
                p.max_contacts = Some(MaxContacts {
                    limit: 1,
                    when_full: WhenFull::ReplaceOldest,
                });
            },
            request: ("c1", 1, PHONE_AND_LAPTOP),
            status: 503,
            ..case(
                "max_contacts with ReplaceOldest: a request that alone brings too many is still refused",
            )
        },
        Case {
            request: (
                "c1",
                1,
                &["Contact: <sip:alice@192.0.2.10>", "CSeq: 2 INVITE"],
            ),
            status: 400,
            ..case("§8.1.1.7 / §20.16: the CSeq method must be the request's")
        },
    ]
}

#[test]
fn every_rule_of_the_table() {
    for c in cases() {
        let mut policy = Policy::default();
        (c.policy)(&mut policy);
        let store = MemoryStore::default();
        for (cid, seq, lines) in c.before {
            let r = registrar::register(
                &store,
                &register_msg(cid, *seq, lines),
                &source(),
                at(T0),
                &policy,
            );
            assert_eq!(r.reply.unwrap().status, 200, "setup of: {}", c.rule);
        }
        let (cid, seq, lines) = c.request;
        let msg = register_msg(cid, seq, lines);
        let r = registrar::register(&store, &msg, &source(), at(T0 + c.secs), &policy);
        let reply = r.reply.unwrap_or_else(|| panic!("no reply: {}", c.rule));
        assert_eq!(reply.status, c.status, "{}", c.rule);
        let resp = Message::parse(reply.response.clone()).unwrap();
        assert_eq!(resp.status(), Some(c.status), "{}", c.rule);
        assert_eq!(
            resp.record_routes().count(),
            0,
            "§10.3: no Record-Route in a REGISTER response"
        );
        if c.status == 200 {
            let want: Vec<(String, u64)> =
                c.listed.iter().map(|(u, e)| ((*u).into(), *e)).collect();
            assert_eq!(listed(&resp), want, "{}", c.rule);
            assert!(
                resp.header("Date").is_some(),
                "§10.3 step 8: SHOULD include a Date"
            );
        } else {
            assert_eq!(resp.contacts().count(), 0, "{}", c.rule);
        }
        if let Some((name, value)) = c.header {
            assert_eq!(resp.header(name), Some(value.as_bytes()), "{}", c.rule);
        }
        let stored: Vec<String> = store
            .lookup(AOR, at(T0 + c.secs))
            .unwrap()
            .bindings()
            .iter()
            .map(|b| b.contact().into())
            .collect();
        assert_eq!(stored, c.stored, "{}", c.rule);
    }
}

#[test]
fn step_1_foreign_domain_is_not_ours() {
    // "If not, and if the server also acts as a proxy server, the server SHOULD forward the
    // request to the addressed domain" — the registrar says so, the proxy forwards.
    let policy = Policy {
        domains: vec!["example.com".into()],
        ..Policy::default()
    };
    let msg = Message::parse(
        b"REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
          To: <sip:alice@example.org>\r\nFrom: <sip:alice@example.org>;tag=1\r\nCall-ID: x\r\n\
          CSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.10>\r\n\r\n"
            .to_vec()
            .into(),
    )
    .unwrap();
    let store = MemoryStore::default();
    let r = registrar::register(&store, &msg, &source(), at(T0), &policy);
    assert!(r.reply.is_none());
    assert_eq!(
        registrar::process(&msg, &source(), &Snapshot::default(), at(T0), &policy),
        Outcome::NotResponsible
    );
    assert_eq!(store.counts().unwrap().bindings, 0);
}

#[test]
fn another_method_is_405_with_allow() {
    // RFC 3261 §21.4.6, 405 Method Not Allowed: "The response MUST include an Allow header
    // field containing a list of valid methods for the indicated address."
    let msg = Message::parse(
        b"OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
          To: <sip:example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: o\r\n\
          CSeq: 1 OPTIONS\r\n\r\n"
            .to_vec()
            .into(),
    )
    .unwrap();
    let store = MemoryStore::default();
    let reply = registrar::register(&store, &msg, &source(), at(T0), &Policy::default())
        .reply
        .unwrap();
    assert_eq!(reply.status, 405);
    let resp = Message::parse(reply.response).unwrap();
    assert_eq!(resp.header("Allow"), Some(&b"REGISTER"[..]));
    assert_eq!(store.counts().unwrap().bindings, 0);
}

#[test]
fn step_5_aor_is_canonical() {
    // "all URI parameters MUST be removed (including the user-param), and any escaped
    // characters MUST be converted to their unescaped form."
    let store = MemoryStore::default();
    let policy = Policy::default();
    let msg = register_msg(
        "c1",
        1,
        &[
            "To: <sip:%61lice@EXAMPLE.com;user=phone>",
            "Contact: <sip:alice@192.0.2.10>",
        ],
    );
    let r = registrar::register(&store, &msg, &source(), at(T0), &policy);
    assert_eq!(r.reply.unwrap().status, 200);
    assert_eq!(store.lookup(AOR, at(T0)).unwrap().len(), 1);
    assert_eq!(&*r.events[0].aor, AOR);
}

#[test]
fn binding_keeps_what_was_received() {
    // Kamailio `received` / fix_nated_register: a private Contact behind a public source.
    let store = MemoryStore::default();
    let from_nat = Source {
        addr: "203.0.113.9:40312".parse().unwrap(),
        transport: Transport::Udp,
        local: Some("192.0.2.1:5060".parse().unwrap()),
        flow: Some(7),
    };
    let msg = register_msg(
        "c1",
        1,
        &[
            "Contact: <sip:alice@10.0.0.7:5060>;expires=300",
            "User-Agent: phone/2.1",
        ],
    );
    let r = registrar::register(&store, &msg, &from_nat, at(T0), &Policy::default());
    let reply = r.reply.unwrap();
    assert_eq!(reply.status, 200);
    // The 200 carries received/rport for the client (RFC 3581).
    let resp = Message::parse(reply.response).unwrap();
    let via = resp.top_via().unwrap().unwrap();
    assert_eq!(
        (via.received, via.rport),
        (Some("203.0.113.9"), Some(Some(40312)))
    );
    let b: Binding = store.lookup(AOR, at(T0)).unwrap().bindings()[0].clone();
    assert_eq!(b.source(), Some(from_nat));
    assert!(b.flags().contains(Flags::NAT | Flags::KEEPALIVE));
    assert_eq!(b.send_to(), Some(from_nat));
    assert_eq!(
        (b.call_id(), b.cseq(), b.user_agent()),
        ("c1", 1, "phone/2.1")
    );
    assert_eq!(b.expires_at(), T0 + 300);
    // Same address as the source: no NAT, nothing to ping.
    let direct = Source::new("192.0.2.10:5060".parse().unwrap(), Transport::Udp);
    let msg = register_msg("c2", 1, &["Contact: <sip:alice@192.0.2.10>"]);
    let store = MemoryStore::default();
    registrar::register(&store, &msg, &direct, at(T0), &Policy::default());
    let b = store.lookup(AOR, at(T0)).unwrap().bindings()[0].clone();
    assert_eq!(b.flags(), Flags::empty());
    assert_eq!(b.send_to(), None);
    // Same address, another port: several sockets, not a NAT — unless the client asked for
    // symmetric routing with rport (RFC 3581).
    let other_port = Source::new("192.0.2.10:5080".parse().unwrap(), Transport::Udp);
    let raw = String::from_utf8(msg.as_wire().to_vec()).unwrap();
    let without_rport = Message::parse(raw.replacen(";rport", "", 1).into_bytes().into()).unwrap();
    assert!(without_rport.top_via().unwrap().unwrap().rport.is_none());
    let store = MemoryStore::default();
    registrar::register(
        &store,
        &without_rport,
        &other_port,
        at(T0),
        &Policy::default(),
    );
    let b = store.lookup(AOR, at(T0)).unwrap().bindings()[0].clone();
    assert_eq!(b.send_to(), None);
    let with_rport = msg.clone();
    let store = MemoryStore::default();
    registrar::register(&store, &with_rport, &other_port, at(T0), &Policy::default());
    let b = store.lookup(AOR, at(T0)).unwrap().bindings()[0].clone();
    assert_eq!(b.send_to(), Some(other_port));
    let policy = Policy {
        keepalive: Keepalive::Off,
        ..Policy::default()
    };
    let store = MemoryStore::default();
    let msg = register_msg("c3", 1, &["Contact: <sip:alice@10.0.0.7>"]);
    registrar::register(&store, &msg, &from_nat, at(T0), &policy);
    let b = store.lookup(AOR, at(T0)).unwrap().bindings()[0].clone();
    assert_eq!(b.flags(), Flags::NAT);
}

#[test]
fn rfc5627_pub_gruu_and_instance_are_returned() {
    // RFC 5627 §5 (registrar): a contact with +sip.instance from a UA that supports gruu gets
    // its pub-gruu, the AOR with a gr parameter naming the instance; the instance goes back.
    let store = MemoryStore::default();
    let msg = register_msg(
        "c1",
        1,
        &[
            "Contact: <sip:alice@192.0.2.10>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"",
            "Supported: gruu",
        ],
    );
    let r = registrar::register(&store, &msg, &source(), at(T0), &Policy::default());
    let resp = Message::parse(r.reply.unwrap().response).unwrap();
    let c = resp.contacts().next().unwrap().unwrap();
    let params = c.addr().unwrap().params;
    assert_eq!(
        params.get_str("pub-gruu"),
        Some("sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    );
    assert_eq!(
        c.sip_instance(),
        Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    );
    // A request to the GRUU reaches that instance's contacts only.
    let gruu = sip_parser::Uri::parse(
        b"sip:alice@example.com;gr=urn:uuid:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
    )
    .unwrap();
    let gr = sip_location::gruu::gruu_instance(&gruu).unwrap();
    let snap = store.lookup(AOR, at(T0)).unwrap();
    assert_eq!(snap.by_instance(gr).count(), 1);
    assert_eq!(snap.by_instance("urn:uuid:other").count(), 0);
}

#[test]
fn rfc5626_first_hop_must_support_outbound() {
    // RFC 5626 §6: a flow registered through a proxy whose Path lacks the `ob` parameter is
    // refused with 439 (First Hop Lacks Outbound Support); with `ob` it is accepted.
    let store = MemoryStore::default();
    let lines = |ob: &'static str| -> Vec<String> {
        vec![
            "Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-edge".into(),
            "Contact: <sip:line1@192.0.2.10>;+sip.instance=\"<urn:uuid:1>\";reg-id=1".into(),
            "Supported: outbound, path".into(),
            format!("Path: <sip:edge.example.com;lr{ob}>"),
        ]
    };
    for (ob, status) in [("", 439), (";ob", 200)] {
        let l = lines(ob);
        let refs: Vec<&str> = l.iter().map(String::as_str).collect();
        let msg = register_msg("c1", if ob.is_empty() { 1 } else { 2 }, &refs);
        let r = registrar::register(&store, &msg, &source(), at(T0), &Policy::default());
        assert_eq!(r.reply.unwrap().status, status, "Path ob={ob:?}");
    }
    let b = store.lookup(AOR, at(T0)).unwrap().bindings()[0].clone();
    assert!(b.flags().contains(Flags::OUTBOUND));
    assert_eq!(b.path(), "<sip:edge.example.com;lr;ob>");
    assert_eq!(b.flow_key(), Some(("<urn:uuid:1>", 1)));
}

#[test]
fn events_say_what_changed() {
    let store = MemoryStore::default();
    let p = Policy::default();
    let kinds = |r: &registrar::Registration| r.events.iter().map(|e| e.kind).collect::<Vec<_>>();
    let r = registrar::register(&store, &register_msg("c1", 1, PHONE), &source(), at(T0), &p);
    assert_eq!(kinds(&r), [EventKind::Saved]);
    let r = registrar::register(
        &store,
        &register_msg("c1", 2, PHONE),
        &source(),
        at(T0 + 1),
        &p,
    );
    assert_eq!(kinds(&r), [EventKind::Refreshed]);
    let r = registrar::register(
        &store,
        &register_msg("c1", 3, &["Contact: *", "Expires: 0"]),
        &source(),
        at(T0 + 2),
        &p,
    );
    assert_eq!(kinds(&r), [EventKind::Removed]);
    // A query writes nothing and reports nothing.
    let r = registrar::register(
        &store,
        &register_msg("c1", 4, &[]),
        &source(),
        at(T0 + 3),
        &p,
    );
    assert!(r.events.is_empty());
}
