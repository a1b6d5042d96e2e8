//! Server side: build challenges, verify credentials.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::IpAddr;
use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;

use crate::algorithm::{Algorithm, ct_eq_hex};
use crate::cache::AuthCache;
use crate::digest::{self, ResponseInput};
use crate::error::DigestHeaderError;
use crate::header::{Credentials, Field, Qop, push_param_quoted, push_param_token};
use crate::nonce::{
    self, BindingValues, Bindings, Lifetime, Nonce, NonceCheck, NonceInfo, NonceSecrets,
};
use crate::replay::{ReplayCheck, ReplayTable};
use crate::store::CredentialStore;
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

    /// Reason phrase of the challenge response (RFC 3261 §21.4.2, §21.4.8).
    pub const fn reason(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Unauthorized",
            ChallengeKind::Proxy => "Proxy Authentication Required",
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
    /// Algorithms offered, in preference order: one challenge each, in this order (RFC 8760
    /// §2.4). Default MD5 then SHA-256, so that a client that reads only the first challenge
    /// and knows only MD5 (SIPp 3.6, many deployed phones) gets through; see the crate
    /// README, "Challenge order", for the trade-off.
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
    /// Defaults for `realm`: 401 challenges, MD5 then SHA-256, qop=auth, 300 s nonces.
    pub fn new(realm: &str) -> Self {
        ServerConfig {
            realm: realm.to_string(),
            kind: ChallengeKind::Www,
            algorithms: alloc::vec![Algorithm::Md5, Algorithm::Sha256],
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

/// The request being challenged or verified, as the bytes `sip_parser::Message` gives
/// ([`Request::from_message`] fills it from one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// Method (`REGISTER`, `INVITE`, …).
    pub method: &'a [u8],
    /// Request-URI as written in the request line.
    pub request_uri: &'a [u8],
    /// Body (for `auth-int`).
    pub body: &'a [u8],
    /// Source address.
    pub source: Option<IpAddr>,
    /// Call-ID (used when bound).
    pub call_id: &'a [u8],
    /// From tag (used when bound).
    pub from_tag: &'a [u8],
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

/// Why credentials were refused, what to answer, and whether it counts towards a ban.
///
/// | reason | answer ([`FailReason::status`]) | counts towards a ban |
/// |--------|--------------------------------|----------------------|
/// | [`Malformed`](Self::Malformed) | 400 | no: a broken client, not a guess |
/// | [`UriMismatch`](Self::UriMismatch) | 400 (RFC 2617 §3.2.2.5) | no: a rewriting middlebox or client bug |
/// | [`NoCredentials`](Self::NoCredentials) | challenge | no: the normal first request |
/// | [`UnsupportedAlgorithm`](Self::UnsupportedAlgorithm), [`UnsupportedQop`](Self::UnsupportedQop), [`RealmMismatch`](Self::RealmMismatch), [`OpaqueMismatch`](Self::OpaqueMismatch) | challenge | no: interop, no password was checked |
/// | [`InvalidNonce`](Self::InvalidNonce) | challenge | no: no password was checked |
/// | [`Replay`](Self::Replay) | challenge | no: indistinguishable from a retransmission that no transaction layer absorbed, and no guess |
/// | [`UnknownUser`](Self::UnknownUser) | challenge, as for `BadResponse` (the answer does not reveal which users exist) | **yes**: a guess at a user name |
/// | [`BadResponse`](Self::BadResponse) | challenge | **yes**: a password guess, checked and wrong |
///
/// "Challenge" is a fresh [`ChallengeKind::status`] (401 or 407) without `stale`. Only a
/// response that was checked against a password counts ([`FailReason::counts_as_attempt`]):
/// everything else costs an attacker a request and tells nothing about a password, so
/// counting it would only let a broken or roaming client get banned. Floods of any kind are
/// the [`RateLimiter`](crate::RateLimiter)'s job.
///
/// No reason answers 403: RFC 3261 §21.4.4 reserves it for "authorization will not help",
/// never true of a failed digest (the right password on a fresh nonce helps). 403 is for
/// what comes after authentication, e.g. a registrar refusing an authenticated user the
/// AOR (§10.3 step 6).
///
/// A nonce this server can no longer verify is not a failure: a restart with a new secret,
/// a rotation past the previous secret or a changed binding leaves honest clients holding
/// such nonces, and [`DigestServer::verify`] answers [`Outcome::Stale`] for them (why that
/// is safe is said there). `InvalidNonce` is left for nonces that are not in this crate's
/// format at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The header could not be parsed.
    Malformed(DigestHeaderError),
    /// No credentials for this server's realm (only from [`DigestServer::verify_message`]).
    NoCredentials,
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
    /// The nonce is not in this crate's format (another server's, or made up).
    InvalidNonce,
    /// No such user (or no HA1 for this algorithm).
    UnknownUser,
    /// Wrong response: bad password or a tampered field.
    BadResponse,
    /// nc not greater than one already accepted on this nonce (or an RFC 2069 response
    /// whose nonce was used before): a replay, or a retransmission of an accepted request.
    Replay,
}

impl FailReason {
    /// Whether this failure counts toward banning the source: only a response checked
    /// against a password (`BadResponse`) or a guessed user name (`UnknownUser`). See the
    /// table above.
    pub fn counts_as_attempt(self) -> bool {
        matches!(self, FailReason::BadResponse | FailReason::UnknownUser)
    }

    /// The status to answer with: 400 for `Malformed` and `UriMismatch`, the challenge's
    /// status of `kind` (401 / 407, with a fresh challenge) for everything else.
    pub const fn status(self, kind: ChallengeKind) -> u16 {
        match self {
            FailReason::Malformed(_) | FailReason::UriMismatch => 400,
            _ => kind.status(),
        }
    }

    /// The reason phrase going with [`FailReason::status`].
    pub const fn reason_phrase(self, kind: ChallengeKind) -> &'static str {
        match self {
            FailReason::Malformed(_) | FailReason::UriMismatch => "Bad Request",
            _ => kind.reason(),
        }
    }
}

/// Result of [`DigestServer::verify`]; borrows from the verified header value `'a` (see
/// [`Authenticated`] and [`Outcome::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Authenticated.
    Ok(Authenticated<'a>),
    /// The nonce can no longer be used: re-challenge with `stale=true` (RFC 7616 §3.3) so
    /// the client retries without asking its user, and count nothing. Either the response
    /// was correct for a nonce of ours that expired, was evicted from the replay table or
    /// was a used one-time nonce; or the nonce is in our format but made with a secret this
    /// server does not hold (restart with a new secret, rotation), bound to other request
    /// values, or issued in the future. In the second case the response is not even
    /// checked: nothing about the password is learnt from the answer, and a forged nonce
    /// buys the same re-challenge a request without credentials gets.
    Stale,
    /// Refused: answer [`FailReason::status`] (and count it if
    /// [`FailReason::counts_as_attempt`]).
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
    ///
    /// A request re-sent unchanged after it was accepted (a UDP retransmission whose 200
    /// was lost) carries the same `nc` and is refused as a [`FailReason::Replay`]: put a
    /// transaction layer in front (`sip-transaction`), which answers retransmissions from
    /// its own state before they reach the verifier.
    pub fn verify<'v, S: CredentialStore + ?Sized>(
        &self,
        value: &'v [u8],
        req: &Request<'_>,
        store: &S,
        unix_now: u64,
    ) -> Outcome<'v> {
        match Credentials::parse(value) {
            Ok(c) => self.verify_inner(&c, req, store, unix_now, None),
            Err(e) => Outcome::Failed(FailReason::Malformed(e)),
        }
    }

    /// [`DigestServer::verify`] of credentials already parsed (e.g. by
    /// [`DigestServer::credentials_in`] or `Credentials::try_from` a `sip_parser::AuthValue`).
    pub fn verify_credentials<'v, S: CredentialStore + ?Sized>(
        &self,
        credentials: &Credentials<'v>,
        req: &Request<'_>,
        store: &S,
        unix_now: u64,
    ) -> Outcome<'v> {
        self.verify_inner(credentials, req, store, unix_now, None)
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
        match Credentials::parse(value) {
            Ok(c) => self.verify_inner(&c, req, store, unix_now, Some((cache, now))),
            Err(e) => Outcome::Failed(FailReason::Malformed(e)),
        }
    }

    pub(crate) fn verify_inner<'v, S: CredentialStore + ?Sized>(
        &self,
        c: &Credentials<'v>,
        req: &Request<'_>,
        store: &S,
        unix_now: u64,
        cache: Option<(&AuthCache, Duration)>,
    ) -> Outcome<'v> {
        use DigestHeaderError::Missing;
        use FailReason as F;
        let Some(alg) = c.algorithm().filter(|a| self.cfg.algorithms.contains(a)) else {
            return Outcome::Failed(F::UnsupportedAlgorithm);
        };
        // Compared and hashed as the bytes sent: no text conversion on the way.
        if c.value(Field::Realm) != self.cfg.realm.as_bytes() {
            return Outcome::Failed(F::RealmMismatch);
        }
        let uri_c = c.value(Field::Uri);
        if self.cfg.check_uri && uri_c != req.request_uri {
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
            (Some(_), None, ..) => return Outcome::Failed(F::Malformed(Missing("nc"))),
            (Some(_), _, _, _) => return Outcome::Failed(F::Malformed(Missing("cnonce"))),
        };
        if alg.is_session() && cnonce.is_empty() {
            return Outcome::Failed(F::Malformed(Missing("cnonce")));
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
            // Ours, but made with a secret we no longer hold or for other bindings: stale,
            // without checking the response (see `Outcome::Stale`).
            NonceCheck::Unverifiable => return Outcome::Stale,
            NonceCheck::Foreign => return Outcome::Failed(F::InvalidNonce),
        };
        let hash = alg.hash();
        let name = c.username();
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
            method: req.method,
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
            }
            push_param_quoted(&mut s, "rspauth", rsp.as_str());
            if qop.is_some() {
                push_param_quoted(&mut s, "cnonce", &c.cnonce().unwrap_or_default());
                push_param_token(&mut s, "nc", &c.nc_raw().unwrap_or_default());
            }
            if let Some(n) = &next_nonce {
                push_param_quoted(&mut s, "nextnonce", n.as_str());
            }
            s
        });
        Outcome::Ok(Authenticated {
            user: user_cow,
            // Equal to the configured realm (checked above); borrowed from the header.
            realm: c.realm(),
            algorithm: alg,
            authentication_info,
            from_cache,
        })
    }
}
