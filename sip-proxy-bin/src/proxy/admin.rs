//! Administration of the running proxy: what `sip-proxy ctl` (through the control socket,
//! `crate::ctl`) reads and changes — bans and the trusted networks, registrations, dialogs,
//! upstream destinations, counters — and the reload of the configuration's reloadable keys
//! ([`RELOADABLE`]).
//!
//! Every call takes `&self` and is safe beside the worker threads. Requests the proxy sends
//! because of a call (the BYEs of [`Proxy::end_dialog`]) are queued and handed out by the
//! next [`Proxy::on_timer`], like those its own timers make: the caller needs no socket.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use sip_auth::{FailureVerdict, IpNet};
use sip_dialog::{DialogState, DialogUid};
use sip_location::{Binding, Cursor, LocationStore};
use sip_parser::{Aor, Uri};

use super::dispatch::{Reloaded, SetStateError};
use super::local::{self, SetupError};
use super::{Now, Proxy, Work};
use crate::config::{Algorithm, Config};

/// The configuration keys a reload applies while the proxy runs. Any other key that changed
/// is reported by [`ReloadReport::restart_needed`] and keeps its value until a restart.
pub const RELOADABLE: &[&str] = &[
    "auth.users_file",
    "auth.trusted",
    "upstream",
    "dispatch",
    "registrar.min_expires",
    "registrar.max_expires",
    "registrar.default_expires",
    "registrar.max_contacts",
    "limits.relay_to",
    "log",
];

/// Most transmits waiting for the timer thread (two per ended dialog); beyond, an
/// administration call that would send is refused.
const ADMIN_QUEUE: usize = 4096;

/// The Reason of the BYEs of an operator's `dialog end` (RFC 3326).
const ENDED_BY_OPERATOR: &str = "SIP;cause=200;text=\"ended by the operator\"";

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why an administration call was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The source is in a trusted network: it cannot be banned.
    #[error("{0} is in a trusted network (allow list): remove the network first")]
    Trusted(IpAddr),
    /// What the call names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An argument that makes no sense.
    #[error("{0}")]
    Invalid(String),
    /// The location store failed.
    #[error("location store: {0}")]
    Store(#[from] sip_location::StoreError),
    /// A file a reload reads is missing or invalid (nothing was changed).
    #[error("{0}")]
    Setup(#[from] SetupError),
    /// Too many requests waiting to be sent (the timer thread is behind).
    #[error("too many requests waiting to be sent; try again")]
    Busy,
}

impl From<SetStateError> for AdminError {
    fn from(e: SetStateError) -> Self {
        AdminError::NotFound(e.to_string())
    }
}

/// A banned source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BanEntry {
    /// The source address.
    pub ip: IpAddr,
    /// Seconds until the ban ends (rounded up).
    pub remaining: u64,
}

/// One binding of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindingInfo {
    /// Contact URI.
    pub contact: String,
    /// Seconds until it expires.
    pub expires: u64,
    /// q-value in thousandths, when given.
    pub q: Option<u16>,
    /// Where its REGISTER came from (`udp:IP:PORT`), when known.
    pub received: Option<String>,
    /// The Path it was registered with.
    pub path: String,
    /// User-Agent of its REGISTER.
    pub user_agent: String,
    /// Call-ID of its REGISTER.
    pub call_id: String,
    /// CSeq of its REGISTER.
    pub cseq: u32,
    /// `+sip.instance`, when given.
    pub instance: Option<String>,
    /// `reg-id`, when given.
    pub reg_id: Option<u32>,
}

impl BindingInfo {
    fn of(b: &Binding, now: Duration) -> Self {
        BindingInfo {
            contact: b.contact().to_owned(),
            expires: b.remaining(now),
            q: b.q(),
            received: b
                .source()
                .map(|s| format!("{}:{}", s.transport.param_value(), s.addr)),
            path: b.path().to_owned(),
            user_agent: b.user_agent().to_owned(),
            call_id: b.call_id().to_owned(),
            cseq: b.cseq(),
            instance: b.instance().map(str::to_owned),
            reg_id: b.reg_id(),
        }
    }
}

/// An address-of-record and its bindings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AorBindings {
    /// The AOR (canonical text).
    pub aor: String,
    /// Its unexpired bindings, in lookup order.
    pub bindings: Vec<BindingInfo>,
}

/// A tracked dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialogInfo {
    /// Its id (16 hex digits), what `dialog end` takes.
    pub id: String,
    /// `unconfirmed`, `early`, `confirmed-not-acked` or `confirmed`.
    pub state: &'static str,
    /// Call-ID.
    pub call_id: String,
    /// Caller's From URI.
    pub from_uri: String,
    /// Caller's tag.
    pub from_tag: String,
    /// Callee's To URI.
    pub to_uri: String,
    /// Callee's tag (empty before an answer).
    pub to_tag: String,
    /// Seconds since the answer (0 before).
    pub duration: u64,
    /// Seconds until the dialog ends unless something happens (its lifetime or setup
    /// timeout).
    pub remaining: u64,
    /// Socket toward the caller.
    pub caller_socket: String,
    /// Socket toward the callee.
    pub callee_socket: String,
}

fn state_name(s: DialogState) -> &'static str {
    match s {
        DialogState::Unconfirmed => "unconfirmed",
        DialogState::Early => "early",
        DialogState::ConfirmedNotAcked => "confirmed-not-acked",
        DialogState::Confirmed => "confirmed",
        DialogState::Terminated => "terminated",
    }
}

/// A destination of an upstream set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationInfo {
    /// Its address.
    pub addr: SocketAddr,
    /// `up`, `down` (probes or requests fail) or `disabled` (by an operator; `probe` then
    /// says what the probes find).
    pub state: &'static str,
    /// `up` or `down`: what the last probe or request found (up until one fails).
    pub probe: &'static str,
    /// Probes and requests failed in a row.
    pub failures: u64,
    /// Weight.
    pub weight: u32,
}

/// An upstream set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamInfo {
    /// Its name.
    pub name: String,
    /// Load-balancing algorithm.
    pub algorithm: &'static str,
    /// OPTIONS probe interval, seconds (0: none).
    pub probe_interval: u64,
    /// Its destinations.
    pub destinations: Vec<DestinationInfo>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ReloadReport {
    /// Users read from the users file (authentication on).
    pub users: Option<usize>,
    /// Upstream sets now.
    pub upstream_sets: usize,
    /// Their destinations.
    pub upstream_destinations: usize,
    /// Of which kept with their state (same set and address as before).
    pub upstream_kept: usize,
    /// Trusted networks now (the configuration's: `ctl allow` edits are replaced).
    pub trusted: usize,
    /// Reloadable keys whose value changed.
    pub changed: Vec<&'static str>,
    /// Keys that changed but apply only after a restart (their old values stay in force).
    pub restart_needed: Vec<&'static str>,
}

/// The configuration in force after a reload to `new` from `cur`: `cur` with the reloadable
/// keys of `new`.
fn merged(cur: &Config, new: &Config) -> Config {
    let mut m = cur.clone();
    m.auth.users_file.clone_from(&new.auth.users_file);
    m.auth.trusted.clone_from(&new.auth.trusted);
    m.upstream.clone_from(&new.upstream);
    m.dispatch.clone_from(&new.dispatch);
    m.registrar.min_expires = new.registrar.min_expires;
    m.registrar.max_expires = new.registrar.max_expires;
    m.registrar.default_expires = new.registrar.default_expires;
    m.registrar.max_contacts = new.registrar.max_contacts;
    m.limits.relay_to.clone_from(&new.limits.relay_to);
    m.log.clone_from(&new.log);
    m
}

fn changed_keys(cur: &Config, new: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut diff = |name, differs: bool| {
        if differs {
            v.push(name);
        }
    };
    diff(
        "auth.users_file",
        cur.auth.users_file != new.auth.users_file,
    );
    diff("auth.trusted", cur.auth.trusted != new.auth.trusted);
    diff("upstream", cur.upstream != new.upstream);
    diff("dispatch", cur.dispatch != new.dispatch);
    let (a, b) = (&cur.registrar, &new.registrar);
    diff("registrar.min_expires", a.min_expires != b.min_expires);
    diff("registrar.max_expires", a.max_expires != b.max_expires);
    diff(
        "registrar.default_expires",
        a.default_expires != b.default_expires,
    );
    diff("registrar.max_contacts", a.max_contacts != b.max_contacts);
    diff(
        "limits.relay_to",
        cur.limits.relay_to != new.limits.relay_to,
    );
    diff("log", cur.log != new.log);
    v
}

/// The keys outside [`RELOADABLE`] that differ (by section; `other keys` for one this list
/// does not name).
fn restart_keys(cur: &Config, new: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    if merged(cur, new) == *new {
        return v;
    }
    let mut diff = |name, differs: bool| {
        if differs {
            v.push(name);
        }
    };
    let (a, b) = (&cur.auth, &new.auth);
    diff("listen", cur.listen != new.listen);
    diff("domains", cur.domains != new.domains);
    diff("mode", cur.mode != new.mode);
    diff("workers", cur.workers != new.workers);
    diff("record_route", cur.record_route != new.record_route);
    diff(
        "sequential_forking",
        cur.sequential_forking != new.sequential_forking,
    );
    diff(
        "auth.users_file (authentication on or off)",
        a.users_file.is_some() != b.users_file.is_some(),
    );
    diff("auth.realm", a.realm != b.realm);
    diff("auth.ban_after", a.ban_after != b.ban_after);
    diff("auth.ban_seconds", a.ban_seconds != b.ban_seconds);
    diff("auth.nonce_lifetime", a.nonce_lifetime != b.nonce_lifetime);
    diff("auth.algorithms", a.algorithms != b.algorithms);
    diff("auth.secret_file", a.secret_file != b.secret_file);
    diff("auth.cache_size", a.cache_size != b.cache_size);
    diff(
        "registrar.open_on_loopback",
        cur.registrar.open_on_loopback != new.registrar.open_on_loopback,
    );
    diff("registration", cur.registration != new.registration);
    diff("hep", cur.hep != new.hep);
    diff("trace_file", cur.trace_file != new.trace_file);
    diff("metrics", cur.metrics != new.metrics);
    diff("dialog", cur.dialog != new.dialog);
    let mut limits = new.limits.clone();
    limits.relay_to.clone_from(&cur.limits.relay_to);
    diff("limits", cur.limits != limits);
    diff("timers", cur.timers != new.timers);
    if v.is_empty() {
        v.push("other keys");
    }
    v
}

/// An AOR as the store keys it, from `sip:user@domain` or `user@domain`.
fn canonical_aor(text: &str, case: sip_parser::UserCase) -> Result<String, AdminError> {
    let bad = || {
        AdminError::Invalid(format!(
            "`{text}` is not an address-of-record (sip:user@domain)"
        ))
    };
    let lower = text.get(..5).unwrap_or(text).to_ascii_lowercase();
    let uri_text = if lower.starts_with("sip:") || lower.starts_with("sips:") {
        text.to_owned()
    } else {
        format!("sip:{text}")
    };
    let uri = Uri::parse(uri_text.as_bytes()).map_err(|_| bad())?;
    Ok(Aor::new(&uri, case).map_err(|_| bad())?.as_str().to_owned())
}

impl Proxy {
    // ---- bans and trusted networks ----------------------------------------------------

    /// The banned sources now, by address.
    pub fn bans(&self, now: Now) -> Vec<BanEntry> {
        let mut v: Vec<BanEntry> = self
            .local
            .bans
            .list(now.mono)
            .into_iter()
            .map(|(ip, until)| BanEntry {
                ip,
                remaining: until.saturating_sub(now.mono).as_millis().div_ceil(1000) as u64,
            })
            .collect();
        v.sort_by_key(|b| b.ip);
        v
    }

    /// Bans `ip` for `duration` (replacing any ban it has): its datagrams are dropped
    /// unanswered. Refused for a trusted source.
    pub fn ban(&self, ip: IpAddr, duration: Duration, now: Now) -> Result<(), AdminError> {
        if self.is_trusted(ip) {
            return Err(AdminError::Trusted(ip));
        }
        if self.local.bans.ban(ip, duration, now.mono) == FailureVerdict::Trusted {
            return Err(AdminError::Trusted(ip));
        }
        self.stats.bans.inc();
        tracing::warn!(source = %ip, seconds = duration.as_secs(), "banned by the operator");
        Ok(())
    }

    /// Lifts the ban on `ip` (and forgets its failures). Returns whether it was banned.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let was = self.local.bans.unban(ip);
        if was {
            tracing::info!(source = %ip, "ban lifted by the operator");
        }
        was
    }

    /// The trusted networks: never challenged for calls, never banned nor flood-limited.
    pub fn trusted(&self) -> Vec<IpNet> {
        self.local.trusted.load().to_vec()
    }

    /// Adds `net` to the trusted networks (until the next reload or restart, which set them
    /// from the configuration). Returns whether it was new.
    pub fn trust(&self, net: IpNet) -> bool {
        let mut added = false;
        self.local.trusted.rcu(|cur| {
            added = !cur.contains(&net);
            let mut v = cur.to_vec();
            if added {
                v.push(net);
            }
            v
        });
        if added {
            tracing::info!(network = %net, "trusted by the operator");
        }
        added
    }

    /// Removes `net` (exactly as listed) from the trusted networks. Returns whether it was
    /// there.
    pub fn distrust(&self, net: IpNet) -> bool {
        let mut removed = false;
        self.local.trusted.rcu(|cur| {
            let v: Vec<IpNet> = cur.iter().copied().filter(|n| *n != net).collect();
            removed = v.len() != cur.len();
            v
        });
        if removed {
            tracing::info!(network = %net, "no longer trusted (operator)");
        }
        removed
    }

    // ---- location ---------------------------------------------------------------------

    /// The bindings of `aor` (`sip:user@domain`; one entry, none when it has no binding),
    /// or, without one, those of up to `max_aors` AORs from `cursor` and where to go on
    /// (`None`: that was the end).
    pub fn locations(
        &self,
        aor: Option<&str>,
        cursor: Cursor,
        max_aors: usize,
        now: Now,
    ) -> Result<(Vec<AorBindings>, Option<Cursor>), AdminError> {
        let loc = &self.local.location;
        if let Some(text) = aor {
            let key = canonical_aor(text, self.local.policy.load().user_case)?;
            let snap = loc.lookup(&key, now.wall)?;
            let bindings: Vec<BindingInfo> = snap
                .bindings()
                .iter()
                .map(|b| BindingInfo::of(b, now.wall))
                .collect();
            let v = if bindings.is_empty() {
                Vec::new()
            } else {
                vec![AorBindings { aor: key, bindings }]
            };
            return Ok((v, None));
        }
        let mut v = Vec::new();
        let next = loc.scan(cursor, max_aors.max(1), now.wall, &mut |aor, bs| {
            if !bs.is_empty() {
                v.push(AorBindings {
                    aor: aor.to_owned(),
                    bindings: bs.iter().map(|b| BindingInfo::of(b, now.wall)).collect(),
                });
            }
        })?;
        Ok((v, next))
    }

    /// Removes one contact of `aor` or all of them. Returns how many bindings went.
    pub fn remove_location(
        &self,
        aor: &str,
        contact: Option<&str>,
        now: Now,
    ) -> Result<usize, AdminError> {
        let key = canonical_aor(aor, self.local.policy.load().user_case)?;
        let removed = self.local.location.remove(&key, contact, now.wall)?.len();
        if removed == 0 {
            return Err(AdminError::NotFound(match contact {
                Some(c) => format!("{key} has no contact {c}"),
                None => format!("{key} has no bindings"),
            }));
        }
        tracing::info!(aor = %key, removed, "bindings removed by the operator");
        Ok(removed)
    }

    // ---- dialogs ----------------------------------------------------------------------

    /// Up to `limit` tracked dialogs by id, after `after` (the last id of the previous
    /// page), and the id to go on from when there may be more.
    pub fn dialog_list(
        &self,
        after: Option<DialogUid>,
        limit: usize,
        now: Now,
    ) -> (Vec<DialogInfo>, Option<DialogUid>) {
        let Some(t) = &self.local.dialogs else {
            return (Vec::new(), None);
        };
        let mut all = t.snapshot();
        all.retain(|r| after.is_none_or(|a| r.id.0 > a.0));
        all.sort_unstable_by_key(|r| r.id.0);
        let limit = limit.max(1);
        let more = all.len() > limit;
        all.truncate(limit);
        let next = if more { all.last().map(|r| r.id) } else { None };
        let v = all
            .iter()
            .map(|r| DialogInfo {
                id: r.id.to_hex().to_string(),
                state: state_name(r.state),
                call_id: r.call_id.to_string(),
                from_uri: r.from_uri.to_string(),
                from_tag: r.from_tag.to_string(),
                to_uri: r.to_uri.to_string(),
                to_tag: r.to_tag.to_string(),
                duration: r.duration(now.wall).as_secs(),
                remaining: r.timeout.saturating_sub(now.wall).as_secs(),
                caller_socket: String::from_utf8_lossy(&r.caller_socket).into_owned(),
                callee_socket: String::from_utf8_lossy(&r.callee_socket).into_owned(),
            })
            .collect();
        (v, next)
    }

    /// Ends a confirmed dialog now (Kamailio `dlg.end_dlg`): it leaves the table and both
    /// parties get a BYE, sent by the next [`Proxy::on_timer`]. Returns how many BYEs were
    /// queued (2, or fewer when a party's address does not resolve).
    pub fn end_dialog(&self, id: DialogUid, now: Now) -> Result<usize, AdminError> {
        let t = self
            .local
            .dialogs
            .as_ref()
            .ok_or_else(|| AdminError::NotFound("dialog tracking is off".into()))?;
        let hex = id.to_hex();
        let handle = t
            .handle(id)
            .ok_or_else(|| AdminError::NotFound(format!("no dialog {hex}")))?;
        let state = t
            .get(handle)
            .ok_or_else(|| AdminError::NotFound(format!("no dialog {hex}")))?
            .state;
        if !state.is_confirmed() {
            return Err(AdminError::Invalid(format!(
                "dialog {hex} is {} (not answered): nobody to send a BYE to",
                state_name(state)
            )));
        }
        if lock(&self.admin_out).len() >= ADMIN_QUEUE {
            return Err(AdminError::Busy);
        }
        let (ended, _change) = t
            .terminate(handle, now.wall)
            .ok_or_else(|| AdminError::NotFound(format!("no dialog {hex}")))?;
        let mut out = Vec::new();
        let mut w = Work::new(now, &mut out);
        let mut sent = 0;
        for party in ended.record.byes() {
            if self.send_in_dialog(&mut w, &party.socket, &party.request, ENDED_BY_OPERATOR) {
                sent += 1;
            }
        }
        self.pump(&mut w);
        drop(w);
        lock(&self.admin_out).append(&mut out);
        tracing::info!(dialog = %hex, call_id = %ended.record.call_id, byes = sent, "dialog ended by the operator");
        Ok(sent)
    }

    // ---- upstream sets ----------------------------------------------------------------

    /// The upstream sets with their destinations' state and probe results.
    pub fn upstreams(&self) -> Vec<UpstreamInfo> {
        let t = self.dispatcher.table();
        t.sets()
            .iter()
            .map(|s| UpstreamInfo {
                name: s.name.clone(),
                algorithm: match s.algorithm {
                    Algorithm::RoundRobin => "round-robin",
                    Algorithm::Weighted => "weighted",
                    Algorithm::HashCallId => "hash-call-id",
                    Algorithm::HashFrom => "hash-from",
                },
                probe_interval: s.probe_interval.as_secs(),
                destinations: s
                    .destinations
                    .iter()
                    .map(|d| DestinationInfo {
                        addr: d.addr,
                        state: if d.is_disabled() {
                            "disabled"
                        } else if d.is_up() {
                            "up"
                        } else {
                            "down"
                        },
                        probe: if d.is_up() { "up" } else { "down" },
                        failures: d.failures(),
                        weight: d.weight,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Puts destination `addr` of set `set` in service or takes it out (it is still probed).
    /// Returns whether that changed anything.
    pub fn set_upstream(
        &self,
        set: &str,
        addr: SocketAddr,
        enabled: bool,
    ) -> Result<bool, AdminError> {
        let changed = self.dispatcher.set_enabled(set, addr, enabled)?;
        if changed {
            let what = if enabled { "enabled" } else { "disabled" };
            tracing::info!(target: "dispatcher", set = %set, dst = %addr, "dispatcher:dst-{what} by the operator");
        }
        Ok(changed)
    }

    // ---- counters ---------------------------------------------------------------------

    /// The counters ([`Stats`](super::Stats)) and the gauges: live transactions, dialogs,
    /// AORs and bindings, active bans.
    pub fn counters(&self, now: Now) -> Vec<(&'static str, u64)> {
        let mut v = self.stats.snapshot();
        let counts = self.local.location.counts().unwrap_or_default();
        v.extend([
            ("transactions_live", self.transactions() as u64),
            ("dialogs_live", self.dialogs() as u64),
            ("aors", counts.aors as u64),
            ("bindings", counts.bindings as u64),
            ("bans_active", self.local.bans.list(now.mono).len() as u64),
        ]);
        v
    }

    // ---- reload -----------------------------------------------------------------------

    /// Applies the [`RELOADABLE`] keys of `new` (a finished, valid configuration): re-reads
    /// the users file (and empties the auth cache with it), replaces the upstream sets and
    /// rules (destinations that stay keep their state), the trusted networks, the relay
    /// allow-list and the registrar's expiry limits. The users file is read before anything
    /// changes: when it fails, nothing does. Other keys that changed are reported, not
    /// applied.
    pub fn reload(&self, new: &Config) -> Result<ReloadReport, AdminError> {
        let cur = self.current.load_full();
        let users = match (&self.local.auth, &new.auth.users_file) {
            (Some(_), Some(path)) => Some(local::load_users(path)?),
            _ => None,
        };
        let m = merged(&cur, new);
        let mut report = ReloadReport {
            changed: changed_keys(&cur, new),
            restart_needed: restart_keys(&cur, new),
            ..ReloadReport::default()
        };
        if let (Some(a), Some(u)) = (&self.local.auth, users) {
            report.users = Some(u.len());
            a.creds.store(Arc::new(a.credentials(u)));
        }
        let Reloaded {
            sets,
            destinations,
            kept,
        } = self.dispatcher.reload(&m.upstream, &m.dispatch);
        report.upstream_sets = sets;
        report.upstream_destinations = destinations;
        report.upstream_kept = kept;
        let trusted = local::networks(&m.auth.trusted);
        report.trusted = trusted.len();
        self.local.trusted.store(Arc::new(trusted));
        self.relay_to
            .store(Arc::new(local::networks(&m.limits.relay_to)));
        self.local.policy.store(Arc::new(local::policy(&m)));
        self.current.store(Arc::new(m));
        tracing::info!(
            changed = ?report.changed,
            restart_needed = ?report.restart_needed,
            "configuration reloaded"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aors_are_canonical() {
        let c = sip_parser::UserCase::Sensitive;
        assert_eq!(
            canonical_aor("sip:alice@Example.COM", c).unwrap(),
            canonical_aor("alice@example.com", c).unwrap()
        );
        assert!(canonical_aor("not an aor", c).is_err());
    }

    #[test]
    fn reload_sorts_keys_into_applied_and_restart() {
        let cur = Config::default().finish().unwrap();
        let mut new = cur.clone();
        new.registrar.max_contacts = 3;
        new.log = "debug".into();
        assert_eq!(changed_keys(&cur, &new), ["registrar.max_contacts", "log"]);
        assert!(restart_keys(&cur, &new).is_empty());
        new.workers = 7;
        new.limits.max_message_size = 1000;
        new.limits.relay_to = vec!["10.0.0.0/8".into()];
        assert_eq!(restart_keys(&cur, &new), ["workers", "limits"]);
        let m = merged(&cur, &new);
        assert_eq!(m.workers, cur.workers);
        assert_eq!(m.registrar.max_contacts, 3);
        assert_eq!(m.limits.relay_to, ["10.0.0.0/8"]);
        assert_eq!(m.limits.max_message_size, cur.limits.max_message_size);
    }
}
