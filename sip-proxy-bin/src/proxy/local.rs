//! What the proxy serves itself: digest authentication (401 for REGISTER, 407 for calls),
//! the ban list and flood limit, the registrar and location lookup, and dialog tracking with
//! BYE on the maximum duration. The rules live in `sip-auth`, `sip-location` and
//! `sip-dialog`; here is only which one applies when.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use sip_auth::{
    AuthCache, BanConfig, ChallengeKind, CredentialStore, DigestServer, FailReason, FailureTracker,
    FailureVerdict, HashKind, IpNet, NonceSecrets, Outcome, RateConfig, RateLimiter, Request,
    ServerConfig,
};
use sip_dialog::{
    CreateOptions, DialogFlags, DialogRecord, Expiry, Persister, TimerEvent, TrackError, Tracker,
    TrackerConfig,
};
use sip_location::{LocationStore, MemoryConfig, MemoryStore, Policy, Source, registrar};
use sip_parser::{Aor, Message, Transport, Uri, UserCase};
use sip_transaction::{ConnId, Flow, ServerTxId, Target};

use super::{Proxy, Work};
use crate::config::Config;

/// Digest authentication: one server per challenge kind, the users and their cache.
pub(crate) struct Auth {
    www: DigestServer,
    proxy: DigestServer,
    /// Replaced whole by a reload.
    pub(crate) creds: ArcSwap<Credentials>,
    cache_size: usize,
    cache_seeds: [u64; 4],
}

/// The users file's credentials and the cache of HA1s verified from them: replaced
/// together, so that no HA1 of an old password outlives a reload.
pub(crate) struct Credentials {
    pub(crate) users: sip_auth::MemoryStore,
    cache: AuthCache,
}

impl Credentials {
    fn new(users: sip_auth::MemoryStore, cache_size: usize, seeds: [u64; 4]) -> Self {
        Credentials {
            users,
            cache: AuthCache::with_seeds(cache_size, Duration::from_secs(600), seeds),
        }
    }
}

impl Auth {
    /// New credentials from `users`, with an empty cache.
    pub(crate) fn credentials(&self, users: sip_auth::MemoryStore) -> Credentials {
        Credentials::new(users, self.cache_size, self.cache_seeds)
    }
}

/// Reads an htdigest users file.
pub(crate) fn load_users(path: &std::path::Path) -> Result<sip_auth::MemoryStore, SetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SetupError::Users(path.display().to_string(), e.to_string()))?;
    sip_auth::MemoryStore::from_htdigest(&text)
        .map_err(|e| SetupError::Users(path.display().to_string(), e.to_string()))
}

/// Networks in CIDR text (checked by `Config::finish`; others are skipped).
pub(crate) fn networks(v: &[String]) -> Vec<IpNet> {
    v.iter().filter_map(|n| IpNet::parse(n)).collect()
}

/// The registrar policy of a configuration.
pub(crate) fn policy(cfg: &Config) -> Policy {
    let mut domains = cfg.domains.clone();
    for l in &cfg.listen {
        domains.push(l.address.addr.ip().to_string());
        if let Some(a) = &l.advertise {
            domains.push(a.host.clone());
        }
    }
    let r = &cfg.registrar;
    Policy {
        domains,
        user_case: UserCase::Sensitive,
        default_expires: r.default_expires,
        min_expires: r.min_expires,
        max_expires: r.max_expires,
        max_contacts: Some(sip_location::MaxContacts {
            limit: r.max_contacts,
            when_full: sip_location::WhenFull::ReplaceOldest,
        }),
        retry_after: Some(5),
        ..Policy::default()
    }
}

/// Everything the proxy keeps for the requests it serves itself.
pub(crate) struct Local {
    pub(crate) auth: Option<Auth>,
    pub(crate) bans: FailureTracker,
    /// Sources never challenged for calls, never banned nor flood-limited (`auth.trusted`,
    /// edited at run time by `sip-proxy ctl allow`).
    pub(crate) trusted: ArcSwap<Vec<IpNet>>,
    flood: Option<RateLimiter>,
    pub(crate) location: crate::storage::Location,
    pub(crate) policy: ArcSwap<Policy>,
    pub(crate) dialogs: Option<Tracker>,
    /// The dialog persister, the failure log, the data directory's lock.
    pub(crate) persist: crate::storage::Persistence,
    /// State shared with other nodes through Redis (`--redis`), and the dialog writer on it.
    pub(crate) shared: Option<Arc<crate::redis::Shared>>,
    persister: Option<Persister<Arc<crate::redis::RedisDialogs>>>,
    /// Next housekeeping pass (expiry of bindings and dialogs), monotonic ms.
    housekeeping: AtomicU64,
    /// When a full dialog table may be logged again.
    dialogs_full_log: LogEvery,
}

/// How often a refusal at a limit is logged (each refusal is counted).
pub(crate) const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A log line at most once per [`LIMIT_LOG_INTERVAL`] (monotonic ms of the next one).
#[derive(Debug, Default)]
pub(crate) struct LogEvery(AtomicU64);

impl LogEvery {
    /// Whether to log now (and not again for an interval).
    pub(crate) fn due(&self, now: Duration) -> bool {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let now = ms(now);
        let next = self.0.load(Ordering::Relaxed);
        now >= next
            && self
                .0
                .compare_exchange(
                    next,
                    now.saturating_add(ms(LIMIT_LOG_INTERVAL)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

/// Why the proxy could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The users file.
    #[error("{0}: {1}")]
    Users(String, String),
    /// The nonce secret.
    #[error("nonce secret: {0}")]
    Secret(String),
    /// A registration to a provider (its URI, then what is wrong).
    #[error("registration {0}: {1}")]
    Registration(String, String),
    /// Restoring registrations or dialogs from the database.
    #[error("restoring from the database: {0}")]
    Storage(String),
    /// The Redis URL.
    #[error("{0}")]
    Redis(String),
}

fn seeds(seed: &[u8; 32], salt: u64) -> [u64; 4] {
    core::array::from_fn(|i| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&seed[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w) ^ salt.rotate_left(i as u32 * 16)
    })
}

impl Local {
    pub(crate) fn new(
        cfg: &Config,
        seed: &[u8; 32],
        mut opened: crate::storage::Opened,
        now_wall: Duration,
    ) -> Result<Self, SetupError> {
        let shared = match cfg.redis.target() {
            Some(target) => Some(
                crate::redis::Shared::start(&cfg.redis, &target, cfg.registrar.max_contacts.max(1))
                    .map_err(SetupError::Redis)?,
            ),
            None => None,
        };
        let auth = match &cfg.auth.users_file {
            None => None,
            Some(path) => {
                let users = load_users(path)?;
                if shared.is_some() && cfg.auth.secret_file.is_none() {
                    tracing::warn!(
                        "--redis without auth.secret_file: this node's nonces will not verify on the other nodes (give every node the same secret file)"
                    );
                }
                let secrets = match &cfg.auth.secret_file {
                    Some(p) => {
                        let key = std::fs::read(p)
                            .map_err(|e| SetupError::Secret(format!("{}: {e}", p.display())))?;
                        if key.len() < 32 {
                            return Err(SetupError::Secret(format!(
                                "{}: fewer than 32 bytes",
                                p.display()
                            )));
                        }
                        NonceSecrets::new(1, &key)
                    }
                    None => {
                        NonceSecrets::random().map_err(|e| SetupError::Secret(e.to_string()))?
                    }
                };
                let server = |kind| {
                    let mut c = ServerConfig::new(cfg.realm());
                    c.kind = kind;
                    c.algorithms = cfg
                        .auth
                        .algorithms
                        .iter()
                        .filter_map(|a| sip_auth::Algorithm::parse(a))
                        .collect();
                    c.lifetime.expiry = cfg.auth.nonce_lifetime;
                    if shared.is_some() {
                        // Replay state is shared (`crate::redis`): a node-local table would
                        // take another node's nonces for evicted ones.
                        c.replay_table_size = 0;
                    }
                    DigestServer::new(c, secrets.clone())
                };
                let (cache_size, cache_seeds) = (cfg.auth.cache_size.max(1), seeds(seed, 1));
                Some(Auth {
                    www: server(ChallengeKind::Www),
                    proxy: server(ChallengeKind::Proxy),
                    creds: ArcSwap::from_pointee(Credentials::new(users, cache_size, cache_seeds)),
                    cache_size,
                    cache_seeds,
                })
            }
        };
        let bans = FailureTracker::with_seeds(
            BanConfig {
                threshold: cfg.auth.ban_after,
                // "In a row": the window is as long as a ban, and a success resets.
                window: Duration::from_secs(cfg.auth.ban_seconds.max(60) * 12),
                ban_time: Duration::from_secs(cfg.auth.ban_seconds),
                ..BanConfig::default()
            },
            seeds(seed, 2),
        );
        let flood = (cfg.limits.flood_per_second > 0).then(|| {
            RateLimiter::with_seeds(
                RateConfig {
                    threshold: cfg.limits.flood_per_second,
                    interval: Duration::from_secs(1),
                    ..RateConfig::default()
                },
                seeds(seed, 3),
            )
        });
        let cache = MemoryStore::new(MemoryConfig {
            seeds: seeds(seed, 4),
            ..MemoryConfig::default()
        });
        // With --redis, Redis is the store of registrations and dialogs (the database, if
        // any, keeps the trace only).
        let (location, aors) = match &shared {
            Some(s) => {
                opened.share_stores_elsewhere();
                (crate::storage::Location::Redis(s.location.clone()), 0)
            }
            None => crate::storage::Location::new(cache, &mut opened, now_wall)
                .map_err(|e| SetupError::Storage(e.to_string()))?,
        };
        let persist = crate::storage::Persistence::new(opened);
        let dialogs = cfg.dialog.track.then(|| {
            Tracker::new(
                TrackerConfig {
                    max_dialogs: cfg.dialog.max_dialogs,
                    default_lifetime: Duration::from_secs(cfg.dialog.max_duration),
                    default_flags: DialogFlags::SEND_BYE,
                    record_changes: persist.records_changes() || shared.is_some(),
                    ..TrackerConfig::default()
                },
                seeds(seed, 5),
                now_wall,
            )
        });
        let restored = persist.restore(dialogs.as_ref(), now_wall)?;
        if aors > 0 || restored > 0 {
            tracing::info!(aors, dialogs = restored, "restored from the database");
        }
        let persister = shared.as_ref().map(|s| {
            Persister::new(
                s.dialogs.clone(),
                sip_dialog::DbMode::Realtime,
                Duration::from_secs(5),
            )
        });
        Ok(Local {
            persist,
            shared,
            persister,
            auth,
            bans,
            trusted: ArcSwap::from_pointee(networks(&cfg.auth.trusted)),
            flood,
            location,
            policy: ArcSwap::from_pointee(policy(cfg)),
            dialogs,
            housekeeping: AtomicU64::new(0),
            dialogs_full_log: LogEvery::default(),
        })
    }
}

/// The Reason of the BYEs sent when a dialog's lifetime ends (RFC 3326).
const LIFETIME_ENDED: &str = "SIP;cause=200;text=\"dialog lifetime ended\"";

/// Who vouches for an initial request (step 7, [`Proxy::authorize_call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Answered here (a challenge or a refusal): nothing more to do.
    Answered,
    /// A trusted source, an authenticated user of ours, or authentication is off: may reach
    /// local users, upstream sets and (with `allow_relay`) foreign destinations.
    Vouched,
    /// A From in a foreign domain from an untrusted source: local users only.
    Foreign,
}

/// The reason phrase of the 403 for a [`Caller::Foreign`] request bound for an upstream set
/// or a foreign destination.
const NOT_TRUSTED: &str = "Not relaying: From is not ours and the source is not trusted";

/// What authentication decided for a request.
enum Verdict {
    /// Go on (authenticated as this user, or no authentication needed).
    Pass,
    /// Answered (challenge or refusal).
    Answered,
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// `udp:IP:PORT` of a listener, as stored with a dialog.
fn socket_text(flow: &Flow) -> String {
    format!("{}:{}", flow.transport.param_value(), flow.local)
}

fn parse_socket(b: &[u8]) -> Option<(Transport, SocketAddr)> {
    let s = std::str::from_utf8(b).ok()?;
    let (t, a) = s.split_once(':')?;
    Some((Transport::parse(t.as_bytes())?, a.parse().ok()?))
}

/// The Route entries of a stored Path (`<sip:a;lr>,<sip:b;lr>`), in order.
fn path_entries(path: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                let e = path[start..i].trim();
                if !e.is_empty() {
                    out.push(Bytes::copy_from_slice(e.as_bytes()));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let e = path[start..].trim();
    if !e.is_empty() {
        out.push(Bytes::copy_from_slice(e.as_bytes()));
    }
    out
}

/// The AOR of `uri`'s user in `domain` (`sip:alice@192.0.2.1:5060` → `sip:alice@example.com`).
fn in_domain(uri: &Uri<'_>, domain: &str, case: UserCase) -> Option<Aor> {
    let mut text = Vec::with_capacity(uri.raw.len() + domain.len());
    text.extend_from_slice(uri.scheme_str.as_bytes());
    text.push(b':');
    text.extend_from_slice(uri.user?);
    text.push(b'@');
    text.extend_from_slice(domain.as_bytes());
    Aor::new(&Uri::parse(&text).ok()?, case).ok()
}

impl Proxy {
    /// Whether `ip` is in a trusted network.
    pub(crate) fn is_trusted(&self, ip: IpAddr) -> bool {
        let t = self.local.trusted.load();
        !t.is_empty() && t.iter().any(|n| n.contains(ip))
    }

    /// A datagram from a banned source or a flooding one: dropped (and counted).
    pub(crate) fn drop_source(&self, w: &Work<'_>, ip: IpAddr) -> bool {
        let banned = self.local.bans.is_banned(ip, w.now.mono)
            || self.local.shared.as_ref().is_some_and(|s| s.is_banned(ip));
        if banned && !self.is_trusted(ip) {
            self.stats.banned_drops.inc();
            return true;
        }
        if let Some(f) = &self.local.flood {
            if !f.admit(ip, w.now.mono) && !self.is_trusted(ip) {
                self.stats.flood_drops.inc();
                return true;
            }
        }
        false
    }

    /// Digest authentication of `req` with `kind` (401 for REGISTER, 407 otherwise): the
    /// authenticated user must be `user` (To user for REGISTER, From user for calls).
    fn authenticate(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        flow: Flow,
        kind: ChallengeKind,
        user: &[u8],
    ) -> Verdict {
        let Some(auth) = &self.local.auth else {
            return Verdict::Pass;
        };
        let server = match kind {
            ChallengeKind::Www => &auth.www,
            ChallengeKind::Proxy => &auth.proxy,
        };
        let ip = flow.remote.ip();
        let unix = w.now.wall.as_secs();
        let creds = auth.creds.load();
        let mut outcome =
            server.verify_message_cached(req, ip, &creds.users, &creds.cache, unix, w.now.mono);
        if let (Outcome::Ok(_), Some(s)) = (&outcome, &self.local.shared) {
            // Replay state shared by every node: a nonce/nc used anywhere is used.
            let presented = server.credentials_in(req).ok().flatten();
            let (nonce, nc) = presented
                .as_ref()
                .map(|c| (c.nonce().into_owned(), c.nc()))
                .unwrap_or_default();
            let lifetime = Duration::from_secs(self.cfg.auth.nonce_lifetime);
            match s.check_replay(&nonce, nc, lifetime) {
                Ok(crate::redis::Replay::Fresh) => {}
                Ok(crate::redis::Replay::Replayed) => {
                    outcome = Outcome::Failed(FailReason::Replay);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "replay check not made");
                    self.respond(w, tx, req, 503, &[("Retry-After", "5")]);
                    return Verdict::Answered;
                }
            }
        }
        let stale = match outcome {
            Outcome::Ok(a) => {
                if a.user.as_bytes() != user {
                    self.stats.auth_failed.inc();
                    self.respond(w, tx, req, 403, &[]);
                    return Verdict::Answered;
                }
                self.stats.auth_ok.inc();
                self.local.bans.record_success(ip, w.now.mono);
                if let Some(s) = &self.local.shared {
                    let _ = s.record_success(ip);
                }
                return Verdict::Pass;
            }
            Outcome::Stale => {
                self.stats.auth_stale.inc();
                true
            }
            Outcome::Failed(FailReason::NoCredentials) => false,
            Outcome::Failed(reason) => {
                self.stats.auth_failed.inc();
                if reason.counts_as_attempt() && !self.is_trusted(ip) {
                    let mut banned = matches!(
                        self.local.bans.record_failure(ip, None, w.now.mono),
                        FailureVerdict::Banned { .. }
                    );
                    if let Some(s) = &self.local.shared {
                        banned |= self.shared_failure(s, ip);
                    }
                    if banned {
                        self.stats.bans.inc();
                        tracing::warn!(source = %ip, "banned after repeated authentication failures");
                    }
                }
                let status = reason.status(kind);
                if status == 400 {
                    self.respond(w, tx, req, 400, &[]);
                    return Verdict::Answered;
                }
                false
            }
        };
        let r = Request::from_message(req, ip);
        let header = kind.challenge_header();
        let challenges = server.challenge(&r, unix, stale);
        let headers: Vec<(&str, &str)> = challenges.iter().map(|c| (header, c.as_str())).collect();
        self.respond(w, tx, req, kind.status(), &headers);
        Verdict::Answered
    }

    /// Whether a user name exists in the users file (our realm).
    fn is_local_user(&self, user: &[u8]) -> bool {
        let Some(auth) = &self.local.auth else {
            return false;
        };
        let Ok(u) = std::str::from_utf8(user) else {
            return false;
        };
        auth.creds
            .load()
            .users
            .ha1(u, self.cfg.realm(), HashKind::Md5)
            .is_some()
    }

    /// REGISTER for our domain: authentication, then the registrar (step 6).
    pub(crate) fn route_register(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        flow: Flow,
    ) {
        let to_user = req
            .to()
            .ok()
            .and_then(|t| t.uri().ok().and_then(|u| u.user.map(<[u8]>::to_vec)))
            .unwrap_or_default();
        if self.local.auth.is_some() {
            if let Verdict::Answered =
                self.authenticate(w, tx, req, flow, ChallengeKind::Www, &to_user)
            {
                return;
            }
        } else if !(self.cfg.registrar.open_on_loopback && is_loopback(flow.remote.ip())) {
            return self.respond(w, tx, req, 403, &[]);
        }
        let source = Source {
            addr: flow.remote,
            transport: flow.transport,
            local: Some(flow.local),
            flow: flow.conn.map(|c| c.0),
        };
        let done = registrar::register(
            &self.local.location,
            req,
            &source,
            w.now.wall,
            &self.local.policy.load(),
        );
        if let Some(e) = &done.error {
            self.store_failure(w.now, "registration not stored (answered 500/503)", e);
        }
        match done.reply {
            Some(reply) => {
                self.stats.registrations.inc();
                let _ = self.layer.respond_built(
                    w.now.mono,
                    tx,
                    reply.status,
                    reply.response,
                    &mut w.scratch,
                );
            }
            None => self.respond(w, tx, req, 403, &[]),
        }
    }

    /// Step 7: who vouches for an initial request. One from a trusted source (`auth.trusted`,
    /// an upstream, a provider we register with) is not challenged; one whose From is in our
    /// domains is challenged (407) until it authenticates; one whose From is foreign may
    /// only reach our local users ([`Caller::Foreign`]). Without authentication (no users
    /// file) every caller is vouched for.
    pub(crate) fn authorize_call(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        flow: Flow,
    ) -> Caller {
        if self.local.auth.is_none() || req.method() == Some("CANCEL") {
            return Caller::Vouched;
        }
        let ip = flow.remote.ip();
        if self.is_trusted(ip)
            || self.dispatcher.is_upstream(flow.remote)
            || self.is_uplink_source(flow.remote)
        {
            return Caller::Vouched;
        }
        let Some(uri) = req.from().ok().and_then(|f| f.uri().ok()) else {
            return Caller::Foreign;
        };
        if !self.is_our_host(uri.host, uri.port) {
            return Caller::Foreign;
        }
        let user = uri.user.unwrap_or_default().to_vec();
        match self.authenticate(w, tx, req, flow, ChallengeKind::Proxy, &user) {
            Verdict::Pass => Caller::Vouched,
            Verdict::Answered => Caller::Answered,
        }
    }

    /// Upstream sets and relaying are for vouched callers only: a [`Caller::Foreign`] one is
    /// answered 403 here (`true`: refused).
    pub(crate) fn refuse_foreign(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        caller: Caller,
    ) -> bool {
        if caller != Caller::Foreign {
            return false;
        }
        self.stats.not_routed.inc();
        self.respond_reason(w, tx, req, 403, NOT_TRUSTED, &[]);
        true
    }

    /// Step 8: a Request-URI in our domains. `true` when handled (forked to the user's
    /// contacts, or answered 480 for a known user with none).
    pub(crate) fn route_local_user(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        flow: Flow,
        uri: &Uri<'_>,
    ) -> bool {
        let user_case = self.local.policy.load().user_case;
        let Ok(aor) = Aor::new(uri, user_case) else {
            return false;
        };
        // Registrations are keyed by the To URI, which rarely names a port; a Request-URI
        // naming our port (sip:alice@proxy:5060) means the same user.
        let portless = uri.port.and_then(|_| {
            let mut text = Vec::with_capacity(uri.raw.len());
            text.extend_from_slice(uri.scheme_str.as_bytes());
            text.push(b':');
            if let Some(u) = uri.user {
                text.extend_from_slice(u);
                text.push(b'@');
            }
            text.extend_from_slice(uri.host.as_bytes());
            Uri::parse(&text)
                .ok()
                .and_then(|u| Aor::new(&u, user_case).ok())
        });
        let mut found = self.local.location.lookup(aor.as_str(), w.now.wall);
        if let (Some(p), Ok(s)) = (&portless, &found) {
            if s.is_empty() {
                found = self.local.location.lookup(p.as_str(), w.now.wall);
            }
        }
        // A Request-URI naming one of our listeners rather than a domain (the Contact a
        // provider was given, `uplink`): the user of that name in our domains.
        let by_address =
            uri.user.is_some() && !self.domains.contains(&uri.host.to_ascii_lowercase());
        if by_address {
            for d in &self.domains {
                if !found.as_ref().is_ok_and(sip_location::Snapshot::is_empty) {
                    break;
                }
                if let Some(a) = in_domain(uri, d, user_case) {
                    found = self.local.location.lookup(a.as_str(), w.now.wall);
                }
            }
        }
        let bindings = match found {
            Ok(s) => s,
            Err(e) => {
                self.store_failure(w.now, "location lookup failed", &e);
                let status = e.status();
                let retry: &[(&str, &str)] = if status == 503 {
                    &[("Retry-After", "5")]
                } else {
                    &[]
                };
                self.respond(w, tx, req, status, retry);
                return true;
            }
        };
        let targets: Vec<Target> = bindings
            .bindings()
            .iter()
            .filter_map(|b| {
                let (transport, addr, conn) = if let Some(s) = b.send_to() {
                    (s.transport, s.addr, s.flow.map(ConnId))
                } else {
                    let (t, a) = self.resolve_uri(b.contact().as_bytes())?;
                    (t, a, None)
                };
                let mut f = self.flow_to(transport, addr)?;
                f.conn = conn;
                // Send from the listener the REGISTER came in on: the side of the network
                // the contact lives on (double Record-Route when that is not the caller's).
                if let Some(local) = b.source().and_then(|s| s.local) {
                    if self
                        .cfg
                        .listen
                        .iter()
                        .any(|l| l.address.addr == local && l.address.transport == transport)
                    {
                        f.local = local;
                    }
                }
                let mut t = Target::to(f).with_uri(Bytes::copy_from_slice(b.contact().as_bytes()));
                t.q = b.q().unwrap_or(1000);
                t.route = path_entries(b.path());
                Some(t)
            })
            .collect();
        if targets.is_empty() {
            if uri.user.is_some_and(|u| self.is_local_user(u)) {
                self.stats.not_routed.inc();
                self.respond(w, tx, req, 480, &[]);
                return true;
            }
            return false;
        }
        if !self.track_dialog(w, tx, req, flow, &targets[0].flow) {
            return true;
        }
        let rr = self.cfg.record_route && Self::creates_dialog(req);
        self.forward_to(w, tx, targets, rr, false);
        true
    }

    /// Starts tracking the dialog of an initial INVITE (with its maximum duration). With
    /// `dialog.max_dialogs` dialogs tracked the INVITE is answered `503` with Retry-After
    /// (counted in `dialogs_refused`, logged once per [`LIMIT_LOG_INTERVAL`]) and `false`
    /// comes back: not to be forwarded.
    pub(crate) fn track_dialog(
        &self,
        w: &mut Work<'_>,
        tx: ServerTxId,
        req: &Message,
        inbound: Flow,
        outbound: &Flow,
    ) -> bool {
        let Some(t) = &self.local.dialogs else {
            return true;
        };
        if req.method() != Some("INVITE") {
            return true;
        }
        let (a, b) = (socket_text(&inbound), socket_text(outbound));
        let double = inbound.local != outbound.local || inbound.transport != outbound.transport;
        let opts = CreateOptions {
            caller_socket: a.as_bytes(),
            callee_socket: b.as_bytes(),
            own_record_routes: if double { 2 } else { 1 },
            ..CreateOptions::default()
        };
        match t.create(req, &opts, w.now.wall) {
            Ok(_) => self.stats.dialogs_created.inc(),
            Err(e @ TrackError::Full { .. }) => {
                self.stats.dialogs_refused.inc();
                if self.local.dialogs_full_log.due(w.now.mono) {
                    tracing::warn!(
                        error = %e,
                        refused = self.stats.dialogs_refused.get(),
                        "dialog table full: new calls answered 503 (dialog.max_dialogs)"
                    );
                }
                self.respond(w, tx, req, 503, &[("Retry-After", "5")]);
                return false;
            }
            Err(e) => tracing::debug!(error = %e, "dialog not tracked"),
        }
        true
    }

    /// Every request and forwarded response goes by the dialog tracker.
    pub(crate) fn dialog_request(&self, w: &Work<'_>, req: &Message) {
        if let Some(t) = &self.local.dialogs {
            let mut outcome = t.on_request(req, w.now.wall);
            if outcome == sip_dialog::Outcome::NotFound && self.adopt_dialog(w, t, req) {
                outcome = t.on_request(req, w.now.wall);
            }
            self.persist(w, &outcome);
            self.persist_dialog(w.now, &outcome);
        }
    }

    pub(crate) fn dialog_response(&self, w: &Work<'_>, resp: &Message) {
        if let Some(t) = &self.local.dialogs {
            let outcome = t.on_response(resp, w.now.wall);
            self.persist(w, &outcome);
            self.persist_dialog(w.now, &outcome);
        }
    }

    /// A dialog another node created (shared store): tracked here from now on. `true` when
    /// found.
    fn adopt_dialog(&self, w: &Work<'_>, t: &Tracker, req: &Message) -> bool {
        let Some(p) = &self.local.persister else {
            return false;
        };
        let (Some(call_id), Ok(from), Ok(to)) = (req.call_id(), req.from(), req.to()) else {
            return false;
        };
        let (Some(a), Some(b)) = (from.tag(), to.tag()) else {
            return false;
        };
        match sip_dialog::DialogStore::find(p.store(), call_id, a, b) {
            Ok(Some(r)) => t.insert_record(r, w.now.wall).is_ok(),
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "shared dialog lookup failed");
                false
            }
        }
    }

    /// Writes a dialog change to the shared store.
    fn persist(&self, w: &Work<'_>, outcome: &sip_dialog::Outcome) {
        let (Some(p), Some(c)) = (
            &self.local.persister,
            outcome.tracked().and_then(|t| t.change.as_ref()),
        ) else {
            return;
        };
        if let Err(e) = p.record(c, w.now.wall) {
            self.stats.store_write_failures.inc();
            tracing::debug!(error = %e, "dialog change not shared yet (retried)");
        }
    }

    /// A counted authentication failure, shared: `true` when it banned the source (on every
    /// node).
    fn shared_failure(&self, s: &crate::redis::Shared, ip: IpAddr) -> bool {
        let window = Duration::from_secs(self.cfg.auth.ban_seconds.max(60) * 12);
        let ban_time = Duration::from_secs(self.cfg.auth.ban_seconds);
        let n = match s.record_failure(ip, window) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "failure not shared");
                return false;
            }
        };
        if self.local.bans.is_trusted(ip) || n <= u64::from(self.cfg.auth.ban_after) {
            return false;
        }
        if let Err(e) = s.ban(ip, ban_time) {
            tracing::debug!(error = %e, "ban not shared");
        }
        true
    }

    /// When housekeeping is next due (monotonic ms).
    pub(crate) fn local_tick(&self) -> u64 {
        self.local.housekeeping.load(Ordering::Relaxed)
    }

    /// Live dialogs.
    pub fn dialogs(&self) -> usize {
        self.local.dialogs.as_ref().map_or(0, |t| t.stats().dialogs)
    }

    /// Registered bindings.
    pub fn bindings(&self) -> usize {
        self.local.location.counts().map_or(0, |c| c.bindings)
    }

    /// Once a second: expire bindings, end dialogs past their lifetime (BYE both sides),
    /// forget stale cache entries.
    pub(crate) fn housekeeping(&self, w: &mut Work<'_>) {
        let now_ms = w.now.mono.as_millis() as u64;
        let due = self.local.housekeeping.load(Ordering::Relaxed);
        if now_ms < due
            || self
                .local
                .housekeeping
                .compare_exchange(due, now_ms + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for _ in 0..16 {
            match self.local.location.expire(w.now.wall, 1000) {
                Ok(ev) if ev.len() == 1000 => {}
                Ok(_) => break,
                Err(e) => {
                    self.store_failure(
                        w.now,
                        "expired registrations not removed (retried at the next pass)",
                        &e,
                    );
                    break;
                }
            }
        }
        if let Some(a) = &self.local.auth {
            a.creds.load().cache.purge_expired(w.now.mono);
        }
        let Some(t) = &self.local.dialogs else { return };
        let mut events = Vec::new();
        t.poll(w.now.wall, &mut events);
        for e in events {
            match e {
                TimerEvent::Expired(ended) => {
                    self.stats.dialogs_expired.inc();
                    // A confirmed call that ran out of time (a setup timeout has nobody to
                    // hang up on: its INVITE transaction ends it). With Redis the shared
                    // store decides which node sends the BYEs; with the database the
                    // persister decides first (it takes the dialog out of the database).
                    if ended.reason == sip_dialog::EndReason::Expired {
                        if self.local.shared.is_some() {
                            self.end_expired(w, t, &ended.record);
                        } else if self.expiry_sends_bye(w.now, t, &ended.record) {
                            self.send_byes(w, &ended.record);
                        }
                    }
                }
                TimerEvent::Keepalive { .. } => {}
            }
        }
        if let Some(p) = &self.local.persister {
            let _ = p.flush_due(w.now.wall);
            // Dialogs past their lifetime that no node ended (their node died): each is
            // claimed by exactly one node.
            match p.reap(w.now.wall, 100) {
                Ok(records) => {
                    for r in records {
                        if let Some(h) = t.handle(r.id) {
                            t.forget(h);
                        }
                        self.stats.dialogs_expired.inc();
                        self.send_byes(w, &r);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "dialog reaping skipped"),
            }
        }
    }

    /// A tracked dialog's lifetime ended here: with a shared store, only the node that
    /// claims it sends the BYEs.
    fn end_expired(&self, w: &mut Work<'_>, t: &Tracker, record: &DialogRecord) {
        let Some(p) = &self.local.persister else {
            return self.send_byes(w, record);
        };
        match p.expire(record, w.now.wall) {
            Ok(Expiry::SendBye) => self.send_byes(w, record),
            Ok(Expiry::Refreshed(r)) => {
                let _ = t.insert_record(r, w.now.wall);
            }
            Ok(_) => {}
            Err(e) => {
                // Nobody can tell whether another node ends it: better two BYEs than none.
                tracing::warn!(error = %e, "dialog expiry not claimed in the shared store");
                self.send_byes(w, record);
            }
        }
    }

    fn send_byes(&self, w: &mut Work<'_>, record: &DialogRecord) {
        if !record.flags.has(DialogFlags::SEND_BYE) {
            return;
        }
        for party in record.byes() {
            self.send_in_dialog(w, &party.socket, &party.request, LIFETIME_ENDED);
        }
    }

    /// Sends a request the proxy originates inside a dialog (BYE on expiry, or an operator's
    /// `dialog end`) through a client transaction, with `reason` as its Reason header.
    pub(crate) fn send_in_dialog(
        &self,
        w: &mut Work<'_>,
        socket: &[u8],
        req: &sip_dialog::InDialogRequest,
        reason: &str,
    ) -> bool {
        let Some((t, addr)) = self.resolve_uri(req.target.next_hop().as_bytes()) else {
            return false;
        };
        let Some(mut flow) = self.flow_to(t, addr) else {
            return false;
        };
        if let Some((_, local)) = parse_socket(socket) {
            if self
                .cfg
                .listen
                .iter()
                .any(|l| l.address.addr == local && l.address.transport == t)
            {
                flow.local = local;
            }
        }
        self.layer
            .send_request(
                w.now.mono,
                flow,
                |via| {
                    let mut b = req.builder();
                    b.via(via).header("Reason", reason);
                    b.build()
                },
                &mut w.scratch,
            )
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: past a limit the proxy "logs once per interval".
    #[test]
    fn limit_logged_once_per_interval() {
        let l = LogEvery::default();
        let s = Duration::from_secs;
        assert!(l.due(s(100)));
        assert!(!l.due(s(100)));
        assert!(!l.due(s(99) + LIMIT_LOG_INTERVAL + Duration::from_millis(999)));
        assert!(l.due(s(100) + LIMIT_LOG_INTERVAL));
        assert!(!l.due(s(101) + LIMIT_LOG_INTERVAL));
    }

    #[test]
    fn paths_split_at_top_level_commas() {
        let p = path_entries("<sip:a.example.com;lr>, <sip:b.example.com;lr;x=\"1,2\">");
        assert_eq!(p.len(), 2);
        assert!(path_entries("").is_empty());
        assert_eq!(
            parse_socket(b"udp:127.0.0.1:5060"),
            Some((Transport::Udp, "127.0.0.1:5060".parse().unwrap()))
        );
    }
}
