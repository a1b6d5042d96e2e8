//! Random register / refresh / unregister / wildcard / expire sequences run through the
//! registrar and the memory store, against a simple model of RFC 3261 §10.3: after every
//! step the status, the 200's Contact list and the store's bindings equal the model's.

use core::time::Duration;
use std::collections::BTreeMap;

use proptest::prelude::*;
use sip_location::registrar;
use sip_location::{LocationStore, MemoryConfig, MemoryStore, Policy, Source};
use sip_parser::{Message, Transport};

const T0: u64 = 1_700_000_000;
const MIN: u32 = 60;
const MAX: u32 = 3600;
const DEFAULT: u32 = 1800;

#[derive(Debug, Clone)]
enum Step {
    /// REGISTER `aor` with these (contact, expires param or None) entries, an optional
    /// Expires header, Call-ID `cid` and CSeq `cseq`.
    Register {
        aor: u8,
        contacts: Vec<(u8, Option<u32>, bool)>,
        expires: Option<u32>,
        cid: u8,
        cseq: u32,
    },
    /// `Contact: *` with `Expires: 0`.
    Star { aor: u8, cid: u8, cseq: u32 },
    /// Time passes; the store expires what is due.
    Advance(u64),
}

fn expires_value() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..120, 3000u32..8000]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            0u8..3,
            proptest::collection::vec((0u8..4, proptest::option::of(expires_value()), any::<bool>()), 0..4),
            proptest::option::of(expires_value()),
            0u8..2,
            1u32..8,
        )
            .prop_map(|(aor, contacts, expires, cid, cseq)| Step::Register { aor, contacts, expires, cid, cseq }),
        1 => (0u8..3, 0u8..2, 1u32..8).prop_map(|(aor, cid, cseq)| Step::Star { aor, cid, cseq }),
        2 => (0u64..2500).prop_map(Step::Advance),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MB {
    contact: u8,
    expires_at: u64,
    cid: u8,
    cseq: u32,
}

/// The model: AOR → bindings, with the rules written the plain way.
#[derive(Default)]
struct Model {
    aors: BTreeMap<u8, Vec<MB>>,
}

impl Model {
    fn live(&self, aor: u8, now: u64) -> Vec<MB> {
        let mut v: Vec<MB> = self
            .aors
            .get(&aor)
            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn register(&mut self, step: &Step, now: u64) -> u16 {
        match step {
            Step::Star { aor, cid, cseq } => {
                let live = self.live(*aor, now);
                if live.iter().any(|b| b.cid == *cid && b.cseq >= *cseq) {
                    return 400;
                }
                self.aors.remove(aor);
                200
            }
            Step::Register {
                aor,
                contacts,
                expires,
                cid,
                cseq,
            } => {
                let mut set = self.live(*aor, now);
                let mut touched = vec![false; set.len()];
                for &(c, param, _) in contacts {
                    let mut e = param.or(*expires).unwrap_or(DEFAULT);
                    if e != 0 && e < MIN {
                        if e < 3600 {
                            return 423;
                        }
                        e = MIN;
                    }
                    e = e.min(MAX);
                    match set.iter().position(|b| b.contact == c) {
                        Some(i) => {
                            if !touched[i] && set[i].cid == *cid && set[i].cseq >= *cseq {
                                return 400;
                            }
                            if e == 0 {
                                set.remove(i);
                                touched.remove(i);
                            } else {
                                set[i] = MB {
                                    contact: c,
                                    expires_at: now + u64::from(e),
                                    cid: *cid,
                                    cseq: *cseq,
                                };
                                touched[i] = true;
                            }
                        }
                        None if e != 0 => {
                            set.push(MB {
                                contact: c,
                                expires_at: now + u64::from(e),
                                cid: *cid,
                                cseq: *cseq,
                            });
                            touched.push(true);
                        }
                        None => {}
                    }
                }
                set.sort();
                self.aors.insert(*aor, set);
                200
            }
            Step::Advance(_) => unreachable!(),
        }
    }
}

fn aor_uri(aor: u8) -> String {
    format!("sip:user{aor}@example.com")
}

/// Contact `c`, its host written in upper case when `shout` (the same binding, §19.1.4).
fn contact_uri(c: u8, shout: bool) -> String {
    let host = if shout {
        "PHONE.example.com"
    } else {
        "phone.example.com"
    };
    format!("sip:dev{c}@{host}:50{c}0")
}

fn contact_index(uri: &str) -> u8 {
    uri.as_bytes()[7] - b'0'
}

fn message(step: &Step) -> Message {
    let (aor, cid, cseq, lines) = match step {
        Step::Register {
            aor,
            contacts,
            expires,
            cid,
            cseq,
        } => {
            let mut lines: Vec<String> = contacts
                .iter()
                .map(|&(c, e, shout)| match e {
                    Some(e) => format!("Contact: <{}>;expires={e}", contact_uri(c, shout)),
                    None => format!("Contact: <{}>", contact_uri(c, shout)),
                })
                .collect();
            if let Some(e) = expires {
                lines.push(format!("Expires: {e}"));
            }
            (*aor, *cid, *cseq, lines)
        }
        Step::Star { aor, cid, cseq } => (
            *aor,
            *cid,
            *cseq,
            vec!["Contact: *".into(), "Expires: 0".into()],
        ),
        Step::Advance(_) => unreachable!(),
    };
    let mut s = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{cid}x{cseq}\r\n\
         To: <{}>\r\nFrom: <{}>;tag=1\r\nCall-ID: call-{cid}\r\nCSeq: {cseq} REGISTER\r\n",
        aor_uri(aor),
        aor_uri(aor)
    );
    for l in lines {
        s.push_str(&l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    Message::parse(s.into_bytes().into()).unwrap()
}

fn stored(store: &MemoryStore, aor: u8, now: u64) -> Vec<MB> {
    let snap = store
        .lookup(&aor_uri(aor), Duration::from_secs(now))
        .unwrap();
    let mut v: Vec<MB> = snap
        .bindings()
        .iter()
        .map(|b| MB {
            contact: contact_index(b.contact()),
            expires_at: b.expires_at(),
            cid: b.call_id().as_bytes()[5] - b'0',
            cseq: b.cseq(),
        })
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn registrar_and_store_follow_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        let store = MemoryStore::new(MemoryConfig { shards: 4, ..MemoryConfig::default() });
        let policy = Policy {
            min_expires: MIN,
            max_expires: MAX,
            default_expires: DEFAULT,
            ..Policy::default()
        };
        let src = Source::new("192.0.2.10:5060".parse().unwrap(), Transport::Udp);
        let mut model = Model::default();
        let mut now = T0;
        for step in &steps {
            if let Step::Advance(s) = step {
                now += s;
                // Expire in small batches, as a timer would.
                while store.expire(Duration::from_secs(now), 2).unwrap().len() == 2 {}
                let live: usize = (0..3).map(|a| model.live(a, now).len()).sum();
                prop_assert_eq!(store.counts().unwrap().bindings, live);
                continue;
            }
            let msg = message(step);
            let r = registrar::register(&store, &msg, &src, Duration::from_secs(now), &policy);
            let want = model.register(step, now);
            let reply = r.reply.unwrap();
            prop_assert_eq!(reply.status, want, "{:?}", step);
            let aor = match step {
                Step::Register { aor, .. } | Step::Star { aor, .. } => *aor,
                Step::Advance(_) => unreachable!(),
            };
            let expect = model.live(aor, now);
            prop_assert_eq!(stored(&store, aor, now), expect.clone());
            if want == 200 {
                // The 200 lists every binding with the time it has left.
                let resp = Message::parse(reply.response).unwrap();
                let mut listed: Vec<(u8, u64)> = resp
                    .contacts()
                    .map(|c| {
                        let c = c.unwrap();
                        let uri = std::str::from_utf8(c.addr().unwrap().raw_uri).unwrap();
                        (contact_index(uri), u64::from(c.expires().unwrap().unwrap()))
                    })
                    .collect();
                listed.sort_unstable();
                let want: Vec<(u8, u64)> = expect.iter().map(|b| (b.contact, b.expires_at - now)).collect();
                prop_assert_eq!(listed, want);
            }
        }
        for a in 0..3 {
            prop_assert_eq!(stored(&store, a, now), model.live(a, now));
        }
    }
}
