//! Worker threads share one store by reference: REGISTERs for the same AOR from several
//! threads race (lookup, then a write conditional on the version read), and the store ends
//! up holding exactly the contacts whose REGISTER got a 200 — never one the client was told
//! failed, never a lost one that was acknowledged.

use core::time::Duration;
use std::collections::BTreeSet;

use sip_location::registrar;
use sip_location::{LocationStore, MemoryConfig, MemoryStore, Policy, Source, StoreError};
use sip_parser::{Message, Transport};

#[test]
fn concurrent_registrations_of_one_aor_are_never_lost_or_invented() {
    let store = MemoryStore::new(MemoryConfig {
        shards: 1,
        ..MemoryConfig::default()
    });
    let policy = Policy::default();
    let now = Duration::from_secs(1_700_000_000);
    let acked: Vec<BTreeSet<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (store, policy) = (&store, &policy);
                s.spawn(move || {
                    let mut ok = BTreeSet::new();
                    for i in 0..50 {
                        let contact = format!("sip:t{t}d{i}@192.0.2.{t}:{}", 5000 + i);
                        let raw = format!(
                            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.{t};branch=z9hG4bK{t}x{i}\r\n\
                             To: <sip:shared@example.com>\r\nFrom: <sip:shared@example.com>;tag={t}\r\n\
                             Call-ID: thread-{t}-{i}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\n\r\n"
                        );
                        let msg = Message::parse(raw.into_bytes().into()).unwrap();
                        let src = Source::new(format!("192.0.2.{t}:5060").parse().unwrap(), Transport::Udp);
                        let r = registrar::register(store, &msg, &src, now, policy);
                        match r.reply.unwrap().status {
                            200 => {
                                ok.insert(contact);
                            }
                            500 => assert!(matches!(r.error, Some(StoreError::Conflict { .. }))),
                            s => panic!("unexpected {s}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let acked: BTreeSet<String> = acked.into_iter().flatten().collect();
    let stored: BTreeSet<String> = store
        .lookup("sip:shared@example.com", now)
        .unwrap()
        .bindings()
        .iter()
        .map(|b| b.contact().to_string())
        .collect();
    assert_eq!(stored, acked);
    assert!(
        acked.len() > 150,
        "most registrations get through: {}",
        acked.len()
    );
}
