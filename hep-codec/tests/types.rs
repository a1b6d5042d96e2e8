//! The small values: version sniffing, timestamps, endpoints, the transport ↔ IP protocol
//! mapping, and which packets carry SIP.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hep_codec::{
    DecodeErrorKind, Endpoint, HepPacket, IpProto, ProtoType, Timestamp, TimestampError, Transport,
    Version,
};

#[test]
fn sniff_reads_the_first_bytes_only() {
    assert_eq!(Version::sniff(b"HEP3"), Ok(Version::V3));
    assert_eq!(Version::sniff(&[1]), Ok(Version::V1));
    assert_eq!(Version::sniff(&[2, 0xff]), Ok(Version::V2));
    for (buf, offset, found) in [
        (&b"\x03"[..], 0, 3),
        (b"GET /", 0, b'G'),
        (b"HTTP", 1, b'T'),
        (b"HEP2", 3, b'2'),
    ] {
        let e = Version::sniff(buf).unwrap_err();
        assert_eq!(
            (e.offset(), e.kind()),
            (offset, DecodeErrorKind::UnknownVersion { found })
        );
    }
    for (buf, needed) in [(&b""[..], 1), (b"H", 4), (b"HEP", 4)] {
        let e = Version::sniff(buf).unwrap_err();
        assert_eq!(
            (e.offset(), e.kind()),
            (
                0,
                DecodeErrorKind::Truncated {
                    needed,
                    available: buf.len()
                }
            )
        );
    }
    assert_eq!(Version::from_number(2), Some(Version::V2));
    assert_eq!(Version::from_number(4), None);
    for v in [Version::V1, Version::V2, Version::V3] {
        assert_eq!(Version::from_number(v.number()), Some(v));
    }
}

#[test]
fn timestamp_text() {
    let t = |s: &str| s.parse::<Timestamp>();
    assert_eq!(t("1700000000"), Ok(Timestamp::new(1_700_000_000, 0)));
    assert_eq!(
        t("1700000000.5"),
        Ok(Timestamp::new(1_700_000_000, 500_000))
    );
    assert_eq!(t("1.000001"), Ok(Timestamp::new(1, 1)));
    assert_eq!(
        t("4294967295.999999"),
        Ok(Timestamp::new(u32::MAX, 999_999))
    );
    assert_eq!(t("007.0"), Ok(Timestamp::new(7, 0)));
    for (s, offset) in [
        ("", 0),
        (".", 0),
        (".5", 0),
        ("1.", 2),
        ("1.1234567", 8),
        ("4294967296", 9),
        ("12a", 2),
        ("1.2x", 3),
        ("1.2.3", 3),
        ("-1", 0),
        ("+1", 0),
        (" 1", 0),
    ] {
        assert_eq!(t(s), Err(TimestampError { offset }), "{s:?}");
    }
    assert_eq!(Timestamp::new(5, 42).to_string(), "5.000042");
    assert!(
        TimestampError { offset: 3 }
            .to_string()
            .contains("at byte 3")
    );
}

#[test]
fn timestamp_from_clock_and_duration() {
    let d = Duration::new(1_700_000_000, 123_456_789);
    assert_eq!(Timestamp::from(d), Timestamp::new(1_700_000_000, 123_456));
    assert_eq!(
        Timestamp::from(UNIX_EPOCH + d),
        Timestamp::new(1_700_000_000, 123_456)
    );
    // before the epoch: 0; past HEP's 32-bit seconds (year 2106): saturated
    assert_eq!(
        Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)),
        Timestamp::new(0, 0)
    );
    assert_eq!(Timestamp::from(Duration::from_secs(1 << 33)).sec, u32::MAX);
    let now = SystemTime::now();
    let t = Timestamp::from(now);
    let back = UNIX_EPOCH + t.since_epoch();
    assert!(now.duration_since(back).unwrap() < Duration::from_micros(1));
}

#[test]
fn endpoints_bracket_ipv6_with_a_port() {
    let e = |s: &str| Endpoint::from(s.parse::<SocketAddr>().unwrap()).to_string();
    assert_eq!(e("192.0.2.1:5060"), "192.0.2.1:5060");
    assert_eq!(e("[2001:db8::1]:5061"), "[2001:db8::1]:5061");
    let bare = Endpoint {
        addr: "192.0.2.1".parse().unwrap(),
        port: None,
    };
    assert_eq!(bare.to_string(), "192.0.2.1");
    let mut p = HepPacket::sip(
        "[2001:db8::1]:5060".parse().unwrap(),
        "[2001:db8::2]:5062".parse().unwrap(),
        Transport::Tcp,
        Timestamp::default(),
        b"",
    );
    assert_eq!(
        p.dst_endpoint().map(|e| e.to_string()).as_deref(),
        Some("[2001:db8::2]:5062")
    );
    p.src_port = None;
    assert_eq!(
        p.src_endpoint().map(|e| e.to_string()).as_deref(),
        Some("2001:db8::1")
    );
    p.src_addr = None;
    assert_eq!(p.src_endpoint(), None);
}

#[test]
fn transport_and_ip_proto() {
    // Kamailio's siptrace numbers: UDP 17, TCP 6, SCTP 132, and 22 for TLS, WS and WSS.
    let wire: Vec<u8> = Transport::ALL.iter().map(|&t| IpProto::from(t).0).collect();
    assert_eq!(wire, [17, 6, 22, 132, 22, 22]);
    for t in [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Sctp,
    ] {
        assert_eq!(IpProto::from(t).transport(), Some(t));
    }
    assert_eq!(
        IpProto::from(Transport::Wss).transport(),
        Some(Transport::Tls)
    );
    assert_eq!(IpProto::ESP.transport(), None);
    assert_eq!(IpProto(0).transport(), None);
}

#[test]
fn which_packets_carry_sip() {
    let mut p = HepPacket::sip(
        "192.0.2.1:5060".parse().unwrap(),
        "192.0.2.2:5060".parse().unwrap(),
        Transport::Udp,
        Timestamp::default(),
        b"",
    );
    assert!(p.is_sip());
    p.proto_type = Some(ProtoType::LOG);
    assert!(!p.is_sip());
    p.proto_type = None;
    assert!(!p.is_sip());
    // HEPv1/v2 have no protocol type: they carry SIP only
    p.version = Version::V2;
    assert!(p.is_sip());
    p.version = Version::V1;
    assert!(p.is_sip());
}
