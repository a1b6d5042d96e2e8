//! Fuzz the Digest header views, and the server and client behind them, with arbitrary
//! `Authorization` / `WWW-Authenticate` values. Nothing may panic; a random value must never
//! authenticate; the views accept nothing sip-parser's scanner refuses and read the same
//! values from raw bytes as from a checked `AuthValue`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_auth::{
    AuthCache, Challenge, ClientRequest, Credentials, DigestClient, DigestServer, MemoryStore,
    NonceSecrets, Outcome, Request, ServerConfig,
};
use sip_parser::{AuthValue, Message};

fn decoded(v: &AuthValue<'_>, name: &str) -> Option<String> {
    v.get(name)
        .map(|p| String::from_utf8(p.decoded().into_owned()).expect("scanner checked UTF-8"))
}

fuzz_target!(|data: &[u8]| {
    let general = AuthValue::parse(data);
    let creds = Credentials::parse(data);
    let challenge = Challenge::parse(data);
    // One grammar: a Digest view never accepts what the scanner refuses.
    if creds.is_ok() || challenge.is_ok() {
        assert!(general.is_ok(), "{creds:?} / {challenge:?} but scanner: {general:?}");
    }
    if let Ok(p) = &general {
        assert_eq!(Credentials::try_from(*p), creds);
        assert_eq!(Challenge::try_from(*p), challenge);
    }
    if let (Ok(p), Ok(c)) = (&general, &creds) {
        assert_eq!(decoded(p, "realm").as_deref(), Some(&*c.realm()));
        assert_eq!(decoded(p, "nonce").as_deref(), Some(&*c.nonce()));
        assert_eq!(decoded(p, "uri").as_deref(), Some(&*c.uri()));
        assert_eq!(decoded(p, "response").as_deref(), Some(&*c.response()));
        assert_eq!(decoded(p, "cnonce").as_deref(), c.cnonce().as_deref());
        if p.get("username*").is_none() {
            assert_eq!(decoded(p, "username").as_deref(), Some(&*c.username()));
        }
    }

    let mut store = MemoryStore::new();
    store.add_password("alice", "atlanta.com", "secret");
    let mut cfg = ServerConfig::new("atlanta.com");
    cfg.replay_table_size = 64;
    let server = DigestServer::new(cfg, NonceSecrets::new(1, b"fuzz-secret"));
    let req = Request {
        method: b"REGISTER",
        request_uri: b"sip:atlanta.com",
        ..Request::default()
    };
    let outcome = server.verify(data, &req, &store, 1_700_000_000);
    assert!(!matches!(outcome, Outcome::Ok(_)), "random input authenticated");

    // The same value inside a REGISTER, verified from the parsed message.
    let mut wire = b"REGISTER sip:atlanta.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
        From: <sip:alice@atlanta.com>;tag=1\r\nTo: <sip:alice@atlanta.com>\r\nCall-ID: c\r\n\
        CSeq: 1 REGISTER\r\nAuthorization: "
        .to_vec();
    wire.extend_from_slice(data);
    wire.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    if let Ok(msg) = Message::parse_slice(&wire) {
        let source = core::net::IpAddr::from([192, 0, 2, 1]);
        let outcome = server.verify_message(&msg, source, &store, 1_700_000_000);
        assert!(!matches!(outcome, Outcome::Ok(_)), "random input authenticated");
        // And through the auth cache, as a proxy verifies.
        let cache = AuthCache::new(4, core::time::Duration::from_secs(60));
        let now = core::time::Duration::from_secs(1);
        let outcome =
            server.verify_message_cached(&msg, source, &store, &cache, 1_700_000_000, now);
        assert!(!matches!(outcome, Outcome::Ok(_)), "random input authenticated");
    }

    let mut client = DigestClient::new("alice", "secret");
    let creq = ClientRequest {
        method: "REGISTER",
        uri: "sip:atlanta.com",
        body: b"",
    };
    if let Ok(v) = client.respond(&[data], &creq, "cnonce") {
        // What the client writes must parse back.
        assert!(Credentials::parse(v.as_bytes()).is_ok(), "{v}");
    }
});
