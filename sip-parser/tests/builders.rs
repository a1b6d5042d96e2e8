//! Property tests for the builders: whatever well-formed values go in, the output parses,
//! validates, and gives the same values back; CANCEL and ACK derived from any such INVITE
//! keep what RFC 3261 §9.1 and §17.1.1.3 require.

use bytes::Bytes;
use proptest::prelude::*;
use sip_parser::{Message, RequestBuilder};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,15}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z][a-z0-9]{0,6}){0,3}",
        (any::<[u8; 4]>()).prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        (any::<[u16; 8]>()).prop_map(|s| format!(
            "[{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}]",
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
        )),
    ]
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[a-z0-9._+-]{1,12}"),
        host(),
        proptest::option::of(1u16..),
    )
        .prop_map(|(user, host, port)| {
            let mut s = String::from("sip:");
            if let Some(u) = user {
                s += &u;
                s.push('@');
            }
            s += &host;
            if let Some(p) = port {
                s.push(':');
                s += &p.to_string();
            }
            s
        })
}

fn address() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[A-Za-z][A-Za-z ]{0,10}[A-Za-z]"),
        sip_uri(),
    )
        .prop_map(|(name, uri)| match name {
            Some(n) => format!("\"{n}\" <{uri}>"),
            None => format!("<{uri}>"),
        })
}

#[derive(Debug, Clone)]
struct Inputs {
    method: String,
    uri: String,
    vias: Vec<String>,
    routes: Vec<String>,
    max_forwards: u8,
    from: String,
    from_tag: String,
    to: String,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    contact: Option<String>,
    extra: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn inputs() -> impl Strategy<Value = Inputs> {
    let method = prop_oneof![
        Just("INVITE".to_string()),
        Just("OPTIONS".to_string()),
        Just("BYE".to_string()),
        Just("REGISTER".to_string()),
        "[A-Z]{1,10}",
    ];
    let via = (host(), proptest::option::of(1u16..), token()).prop_map(|(h, p, b)| match p {
        Some(p) => format!("SIP/2.0/UDP {h}:{p};branch=z9hG4bK{b}"),
        None => format!("SIP/2.0/TCP {h};branch=z9hG4bK{b};rport"),
    });
    let route = sip_uri().prop_map(|u| format!("<{u};lr>"));
    (
        (method, sip_uri(), proptest::collection::vec(via, 1..4)),
        (
            proptest::collection::vec(route, 0..4),
            any::<u8>(),
            address(),
            token(),
            address(),
            proptest::option::of(token()),
        ),
        (
            "[A-Za-z0-9.!%*_+`'~()<>:\\\\\"/?{}-]{1,20}(@[A-Za-z0-9.-]{1,12})?",
            any::<u32>(),
            proptest::option::of(address()),
            proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,20}[!-~]"), 0..3),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        ),
    )
        .prop_map(
            |(
                (method, uri, vias),
                (routes, max_forwards, from, from_tag, to, to_tag),
                (call_id, cseq, contact, extra, body),
            )| Inputs {
                method,
                uri,
                vias,
                routes,
                max_forwards,
                from,
                from_tag,
                to,
                to_tag,
                call_id,
                cseq,
                contact,
                extra,
                body,
            },
        )
}

fn build(i: &Inputs) -> Bytes {
    let mut b = RequestBuilder::new(&i.method, &i.uri);
    for v in &i.vias {
        b.via(v);
    }
    for r in &i.routes {
        b.route(r);
    }
    b.max_forwards(i.max_forwards)
        .from(&i.from, Some(&i.from_tag))
        .to(&i.to, i.to_tag.as_deref())
        .call_id(&i.call_id)
        .cseq(i.cseq);
    if let Some(c) = &i.contact {
        b.contact(c);
    }
    for (n, v) in &i.extra {
        b.header(n, v);
    }
    if let Some(body) = &i.body {
        b.body("application/octet-stream", body);
    }
    let out = b.build();
    assert_eq!(out.len(), b.len());
    out
}

proptest! {
    #[test]
    fn built_requests_parse_validate_and_round_trip(i in inputs()) {
        let m = Message::parse(build(&i)).unwrap();
        prop_assert_eq!(m.validate(), Ok(()));
        prop_assert_eq!(m.method(), Some(i.method.as_str()));
        prop_assert_eq!(m.request_uri(), Some(i.uri.as_bytes()));
        let vias: Vec<_> = m.via().map(|v| v.unwrap().branch.unwrap().to_string()).collect();
        let want: Vec<_> = i.vias.iter().map(|v| v[v.find("z9hG4bK").unwrap()..].trim_end_matches(";rport").to_string()).collect();
        prop_assert_eq!(vias, want);
        let routes: Vec<_> = m.routes().map(|r| r.unwrap().raw_uri.to_vec()).collect();
        let want: Vec<_> = i.routes.iter().map(|r| r.as_bytes()[1..r.len() - 1].to_vec()).collect();
        prop_assert_eq!(routes, want);
        prop_assert_eq!(m.max_forwards().unwrap(), Some(i.max_forwards));
        let from = m.from().unwrap();
        prop_assert_eq!(from.tag(), Some(i.from_tag.as_str()));
        prop_assert_eq!(from.raw_uri, &i.from.as_bytes()[i.from.find('<').unwrap() + 1..i.from.len() - 1]);
        let to = m.to().unwrap();
        prop_assert_eq!(to.tag(), i.to_tag.as_deref());
        prop_assert_eq!(m.call_id(), Some(i.call_id.as_str()));
        let cseq = m.cseq().unwrap();
        prop_assert_eq!((cseq.seq, cseq.method), (i.cseq, i.method.as_str()));
        prop_assert_eq!(m.contacts().count(), usize::from(i.contact.is_some()));
        for (n, v) in &i.extra {
            prop_assert!(m.headers_named(n).any(|h| h.value == v.trim_start().as_bytes()));
        }
        prop_assert_eq!(m.body(), i.body.as_deref().unwrap_or_default());
    }

    /// A CANCEL and an ACK derived from any built INVITE keep what §9.1 and §17.1.1.3 ask.
    #[test]
    fn cancel_and_ack_of_any_invite(mut i in inputs(), resp_tag in token()) {
        i.method = "INVITE".into();
        i.to_tag = None;
        let invite = Message::parse(build(&i)).unwrap();
        let resp = Message::parse(Bytes::from(format!(
            "SIP/2.0 486 Busy Here\r\nVia: {}\r\nTo: {};tag={resp_tag}\r\nFrom: {};tag={}\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\n\r\n",
            i.vias[0], i.to, i.from, i.from_tag, i.call_id, i.cseq
        ))).unwrap();
        for (method, wire) in [
            ("CANCEL", RequestBuilder::cancel(&invite).unwrap().build()),
            ("ACK", RequestBuilder::ack(&invite, &resp).unwrap().build()),
        ] {
            let m = Message::parse(wire).unwrap();
            prop_assert_eq!(m.validate(), Ok(()));
            prop_assert_eq!(m.method(), Some(method));
            prop_assert_eq!(m.request_uri(), invite.request_uri());
            prop_assert_eq!(m.call_id(), invite.call_id());
            prop_assert_eq!(m.from().unwrap(), invite.from().unwrap());
            prop_assert_eq!(m.cseq().unwrap().seq, i.cseq);
            prop_assert_eq!(m.cseq().unwrap().method, method);
            let vias: Vec<_> = m.via().map(Result::unwrap).collect();
            prop_assert_eq!(vias, vec![invite.top_via().unwrap().unwrap()]);
            let routes: Vec<_> = m.routes().map(Result::unwrap).collect();
            let want: Vec<_> = invite.routes().map(Result::unwrap).collect();
            prop_assert_eq!(routes, want);
            prop_assert!(m.body().is_empty());
            let to_tag = m.to().unwrap().tag();
            prop_assert_eq!(to_tag, (method == "ACK").then_some(resp_tag.as_str()));
        }
    }
}

fn via_value() -> impl Strategy<Value = String> {
    (
        host(),
        proptest::option::of(1u16..),
        token(),
        any::<bool>(),
        proptest::option::of(Just("received=10.9.8.7")),
        proptest::option::of(host().prop_filter("maddr", |h| !h.starts_with('['))),
    )
        .prop_map(|(h, port, branch, rport, received, maddr)| {
            let mut v = format!("SIP/2.0/UDP {h}");
            if let Some(p) = port {
                v.push(':');
                v += &p.to_string();
            }
            v += ";branch=z9hG4bK";
            v += &branch;
            if rport {
                v += ";rport";
            }
            if let Some(r) = received {
                v.push(';');
                v += r;
            }
            if let Some(m) = maddr {
                v += ";maddr=";
                v += &m;
            }
            v
        })
}

fn source() -> impl Strategy<Value = std::net::SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| (ip, p).into()),
        (any::<[u16; 8]>(), any::<u16>()).prop_map(|(ip, p)| (
            std::net::Ipv6Addr::from(ip).to_canonical(),
            p
        )
            .into()),
    ]
}

proptest! {
    /// Filling received/rport on receipt (RFC 3261 §18.2.1, RFC 3581 §4) records exactly what
    /// routing the response needs: the Via alone then leads where the Via plus the source
    /// would (§18.2.2, RFC 3581 §5), and the other Vias stay byte-exact.
    #[test]
    fn filled_via_routes_like_the_source(top in via_value(), second in via_value(), src in source()) {
        use sip_parser::Transport;
        let raw = format!(
            "OPTIONS sip:a@example.com SIP/2.0\r\nVia: {top}, {second}\r\nTo: <sip:a@example.com>\r\n\
             From: <sip:b@example.com>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        let m = Message::parse(Bytes::from(raw)).unwrap();
        let before = m.top_via().unwrap().unwrap();
        let want = before.response_target(Transport::Udp, Some(src));
        let mut e = m.edit();
        let changed = e.fill_via_received(src).unwrap();
        let out = Message::parse(e.to_bytes()).unwrap();
        prop_assert_eq!(out.validate(), Ok(()));
        let vias: Vec<_> = out.via().map(Result::unwrap).collect();
        prop_assert_eq!(vias.len(), 2);
        prop_assert_eq!(vias[1].raw, second.as_bytes());
        prop_assert_eq!(vias[0].response_target(Transport::Udp, None), want);
        prop_assert_eq!(changed, vias[0].raw != top.as_bytes());
        prop_assert_eq!(vias[0].branch, before.branch);
        if before.rport.is_some() {
            prop_assert_eq!(vias[0].rport, Some(Some(src.port())));
        }
    }
}

/// A valid INVITE to mutate.
const TEMPLATE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK1;rport, SIP/2.0/TCP p0;branch=z9hG4bK0\r\n\
    Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
    Record-Route: <sip:p0.example.com;lr>\r\nMax-Forwards: 70\r\n\
    To: Bob <sip:bob@biloxi.example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928\r\n\
    Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nProxy-Require: foo\r\n\
    Proxy-Authorization: Digest username=\"a\", realm=\"r\"\r\nContent-Length: 4\r\n\r\nv=0\n";

proptest! {
    /// Whatever a framed message holds, the new builders and edits neither panic nor
    /// disagree with their own length; what they build from a valid request stays valid.
    #[test]
    fn new_apis_survive_mutated_messages(
        cuts in proptest::collection::vec((0usize..TEMPLATE.len(), 0usize..8, proptest::collection::vec(any::<u8>(), 0..6)), 0..4),
        src in source(),
    ) {
        use sip_parser::{reason_phrase, ResponseBuilder, Transport};
        let mut raw = TEMPLATE.to_vec();
        for (at, del, ins) in cuts {
            let at = at.min(raw.len());
            let end = (at + del).min(raw.len());
            raw.splice(at..end, ins);
        }
        let Ok(m) = Message::parse(Bytes::from(raw)) else { return Ok(()) };
        let valid = m.validate().is_ok();
        if let Ok(c) = RequestBuilder::cancel(&m) {
            let c = Message::parse(c.build()).unwrap();
            if valid {
                prop_assert_eq!(c.validate(), Ok(()));
            }
            if let Ok(a) = RequestBuilder::ack(&m, &c) {
                prop_assert_eq!(a.build().len(), a.len());
            }
        }
        let _ = m.loop_hash();
        if let Ok(Some(v)) = m.top_via() {
            for t in Transport::ALL {
                let _ = (v.response_target(t, Some(src)), v.response_target(t, None));
            }
        }
        let mut e = m.edit();
        let stamped = e.fill_via_received(src);
        e.set_method("OPTIONS");
        let _ = e.pop_last_route();
        e.prepend_header("Path", "<sip:edge;lr>");
        e.remove_header_if("Proxy-Authorization", |_| true);
        let out = e.to_bytes();
        prop_assert_eq!(out.len(), e.len());
        let out = Message::parse(out).unwrap();
        if valid && stamped.is_ok() {
            prop_assert_eq!(out.validate(), Ok(()));
        }
        for status in [100, 180, 200, 486] {
            let mut r = ResponseBuilder::new(&m, status, reason_phrase(status));
            r.copy_record_route().fill_via_received(src);
            let wire = r.build();
            prop_assert!(Message::parse(wire).is_ok());
        }
    }
}

/// The fuzz finding of 2026-12-03: a request at the header-count limit (128 lines, most of them
/// `v:` Vias) parses; a proxy's edits (`Path`, a second Via) push it past that limit. The edited
/// bytes are still a well-formed message: they parse with limits that leave room for what the
/// edits add, and the default limits refuse them with `TooManyHeaders`, never anything worse.
#[test]
fn edits_may_pass_the_limits_the_message_was_parsed_with() {
    use sip_parser::{Limits, ParseError};
    let mut raw = String::from("REGISTER sip:example.com SIP/2.0\r\n");
    raw.extend(
        (0..123).map(|i| format!("v: SIP/2.0/UDP 192.0.2.{};branch=z9hG4bK{i}\r\n", i % 250)),
    );
    raw.push_str("f: <sip:a@example.com>;tag=1\r\nt: <sip:a@example.com>\r\n");
    raw.push_str("i: limit-edge\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n");
    let m = Message::parse(Bytes::from(raw)).expect("128 header lines are within the limits");
    let mut e = m.edit();
    e.prepend_header("Path", "<sip:127.0.0.1;lr>");
    e.prepend_via("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKedge");
    let out = e.to_bytes();
    assert_eq!(out.len(), e.len());
    assert!(matches!(
        Message::parse(out.clone()),
        Err(ParseError::TooManyHeaders { .. })
    ));
    let roomy = Limits {
        max_headers: 130,
        ..Limits::DEFAULT
    };
    let edited = Message::parse_with(out, &roomy).expect("the edited message is well formed");
    assert_eq!(edited.via().count(), 124);
    assert!(edited.validate().is_ok());
}
