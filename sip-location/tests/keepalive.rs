//! The keepalive list (Kamailio `nathelper` natping): the registrar flags NATed UDP
//! bindings, `keepalive::due` walks the store page by page and lists exactly those, with the
//! address to ping, and `keepalive::options` builds a valid OPTIONS for each.

use core::time::Duration;

use sip_location::keepalive::{self, Ping};
use sip_location::registrar;
use sip_location::{Cursor, MemoryConfig, MemoryStore, Policy, Source};
use sip_parser::{Message, Transport};

fn register(store: &MemoryStore, user: usize, contact: &str, from: &str, transport: Transport) {
    let raw = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/{t} {from};branch=z9hG4bK{user}\r\n\
         To: <sip:u{user}@example.com>\r\nFrom: <sip:u{user}@example.com>;tag=1\r\n\
         Call-ID: ka-{user}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\n\r\n",
        t = transport.as_str()
    );
    let msg = Message::parse(raw.into_bytes().into()).unwrap();
    let src = Source::new(from.parse().unwrap(), transport);
    let r = registrar::register(
        store,
        &msg,
        &src,
        Duration::from_secs(1_700_000_000),
        &Policy::default(),
    );
    assert_eq!(r.reply.unwrap().status, 200);
}

#[test]
fn only_natted_udp_bindings_are_pinged_at_their_source() {
    let store = MemoryStore::new(MemoryConfig {
        shards: 4,
        ..MemoryConfig::default()
    });
    for u in 0..30 {
        if u % 3 == 0 {
            // Private contact, public source over UDP: ping it.
            register(
                &store,
                u,
                &format!("sip:u{u}@10.0.0.{u}:5060"),
                &format!("203.0.113.{u}:4{u:04}"),
                Transport::Udp,
            );
        } else if u % 3 == 1 {
            // Contact equal to the source: no NAT, no ping.
            register(
                &store,
                u,
                &format!("sip:u{u}@198.51.100.{u}:5060"),
                &format!("198.51.100.{u}:5060"),
                Transport::Udp,
            );
        } else {
            // NATed but over TCP: the connection is the keepalive (Keepalive::NatUdp).
            register(
                &store,
                u,
                &format!("sip:u{u}@10.0.1.{u}:5060"),
                &format!("203.0.113.{u}:5{u:04}"),
                Transport::Tcp,
            );
        }
    }
    let now = Duration::from_secs(1_700_000_001);
    let mut cursor = Some(Cursor::START);
    let mut targets = Vec::new();
    let mut pages = 0;
    while let Some(c) = cursor {
        let (mut t, next) = keepalive::due(&store, c, 4, now).unwrap();
        targets.append(&mut t);
        cursor = next;
        pages += 1;
        assert!(pages <= 40, "the walk ends");
    }
    assert!(pages >= 8, "30 AORs in pages of 4");
    targets.sort_by(|a, b| a.contact.cmp(&b.contact));
    assert_eq!(targets.len(), 10);
    for t in &targets {
        let u: usize = t.contact[5..t.contact.find('@').unwrap()].parse().unwrap();
        assert_eq!(u % 3, 0, "{}", t.contact);
        assert_eq!(
            t.send_to.addr,
            format!("203.0.113.{u}:4{u:04}").parse().unwrap()
        );
        assert_eq!(&*t.aor, format!("sip:u{u}@example.com"));
        let ping = Ping {
            from: "sip:keepalive@proxy.example.com",
            sent_by: "192.0.2.1:5060",
            branch: "z9hG4bK-ka",
            call_id: "ka@proxy",
            from_tag: "1",
        };
        let m = Message::parse(keepalive::options(t, &ping)).unwrap();
        assert!(m.validate().is_ok());
        assert_eq!(m.request_uri(), Some(t.contact.as_bytes()));
    }
}
