//! Smoke: a UAC layer, a proxy layer and a UAS layer passing messages by hand.

use core::time::Duration;

use bytes::Bytes;
use sip_parser::{Message, RequestBuilder, ResponseBuilder, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardPlan, Listener, Output, Target, TransactionLayer, Transmit,
};

fn layer(addr: &str) -> TransactionLayer {
    let cfg = Config {
        listeners: vec![Listener::new(Transport::Udp, addr.parse().unwrap())],
        shards: 4,
        ..Config::default()
    };
    TransactionLayer::new(&cfg, [7; 32])
}

fn deliver(to: &TransactionLayer, now: Duration, t: &Transmit, out: &mut Output) {
    let msg = Message::parse(t.payload.clone()).unwrap();
    let flow = Flow::udp(t.flow.remote, t.flow.local);
    to.receive(now, msg, flow, out).unwrap();
}

#[test]
fn invite_through_a_proxy() {
    let (a, p, b) = ("127.0.0.1:5061", "127.0.0.1:5060", "127.0.0.1:5062");
    let uac = layer(a);
    let proxy = layer(p);
    let uas = layer(b);
    let mut out = Output::new();
    let now = Duration::from_secs(1);
    let flow = Flow::udp(a.parse().unwrap(), p.parse().unwrap());
    let tx = uac
        .send_request(
            now,
            flow,
            |via| {
                RequestBuilder::new("INVITE", "sip:bob@127.0.0.1:5062")
                    .via(via)
                    .from("<sip:alice@127.0.0.1>", Some("a1"))
                    .to("<sip:bob@127.0.0.1>", None)
                    .call_id("c1")
                    .cseq(1)
                    .contact("<sip:alice@127.0.0.1:5061>")
                    .build()
            },
            &mut out,
        )
        .unwrap();
    assert_eq!(out.transmits.len(), 1);
    let t = out.transmits.remove(0);
    let mut pout = Output::new();
    deliver(&proxy, now, &t, &mut pout);
    let Event::Request { tx: stx, .. } = pout.events.remove(0) else {
        panic!()
    };
    let target = Target::to(Flow::udp(p.parse().unwrap(), b.parse().unwrap()));
    proxy
        .forward(
            now,
            stx,
            ForwardPlan {
                targets: vec![target],
                record_route: true,
                ..Default::default()
            },
            &mut pout,
        )
        .unwrap();
    // 100 Trying upstream, INVITE downstream.
    assert_eq!(pout.transmits.len(), 2, "{:#?}", pout.transmits);
    let trying = pout.transmits.remove(0);
    assert!(trying.payload.starts_with(b"SIP/2.0 100"));
    let inv = pout.transmits.remove(0);
    let fwd = Message::parse(inv.payload.clone()).unwrap();
    assert_eq!(fwd.via().count(), 2);
    assert_eq!(fwd.record_routes().count(), 1);
    assert_eq!(fwd.max_forwards().unwrap(), Some(69));
    let mut bout = Output::new();
    deliver(&uas, now, &inv, &mut bout);
    let Event::Request {
        tx: utx, request, ..
    } = bout.events.remove(0)
    else {
        panic!()
    };
    let ok = Message::parse(
        ResponseBuilder::new(&request, 200, "OK")
            .to_tag("b1")
            .build(),
    )
    .unwrap();
    uas.respond(now, utx, &ok, &mut bout).unwrap();
    let resp = bout.transmits.remove(0);
    assert_eq!(resp.flow.remote, p.parse().unwrap());
    pout.clear();
    deliver(&proxy, now, &resp, &mut pout);
    assert!(
        pout.events
            .iter()
            .any(|e| matches!(e, Event::Forwarded { status: 200, .. }))
    );
    let up = pout
        .transmits
        .iter()
        .find(|t| t.payload.starts_with(b"SIP/2.0 200"))
        .unwrap();
    assert_eq!(up.flow.remote, a.parse().unwrap());
    let upm = Message::parse(up.payload.clone()).unwrap();
    assert_eq!(upm.via().count(), 1);
    out.clear();
    deliver(&uac, now, &trying, &mut out);
    deliver(&uac, now, up, &mut out);
    assert!(out.events.iter().any(|e| matches!(e, Event::Response { tx: t, response } if *t == tx && response.status() == Some(200))), "{:#?}", out.events);
    // Everything ends after 64·T1.
    let later = now + Duration::from_secs(40);
    for l in [&uac, &proxy, &uas] {
        let mut o = Output::new();
        l.handle_timeout(later, &mut o);
        assert_eq!(l.len(), 0);
        assert_eq!(l.timer_entries(), 0);
    }
    let _ = Bytes::new();
}
