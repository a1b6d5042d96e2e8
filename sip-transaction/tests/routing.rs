//! What the proxy core does to a forwarded request (RFC 3261 §16.4, §16.6): Route
//! processing for loose and strict routers, Record-Route (doubled across listeners), Path
//! routes on top, `received`/`rport` on the upstream Via, Max-Forwards, our Via.

use core::time::Duration;

use bytes::Bytes;
use sip_parser::{Message, Transport};
use sip_transaction::{
    Config, Event, Flow, ForwardPlan, Listener, NextHop, Output, Target, TransactionLayer,
};

const A: &str = "127.0.0.1:5060"; // "private" side
const B: &str = "127.0.0.2:5060"; // "public" side

fn layer() -> TransactionLayer {
    let cfg = Config {
        listeners: vec![
            Listener::new(Transport::Udp, A.parse().unwrap()),
            Listener::new(Transport::Udp, B.parse().unwrap()),
        ],
        ..Config::default()
    };
    TransactionLayer::new(&cfg, [9; 32])
}

fn msg(s: &str) -> Message {
    Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
}

fn request(ruri: &str, routes: &str) -> Message {
    msg(&format!(
        "INVITE {ruri} SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.9:5064;branch=z9hG4bKr1;rport\n{routes}\
         Max-Forwards: 10\nTo: <sip:bob@example.com>\nFrom: <sip:a@example.com>;tag=1\n\
         Call-ID: route-1\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
    ))
}

/// Receives `req` on listener A from 192.0.2.1:40000 (NAT) and forwards it to `target`;
/// returns the request sent downstream.
fn forward(l: &TransactionLayer, req: Message, target: Target, rr: bool) -> Message {
    let mut out = Output::new();
    let from = Flow::udp(A.parse().unwrap(), "127.0.0.1:40000".parse().unwrap());
    l.receive(Duration::from_secs(1), req, from, &mut out)
        .unwrap();
    let Some(Event::Request { tx, .. }) = out.events.pop() else {
        panic!()
    };
    let plan = ForwardPlan {
        targets: vec![target],
        record_route: rr,
        ..ForwardPlan::default()
    };
    l.forward(Duration::from_secs(1), tx, plan, &mut out)
        .unwrap();
    let t = out
        .transmits
        .iter()
        .find(|t| t.payload.starts_with(b"INVITE"))
        .unwrap();
    Message::parse(t.payload.clone()).unwrap()
}

fn to(local: &str, remote: &str) -> Target {
    Target::to(Flow::udp(local.parse().unwrap(), remote.parse().unwrap()))
}

#[test]
fn loose_routing_pops_our_routes_only() {
    let l = layer();
    let req = request(
        "sip:bob@192.0.2.4",
        "Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.2;lr>\nRoute: <sip:p3.example.com;lr>\n",
    );
    // Both of our entries (double Record-Route) go; the next hop is p3.
    assert_eq!(l.next_hop(&req), NextHop::Route(b"sip:p3.example.com;lr"));
    let out = forward(&l, req, to(B, "127.0.0.3:5060"), false);
    let routes: Vec<_> = out.routes().map(|r| r.unwrap().raw_uri.to_vec()).collect();
    assert_eq!(routes, [b"sip:p3.example.com;lr".to_vec()]);
    assert_eq!(out.request_uri(), Some(&b"sip:bob@192.0.2.4"[..]));
    assert_eq!(out.max_forwards().unwrap(), Some(9));
}

#[test]
fn after_a_strict_router_the_last_route_becomes_the_request_uri() {
    // §16.4: the Request-URI is our Record-Route URI; the last Route entry replaces it.
    let l = layer();
    let req = request("sip:127.0.0.1:5060;lr", "Route: <sip:bob@192.0.2.4>\n");
    assert_eq!(l.next_hop(&req), NextHop::RequestUri(b"sip:bob@192.0.2.4"));
    let out = forward(&l, req, to(A, "192.0.2.4:5060"), false);
    assert_eq!(out.request_uri(), Some(&b"sip:bob@192.0.2.4"[..]));
    assert_eq!(out.routes().count(), 0);
}

#[test]
fn record_route_doubles_across_listeners_and_path_goes_on_top() {
    let l = layer();
    let req = request("sip:bob@example.com", "");
    let mut target = to(B, "127.0.0.3:5060").with_uri("sip:bob@127.0.0.3");
    target.route = vec![Bytes::from_static(b"<sip:edge.example.com;lr>")];
    let out = forward(&l, req, target, true);
    let rr: Vec<_> = out
        .record_routes()
        .map(|r| r.unwrap().raw_uri.to_vec())
        .collect();
    // Top: the side facing the callee (B), then the side facing the caller (A).
    assert_eq!(
        rr,
        [
            b"sip:127.0.0.2:5060;lr".to_vec(),
            b"sip:127.0.0.1:5060;lr".to_vec()
        ]
    );
    let routes: Vec<_> = out.routes().map(|r| r.unwrap().raw_uri.to_vec()).collect();
    assert_eq!(routes, [b"sip:edge.example.com;lr".to_vec()]);
    assert_eq!(out.request_uri(), Some(&b"sip:bob@127.0.0.3"[..]));
    // Our Via on top, from the outgoing listener; the caller's Via got received/rport.
    let vias: Vec<_> = out.via().map(Result::unwrap).collect();
    assert_eq!((vias[0].host, vias[0].port), ("127.0.0.2", Some(5060)));
    assert!(vias[0].has_rfc3261_branch());
    assert_eq!(vias[1].received, Some("127.0.0.1"));
    assert_eq!(vias[1].rport, Some(Some(40000)));
    // The same listener both ways: one Record-Route.
    let out = forward(
        &layer(),
        request("sip:bob@example.com", ""),
        to(A, "127.0.0.3:5060"),
        true,
    );
    assert_eq!(out.record_routes().count(), 1);
}
