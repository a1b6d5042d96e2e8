//! Property tests: generated messages round-trip, arbitrary bytes never panic, the editing
//! API keeps messages valid, stream framing ignores chunk boundaries.
#![allow(clippy::format_push_string)]

use bytes::Bytes;
use proptest::prelude::*;
use sip_parser::{Limits, Message, StreamDecoder, StreamItem};

/// `index_core_fields` changes no answer: every indexed accessor, `via_entry`, `validate`
/// and a Via stamp give what the unindexed message gives, and the two compare equal.
fn index_agrees(m: &Message<&[u8]>) -> Result<(), TestCaseError> {
    let mut x = m.clone();
    x.index_core_fields();
    prop_assert_eq!(&x, m);
    prop_assert_eq!(x.to(), m.to());
    prop_assert_eq!(x.from(), m.from());
    prop_assert_eq!(x.cseq(), m.cseq());
    prop_assert_eq!(x.top_via(), m.top_via());
    prop_assert_eq!(x.validate(), m.validate());
    for n in 0..4 {
        prop_assert_eq!(x.via_entry(n), m.via().nth(n));
    }
    let stamp = |m: &Message<&[u8]>| {
        let mut e = m.edit();
        let r = e.fill_via_received("192.0.2.99:4000".parse().unwrap());
        (r, e.to_bytes())
    };
    prop_assert_eq!(stamp(&x), stamp(m));
    Ok(())
}

/// Exercises every accessor; must never panic whatever the input.
fn touch_everything<B: AsRef<[u8]>>(m: &Message<B>) {
    let _ = (
        m.method(),
        m.request_uri(),
        m.request_uri_parsed(),
        m.status(),
        m.reason(),
        m.body(),
    );
    let _ = (
        m.call_id(),
        m.cseq(),
        m.from(),
        m.to(),
        m.max_forwards(),
        m.content_type(),
        m.expires(),
    );
    let _ = (
        m.min_expires(),
        m.event(),
        m.subscription_state(),
        m.user_agent(),
        m.server(),
    );
    for v in m.via() {
        let _ = v;
    }
    for c in m.contacts().flatten() {
        let _ = (c.expires(), c.q(), c.sip_instance(), c.reg_id());
    }
    let _ =
        m.routes().count() + m.record_routes().count() + m.paths().count() + m.reasons().count();
    let _ =
        m.require().count() + m.supported().count() + m.allow().count() + m.unsupported().count();
    for a in m
        .authorization()
        .chain(m.www_authenticate())
        .chain(m.proxy_authorization())
        .flatten()
    {
        let _ = a.params().count();
    }
    let _ = m.validate();
    let _ = m.headers().count();
    let mut e = m.edit();
    let _ = e.pop_route();
    let _ = e.remove_top_via();
    let _ = e.decrement_max_forwards();
    e.prepend_via("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx");
    let out = e.to_bytes();
    assert_eq!(out.len(), e.len());
    let _ = sip_parser::ResponseBuilder::new(m, 400, "Bad Request").build();
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, String>> {
    let mut d = StreamDecoder::new(Limits::default());
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c);
        loop {
            match d.decode() {
                Ok(Some(StreamItem::Message(m))) => out.push(Ok(m.as_wire().to_vec())),
                Ok(Some(other)) => out.push(Err(format!("{other:?}"))),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    if e.fatal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Gen {
    method: String,
    user: String,
    host: String,
    branch: String,
    from_tag: String,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    max_forwards: u8,
    routes: Vec<String>,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
    compact: bool,
    fold: bool,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,15}"
}
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){1,2}",
        "(1?[0-9]{1,2}\\.){3}1?[0-9]{1,2}",
        Just("[2001:db8::1]".to_string())
    ]
}

fn message() -> impl Strategy<Value = Gen> {
    (
        (
            prop_oneof![
                Just("INVITE"),
                Just("REGISTER"),
                Just("OPTIONS"),
                Just("BYE"),
                Just("X-CUSTOM")
            ],
            "[a-z0-9._-]{1,12}",
            host(),
        ),
        (
            token(),
            token(),
            proptest::option::of(token()),
            "[A-Za-z0-9.-]{1,20}(@[a-z0-9.]{1,10})?",
        ),
        (
            any::<u32>(),
            any::<u8>(),
            proptest::collection::vec(host(), 0..3),
        ),
        proptest::collection::vec(("X-[A-Za-z]{1,8}", "[ -~&&[^\\\\]]{0,30}"), 0..4),
        proptest::collection::vec(any::<u8>(), 0..200),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (m, user, host),
                (branch, from_tag, to_tag, call_id),
                (cseq, mf, routes),
                extra,
                body,
                (compact, fold),
            )| Gen {
                method: m.to_string(),
                user,
                host,
                branch: format!("z9hG4bK{branch}"),
                from_tag,
                to_tag,
                call_id,
                cseq,
                max_forwards: mf,
                routes,
                extra: extra
                    .into_iter()
                    .map(|(n, v)| (n, v.trim().to_string()))
                    .collect(),
                body,
                compact,
                fold,
            },
        )
}

fn render(g: &Gen) -> Vec<u8> {
    let n = |long: &'static str, short: &'static str| if g.compact { short } else { long };
    let sep = if g.fold { "\r\n " } else { " " };
    let mut s = format!("{} sip:{}@{} SIP/2.0\r\n", g.method, g.user, g.host);
    s += &format!(
        "{}: SIP/2.0/UDP{sep}{};branch={}\r\n",
        n("Via", "v"),
        g.host,
        g.branch
    );
    s += &format!("Max-Forwards: {}\r\n", g.max_forwards);
    for r in &g.routes {
        s += &format!("Route: <sip:{r};lr>\r\n");
    }
    s += &format!("{}: <sip:{}@{}>", n("To", "t"), g.user, g.host);
    if let Some(t) = &g.to_tag {
        s += &format!(";tag={t}");
    }
    s += "\r\n";
    s += &format!(
        "{}: \"A \\\"q\\\"\" <sip:a@{}>;{sep}tag={}\r\n",
        n("From", "f"),
        g.host,
        g.from_tag
    );
    s += &format!("{}: {}\r\n", n("Call-ID", "i"), g.call_id);
    s += &format!("CSeq: {}{sep}{}\r\n", g.cseq, g.method);
    for (k, v) in &g.extra {
        s += &format!("{k}: {v}\r\n");
    }
    s += &format!("{}: {}\r\n\r\n", n("Content-Length", "l"), g.body.len());
    let mut v = s.into_bytes();
    v.extend_from_slice(&g.body);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn accepted_sip_uris_hold_only_uri_characters(tail in proptest::collection::vec(prop_oneof![
        Just(b'a'), Just(b'1'), Just(b'@'), Just(b':'), Just(b';'), Just(b'='), Just(b'?'), Just(b'%'),
        Just(b'['), Just(b']'), Just(b'.'), Just(b' '), Just(b'<'), Just(b'"'), Just(b'\\'), Just(0x80u8),
        Just(b'\r'), Just(b'&'), Just(b'{'), Just(b'|'), Just(b'~'), Just(b'F'),
    ], 0..24), sips in any::<bool>()) {
        let mut uri = if sips { b"sips:".to_vec() } else { b"sip:".to_vec() };
        uri.extend_from_slice(&tail);
        if let Ok(u) = sip_parser::Uri::parse(&uri) {
            prop_assert!(uri.iter().all(|&b| b > 0x20 && b < 0x7f && !b"<>\"\\^`{}|".contains(&b)), "{:?}", String::from_utf8_lossy(&uri));
            prop_assert!(!u.host.is_empty());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::parse_slice(&data) {
            touch_everything(&m);
            index_agrees(&m)?;
        }
        let _ = decode_all(&[&data]);
    }

    #[test]
    fn mutated_messages_never_panic(g in message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut data = render(&g);
        for (i, b) in flips {
            let at = i.index(data.len());
            data[at] = b;
        }
        if let Ok(m) = Message::parse_slice(&data) {
            touch_everything(&m);
            index_agrees(&m)?;
        }
    }

    #[test]
    fn generated_messages_round_trip(g in message()) {
        let wire = render(&g);
        let m = Message::parse(Bytes::from(wire.clone())).unwrap();
        prop_assert_eq!(m.as_wire(), &wire[..]);
        prop_assert_eq!(m.method(), Some(g.method.as_str()));
        let uri = m.request_uri_parsed().unwrap().unwrap();
        prop_assert_eq!(uri.user, Some(g.user.as_bytes()));
        prop_assert_eq!(uri.host, g.host.as_str());
        let via = m.top_via().unwrap().unwrap();
        prop_assert_eq!(via.branch, Some(g.branch.as_str()));
        prop_assert_eq!(m.call_id(), Some(g.call_id.as_str()));
        let cseq = m.cseq().unwrap();
        prop_assert_eq!((cseq.seq, cseq.method), (g.cseq, g.method.as_str()));
        prop_assert_eq!(m.from().unwrap().tag(), Some(g.from_tag.as_str()));
        prop_assert_eq!(m.to().unwrap().tag(), g.to_tag.as_deref());
        prop_assert_eq!(m.max_forwards().unwrap(), Some(g.max_forwards));
        prop_assert_eq!(m.routes().count(), g.routes.len());
        for (k, v) in &g.extra {
            prop_assert!(m.headers_named(k).any(|h| h.value == v.as_bytes()));
        }
        prop_assert_eq!(m.body(), &g.body[..]);
        prop_assert!(m.validate().is_ok(), "{:?}", m.validate());
        prop_assert_eq!(&m.edit().to_bytes()[..], &wire[..]);
    }

    #[test]
    fn edits_keep_messages_valid(g in message(), ops in proptest::collection::vec(0u8..8, 0..10)) {
        prop_assume!(g.max_forwards > 10);
        let wire = render(&g);
        let m = Message::parse(Bytes::from(wire)).unwrap();
        let mut e = m.edit();
        let (mut vias, mut routes, mut rrs, mut mf) = (1usize, g.routes.len(), 0usize, g.max_forwards);
        let mut body = g.body.clone();
        for op in ops {
            match op {
                0 => { e.prepend_via(format!("SIP/2.0/TCP proxy{vias}.example.com;branch=z9hG4bK{vias}")); vias += 1; }
                1 => if vias > 1 { prop_assert!(e.remove_top_via()); vias -= 1; },
                2 => { prop_assert_eq!(e.decrement_max_forwards(), Ok(mf - 1)); mf -= 1; }
                3 => { e.prepend_record_route(format!("<sip:rr{rrs}.example.com;lr>")); rrs += 1; }
                4 => { let popped = e.pop_route(); prop_assert_eq!(popped.is_some(), routes > 0); routes = routes.saturating_sub(1); }
                5 => { e.set_request_uri("sip:new@example.org;transport=tcp"); }
                6 => { body = b"v=0\r\n".to_vec(); e.set_body(Bytes::from(body.clone()), Some("application/sdp")); }
                _ => { e.replace_header("X-Edited", "yes"); }
            }
        }
        let out = Message::parse(e.to_bytes()).unwrap();
        prop_assert!(out.validate().is_ok(), "{:?}\n{}", out.validate(), String::from_utf8_lossy(out.as_wire()));
        prop_assert_eq!(out.via().count(), vias);
        prop_assert_eq!(out.routes().count(), routes);
        prop_assert_eq!(out.record_routes().count(), rrs);
        prop_assert_eq!(out.max_forwards().unwrap(), Some(mf));
        prop_assert_eq!(out.body(), &body[..]);
        prop_assert_eq!(out.content_length(), Some(body.len() as u32));
        prop_assert_eq!(out.call_id(), Some(g.call_id.as_str()));
    }

    #[test]
    fn stream_chunking_is_irrelevant(gs in proptest::collection::vec(message(), 1..4), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12), pings in any::<bool>()) {
        let mut wire = Vec::new();
        for g in &gs {
            if pings { wire.extend_from_slice(b"\r\n\r\n"); }
            wire.extend_from_slice(&render(g));
        }
        let whole = decode_all(&[&wire]);
        prop_assert_eq!(whole.iter().filter(|r| r.is_ok()).count(), gs.len());
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points { chunks.push(&wire[last..p]); last = p; }
        chunks.push(&wire[last..]);
        prop_assert_eq!(decode_all(&chunks), whole);
    }

    #[test]
    fn responses_built_from_requests_are_valid(g in message(), status in 100u16..700) {
        let m = Message::parse(Bytes::from(render(&g))).unwrap();
        let r = Message::parse(sip_parser::ResponseBuilder::new(&m, status, "Reason").build()).unwrap();
        prop_assert!(r.validate().is_ok(), "{:?}", r.validate());
        prop_assert_eq!(r.status(), Some(status));
        prop_assert_eq!(r.call_id(), m.call_id());
        prop_assert_eq!(r.cseq().unwrap(), m.cseq().unwrap());
        prop_assert_eq!(r.top_via().unwrap(), m.top_via().unwrap());
        let tag = r.to().unwrap().tag();
        if status > 100 { prop_assert!(tag.is_some()); } else { prop_assert_eq!(tag, m.to().unwrap().tag()); }
    }
}

/// Pieces of Via field values: well-formed parts, and the characters that split a list or
/// hide a comma (quotes, angle brackets, `[…]` references), LWS and folds.
fn via_piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("SIP/2.0/UDP "),
        Just("SIP / 2.0 / TCP "),
        Just("SIP/2.0/"),
        Just("host.example.com"),
        Just("192.0.2.1:5060"),
        Just("[2001:db8::1]"),
        Just(":5070"),
        Just(";branch=z9hG4bK776"),
        Just(";rport"),
        Just(";rport=5061"),
        Just(";received=[2001:db8::9]"),
        Just(";received=[2001,db8]"),
        Just(";x=\"a,b\""),
        Just(";x=\"a"),
        Just(";ttl=1"),
        Just(";ttl=300"),
        Just(";maddr=224.2.0.1"),
        Just(", "),
        Just(","),
        Just(" "),
        Just("\r\n "),
        Just("<sip:a,b>"),
        Just("\""),
        Just("["),
        Just(";"),
        Just("="),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// `top_via` reads the first Via entry where it starts; the list accessor splits the
    /// field first. Whatever the field holds, they agree: the same entry, or both an error.
    #[test]
    fn top_via_is_the_first_entry_of_the_list(
        head in prop_oneof![Just(""), Just("SIP/2.0/UDP host"), Just(" SIP/2.0/TCP 192.0.2.1:5060")],
        pieces in proptest::collection::vec(via_piece(), 0..8),
    ) {
        let value = format!("{head}{}", pieces.concat());
        let wire = format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {value}\r\nCall-ID: x\r\n\r\n");
        if let Ok(m) = Message::parse_slice(wire.as_bytes()) {
            index_agrees(&m)?;
            match (m.top_via(), m.via().next()) {
                (Ok(Some(a)), Some(Ok(b))) => prop_assert_eq!(a, b, "{:?}", value),
                (Err(a), Some(Err(b))) => prop_assert_eq!(a, b, "{:?}", value),
                (a, b) => prop_assert!(false, "{:?}: top_via {:?}, list {:?}", value, a, b),
            }
        }
    }
}
