//! Datagram parse, then every accessor, validation, editing and a response: no panic, and an
//! unmodified message re-serialises byte-exact.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_parser::{Message, ResponseBuilder};

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
});
