//! Registration to providers (Kamailio's `uac_reg`): the proxy registers itself as a client
//! with each `[[registration]]` (`--register-to`), so that the provider sends the calls for
//! that user here. Those calls are then routed like any other request (a local user of that
//! name, else an upstream set).
//!
//! Each registration is a small state machine on the proxy's clocks:
//!
//! * a REGISTER (RFC 3261 §10.2) goes out through a client transaction, from the listener
//!   facing the provider, with `Contact: <sip:USER@ADVERTISED:PORT>` and the same Call-ID
//!   and increasing CSeq for the whole run (§10.2.4);
//! * a 401/407 is answered once with digest credentials (`sip_auth::DigestClient`); a second
//!   challenge counts only when it says `stale=true`, otherwise the credentials were refused;
//! * a 423 is retried at once with the Min-Expires asked for (§10.2.8);
//! * a 2xx: registered for the `expires` the provider granted to our Contact (else the
//!   Expires header, else what was asked), refreshed at [`REFRESH_PERCENT`] % of it;
//! * anything else (another final status, Timer F, a transport error, an unresolvable
//!   provider): failed, retried after a back-off that starts at [`BACKOFF_MIN`] and doubles
//!   up to [`BACKOFF_MAX`] (a `Retry-After` of the answer is honoured within those bounds);
//!   a success resets it.
//!
//! Every change of state is logged (`target: "uplink"`). Nothing here reads a clock or a
//! global generator: time comes from [`Now`](super::Now), Call-IDs, tags and cnonces from a
//! generator seeded from the proxy's seed.

use std::net::SocketAddr;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sip_auth::{ClientError, ClientRequest, DigestClient};
use sip_parser::{HeaderName, Ident, Message, RequestBuilder, Transport, Uri};
use sip_transaction::{ClientTxId, Flow};

use super::local::SetupError;
use super::{Proxy, Work};
use crate::config::{Config, Mode, RegistrationConfig};

/// First retry delay after a failed registration.
pub const BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest retry delay (the back-off doubles up to it).
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A registration is refreshed when this share of the granted time has passed.
pub const REFRESH_PERCENT: u32 = 85;
/// REGISTERs one attempt may send (the first, a challenge answer, a stale-nonce answer, a
/// 423 retry): a provider that keeps asking for more fails the attempt.
const MAX_ROUNDS: u8 = 4;
/// Longest Min-Expires followed on a 423 (one day).
const MAX_MIN_EXPIRES: u32 = 86_400;
/// Salts the proxy's seed into the key of the generator used here.
const SALT: &[u8; 32] = b"sip-proxy uplink identifiers v1!";

/// Where a registration with a provider stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkState {
    /// Not registered yet: the first REGISTER is due or in flight.
    Registering,
    /// The provider accepted the registration for `expires` seconds; it is refreshed at
    /// `refresh_at` (monotonic, as [`Now::mono`](super::Now)).
    Registered {
        /// Seconds granted by the provider.
        expires: u32,
        /// When the refresh is sent.
        refresh_at: Duration,
    },
    /// The last attempt failed with `status` (`None`: no answer, or it could not be sent);
    /// the next one is sent at `retry_at` (monotonic).
    Failed {
        /// The final status received, if any.
        status: Option<u16>,
        /// When the next attempt is sent.
        retry_at: Duration,
    },
}

/// What one registration is doing.
enum Phase {
    /// Waiting until `at` (monotonic) to send a REGISTER: the first, a refresh or a retry.
    Waiting { at: Duration },
    /// REGISTER in flight as client transaction `tx`.
    InFlight {
        tx: ClientTxId,
        flow: Flow,
        contact: String,
        client: Box<DigestClient>,
        /// REGISTERs sent in this attempt.
        rounds: u8,
    },
}

/// One `[[registration]]`.
struct Registration {
    /// The address-of-record, `sip:USER@HOST[:PORT]` (From, To, where to send).
    aor: String,
    /// `<aor>` for From and To.
    aor_field: String,
    /// Request-URI: the AOR without its user part (§10.2).
    request_uri: String,
    /// Contact user.
    user: String,
    auth_user: String,
    password: String,
    /// Expires asked for (raised by a 423).
    asked: u32,
    call_id: String,
    from_tag: String,
    cseq: u32,
    phase: Phase,
    state: UplinkState,
    backoff: Duration,
}

/// Every registration, and the generator their identifiers come from.
pub(crate) struct Uplinks {
    regs: Vec<Mutex<Registration>>,
    rng: Mutex<StdRng>,
    /// Where each provider was last found (requests from there are not challenged).
    providers: RwLock<Vec<Option<SocketAddr>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `sip:HOST[:PORT][;params]` of `sip:USER@HOST[:PORT][;params]`.
fn registrar_uri(u: &Uri<'_>) -> String {
    let mut s = format!("{}:{}", u.scheme_str, u.host);
    if let Some(p) = u.port {
        s.push(':');
        s.push_str(&p.to_string());
    }
    let params = u.params.as_bytes();
    if !params.is_empty() {
        s.push(';');
        s.push_str(&String::from_utf8_lossy(params));
    }
    s
}

/// The delay before refreshing a registration granted for `expires` seconds.
pub fn refresh_delay(expires: u32) -> Duration {
    let ms = u64::from(expires) * 10 * u64::from(REFRESH_PERCENT);
    Duration::from_millis(ms).max(Duration::from_secs(1))
}

/// The leading seconds of a `Retry-After` value (`120 (maintenance);duration=60`).
fn retry_after(resp: &Message) -> Option<u64> {
    let v = resp.header("Retry-After")?;
    let end = v
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(v.len());
    std::str::from_utf8(&v[..end]).ok()?.parse().ok()
}

impl Registration {
    /// The attempt failed: wait for the back-off (or the provider's Retry-After, within
    /// the same bounds), then double it.
    fn failed(&mut self, now: Duration, status: Option<u16>, retry_after: Option<u64>) {
        let delay = retry_after.map_or(self.backoff, |s| {
            Duration::from_secs(s).clamp(BACKOFF_MIN, BACKOFF_MAX)
        });
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        let retry_at = now + delay;
        match status {
            Some(s) => {
                tracing::warn!(target: "uplink", uri = %self.aor, status = s, retry_in_s = delay.as_secs(), "registration failed");
            }
            None => {
                tracing::warn!(target: "uplink", uri = %self.aor, retry_in_s = delay.as_secs(), "registration failed: no answer");
            }
        }
        self.state = UplinkState::Failed { status, retry_at };
        self.phase = Phase::Waiting { at: retry_at };
    }

    /// A 2xx: the time granted to our Contact (§10.2.4: the provider lists every binding of
    /// the AOR with its expires), then the refresh.
    fn registered(&mut self, now: Duration, resp: &Message, contact: &str, status: u16) {
        let ours = sip_parser::NameAddr::parse(contact.as_bytes())
            .ok()
            .and_then(|n| n.uri().ok());
        let default = resp.expires().ok().flatten().unwrap_or(self.asked);
        let granted = resp
            .contacts()
            .filter_map(Result::ok)
            .find(|c| {
                let theirs = c.addr().and_then(|a| a.uri().ok());
                matches!((&ours, theirs), (Some(a), Some(b)) if a.equivalent(&b))
            })
            .map_or(Ok(default), |c| resp.contact_expiry(&c, default))
            .unwrap_or(default);
        if granted == 0 {
            tracing::warn!(target: "uplink", uri = %self.aor, "provider granted no time");
            return self.failed(now, Some(status), None);
        }
        let refresh_at = now + refresh_delay(granted);
        if matches!(self.state, UplinkState::Registered { .. }) {
            tracing::debug!(target: "uplink", uri = %self.aor, expires = granted, "registration refreshed");
        } else {
            tracing::info!(target: "uplink", uri = %self.aor, expires = granted, contact, "registered with provider");
        }
        self.state = UplinkState::Registered {
            expires: granted,
            refresh_at,
        };
        self.backoff = BACKOFF_MIN;
        self.phase = Phase::Waiting { at: refresh_at };
    }

    fn new(cfg: &RegistrationConfig, rng: &mut StdRng) -> Result<Self, SetupError> {
        let bad = |m: String| SetupError::Registration(cfg.uri.clone(), m);
        let uri = Uri::parse(cfg.uri.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let user = uri
            .user
            .and_then(|u| std::str::from_utf8(u).ok())
            .ok_or_else(|| bad("no user part".into()))?
            .to_owned();
        let text = std::fs::read_to_string(&cfg.password_file)
            .map_err(|e| bad(format!("{}: {e}", cfg.password_file.display())))?;
        let password = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_owned();
        if password.is_empty() {
            return Err(bad(format!(
                "{}: the first line (the password) is empty",
                cfg.password_file.display()
            )));
        }
        Ok(Registration {
            aor: cfg.uri.clone(),
            aor_field: format!("<{}>", cfg.uri),
            request_uri: registrar_uri(&uri),
            auth_user: cfg.auth_user.clone().unwrap_or_else(|| user.clone()),
            user,
            password,
            asked: cfg.expires,
            call_id: Ident::call_id(rng).as_str().to_owned(),
            from_tag: Ident::tag(rng).as_str().to_owned(),
            cseq: 1,
            phase: Phase::Waiting { at: Duration::ZERO },
            state: UplinkState::Registering,
            backoff: BACKOFF_MIN,
        })
    }
}

impl Uplinks {
    pub(crate) fn new(cfg: &Config, seed: &[u8; 32]) -> Result<Self, SetupError> {
        // A generator of its own, keyed from the proxy's seed (salted, so it draws nothing
        // the transaction layer's keys are made of).
        let mut key = *seed;
        for (b, s) in key.iter_mut().zip(SALT) {
            *b ^= s;
        }
        let mut rng = StdRng::from_seed(key);
        let regs = if cfg.mode == Mode::Stateless && !cfg.registration.is_empty() {
            tracing::warn!(
                target: "uplink",
                "registrations to providers need a stateful mode: ignored in stateless mode"
            );
            Vec::new()
        } else {
            cfg.registration
                .iter()
                .map(|r| Registration::new(r, &mut rng).map(Mutex::new))
                .collect::<Result<_, _>>()?
        };
        Ok(Uplinks {
            providers: RwLock::new(vec![None; regs.len()]),
            regs,
            rng: Mutex::new(rng),
        })
    }

    /// When a registration next needs the timer (monotonic).
    pub(crate) fn next_due(&self) -> Option<Duration> {
        self.regs
            .iter()
            .filter_map(|r| match lock(r).phase {
                Phase::Waiting { at } => Some(at),
                Phase::InFlight { .. } => None,
            })
            .min()
    }

    fn cnonce(&self) -> String {
        let mut rng = lock(&self.rng);
        Ident::tag(&mut *rng).as_str().to_owned()
    }
}

impl Proxy {
    /// Each registration to a provider (`[[registration]]`, `--register-to`) and where it
    /// stands, in configuration order.
    pub fn uplinks(&self) -> Vec<(String, UplinkState)> {
        self.uplinks
            .regs
            .iter()
            .map(|r| {
                let r = lock(r);
                (r.aor.clone(), r.state)
            })
            .collect()
    }

    /// Whether `addr` is a provider we register with (its calls are not challenged, as an
    /// upstream's are not).
    pub(crate) fn is_uplink_source(&self, addr: SocketAddr) -> bool {
        !self.uplinks.regs.is_empty()
            && self
                .uplinks
                .providers
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&Some(addr))
    }

    /// Sends the REGISTERs that are due (first attempts, refreshes, retries).
    pub(crate) fn uplinks_due(&self, w: &mut Work<'_>) {
        if self.draining() {
            return;
        }
        for (i, m) in self.uplinks.regs.iter().enumerate() {
            let mut reg = lock(m);
            if matches!(reg.phase, Phase::Waiting { at } if at <= w.now.mono) {
                if matches!(reg.state, UplinkState::Failed { .. }) {
                    tracing::info!(target: "uplink", uri = %reg.aor, "retrying registration");
                }
                self.start_attempt(w, i, &mut reg);
            }
        }
    }

    /// A new attempt: resolve the provider, pick the listener facing it, send a REGISTER
    /// without credentials.
    fn start_attempt(&self, w: &mut Work<'_>, i: usize, reg: &mut Registration) {
        let Some((transport, addr)) = self.resolve_uri(reg.aor.as_bytes()) else {
            tracing::warn!(target: "uplink", uri = %reg.aor, "provider does not resolve");
            return reg.failed(w.now.mono, None, None);
        };
        let Some(flow) = self.flow_to(transport, addr) else {
            tracing::warn!(
                target: "uplink", uri = %reg.aor, transport = %transport,
                "no listener of the provider's transport"
            );
            return reg.failed(w.now.mono, None, None);
        };
        if let Some(p) = self
            .uplinks
            .providers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(i)
        {
            *p = Some(addr);
        }
        let contact = self.contact_for(&reg.user, &flow);
        let client = Box::new(DigestClient::new(&reg.auth_user, &reg.password));
        self.send_register(w, reg, flow, contact, client, 0, None);
    }

    /// `<sip:USER@HOST:PORT>` of the listener `flow` leaves from (its advertised address when
    /// it has one).
    fn contact_for(&self, user: &str, flow: &Flow) -> String {
        let listener = self
            .cfg
            .listen
            .iter()
            .find(|l| l.address.addr == flow.local && l.address.transport == flow.transport);
        let hostport = match listener.and_then(|l| l.advertise.as_ref()) {
            Some(a) => format!("{}:{}", a.host, a.port.unwrap_or(flow.local.port())),
            None => flow.local.to_string(),
        };
        let transport = match flow.transport {
            Transport::Udp => String::new(),
            t => format!(";transport={}", t.param_value()),
        };
        format!("<sip:{user}@{hostport}{transport}>")
    }

    #[allow(clippy::too_many_arguments)]
    fn send_register(
        &self,
        w: &mut Work<'_>,
        reg: &mut Registration,
        flow: Flow,
        contact: String,
        client: Box<DigestClient>,
        rounds: u8,
        auth: Option<&(&'static str, String)>,
    ) {
        let cseq = reg.cseq;
        reg.cseq = reg.cseq.wrapping_add(1).max(1);
        let expires = reg.asked.to_string();
        let sent = self.layer.send_request(
            w.now.mono,
            flow,
            |via| {
                let mut b = RequestBuilder::new("REGISTER", reg.request_uri.as_str());
                b.via(via)
                    .from(reg.aor_field.as_str(), Some(reg.from_tag.as_str()))
                    .to(reg.aor_field.as_str(), None)
                    .call_id(reg.call_id.as_str())
                    .cseq(cseq)
                    .contact(contact.as_str())
                    .header("Expires", expires.as_str());
                if let Some((name, value)) = auth {
                    b.header(*name, value.as_str());
                }
                b.header("User-Agent", "sip-proxy");
                b.build()
            },
            &mut w.scratch,
        );
        match sent {
            Ok(tx) => {
                reg.phase = Phase::InFlight {
                    tx,
                    flow,
                    contact,
                    client,
                    rounds: rounds + 1,
                };
            }
            Err(e) => {
                tracing::warn!(target: "uplink", uri = %reg.aor, error = %e, "REGISTER not sent");
                reg.failed(w.now.mono, None, None);
            }
        }
    }

    /// The registration whose REGISTER is client transaction `tx`, locked.
    fn in_flight(&self, tx: ClientTxId) -> Option<std::sync::MutexGuard<'_, Registration>> {
        self.uplinks.regs.iter().find_map(|m| {
            let reg = lock(m);
            matches!(reg.phase, Phase::InFlight { tx: t, .. } if t == tx).then_some(reg)
        })
    }

    /// A response to a client transaction: `true` when it was one of our REGISTERs.
    pub(crate) fn uplink_response(&self, w: &mut Work<'_>, tx: ClientTxId, resp: &Message) -> bool {
        let Some(mut reg) = self.in_flight(tx) else {
            return false;
        };
        let status = resp.status().unwrap_or(0);
        if status < 200 {
            return true;
        }
        let phase = std::mem::replace(
            &mut reg.phase,
            Phase::Waiting {
                at: w.now.mono + BACKOFF_MIN,
            },
        );
        let Phase::InFlight {
            flow,
            contact,
            mut client,
            rounds,
            ..
        } = phase
        else {
            return true;
        };
        match status {
            200..=299 => reg.registered(w.now.mono, resp, &contact, status),
            401 | 407 if rounds < MAX_ROUNDS => {
                let name = if status == 401 {
                    HeaderName::WwwAuthenticate
                } else {
                    HeaderName::ProxyAuthenticate
                };
                let challenges: Vec<&[u8]> = resp.headers_of(name).map(|h| h.value).collect();
                let req = ClientRequest {
                    method: "REGISTER",
                    uri: &reg.request_uri,
                    body: b"",
                };
                match client.respond(&challenges, &req, &self.uplinks.cnonce()) {
                    Ok(value) => {
                        let header = if status == 401 {
                            "Authorization"
                        } else {
                            "Proxy-Authorization"
                        };
                        self.send_register(
                            w,
                            &mut reg,
                            flow,
                            contact,
                            client,
                            rounds,
                            Some(&(header, value)),
                        );
                    }
                    Err(e) => {
                        let why = match e {
                            ClientError::Rejected => "credentials refused".to_owned(),
                            other => other.to_string(),
                        };
                        tracing::warn!(target: "uplink", uri = %reg.aor, status, reason = %why, "authentication with the provider failed");
                        reg.failed(w.now.mono, Some(status), retry_after(resp));
                    }
                }
            }
            423 if rounds < MAX_ROUNDS => match resp.min_expires() {
                Ok(Some(min)) if min > reg.asked && min <= MAX_MIN_EXPIRES => {
                    tracing::info!(target: "uplink", uri = %reg.aor, min_expires = min, "provider wants a longer registration");
                    reg.asked = min;
                    // Credentials passed (a 423 comes after authentication): a new
                    // challenge is a new one.
                    client.accepted();
                    self.send_register(w, &mut reg, flow, contact, client, rounds, None);
                }
                _ => reg.failed(w.now.mono, Some(status), None),
            },
            _ => reg.failed(w.now.mono, Some(status), retry_after(resp)),
        }
        true
    }

    /// The REGISTER of `tx` got no answer (Timer F) or could not be sent: `true` when it was
    /// one of ours.
    pub(crate) fn uplink_failure(&self, w: &mut Work<'_>, tx: ClientTxId) -> bool {
        let Some(mut reg) = self.in_flight(tx) else {
            return false;
        };
        reg.failed(w.now.mono, None, None);
        true
    }
}

#[cfg(test)]
mod tests {
    //! The registration state machine in virtual time: the proxy is driven with made-up
    //! clocks, the provider is this test (its digest checks are `sip-auth`'s server).

    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use sip_auth::{DigestServer, NonceSecrets, Outcome, ServerConfig};
    use sip_parser::{Message, ResponseBuilder, Transport};
    use sip_transaction::{Flow, Transmit};

    use super::{BACKOFF_MAX, BACKOFF_MIN, UplinkState, refresh_delay};
    use crate::config::{Config, ListenAddr, ListenerConfig, RegistrationConfig, UpstreamConfig};
    use crate::proxy::{Now, Parts, Proxy, SystemResolver};

    const ME: &str = "127.0.0.1:5060";
    const PROVIDER: &str = "127.0.0.2:5080";
    const REALM: &str = "provider.test";
    const WALL0: Duration = Duration::from_secs(1_700_000_000);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// A proxy registering `sip:trunk@PROVIDER` with the password `s3cret`, and the
    /// provider's side of the conversation.
    struct Rig {
        proxy: Proxy,
        now: Duration,
        server: DigestServer,
        users: sip_auth::MemoryStore,
        dir: std::path::PathBuf,
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn udp(local: &str, remote: &str) -> Flow {
        Flow {
            transport: Transport::Udp,
            local: addr(local),
            remote: addr(remote),
            conn: None,
        }
    }

    impl Rig {
        fn new(name: &str, upstream: Option<&str>) -> Rig {
            Self::with(name, upstream, |_| {})
        }

        fn with(name: &str, upstream: Option<&str>, edit: impl FnOnce(&mut Config)) -> Rig {
            let dir = std::env::temp_dir()
                .join(format!("sip-proxy-uplink-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let password_file = dir.join("password");
            std::fs::write(&password_file, "s3cret\n").unwrap();
            let mut cfg = Config {
                listen: vec![ListenerConfig {
                    address: ListenAddr {
                        transport: Transport::Udp,
                        addr: addr(ME),
                    },
                    advertise: None,
                }],
                domains: vec!["example.com".into()],
                registration: vec![RegistrationConfig {
                    uri: format!("sip:trunk@{PROVIDER}"),
                    password_file,
                    auth_user: None,
                    expires: 600,
                }],
                upstream: upstream
                    .map(|u| UpstreamConfig {
                        name: "default".into(),
                        targets: vec![ListenAddr {
                            transport: Transport::Udp,
                            addr: addr(u),
                        }],
                        algorithm: crate::config::Algorithm::RoundRobin,
                        weights: Vec::new(),
                        probe_interval: 0,
                    })
                    .into_iter()
                    .collect(),
                ..Config::default()
            };
            edit(&mut cfg);
            let cfg = cfg.finish().unwrap();
            let proxy = Proxy::new(
                cfg,
                Parts {
                    seed: [7; 32],
                    capture: None,
                    resolver: Arc::new(SystemResolver),
                },
                WALL0,
            )
            .unwrap();
            let mut users = sip_auth::MemoryStore::new();
            users.add_password("trunk", REALM, "s3cret");
            Rig {
                proxy,
                now: Duration::ZERO,
                server: DigestServer::new(ServerConfig::new(REALM), NonceSecrets::new(1, &[9; 32])),
                users,
                dir,
            }
        }

        fn clock(&self) -> Now {
            Now {
                mono: self.now,
                wall: WALL0 + self.now,
            }
        }

        fn state(&self) -> UplinkState {
            let u = self.proxy.uplinks();
            assert_eq!(u.len(), 1);
            assert_eq!(u[0].0, format!("sip:trunk@{PROVIDER}"));
            u[0].1
        }

        /// Runs the timers at `at`; the new REGISTERs sent to the provider (not the
        /// retransmissions of earlier ones).
        fn at(&mut self, at: Duration, seen: &mut u32) -> Vec<Message> {
            assert!(at >= self.now);
            self.now = at;
            let mut out = Vec::new();
            self.proxy.on_timer(self.clock(), &mut out);
            new_registers(&out, seen)
        }

        /// The provider answers `req`; what the proxy sends back (new REGISTERs only).
        fn answer(
            &mut self,
            req: &Message,
            status: u16,
            headers: &[(&str, String)],
            seen: &mut u32,
        ) -> Vec<Message> {
            let mut b = ResponseBuilder::new(req, status, sip_parser::reason_phrase(status));
            for (n, v) in headers {
                b.header(n.to_string(), v.clone());
            }
            let mut out = Vec::new();
            self.proxy
                .on_datagram(self.clock(), b.build(), udp(ME, PROVIDER), &mut out);
            new_registers(&out, seen)
        }

        fn challenge(&self, req: &Message, stale: bool) -> Vec<(&'static str, String)> {
            let r = sip_auth::Request::from_message(req, ip(ME));
            self.server
                .challenge(&r, (WALL0 + self.now).as_secs(), stale)
                .into_iter()
                .map(|c| ("WWW-Authenticate", c))
                .collect()
        }

        /// Whether the provider accepts the credentials of `req`.
        fn verifies(&self, req: &Message) -> bool {
            matches!(
                self.server
                    .verify_message(req, ip(ME), &self.users, (WALL0 + self.now).as_secs()),
                Outcome::Ok(_)
            )
        }

        /// 401, then 200 granting `expires` to our Contact: registered.
        fn register_ok(&mut self, first: &Message, expires: u32, seen: &mut u32) {
            let ch = self.challenge(first, false);
            let second = one(self.answer(first, 401, &ch, seen));
            assert!(self.verifies(&second), "{second:?}");
            let contact = format!("<sip:trunk@{ME}>;expires={expires}");
            assert!(
                self.answer(&second, 200, &[("Contact", contact)], seen)
                    .is_empty()
            );
            assert!(
                matches!(self.state(), UplinkState::Registered { expires: e, refresh_at }
                    if e == expires && refresh_at == self.now + refresh_delay(expires)),
                "{:?}",
                self.state()
            );
        }
    }

    fn ip(s: &str) -> IpAddr {
        addr(s).ip()
    }

    fn new_registers(out: &[Transmit], seen: &mut u32) -> Vec<Message> {
        let mut v = Vec::new();
        for t in out {
            let m = Message::parse(t.payload.clone()).unwrap();
            if m.method() != Some("REGISTER") {
                continue;
            }
            assert_eq!(t.flow.remote, addr(PROVIDER));
            assert_eq!(t.flow.local, addr(ME));
            let cseq = m.cseq().unwrap().seq;
            if cseq > *seen {
                *seen = cseq;
                v.push(m);
            }
        }
        v
    }

    fn one(mut v: Vec<Message>) -> Message {
        assert_eq!(v.len(), 1, "exactly one new REGISTER expected");
        v.pop().unwrap()
    }

    fn header(m: &Message, name: &str) -> String {
        String::from_utf8_lossy(m.header(name).unwrap_or_default()).into_owned()
    }

    #[test]
    fn refresh_at_85_percent_and_back_off_doubling_to_five_minutes() {
        let mut rig = Rig::new("timing", None);
        let mut seen = 0;
        assert_eq!(rig.state(), UplinkState::Registering);
        // Due at once.
        assert_eq!(rig.proxy.next_timeout(), Some(Duration::ZERO));
        let first = one(rig.at(secs(0.0), &mut seen));
        // RFC 3261 §10.2: Request-URI the registrar's domain, To = From = the AOR.
        assert_eq!(first.request_uri(), Some(&b"sip:127.0.0.2:5080"[..]));
        assert_eq!(header(&first, "To"), format!("<sip:trunk@{PROVIDER}>"));
        assert!(header(&first, "From").starts_with(&format!("<sip:trunk@{PROVIDER}>;tag=")));
        assert_eq!(header(&first, "Contact"), format!("<sip:trunk@{ME}>"));
        assert_eq!(header(&first, "Expires"), "600");
        assert!(first.header("Authorization").is_none());
        let call_id = first.call_id().unwrap().to_owned();

        rig.register_ok(&first, 100, &mut seen);
        // Nothing before 85 % of 100 s, then a refresh with the same Call-ID (§10.2.4).
        assert!(rig.at(secs(84.9), &mut seen).is_empty());
        let refresh = one(rig.at(secs(85.0), &mut seen));
        assert_eq!(refresh.call_id(), Some(call_id.as_str()));
        assert!(refresh.cseq().unwrap().seq > first.cseq().unwrap().seq);

        // Failures: 5 s, doubling, at most 5 minutes.
        let mut req = refresh;
        let mut expected = BACKOFF_MIN;
        for _ in 0..9 {
            assert!(rig.answer(&req, 500, &[], &mut seen).is_empty());
            let t = rig.now;
            assert_eq!(
                rig.state(),
                UplinkState::Failed {
                    status: Some(500),
                    retry_at: t + expected
                }
            );
            assert_eq!(rig.proxy.uplinks.next_due(), Some(t + expected));
            assert!(
                rig.at(t + expected.saturating_sub(secs(0.1)), &mut seen)
                    .is_empty(),
                "too early"
            );
            req = one(rig.at(t + expected, &mut seen));
            expected = (expected * 2).min(BACKOFF_MAX);
        }
        assert_eq!(expected, BACKOFF_MAX);

        // A success resets the back-off; the 200's Expires counts when our Contact has no
        // expires parameter.
        let ch = rig.challenge(&req, false);
        let authed = one(rig.answer(&req, 401, &ch, &mut seen));
        assert!(rig.verifies(&authed));
        rig.answer(&authed, 200, &[("Expires", "60".into())], &mut seen);
        let t = rig.now;
        assert!(
            matches!(rig.state(), UplinkState::Registered { expires: 60, refresh_at } if refresh_at == t + secs(51.0))
        );
        let refresh = one(rig.at(t + secs(51.0), &mut seen));
        rig.answer(&refresh, 403, &[], &mut seen);
        let t = rig.now;
        assert!(
            matches!(rig.state(), UplinkState::Failed { status: Some(403), retry_at } if retry_at == t + BACKOFF_MIN)
        );

        // No answer at all: Timer F (64·T1 = 32 s) fails the attempt; the retransmissions
        // are not new REGISTERs.
        let lost = one(rig.at(t + BACKOFF_MIN, &mut seen));
        let sent_at = rig.now;
        let mut t = sent_at;
        while t + secs(0.5) < sent_at + secs(32.0) {
            t += secs(0.5);
            assert!(rig.at(t, &mut seen).is_empty());
        }
        assert!(matches!(
            rig.state(),
            UplinkState::Failed {
                status: Some(403),
                ..
            }
        ));
        assert!(rig.at(sent_at + secs(32.0), &mut seen).is_empty());
        assert_eq!(
            rig.state(),
            UplinkState::Failed {
                status: None,
                retry_at: sent_at + secs(32.0) + BACKOFF_MIN * 2
            }
        );
        drop(lost);

        // Retry-After is honoured (within the back-off bounds).
        let req = one(rig.at(sent_at + secs(32.0) + BACKOFF_MIN * 2, &mut seen));
        rig.answer(
            &req,
            503,
            &[("Retry-After", "120 (maintenance)".into())],
            &mut seen,
        );
        let t = rig.now;
        assert!(
            matches!(rig.state(), UplinkState::Failed { status: Some(503), retry_at } if retry_at == t + secs(120.0))
        );
        assert!(rig.at(t + secs(119.0), &mut seen).is_empty());
        one(rig.at(t + secs(120.0), &mut seen));
    }

    #[test]
    fn challenges_stale_nonces_423_and_refused_credentials() {
        let mut rig = Rig::new("auth", None);
        let mut seen = 0;
        let first = one(rig.at(secs(1.0), &mut seen));
        // 423 (§10.2.8): the same attempt again at once with the Min-Expires asked for.
        let again = one(rig.answer(&first, 423, &[("Min-Expires", "1200".into())], &mut seen));
        assert_eq!(header(&again, "Expires"), "1200");
        // A stale nonce is answered again (RFC 7616 §3.3); the credentials verify.
        let ch = rig.challenge(&again, false);
        let authed = one(rig.answer(&again, 401, &ch, &mut seen));
        assert!(rig.verifies(&authed));
        let ch = rig.challenge(&authed, true);
        let authed2 = one(rig.answer(&authed, 401, &ch, &mut seen));
        assert!(rig.verifies(&authed2));
        rig.answer(
            &authed2,
            200,
            &[("Contact", format!("<sip:trunk@{ME}>;expires=1200"))],
            &mut seen,
        );
        assert!(matches!(
            rig.state(),
            UplinkState::Registered { expires: 1200, .. }
        ));

        // At the refresh the provider refuses the password: a second challenge that is not
        // stale ends the attempt with 401 instead of looping.
        let t = rig.now + refresh_delay(1200);
        let refresh = one(rig.at(t, &mut seen));
        assert_eq!(header(&refresh, "Expires"), "1200");
        let ch = rig.challenge(&refresh, false);
        let authed = one(rig.answer(&refresh, 401, &ch, &mut seen));
        let ch = rig.challenge(&authed, false);
        assert!(rig.answer(&authed, 401, &ch, &mut seen).is_empty());
        assert_eq!(
            rig.state(),
            UplinkState::Failed {
                status: Some(401),
                retry_at: t + BACKOFF_MIN
            }
        );
        // A 407 is answered with Proxy-Authorization.
        let retry = one(rig.at(t + BACKOFF_MIN, &mut seen));
        let ch: Vec<_> = rig
            .challenge(&retry, false)
            .into_iter()
            .map(|(_, v)| ("Proxy-Authenticate", v))
            .collect();
        let authed = one(rig.answer(&retry, 407, &ch, &mut seen));
        assert!(authed.header("Proxy-Authorization").is_some());
        assert!(authed.header("Authorization").is_none());
        // A 200 granting nothing is no registration.
        rig.answer(
            &authed,
            200,
            &[("Contact", format!("<sip:trunk@{ME}>;expires=0"))],
            &mut seen,
        );
        assert!(matches!(
            rig.state(),
            UplinkState::Failed {
                status: Some(200),
                ..
            }
        ));
    }

    #[test]
    fn the_provider_is_not_challenged() {
        let dir =
            std::env::temp_dir().join(format!("sip-proxy-uplink-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let users = dir.join("users");
        let ha1 = sip_auth::HashKind::Md5;
        let mut store = sip_auth::MemoryStore::new();
        store.add_password("caller", "example.com", "pw");
        let line = format!(
            "caller:example.com:{}\n",
            sip_auth::CredentialStore::ha1(&store, "caller", "example.com", ha1)
                .unwrap()
                .as_str()
        );
        std::fs::write(&users, line).unwrap();
        let mut rig = Rig::with("trust", Some("127.0.0.4:5070"), |c| {
            c.auth.users_file = Some(users.clone());
        });
        let mut seen = 0;
        let first = one(rig.at(secs(1.0), &mut seen));
        rig.register_ok(&first, 300, &mut seen);
        let ruri = format!("sip:trunk@{ME}");
        // From one of our domains, as a provider may well write it: from the provider it
        // goes through, from anywhere else it is challenged (407).
        for (source, branch, forwarded_to) in [
            (PROVIDER, "t1", Some(addr("127.0.0.4:5070"))),
            ("127.0.0.5:5060", "t2", None),
        ] {
            let mut out = Vec::new();
            rig.proxy.on_datagram(
                rig.clock(),
                invite(&ruri, "example.com", branch),
                udp(ME, source),
                &mut out,
            );
            let f = forwarded(&out);
            assert_eq!(f.first().map(|f| f.0), forwarded_to, "{out:?}");
            if forwarded_to.is_none() {
                assert!(
                    out.iter().any(|t| t.payload.starts_with(b"SIP/2.0 407")),
                    "{out:?}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn invite(ruri: &str, from: &str, branch: &str) -> Bytes {
        Bytes::from(format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {PROVIDER};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 69\r\n\
             From: <sip:caller@{from}>;tag=c1\r\n\
             To: <sip:trunk@provider.test>\r\n\
             Call-ID: call-{branch}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{PROVIDER}>\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    }

    fn forwarded(out: &[Transmit]) -> Vec<(SocketAddr, Message)> {
        out.iter()
            .filter_map(|t| {
                let m = Message::parse(t.payload.clone()).ok()?;
                (m.method() == Some("INVITE")).then_some((t.flow.remote, m))
            })
            .collect()
    }

    #[test]
    fn calls_from_the_provider_reach_the_local_user_or_the_default_set() {
        let mut rig = Rig::new("route", Some("127.0.0.4:5070"));
        let mut seen = 0;
        let first = one(rig.at(secs(1.0), &mut seen));
        rig.register_ok(&first, 300, &mut seen);

        // Nobody registered as trunk here: the default set takes it.
        let mut out = Vec::new();
        let ruri = format!("sip:trunk@{ME}");
        rig.proxy.on_datagram(
            rig.clock(),
            invite(&ruri, "127.0.0.2", "a1"),
            udp(ME, PROVIDER),
            &mut out,
        );
        let f = forwarded(&out);
        assert_eq!(f.len(), 1, "{out:?}");
        assert_eq!(f[0].0, addr("127.0.0.4:5070"));

        // A local user trunk (registered in our domain): the call goes to its contact.
        let reg = "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.3:5090;branch=z9hG4bKlocal1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:trunk@example.com>;tag=l1\r\n\
             To: <sip:trunk@example.com>\r\n\
             Call-ID: local-reg\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:trunk@127.0.0.3:5090>\r\n\
             Expires: 300\r\n\
             Content-Length: 0\r\n\r\n";
        let mut out = Vec::new();
        rig.proxy.on_datagram(
            rig.clock(),
            Bytes::from(reg),
            udp(ME, "127.0.0.3:5090"),
            &mut out,
        );
        assert!(
            out.iter().any(|t| t.payload.starts_with(b"SIP/2.0 200")),
            "local registration refused: {out:?}"
        );
        let mut out = Vec::new();
        rig.proxy.on_datagram(
            rig.clock(),
            invite(&ruri, "127.0.0.2", "a2"),
            udp(ME, PROVIDER),
            &mut out,
        );
        let f = forwarded(&out);
        assert_eq!(f.len(), 1, "{out:?}");
        assert_eq!(f[0].0, addr("127.0.0.3:5090"));
        assert_eq!(f[0].1.request_uri(), Some(&b"sip:trunk@127.0.0.3:5090"[..]));
        // Record-Routed like every call through us.
        assert!(f[0].1.record_routes().next().is_some());

        // The provider is trusted like an upstream: with authentication on, its call is
        // not challenged (a source that is not the provider is, see `local`).
        assert!(rig.proxy.is_uplink_source(addr(PROVIDER)));
        assert!(!rig.proxy.is_uplink_source(addr("127.0.0.2:5081")));
    }
}
