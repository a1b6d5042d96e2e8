//! CaptureSink implementations: the UDP/TCP sender and the writer sink.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use hep_codec::{
    CaptureEvent, CaptureSink, Collector, HepConfig, HepPacket, HepSender, NullSink, StreamDecoder,
    Timestamp, Transport, UnsupportedCollectorTransport, Version, WriterSink,
};

fn event(payload: &[u8]) -> CaptureEvent<'_> {
    CaptureEvent::sip(
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1:5070".parse().unwrap(),
        Transport::Tcp,
        Timestamp::new(1_700_000_000, 42),
        payload,
    )
    .with_correlation_id(b"call-1")
}

#[test]
fn udp_sender_delivers() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let cfg = HepConfig {
        capture_id: 99,
        auth_key: Some(b"secret".to_vec()),
        node_name: Some(b"node1".to_vec()),
        version: Version::V3,
    };
    let sender =
        HepSender::start(Collector::udp(collector.local_addr().unwrap()), cfg, 16).unwrap();
    sender.capture(&event(b"INVITE sip:a SIP/2.0\r\n\r\n"));
    let mut buf = [0u8; 2048];
    let n = collector.recv(&mut buf).unwrap();
    let p = HepPacket::decode_with(&buf[..n], hep_codec::Mode::Strict).unwrap();
    assert_eq!(p.capture_id, Some(99));
    assert_eq!(p.auth_key, Some(&b"secret"[..]));
    assert_eq!(p.node_name, Some(&b"node1"[..]));
    assert_eq!(p.correlation_id, Some(&b"call-1"[..]));
    assert_eq!(p.ip_proto, Some(hep_codec::IpProto::TCP));
    assert_eq!(p.payload, Some(&b"INVITE sip:a SIP/2.0\r\n\r\n"[..]));
    let stats = sender.close();
    assert_eq!((stats.sent(), stats.dropped()), (1, 0));
}

#[test]
fn tcp_sender_delivers_back_to_back() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = HepSender::start(Collector::tcp(addr), HepConfig::default(), 16).unwrap();
    for _ in 0..3 {
        sender.capture(&event(b"BYE sip:a SIP/2.0\r\n\r\n"));
    }
    let stats = sender.close();
    assert_eq!(stats.sent(), 3);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut data = Vec::new();
    conn.read_to_end(&mut data).unwrap();
    let mut dec = StreamDecoder::new();
    dec.push(&data);
    let mut n = 0;
    while let Some(f) = dec.next_frame().unwrap() {
        HepPacket::decode(&f).unwrap();
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn gone_collector_drops_without_blocking() {
    // Nothing listens on this port: connections are refused; messages are dropped and
    // counted, and `capture` stays fast.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sender = HepSender::start(Collector::tcp(port), HepConfig::default(), 4).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..10_000 {
        sender.capture(&event(b"x"));
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    let stats = sender.close();
    assert_eq!(stats.sent(), 0);
    assert_eq!(stats.dropped(), 10_000);
}

#[test]
fn writer_sink_and_null_sink() {
    let sink = WriterSink::new(
        Vec::new(),
        HepConfig {
            version: Version::V2,
            ..HepConfig::default()
        },
    );
    sink.capture(&event(b"SIP/2.0 200 OK\r\n\r\n"));
    assert_eq!(sink.stats().sent(), 1);
    let out = sink.into_inner();
    let p = HepPacket::decode(&out).unwrap();
    assert_eq!(p.version, Version::V2);
    assert_eq!(p.ts_usec, Some(42));
    NullSink.capture(&event(b"x"));
    let boxed: Box<dyn CaptureSink> = Box::new(NullSink);
    boxed.capture(&event(b"x"));
}

#[test]
fn a_collector_is_udp_or_tcp() {
    let addr = "192.0.2.9:9060".parse().unwrap();
    for t in Transport::ALL {
        let c = Collector::new(t, addr);
        match t {
            Transport::Udp => assert_eq!(c, Ok(Collector::udp(addr))),
            Transport::Tcp => assert_eq!(c, Ok(Collector::tcp(addr))),
            _ => {
                let e = c.unwrap_err();
                assert_eq!(e, UnsupportedCollectorTransport(t));
                assert!(e.to_string().ends_with(&format!("not {t}")), "{e}");
            }
        }
    }
    let c = Collector::tcp("[2001:db8::9]:9061".parse().unwrap());
    assert_eq!((c.transport(), c.addr().port()), (Transport::Tcp, 9061));
    assert_eq!(c.to_string(), "tcp:[2001:db8::9]:9061");
}

/// The UDP socket to a collector is of the collector's family; TCP sends packets whole.
#[test]
fn collector_sockets_deliver_over_ipv6_and_tcp() {
    let packet = HepConfig::default()
        .encode(&event(b"OPTIONS sip:a SIP/2.0\r\n\r\n"))
        .unwrap();
    let homer = UdpSocket::bind("[::1]:0").unwrap();
    homer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sock = Collector::udp(homer.local_addr().unwrap())
        .connect(Duration::from_secs(1))
        .unwrap();
    assert!(sock.local_addr().unwrap().is_ipv6());
    sock.send(&packet).unwrap();
    let mut buf = [0u8; 2048];
    let n = homer.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], packet.as_slice());

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = Collector::tcp(listener.local_addr().unwrap())
        .connect(Duration::from_secs(5))
        .unwrap();
    sock.send(&packet).unwrap();
    sock.send(&packet).unwrap();
    drop(sock);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut data = Vec::new();
    conn.read_to_end(&mut data).unwrap();
    assert_eq!(data, [packet.as_slice(), &packet].concat());
}

#[test]
fn capture_event_time_and_correlation_id() {
    let e = event(b"x");
    assert_eq!(e.time, Timestamp::new(1_700_000_000, 42));
    let p = e.to_packet(3, None, None);
    assert_eq!((p.ts_sec, p.ts_usec), (Some(1_700_000_000), Some(42)));
    assert_eq!(p.ip_proto, Some(hep_codec::IpProto::TCP));
    assert_eq!(p.correlation_id, Some(&b"call-1"[..]));
    let at = std::time::UNIX_EPOCH + Duration::from_micros(1_700_000_001_000_007);
    let e = CaptureEvent::sip(e.src, e.dst, Transport::Udp, at, b"x");
    assert_eq!(e.time, Timestamp::new(1_700_000_001, 7));
    assert_eq!(e.correlation_id, None);
}
