//! The proxy's configuration: a TOML file (every key optional, each with the default written
//! here and in `docs/configuration.md`), then command-line flags over it, then checks that
//! the whole makes sense. `sip-proxy check --config FILE` runs exactly this.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use sip_auth::IpNet;
use sip_parser::Transport;

/// A listening socket: `udp:IP:PORT` or `tcp:IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// UDP or TCP.
    pub transport: Transport,
    /// Address to bind.
    pub addr: SocketAddr,
}

impl FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (t, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected TRANSPORT:IP:PORT, e.g. udp:127.0.0.1:5060"))?;
        let transport = match t.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => {
                return Err(format!(
                    "`{s}`: transport `{other}` not supported (udp or tcp)"
                ));
            }
        };
        let addr = rest
            .parse()
            .map_err(|_| format!("`{s}`: `{rest}` is not IP:PORT (IPv6 as [::1]:5060)"))?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.param_value(), self.addr)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `HOST[:PORT]` to advertise instead of a listener's bound address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertise {
    /// Host name or IP.
    pub host: String,
    /// Port (the listener's own when absent).
    pub port: Option<u16>,
}

impl FromStr for Advertise {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("empty advertised address".into());
        }
        // [v6]:port, v6 alone, host:port, host.
        if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: no closing ]"))?;
            let port = match p.strip_prefix(':') {
                Some(p) => Some(p.parse().map_err(|_| format!("`{s}`: bad port"))?),
                None if p.is_empty() => None,
                None => return Err(format!("`{s}`: junk after ]")),
            };
            return Ok(Advertise {
                host: format!("[{h}]"),
                port,
            });
        }
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => Ok(Advertise {
                host: h.to_owned(),
                port: Some(p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?),
            }),
            _ => Ok(Advertise {
                host: if s.parse::<std::net::Ipv6Addr>().is_ok() {
                    format!("[{s}]")
                } else {
                    s.to_owned()
                },
                port: None,
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Advertise {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One listener: `[[listen]]` in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `udp:IP:PORT` or `tcp:IP:PORT`.
    pub address: ListenAddr,
    /// Host[:port] for Via and Record-Route (public address in front of NAT).
    #[serde(default)]
    pub advertise: Option<Advertise>,
}

/// How the proxy handles requests (the load harness's roles; `full` is the product).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The whole pipeline: registrar, auth, location, dispatcher, dialogs.
    #[default]
    Full,
    /// Forward every request statelessly along Route / to the default upstream set.
    Stateless,
    /// Forward every request statefully with Record-Route to the default upstream set.
    Stateful,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" | "registrar" => Ok(Mode::Full),
            "stateless" => Ok(Mode::Stateless),
            "stateful" => Ok(Mode::Stateful),
            _ => Err(format!("mode `{s}`: expected full, stateless or stateful")),
        }
    }
}

/// Authentication (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// htdigest file (`sip-proxy users`); authentication is on when set.
    pub users_file: Option<PathBuf>,
    /// The digest realm (default: the first domain).
    pub realm: Option<String>,
    /// More than this many failed authentications in a row from one IP bans it.
    pub ban_after: u32,
    /// Ban duration, seconds.
    pub ban_seconds: u64,
    /// Nonce lifetime, seconds.
    pub nonce_lifetime: u64,
    /// Digest algorithms offered, in order (MD5 first keeps MD5-only phones working).
    pub algorithms: Vec<String>,
    /// Sources whose calls are never challenged and which are never banned (CIDR); their
    /// REGISTERs are still authenticated.
    pub trusted: Vec<String>,
    /// File with the nonce secret (≥ 32 bytes), shared by every node; random per start
    /// when absent.
    pub secret_file: Option<PathBuf>,
    /// Auth cache entries (the HA1 of users who authenticated, kept for their next
    /// authentications).
    pub cache_size: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            users_file: None,
            realm: None,
            ban_after: 5,
            ban_seconds: 300,
            nonce_lifetime: 300,
            algorithms: vec!["MD5".into()],
            trusted: Vec::new(),
            secret_file: None,
            cache_size: 65_536,
        }
    }
}

/// Registrar (`[registrar]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (423 Interval Too Brief below it), seconds.
    pub min_expires: u32,
    /// Longest registration granted (longer ones are shortened), seconds.
    pub max_expires: u32,
    /// Registration length when the REGISTER gives none, seconds.
    pub default_expires: u32,
    /// Most contacts per address-of-record.
    pub max_contacts: usize,
    /// Accept REGISTER without authentication from loopback sources when no users file is
    /// set (the default start; a warning says so).
    pub open_on_loopback: bool,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            open_on_loopback: true,
        }
    }
}

/// Load-balancing algorithm of an upstream set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Each new request to the next destination.
    #[default]
    RoundRobin,
    /// Round-robin in proportion to the weights.
    Weighted,
    /// Hash of the Call-ID (a call's requests stick to one destination).
    HashCallId,
    /// Hash of the From user.
    HashFrom,
}

/// An upstream set (`[[upstream]]`, Kamailio `dispatcher`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Set name (`default` takes initial requests in our domains for unknown users).
    pub name: String,
    /// Destinations, `udp:IP:PORT`.
    pub targets: Vec<ListenAddr>,
    /// Load-balancing algorithm.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Weights (same order as targets) for `weighted`.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// OPTIONS health probe interval, seconds (0: no probing).
    #[serde(default = "default_probe")]
    pub probe_interval: u64,
}

fn default_probe() -> u64 {
    10
}

/// `[[dispatch]]`: which requests go to an upstream set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchRule {
    /// A Request-URI user prefix (`+7495`, `2`) or a domain.
    #[serde(rename = "match")]
    pub matches: String,
    /// The upstream set.
    pub upstream: String,
}

impl FromStr for DispatchRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (m, n) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected MATCH=NAME"))?;
        Ok(DispatchRule {
            matches: m.to_owned(),
            upstream: n.to_owned(),
        })
    }
}

/// `[[registration]]`: the proxy registering itself with a provider (Kamailio `uac_reg`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// `sip:USER@HOST[:PORT]`.
    pub uri: String,
    /// File holding the password (first line).
    pub password_file: PathBuf,
    /// Auth user name, when it differs from the URI user.
    #[serde(default)]
    pub auth_user: Option<String>,
    /// Registration length asked for, seconds.
    #[serde(default = "default_reg_expires")]
    pub expires: u32,
}

fn default_reg_expires() -> u32 {
    3600
}

/// HEP mirroring (`[hep]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HepConfig {
    /// Collector, `udp:HOST:PORT` or `tcp:HOST:PORT` (off when absent).
    pub collector: Option<String>,
    /// HEP version (2 or 3).
    pub version: u8,
    /// Capture agent id.
    pub capture_id: u32,
    /// HEPv3 auth key.
    pub auth_key: Option<String>,
    /// HEPv3 node name.
    pub node_name: Option<String>,
    /// Packets queued for the collector before new ones are dropped (and counted).
    pub queue: usize,
}

impl Default for HepConfig {
    fn default() -> Self {
        HepConfig {
            collector: None,
            version: 3,
            capture_id: 1,
            auth_key: None,
            node_name: None,
            queue: 10_000,
        }
    }
}

/// The Prometheus metrics endpoint (`[metrics]`, `--metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `IP:PORT` serving `GET /metrics` over HTTP (off when absent).
    pub listen: Option<SocketAddr>,
    /// Serve on an address other than loopback. The endpoint has no authentication: put
    /// it on a management network only.
    pub allow_remote: bool,
    /// Length of a call-KPI interval, seconds (intervals end on multiples of it).
    pub kpi_interval: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            allow_remote: false,
            kpi_interval: 60,
        }
    }
}

/// Dialog tracking (`[dialog]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialogConfig {
    /// Track dialogs created by INVITE.
    pub track: bool,
    /// Longest call, seconds; then both sides get a BYE.
    pub max_duration: u64,
    /// Most tracked dialogs (beyond: new calls are answered 503 with Retry-After).
    pub max_dialogs: usize,
}

impl Default for DialogConfig {
    fn default() -> Self {
        DialogConfig {
            track: true,
            max_duration: 10_800,
            max_dialogs: 100_000,
        }
    }
}

/// Several nodes sharing state in Redis (`[redis]`, `--redis`; see `docs/scaling.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[USER:PASSWORD@]HOST:PORT[/DB]` (off when absent): the location service,
    /// dialogs, bans and digest replay state are then shared with every node using it.
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster, `redis://HOST:PORT` each (any of its nodes; two or
    /// three in case one is down): the same sharing as `url`, on the cluster. Not both.
    pub cluster: Vec<String>,
    /// Prefix of every key and channel (nodes sharing state use the same one).
    pub prefix: String,
    /// Longest a node answers a lookup from its local cache, milliseconds (0: no cache
    /// while Redis is reachable). Writes on other nodes drop cached entries sooner (pub/sub).
    pub cache_ms: u64,
    /// Most AORs in the local cache.
    pub cache_entries: usize,
    /// Connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Read/write timeout of one Redis call, milliseconds.
    pub timeout_ms: u64,
    /// `HOST:PORT` of the other nodes' Record-Route addresses: a Route naming one of them
    /// is taken as naming this node, so in-dialog requests of a node that died can be sent
    /// to another.
    pub peers: Vec<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            cluster: Vec::new(),
            prefix: "sp".into(),
            cache_ms: 1000,
            cache_entries: 100_000,
            connect_timeout_ms: 200,
            timeout_ms: 500,
            peers: Vec::new(),
        }
    }
}

impl RedisConfig {
    /// Where the shared state lives, when sharing is on (`url` or `cluster`).
    pub fn target(&self) -> Option<crate::redis::Target> {
        match (&self.url, self.cluster.is_empty()) {
            (Some(u), _) => Some(crate::redis::Target::Single(u.clone())),
            (None, false) => Some(crate::redis::Target::Cluster(self.cluster.clone())),
            (None, true) => None,
        }
    }
}

/// Limits (`[limits]`): every one explicit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest SIP message accepted, bytes.
    pub max_message_size: usize,
    /// Most live transactions (beyond: 503).
    pub max_transactions: usize,
    /// Most open TCP connections.
    pub max_tcp_connections: usize,
    /// Most open TCP connections from one IP.
    pub max_tcp_per_ip: usize,
    /// Requests per source IP per second before it is flagged as a flood (0: no limit).
    pub flood_per_second: u32,
    /// Send only to these networks (CIDR); empty: anywhere.
    pub relay_to: Vec<String>,
    /// Forward initial requests for foreign domains, or with a pre-loaded Route to a foreign
    /// host (else 403).
    pub allow_relay: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_size: 65_535,
            max_transactions: 200_000,
            max_tcp_connections: 4096,
            max_tcp_per_ip: 64,
            flood_per_second: 0,
            relay_to: Vec::new(),
            allow_relay: false,
        }
    }
}

/// Transaction timers (`[timers]`), milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimersConfig {
    /// T1.
    pub t1_ms: u64,
    /// T2.
    pub t2_ms: u64,
    /// T4.
    pub t4_ms: u64,
    /// Timer C (proxied INVITE branch with no final response).
    pub timer_c_ms: u64,
    /// How long a finished transaction lingers to absorb retransmissions (caps Timers D, J,
    /// L and M, 32 s by the RFC), like Kamailio's `wt_timer` (5 s). A retransmission that
    /// comes later is forwarded again and absorbed by the next hop. Set it to 32000 or more
    /// for the RFC's values.
    pub linger_ms: u64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            timer_c_ms: 181_000,
            linger_ms: 5_000,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening sockets.
    pub listen: Vec<ListenerConfig>,
    /// Domains served (registrar, location); the listen addresses count too.
    pub domains: Vec<String>,
    /// What the proxy does with requests.
    pub mode: Mode,
    /// Worker threads per UDP listener (0: one per CPU).
    pub workers: usize,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    pub log: String,
    /// Add Record-Route to dialog-creating requests.
    pub record_route: bool,
    /// Fork to a user's contacts in parallel, or by q-value groups.
    pub sequential_forking: bool,
    /// Authentication.
    pub auth: AuthConfig,
    /// Registrar.
    pub registrar: RegistrarConfig,
    /// Upstream sets.
    pub upstream: Vec<UpstreamConfig>,
    /// Dispatch rules.
    pub dispatch: Vec<DispatchRule>,
    /// Registrations to providers.
    pub registration: Vec<RegistrationConfig>,
    /// HEP mirroring.
    pub hep: HepConfig,
    /// `sip_trace` JSON-lines file.
    pub trace_file: Option<PathBuf>,
    /// Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Dialog tracking.
    pub dialog: DialogConfig,
    /// Limits.
    pub limits: LimitsConfig,
    /// Transaction timers.
    pub timers: TimersConfig,
    /// Directory of the runtime state (databases, lock), created 0700 when missing.
    pub data_dir: PathBuf,
    /// Persistence of registrations and dialogs, `sip_trace` table.
    pub storage: crate::storage::StorageConfig,
    /// Shared state in Redis.
    pub redis: RedisConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Vec::new(),
            domains: Vec::new(),
            mode: Mode::Full,
            workers: 0,
            log: "info".into(),
            record_route: true,
            sequential_forking: false,
            auth: AuthConfig::default(),
            registrar: RegistrarConfig::default(),
            upstream: Vec::new(),
            dispatch: Vec::new(),
            registration: Vec::new(),
            hep: HepConfig::default(),
            trace_file: None,
            metrics: MetricsConfig::default(),
            dialog: DialogConfig::default(),
            limits: LimitsConfig::default(),
            timers: TimersConfig::default(),
            data_dir: PathBuf::from("sip-proxy-data"),
            storage: crate::storage::StorageConfig::default(),
            redis: RedisConfig::default(),
        }
    }
}

/// A configuration problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// TOML syntax, unknown key or bad value.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but makes no sense with the rest.
    #[error("{0}")]
    Invalid(String),
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, column)
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses TOML text (`name` is used in error messages).
    pub fn from_toml(text: &str, name: &str) -> Result<Self, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Parse {
                path: name.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }

    /// Fills what the defaults leave open (listeners, domains) and checks the whole.
    pub fn finish(mut self) -> Result<Self, ConfigError> {
        if self.listen.is_empty() {
            for t in [Transport::Udp, Transport::Tcp] {
                self.listen.push(ListenerConfig {
                    address: ListenAddr {
                        transport: t,
                        addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
                    },
                    advertise: None,
                });
            }
        }
        if self.domains.is_empty() {
            self.domains.push("localhost".into());
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let r = &self.registrar;
        if r.min_expires > r.max_expires {
            return bad(format!(
                "registrar.min_expires ({}) is above registrar.max_expires ({})",
                r.min_expires, r.max_expires
            ));
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            return bad(format!(
                "registrar.default_expires ({}) must lie between min_expires ({}) and max_expires ({})",
                r.default_expires, r.min_expires, r.max_expires
            ));
        }
        let mut names = std::collections::HashSet::new();
        for u in &self.upstream {
            if !names.insert(u.name.as_str()) {
                return bad(format!("upstream `{}` defined twice", u.name));
            }
            if u.targets.is_empty() {
                return bad(format!("upstream `{}` has no targets", u.name));
            }
            if u.algorithm == Algorithm::Weighted && u.weights.len() != u.targets.len() {
                return bad(format!(
                    "upstream `{}`: weighted needs one weight per target ({} targets, {} weights)",
                    u.name,
                    u.targets.len(),
                    u.weights.len()
                ));
            }
            if let Some(t) = u.targets.iter().find(|t| t.transport != Transport::Udp) {
                return bad(format!(
                    "upstream `{}`: {t}: only udp targets for now",
                    u.name
                ));
            }
        }
        for d in &self.dispatch {
            if !names.contains(d.upstream.as_str()) {
                return bad(format!(
                    "dispatch `{}` names upstream `{}`, which is not defined",
                    d.matches, d.upstream
                ));
            }
        }
        for net in self.auth.trusted.iter().chain(&self.limits.relay_to) {
            if IpNet::parse(net).is_none() {
                return bad(format!(
                    "`{net}` is not a network (CIDR such as 10.0.0.0/8)"
                ));
            }
        }
        for a in &self.auth.algorithms {
            if sip_auth::Algorithm::parse(a).is_none() {
                return bad(format!(
                    "auth.algorithms: `{a}` is not a digest algorithm (MD5, SHA-256, SHA-512-256)"
                ));
            }
        }
        if let Some(c) = &self.hep.collector {
            hep_codec::Collector::resolve(c)
                .map_err(|e| ConfigError::Invalid(format!("hep.collector: {e}")))?;
        }
        if !(2..=3).contains(&self.hep.version) {
            return bad(format!("hep.version {}: 2 or 3", self.hep.version));
        }
        let m = &self.metrics;
        if let Some(a) = m.listen {
            if !a.ip().is_loopback() && !m.allow_remote {
                return bad(format!(
                    "metrics.listen {a} is not a loopback address: the endpoint has no \
                     authentication (set metrics.allow_remote = true to serve it there)"
                ));
            }
        }
        if !(1..=86_400).contains(&m.kpi_interval) {
            return bad(format!(
                "metrics.kpi_interval {}: 1 to 86400 seconds",
                m.kpi_interval
            ));
        }
        self.storage.validate().map_err(ConfigError::Invalid)?;
        for reg in &self.registration {
            let ok = sip_parser::Uri::parse(reg.uri.as_bytes())
                .is_ok_and(|u| u.is_sip() && u.user.is_some());
            if !ok {
                return bad(format!(
                    "registration `{}`: expected sip:USER@HOST[:PORT]",
                    reg.uri
                ));
            }
        }
        if self.redis.url.is_some() && !self.redis.cluster.is_empty() {
            return bad(
                "redis: `url` (--redis) and `cluster` (--redis-cluster) are exclusive".into(),
            );
        }
        for p in &self.redis.peers {
            if !p.parse::<Advertise>().is_ok_and(|a| a.port.is_some()) {
                return bad(format!("redis.peers `{p}`: expected HOST:PORT"));
            }
        }
        Ok(())
    }

    /// The digest realm: `auth.realm`, else the first domain.
    pub fn realm(&self) -> &str {
        self.auth
            .realm
            .as_deref()
            .or(self.domains.first().map(String::as_str))
            .unwrap_or("localhost")
    }

    /// Whether `ip` is in one of the `networks` (CIDR strings checked by `finish`).
    pub fn in_networks(networks: &[String], ip: IpAddr) -> bool {
        networks
            .iter()
            .filter_map(|n| IpNet::parse(n))
            .any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_with_position() {
        let c = Config::from_toml("", "x").unwrap().finish().unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.domains, ["localhost"]);
        assert_eq!(c.realm(), "localhost");
        let e = Config::from_toml("domains = [\"a\"]\nbogus = 1\n", "f.toml").unwrap_err();
        match e {
            ConfigError::Parse { line, column, .. } => assert_eq!((line, column), (2, 1)),
            other => panic!("{other}"),
        }
        let e = Config::from_toml("[registrar]\nmin_expires = \"x\"\n", "f.toml").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { line: 2, .. }), "{e}");
        let e = Config::from_toml("[[listen]]\naddress = \"sctp:1.2.3.4:5\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
        let e = Config::from_toml("[registrar]\nmin_expires = 7200\n", "f")
            .unwrap()
            .finish()
            .unwrap_err();
        assert!(e.to_string().contains("min_expires"), "{e}");
    }

    #[test]
    fn metrics_loopback_only_unless_allowed() {
        let c = Config::from_toml("", "x").unwrap().finish().unwrap();
        assert_eq!(c.metrics.listen, None, "off unless asked");
        let on = |t: &str| Config::from_toml(t, "f").unwrap().finish();
        let c = on("[metrics]\nlisten = \"127.0.0.1:9090\"\n").unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert!(on("[metrics]\nlisten = \"[::1]:9090\"\n").is_ok());
        let e = on("[metrics]\nlisten = \"0.0.0.0:9090\"\n").unwrap_err();
        assert!(e.to_string().contains("allow_remote"), "{e}");
        assert!(on("[metrics]\nlisten = \"0.0.0.0:9090\"\nallow_remote = true\n").is_ok());
        let e = on("[metrics]\nkpi_interval = 0\n").unwrap_err();
        assert!(e.to_string().contains("kpi_interval"), "{e}");
        let e = Config::from_toml("[metrics]\nlisten = \"localhost\"\n", "f").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { line: 2, .. }), "{e}");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            "udp:127.0.0.1:5060"
                .parse::<ListenAddr>()
                .unwrap()
                .addr
                .port(),
            5060
        );
        assert!("tcp:[::1]:5060".parse::<ListenAddr>().is_ok());
        assert!("udp:127.0.0.1".parse::<ListenAddr>().is_err());
        let a: Advertise = "sip.example.com:5062".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("sip.example.com", Some(5062)));
        let a: Advertise = "2001:db8::1".parse().unwrap();
        assert_eq!(a.host, "[2001:db8::1]");
        let a: Advertise = "[2001:db8::1]:5070".parse().unwrap();
        assert_eq!(a.port, Some(5070));
    }
}
