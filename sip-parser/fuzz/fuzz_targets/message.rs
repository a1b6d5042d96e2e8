//! Datagram parse, then every accessor, validation, editing, building (responses, CANCEL,
//! ACK), Via routing and the loop hash: no panic, lengths agree, and an unmodified message
//! re-serialises byte-exact.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_parser::{Limits, Message, RequestBuilder, ResponseBuilder, Transport};

// Edits and builders may take a message that sat at the parse limits past them (one more
// header line, a longer Via): their output is re-read with `Limits::BUILT`, as the proxy does
// (the finding of 2026-12-03, now a test in tests/builders.rs).

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse_slice(data) else { return };
    assert_eq!(&m.edit().to_bytes()[..], m.as_wire());
    let _ = (m.method(), m.request_uri_parsed(), m.status(), m.call_id(), m.cseq(), m.from(), m.to());
    let _ = (m.max_forwards(), m.content_type(), m.expires(), m.event(), m.subscription_state());
    let _ = m.via().count() + m.contacts().count() + m.routes().count() + m.record_routes().count();
    let _ = m.require().count() + m.allow().count() + m.reasons().count() + m.authorization().count();
    let _ = m.validate();
    let mut e = m.edit();
    let _ = e.pop_route();
    let _ = e.remove_top_via();
    let _ = e.decrement_max_forwards();
    e.prepend_via("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1");
    e.prepend_record_route("<sip:127.0.0.1;lr>");
    let out = e.to_bytes();
    assert_eq!(out.len(), e.len());
    let _ = ResponseBuilder::new(&m, 400, "Bad Request").build();

    let src = "192.0.2.1:5060".parse().unwrap();
    let mut e = m.edit();
    let _ = e.fill_via_received(src);
    e.set_method("OPTIONS");
    let _ = e.pop_last_route();
    e.prepend_header("Path", "<sip:127.0.0.1;lr>");
    e.remove_header_if("Proxy-Authorization", |v| v.len() % 2 == 0);
    let out = e.to_bytes();
    assert_eq!(out.len(), e.len());
    assert!(Message::parse_with(out, &Limits::BUILT).is_ok());
    let mut r = ResponseBuilder::new(&m, 200, "OK");
    r.copy_record_route().fill_via_received(src);
    assert!(Message::parse_with(r.build(), &Limits::BUILT).is_ok());
    if let Ok(c) = RequestBuilder::cancel(&m) {
        let c = c.build();
        let c = Message::parse_with(c, &Limits::BUILT).unwrap();
        if let Ok(a) = RequestBuilder::ack(&m, &c) {
            assert_eq!(a.build().len(), a.len());
        }
    }
    let _ = m.loop_hash();
    for c in m.contacts().flatten() {
        let _ = m.contact_expiry(&c, 3600);
    }
    if let Ok(Some(v)) = m.top_via() {
        let _ = (v.response_target(Transport::Udp, Some(src)), v.response_target(Transport::Tcp, None));
    }
});
