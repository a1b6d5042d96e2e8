//! Server and client together: every algorithm and qop, stale handling, userhash, caching,
//! secret rotation across nodes, and SIP examples computed independently (Python hashlib).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use sip_auth::{
    Algorithm, AuthCache, ClientError, ClientRequest, DigestClient, DigestServer, FailReason,
    HashKind, MemoryStore, NonceSecrets, Outcome, Qop, Request, ServerConfig,
};

const NOW: u64 = 1_700_000_000;
const REALM: &str = "biloxi.com";

fn store() -> MemoryStore {
    let mut s = MemoryStore::new();
    s.add_password("bob", REALM, "zanzibar");
    s
}

fn req<'a>(method: &'a str, uri: &'a str, body: &'a [u8]) -> Request<'a> {
    Request {
        method: method.as_bytes(),
        request_uri: uri.as_bytes(),
        body,
        source: Some(IpAddr::from([192, 0, 2, 4])),
        call_id: b"a84b4c76e66710",
        from_tag: b"1928301774",
    }
}

fn server(f: impl FnOnce(&mut ServerConfig)) -> DigestServer {
    let mut cfg = ServerConfig::new(REALM);
    f(&mut cfg);
    DigestServer::new(
        cfg,
        NonceSecrets::new(1, b"0123456789abcdef0123456789abcdef"),
    )
}

/// `REGISTER sip:biloxi.com` as the client sends it.
const REGISTER: ClientRequest<'static> = ClientRequest {
    method: "REGISTER",
    uri: "sip:biloxi.com",
    body: b"",
};

fn bytes(v: &[String]) -> Vec<&[u8]> {
    v.iter().map(String::as_bytes).collect()
}

fn value_of<'a>(h: &'a str, name: &str) -> &'a str {
    let i = h.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &h[i..];
    if let Some(r) = rest.strip_prefix('"') {
        &r[..r.find('"').unwrap()]
    } else {
        rest.split([',', ' ']).next().unwrap()
    }
}

/// A SIP REGISTER answered by our client, checked against values computed with Python's
/// hashlib for the known password "zanzibar".
#[test]
fn register_examples_with_known_password() {
    let ch = |alg: &str| {
        format!(r#"Digest realm="biloxi.com", qop="auth", nonce="4f6c2a1b9e0d", algorithm={alg}"#)
    };
    let r = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    for (alg, want) in [
        ("MD5", "34065a692bcd6f7a49c193960cd0be5f"),
        (
            "SHA-256",
            "154f29e9ef53ab3e86b3fddcf4e12acfedf062e5df344f2e4571d7e6a136ea61",
        ),
    ] {
        let mut c = DigestClient::new("bob", "zanzibar");
        let v = c.respond(&[ch(alg).as_bytes()], &r, "0a4f113b").unwrap();
        assert_eq!(value_of(&v, "response"), want, "{alg}: {v}");
        assert_eq!(value_of(&v, "nc"), "00000001");
        assert_eq!(value_of(&v, "algorithm"), alg);
    }
    // MD5-sess with auth-int over an SDP body.
    let body = b"v=0\r\no=bob 1 1 IN IP4 192.0.2.4\r\n";
    let mut c = DigestClient::new("bob", "zanzibar");
    let v = c
        .respond(
            &[br#"Digest realm="biloxi.com", qop="auth-int", nonce="4f6c2a1b9e0d", algorithm=MD5-sess"#],
            &ClientRequest {
                method: "INVITE",
                uri: "sip:alice@atlanta.com",
                body,
            },
            "0a4f113b",
        )
        .unwrap();
    assert_eq!(value_of(&v, "response"), "8d197e63bef9550338fd36737b60535d");
    assert_eq!(value_of(&v, "qop"), "auth-int");
}

#[test]
fn every_algorithm_and_qop_round_trips() {
    let body = b"v=0\r\n";
    for alg in Algorithm::ALL {
        for qop in [vec![Qop::Auth], vec![Qop::AuthInt], vec![]] {
            let s = server(|c| {
                c.algorithms = vec![alg];
                c.qop.clone_from(&qop);
                c.opaque = Some("op\"aque".into());
                c.authentication_info = true;
                c.next_nonce = true;
            });
            let rq = req("INVITE", "sip:bob@biloxi.com", body);
            let ch = s.challenge(&rq, NOW, false);
            let mut client = DigestClient::new("bob", "zanzibar");
            let cr = ClientRequest {
                method: "INVITE",
                uri: "sip:bob@biloxi.com",
                body,
            };
            let a = client.respond(&bytes(&ch), &cr, "c1").unwrap();
            match s.verify(a.as_bytes(), &rq, &store(), NOW + 1) {
                Outcome::Ok(ok) => {
                    assert_eq!((ok.user.as_ref(), ok.algorithm), ("bob", alg));
                    let info = ok.authentication_info.unwrap();
                    assert!(info.contains("rspauth="), "{info}");
                    // The nextnonce is one of ours and verifies.
                    let full = format!("Digest {info}");
                    let p = sip_parser::AuthValue::parse(full.as_bytes()).unwrap();
                    let next = p.param("nextnonce").unwrap();
                    let retry = DigestClient::new("bob", "zanzibar").respond(
                        &[format!(
                            "Digest realm=\"biloxi.com\", nonce=\"{next}\", algorithm={alg}, qop=\"auth\", opaque=\"op\\\"aque\", stale=true"
                        )
                        .as_bytes()],
                        &cr,
                        "c3",
                    );
                    if qop == [Qop::Auth] {
                        let retry = retry.unwrap();
                        assert!(
                            matches!(
                                s.verify(retry.as_bytes(), &rq, &store(), NOW + 2),
                                Outcome::Ok(_)
                            ),
                            "{retry}"
                        );
                    }
                }
                o => panic!("{alg} {qop:?}: {o:?} for {a}"),
            }
            // auth-int protects the body.
            if qop == [Qop::AuthInt] {
                let a2 = client.authorize(&cr, "c2").unwrap();
                let other = req("INVITE", "sip:bob@biloxi.com", b"v=1\r\n");
                assert_eq!(
                    s.verify(a2.as_bytes(), &other, &store(), NOW + 1),
                    Outcome::Failed(FailReason::BadResponse)
                );
            }
        }
    }
}

#[test]
fn client_picks_strongest_and_counts_nc() {
    let s = server(|c| {
        c.algorithms = vec![Algorithm::Md5, Algorithm::Sha512_256, Algorithm::Sha256];
    });
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let ch = s.challenge(&rq, NOW, false);
    assert_eq!(ch.len(), 3);
    let mut c = DigestClient::new("bob", "zanzibar");
    let cr = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    let a1 = c.respond(&bytes(&ch), &cr, "x1").unwrap();
    assert_eq!(c.algorithm(), Some(Algorithm::Sha512_256));
    assert!(matches!(
        s.verify(a1.as_bytes(), &rq, &store(), NOW),
        Outcome::Ok(_)
    ));
    c.accepted();
    let a2 = c.authorize(&cr, "x2").unwrap();
    assert_eq!(value_of(&a2, "nc"), "00000002");
    assert!(matches!(
        s.verify(a2.as_bytes(), &rq, &store(), NOW),
        Outcome::Ok(_)
    ));
    // Replaying the first is refused.
    assert_eq!(
        s.verify(a1.as_bytes(), &rq, &store(), NOW),
        Outcome::Failed(FailReason::Replay)
    );
}

#[test]
fn stale_nonce_and_client_behaviour() {
    let s = server(|_| {});
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let cr = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    let mut c = DigestClient::new("bob", "zanzibar");
    let ch = s.challenge(&rq, NOW, false);
    let a = c.respond(&bytes(&ch), &cr, "x").unwrap();
    // 306 s later (300 s lifetime + 5 s drift) the right answer is stale.
    assert_eq!(
        s.verify(a.as_bytes(), &rq, &store(), NOW + 306),
        Outcome::Stale
    );
    // The stale re-challenge is answered without a Rejected error.
    let ch = s.challenge(&rq, NOW + 306, true);
    assert!(ch[0].contains("stale=true"));
    let a = c.respond(&bytes(&ch), &cr, "y").unwrap();
    assert!(matches!(
        s.verify(a.as_bytes(), &rq, &store(), NOW + 307),
        Outcome::Ok(_)
    ));
    c.accepted();

    // Wrong password: the server re-challenges without stale; the client stops.
    let mut bad = DigestClient::new("bob", "wrong");
    let ch = s.challenge(&rq, NOW, false);
    let a = bad.respond(&bytes(&ch), &cr, "z").unwrap();
    assert_eq!(
        s.verify(a.as_bytes(), &rq, &store(), NOW),
        Outcome::Failed(FailReason::BadResponse)
    );
    // A wrong response on an expired nonce is still a failure, not stale.
    assert_eq!(
        s.verify(a.as_bytes(), &rq, &store(), NOW + 1000),
        Outcome::Failed(FailReason::BadResponse)
    );
    let ch = s.challenge(&rq, NOW, false);
    assert_eq!(
        bad.respond(&bytes(&ch), &cr, "z"),
        Err(ClientError::Rejected)
    );
}

#[test]
fn one_time_nonces_and_rfc2069() {
    let s = server(|c| c.one_time_nonces = true);
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let cr = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    let mut c = DigestClient::new("bob", "zanzibar");
    let ch = s.challenge(&rq, NOW, false);
    let a = c.respond(&bytes(&ch), &cr, "x").unwrap();
    assert!(matches!(
        s.verify(a.as_bytes(), &rq, &store(), NOW),
        Outcome::Ok(_)
    ));
    let a2 = c.authorize(&cr, "x").unwrap();
    assert_eq!(s.verify(a2.as_bytes(), &rq, &store(), NOW), Outcome::Stale);

    // RFC 2069 (no qop) against a server offering qop: accepted once (allow_no_qop).
    let s = server(|_| {});
    let ch = s.challenge(&rq, NOW, false);
    let no_qop: Vec<String> = ch
        .iter()
        .map(|c| c.replace(r#", qop="auth""#, ""))
        .collect();
    let mut c = DigestClient::new("bob", "zanzibar");
    let a = c.respond(&bytes(&no_qop), &cr, "x").unwrap();
    assert!(!a.contains("qop="));
    assert!(matches!(
        s.verify(a.as_bytes(), &rq, &store(), NOW),
        Outcome::Ok(_)
    ));
    assert_eq!(s.verify(a.as_bytes(), &rq, &store(), NOW), Outcome::Stale);
    let strict = server(|c| c.allow_no_qop = false);
    let ch = strict.challenge(&rq, NOW, false);
    let no_qop: Vec<String> = ch
        .iter()
        .map(|c| c.replace(r#", qop="auth""#, ""))
        .collect();
    let a = DigestClient::new("bob", "zanzibar")
        .respond(&bytes(&no_qop), &cr, "x")
        .unwrap();
    assert_eq!(
        strict.verify(a.as_bytes(), &rq, &store(), NOW),
        Outcome::Failed(FailReason::UnsupportedQop)
    );
}

#[test]
fn userhash_is_resolved() {
    let s = server(|c| {
        c.userhash = true;
        c.algorithms = vec![Algorithm::Sha512_256];
    });
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let ch = s.challenge(&rq, NOW, false);
    assert!(ch[0].contains("userhash=true"));
    let a = DigestClient::new("bob", "zanzibar")
        .respond(&bytes(&ch), &REGISTER, "x")
        .unwrap();
    assert!(!a.contains("\"bob\""));
    match s.verify(a.as_bytes(), &rq, &store(), NOW) {
        Outcome::Ok(ok) => assert_eq!(ok.user, "bob"),
        o => panic!("{o:?}"),
    }
}

/// RFC 7616 §3.4.4: a user name sent as an RFC 8187 ext-value (`username*`) verifies like
/// the same name sent plainly; sending both is an error.
#[test]
fn username_ext_value_is_decoded() {
    let name = "J\u{e4}s\u{f8}n Doe";
    let mut st = MemoryStore::new();
    st.add_password(name, REALM, "Secret, or not?");
    let s = server(|c| c.algorithms = vec![Algorithm::Sha256]);
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let ch = s.challenge(&rq, NOW, false);
    let plain = DigestClient::new(name, "Secret, or not?")
        .respond(&bytes(&ch), &REGISTER, "x")
        .unwrap();
    let quoted = format!("username=\"{name}\"");
    assert!(plain.contains(&quoted), "{plain}");
    let ext = plain.replace(&quoted, "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe");
    match s.verify(ext.as_bytes(), &rq, &st, NOW) {
        Outcome::Ok(ok) => assert_eq!(ok.user, name),
        o => panic!("{o:?}"),
    }
    let both = format!("{ext}, {quoted}");
    assert!(matches!(
        s.verify(both.as_bytes(), &rq, &st, NOW),
        Outcome::Failed(FailReason::Malformed(
            sip_auth::DigestHeaderError::Duplicate { .. }
        ))
    ));
    let bad = plain.replace(&quoted, "username*=KOI8-R''%C3%A4");
    assert!(matches!(
        s.verify(bad.as_bytes(), &rq, &st, NOW),
        Outcome::Failed(FailReason::Malformed(
            sip_auth::DigestHeaderError::BadExtValue { .. }
        ))
    ));
}

#[test]
fn other_node_with_shared_secret_verifies_and_rotation_keeps_old_nonces() {
    let secret = b"shared-secret-shared-secret-0001";
    let mk = |node| {
        let mut cfg = ServerConfig::new(REALM);
        cfg.node_id = node;
        DigestServer::new(cfg, NonceSecrets::new(1, secret))
    };
    let (a, mut b) = (mk(1), mk(2));
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let cr = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    let ch = a.challenge(&rq, NOW, false);
    let v = DigestClient::new("bob", "zanzibar")
        .respond(&bytes(&ch), &cr, "x")
        .unwrap();
    assert!(matches!(
        b.verify(v.as_bytes(), &rq, &store(), NOW),
        Outcome::Ok(_)
    ));
    b.secrets_mut()
        .rotate(2, b"next-secret-next-secret-next-sec");
    assert!(matches!(
        b.verify(v.as_bytes(), &rq, &store(), NOW),
        Outcome::Ok(_)
    ));
    // Once the previous secret is dropped, the nonce is ours but unverifiable: stale,
    // so the client retries on a fresh nonce without counting a failure.
    b.secrets_mut().drop_previous();
    assert_eq!(b.verify(v.as_bytes(), &rq, &store(), NOW), Outcome::Stale);
}

#[test]
fn cache_skips_store_and_survives_password_change() {
    use std::cell::Cell;
    struct Counting<'a>(MemoryStore, &'a Cell<u32>);
    impl sip_auth::CredentialStore for Counting<'_> {
        fn lookup(&self, u: &str, r: &str, h: HashKind) -> Option<sip_auth::Secret> {
            self.1.set(self.1.get() + 1);
            self.0.lookup(u, r, h)
        }
    }
    let calls = Cell::new(0);
    let mut st = Counting(store(), &calls);
    let cache = AuthCache::new(128, Duration::from_secs(1800));
    let srv = server(|_| {});
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let cr = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    let mut c = DigestClient::new("bob", "zanzibar");
    let ch = srv.challenge(&rq, NOW, false);
    let mono = Duration::from_secs(10);
    let a = c.respond(&bytes(&ch), &cr, "x").unwrap();
    let o = srv.verify_cached(a.as_bytes(), &rq, &st, &cache, NOW, mono);
    assert!(matches!(o, Outcome::Ok(ref ok) if !ok.from_cache));
    let a = c.authorize(&cr, "x").unwrap();
    let o = srv.verify_cached(a.as_bytes(), &rq, &st, &cache, NOW, mono);
    assert!(matches!(o, Outcome::Ok(ref ok) if ok.from_cache));
    assert_eq!(calls.get(), 1);
    assert_eq!((cache.hits(), cache.misses()), (1, 1));
    // Password changed in the store: the cached HA1 fails, the store is asked again.
    st.0.add_password("bob", REALM, "new");
    let mut c2 = DigestClient::new("bob", "new");
    let ch = srv.challenge(&rq, NOW, false);
    let a = c2.respond(&bytes(&ch), &cr, "x").unwrap();
    let o = srv.verify_cached(a.as_bytes(), &rq, &st, &cache, NOW, mono);
    assert!(matches!(o, Outcome::Ok(ref ok) if !ok.from_cache), "{o:?}");
    assert_eq!(calls.get(), 2);
}

#[test]
fn checks_realm_uri_method_opaque_algorithm() {
    let s = server(|c| {
        c.opaque = Some("op".into());
        c.algorithms = vec![Algorithm::Sha256];
    });
    let rq = req("REGISTER", "sip:biloxi.com", b"");
    let ch = s.challenge(&rq, NOW, false);
    let cr = ClientRequest {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: b"",
    };
    let a = DigestClient::new("bob", "zanzibar")
        .respond(&bytes(&ch), &cr, "x")
        .unwrap();
    let st = store();
    let cases: Vec<(String, Request<'_>, FailReason)> = vec![
        (
            a.replace("realm=\"biloxi.com\"", "realm=\"atlanta.com\""),
            rq,
            FailReason::RealmMismatch,
        ),
        (
            a.clone(),
            req("REGISTER", "sip:other.com", b""),
            FailReason::UriMismatch,
        ),
        (
            a.clone(),
            req("INVITE", "sip:biloxi.com", b""),
            FailReason::BadResponse,
        ),
        (
            a.replace(", opaque=\"op\"", ""),
            rq,
            FailReason::OpaqueMismatch,
        ),
        (
            a.replace("algorithm=SHA-256", "algorithm=MD5"),
            rq,
            FailReason::UnsupportedAlgorithm,
        ),
        (
            a.replace("algorithm=SHA-256", "algorithm=SHA-1"),
            rq,
            FailReason::UnsupportedAlgorithm,
        ),
        (
            a.replace("qop=auth", "qop=auth-int"),
            rq,
            FailReason::UnsupportedQop,
        ),
        (
            a.replace("username=\"bob\"", "username=\"eve\""),
            rq,
            FailReason::UnknownUser,
        ),
    ];
    for (h, r, want) in cases {
        assert_eq!(
            s.verify(h.as_bytes(), &r, &st, NOW),
            Outcome::Failed(want),
            "{h}"
        );
    }
    assert!(matches!(
        s.verify(b"Digest nonsense", &rq, &st, NOW),
        Outcome::Failed(FailReason::Malformed(_))
    ));
    assert!(matches!(
        s.verify(a.as_bytes(), &rq, &st, NOW),
        Outcome::Ok(_)
    ));
}

/// `verify_message` takes the credentials for our realm among several fields (RFC 3261
/// §22.3), skips other schemes, builds the request from the message and answers
/// `NoCredentials` / `Malformed` with the status to send.
#[test]
fn verify_message_picks_our_realm() {
    use sip_auth::ChallengeKind;
    use sip_parser::Message;
    let s = server(|c| c.kind = ChallengeKind::Proxy);
    assert_eq!(s.config().kind.status(), 407);
    assert_eq!(s.config().kind.reason(), "Proxy Authentication Required");
    assert_eq!(ChallengeKind::Www.reason(), "Unauthorized");
    assert_eq!(s.config().kind.challenge_header(), "Proxy-Authenticate");
    let source = IpAddr::from([192, 0, 2, 4]);
    let head = "INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\nTo: <sip:bob@biloxi.com>\r\nFrom: <sip:alice@atlanta.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\n";
    let msg_with = |fields: &[String]| {
        let mut m = head.to_string();
        for f in fields {
            let _ = write!(m, "Proxy-Authorization: {f}\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        Message::parse(m.into_bytes().into()).unwrap()
    };
    let plain = msg_with(&[]);
    let ch = s.challenge(&sip_auth::Request::from_message(&plain, source), NOW, false);
    let cr = ClientRequest {
        method: "INVITE",
        uri: "sip:bob@biloxi.com",
        body: b"",
    };
    let ours = DigestClient::new("bob", "zanzibar")
        .respond(&bytes(&ch), &cr, "x")
        .unwrap();
    let other_realm = r#"Digest username="a", realm="other", nonce="n", uri="u", response="r""#;
    let msg = msg_with(&[
        "Bearer mF_9.B5f-4.1JqM".into(),
        other_realm.into(),
        ours.clone(),
    ]);
    match s.verify_message(&msg, source, &store(), NOW) {
        Outcome::Ok(ok) => assert_eq!(ok.user, "bob"),
        o => panic!("{o:?}"),
    }
    // Once more: the same nc is a replay, answered with a re-challenge and not counted.
    let o = s.verify_message(&msg, source, &store(), NOW);
    assert_eq!(o, Outcome::Failed(FailReason::Replay));
    // No credentials for us: challenge (407).
    let none_for_us = msg_with(&[other_realm.into()]);
    let o = s.verify_message(&none_for_us, source, &store(), NOW);
    assert_eq!(o, Outcome::Failed(FailReason::NoCredentials));
    assert_eq!(FailReason::NoCredentials.status(ChallengeKind::Proxy), 407);
    // A malformed Digest value and none for us: 400, the offset inside that value.
    let malformed = msg_with(&["Digest realm=sip:biloxi.com".into()]);
    let o = s.verify_message(&malformed, source, &store(), NOW);
    assert_eq!(
        o,
        Outcome::Failed(FailReason::Malformed(sip_auth::DigestHeaderError::Syntax {
            offset: 16,
            what: "auth-param (',' expected)"
        }))
    );
    if let Outcome::Failed(r) = o {
        assert_eq!(
            (
                r.status(ChallengeKind::Proxy),
                r.reason_phrase(ChallengeKind::Proxy)
            ),
            (400, "Bad Request")
        );
        assert!(!r.counts_as_attempt());
    }
    // The request as the parser gives it.
    let r = sip_auth::Request::from_message(&plain, source);
    assert_eq!(
        (r.method, r.request_uri, r.call_id, r.from_tag, r.source),
        (
            &b"INVITE"[..],
            &b"sip:bob@biloxi.com"[..],
            &b"a84b4c76e66710"[..],
            &b"1928301774"[..],
            Some(source)
        )
    );
}

/// `verify_message_cached` verifies from a parsed message with the auth cache: the first
/// request asks the store, the next one on the same nonce takes the HA1 from the cache, a
/// replay is still refused, and a message without credentials is `NoCredentials`.
#[test]
fn verify_message_cached_uses_the_cache() {
    use sip_parser::Message;
    let s = server(|_| {});
    let cache = AuthCache::new(16, Duration::from_secs(1800));
    let mono = Duration::from_secs(5);
    let source = IpAddr::from([192, 0, 2, 4]);
    let register = |auth: &str| {
        let m = format!(
            "REGISTER sip:biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds7\r\n\
             To: <sip:bob@biloxi.com>\r\nFrom: <sip:bob@biloxi.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710\r\nCSeq: 1 REGISTER\r\n{auth}Content-Length: 0\r\n\r\n"
        );
        Message::parse(m.into_bytes().into()).unwrap()
    };
    let plain = register("");
    assert_eq!(
        s.verify_message_cached(&plain, source, &store(), &cache, NOW, mono),
        Outcome::Failed(FailReason::NoCredentials)
    );
    let ch = s.challenge(&Request::from_message(&plain, source), NOW, false);
    let mut c = DigestClient::new("bob", "zanzibar");
    let first = register(&format!(
        "Authorization: {}\r\n",
        c.respond(&bytes(&ch), &REGISTER, "x").unwrap()
    ));
    let o = s.verify_message_cached(&first, source, &store(), &cache, NOW, mono);
    assert!(matches!(o, Outcome::Ok(ref ok) if !ok.from_cache), "{o:?}");
    let second = register(&format!(
        "Authorization: {}\r\n",
        c.authorize(&REGISTER, "x").unwrap()
    ));
    let o = s.verify_message_cached(&second, source, &store(), &cache, NOW, mono);
    assert!(
        matches!(o, Outcome::Ok(ref ok) if ok.from_cache && ok.user == "bob"),
        "{o:?}"
    );
    assert_eq!((cache.hits(), cache.misses()), (1, 1));
    assert_eq!(
        s.verify_message_cached(&second, source, &store(), &cache, NOW, mono),
        Outcome::Failed(FailReason::Replay)
    );
}
