//! Verifies one valid SHA-256 (or, with `ALG=md5`, MD5) `Authorization` header N times: a
//! fixed workload for `valgrind --tool=callgrind` (instruction counts are repeatable on a
//! noisy machine; valgrind does not emulate the SHA extensions, so hashing runs in software
//! there and the counts show the non-hashing work best).
//!
//! `cargo build --release -p sip-auth --example profile && valgrind --tool=callgrind \
//!  target/release/examples/profile 10000`

use std::hint::black_box;
use std::net::IpAddr;

use sip_auth::{
    Algorithm, ClientRequest, DigestClient, DigestServer, HashKind, MemoryStore, NonceSecrets,
    Outcome, Request, ServerConfig,
};

const NOW: u64 = 1_700_000_000;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let alg = match std::env::var("ALG").as_deref() {
        Ok("md5") => Algorithm::Md5,
        _ => Algorithm::Sha256,
    };
    let mut cfg = ServerConfig::new("atlanta.com");
    cfg.algorithms = vec![alg];
    cfg.replay_table_size = 0;
    let mut server = DigestServer::new(cfg, NonceSecrets::new(1, &[7u8; 32]));
    let mut store = MemoryStore::new();
    for h in HashKind::ALL {
        store.add_ha1(
            "alice",
            "atlanta.com",
            h,
            sip_auth::digest::ha1(h, "alice", "atlanta.com", "secret"),
        );
    }
    let req = Request {
        method: "REGISTER",
        request_uri: "sip:atlanta.com",
        source: Some(IpAddr::from([192, 0, 2, 1])),
        ..Request::default()
    };
    let ch = server.challenge(&req, NOW, false);
    let chb: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
    let creq = ClientRequest {
        method: "REGISTER",
        uri: "sip:atlanta.com",
        body: b"",
    };
    let auth = DigestClient::new("alice", "secret")
        .respond(&chb, &creq, "0a4f113b")
        .expect("respond");
    let only_parse = std::env::var_os("PARSE_ONLY").is_some();
    if std::env::var_os("RAW").is_some() {
        raw(n, alg, &server.challenge(&req, NOW, false)[0]);
        return;
    }
    for _ in 0..n {
        if only_parse {
            black_box(sip_auth::Credentials::parse(black_box(auth.as_bytes())).is_ok());
        } else {
            let o = server.verify(black_box(auth.as_bytes()), &req, &store, NOW);
            assert!(matches!(o, Outcome::Ok(_)));
        }
    }
    println!("{auth}");
}

/// The hashing a verification cannot avoid (the `raw_hashing` benchmark's workload): the
/// nonce MAC from a pre-keyed HMAC state, HA2 and the response.
fn raw(n: usize, alg: Algorithm, challenge: &str) {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    fn hex(b: &[u8]) -> Vec<u8> {
        const H: &[u8; 16] = b"0123456789abcdef";
        b.iter()
            .flat_map(|x| [H[(x >> 4) as usize], H[(x & 15) as usize]])
            .collect()
    }
    fn once<D: Digest>(ha1: &str, nonce: &str, key: &Hmac<Sha256>) -> u8 {
        let mut m = key.clone();
        m.update(&nonce.as_bytes()[..16]);
        m.update(&[0]);
        m.update(&11u32.to_be_bytes());
        m.update(b"atlanta.com");
        let tag = m.finalize().into_bytes();
        let ha2 = hex(&D::new()
            .chain_update(b"REGISTER:")
            .chain_update("sip:atlanta.com")
            .finalize());
        let r = D::new()
            .chain_update(ha1)
            .chain_update(b":")
            .chain_update(nonce)
            .chain_update(b":00000001:0a4f113b:auth:")
            .chain_update(&ha2)
            .finalize();
        tag[0] ^ r[0]
    }
    let key = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("key");
    let ha1 = sip_auth::digest::ha1(alg.hash(), "alice", "atlanta.com", "secret");
    let nonce = challenge.split('"').nth(3).expect("nonce").to_string();
    for _ in 0..n {
        black_box(match alg {
            Algorithm::Md5 => once::<md5::Md5>(ha1.as_str(), black_box(&nonce), &key),
            _ => once::<Sha256>(ha1.as_str(), black_box(&nonce), &key),
        });
    }
}
