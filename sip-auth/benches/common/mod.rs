//! The verification workload shared by the criterion benchmarks (`benches/auth.rs`) and the
//! callgrind workload (`examples/auth_profile.rs`): one server, one user, one valid header, and
//! the raw hashing those inputs need.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sip_auth::{
    Algorithm, ClientRequest, DigestClient, DigestServer, HashKind, MemoryStore, NonceSecrets,
    Outcome, Request, ServerConfig,
};

/// The Unix time of the workload.
pub(crate) const NOW: u64 = 1_700_000_000;
/// The Request-URI and digest-uri.
pub(crate) const URI: &str = "sip:atlanta.com";

/// A server for `alg` without replay table (it would rightly refuse the repeated `nc`, so
/// the stateless path is measured), a store with alice's HA1s, a valid `Authorization`
/// value from the client and the request it is for.
pub(crate) fn setup(alg: Algorithm) -> (DigestServer, MemoryStore, String, Request<'static>) {
    let mut cfg = ServerConfig::new("atlanta.com");
    cfg.algorithms = vec![alg];
    cfg.replay_table_size = 0;
    let server = DigestServer::new(cfg, NonceSecrets::new(1, &[7u8; 32]));
    let mut store = MemoryStore::new();
    for h in HashKind::ALL {
        store.add_ha1(
            "alice",
            "atlanta.com",
            h,
            sip_auth::ha1(h, "alice", "atlanta.com", "secret"),
        );
    }
    let req = Request {
        method: b"REGISTER",
        request_uri: URI.as_bytes(),
        source: Some(IpAddr::from([192, 0, 2, 1])),
        ..Request::default()
    };
    let ch = server.challenge(&req, NOW, false);
    let chb: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
    let creq = ClientRequest {
        method: "REGISTER",
        uri: URI,
        body: b"",
    };
    let auth = DigestClient::new("alice", "secret")
        .respond(&chb, &creq, "0a4f113b")
        .expect("respond");
    assert!(matches!(
        server.verify(auth.as_bytes(), &req, &store, NOW),
        Outcome::Ok(_)
    ));
    (server, store, auth, req)
}

/// A REGISTER as a phone sends it, carrying `authorization`.
pub(crate) fn register(authorization: &str) -> Vec<u8> {
    format!(
        "REGISTER {URI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds7;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@atlanta.com>;tag=456248\r\n\
         To: <sip:alice@atlanta.com>\r\n\
         Call-ID: 843817637684230@998sdasdh09\r\n\
         CSeq: 1827 REGISTER\r\n\
         Contact: <sip:alice@192.0.2.1:5060;transport=udp>;expires=3600\r\n\
         User-Agent: Example Phone 1.0\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
         Authorization: {authorization}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The pre-keyed nonce MAC state the raw hashing starts from.
pub(crate) fn mac_key() -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("key")
}

/// The hashing a verification cannot avoid, done directly with the hash crates: the nonce
/// MAC (HMAC-SHA-256 from a pre-keyed state), HA2 and the response.
pub(crate) fn raw_hashing<D: Digest>(ha1: &str, nonce: &str, mac_key: &Hmac<Sha256>) -> u8 {
    let mut m = mac_key.clone();
    m.update(&nonce.as_bytes()[..16]);
    m.update(&[0]);
    m.update(&11u32.to_be_bytes());
    m.update(b"atlanta.com");
    let tag = m.finalize().into_bytes();
    let ha2 = hex(&D::new()
        .chain_update(b"REGISTER:")
        .chain_update(URI)
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

fn hex(b: &[u8]) -> Vec<u8> {
    const H: &[u8; 16] = b"0123456789abcdef";
    b.iter()
        .flat_map(|x| [H[(x >> 4) as usize], H[(x & 15) as usize]])
        .collect()
}
