//! Server-side matching and answers, message by message: RFC 2543 peers without the branch
//! cookie (§17.2.3), CANCEL of a TU-answered INVITE (§9.2), Max-Forwards (§16.3), a full
//! table, and an unmatched ACK.

use core::time::Duration;

use bytes::Bytes;
use sip_parser::{Message, ResponseBuilder, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardError, ForwardPlan, Listener, Output, ReceiveError, Target,
    TransactionLayer,
};

const ME: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.1:7000";

fn layer(max: usize) -> TransactionLayer {
    let cfg = Config {
        listeners: vec![Listener::new(Transport::Udp, ME.parse().unwrap())],
        max_transactions: max,
        shards: 1,
        ..Config::default()
    };
    TransactionLayer::new(&cfg, [1; 32])
}

fn flow() -> Flow {
    Flow::udp(ME.parse().unwrap(), PEER.parse().unwrap())
}

fn msg(s: &str) -> Message {
    Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
}

/// An RFC 2543 INVITE: a Via without the magic cookie (no branch at all).
const OLD_INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:7000\n\
Max-Forwards: 70\nTo: <sip:bob@127.0.0.1>\nFrom: <sip:alice@127.0.0.1>;tag=old1\n\
Call-ID: legacy-1\nCSeq: 5 INVITE\nContent-Length: 0\n\n";

/// The ACK of [`OLD_INVITE`] carrying the To tag `tag`.
fn old_ack(tag: &str) -> String {
    OLD_INVITE
        .replace("INVITE sip:bob@127.0.0.1 SIP", "ACK sip:bob@127.0.0.1 SIP")
        .replace("5 INVITE", "5 ACK")
        .replace(
            "To: <sip:bob@127.0.0.1>",
            &format!("To: <sip:bob@127.0.0.1>;tag={tag}"),
        )
}

fn s(x: &str) -> Duration {
    Duration::from_secs_f64(x.parse().unwrap())
}

#[test]
fn rfc2543_invite_retransmission_ack_and_cancel_match() {
    let l = layer(100);
    let mut out = Output::new();
    l.receive(s("1"), msg(OLD_INVITE), flow(), &mut out)
        .unwrap();
    let Some(Event::Request { tx, request, .. }) = out.events.pop() else {
        panic!("{out:?}")
    };
    // A retransmission, Request-URI written with another case of host: same transaction
    // (§19.1.4 comparison), absorbed.
    out.clear();
    let re = OLD_INVITE.replace(
        "sip:bob@127.0.0.1 SIP",
        "sip:bob@127.0.0.1;transport=udp SIP",
    );
    l.receive(
        s("1.1"),
        msg(&re.replace(";transport=udp", "")),
        flow(),
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty(), "{out:?}");
    // The TU answers 486; a retransmitted INVITE gets the 486 again.
    let busy = Message::parse(
        ResponseBuilder::new(&request, 486, "Busy Here")
            .to_tag("t9")
            .build(),
    )
    .unwrap();
    l.respond(s("1.2"), tx, &busy, &mut out).unwrap();
    assert_eq!(out.transmits.len(), 1);
    out.clear();
    l.receive(s("1.3"), msg(OLD_INVITE), flow(), &mut out)
        .unwrap();
    assert_eq!(out.transmits.len(), 1);
    assert!(out.transmits[0].payload.starts_with(b"SIP/2.0 486"));
    // Its ACK carries our To tag: matched (Completed → Confirmed), not passed up, and the
    // 486 is no longer retransmitted.
    out.clear();
    let ack = old_ack("t9");
    l.receive(s("1.4"), msg(&ack), flow(), &mut out).unwrap();
    assert!(out.is_empty(), "{out:?}");
    l.handle_timeout(s("3"), &mut out);
    assert!(
        out.transmits.is_empty(),
        "G kept retransmitting after the ACK: {out:?}"
    );
    // An ACK with another To tag is another transaction's (here: none): passed up.
    let stray = ack.replace("tag=t9", "tag=zz");
    l.receive(s("3.1"), msg(&stray), flow(), &mut out).unwrap();
    assert!(matches!(out.events[..], [Event::Ack { .. }]), "{out:?}");
    l.handle_timeout(s("60"), &mut out);
    assert!(l.is_empty());
}

#[test]
fn cancel_of_a_tu_answered_invite_gets_200_and_the_invite_487() {
    // §9.2.
    let l = layer(100);
    let mut out = Output::new();
    let inv = OLD_INVITE.replace(
        "Via: SIP/2.0/UDP 127.0.0.1:7000",
        "Via: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKc1",
    );
    l.receive(s("1"), msg(&inv), flow(), &mut out).unwrap();
    let Some(Event::Request { tx, .. }) = out.events.pop() else {
        panic!()
    };
    out.clear();
    let cancel = inv
        .replace(
            "INVITE sip:bob@127.0.0.1 SIP",
            "CANCEL sip:bob@127.0.0.1 SIP",
        )
        .replace("5 INVITE", "5 CANCEL");
    l.receive(s("1.1"), msg(&cancel), flow(), &mut out).unwrap();
    let sent: Vec<_> = out
        .transmits
        .iter()
        .map(|t| String::from_utf8_lossy(&t.payload[..11]).into_owned())
        .collect();
    assert_eq!(sent, ["SIP/2.0 200", "SIP/2.0 487"]);
    let m200 = Message::parse(out.transmits[0].payload.clone()).unwrap();
    assert_eq!(m200.cseq().unwrap().method, "CANCEL");
    assert!(matches!(out.events[..], [Event::Cancelled { tx: t }] if t == tx));
    // The CANCEL retransmitted: its 200 again, nothing more.
    out.clear();
    l.receive(s("1.2"), msg(&cancel), flow(), &mut out).unwrap();
    assert_eq!(out.transmits.len(), 1);
    assert!(out.events.is_empty());
    // A CANCEL for nothing: the TU decides (here: sees it as a new request).
    out.clear();
    l.receive(
        s("1.3"),
        msg(&cancel.replace("z9hG4bKc1", "z9hG4bKnone")),
        flow(),
        &mut out,
    )
    .unwrap();
    assert!(
        matches!(&out.events[..], [Event::Request { request, .. }] if request.method() == Some("CANCEL"))
    );
}

#[test]
fn max_forwards_zero_is_answered_483() {
    let l = layer(100);
    let mut out = Output::new();
    let inv = OLD_INVITE
        .replace(
            "Via: SIP/2.0/UDP 127.0.0.1:7000",
            "Via: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKm0",
        )
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    l.receive(s("1"), msg(&inv), flow(), &mut out).unwrap();
    let Some(Event::Request { tx, .. }) = out.events.pop() else {
        panic!()
    };
    let target = Target::to(Flow::udp(
        ME.parse().unwrap(),
        "127.0.0.1:7001".parse().unwrap(),
    ));
    let r = l.forward(
        s("1"),
        tx,
        ForwardPlan {
            targets: vec![target],
            ..Default::default()
        },
        &mut out,
    );
    assert_eq!(r, Err(ForwardError::TooManyHops));
    assert!(
        out.transmits
            .iter()
            .any(|t| t.payload.starts_with(b"SIP/2.0 483 Too Many Hops"))
    );
    assert!(
        !out.transmits
            .iter()
            .any(|t| t.payload.starts_with(b"INVITE"))
    );
}

#[test]
fn a_full_table_refuses_new_requests_and_recovers() {
    let l = layer(2);
    let mut out = Output::new();
    for i in 0..2 {
        let r = OLD_INVITE.replace("legacy-1", &format!("full-{i}"));
        l.receive(s("1"), msg(&r), flow(), &mut out).unwrap();
    }
    let third = OLD_INVITE.replace("legacy-1", "full-2");
    assert_eq!(
        l.receive(s("1"), msg(&third), flow(), &mut out),
        Err(ReceiveError::TableFull)
    );
    // Retransmissions of live transactions still match.
    let before = out.events.len();
    l.receive(
        s("1"),
        msg(&OLD_INVITE.replace("legacy-1", "full-0")),
        flow(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.events.len(), before);
    // The TU never answers: the layer's guard answers 500 and the table drains.
    l.handle_timeout(s("300"), &mut out);
    l.handle_timeout(s("400"), &mut out);
    assert!(l.is_empty());
    assert!(l.receive(s("400"), msg(&third), flow(), &mut out).is_ok());
}

#[test]
fn a_request_without_via_is_unmatchable() {
    let l = layer(10);
    let mut out = Output::new();
    let bad = OLD_INVITE.replace("Via: SIP/2.0/UDP 127.0.0.1:7000\n", "");
    assert_eq!(
        l.receive(s("1"), msg(&bad), flow(), &mut out),
        Err(ReceiveError::Unmatchable)
    );
}

#[test]
fn respond_built_answers_like_respond_without_reading_the_response_again() {
    let l = layer(100);
    let mut out = Output::new();
    l.receive(s("1"), msg(OLD_INVITE), flow(), &mut out)
        .unwrap();
    let Some(Event::Request { tx, request, .. }) = out.events.pop() else {
        panic!("{out:?}")
    };
    let busy = ResponseBuilder::new(&request, 486, "Busy Here")
        .to_tag("t9")
        .build();
    // A status outside 100-699 is refused and sends nothing.
    assert!(
        l.respond_built(s("1.1"), tx, 42, busy.clone(), &mut out)
            .is_err()
    );
    assert!(out.is_empty(), "{out:?}");
    l.respond_built(s("1.2"), tx, 486, busy, &mut out).unwrap();
    assert_eq!(out.transmits.len(), 1);
    out.clear();
    // A retransmitted INVITE gets the 486 again; the ACK with our To tag (read from the
    // bytes for this RFC 2543 peer) is absorbed.
    l.receive(s("1.3"), msg(OLD_INVITE), flow(), &mut out)
        .unwrap();
    assert!(out.transmits[0].payload.starts_with(b"SIP/2.0 486"));
    out.clear();
    let ack = old_ack("t9");
    l.receive(s("1.4"), msg(&ack), flow(), &mut out).unwrap();
    assert!(out.is_empty(), "{out:?}");
    l.handle_timeout(s("60"), &mut out);
    assert!(l.is_empty());
}
