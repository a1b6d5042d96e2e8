//! The Prometheus endpoint (`--metrics 127.0.0.1:9090`, `[metrics]`): what the proxy counted,
//! what it holds now, the HEP sender's counters and the call KPIs of `sip-dialog`, served as
//! the Prometheus text format (version 0.0.4) at `GET /metrics`.
//!
//! * [`Exporter`] reads everything at each scrape (the counters are relaxed atomics, the
//!   gauges the tables' sizes) and encodes it with `prometheus-client`, the official Rust
//!   client;
//! * [`Endpoint`] is one thread: it accepts on a non-blocking listener, answers each
//!   connection in turn ([`http`]: one bounded request, then close), and closes the KPI
//!   interval when it is due ([`kpi`]).
//!
//! Every name, type and meaning is listed in `docs/operations.md` (`## Metrics`). No label
//! value comes from the network: methods outside a fixed list count as `other`, statuses by
//! class, upstream destinations as configured.

pub mod http;
pub mod kpi;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hep_codec::HepSender;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sip_location::LocationStore as _;

use crate::net::Clock;
use crate::proxy::{Proxy, Stats};

/// Prefix of every metric name.
pub const PREFIX: &str = "sip_proxy";

/// How long the endpoint thread sleeps when no connection is waiting.
const POLL: Duration = Duration::from_millis(50);

/// What the endpoint exports, read at each scrape.
#[derive(Debug)]
pub struct Exporter {
    proxy: Arc<Proxy>,
    clock: Clock,
    hep: Option<Arc<HepSender>>,
    /// The `sip_trace` database writer's counters (`--trace-db`).
    trace_db: Option<Arc<crate::storage::trace::TraceCounters>>,
    intervals: kpi::Intervals,
}

impl Exporter {
    /// An exporter of `proxy` (and of the HEP sender, when there is one). `clock` must be
    /// the one the proxy's threads use (bans are kept on its monotonic time). The KPI
    /// interval is the configuration's `metrics.kpi_interval`.
    pub fn new(proxy: Arc<Proxy>, clock: Clock, hep: Option<Arc<HepSender>>) -> Self {
        let length = Duration::from_secs(proxy.config().metrics.kpi_interval.max(1));
        Exporter {
            intervals: kpi::Intervals::new(length, clock.now().wall),
            proxy,
            clock,
            hep,
            trace_db: None,
        }
    }

    /// Exports the counters of the `sip_trace` database writer too.
    #[must_use]
    pub fn with_trace_db(mut self, counters: Arc<crate::storage::trace::TraceCounters>) -> Self {
        self.trace_db = Some(counters);
        self
    }

    /// Closes the current KPI interval if it is due at `now` (wall clock); returns whether
    /// it did.
    pub fn tick(&self, now: Duration) -> bool {
        match self.proxy.kpi() {
            Some(k) => self.intervals.tick(k, now),
            None => false,
        }
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Arc::clone(self)));
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; a collector error would leave a partial page.
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    fn encode_stats(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let st: &Stats = &self.proxy.stats;
        // `requests` and `responses` are the sums of the labelled families below.
        for ((name, help), (_, value)) in Stats::DESCRIPTIONS.iter().zip(st.snapshot()) {
            if matches!(*name, "requests" | "responses") {
                continue;
            }
            counter(enc, &format!("{PREFIX}_{name}"), help, value)?;
        }
        labelled(
            enc,
            "requests",
            "SIP requests received, by method (other: any method not listed)",
            "method",
            st.methods.iter(),
        )?;
        labelled(
            enc,
            "responses",
            "SIP responses received, by status class",
            "class",
            st.classes.iter(),
        )?;
        labelled(
            enc,
            "responses_sent",
            "SIP responses sent (forwarded or our own), by status class",
            "class",
            st.sent_classes.iter(),
        )?;
        Ok(())
    }

    fn encode_state(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let p = &self.proxy;
        let now = self.clock.now();
        let counts = p.location_counts();
        let gauges: [(&str, &str, usize); 5] = [
            ("transactions", "Live SIP transactions", p.transactions()),
            ("dialogs", "Dialogs tracked", p.dialogs()),
            (
                "registered_aors",
                "Addresses-of-record with at least one registered contact",
                counts.aors,
            ),
            (
                "registered_contacts",
                "Registered contacts (bindings), expired ones not yet collected included",
                counts.bindings,
            ),
            (
                "banned_sources",
                "Source IPs banned now",
                p.banned_sources(now.mono),
            ),
        ];
        for (name, help, v) in gauges {
            gauge(enc, &format!("{PREFIX}_{name}"), help, v)?;
        }
        let sets = p.upstream_states();
        if !sets.is_empty() {
            let name = format!("{PREFIX}_upstream_up");
            let mut m = enc.encode_descriptor(
                &name,
                "Upstream destination taking requests (1) or marked down by probes (0)",
                None,
                MetricType::Gauge,
            )?;
            for (set, dst, up) in &sets {
                let labels = [("set", set.as_str()), ("destination", dst.as_str())];
                ConstGauge::new(i64::from(*up)).encode(m.encode_family(&labels)?)?;
            }
        }
        if let Some(h) = &self.hep {
            let s = h.stats();
            let hep: [(&str, &str, u64); 3] = [
                (
                    "hep_sent",
                    "HEP packets handed to the collector's socket",
                    s.sent(),
                ),
                (
                    "hep_dropped",
                    "Captured messages not sent to the HEP collector (queue full, collector unreachable, not encodable)",
                    s.dropped(),
                ),
                (
                    "hep_errors",
                    "I/O errors of the HEP sender (each also counted as dropped)",
                    s.errors(),
                ),
            ];
            for (name, help, v) in hep {
                counter(enc, &format!("{PREFIX}_{name}"), help, v)?;
            }
        }
        if let Some(t) = &self.trace_db {
            let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let rows: [(&str, &str, u64); 4] = [
                (
                    "sip_trace_written",
                    "Messages written to the sip_trace table",
                    get(&t.written),
                ),
                (
                    "sip_trace_dropped",
                    "Messages not traced because the sip_trace writer's queue was full",
                    get(&t.dropped),
                ),
                (
                    "sip_trace_failed",
                    "Messages not traced because the sip_trace database failed (logged)",
                    get(&t.failed),
                ),
                (
                    "sip_trace_pruned",
                    "sip_trace rows deleted by the retention (age or row count)",
                    get(&t.pruned),
                ),
            ];
            for (name, help, v) in rows {
                counter(enc, &format!("{PREFIX}_{name}"), help, v)?;
            }
        }
        let name = format!("{PREFIX}_build_info");
        let mut m = enc.encode_descriptor(
            &name,
            "The running sip-proxy: version and mode (always 1)",
            None,
            MetricType::Gauge,
        )?;
        let mode = format!("{:?}", p.config().mode).to_ascii_lowercase();
        let labels = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("mode", mode.as_str()),
        ];
        ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        Ok(())
    }
}

impl Collector for Exporter {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.encode_stats(&mut enc)?;
        self.encode_state(&mut enc)?;
        if let Some(k) = self.proxy.kpi() {
            kpi::encode(&mut enc, &k.total(), self.intervals.last().as_ref())?;
        }
        Ok(())
    }
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

/// A counter family `sip_proxy_<name>_total{<label>="…"}`.
fn labelled<'a>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let name = format!("{PREFIX}_{name}");
    let mut m = enc.encode_descriptor(&name, help, None, MetricType::Counter)?;
    for (v, n) in values {
        ConstCounter::new(n).encode(m.encode_family(&[(label, v)])?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// What the metrics (and `sip-proxy ctl stats`) read from the proxy besides its counters.
impl Proxy {
    /// The call KPIs, when dialogs are tracked (`dialog.track`).
    pub fn kpi(&self) -> Option<&sip_dialog::Kpi> {
        self.local.dialogs.as_ref().map(sip_dialog::Tracker::kpi)
    }

    /// Addresses-of-record and bindings registered (zeros when the store cannot say).
    pub fn location_counts(&self) -> sip_location::Counts {
        self.local.location.counts().unwrap_or_default()
    }

    /// Source IPs banned at `now` (monotonic, the proxy's clock).
    pub fn banned_sources(&self, now: Duration) -> usize {
        self.local.bans.list(now).len()
    }

    /// Each upstream destination: set name, address, whether it takes requests (up and not
    /// disabled by an operator).
    pub fn upstream_states(&self) -> Vec<(String, String, bool)> {
        self.dispatcher
            .table()
            .sets()
            .iter()
            .flat_map(|s| {
                s.destinations
                    .iter()
                    .map(|d| (s.name.clone(), d.addr.to_string(), d.is_usable()))
            })
            .collect()
    }
}

/// The endpoint: one thread serving `GET /metrics` and closing the KPI intervals.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Binds `addr` (before the proxy starts, so that a port in use is an error at start).
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let l = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("metrics {addr}: {e}")))?;
        l.set_nonblocking(true)?;
        Ok(l)
    }

    /// Starts the thread serving `exporter` on `listener` (from [`bind`](Self::bind)).
    pub fn start(listener: TcpListener, exporter: Exporter) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let exporter = Arc::new(exporter);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&listener, &exporter, &flag))?;
        Ok(Endpoint {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread (at most one request's time, [`http::DEADLINE`]).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.halt();
    }
}

fn serve(listener: &TcpListener, exporter: &Arc<Exporter>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        exporter.tick(exporter.clock.now().wall);
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = http::answer(stream, || exporter.render()) {
                    tracing::debug!(%peer, error = %e, "metrics request not answered");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}
