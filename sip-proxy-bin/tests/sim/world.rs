//! The simulated world: the real proxy, simulated user agents, a network with faults, and
//! virtual time. One thread, one seeded generator, no sockets: a seed replays exactly.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hep_codec::{CaptureEvent, CaptureSink};
use sip_parser::{Message, ParseError, Transport};
use sip_proxy::config::Config;
use sip_proxy::proxy::{Now, Parts, Proxy, Resolve};
use sip_transaction::{Destination, Flow, Output, Transmit};

use super::Rng;
use super::ua::Ua;

/// The wall clock at virtual time zero (what `Now::wall` adds the virtual time to).
pub const EPOCH: Duration = Duration::from_secs(1_700_000_000);

/// Most steps one run may take (a livelock is a failure, not a hang).
const MAX_STEPS: u64 = 3_000_000;

/// Network faults, applied to every datagram independently.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub dup: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra random delay up to this much (reorders datagrams).
    pub jitter: Duration,
}

impl Faults {
    /// No loss, no duplication, 1 ms each way.
    pub fn clean() -> Self {
        Faults {
            delay: Duration::from_millis(1),
            ..Faults::default()
        }
    }
    /// Whether a datagram can be lost or duplicated.
    pub fn is_clean(&self) -> bool {
        self.loss == 0.0 && self.dup == 0.0
    }
}

/// Names the proxy may resolve (the simulation has no DNS).
#[derive(Debug, Default)]
pub struct Table {
    /// Host → addresses.
    pub hosts: HashMap<String, Vec<IpAddr>>,
    /// Every lookup asked, in order.
    pub asked: Mutex<Vec<String>>,
}

impl Resolve for Table {
    fn resolve(&self, host: &str) -> Vec<IpAddr> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(host.to_owned());
        self.hosts
            .get(&host.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

/// What the proxy mirrored (its HEP capture sink): (source, destination, first line).
#[derive(Debug, Default)]
pub struct Capture {
    /// Every captured message.
    pub events: Mutex<Vec<(SocketAddr, SocketAddr, String)>>,
}

impl CaptureSink for Capture {
    fn capture(&self, e: &CaptureEvent<'_>) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((e.src, e.dst, first_line(e.payload)));
    }
}

impl Capture {
    /// How many captured messages went from `src` (any port when `None`) … to `dst`.
    pub fn count(&self, f: impl Fn(SocketAddr, SocketAddr) -> bool) -> usize {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|e| f(e.0, e.1))
            .count()
    }
}

/// Log lines of the proxy (`tracing` INFO and above), collected per thread.
mod logs {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Metadata, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

    pub(super) struct Collect(pub(super) Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, " {value:?}");
            } else {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                let _ = write!(self.0, " {value}");
            } else {
                let _ = write!(self.0, " {}={value}", field.name());
            }
        }
    }

    impl<S: Subscriber> Layer<S> for Collect {
        fn enabled(&self, m: &Metadata<'_>, _: Context<'_, S>) -> bool {
            *m.level() <= Level::INFO
        }
        fn on_event(&self, e: &Event<'_>, _: Context<'_, S>) {
            let mut f = Fields(format!(
                "{} {}:",
                e.metadata().level(),
                e.metadata().target()
            ));
            e.record(&mut f);
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(f.0);
        }
    }

    /// Installs the collector as this thread's default subscriber.
    pub(super) fn install(sink: Arc<Mutex<Vec<String>>>) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(Collect(sink)))
    }
}

/// One line of the trace.
#[derive(Debug, Clone)]
pub enum Line {
    /// A datagram sent: where, what, and what the network did with it.
    Datagram {
        /// Sent at.
        t: Duration,
        /// From.
        from: SocketAddr,
        /// To.
        to: SocketAddr,
        /// The bytes.
        payload: Bytes,
        /// Arrival times (empty: lost), or why it never left.
        fate: Fate,
    },
    /// A log line of the proxy, or a change of the world (a node down or up).
    Note {
        /// When.
        t: Duration,
        /// What.
        text: String,
    },
}

/// What the network did with a datagram.
#[derive(Debug, Clone)]
pub enum Fate {
    /// Delivered at these times (two: duplicated).
    Arrives(Vec<Duration>),
    /// Lost.
    Lost,
    /// The sender is down (partitioned).
    SenderDown,
}

/// A datagram in flight.
#[derive(Debug, Clone)]
struct Packet {
    from: SocketAddr,
    to: SocketAddr,
    payload: Bytes,
}

/// A change of the world at a given time.
#[derive(Debug, Clone)]
pub enum Change {
    /// The node at this address stops sending and receiving (partitioned, or dead).
    Down(SocketAddr),
    /// It is back.
    Up(SocketAddr),
    /// The UA at this address crashes (state lost) and stays down until `Up`.
    Crash(SocketAddr),
}

/// Counts of what the network carried.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Datagrams sent.
    pub sent: usize,
    /// Copies delivered.
    pub delivered: usize,
    /// Lost by the fault model.
    pub lost: usize,
    /// Delivered twice.
    pub duplicated: usize,
    /// Dropped because the sender or the receiver was down.
    pub partitioned: usize,
    /// Sent to an address where nothing listens.
    pub unreachable: usize,
}

/// What was delivered to the proxy, classified the way the proxy must classify it.
#[derive(Debug, Clone, Default)]
pub struct ProxyInput {
    /// Datagrams handed to `on_datagram`.
    pub datagrams: usize,
    /// Of which CRLF keep-alives.
    pub keepalives: usize,
    /// Of which unparseable (must be dropped and counted in `stats.parse_errors`).
    pub unparseable: usize,
    /// Of which SIP messages (each must be captured).
    pub messages: usize,
    /// Of which messages that parse but fail `validate()` (requests must be answered
    /// 400/505; all counted in `stats.invalid`).
    pub invalid: usize,
    /// SIP messages the proxy sent (each must be captured).
    pub sent_messages: usize,
}

/// The world.
pub struct World {
    /// The seed it was built from.
    pub seed: u64,
    /// Virtual monotonic time.
    pub now: Duration,
    /// Network faults.
    pub faults: Faults,
    rng: Rng,
    /// The proxy under test.
    pub proxy: Proxy,
    /// Its listeners (UDP).
    pub listeners: Vec<SocketAddr>,
    /// Simulated user agents.
    pub uas: Vec<Ua>,
    /// The proxy's message limits (to classify what it receives as it does).
    pub limits: sip_parser::Limits,
    /// The resolver table the proxy was given.
    pub resolver: Arc<Table>,
    /// What the proxy mirrored.
    pub capture: Arc<Capture>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    packets: BTreeMap<u64, Packet>,
    seq: u64,
    changes: Vec<(Duration, Change)>,
    down: Vec<SocketAddr>,
    /// Everything that happened, in order.
    pub trace: Vec<Line>,
    logs: Arc<Mutex<Vec<String>>>,
    _log_guard: tracing::subscriber::DefaultGuard,
    /// Every log line of the proxy, with its time.
    pub log: Vec<(Duration, String)>,
    /// Network counts.
    pub net: NetStats,
    /// What reached the proxy.
    pub input: ProxyInput,
    /// Things the proxy did that no proxy may do (send from a socket it does not have …).
    pub violations: Vec<String>,
    steps: u64,
    stuck: u64,
    outages: usize,
    /// The most transactions the proxy held at once (seen after each step).
    pub peak_transactions: usize,
}

/// A response or request's first line (for the trace).
pub fn first_line(b: &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len())
        .min(100);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl World {
    /// A world around a proxy built from `cfg` (finished here). The proxy's transaction keys
    /// come from the seed.
    pub fn new(seed: u64, faults: Faults, cfg: Config) -> World {
        Self::with_hosts(seed, faults, cfg, &[])
    }

    /// [`World::new`] with names the proxy's resolver knows.
    pub fn with_hosts(seed: u64, faults: Faults, cfg: Config, hosts: &[(&str, IpAddr)]) -> World {
        let cfg = cfg.finish().expect("a valid configuration");
        let mut rng = Rng::new(seed);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let guard = logs::install(logs.clone());
        let mut table = Table::default();
        for (h, ip) in hosts {
            table
                .hosts
                .entry(h.to_ascii_lowercase())
                .or_default()
                .push(*ip);
        }
        let resolver = Arc::new(table);
        let capture = Arc::new(Capture::default());
        let limits = sip_parser::Limits {
            max_message_size: cfg.limits.max_message_size,
            ..sip_parser::Limits::DEFAULT
        };
        let listeners = cfg
            .listen
            .iter()
            .filter(|l| l.address.transport == Transport::Udp)
            .map(|l| l.address.addr)
            .collect();
        // A users file written by `worlds::users_file` is read once, here: removed after.
        let generated = cfg.auth.users_file.clone().filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sim-proxy-users-"))
        });
        let proxy = Proxy::new(
            cfg,
            Parts {
                seed: rng.bytes32(),
                capture: Some(capture.clone()),
                resolver: resolver.clone(),
            },
            EPOCH + Duration::from_secs(1),
        )
        .expect("proxy builds from the test configuration");
        if let Some(p) = generated {
            let _ = std::fs::remove_file(p);
        }
        World {
            seed,
            now: Duration::from_secs(1),
            faults,
            rng,
            proxy,
            listeners,
            limits,
            uas: Vec::new(),
            resolver,
            capture,
            queue: BinaryHeap::new(),
            packets: BTreeMap::new(),
            seq: 0,
            changes: Vec::new(),
            down: Vec::new(),
            trace: Vec::new(),
            logs,
            _log_guard: guard,
            log: Vec::new(),
            net: NetStats::default(),
            input: ProxyInput::default(),
            violations: Vec::new(),
            steps: 0,
            stuck: 0,
            outages: 0,
            peak_transactions: 0,
        }
    }

    /// The proxy's main listener.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.listeners[0]
    }

    /// Adds a user agent; returns its index.
    pub fn add(&mut self, ua: Ua) -> usize {
        assert!(
            !self.listeners.contains(&ua.addr) && self.uas.iter().all(|u| u.addr != ua.addr),
            "two nodes on {}",
            ua.addr
        );
        self.uas.push(ua);
        self.uas.len() - 1
    }

    /// The user agent at `addr`.
    pub fn ua(&self, addr: SocketAddr) -> &Ua {
        self.uas
            .iter()
            .find(|u| u.addr == addr)
            .expect("no such UA")
    }

    /// The user agent named `name`.
    pub fn named(&self, name: &str) -> &Ua {
        self.uas
            .iter()
            .find(|u| u.name == name)
            .expect("no such UA")
    }

    /// Mutable access to the user agent named `name`.
    pub fn named_mut(&mut self, name: &str) -> &mut Ua {
        self.uas
            .iter_mut()
            .find(|u| u.name == name)
            .expect("no such UA")
    }

    /// Schedules a change of the world at virtual time `t`.
    pub fn at(&mut self, t: Duration, c: Change) {
        let pos = self.changes.partition_point(|x| x.0 <= t);
        self.changes.insert(pos, (t, c));
    }

    /// Both clocks now.
    pub fn clock(&self) -> Now {
        Now {
            mono: self.now,
            wall: EPOCH + self.now,
        }
    }

    /// Whether the node at `addr` is up.
    pub fn is_up(&self, addr: SocketAddr) -> bool {
        !self.down.contains(&addr)
    }

    /// How many times a node went down.
    pub fn outages(&self) -> usize {
        self.outages
    }

    /// Datagrams sent so far.
    pub fn sent_datagrams(&self) -> usize {
        self.net.sent
    }

    fn next_deadline(&self) -> Option<Duration> {
        [
            self.queue.peek().map(|r| r.0.0),
            self.changes.first().map(|c| c.0),
            self.proxy.next_timeout(),
            self.uas.iter().filter_map(Ua::next_deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs until virtual time `until` (or until nothing at all is left to do).
    pub fn run_until(&mut self, until: Duration) {
        while let Some(next) = self.next_deadline() {
            if next > until {
                break;
            }
            self.advance(next);
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn advance(&mut self, next: Duration) {
        if next <= self.now {
            self.stuck += 1;
            assert!(
                self.stuck < 100_000,
                "no progress at {:.3}s: something is due at once forever",
                self.now.as_secs_f64()
            );
        } else {
            self.stuck = 0;
            self.now = next;
        }
        self.steps += 1;
        assert!(
            self.steps < MAX_STEPS,
            "more than {MAX_STEPS} steps: livelock"
        );
        self.step();
    }

    /// Nothing in flight, no UA with work left, no transaction in the proxy.
    pub fn quiet(&self) -> bool {
        self.queue.is_empty()
            && self.uas.iter().all(|u| u.idle(self.now))
            && self.proxy.transactions() == 0
    }

    /// Runs until [`quiet`](Self::quiet) (true) or virtual time `limit` (false). With
    /// health probes the proxy is never idle for long: quiet is an instant between two
    /// probe rounds.
    pub fn settle(&mut self, limit: Duration) -> bool {
        loop {
            if self.quiet() && self.changes.is_empty() {
                return true;
            }
            match self.next_deadline() {
                Some(next) if next <= limit => self.advance(next),
                _ => {
                    self.now = self.now.max(limit);
                    return self.quiet();
                }
            }
        }
    }

    fn step(&mut self) {
        let now = self.now;
        while self.changes.first().is_some_and(|c| c.0 <= now) {
            let (_, c) = self.changes.remove(0);
            let text = match c {
                Change::Down(a) => {
                    self.down.push(a);
                    self.outages += 1;
                    format!("{a} goes DOWN")
                }
                Change::Up(a) => {
                    self.down.retain(|d| *d != a);
                    format!("{a} comes back UP")
                }
                Change::Crash(a) => {
                    self.down.push(a);
                    self.outages += 1;
                    if let Some(u) = self.uas.iter_mut().find(|u| u.addr == a) {
                        u.crash();
                    }
                    format!("{a} CRASHES (state lost) and goes down")
                }
            };
            self.trace.push(Line::Note { t: now, text });
        }
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > now {
                break;
            }
            self.queue.pop();
            let p = self.packets.remove(&seq).expect("queued packet");
            self.deliver(p);
        }
        if self.proxy.next_timeout().is_some_and(|t| t <= now) {
            let mut out = Vec::new();
            let clock = self.clock();
            self.proxy.on_timer(clock, &mut out);
            self.proxy_sent(out);
        }
        for i in 0..self.uas.len() {
            if self.uas[i].next_deadline().is_some_and(|t| t <= now) {
                let mut out = Output::new();
                self.uas[i].tick(now, &mut out);
                self.ua_sent(i, out);
            }
        }
        self.peak_transactions = self.peak_transactions.max(self.proxy.transactions());
    }

    fn collect_logs(&mut self) {
        let lines = std::mem::take(
            &mut *self
                .logs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for l in lines {
            self.trace.push(Line::Note {
                t: self.now,
                text: format!("[proxy] {l}"),
            });
            self.log.push((self.now, l));
        }
    }

    fn deliver(&mut self, p: Packet) {
        if !self.is_up(p.to) {
            self.net.partitioned += 1;
            self.trace.push(Line::Note {
                t: self.now,
                text: format!("{} is down: dropped {}", p.to, first_line(&p.payload)),
            });
            return;
        }
        self.net.delivered += 1;
        if self.listeners.contains(&p.to) {
            self.classify_input(&p.payload);
            let mut out = Vec::new();
            let clock = self.clock();
            self.proxy
                .on_datagram(clock, p.payload, Flow::udp(p.to, p.from), &mut out);
            self.proxy_sent(out);
            return;
        }
        let Some(i) = self.uas.iter().position(|u| u.addr == p.to) else {
            self.net.unreachable += 1;
            self.trace.push(Line::Note {
                t: self.now,
                text: format!(
                    "nothing listens on {}: dropped {}",
                    p.to,
                    first_line(&p.payload)
                ),
            });
            return;
        };
        let mut out = Output::new();
        self.uas[i].receive(self.now, p.from, p.payload, &mut out);
        self.ua_sent(i, out);
    }

    fn classify_input(&mut self, payload: &Bytes) {
        self.input.datagrams += 1;
        match Message::parse_with(payload.clone(), &self.limits) {
            Ok(m) => {
                self.input.messages += 1;
                if m.validate().is_err() {
                    self.input.invalid += 1;
                }
            }
            Err(ParseError::KeepAlive) => self.input.keepalives += 1,
            Err(_) => self.input.unparseable += 1,
        }
    }

    fn proxy_sent(&mut self, out: Vec<Transmit>) {
        self.collect_logs();
        for t in out {
            if t.flow.transport != Transport::Udp {
                self.violations.push(format!(
                    "{:.3}s: the proxy sent over {} in a UDP-only world: {}",
                    self.now.as_secs_f64(),
                    t.flow.transport,
                    first_line(&t.payload)
                ));
                continue;
            }
            if !self.listeners.contains(&t.flow.local) {
                self.violations.push(format!(
                    "{:.3}s: the proxy sent from {}, which is not one of its sockets: {}",
                    self.now.as_secs_f64(),
                    t.flow.local,
                    first_line(&t.payload)
                ));
                continue;
            }
            let to = match &t.destination {
                Destination::Addr => t.flow.remote,
                Destination::Host { host, port } => {
                    let h = String::from_utf8_lossy(host).into_owned();
                    let Some(ip) = self.resolver.resolve(&h).first().copied() else {
                        self.violations.push(format!(
                            "{:.3}s: the proxy sent to host {h}, which does not resolve: {}",
                            self.now.as_secs_f64(),
                            first_line(&t.payload)
                        ));
                        continue;
                    };
                    SocketAddr::new(ip, *port)
                }
            };
            if Message::parse(t.payload.clone()).is_ok() {
                self.input.sent_messages += 1;
            }
            self.send(t.flow.local, to, t.payload);
        }
    }

    fn ua_sent(&mut self, i: usize, out: Output) {
        let me = self.uas[i].addr;
        for t in out.transmits {
            assert_eq!(t.flow.local, me, "a UA sent from a socket it does not have");
            self.send(me, t.flow.remote, t.payload);
        }
    }

    /// Puts a datagram on the network (faults applied).
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, payload: Bytes) {
        self.net.sent += 1;
        let t = self.now;
        if !self.is_up(from) {
            self.net.partitioned += 1;
            self.trace.push(Line::Datagram {
                t,
                from,
                to,
                payload,
                fate: Fate::SenderDown,
            });
            return;
        }
        if self.rng.chance(self.faults.loss) {
            self.net.lost += 1;
            self.trace.push(Line::Datagram {
                t,
                from,
                to,
                payload,
                fate: Fate::Lost,
            });
            return;
        }
        let copies = if self.rng.chance(self.faults.dup) {
            self.net.duplicated += 1;
            2
        } else {
            1
        };
        let mut arrivals = Vec::new();
        for _ in 0..copies {
            let jitter = self.faults.jitter.as_micros() as u64;
            let at = t + self.faults.delay + Duration::from_micros(self.rng.below(jitter + 1));
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq)));
            self.packets.insert(
                self.seq,
                Packet {
                    from,
                    to,
                    payload: payload.clone(),
                },
            );
            arrivals.push(at);
        }
        self.trace.push(Line::Datagram {
            t,
            from,
            to,
            payload,
            fate: Fate::Arrives(arrivals),
        });
    }

    /// A raw datagram from `from` (any address, a node or not) to `to`, now.
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, payload: impl Into<Bytes>) {
        self.send(from, to, payload.into());
    }

    fn format_line(l: &Line, payloads: bool, out: &mut String) {
        match l {
            Line::Datagram {
                t,
                from,
                to,
                payload,
                fate,
            } => {
                let fate = match fate {
                    Fate::Arrives(a) if a.len() == 1 => String::new(),
                    Fate::Arrives(a) => format!(
                        "  [dup, arrives {}]",
                        a.iter()
                            .map(|x| format!("{:.3}", x.as_secs_f64()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Fate::Lost => "  [LOST]".into(),
                    Fate::SenderDown => "  [sender down]".into(),
                };
                let arrive = match l {
                    Line::Datagram {
                        fate: Fate::Arrives(a),
                        ..
                    } => format!("→{:.3}", a[0].as_secs_f64()),
                    _ => "       ".into(),
                };
                let _ = writeln!(
                    out,
                    "{:>9.3} {arrive:>9} {from:>16} -> {to:<16} {}{fate}",
                    t.as_secs_f64(),
                    first_line(payload)
                );
                if payloads {
                    for line in String::from_utf8_lossy(payload).split("\r\n") {
                        let _ = writeln!(out, "{:>30}| {line}", "");
                    }
                }
            }
            Line::Note { t, text } => {
                let _ = writeln!(out, "{:>9.3} {:>9} ** {text}", t.as_secs_f64(), "");
            }
        }
    }

    /// The whole trace (with every payload when `payloads`).
    pub fn dump(&self, payloads: bool) -> String {
        let mut out = format!(
            "seed {} faults {:?}\n{:>9} {:>9} {:>16}    {:<16} first line\n",
            self.seed, self.faults, "sent", "arrives", "from", "to"
        );
        for l in &self.trace {
            Self::format_line(l, payloads, &mut out);
        }
        out
    }

    /// The last `n` lines of the trace.
    pub fn tail(&self, n: usize) -> String {
        let mut out = String::new();
        let skip = self.trace.len().saturating_sub(n);
        if skip > 0 {
            let _ = writeln!(out, "  … {skip} earlier lines");
        }
        for l in &self.trace[skip..] {
            Self::format_line(l, false, &mut out);
        }
        out
    }

    /// A fingerprint of the whole trace (times, addresses, bytes): equal for equal runs.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h ^= u64::from(x);
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        for l in &self.trace {
            match l {
                Line::Datagram {
                    t,
                    from,
                    to,
                    payload,
                    fate,
                } => {
                    eat(&t.as_nanos().to_le_bytes());
                    eat(from.to_string().as_bytes());
                    eat(to.to_string().as_bytes());
                    eat(payload);
                    eat(format!("{fate:?}").as_bytes());
                }
                Line::Note { t, text } => {
                    eat(&t.as_nanos().to_le_bytes());
                    eat(text.as_bytes());
                }
            }
        }
        h
    }

    /// Every datagram sent from `from` to `to` whose first line starts with `prefix`
    /// (either address `None`: any), in order.
    pub fn datagrams(
        &self,
        from: Option<SocketAddr>,
        to: Option<SocketAddr>,
        prefix: &str,
    ) -> Vec<Bytes> {
        self.trace
            .iter()
            .filter_map(|l| match l {
                Line::Datagram {
                    from: f,
                    to: t,
                    payload,
                    ..
                } if from.is_none_or(|x| x == *f)
                    && to.is_none_or(|x| x == *t)
                    && payload.starts_with(prefix.as_bytes()) =>
                {
                    Some(payload.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Whether the proxy logged a line containing `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log.iter().any(|l| l.1.contains(text))
    }

    /// The time of the first log line containing `text` at or after `since`.
    pub fn logged_at(&self, text: &str, since: Duration) -> Option<Duration> {
        self.log
            .iter()
            .find(|l| l.0 >= since && l.1.contains(text))
            .map(|l| l.0)
    }
}
