//! Server side: build challenges, verify credentials.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::IpAddr;
use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;

use crate::algorithm::{Algorithm, HashKind, HexDigest, ct_eq_hex};
use crate::cache::AuthCache;
use crate::credentials::CredentialStore;
use crate::digest::{self, ResponseInput};
use crate::error::ParseError;
use crate::header::{Credentials, Field, Qop, push_param_quoted, push_param_token};
use crate::nonce::{
    self, BindingValues, Bindings, Lifetime, Nonce, NonceCheck, NonceInfo, NonceSecrets,
};
use crate::replay::{ReplayCheck, ReplayTable};
use crate::sync::AtomicU64;

/// Registrar (401, `WWW-Authenticate`) or proxy (407, `Proxy-Authenticate`) challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`; credentials in `Authorization`.
    Www,
    /// 407 with `Proxy-Authenticate`; credentials in `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// Status code of the challenge response.
    pub const fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }

    /// Header carrying the challenge.
    pub const fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// Header carrying the credentials.
    pub const fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }

    /// Header carrying `rspauth` / `nextnonce` on success.
    pub const fn info_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authentication-Info",
            ChallengeKind::Proxy => "Proxy-Authentication-Info",
        }
    }
}

/// Server policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The realm challenged for.
    pub realm: String,
    /// 401 or 407.
    pub kind: ChallengeKind,
    /// Algorithms offered, in preference order: one challenge each (RFC 8760 §2.4). Default
    /// SHA-256 then MD5.
    pub algorithms: Vec<Algorithm>,
    /// qop values offered (default `auth`). Empty: RFC 2069 challenges without qop.
    pub qop: Vec<Qop>,
    /// Accept RFC 2069 responses without qop even when qop was offered (old phones; default
    /// true).
    pub allow_no_qop: bool,
    /// Nonce lifetime and allowed clock drift.
    pub lifetime: Lifetime,
    /// What nonces are bound to besides the realm.
    pub bindings: Bindings,
    /// Size of the replay table in nonces (0: no nc tracking; default 65 536 = 512 KiB).
    pub replay_table_size: usize,
    /// Accept each nonce once (a reuse answers stale).
    pub one_time_nonces: bool,
    /// Node id written into nonces; replay tracking applies to this node's nonces only.
    pub node_id: u16,
    /// `opaque` to send and require back.
    pub opaque: Option<String>,
    /// Offer `userhash=true`.
    pub userhash: bool,
    /// Require the digest-uri to equal the Request-URI (default true).
    pub check_uri: bool,
    /// Compute an `Authentication-Info` value with `rspauth` on success.
    pub authentication_info: bool,
    /// Put a fresh `nextnonce` in that `Authentication-Info` (RFC 2617 §3.2.3).
    pub next_nonce: bool,
}

impl ServerConfig {
    /// Defaults for `realm`: 401 challenges, SHA-256 then MD5, qop=auth, 300 s nonces.
    pub fn new(realm: &str) -> Self {
        ServerConfig {
            realm: realm.to_string(),
            kind: ChallengeKind::Www,
            algorithms: alloc::vec![Algorithm::Sha256, Algorithm::Md5],
            qop: alloc::vec![Qop::Auth],
            allow_no_qop: true,
            lifetime: Lifetime::default(),
            bindings: Bindings::default(),
            replay_table_size: 65_536,
            one_time_nonces: false,
            node_id: 0,
            opaque: None,
            userhash: false,
            check_uri: true,
            authentication_info: false,
            next_nonce: false,
        }
    }
}

/// The request being challenged or verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// Method (`REGISTER`, `INVITE`, …).
    pub method: &'a str,
    /// Request-URI as written in the request line.
    pub request_uri: &'a str,
    /// Body (for `auth-int`).
    pub body: &'a [u8],
    /// Source address.
    pub source: Option<IpAddr>,
    /// Call-ID (used when bound).
    pub call_id: &'a str,
    /// From tag (used when bound).
    pub from_tag: &'a str,
}

impl<'a> Request<'a> {
    fn bindings(&self) -> BindingValues<'a> {
        BindingValues {
            source_ip: self.source,
            call_id: self.call_id,
            from_tag: self.from_tag,
            request_uri: self.request_uri,
        }
    }
}

/// A successful verification.
///
/// `user` and `realm` borrow from the verified header value (no allocation on the success
/// path); `user` is owned only when it had to be unescaped or was resolved from a user hash.
/// Use [`Authenticated::into_owned`] to keep it beyond the header's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated<'a> {
    /// The user (resolved from the user hash when `userhash=true`).
    pub user: Cow<'a, str>,
    /// The realm (equal to [`ServerConfig::realm`]).
    pub realm: Cow<'a, str>,
    /// The algorithm the client used.
    pub algorithm: Algorithm,
    /// `Authentication-Info` value, when enabled.
    pub authentication_info: Option<String>,
    /// Whether the HA1 came from the [`AuthCache`].
    pub from_cache: bool,
}

impl Authenticated<'_> {
    /// A copy that owns its strings, independent of the header value.
    #[must_use]
    pub fn into_owned(self) -> Authenticated<'static> {
        Authenticated {
            user: Cow::Owned(self.user.into_owned()),
            realm: Cow::Owned(self.realm.into_owned()),
            algorithm: self.algorithm,
            authentication_info: self.authentication_info,
            from_cache: self.from_cache,
        }
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The header could not be parsed.
    Malformed(ParseError),
    /// Algorithm unknown or not offered.
    UnsupportedAlgorithm,
    /// qop unknown, not offered, or missing where required.
    UnsupportedQop,
    /// Credentials for another realm.
    RealmMismatch,
    /// digest-uri differs from the Request-URI.
    UriMismatch,
    /// `opaque` missing or altered.
    OpaqueMismatch,
    /// Nonce not issued by us (forged, altered, other realm, other secret, other binding).
    InvalidNonce,
    /// No such user (or no HA1 for this algorithm).
    UnknownUser,
    /// Wrong response: bad password or a tampered field.
    BadResponse,
    /// nc not greater than one already accepted on this nonce.
    Replay,
}

impl FailReason {
    /// Whether this failure should count toward banning the source (a guess at credentials
    /// or a replay, as opposed to an interop problem).
    pub fn counts_as_attempt(self) -> bool {
        matches!(
            self,
            FailReason::BadResponse
                | FailReason::UnknownUser
                | FailReason::InvalidNonce
                | FailReason::Replay
        )
    }
}

/// Result of [`DigestServer::verify`]; borrows from the verified header value `'a` (see
/// [`Authenticated`] and [`Outcome::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Authenticated.
    Ok(Authenticated<'a>),
    /// Correct response on an expired (or evicted, or used one-time) nonce: re-challenge with
    /// `stale=true` so the client retries without asking its user.
    Stale,
    /// Refused: re-challenge (and count the failure, see [`FailReason::counts_as_attempt`]).
    Failed(FailReason),
}

impl Outcome<'_> {
    /// A copy independent of the header value.
    #[must_use]
    pub fn into_owned(self) -> Outcome<'static> {
        match self {
            Outcome::Ok(a) => Outcome::Ok(a.into_owned()),
            Outcome::Stale => Outcome::Stale,
            Outcome::Failed(r) => Outcome::Failed(r),
        }
    }
}

/// A Digest server for one realm: issues nonces, builds challenges, verifies credentials.
///
/// Share one server by reference between worker threads (every method takes `&self`; it is
/// `Sync` with the `std` feature): its replay table and nonce counter are atomics, so a nonce
/// issued on any thread verifies on any other and a replayed `nc` is refused whichever thread
/// sees it. One server per thread would not see the others' nonces.
#[derive(Debug)]
pub struct DigestServer {
    cfg: ServerConfig,
    secrets: NonceSecrets,
    replay: Option<ReplayTable>,
    counter: AtomicU64,
}

impl DigestServer {
    /// A server with this policy and nonce secret(s).
    pub fn new(cfg: ServerConfig, secrets: NonceSecrets) -> Self {
        let replay = (cfg.replay_table_size > 0)
            .then(|| ReplayTable::new(cfg.replay_table_size, cfg.one_time_nonces));
        DigestServer {
            cfg,
            secrets,
            replay,
            counter: AtomicU64::new(0),
        }
    }

    /// The policy.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The nonce secrets, e.g. to rotate them (exclusive access: rotate before sharing the
    /// server, or between runs).
    pub fn secrets_mut(&mut self) -> &mut NonceSecrets {
        &mut self.secrets
    }

    /// Bytes held by the replay table (0 without one).
    pub fn replay_memory_bytes(&self) -> usize {
        self.replay.as_ref().map_or(0, ReplayTable::memory_bytes)
    }

    /// A fresh nonce for `req` at `unix_now` (wall-clock seconds).
    pub fn new_nonce(&self, req: &Request<'_>, unix_now: u64) -> Nonce {
        let nid = if let Some(t) = &self.replay {
            t.issue()
        } else {
            (self.counter.fetch_add(1, Relaxed) as u32).wrapping_add(1)
        };
        let info = NonceInfo {
            issued: unix_now,
            nid,
            node: self.cfg.node_id,
        };
        nonce::issue(
            &self.secrets,
            info,
            &self.cfg.realm,
            self.cfg.bindings,
            &req.bindings(),
        )
    }

    /// Challenge header values for `req`, one per configured algorithm in preference order,
    /// all with the same fresh nonce. Send each as a [`ChallengeKind::challenge_header`] in a
    /// [`ChallengeKind::status`] response. `stale`: the previous nonce expired
    /// ([`Outcome::Stale`]).
    pub fn challenge(&self, req: &Request<'_>, unix_now: u64, stale: bool) -> Vec<String> {
        let nonce = self.new_nonce(req, unix_now);
        self.challenges_for(nonce.as_str(), stale)
    }

    /// Challenge values for a given nonce.
    pub fn challenges_for(&self, nonce: &str, stale: bool) -> Vec<String> {
        let mut qop = String::new();
        for (i, q) in self.cfg.qop.iter().enumerate() {
            if i > 0 {
                qop.push(',');
            }
            qop.push_str(q.as_str());
        }
        self.cfg
            .algorithms
            .iter()
            .map(|alg| {
                let mut s = String::with_capacity(160);
                s.push_str("Digest ");
                push_param_quoted(&mut s, "realm", &self.cfg.realm);
                push_param_quoted(&mut s, "nonce", nonce);
                if let Some(o) = &self.cfg.opaque {
                    push_param_quoted(&mut s, "opaque", o);
                }
                push_param_token(&mut s, "algorithm", alg.as_str());
                if !qop.is_empty() {
                    push_param_quoted(&mut s, "qop", &qop);
                }
                if stale {
                    push_param_token(&mut s, "stale", "true");
                }
                if self.cfg.userhash {
                    push_param_token(&mut s, "userhash", "true");
                }
                s
            })
            .collect()
    }

    /// Verify an `Authorization` / `Proxy-Authorization` value against `req`.
    pub fn verify<'v, S: CredentialStore + ?Sized>(
        &self,
        value: &'v [u8],
        req: &Request<'_>,
        store: &S,
        unix_now: u64,
    ) -> Outcome<'v> {
        self.verify_inner(value, req, store, unix_now, None)
    }

    /// Like [`DigestServer::verify`], looking the HA1 up in `cache` first (keyed by user,
    /// realm, source and hash) and remembering it after a success. A cached HA1 that no
    /// longer matches (password changed) is dropped and the store asked again. `now` is the
    /// monotonic clock of the cache.
    pub fn verify_cached<'v, S: CredentialStore + ?Sized>(
        &self,
        value: &'v [u8],
        req: &Request<'_>,
        store: &S,
        cache: &AuthCache,
        unix_now: u64,
        now: Duration,
    ) -> Outcome<'v> {
        self.verify_inner(value, req, store, unix_now, Some((cache, now)))
    }

    fn verify_inner<'v, S: CredentialStore + ?Sized>(
        &self,
        value: &'v [u8],
        req: &Request<'_>,
        store: &S,
        unix_now: u64,
        cache: Option<(&AuthCache, Duration)>,
    ) -> Outcome<'v> {
        use FailReason as F;
        let c = match Credentials::parse(value) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(F::Malformed(e)),
        };
        let Some(alg) = c.algorithm().filter(|a| self.cfg.algorithms.contains(a)) else {
            return Outcome::Failed(F::UnsupportedAlgorithm);
        };
        // Compared and hashed as the bytes sent: no text conversion on the way.
        if c.value(Field::Realm) != self.cfg.realm.as_bytes() {
            return Outcome::Failed(F::RealmMismatch);
        }
        let uri_c = c.value(Field::Uri);
        if self.cfg.check_uri && uri_c != req.request_uri.as_bytes() {
            return Outcome::Failed(F::UriMismatch);
        }
        let qop = match c.qop() {
            Some(Ok(q)) if self.cfg.qop.contains(&q) => Some(q),
            Some(_) => return Outcome::Failed(F::UnsupportedQop),
            None if self.cfg.qop.is_empty() || self.cfg.allow_no_qop => None,
            None => return Outcome::Failed(F::UnsupportedQop),
        };
        let (nc_c, cnonce_c) = (c.bytes(Field::Nc), c.bytes(Field::Cnonce));
        let (nc, nc_raw, cnonce) = match (qop, c.nc(), nc_c, cnonce_c) {
            (None, ..) => (None, &b""[..], cnonce_c.unwrap_or_default()),
            (Some(_), Some(n), Some(raw), Some(cn)) => (Some(n), raw, cn),
            (Some(_), None, ..) => return Outcome::Failed(F::Malformed(ParseError::Missing("nc"))),
            (Some(_), _, _, _) => {
                return Outcome::Failed(F::Malformed(ParseError::Missing("cnonce")));
            }
        };
        if alg.is_session() && cnonce.is_empty() {
            return Outcome::Failed(F::Malformed(ParseError::Missing("cnonce")));
        }
        if let Some(o) = &self.cfg.opaque {
            if c.bytes(Field::Opaque) != Some(o.as_bytes()) {
                return Outcome::Failed(F::OpaqueMismatch);
            }
        }
        let nonce_c = c.value(Field::Nonce);
        let (info, expired) = match nonce::check(
            &self.secrets,
            nonce_c,
            &self.cfg.realm,
            self.cfg.bindings,
            &req.bindings(),
            self.cfg.lifetime,
            unix_now,
        ) {
            NonceCheck::Valid(i) => (i, false),
            NonceCheck::Expired(i) => (i, true),
            NonceCheck::Invalid => return Outcome::Failed(F::InvalidNonce),
        };
        let hash = alg.hash();
        let (name, realm_c) = c.username_and_realm();
        let user_cow: Cow<'v, str> = if c.userhash() {
            match store.user_for_hash(&name, &self.cfg.realm, hash) {
                Some(u) => Cow::Owned(u),
                None => return Outcome::Failed(F::UnknownUser),
            }
        } else {
            name
        };
        let user: &str = &user_cow;
        let input = ResponseInput {
            algorithm: alg,
            nonce: nonce_c,
            nc: nc_raw,
            cnonce,
            qop,
            method: req.method.as_bytes(),
            uri: uri_c,
            body: req.body,
        };
        let realm = self.cfg.realm.as_str();
        let from_store = |store: &S| store.ha1(user, realm, hash);
        let mut from_cache = false;
        let mut ha1 = None;
        if let Some((cache, now)) = cache {
            ha1 = cache.get(user, realm, req.source, hash, now);
            from_cache = ha1.is_some();
        }
        let Some(mut ha1) = ha1.or_else(|| from_store(store)) else {
            return Outcome::Failed(F::UnknownUser);
        };
        let response_c = c.value(Field::Response);
        let mut ok = ct_eq_hex(response_c, &digest::response(&ha1, &input));
        if !ok && from_cache {
            from_cache = false;
            if let Some((cache, _)) = cache {
                cache.invalidate(user, realm, req.source, hash);
            }
            match from_store(store) {
                Some(h) => ha1 = h,
                None => return Outcome::Failed(F::UnknownUser),
            }
            ok = ct_eq_hex(response_c, &digest::response(&ha1, &input));
        }
        if !ok {
            return Outcome::Failed(F::BadResponse);
        }
        if expired {
            return Outcome::Stale;
        }
        if info.node == self.cfg.node_id {
            if let Some(t) = &self.replay {
                match t.check(info.nid, nc) {
                    ReplayCheck::Fresh => {}
                    ReplayCheck::Replay => return Outcome::Failed(F::Replay),
                    ReplayCheck::Reused | ReplayCheck::Evicted => return Outcome::Stale,
                }
            }
        }
        if !from_cache {
            if let Some((cache, now)) = cache {
                cache.insert(user, realm, req.source, hash, ha1, now);
            }
        }
        let next_nonce = (self.cfg.authentication_info && self.cfg.next_nonce)
            .then(|| self.new_nonce(req, unix_now));
        let authentication_info = self.cfg.authentication_info.then(|| {
            let rsp = digest::response(
                &ha1,
                &ResponseInput {
                    method: b"",
                    ..input
                },
            );
            let mut s = String::new();
            if let Some(q) = qop {
                push_param_token(&mut s, "qop", q.as_str());
                s.push_str(", ");
            }
            push_param_quoted(&mut s, "rspauth", rsp.as_str());
            if qop.is_some() {
                push_param_quoted(&mut s, "cnonce", &c.cnonce().unwrap_or_default());
                push_param_token(&mut s, "nc", &c.nc_raw().unwrap_or_default());
            }
            if let Some(n) = &next_nonce {
                push_param_quoted(&mut s, "nextnonce", n.as_str());
            }
            s.trim_start_matches(", ").to_string()
        });
        Outcome::Ok(Authenticated {
            user: user_cow,
            // Equal to the configured realm (checked above); borrowed from the header.
            realm: realm_c,
            algorithm: alg,
            authentication_info,
            from_cache,
        })
    }
}

/// Among several credentials header values, the first one for `realm` (a request may carry
/// credentials for several realms; RFC 3261 §22.3).
pub fn select_for_realm<'a>(values: &[&'a [u8]], realm: &str) -> Option<&'a [u8]> {
    values.iter().copied().find(|v| {
        crate::header::DigestParams::parse(v).is_ok_and(|p| p.get("realm") == Some(realm))
    })
}

/// HA1 helper re-exported for stores: H(user:realm:password).
pub fn ha1_for(hash: HashKind, user: &str, realm: &str, password: &str) -> HexDigest {
    digest::ha1(hash, user, realm, password)
}
