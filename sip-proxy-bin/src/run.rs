//! `sip-proxy run` and `sip-proxy check`: the configuration from file and flags, logging,
//! the capture sink, the server, the control socket, a reload on SIGHUP, and a graceful stop
//! on SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use hep_codec::{CaptureSink, Collector, HepSender, Version};

use crate::config::{
    Advertise, Config, DispatchRule, ListenAddr, ListenerConfig, Mode, RegistrationConfig,
    UpstreamConfig,
};
use crate::net::{Clock, Server};
use crate::proxy::admin::ReloadReport;
use crate::proxy::{Parts, Proxy, SystemResolver};

/// Flags of `sip-proxy run` (each overrides its key in the file).
#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listening socket, `udp:IP:PORT` or `tcp:IP:PORT` (repeatable; replaces the file's).
    #[arg(long, value_name = "TRANSPORT:IP:PORT")]
    pub listen: Vec<ListenAddr>,
    /// Address to advertise in Via and Record-Route, `HOST[:PORT]`: the Nth applies to the
    /// Nth --listen.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub advertise: Vec<Advertise>,
    /// Domain served (repeatable; the first is the digest realm unless --realm).
    #[arg(long, value_name = "D")]
    pub domain: Vec<String>,
    /// Digest realm.
    #[arg(long, value_name = "R")]
    pub realm: Option<String>,
    /// htdigest credentials file (`sip-proxy users`); authentication is on when given.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// A source IP with more than N failed authentications in a row is banned.
    #[arg(long, value_name = "N")]
    pub ban_after: Option<u32>,
    /// Ban duration in seconds (a banned source gets no answer at all).
    #[arg(long, value_name = "S")]
    pub ban_seconds: Option<u64>,
    /// Shortest registration accepted (below: 423 with Min-Expires).
    #[arg(long, value_name = "S")]
    pub min_expires: Option<u32>,
    /// Longest registration granted (longer ones are shortened).
    #[arg(long, value_name = "S")]
    pub max_expires: Option<u32>,
    /// Registration length when the REGISTER gives none.
    #[arg(long, value_name = "S")]
    pub default_expires: Option<u32>,
    /// Upstream set: `NAME=udp:IP:PORT[,udp:IP:PORT...]` (repeatable).
    #[arg(long, value_name = "NAME=udp:IP:PORT[,...]")]
    pub upstream: Vec<String>,
    /// Which requests an upstream set takes: `MATCH=NAME`, MATCH a Request-URI user prefix
    /// or a domain (repeatable).
    #[arg(long, value_name = "MATCH=NAME")]
    pub dispatch: Vec<DispatchRule>,
    /// Register with a provider as `sip:USER@HOST[:PORT]`.
    #[arg(long, value_name = "URI", requires = "register_password_file")]
    pub register_to: Option<String>,
    /// File with the provider password (first line).
    #[arg(long, value_name = "F")]
    pub register_password_file: Option<PathBuf>,
    /// Mirror every message to a HEP collector, `udp:HOST:PORT` or `tcp:HOST:PORT`.
    #[arg(long, value_name = "udp:HOST:PORT")]
    pub hep: Option<String>,
    /// Worker threads per UDP listener (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Sources never challenged for calls nor banned (CIDR, repeatable).
    #[arg(long, value_name = "CIDR")]
    pub trusted: Vec<String>,
    /// Send only to these networks (CIDR, repeatable): every other destination is a counted
    /// drop.
    #[arg(long, value_name = "CIDR")]
    pub relay_to: Vec<String>,
    /// OPTIONS probe interval of the --upstream sets, seconds (0: no probing).
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub probe_interval: u64,
    /// full (default), stateful or stateless.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,
    /// Write every message to this `sip_trace` JSON-lines file.
    #[arg(long, value_name = "FILE")]
    pub trace_file: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://IP:PORT/metrics` (loopback unless the config's
    /// `metrics.allow_remote`).
    #[arg(long, value_name = "IP:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Persistence: --data-dir, --storage, --db-mode, --trace-db.
    #[command(flatten)]
    pub storage: crate::storage::StorageArgs,
    /// Seconds to let transactions finish on SIGINT/SIGTERM.
    #[arg(long, value_name = "S", default_value_t = 5)]
    pub shutdown_grace: u64,
    /// Share registrations, dialogs, bans and nonce state with other nodes through this
    /// Redis, `redis://HOST:PORT` (see docs/scaling.md).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// The same on a Redis Cluster: a seed node `redis://HOST:PORT` (repeatable).
    #[arg(long, value_name = "URL")]
    pub redis_cluster: Vec<String>,
    /// `HOST:PORT` another node record-routes with (repeatable): Routes to it are taken as
    /// ours.
    #[arg(long, value_name = "HOST:PORT")]
    pub redis_peer: Vec<String>,
    /// More log output (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// Flags of `sip-proxy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file to check.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

fn parse_upstream(s: &str, probe_interval: u64) -> Result<UpstreamConfig, String> {
    let (name, targets) = s
        .split_once('=')
        .ok_or_else(|| format!("--upstream `{s}`: expected NAME=udp:IP:PORT[,udp:IP:PORT...]"))?;
    let targets = targets
        .split(',')
        .map(str::parse::<ListenAddr>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--upstream {name}: {e}"))?;
    Ok(UpstreamConfig {
        name: name.to_owned(),
        targets,
        algorithm: crate::config::Algorithm::RoundRobin,
        weights: Vec::new(),
        probe_interval,
    })
}

impl RunArgs {
    /// The configuration: the file (if any), the flags over it, then defaults and checks.
    pub fn config(&self) -> Result<Config, String> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        if !self.listen.is_empty() {
            c.listen = self
                .listen
                .iter()
                .enumerate()
                .map(|(i, a)| ListenerConfig {
                    address: *a,
                    advertise: self.advertise.get(i).cloned(),
                })
                .collect();
        } else if !self.advertise.is_empty() {
            return Err("--advertise needs --listen (the Nth applies to the Nth listener)".into());
        }
        if self.advertise.len() > self.listen.len() {
            return Err(format!(
                "{} --advertise for {} --listen",
                self.advertise.len(),
                self.listen.len()
            ));
        }
        if !self.domain.is_empty() {
            c.domains.clone_from(&self.domain);
        }
        if let Some(r) = &self.realm {
            c.auth.realm = Some(r.clone());
        }
        if let Some(u) = &self.users {
            c.auth.users_file = Some(u.clone());
        }
        if let Some(n) = self.ban_after {
            c.auth.ban_after = n;
        }
        if let Some(s) = self.ban_seconds {
            c.auth.ban_seconds = s;
        }
        if let Some(s) = self.min_expires {
            c.registrar.min_expires = s;
        }
        if let Some(s) = self.max_expires {
            c.registrar.max_expires = s;
        }
        if let Some(s) = self.default_expires {
            c.registrar.default_expires = s;
        } else if self.max_expires.is_some() || self.min_expires.is_some() {
            let r = &mut c.registrar;
            r.default_expires = r
                .default_expires
                .clamp(r.min_expires, r.max_expires.max(r.min_expires));
        }
        for u in &self.upstream {
            let set = parse_upstream(u, self.probe_interval)?;
            c.upstream.retain(|x| x.name != set.name);
            c.upstream.push(set);
        }
        c.dispatch.extend(self.dispatch.iter().cloned());
        if let Some(uri) = &self.register_to {
            c.registration.push(RegistrationConfig {
                uri: uri.clone(),
                password_file: self.register_password_file.clone().unwrap_or_default(),
                auth_user: None,
                expires: 3600,
            });
        }
        if let Some(h) = &self.hep {
            c.hep.collector = Some(h.clone());
        }
        if let Some(n) = self.workers {
            c.workers = n;
        }
        c.auth.trusted.extend(self.trusted.iter().cloned());
        if !self.relay_to.is_empty() {
            c.limits.relay_to.clone_from(&self.relay_to);
        }
        if let Some(t) = &self.trace_file {
            c.trace_file = Some(t.clone());
        }
        if let Some(m) = self.mode {
            c.mode = m;
        }
        if let Some(a) = self.metrics {
            c.metrics.listen = Some(a);
        }
        self.storage.apply(&mut c);
        if let Some(u) = &self.redis {
            c.redis.url = Some(u.clone());
        }
        if !self.redis_cluster.is_empty() {
            c.redis.cluster.clone_from(&self.redis_cluster);
        }
        c.redis.peers.extend(self.redis_peer.iter().cloned());
        c.finish().map_err(|e| e.to_string())
    }

    fn log_filter(&self, cfg: &Config) -> String {
        let levels = ["error", "warn", "info", "debug", "trace"];
        let base = levels.iter().position(|l| *l == cfg.log).unwrap_or(2);
        if levels.contains(&cfg.log.as_str()) || self.verbose > 0 || self.quiet > 0 {
            let i = (base + usize::from(self.verbose))
                .saturating_sub(usize::from(self.quiet))
                .min(4);
            levels[i].to_owned()
        } else {
            cfg.log.clone()
        }
    }
}

/// `sip-proxy check --config FILE`.
pub fn check(args: &CheckArgs) -> ExitCode {
    let run = RunArgs {
        config: Some(args.config.clone()),
        ..RunArgs::default()
    };
    match run.config() {
        Ok(c) => {
            println!(
                "{}: ok ({} listeners, domains {}, {} upstream sets)",
                args.config.display(),
                c.listen.len(),
                c.domains.join(", "),
                c.upstream.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `sip-proxy run`.
pub fn run(args: &RunArgs) -> ExitCode {
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sip-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter = args.log_filter(&cfg);
    let logging = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal (and never with NO_COLOR): a log file or journald
        // gets plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_filter_reloading();
    let handle = logging.reload_handle();
    let _ = logging.try_init();
    let set_log: Box<SetLog> = Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()));
    match start(cfg, args, set_log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sip-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Replaces the log filter.
type SetLog = dyn Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync;

/// The reload of `sip-proxy ctl reload` and SIGHUP: the configuration as `run` builds it
/// (file, then flags), checked, then applied.
struct Reloader {
    args: RunArgs,
    proxy: Arc<Proxy>,
    set_log: Box<SetLog>,
    one_at_a_time: Mutex<()>,
}

impl Reloader {
    fn reload(&self) -> Result<ReloadReport, String> {
        let _one = self
            .one_at_a_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cfg = self
            .args
            .config()
            .map_err(|e| format!("configuration refused, nothing changed: {e}"))?;
        let filter = self.args.log_filter(&cfg);
        let filter = tracing_subscriber::EnvFilter::try_new(&filter)
            .map_err(|e| format!("configuration refused, nothing changed: log `{filter}`: {e}"))?;
        let report = self
            .proxy
            .reload(&cfg)
            .map_err(|e| format!("reload refused, nothing changed: {e}"))?;
        (self.set_log)(filter)?;
        Ok(report)
    }
}

/// Creates the data directory (mode 0700 when it is new).
fn data_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("data directory {}: {e}", dir.display()))
}

fn start(cfg: Config, args: &RunArgs, set_log: Box<SetLog>) -> Result<(), String> {
    let grace = args.shutdown_grace;
    // The data directory holds the control socket whatever the storage (and the database
    // when persisting): `--data-dir` / `data_dir`.
    data_dir(&cfg.data_dir)?;
    let socket = crate::ctl::socket_path(&cfg.data_dir);
    crate::ctl::server::clear_stale(&socket).map_err(|e| format!("control socket: {e}"))?;
    if cfg.mode == Mode::Full && cfg.auth.users_file.is_none() && cfg.registrar.open_on_loopback {
        tracing::warn!(
            "NO AUTHENTICATION: anyone on loopback may register and call (give --users FILE to require digest authentication)"
        );
    }
    let workers = if cfg.workers == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    } else {
        cfg.workers
    };
    let clock = Clock::new();
    let storage =
        crate::storage::open(&cfg, workers, clock.now().wall).map_err(|e| e.to_string())?;
    tracing::info!("{}", storage.describe());
    let mut sinks: Vec<Arc<dyn CaptureSink + Send + Sync>> = Vec::new();
    let trace_db = match storage.data_dir().filter(|_| cfg.storage.trace) {
        Some(dir) => {
            let path = dir.join(crate::storage::TRACE_FILE);
            let locals = cfg.listen.iter().map(|l| l.address.addr).collect();
            let t = crate::storage::TraceDb::open(
                &path,
                locals,
                cfg.storage.trace_config(),
                &cfg.storage.db_options(1, false),
            )
            .map_err(|e| e.to_string())?;
            tracing::info!(db = %path.display(), "writing sip_trace");
            let t = Arc::new(t);
            sinks.push(t.clone());
            Some(t)
        }
        None => None,
    };
    if let Some(path) = &cfg.trace_file {
        let locals = cfg.listen.iter().map(|l| l.address.addr).collect();
        let t = crate::trace::TraceFile::open(path, locals, 10_000).map_err(|e| e.to_string())?;
        tracing::info!(file = %path.display(), "writing sip_trace");
        sinks.push(Arc::new(t));
    }
    let hep: Option<Arc<HepSender>> = match &cfg.hep.collector {
        Some(c) => {
            let collector = Collector::resolve(c).map_err(|e| e.to_string())?;
            let hc = hep_codec::HepConfig {
                capture_id: cfg.hep.capture_id,
                auth_key: cfg.hep.auth_key.clone().map(String::into_bytes),
                node_name: cfg.hep.node_name.clone().map(String::into_bytes),
                version: if cfg.hep.version == 2 {
                    Version::V2
                } else {
                    Version::V3
                },
            };
            let s = HepSender::start(collector, hc, cfg.hep.queue)
                .map_err(|e| format!("hep collector {c}: {e}"))?;
            tracing::info!(collector = %c, "mirroring to HEP collector");
            Some(Arc::new(s))
        }
        None => None,
    };
    sinks.extend(hep.clone().map(|h| h as Arc<dyn CaptureSink + Send + Sync>));
    let metrics = match cfg.metrics.listen {
        Some(a) => Some(crate::metrics::Endpoint::bind(a).map_err(|e| e.to_string())?),
        None => None,
    };
    let capture: Option<Arc<dyn CaptureSink + Send + Sync>> = match sinks.len() {
        0 => None,
        1 => sinks.pop(),
        _ => Some(Arc::new(crate::trace::Fanout(sinks))),
    };
    let mut seed = [0u8; 32];
    sip_parser::Random::fill(&mut sip_parser::SystemRandom::new(), &mut seed);
    let proxy = Proxy::with_storage(
        cfg,
        Parts {
            seed,
            capture,
            resolver: Arc::new(SystemResolver),
        },
        storage,
        clock.now().wall,
    )
    .map_err(|e| e.to_string())?;
    let server = Server::start(Arc::new(proxy), clock, workers).map_err(|e| e.to_string())?;
    let proxy = server.proxy().clone();
    let flusher =
        crate::storage::Flusher::start(proxy.clone(), clock).map_err(|e| e.to_string())?;
    for (t, a) in &server.bound {
        tracing::info!(listen = %format!("{}:{a}", t.param_value()), "listening");
    }
    let reloader = Arc::new(Reloader {
        args: args.clone(),
        proxy: server.proxy().clone(),
        set_log,
        one_at_a_time: Mutex::new(()),
    });
    let r = reloader.clone();
    let ctl = crate::ctl::server::CtlServer::start(
        &socket,
        crate::ctl::methods::handler(crate::ctl::methods::Context {
            proxy: server.proxy().clone(),
            clock,
            reload: Arc::new(move || {
                r.reload()
                    .and_then(|rep| serde_json::to_value(rep).map_err(|e| e.to_string()))
            }),
            hep: hep.clone(),
        }),
    )
    .map_err(|e| format!("control socket: {e}"))?;
    tracing::info!(socket = %socket.display(), "control socket (sip-proxy ctl)");
    let metrics = match metrics {
        Some(l) => {
            let mut exporter = crate::metrics::Exporter::new(server.proxy().clone(), clock, hep);
            if let Some(t) = &trace_db {
                exporter = exporter.with_trace_db(t.counters().clone());
            }
            let e = crate::metrics::Endpoint::start(l, exporter).map_err(|e| e.to_string())?;
            tracing::info!(metrics = %format!("http://{}/metrics", e.local_addr()), "serving metrics");
            Some(e)
        }
        None => None,
    };
    tracing::info!(workers, "sip-proxy running");
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| e.to_string())?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if hup.swap(false, Ordering::Relaxed) {
            tracing::info!("SIGHUP: reloading the configuration");
            if let Err(e) = reloader.reload() {
                tracing::error!("{e}");
            }
        }
    }
    tracing::info!("stopping: finishing transactions in flight");
    ctl.stop();
    server.shutdown(Duration::from_secs(grace));
    if let Some(m) = metrics {
        m.stop();
    }
    if let Some(f) = flusher {
        f.stop();
    }
    let closed = proxy.close_storage(clock.now());
    if let Some(t) = trace_db {
        if !t.sync(Duration::from_secs(5)) {
            tracing::warn!(
                "sip_trace: the writer did not finish in 5 s; the last messages may be missing"
            );
        }
        let c = t.counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        tracing::info!(
            written = get(&c.written),
            dropped = get(&c.dropped),
            failed = get(&c.failed),
            pruned = get(&c.pruned),
            "sip_trace rows"
        );
    }
    closed?;
    tracing::info!("stopped");
    Ok(())
}
