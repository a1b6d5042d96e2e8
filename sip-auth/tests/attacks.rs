//! Attack tests: replayed nc, nonces from another realm / secret / IP or made up, a flood
//! of distinct failing IPs (memory bounded), slow brute force across the window. The memory
//! figures the README states are measured in `tests/memory.rs`.

use std::net::IpAddr;
use std::time::Duration;

use sip_auth::{
    BanConfig, Bindings, ClientRequest, DigestClient, DigestServer, FailReason, FailureTracker,
    FailureVerdict, MemoryStore, NonceSecrets, Outcome, RateConfig, RateLimiter, ReplayTable,
    Request, ServerConfig,
};

const NOW: u64 = 1_700_000_000;
const CR: ClientRequest<'static> = ClientRequest {
    method: "REGISTER",
    uri: "sip:atlanta.com",
    body: b"",
};

fn store() -> MemoryStore {
    let mut s = MemoryStore::new();
    s.add_password("alice", "atlanta.com", "secret");
    s.add_password("alice", "biloxi.com", "secret");
    s
}

fn req(ip: [u8; 4]) -> Request<'static> {
    Request {
        method: b"REGISTER",
        request_uri: b"sip:atlanta.com",
        source: Some(IpAddr::from(ip)),
        call_id: b"cid",
        ..Request::default()
    }
}

fn server(realm: &str, secret: &[u8], f: impl FnOnce(&mut ServerConfig)) -> DigestServer {
    let mut cfg = ServerConfig::new(realm);
    cfg.check_uri = true;
    f(&mut cfg);
    DigestServer::new(cfg, NonceSecrets::new(1, secret))
}

fn answer(s: &DigestServer, r: &Request<'_>) -> (DigestClient, String) {
    let ch = s.challenge(r, NOW, false);
    let b: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
    let mut c = DigestClient::new("alice", "secret");
    let a = c.respond(&b, &CR, "cn").unwrap();
    (c, a)
}

#[test]
fn replayed_nc_is_refused() {
    let s = server("atlanta.com", b"k", |_| {});
    let r = req([192, 0, 2, 1]);
    let (mut c, a1) = answer(&s, &r);
    assert!(matches!(
        s.verify(a1.as_bytes(), &r, &store(), NOW),
        Outcome::Ok(_)
    ));
    for _ in 0..3 {
        assert_eq!(
            s.verify(a1.as_bytes(), &r, &store(), NOW),
            Outcome::Failed(FailReason::Replay)
        );
    }
    let a2 = c.authorize(&CR, "cn").unwrap();
    let a3 = c.authorize(&CR, "cn").unwrap();
    // Out of order: 3 then 2; 2 is then a replay.
    assert!(matches!(
        s.verify(a3.as_bytes(), &r, &store(), NOW),
        Outcome::Ok(_)
    ));
    assert_eq!(
        s.verify(a2.as_bytes(), &r, &store(), NOW),
        Outcome::Failed(FailReason::Replay)
    );
    // Not a password guess, and a retransmission looks the same: not counted.
    assert!(!FailReason::Replay.counts_as_attempt());
}

/// A nonce in our format that does not verify (other realm, other secret, altered MAC) never
/// authenticates. It is answered stale without the response being checked, so it neither
/// reveals anything about the password nor counts: the attacker gets the re-challenge any
/// request without credentials gets. A nonce not in our format at all is `InvalidNonce`.
#[test]
fn forged_or_foreign_nonces_never_authenticate() {
    let r = req([192, 0, 2, 1]);
    // Other realm, same secret: the client answers biloxi's challenge, and the attacker
    // rewrites the realm to atlanta's.
    let biloxi = server("biloxi.com", b"same", |_| {});
    let (_, a) = answer(&biloxi, &r);
    let atlanta = server("atlanta.com", b"same", |_| {});
    let forged = a.replace("realm=\"biloxi.com\"", "realm=\"atlanta.com\"");
    assert_eq!(
        atlanta.verify(forged.as_bytes(), &r, &store(), NOW),
        Outcome::Stale
    );
    // Same realm, other secret (a restart with a new secret looks the same).
    let other = server("atlanta.com", b"other-secret", |_| {});
    let (_, a) = answer(&other, &r);
    assert_eq!(
        atlanta.verify(a.as_bytes(), &r, &store(), NOW),
        Outcome::Stale
    );
    // Stale without a check: a wrong password on such a nonce is answered the same.
    let wrong = DigestClient::new("alice", "guess")
        .respond(&[other.challenge(&r, NOW, false)[0].as_bytes()], &CR, "g")
        .unwrap();
    assert_eq!(
        atlanta.verify(wrong.as_bytes(), &r, &store(), NOW),
        Outcome::Stale
    );
    // A made-up nonce of the right shape.
    let (_, a) = answer(&atlanta, &r);
    let nonce = a
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut fake = nonce.to_string();
    fake.replace_range(40..41, if &nonce[40..41] == "0" { "1" } else { "0" });
    assert_eq!(
        atlanta.verify(a.replace(nonce, &fake).as_bytes(), &r, &store(), NOW),
        Outcome::Stale
    );
    // Not our format: another server's nonce, or anything made up.
    for foreign in [
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        &nonce.to_uppercase(),
        "",
    ] {
        let h = a.replace(nonce, foreign);
        let o = atlanta.verify(h.as_bytes(), &r, &store(), NOW);
        assert_eq!(o, Outcome::Failed(FailReason::InvalidNonce), "{foreign}");
        assert!(!FailReason::InvalidNonce.counts_as_attempt());
    }
}

/// A captured Authorization sent from another address (or for another call) does not
/// authenticate: the nonce's MAC covers its bindings. An honest client whose address
/// changed gets a stale re-challenge and a nonce for its new address.
#[test]
fn nonce_bound_to_another_ip_does_not_authenticate() {
    let s = server("atlanta.com", b"k", |c| {
        c.bindings = Bindings {
            source_ip: true,
            call_id: true,
            ..Bindings::default()
        };
    });
    let victim = req([192, 0, 2, 1]);
    let (_, a) = answer(&s, &victim);
    // The attacker captured the victim's Authorization and sends it from elsewhere.
    assert_eq!(
        s.verify(a.as_bytes(), &req([203, 0, 113, 66]), &store(), NOW),
        Outcome::Stale
    );
    let mut other_call = victim;
    other_call.call_id = b"another";
    assert_eq!(
        s.verify(a.as_bytes(), &other_call, &store(), NOW),
        Outcome::Stale
    );
    assert!(matches!(
        s.verify(a.as_bytes(), &victim, &store(), NOW),
        Outcome::Ok(_)
    ));
}

#[test]
fn ten_thousand_failing_ips_stay_bounded() {
    let cfg = BanConfig {
        capacity: 1024,
        ..BanConfig::default()
    };
    let t = FailureTracker::new(cfg);
    let mem = t.memory_bytes();
    let s = server("atlanta.com", b"k", |_| {});
    let st = store();
    let base = Duration::from_secs(1000);
    // Each of 10 000 sources sends one wrong answer; one persistent attacker keeps failing.
    let attacker = IpAddr::from([198, 51, 100, 1]);
    let mut banned_at = None;
    for i in 0..10_000u32 {
        let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
        let r = Request {
            source: Some(ip),
            ..req([0, 0, 0, 0])
        };
        let ch = s.challenge(&r, NOW, false);
        let b: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
        let a = DigestClient::new("alice", "guess")
            .respond(&b, &CR, "x")
            .unwrap();
        let now = base + Duration::from_millis(u64::from(i));
        if let Outcome::Failed(reason) = s.verify(a.as_bytes(), &r, &st, NOW) {
            assert!(reason.counts_as_attempt());
            t.record_failure(ip, Some("alice"), now);
        } else {
            panic!("wrong password accepted");
        }
        if i % 500 == 0 {
            if let FailureVerdict::Banned { .. } = t.record_failure(attacker, None, now) {
                banned_at.get_or_insert(i);
            }
        }
        assert!(t.tracked() <= 1024);
    }
    assert_eq!(t.memory_bytes(), mem);
    assert_eq!(banned_at, Some(2500), "the attacker's 6th failure bans it");
    assert!(t.is_banned(attacker, base + Duration::from_secs(11)));
    // The replay table did not grow either.
    assert_eq!(
        s.replay_memory_bytes(),
        65_536 * ReplayTable::BYTES_PER_NONCE
    );
}

#[test]
fn slow_brute_force_across_the_window_is_caught() {
    let t = FailureTracker::new(BanConfig::default());
    let ip = IpAddr::from([198, 51, 100, 2]);
    // One guess every 55 s: 6 guesses within 275 s < 300 s window. A counter reset every
    // 300 s from the first failure would see at most 5 + 1 across two windows; the sliding
    // window sees 6.
    let mut verdicts = Vec::new();
    for k in 0..6u64 {
        verdicts.push(t.record_failure(ip, None, Duration::from_secs(250 + 55 * k)));
    }
    assert!(
        matches!(verdicts[5], FailureVerdict::Banned { .. }),
        "{verdicts:?}"
    );
    // Slower than the policy (one per 61 s, so at most 5 in any 300 s): never banned.
    let slow = IpAddr::from([198, 51, 100, 3]);
    for k in 0..50u64 {
        let v = t.record_failure(slow, None, Duration::from_secs(61 * k));
        assert!(
            matches!(v, FailureVerdict::Counted(n) if n <= 5),
            "{k}: {v:?}"
        );
    }
}

#[test]
fn rate_limiter_flood_is_bounded() {
    let r = RateLimiter::new(RateConfig {
        capacity: 512,
        ..RateConfig::default()
    });
    for i in 0..10_000u32 {
        r.admit(
            IpAddr::from(i.to_be_bytes()),
            Duration::from_millis(u64::from(i)),
        );
        assert!(r.tracked() <= 512);
    }
}
