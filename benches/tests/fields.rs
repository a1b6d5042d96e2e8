//! Every implementation must read the right values from every corpus message, or reject the
//! message with a rejection listed in `sip_benches::impls::KNOWN_REJECTIONS`.

use std::collections::BTreeMap;

use sip_benches::Outcome;
use sip_benches::corpus;
use sip_benches::impls::KNOWN_REJECTIONS;
use sip_benches::sink::{Field, Record};

type Reader = fn(&bytes::Bytes, &mut Record) -> Outcome;

fn readers() -> Vec<(&'static str, Reader)> {
    vec![
        #[cfg(feature = "ours")]
        ("sip-parser", sip_benches::ours::proxy_fields_into::<Record>),
        (
            "rsip",
            sip_benches::peers::rsip::proxy_fields_into::<Record>,
        ),
        (
            "rsipstack",
            sip_benches::peers::rsipstack::proxy_fields_into::<Record>,
        ),
        (
            "sipx-sip",
            sip_benches::peers::sipx::proxy_fields_into::<Record>,
        ),
        (
            "ezk-sip-types",
            sip_benches::peers::ezk::proxy_fields_into::<Record>,
        ),
    ]
}

/// (message, start: method or status, branch, Call-ID, CSeq, From tag, To tag, Max-Forwards,
/// has Route)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    (u32, &'static str),
    Option<&'static str>,
    Option<&'static str>,
    Option<u32>,
    bool,
);

const DIALOG: &str = "3848276298220188511@atlanta.example.com";
const REG: &str = "1j9FpLxk3uxtm8tn@203.0.113.4";
const PRES: &str = "2010128@198.51.100.23";

const EXPECTED: &[Row] = &[
    (
        "invite_sdp",
        "INVITE",
        "z9hG4bK2d4790.1",
        DIALOG,
        (314_159, "INVITE"),
        Some("9fxced76sl"),
        None,
        Some(68),
        true,
    ),
    (
        "ringing_180",
        "180",
        "z9hG4bK2d4790.1",
        DIALOG,
        (314_159, "INVITE"),
        Some("9fxced76sl"),
        Some("8321234356"),
        None,
        false,
    ),
    (
        "ok_200_sdp",
        "200",
        "z9hG4bK2d4790.1",
        DIALOG,
        (314_159, "INVITE"),
        Some("9fxced76sl"),
        Some("8321234356"),
        None,
        false,
    ),
    (
        "ack",
        "ACK",
        "z9hG4bKnashds9",
        DIALOG,
        (314_159, "ACK"),
        Some("9fxced76sl"),
        Some("8321234356"),
        Some(70),
        true,
    ),
    (
        "bye",
        "BYE",
        "z9hG4bK-3a9c2f71e",
        DIALOG,
        (231, "BYE"),
        Some("8321234356"),
        Some("9fxced76sl"),
        Some(70),
        true,
    ),
    (
        "register_auth",
        "REGISTER",
        "z9hG4bKnashd92",
        REG,
        (2, "REGISTER"),
        Some("ja743ks76zlflH"),
        None,
        Some(70),
        false,
    ),
    (
        "unauthorized_401",
        "401",
        "z9hG4bKnashd91",
        REG,
        (1, "REGISTER"),
        Some("ja743ks76zlflH"),
        Some("1410948204"),
        None,
        false,
    ),
    (
        "options",
        "OPTIONS",
        "z9hG4bK4f2b.c9a1e3d7000000000000000000000000.0",
        "5f6e1d2c-26112401-7b3a@192.0.2.10",
        (102, "OPTIONS"),
        Some("a2b3c4d5e6"),
        None,
        Some(70),
        false,
    ),
    (
        "subscribe",
        "SUBSCRIBE",
        "z9hG4bK83749.1",
        PRES,
        (17, "SUBSCRIBE"),
        Some("xfg9"),
        None,
        Some(69),
        true,
    ),
    (
        "notify",
        "NOTIFY",
        "z9hG4bK4cd42a.1",
        PRES,
        (8775, "NOTIFY"),
        Some("ffd2"),
        Some("xfg9"),
        Some(69),
        false,
    ),
    (
        "invite_compact_folded",
        "INVITE",
        "z9hG4bK-d8754z-1",
        "a84b4c76e66710@pc33.atlanta.example.com",
        (4711, "INVITE"),
        Some("1928301774"),
        None,
        Some(69),
        false,
    ),
];

fn expected(row: &Row, body_len: usize) -> BTreeMap<Field, String> {
    let (_, start, branch, call_id, (seq, method), from_tag, to_tag, max_forwards, route) = *row;
    let mut m = BTreeMap::new();
    if start.as_bytes()[0].is_ascii_digit() {
        m.insert(Field::Status, start.to_owned());
    } else {
        m.insert(Field::Method, start.to_owned());
        m.insert(Field::RequestUri, "<present>".to_owned());
    }
    m.insert(Field::TopViaBranch, branch.to_owned());
    m.insert(Field::CallId, call_id.to_owned());
    m.insert(Field::CSeqSeq, seq.to_string());
    m.insert(Field::CSeqMethod, method.to_owned());
    if let Some(t) = from_tag {
        m.insert(Field::FromTag, t.to_owned());
    }
    if let Some(t) = to_tag {
        m.insert(Field::ToTag, t.to_owned());
    }
    if let Some(n) = max_forwards {
        m.insert(Field::MaxForwards, n.to_string());
    }
    if route {
        m.insert(Field::FirstRoute, "<present>".to_owned());
    }
    m.insert(Field::ContentLength, body_len.to_string());
    m
}

#[test]
fn every_reader_reads_the_right_fields_or_is_a_known_rejection() {
    let messages = corpus::load();
    assert_eq!(messages.len(), EXPECTED.len());
    let mut failures = Vec::new();
    let mut rejections = Vec::new();
    for (msg, row) in messages.iter().zip(EXPECTED) {
        assert_eq!(msg.name, row.0);
        let head_end = memchr::memmem::find(&msg.bytes, b"\r\n\r\n").unwrap() + 4;
        let want = expected(row, msg.bytes.len() - head_end);
        for (name, read) in readers() {
            let mut got = Record::default();
            match read(&msg.bytes, &mut got) {
                Ok(()) if got.0 == want => {}
                Ok(()) => failures.push(format!(
                    "{name} on {}: got {:?}, want {:?}",
                    msg.name, got.0, want
                )),
                Err(step) => rejections.push((name, msg.name, step)),
            }
        }
    }
    for r in &rejections {
        eprintln!("rejected: {} on {} at {}", r.0, r.1, r.2);
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let unknown: Vec<_> = rejections
        .iter()
        .filter(|r| !KNOWN_REJECTIONS.contains(r))
        .collect();
    assert!(
        unknown.is_empty(),
        "rejections not in KNOWN_REJECTIONS: {unknown:?}"
    );
}
