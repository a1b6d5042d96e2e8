//! Property tests: tampering with any field fails, nonces never verify after expiry + drift,
//! the replay table stays within its bound and never accepts a replay, and the header parser
//! never panics.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use proptest::prelude::*;
use sip_auth::ParseError;
use sip_auth::header::DigestParams;
use sip_auth::{
    Algorithm, Challenge, ClientRequest, Credentials, DigestClient, DigestServer, MemoryStore,
    NonceSecrets, Outcome, Qop, ReplayTable, Request, ServerConfig,
};

const NOW: u64 = 1_700_000_000;
const FIELDS: [&str; 7] = [
    "nonce", "response", "uri", "username", "realm", "nc", "cnonce",
];

fn setup(alg: Algorithm) -> (DigestServer, MemoryStore, Request<'static>) {
    let mut cfg = ServerConfig::new("atlanta.com");
    cfg.algorithms = vec![alg];
    let server = DigestServer::new(cfg, NonceSecrets::new(1, b"prop-secret"));
    let mut store = MemoryStore::new();
    store.add_password("alice", "atlanta.com", "secret");
    store.add_password("bob", "atlanta.com", "secret");
    let req = Request {
        method: "REGISTER",
        request_uri: "sip:atlanta.com",
        source: Some(IpAddr::from([192, 0, 2, 1])),
        ..Request::default()
    };
    (server, store, req)
}

fn authorize(server: &mut DigestServer, req: &Request<'_>, issued: u64, cnonce: &str) -> String {
    let ch = server.challenge(req, issued, false);
    let b: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
    DigestClient::new("alice", "secret")
        .respond(
            &b,
            &ClientRequest {
                method: "REGISTER",
                uri: "sip:atlanta.com",
                body: b"",
            },
            cnonce,
        )
        .unwrap()
}

/// Replace the value of `field` in a header built by our client.
fn replace_field(h: &str, field: &str, new: &str) -> String {
    let key = format!(" {field}=");
    let start = h.find(&key).unwrap() + key.len();
    let rest = &h[start..];
    let end = if let Some(inner) = rest.strip_prefix('"') {
        1 + inner.find('"').unwrap() + 1
    } else {
        rest.find(',').unwrap_or(rest.len())
    };
    let quoted = rest.starts_with('"');
    let value = if quoted {
        format!("\"{new}\"")
    } else {
        new.to_string()
    };
    format!("{}{}{}", &h[..start], value, &rest[end..])
}

fn field_value(h: &str, field: &str) -> String {
    let p = DigestParams::parse_str(h).unwrap();
    p.get(field).unwrap().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tampering_any_field_fails(
        alg in prop::sample::select(vec![Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256Sess]),
        field in prop::sample::select(FIELDS.to_vec()),
        pos in any::<prop::sample::Index>(),
        replacement in "[0-9a-f]",
        cnonce in "[A-Za-z0-9]{1,16}",
    ) {
        let (mut server, store, req) = setup(alg);
        let h = authorize(&mut server, &req, NOW, &cnonce);
        let old = field_value(&h, field);
        let mut new = old.clone();
        if field == "username" {
            new = "bob".into();
        } else if field == "nc" {
            new = "00000002".into();
        } else {
            let i = pos.index(old.len());
            new.replace_range(i..=i, &replacement);
        }
        prop_assume!(new != old);
        let tampered = replace_field(&h, field, &new);
        let o = server.verify(tampered.as_bytes(), &req, &store, NOW);
        prop_assert!(!matches!(o, Outcome::Ok(_)), "{field}: {tampered} -> {o:?}");
        // The untouched header still verifies.
        let o = server.verify(h.as_bytes(), &req, &store, NOW);
        prop_assert!(matches!(o, Outcome::Ok(_)), "{o:?}");
    }

    #[test]
    fn nonces_never_verify_after_expiry_and_drift(
        issued in 0u64..4_000_000_000,
        late in 306u64..1_000_000,
    ) {
        let (mut server, store, req) = setup(Algorithm::Sha256);
        let h = authorize(&mut server, &req, issued, "c");
        let o = server.verify(h.as_bytes(), &req, &store, issued + late);
        prop_assert_eq!(o, Outcome::Stale);
        // Within the lifetime it is fine.
        let o = server.verify(h.as_bytes(), &req, &store, issued + (late % 305));
        prop_assert!(matches!(o, Outcome::Ok(_)), "{o:?}");
    }

    #[test]
    fn replay_table_bounded_and_never_accepts_a_replay(
        size in 1usize..64,
        one_time in any::<bool>(),
        ops in prop::collection::vec((any::<bool>(), 0usize..200, 1u32..20), 1..400),
    ) {
        let t = ReplayTable::new(size, one_time);
        let mem = t.memory_bytes();
        let mut issued = Vec::new();
        let mut accepted: HashSet<(u32, u32)> = HashSet::new();
        let mut last_nc = std::collections::HashMap::new();
        for (issue, which, nc) in ops {
            if issue || issued.is_empty() {
                issued.push(t.issue());
            } else {
                let nid = issued[which % issued.len()];
                if t.check(nid, Some(nc)) == sip_auth::replay::ReplayCheck::Fresh {
                    prop_assert!(accepted.insert((nid, nc)), "replay of {nid}/{nc} accepted");
                    if one_time {
                        prop_assert!(last_nc.insert(nid, nc).is_none(), "one-time nonce reused");
                    } else {
                        let prev = last_nc.insert(nid, nc).unwrap_or(0);
                        prop_assert!(nc > prev);
                    }
                }
            }
            prop_assert_eq!(t.memory_bytes(), mem);
            prop_assert_eq!(t.capacity(), size);
        }
    }

    #[test]
    fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = DigestParams::parse(&bytes);
        let _ = Credentials::parse(&bytes);
        let _ = Challenge::parse(&bytes);
        let mut v = b"Digest ".to_vec();
        v.extend_from_slice(&bytes);
        let _ = Credentials::parse(&v);
    }

    /// The credentials parser (word-compared names, values kept as ranges) reads every
    /// field exactly as the general parameter parser does, whatever the case of the names,
    /// the whitespace around `=` and `,`, the order, escapes and unknown parameters.
    #[test]
    fn credentials_agree_with_general_parser(
        fields in prop::sample::subsequence(
            vec!["username", "realm", "nonce", "uri", "response", "cnonce", "opaque", "qop", "nc", "algorithm", "x-extra", "stale"],
            3..12,
        ),
        values in prop::collection::vec("[ -~]{0,20}", 12),
        upper in prop::collection::vec(any::<bool>(), 12),
        ws in prop::collection::vec(prop::sample::select(vec!["", " ", "\t", "  "]), 36),
        quoted in prop::collection::vec(any::<bool>(), 12),
        shuffle in any::<u64>(),
    ) {
        let mut order: Vec<usize> = (0..fields.len()).collect();
        let mut x = shuffle | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut s = String::from("Digest ");
        for (k, &i) in order.iter().enumerate() {
            let name = if upper[i] { fields[i].to_uppercase() } else { fields[i].to_string() };
            let v = match fields[i] {
                "nc" => "0000001a".to_string(),
                "qop" => "auth".to_string(),
                "algorithm" => "SHA-256".to_string(),
                _ => values[i].clone(),
            };
            if k > 0 { let _ = write!(s, "{},{}", ws[3 * i], ws[3 * i + 1]); }
            let eq = ws[3 * i + 2];
            if quoted[i] || v.is_empty() || !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                let _ = write!(s, "{name}{eq}={eq}\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
            } else {
                let _ = write!(s, "{name}{eq}={eq}{v}");
            }
        }
        let general = DigestParams::parse_str(&s);
        let creds = Credentials::parse_str(&s);
        match (&general, &creds) {
            (Ok(p), Ok(c)) => {
                prop_assert_eq!(p.get("username"), Some(&*c.username()));
                prop_assert_eq!(p.get("realm"), Some(&*c.realm()));
                prop_assert_eq!(p.get("nonce"), Some(&*c.nonce()));
                prop_assert_eq!(p.get("uri"), Some(&*c.uri()));
                prop_assert_eq!(p.get("response"), Some(&*c.response()));
                prop_assert_eq!(p.get("cnonce").map(str::to_owned), c.cnonce().map(std::borrow::Cow::into_owned));
                prop_assert_eq!(p.get("opaque").map(str::to_owned), c.opaque().map(std::borrow::Cow::into_owned));
                prop_assert_eq!(p.get("nc").map(str::to_owned), c.nc_raw().map(std::borrow::Cow::into_owned));
                prop_assert_eq!(c.nc(), p.get("nc").map(|_| 0x1a));
                prop_assert_eq!(c.qop(), p.get("qop").map(|_| Ok(Qop::Auth)));
                let alg = if p.get("algorithm").is_some() { Algorithm::Sha256 } else { Algorithm::Md5 };
                prop_assert_eq!(c.algorithm(), Some(alg));
            }
            (Ok(p), Err(e)) => {
                let required = ["username", "realm", "nonce", "uri", "response"];
                let missing = required.iter().find(|n| p.get(n).is_none());
                let expected = missing.map(|n| ParseError::Missing(n));
                prop_assert_eq!(Some(*e), expected, "{}", s);
            }
            (Err(e), _) => prop_assert!(creds.is_err(), "general parser refused {:?} ({:?}) but credentials parsed", s, e),
        }
    }

    #[test]
    fn parser_handles_structured_noise(
        params in prop::collection::vec(("[a-zA-Z-]{1,8}", "[ -~]{0,12}", any::<bool>()), 1..10),
    ) {
        let mut s = String::from("Digest ");
        for (i, (n, v, quoted)) in params.iter().enumerate() {
            if i > 0 { s.push_str(", "); }
            if *quoted {
                let _ = write!(s, "{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
            } else {
                let _ = write!(s, "{n}={v}");
            }
        }
        if let Ok(p) = DigestParams::parse_str(&s) {
            for (n, v, quoted) in &params {
                if *quoted && p.params().iter().filter(|x| x.name.eq_ignore_ascii_case(n)).count() == 1 {
                    prop_assert_eq!(p.get(n), Some(v.as_str()));
                }
            }
        }
    }
}
