//! Property tests: tampering with any field fails, nonces never verify after expiry + drift,
//! the replay table stays within its bound and never accepts a replay, the header parser
//! never panics, accepts every well-formed value and reads the fields sip-parser's scanner
//! hands out.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use proptest::prelude::*;
use sip_auth::DigestHeaderError;
use sip_auth::{
    Algorithm, Challenge, ClientRequest, Credentials, DigestClient, DigestServer, MemoryStore,
    NonceSecrets, Outcome, Qop, ReplayTable, Request, ServerConfig,
};
use sip_parser::AuthValue;

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
        method: b"REGISTER",
        request_uri: b"sip:atlanta.com",
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
    decoded(&AuthValue::parse(h.as_bytes()).unwrap(), field).unwrap()
}

/// The decoded text of parameter `name` as sip-parser's scanner reads it.
fn decoded(v: &AuthValue<'_>, name: &str) -> Option<String> {
    v.get(name)
        .map(|p| String::from_utf8(p.decoded().into_owned()).unwrap())
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
                if t.check(nid, Some(nc)) == sip_auth::ReplayCheck::Fresh {
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
        let _ = AuthValue::parse(&bytes);
        let _ = Credentials::parse(&bytes);
        let _ = Challenge::parse(&bytes);
        let mut v = b"Digest ".to_vec();
        v.extend_from_slice(&bytes);
        let _ = Credentials::parse(&v);
    }

    /// The credentials view (values kept as ranges, escapes decoded once) reads every field
    /// exactly as sip-parser's scanner hands it out, whatever the case of the names, the
    /// whitespace around `=` and `,`, the order, escapes and unknown parameters; reading a
    /// checked `AuthValue` gives the same as parsing the bytes.
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
        let general = AuthValue::parse(s.as_bytes());
        let creds = Credentials::parse_str(&s);
        prop_assert!(general.is_ok(), "{s}: {general:?}");
        let p = general.unwrap();
        prop_assert_eq!(&Credentials::try_from(p), &creds);
        let get = |n: &str| decoded(&p, n);
        match &creds {
            Ok(c) => {
                prop_assert_eq!(get("username"), Some(c.username().into_owned()));
                prop_assert_eq!(get("realm"), Some(c.realm().into_owned()));
                prop_assert_eq!(get("nonce"), Some(c.nonce().into_owned()));
                prop_assert_eq!(get("uri"), Some(c.uri().into_owned()));
                prop_assert_eq!(get("response"), Some(c.response().into_owned()));
                prop_assert_eq!(get("cnonce"), c.cnonce().map(std::borrow::Cow::into_owned));
                prop_assert_eq!(get("opaque"), c.opaque().map(std::borrow::Cow::into_owned));
                prop_assert_eq!(get("nc"), c.nc_raw().map(std::borrow::Cow::into_owned));
                prop_assert_eq!(c.nc(), get("nc").map(|_| 0x1a));
                prop_assert_eq!(c.qop(), get("qop").map(|_| Ok(Qop::Auth)));
                let alg = if get("algorithm").is_some() { Algorithm::Sha256 } else { Algorithm::Md5 };
                prop_assert_eq!(c.algorithm(), Some(alg));
            }
            Err(e) => {
                let required = ["username", "realm", "nonce", "uri", "response"];
                let missing = required.iter().find(|n| get(n).is_none());
                let expected = missing.map(|n| DigestHeaderError::Missing(n));
                prop_assert_eq!(Some(*e), expected, "{}", s);
            }
        }
    }

    /// Every well-formed value is accepted and read back as written: names and unquoted
    /// values from all of RFC 7230 `tchar`, quoted values with escapes, non-ASCII text and
    /// folds, any white space and empty elements between parameters. As the tail of
    /// complete credentials (names prefixed so none is one `Credentials` reads) it parses
    /// too.
    #[test]
    fn parser_accepts_structured_input(
        params in prop::collection::vec(
            ("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}", "[ -~\u{e4}\u{20ac}]{0,12}", any::<bool>(), any::<bool>()),
            1..10,
        ),
        seps in prop::collection::vec(prop::sample::select(vec![",", ", ", " ,", ",\t", ",\r\n ", " , , "]), 10),
    ) {
        let mut list = String::new();
        let mut tail = String::new();
        let mut expected = Vec::new();
        for (i, (n, v, quoted, fold)) in params.iter().enumerate() {
            if i > 0 {
                list.push_str(seps[i]);
            }
            let start = list.len();
            let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+.^_`|~-".contains(c);
            if !quoted && !v.is_empty() && v.chars().all(tchar) {
                let _ = write!(list, "{n}={v}");
                expected.push((n.clone(), v.clone()));
            } else {
                let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
                // A fold inside the quotes, with the white space starting the next line,
                // reads as one SP (RFC 3261 §7.3.1).
                let (text, read) = if *fold {
                    let next = v.trim_start_matches([' ', '\t']);
                    (format!("{escaped}\r\n\t{escaped}"), format!("{v} {next}"))
                } else {
                    (escaped, v.clone())
                };
                let _ = write!(list, "{n}=\"{text}\"");
                expected.push((n.clone(), read));
            }
            let _ = write!(tail, "{}x-{}", seps[i], &list[start..]);
        }
        let s = format!("Digest {list}");
        let p = AuthValue::parse(s.as_bytes());
        prop_assert!(p.is_ok(), "{s:?}: {p:?}");
        let got: Vec<(String, String)> = p
            .unwrap()
            .params()
            .map(|q| (String::from_utf8(q.name.to_vec()).unwrap(), String::from_utf8(q.decoded().into_owned()).unwrap()))
            .collect();
        prop_assert_eq!(got, expected);
        let c = format!(r#"Digest username="a", realm="r", nonce="n", uri="u", response="x"{tail}"#);
        prop_assert!(Credentials::parse_str(&c).is_ok(), "{c:?}: {:?}", Credentials::parse_str(&c));
    }
}
