//! Criterion benchmarks of sip-auth: challenge generation, verification of valid MD5 and
//! SHA-256 responses beside the raw hashing those inputs need, nonce check alone, cache hit,
//! ban check.
//!
//! Run: `cargo bench -p sip-auth --bench auth`.

mod common;

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use common::{NOW, raw_hashing, setup};
use criterion::{Criterion, criterion_main};
use md5::Md5;
use sha2::Sha256;
use sip_auth::nonce::{self, BindingValues, Bindings, Lifetime};
use sip_auth::{Algorithm, AuthCache, BanConfig, FailureTracker, HashKind, NonceSecrets, Outcome};

fn benches(c: &mut Criterion) {
    let mac_key = common::mac_key();
    for (alg, name) in [(Algorithm::Md5, "md5"), (Algorithm::Sha256, "sha256")] {
        let (server, store, auth, req) = setup(alg);
        c.bench_function(&format!("verify_valid_{name}"), |b| {
            b.iter(|| {
                let o = server.verify(black_box(auth.as_bytes()), &req, &store, NOW);
                debug_assert!(matches!(o, Outcome::Ok(_)));
                black_box(o)
            });
        });
        let ha1 = sip_auth::digest::ha1(alg.hash(), "alice", "atlanta.com", "secret");
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

    let secrets = NonceSecrets::new(1, &[7u8; 32]);
    let values = BindingValues {
        source_ip: Some(IpAddr::from([192, 0, 2, 1])),
        ..BindingValues::default()
    };
    let bindings = Bindings {
        source_ip: true,
        ..Bindings::default()
    };
    let info = nonce::NonceInfo {
        issued: NOW,
        nid: 1,
        node: 0,
    };
    let n = nonce::issue(&secrets, info, "atlanta.com", bindings, &values);
    c.bench_function("nonce_check", |b| {
        b.iter(|| {
            black_box(nonce::check(
                &secrets,
                black_box(n.as_str()),
                "atlanta.com",
                bindings,
                &values,
                Lifetime::default(),
                NOW,
            ))
        });
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
