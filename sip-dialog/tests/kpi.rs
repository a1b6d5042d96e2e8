//! KPI arithmetic on a scripted call mix whose answers are known, run through the tracker
//! (and through `Kpi::record` for the calls the proxy answers itself), per interval and in
//! total, and the export.

// The scripted figures are exact in binary floating point (or computed by the same
// operations as the expected value), so exact comparison is what is meant.
#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use sip_dialog::{CallEvent, CreateOptions, MetricKind, Tracker, TrackerConfig};

/// One scripted call: its final status, when its 18x came (seconds after the INVITE), how
/// long it lasted once answered, and the Max-Forwards its requests carried.
struct Script {
    status: u16,
    ringing_after: Option<f64>,
    talk: f64,
    max_forwards: u8,
}

fn play(tr: &Tracker, n: usize, s: &Script, start: f64) {
    let cid = format!("k{n}");
    let inv = invite(&cid, "a1", 1, &[], s.max_forwards);
    tr.on_request(&inv, t(start));
    tr.create(&inv, &CreateOptions::default(), t(start))
        .unwrap();
    let mut at = start;
    if let Some(r) = s.ringing_after {
        at = start + r;
        let ringing = response(
            180,
            &cid,
            "a1",
            Some("b1"),
            1,
            "INVITE",
            &[],
            Some(BOB_CONTACT),
        );
        tr.on_response(&ringing, t(at));
    }
    let fin = response(
        s.status,
        &cid,
        "a1",
        Some("b1"),
        1,
        "INVITE",
        &[],
        Some(BOB_CONTACT),
    );
    at += 0.5;
    tr.on_response(&fin, t(at));
    if (200..300).contains(&s.status) {
        let ack = request("ACK", &cid, "a1", Some("b1"), 1, &[], None, s.max_forwards);
        tr.on_request(&ack, t(at));
        let bye = request("BYE", &cid, "a1", Some("b1"), 2, &[], None, s.max_forwards);
        tr.on_request(&bye, t(at + s.talk));
    }
}

#[test]
fn a_scripted_call_mix_gives_the_known_figures() {
    let tr = Tracker::new(TrackerConfig::default(), SEEDS, t(0.0));
    let answered = |talk, mf| Script {
        status: 200,
        ringing_after: Some(2.0),
        talk,
        max_forwards: mf,
    };
    let failed = |status, ringing_after| Script {
        status,
        ringing_after,
        talk: 0.0,
        max_forwards: 70,
    };
    // First interval: 8 answered calls of 60..=480 s (mean 270 s), 2 busy that rang after
    // 4 s, a cancelled call, a declined one, 3 challenges, a redirect.
    let mut first = Vec::new();
    for i in 1..=8u8 {
        first.push(answered(60.0 * f64::from(i), 68));
    }
    first.push(failed(486, Some(4.0)));
    first.push(failed(486, Some(4.0)));
    first.push(failed(487, None));
    first.push(failed(603, None));
    first.push(failed(407, None));
    first.push(failed(407, None));
    first.push(failed(401, None));
    first.push(failed(302, None));
    // Second interval: the failures of the network.
    let second = [
        failed(408, None),
        failed(500, None),
        failed(503, None),
        failed(504, None),
    ];

    for (n, s) in first.iter().enumerate() {
        play(&tr, n, s, n as f64 * 1000.0);
    }
    let i1 = tr.kpi().roll(t(20_000.0));
    for (n, s) in second.iter().enumerate() {
        play(&tr, 100 + n, s, 20_000.0 + n as f64 * 10.0);
    }
    let total = tr.kpi().total();
    let i2 = tr.kpi().interval();
    assert!(tr.is_empty());

    // Interval 1: 16 attempts, 3 challenges, 1 redirect → 12 seizures.
    assert_eq!(
        (i1.attempts, i1.answered, i1.challenges(), i1.redirects),
        (16, 8, 3, 1)
    );
    assert_eq!((i1.since, i1.until), (t(0.0), Some(t(20_000.0))));
    assert_eq!(i1.asr(), Some(8.0 / 12.0 * 100.0));
    assert_eq!(i1.ner(), Some((8.0 + 2.0 + 1.0 + 1.0) / 12.0 * 100.0));
    assert_eq!((i1.sd(), i1.isa()), (0, 0));
    // PDD: 8 calls at 2 s, 2 at 4 s.
    assert_eq!(i1.ringing, 10);
    assert_eq!(i1.pdd(), Some(Duration::from_millis(2400)));
    assert_eq!(
        i1.average_session_duration(),
        Some(Duration::from_secs(270))
    );
    // AHR: 8 answered calls × 3 requests at Max-Forwards 68 (2 hops), 8 failed INVITEs at 70.
    assert_eq!((i1.hop_requests, i1.hops), (32, 48));
    assert_eq!(i1.ahr(), Some(1.5));

    // Interval 2: the network's failures.
    assert_eq!((i2.attempts, i2.answered), (4, 0));
    assert_eq!((i2.sd(), i2.isa()), (3, 3)); // 500+503+504; 408+500+503
    assert_eq!(i2.asr(), Some(0.0));
    assert_eq!(i2.pdd(), None);
    assert_eq!(i2.average_session_duration(), None);

    // Total: 20 attempts, 16 seizures.
    assert_eq!(total.attempts, 20);
    assert_eq!(total.asr(), Some(50.0));
    assert_eq!(total.ner(), Some(75.0));
    assert_eq!((total.sd(), total.isa()), (3, 3));
    // RFC 6076: SER 8 / (20 − 1); SEER (8 + 2 + 1) / 19; ISA% 4 / 20.
    assert_eq!(total.ser(), Some(8.0 / 19.0 * 100.0));
    assert_eq!(total.seer(), Some(11.0 / 19.0 * 100.0));
    assert_eq!(total.isa_percent(), Some(20.0));
    assert_eq!(total.status(503), Some(1));
    assert_eq!(total.status(499), None);
    assert_eq!(total.finals, 20);

    // Export: every counter, and the gauges that have a value.
    let mut seen = BTreeMap::new();
    total.export(&mut |m: &sip_dialog::Metric<'_>| {
        seen.insert(m.name.to_string(), (m.kind, m.value));
    });
    assert_eq!(seen["attempts"], (MetricKind::Counter, 20.0));
    assert_eq!(seen["asr_percent"], (MetricKind::Gauge, 50.0));
    assert_eq!(seen["session_defects"].1, 3.0);
    assert_eq!(seen["pdd_seconds"].1, 2.4);
    let mut empty = 0;
    sip_dialog::KpiSnapshot::default().export(&mut |_: &sip_dialog::Metric<'_>| empty += 1);
    assert_eq!(empty, 9); // counters only: no ratio without a denominator
}

#[test]
fn calls_the_proxy_answers_itself_are_recorded_directly() {
    let tr = Tracker::new(TrackerConfig::default(), SEEDS, t(0.0));
    // The proxy challenges an INVITE itself (never tracked), then tracks the retry.
    tr.kpi().record(CallEvent::Attempt);
    tr.kpi().record(CallEvent::Final { status: 407 });
    play(
        &tr,
        0,
        &Script {
            status: 200,
            ringing_after: None,
            talk: 30.0,
            max_forwards: 70,
        },
        1.0,
    );
    let k = tr.kpi().total();
    assert_eq!((k.attempts, k.challenges(), k.answered), (2, 1, 1));
    assert_eq!(k.asr(), Some(100.0));
    assert_eq!(k.ser(), Some(50.0)); // RFC 6076 does not forgive the challenge
}
