//! The call KPIs of `sip-dialog` ([`Kpi`]) as metrics, over two periods: the total since
//! the start, and the last closed interval (`metrics.kpi_interval` seconds, ending on
//! multiples of it in Unix time, so that intervals line up across nodes; the first one runs
//! from the start to the first such boundary).
//!
//! Names, from [`KpiSnapshot::export`]'s figures (`attempts`, `asr_percent` …):
//!
//! | figure | total | last closed interval |
//! |---|---|---|
//! | a count | counter `sip_proxy_kpi_<figure>_total` | gauge `sip_proxy_kpi_interval_<figure>` |
//! | a ratio or mean | gauge `sip_proxy_kpi_<figure>{period="total"}` | same gauge, `{period="interval"}` |
//!
//! plus `sip_proxy_kpi_interval_seconds`, the length of the last closed interval. A ratio
//! or mean without a denominator (no attempt, no ringing, no call ended) is absent, not 0.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sip_dialog::{Kpi, KpiSnapshot, Metric, MetricKind};

use super::PREFIX;

/// When the current interval ends, and the last closed one.
#[derive(Debug)]
pub struct Intervals {
    length: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next_end: Duration,
    last: Option<KpiSnapshot>,
}

/// The first multiple of `length` after `now`.
fn boundary_after(now: Duration, length: Duration) -> Duration {
    let len = length.as_micros().max(1);
    let n = now.as_micros() / len + 1;
    Duration::from_micros(u64::try_from(n * len).unwrap_or(u64::MAX))
}

impl Intervals {
    /// Intervals of `length`, the first ending on the first multiple of it after `now`
    /// (wall clock).
    pub fn new(length: Duration, now: Duration) -> Self {
        Intervals {
            length,
            state: Mutex::new(State {
                next_end: boundary_after(now, length),
                last: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the interval of `kpi` if it ends at or before `now`; `true` when it did. An
    /// interval closed late (the thread was held up, the clock jumped) is longer, and says
    /// so in its `since` / `until`.
    pub fn tick(&self, kpi: &Kpi, now: Duration) -> bool {
        let mut s = self.lock();
        if now < s.next_end {
            return false;
        }
        s.last = Some(kpi.roll(now));
        s.next_end = boundary_after(now, self.length);
        true
    }

    /// The last closed interval (none before the first boundary).
    pub fn last(&self) -> Option<KpiSnapshot> {
        self.lock().last
    }
}

/// One figure of a snapshot, owned (`KpiSnapshot::export` lends its strings for the call).
struct Figure {
    name: String,
    help: String,
    kind: MetricKind,
    value: f64,
}

fn figures(s: &KpiSnapshot) -> Vec<Figure> {
    let mut out = Vec::with_capacity(20);
    s.export(&mut |m: &Metric<'_>| {
        out.push(Figure {
            name: m.name.to_owned(),
            help: m.help.to_owned(),
            kind: m.kind,
            value: m.value,
        });
    });
    out
}

/// Counts as `u64` (they are whole numbers below 2⁵³).
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the counts exported as f64 are whole and non-negative"
)]
fn whole(v: f64) -> u64 {
    v as u64
}

/// Encodes the total and, when one has closed, the last interval.
pub fn encode(
    enc: &mut DescriptorEncoder<'_>,
    total: &KpiSnapshot,
    interval: Option<&KpiSnapshot>,
) -> Result<(), std::fmt::Error> {
    let t = figures(total);
    let i = interval.map(figures).unwrap_or_default();
    for f in t.iter().filter(|f| f.kind == MetricKind::Counter) {
        let name = format!("{PREFIX}_kpi_{}", f.name);
        let c = ConstCounter::new(whole(f.value));
        c.encode(enc.encode_descriptor(&name, &f.help, None, MetricType::Counter)?)?;
    }
    // Ratios and means: one family per figure, a sample per period that has a value.
    let mut names: Vec<(&str, &str)> = Vec::new();
    for f in t.iter().chain(&i).filter(|f| f.kind == MetricKind::Gauge) {
        if !names.iter().any(|(n, _)| *n == f.name) {
            names.push((&f.name, &f.help));
        }
    }
    for (fig, help) in names {
        let name = format!("{PREFIX}_kpi_{fig}");
        let mut m = enc.encode_descriptor(&name, help, None, MetricType::Gauge)?;
        for (period, list) in [("total", &t), ("interval", &i)] {
            if let Some(f) = list.iter().find(|f| f.name == fig) {
                ConstGauge::new(f.value).encode(m.encode_family(&[("period", period)])?)?;
            }
        }
    }
    let Some(iv) = interval else { return Ok(()) };
    for f in i.iter().filter(|f| f.kind == MetricKind::Counter) {
        let name = format!("{PREFIX}_kpi_interval_{}", f.name);
        let help = format!("{} (last closed interval)", f.help);
        let g = ConstGauge::new(whole(f.value));
        g.encode(enc.encode_descriptor(&name, &help, None, MetricType::Gauge)?)?;
    }
    let len = iv.until.unwrap_or(iv.since).saturating_sub(iv.since);
    let name = format!("{PREFIX}_kpi_interval_seconds");
    ConstGauge::new(len.as_secs_f64()).encode(enc.encode_descriptor(
        &name,
        "Length of the last closed KPI interval",
        None,
        MetricType::Gauge,
    )?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;
    use sip_dialog::CallEvent;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn intervals_end_on_multiples_of_their_length() {
        assert_eq!(boundary_after(Duration::from_millis(61_500), S(60)), S(120));
        assert_eq!(boundary_after(S(120), S(60)), S(180));
        let kpi = Kpi::new(Duration::from_millis(61_500));
        let iv = Intervals::new(S(60), Duration::from_millis(61_500));
        kpi.record(CallEvent::Attempt);
        kpi.record(CallEvent::Final { status: 200 });
        assert!(!iv.tick(&kpi, Duration::from_millis(119_999)));
        assert_eq!(iv.last(), None, "nothing closed before the first boundary");
        assert!(iv.tick(&kpi, Duration::from_millis(120_050)));
        let first = iv.last().unwrap();
        assert_eq!(first.attempts, 1);
        assert_eq!(first.since, Duration::from_millis(61_500));
        assert_eq!(first.until, Some(Duration::from_millis(120_050)));
        kpi.record(CallEvent::Attempt);
        kpi.record(CallEvent::Final { status: 486 });
        assert!(!iv.tick(&kpi, S(179)));
        // Held up past a boundary: one longer interval, the next boundary after now.
        assert!(iv.tick(&kpi, S(250)));
        let second = iv.last().unwrap();
        assert_eq!((second.attempts, second.answered), (1, 0));
        assert_eq!(second.since, Duration::from_millis(120_050));
        assert!(!iv.tick(&kpi, Duration::from_millis(299_999)));
        assert!(iv.tick(&kpi, S(300)));
        assert_eq!(kpi.total().attempts, 2, "the total is never reset");
    }

    #[derive(Debug)]
    struct Both(KpiSnapshot, Option<KpiSnapshot>);

    impl Collector for Both {
        fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
            encode(&mut enc, &self.0, self.1.as_ref())
        }
    }

    fn text(total: KpiSnapshot, interval: Option<KpiSnapshot>) -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(Both(total, interval)));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn total_counters_and_gauges_per_period() {
        let kpi = Kpi::new(S(0));
        for status in [200, 200, 486, 407, 503] {
            kpi.record(CallEvent::Attempt);
            kpi.record(CallEvent::Final { status });
        }
        kpi.record(CallEvent::Ringing {
            post_dial_delay: Duration::from_millis(1500),
        });
        kpi.record(CallEvent::Hops { max_forwards: 68 });
        let closed = kpi.roll(S(60));
        kpi.record(CallEvent::Attempt);
        kpi.record(CallEvent::Final { status: 404 });
        let out = text(kpi.total(), Some(closed));
        let has = |line: &str| out.lines().any(|l| l == line);
        assert!(has("# TYPE sip_proxy_kpi_attempts_total counter"), "{out}");
        assert!(has("sip_proxy_kpi_attempts_total 6"), "{out}");
        assert!(has("sip_proxy_kpi_answered_total 2"), "{out}");
        assert!(has("sip_proxy_kpi_session_defects_total 1"), "{out}");
        assert!(has("# TYPE sip_proxy_kpi_asr_percent gauge"), "{out}");
        // Total: 2 answered of 6 − 1 challenged; interval: 2 of 5 − 1.
        assert!(
            has("sip_proxy_kpi_asr_percent{period=\"total\"} 40.0"),
            "{out}"
        );
        assert!(
            has("sip_proxy_kpi_asr_percent{period=\"interval\"} 50.0"),
            "{out}"
        );
        assert!(
            has("sip_proxy_kpi_pdd_seconds{period=\"interval\"} 1.5"),
            "{out}"
        );
        assert!(has("# TYPE sip_proxy_kpi_interval_attempts gauge"), "{out}");
        assert!(has("sip_proxy_kpi_interval_attempts 5"), "{out}");
        assert!(has("sip_proxy_kpi_interval_seconds 60.0"), "{out}");
        assert!(has("sip_proxy_kpi_ahr{period=\"total\"} 2.0"), "{out}");
        // No call ended: no session duration, in either period.
        assert!(!out.contains("session_duration_seconds"), "{out}");
        let once = |p: &str| out.matches(&format!("# TYPE {p} ")).count() == 1;
        assert!(once("sip_proxy_kpi_asr_percent") && once("sip_proxy_kpi_ahr"));

        // Before the first interval closes: totals only.
        let out = text(kpi.total(), None);
        assert!(out.contains("sip_proxy_kpi_attempts_total 6"));
        assert!(!out.contains("interval"), "{out}");
    }
}
