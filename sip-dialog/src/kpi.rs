//! Call KPIs: the quality figures HOMER shows for a SIP network (ASR, NER, SD, ISA, AHR, PDD,
//! average session duration), and their RFC 6076 counterparts, counted from dialog events
//! per interval and in total, lock-free ([`Kpi`]), read as [`KpiSnapshot`]s and exported
//! through a [`KpiSink`] (the proxy's Prometheus endpoint).
//!
//! | figure | computed here (HOMER) | RFC 6076 counterpart ([`KpiSnapshot`] method) |
//! |---|---|---|
//! | ASR, answer-seizure ratio | 2xx ÷ (INVITEs − 401/407 − 3xx) × 100 | SER, Session Establishment Ratio: 200 ÷ (INVITEs − 3xx) × 100, challenges not subtracted ([`ser`](KpiSnapshot::ser)) |
//! | NER, network effectiveness ratio | (2xx + 486 + 487 + 603) ÷ (INVITEs − 401/407 − 3xx) × 100 | SEER: (200 + 480 + 486 + 600 + 603) ÷ (INVITEs − 3xx) × 100 ([`seer`](KpiSnapshot::seer)) |
//! | SD, session defects | count of 500 + 503 + 504 | none |
//! | ISA, ineffective session attempts | count of 408 + 500 + 503 | ISA %: (408 + 500 + 503 + 504) ÷ INVITEs × 100 ([`isa_percent`](KpiSnapshot::isa_percent)) |
//! | AHR, average hops per request | mean of 70 − Max-Forwards over the requests seen (0 when Max-Forwards > 70) | none (Max-Forwards only) |
//! | PDD, post-dial delay | mean time from the INVITE to its first 18x | SRD, Session Request Delay, which also ends at a 2xx when no 18x came (not counted here) |
//! | average session duration (ACD) | mean time from 2xx to the end of the answered calls that ended | SDT, Session Duration Time (the same for successful sessions) |
//!
//! "INVITEs" are initial INVITEs (attempts): each dialog the tracker creates, plus those the
//! proxy answers itself without tracking, which it reports with [`Kpi::record`]. The final
//! status of an attempt is its first final response. A ratio whose denominator is zero is
//! `None`.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

/// One fact about a call, as the tracker (or the proxy, for calls it answers itself)
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    /// An initial INVITE (a spiral is not a new attempt).
    Attempt,
    /// A request carrying this Max-Forwards value.
    Hops {
        /// Max-Forwards as received.
        max_forwards: u8,
    },
    /// The first 18x of an attempt, this long after its INVITE.
    Ringing {
        /// INVITE → 18x.
        post_dial_delay: Duration,
    },
    /// The first final response of an attempt.
    Final {
        /// Its status.
        status: u16,
    },
    /// An answered call ended after this long (2xx → end).
    SessionEnded {
        /// Its duration.
        duration: Duration,
    },
}

/// Statuses counted one by one.
const CODES: [u16; 12] = [401, 407, 408, 480, 486, 487, 500, 503, 504, 600, 603, 200];

#[derive(Debug, Clone, Copy)]
#[repr(usize)]
enum C {
    Attempts,
    Answered,
    Redirects,
    Finals,
    Ringing,
    PddMicros,
    Sessions,
    SessionMicros,
    HopRequests,
    Hops,
    Code0,
}

const N: usize = C::Code0 as usize + CODES.len();

#[derive(Debug)]
struct Counters([AtomicU64; N]);

impl Counters {
    fn new() -> Self {
        Counters(core::array::from_fn(|_| AtomicU64::new(0)))
    }
    fn add(&self, i: usize, v: u64) {
        self.0[i].fetch_add(v, Ordering::Relaxed);
    }
    fn read(&self, take: bool) -> [u64; N] {
        core::array::from_fn(|i| {
            if take {
                self.0[i].swap(0, Ordering::Relaxed)
            } else {
                self.0[i].load(Ordering::Relaxed)
            }
        })
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The KPI counters, shared by reference by every thread (relaxed atomics, no lock): each
/// event is counted in the current interval and in the total. [`roll`](Self::roll) closes
/// the interval.
///
/// ```
/// use std::time::Duration;
/// use sip_dialog::{CallEvent, Kpi};
/// let kpi = Kpi::new(Duration::ZERO);
/// for status in [200, 200, 486, 407, 503] {
///     kpi.record(CallEvent::Attempt);
///     kpi.record(CallEvent::Final { status });
/// }
/// let t = kpi.total();
/// assert_eq!(t.asr(), Some(50.0)); // 2 answered of 5 − 1 challenged
/// assert_eq!(t.ner(), Some(75.0)); // (2 + 1 busy) of 4
/// assert_eq!((t.sd(), t.isa()), (1, 1)); // the 503
/// ```
#[derive(Debug)]
pub struct Kpi {
    interval: Counters,
    total: Counters,
    interval_start: AtomicU64,
    since: Duration,
}

impl Kpi {
    /// Counters starting at `now` (wall clock, as everywhere in this crate).
    pub fn new(now: Duration) -> Self {
        Kpi {
            interval: Counters::new(),
            total: Counters::new(),
            interval_start: AtomicU64::new(micros(now)),
            since: now,
        }
    }

    fn add(&self, c: usize, v: u64) {
        self.interval.add(c, v);
        self.total.add(c, v);
    }

    /// Counts one event.
    pub fn record(&self, event: CallEvent) {
        match event {
            CallEvent::Attempt => self.add(C::Attempts as usize, 1),
            CallEvent::Hops { max_forwards } => {
                self.add(C::HopRequests as usize, 1);
                self.add(
                    C::Hops as usize,
                    u64::from(70u8.saturating_sub(max_forwards)),
                );
            }
            CallEvent::Ringing { post_dial_delay } => {
                self.add(C::Ringing as usize, 1);
                self.add(C::PddMicros as usize, micros(post_dial_delay));
            }
            CallEvent::Final { status } => {
                self.add(C::Finals as usize, 1);
                match status {
                    200..=299 => self.add(C::Answered as usize, 1),
                    300..=399 => self.add(C::Redirects as usize, 1),
                    _ => {}
                }
                if let Some(i) = CODES.iter().position(|&c| c == status) {
                    self.add(C::Code0 as usize + i, 1);
                }
            }
            CallEvent::SessionEnded { duration } => {
                self.add(C::Sessions as usize, 1);
                self.add(C::SessionMicros as usize, micros(duration));
            }
        }
    }

    /// Everything counted since [`new`](Self::new).
    pub fn total(&self) -> KpiSnapshot {
        KpiSnapshot::from_raw(&self.total.read(false), self.since, None)
    }

    /// The current interval so far (not reset).
    pub fn interval(&self) -> KpiSnapshot {
        let start = Duration::from_micros(self.interval_start.load(Ordering::Relaxed));
        KpiSnapshot::from_raw(&self.interval.read(false), start, None)
    }

    /// Closes the current interval at `now`: returns its figures and starts the next one.
    /// A count made while this runs lands in one interval or the next, never in both or
    /// neither (an event that adds to several counters, a 2xx final for instance, may have
    /// them split between the two intervals; the totals are exact).
    pub fn roll(&self, now: Duration) -> KpiSnapshot {
        let start = Duration::from_micros(self.interval_start.swap(micros(now), Ordering::Relaxed));
        KpiSnapshot::from_raw(&self.interval.read(true), start, Some(now))
    }
}

/// KPI figures over a period: raw counts and the ratios computed from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KpiSnapshot {
    /// Start of the period (wall clock).
    pub since: Duration,
    /// End of the period, for a closed interval ([`Kpi::roll`]).
    pub until: Option<Duration>,
    /// Initial INVITEs.
    pub attempts: u64,
    /// Attempts answered with a 2xx.
    pub answered: u64,
    /// Attempts answered with a 3xx.
    pub redirects: u64,
    /// Attempts with a final response.
    pub finals: u64,
    /// Count of each status of [`KpiSnapshot::status`]'s list.
    codes: [u64; CODES.len()],
    /// Attempts that got an 18x.
    pub ringing: u64,
    /// Sum of the post-dial delays.
    pub post_dial_delay_sum: Duration,
    /// Answered calls that ended.
    pub sessions: u64,
    /// Sum of their durations.
    pub session_time: Duration,
    /// Requests whose Max-Forwards was seen.
    pub hop_requests: u64,
    /// Sum of 70 − Max-Forwards over them.
    pub hops: u64,
}

/// A count as a float: exact up to 2⁵³, far beyond any call count.
#[allow(clippy::cast_precision_loss)]
fn float(n: u64) -> f64 {
    n as f64
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| float(num) / float(den) * 100.0)
}

fn mean(sum: Duration, n: u64) -> Option<Duration> {
    (n > 0).then(|| {
        Duration::from_nanos(u64::try_from(sum.as_nanos() / u128::from(n)).unwrap_or(u64::MAX))
    })
}

impl KpiSnapshot {
    fn from_raw(raw: &[u64; N], since: Duration, until: Option<Duration>) -> Self {
        KpiSnapshot {
            since,
            until,
            attempts: raw[C::Attempts as usize],
            answered: raw[C::Answered as usize],
            redirects: raw[C::Redirects as usize],
            finals: raw[C::Finals as usize],
            codes: core::array::from_fn(|i| raw[C::Code0 as usize + i]),
            ringing: raw[C::Ringing as usize],
            post_dial_delay_sum: Duration::from_micros(raw[C::PddMicros as usize]),
            sessions: raw[C::Sessions as usize],
            session_time: Duration::from_micros(raw[C::SessionMicros as usize]),
            hop_requests: raw[C::HopRequests as usize],
            hops: raw[C::Hops as usize],
        }
    }

    /// How many attempts ended with `status`, for 200, 401, 407, 408, 480, 486, 487, 500,
    /// 503, 504, 600 and 603 (`None` for a status not counted one by one).
    pub fn status(&self, status: u16) -> Option<u64> {
        CODES
            .iter()
            .position(|&c| c == status)
            .map(|i| self.codes[i])
    }

    fn code(&self, status: u16) -> u64 {
        self.status(status).unwrap_or(0)
    }

    /// Authentication challenges (401 + 407).
    pub fn challenges(&self) -> u64 {
        self.code(401) + self.code(407)
    }

    /// INVITEs − challenges − 3xx: the denominator of ASR and NER.
    fn seizures(&self) -> u64 {
        self.attempts
            .saturating_sub(self.challenges())
            .saturating_sub(self.redirects)
    }

    /// ASR, answer-seizure ratio (HOMER): 2xx ÷ (INVITEs − 401/407 − 3xx) × 100.
    pub fn asr(&self) -> Option<f64> {
        ratio(self.answered, self.seizures())
    }

    /// NER, network effectiveness ratio (HOMER): (2xx + 486 + 487 + 603) ÷ (INVITEs −
    /// 401/407 − 3xx) × 100.
    pub fn ner(&self) -> Option<f64> {
        ratio(
            self.answered + self.code(486) + self.code(487) + self.code(603),
            self.seizures(),
        )
    }

    /// SD, session defects (HOMER): count of 500, 503 and 504.
    pub fn sd(&self) -> u64 {
        self.code(500) + self.code(503) + self.code(504)
    }

    /// ISA, ineffective session attempts (HOMER): count of 408, 500 and 503.
    pub fn isa(&self) -> u64 {
        self.code(408) + self.code(500) + self.code(503)
    }

    /// AHR, average hops per request: the mean of 70 − Max-Forwards.
    pub fn ahr(&self) -> Option<f64> {
        (self.hop_requests > 0).then(|| float(self.hops) / float(self.hop_requests))
    }

    /// PDD, post-dial delay: the mean time from an INVITE to its first 18x.
    pub fn pdd(&self) -> Option<Duration> {
        mean(self.post_dial_delay_sum, self.ringing)
    }

    /// Average session duration (ACD) of the answered calls that ended.
    pub fn average_session_duration(&self) -> Option<Duration> {
        mean(self.session_time, self.sessions)
    }

    /// RFC 6076 SER: 200 ÷ (INVITEs − 3xx) × 100 (challenges not subtracted).
    pub fn ser(&self) -> Option<f64> {
        ratio(self.code(200), self.attempts.saturating_sub(self.redirects))
    }

    /// RFC 6076 SEER: (200 + 480 + 486 + 600 + 603) ÷ (INVITEs − 3xx) × 100.
    pub fn seer(&self) -> Option<f64> {
        let n = [200, 480, 486, 600, 603]
            .iter()
            .map(|&c| self.code(c))
            .sum();
        ratio(n, self.attempts.saturating_sub(self.redirects))
    }

    /// RFC 6076 ISA as a percentage: (408 + 500 + 503 + 504) ÷ INVITEs × 100.
    pub fn isa_percent(&self) -> Option<f64> {
        ratio(self.isa() + self.code(504), self.attempts)
    }

    /// Hands every figure to `sink`, counters then gauges; `None` ratios are skipped.
    pub fn export(&self, sink: &mut (impl KpiSink + ?Sized)) {
        use MetricKind::{Counter, Gauge};
        let secs = |d: Duration| d.as_secs_f64();
        let counters: [(&'static str, &'static str, u64); 9] = [
            ("attempts", "Initial INVITEs", self.attempts),
            ("answered", "Attempts answered with a 2xx", self.answered),
            ("redirects", "Attempts answered with a 3xx", self.redirects),
            (
                "challenges",
                "Attempts answered with 401 or 407",
                self.challenges(),
            ),
            (
                "session_defects",
                "SD: attempts answered with 500, 503 or 504",
                self.sd(),
            ),
            (
                "ineffective_attempts",
                "ISA: attempts answered with 408, 500 or 503",
                self.isa(),
            ),
            ("ringing", "Attempts that got an 18x", self.ringing),
            ("sessions_ended", "Answered calls that ended", self.sessions),
            (
                "hop_requests",
                "Requests whose Max-Forwards was seen",
                self.hop_requests,
            ),
        ];
        for (name, help, v) in counters {
            sink.metric(&Metric {
                name,
                help,
                kind: Counter,
                value: float(v),
            });
        }
        let gauges: [(&'static str, &'static str, Option<f64>); 8] = [
            (
                "asr_percent",
                "ASR: 2xx / (INVITEs - 401/407 - 3xx) x 100",
                self.asr(),
            ),
            (
                "ner_percent",
                "NER: (2xx+486+487+603) / (INVITEs - 401/407 - 3xx) x 100",
                self.ner(),
            ),
            (
                "ser_percent",
                "RFC 6076 SER: 200 / (INVITEs - 3xx) x 100",
                self.ser(),
            ),
            (
                "seer_percent",
                "RFC 6076 SEER: (200+480+486+600+603) / (INVITEs - 3xx) x 100",
                self.seer(),
            ),
            (
                "isa_percent",
                "RFC 6076 ISA: (408+500+503+504) / INVITEs x 100",
                self.isa_percent(),
            ),
            (
                "ahr",
                "AHR: mean of 70 - Max-Forwards per request",
                self.ahr(),
            ),
            (
                "pdd_seconds",
                "Mean post-dial delay, INVITE to first 18x",
                self.pdd().map(secs),
            ),
            (
                "session_duration_seconds",
                "Mean duration of the answered calls that ended",
                self.average_session_duration().map(secs),
            ),
        ];
        for (name, help, v) in gauges {
            if let Some(value) = v {
                sink.metric(&Metric {
                    name,
                    help,
                    kind: Gauge,
                    value,
                });
            }
        }
    }
}

/// Counter (only grows within the period) or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A count.
    Counter,
    /// A ratio or mean.
    Gauge,
}

/// One figure handed to a [`KpiSink`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// Name, `snake_case` without prefix (`asr_percent`); the exporter adds its own prefix
    /// and the period label.
    pub name: &'a str,
    /// One-line description.
    pub help: &'a str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Value.
    pub value: f64,
}

/// Where [`KpiSnapshot::export`] writes: the proxy's Prometheus exporter, a log line, a test.
pub trait KpiSink {
    /// One figure.
    fn metric(&mut self, metric: &Metric<'_>);
}

impl<F: FnMut(&Metric<'_>)> KpiSink for F {
    fn metric(&mut self, metric: &Metric<'_>) {
        self(metric);
    }
}
