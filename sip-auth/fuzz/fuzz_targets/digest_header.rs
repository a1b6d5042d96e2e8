//! Fuzz the Digest header parser, and the server and client behind it, with arbitrary
//! `Authorization` / `WWW-Authenticate` values. Nothing may panic; a random value must never
//! authenticate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_auth::header::DigestParams;
use sip_auth::{
    Challenge, ClientRequest, Credentials, DigestClient, DigestServer, MemoryStore, NonceSecrets,
    Outcome, Request, ServerConfig,
};

fuzz_target!(|data: &[u8]| {
    let general = DigestParams::parse(data);
    let creds = Credentials::parse(data);
    let _ = Challenge::parse(data);
    // The credentials parser and the general one share a scanner but classify names
    // differently: they must read the same values.
    if let (Ok(p), Ok(c)) = (&general, &creds) {
        assert_eq!(p.get("realm"), Some(&*c.realm()));
        assert_eq!(p.get("nonce"), Some(&*c.nonce()));
        assert_eq!(p.get("uri"), Some(&*c.uri()));
        assert_eq!(p.get("response"), Some(&*c.response()));
        assert_eq!(p.get("cnonce"), c.cnonce().as_deref());
        if p.get("username*").is_none() {
            assert_eq!(p.get("username"), Some(&*c.username()));
        }
    }

    let mut store = MemoryStore::new();
    store.add_password("alice", "atlanta.com", "secret");
    let mut cfg = ServerConfig::new("atlanta.com");
    cfg.replay_table_size = 64;
    let mut server = DigestServer::new(cfg, NonceSecrets::new(1, b"fuzz-secret"));
    let req = Request {
        method: "REGISTER",
        request_uri: "sip:atlanta.com",
        ..Request::default()
    };
    let outcome = server.verify(data, &req, &store, 1_700_000_000);
    assert!(
        !matches!(outcome, Outcome::Ok(_)),
        "random input authenticated"
    );

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
