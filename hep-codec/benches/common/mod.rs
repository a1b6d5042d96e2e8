//! The 1 KB SIP packet shared by the criterion benchmark (`benches/codec.rs`) and the
//! callgrind loops (`examples/decode_loop.rs`, `examples/encode_loop.rs`).

use hep_codec::{HepPacket, Timestamp, Transport};

/// A 1024-byte SIP INVITE with an SDP-sized body.
pub(crate) fn sip_1k() -> Vec<u8> {
    let mut m = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\n"
        .to_vec();
    m.extend_from_slice(b"Content-Length: ");
    let body_len = 1024 - m.len() - b"NNN\r\n\r\n".len();
    m.extend_from_slice(format!("{body_len:03}\r\n\r\n").as_bytes());
    m.resize(1024, b'a');
    m
}

/// `payload` as captured UDP from 192.0.2.1:5060 to 192.0.2.2:5060.
pub(crate) fn sip_packet(payload: &[u8]) -> HepPacket<'_> {
    HepPacket::sip(
        "192.0.2.1:5060".parse().unwrap(),
        "192.0.2.2:5060".parse().unwrap(),
        Transport::Udp,
        Timestamp::new(1_700_000_000, 123_456),
        payload,
    )
}
