//! Criterion benchmarks of sip-auth: a whole authenticated REGISTER (parse the message with
//! sip-parser, verify it, build the 200), challenge generation, verification of valid MD5
//! and SHA-256 responses beside the raw hashing those inputs need, cache hit, ban check.
//!
//! Run: `cargo bench -p sip-auth --bench auth`.

mod common;

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use common::{NOW, raw_hashing, register, setup};
use criterion::{Criterion, criterion_main};
use md5::Md5;
use sha2::Sha256;
use sip_auth::{Algorithm, AuthCache, BanConfig, FailureTracker, HashKind, Outcome};
use sip_parser::{Message, ResponseBuilder};

fn benches(c: &mut Criterion) {
    let mac_key = common::mac_key();
    for (alg, name) in [(Algorithm::Md5, "md5"), (Algorithm::Sha256, "sha256")] {
        let (server, store, auth, req) = setup(alg);
        // What a registrar does per authenticated REGISTER, minus the socket and the
        // location store: frame the datagram, find and verify the credentials for our
        // realm, answer 200 with the Contact.
        let wire = register(&auth);
        let source = IpAddr::from([192, 0, 2, 1]);
        c.bench_function(&format!("register_e2e_{name}"), |b| {
            b.iter(|| {
                let msg = Message::parse_slice(black_box(&wire)).expect("REGISTER");
                let Outcome::Ok(_) = server.verify_message(&msg, source, &store, NOW) else {
                    panic!("refused");
                };
                let contact = msg.header("Contact").unwrap_or_default();
                black_box(
                    ResponseBuilder::new(&msg, 200, "OK")
                        .header("Contact", contact.to_vec())
                        .build(),
                )
            });
        });
        c.bench_function(&format!("verify_valid_{name}"), |b| {
            b.iter(|| {
                let o = server.verify(black_box(auth.as_bytes()), &req, &store, NOW);
                debug_assert!(matches!(o, Outcome::Ok(_)));
                black_box(o)
            });
        });
        let ha1 = sip_auth::ha1(alg.hash(), "alice", "atlanta.com", "secret");
        let nonce_hex = server.challenge(&req, NOW, false)[0].clone();
        let n = nonce_hex.split('"').nth(3).unwrap().to_string();
        c.bench_function(&format!("raw_hashing_{name}"), |b| {
            b.iter(|| match alg {
                Algorithm::Md5 => black_box(raw_hashing::<Md5>(ha1.as_str(), &n, &mac_key)),
                _ => black_box(raw_hashing::<Sha256>(ha1.as_str(), &n, &mac_key)),
            });
        });
    }

    let (_, store, auth, _) = setup(Algorithm::Sha256);
    c.bench_function("parse_credentials", |b| {
        b.iter(|| black_box(sip_auth::Credentials::parse(black_box(auth.as_bytes())).is_ok()));
    });
    c.bench_function("store_lookup", |b| {
        b.iter(|| {
            black_box(sip_auth::CredentialStore::lookup(
                &store,
                black_box("alice"),
                "atlanta.com",
                HashKind::Sha256,
            ))
        });
    });

    let (server, _, _, req) = setup(Algorithm::Sha256);
    c.bench_function("challenge_generation", |b| {
        b.iter(|| black_box(server.challenge(black_box(&req), NOW, false)));
    });

    let cache = AuthCache::new(65_536, Duration::from_secs(1800));
    let ip = Some(IpAddr::from([192, 0, 2, 1]));
    let h = HashKind::Md5.hex(&[b"x"]);
    for i in 0..10_000 {
        cache.insert(
            &format!("u{i}"),
            "atlanta.com",
            ip,
            HashKind::Md5,
            h,
            Duration::ZERO,
        );
    }
    cache.insert("alice", "atlanta.com", ip, HashKind::Md5, h, Duration::ZERO);
    c.bench_function("cache_hit", |b| {
        b.iter(|| {
            black_box(cache.get(
                black_box("alice"),
                "atlanta.com",
                ip,
                HashKind::Md5,
                Duration::from_secs(1),
            ))
        });
    });

    let bans = FailureTracker::new(BanConfig::default());
    for i in 0..10_000u32 {
        bans.record_failure(IpAddr::from(i.to_be_bytes()), None, Duration::from_secs(1));
    }
    let probe = IpAddr::from(77u32.to_be_bytes());
    c.bench_function("ban_check", |b| {
        b.iter(|| black_box(bans.is_banned(black_box(probe), Duration::from_secs(2))));
    });
}

/// The benchmark group (a module so the generated function may go undocumented).
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(auth, super::benches);
}
criterion_main!(group::auth);
