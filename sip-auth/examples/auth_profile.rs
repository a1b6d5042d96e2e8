//! Verifies one valid SHA-256 (or, with `ALG=md5`, MD5) `Authorization` header N times: a
//! fixed workload for `valgrind --tool=callgrind` (instruction counts are repeatable on a
//! noisy machine; valgrind does not emulate the SHA extensions, so hashing runs in software
//! there and the counts show the non-hashing work best). `E2E=1` runs the whole REGISTER
//! instead (parse with sip-parser, `verify_message`, build the 200), `PARSE_ONLY=1` the
//! header parser alone, `RAW=1` the raw hashing.
//!
//! `cargo build --release -p sip-auth --example auth_profile && valgrind --tool=callgrind \
//!  target/release/examples/auth_profile 10000`

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{NOW, register, setup};
use sip_auth::{Algorithm, Outcome};
use sip_parser::{Message, ResponseBuilder};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let alg = match std::env::var("ALG").as_deref() {
        Ok("md5") => Algorithm::Md5,
        _ => Algorithm::Sha256,
    };
    let (server, store, auth, req) = setup(alg);
    let only_parse = std::env::var_os("PARSE_ONLY").is_some();
    if std::env::var_os("RAW").is_some() {
        raw(n, alg, &server.challenge(&req, NOW, false)[0]);
        return;
    }
    if std::env::var_os("E2E").is_some() {
        let wire = register(&auth);
        let source = std::net::IpAddr::from([192, 0, 2, 1]);
        for _ in 0..n {
            let msg = Message::parse_slice(black_box(&wire)).expect("REGISTER");
            let o = server.verify_message(&msg, source, &store, NOW);
            assert!(matches!(o, Outcome::Ok(_)));
            black_box(ResponseBuilder::new(&msg, 200, "OK").build());
        }
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

/// The hashing a verification cannot avoid (the `raw_hashing` benchmark's workload).
fn raw(n: usize, alg: Algorithm, challenge: &str) {
    let key = common::mac_key();
    let ha1 = sip_auth::ha1(alg.hash(), "alice", "atlanta.com", "secret");
    let nonce = challenge.split('"').nth(3).expect("nonce").to_string();
    for _ in 0..n {
        black_box(match alg {
            Algorithm::Md5 => {
                common::raw_hashing::<md5::Md5>(ha1.as_str(), black_box(&nonce), &key)
            }
            _ => common::raw_hashing::<sha2::Sha256>(ha1.as_str(), black_box(&nonce), &key),
        });
    }
}
