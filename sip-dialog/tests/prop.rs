//! Property tests of the tracker: random event sequences over a few calls (forks, CANCELs,
//! failures, BYEs either way, re-INVITEs, keepalive results, lifetime changes, time jumps)
//! never panic; the table stays bounded and consistent; no dialog outlives its deadline; no
//! dialog ends early; and once time passes every lifetime, the tables are empty.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use sip_dialog::{
    CreateOptions, DialogFlags, DialogHandle, MatchMode, Profile, Side, TimerEvent, Tracker,
    TrackerConfig,
};

#[derive(Debug, Clone)]
enum Ev {
    Invite(u8),
    Provisional(u8, u8),
    Final(u8, u8, u16),
    Ack(u8),
    Bye(u8, bool, bool),
    Cancel(u8),
    Reinvite(u8, bool),
    InDialogResponse(u8, u16),
    Keepalive(u8, bool, u16),
    SetLifetime(u8, u16),
    Terminate(u8),
    Advance(u32),
}

fn ev() -> impl Strategy<Value = Ev> {
    let call = 0u8..6;
    prop_oneof![
        call.clone().prop_map(Ev::Invite),
        (call.clone(), 0u8..3).prop_map(|(c, b)| Ev::Provisional(c, b)),
        (
            call.clone(),
            0u8..3,
            prop_oneof![Just(200u16), Just(486), Just(487), Just(302), Just(503)]
        )
            .prop_map(|(c, b, s)| Ev::Final(c, b, s)),
        call.clone().prop_map(Ev::Ack),
        (call.clone(), any::<bool>(), any::<bool>()).prop_map(|(c, s, k)| Ev::Bye(c, s, k)),
        call.clone().prop_map(Ev::Cancel),
        (call.clone(), any::<bool>()).prop_map(|(c, s)| Ev::Reinvite(c, s)),
        (
            call.clone(),
            prop_oneof![Just(200u16), Just(481), Just(408), Just(500)]
        )
            .prop_map(|(c, s)| Ev::InDialogResponse(c, s)),
        (
            call.clone(),
            any::<bool>(),
            prop_oneof![Just(200u16), Just(481), Just(408)]
        )
            .prop_map(|(c, s, st)| Ev::Keepalive(c, s, st)),
        (call.clone(), 1u16..200).prop_map(|(c, s)| Ev::SetLifetime(c, s)),
        call.prop_map(Ev::Terminate),
        (0u32..90_000).prop_map(Ev::Advance),
    ]
}

const MAX: usize = 4;

struct World {
    tr: Tracker,
    now: Duration,
    cseq: [u32; 6],
    handles: [Option<DialogHandle>; 6],
    cookies: [String; 6],
}

impl World {
    fn cid(i: u8) -> String {
        format!("call-{i}")
    }

    fn tag(b: u8) -> String {
        format!("b{b}")
    }

    /// Polls every deadline up to `until`, checking that nothing ends early or late.
    fn advance(&mut self, until: Duration) -> Result<(), TestCaseError> {
        let mut out = Vec::new();
        while let Some(d) = self.tr.next_deadline() {
            if d > until {
                break;
            }
            let at = d.max(self.now);
            out.clear();
            self.tr.poll(at, &mut out);
            Self::check_events(&out, at)?;
            self.now = at;
            if self.tr.next_deadline() == Some(d) {
                break;
            }
        }
        out.clear();
        self.tr.poll(until, &mut out);
        Self::check_events(&out, until)?;
        self.now = until;
        // Nothing overdue survives a poll.
        for r in self.tr.snapshot() {
            prop_assert!(
                r.timeout > until,
                "{} overdue: {:?} <= {:?}",
                r.call_id,
                r.timeout,
                until
            );
        }
        Ok(())
    }

    fn check_events(out: &[TimerEvent], at: Duration) -> Result<(), TestCaseError> {
        for e in out {
            if let TimerEvent::Expired(x) = e {
                prop_assert!(x.record.timeout <= at, "ended early");
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let st = self.tr.stats();
        prop_assert_eq!(st.dialogs, self.tr.len());
        prop_assert!(self.tr.len() <= MAX);
        prop_assert_eq!(self.tr.profile_size("all", None) as usize, self.tr.len());
        prop_assert!(st.timers <= 8 * MAX + 8);
        Ok(())
    }

    fn step(&mut self, e: &Ev) {
        let now = self.now;
        match *e {
            Ev::Invite(c) => {
                self.cseq[c as usize] += 1;
                let inv = invite(&Self::cid(c), "a1", self.cseq[c as usize], &[P1], 70);
                self.tr.on_request(&inv, now);
                let o = CreateOptions {
                    lifetime: Some(Duration::from_secs(u64::from(c) * 20 + 5)),
                    flags: if c % 2 == 0 {
                        DialogFlags::KEEPALIVE_CALLER | DialogFlags::KEEPALIVE_CALLEE
                    } else {
                        DialogFlags::NO_RESET
                    },
                    profiles: &[Profile {
                        name: "all",
                        value: Some("x"),
                        limit: None,
                    }],
                    ..CreateOptions::default()
                };
                if let Ok(created) = self.tr.create(&inv, &o, now) {
                    let h = created.handle();
                    self.handles[c as usize] = Some(h);
                    self.cookies[c as usize] = ours(&self.tr.cookie(h));
                }
            }
            Ev::Provisional(c, b) | Ev::Final(c, b, _) => {
                let status = if let Ev::Final(_, _, s) = *e { s } else { 180 };
                let cid = Self::cid(c);
                let rr = [P3, self.cookies[c as usize].as_str(), P1];
                let r = response(
                    status,
                    &cid,
                    "a1",
                    Some(&Self::tag(b)),
                    self.cseq[c as usize],
                    "INVITE",
                    &rr,
                    Some(BOB_CONTACT),
                );
                self.tr.on_response(&r, now);
            }
            Ev::Ack(c) => {
                let r = request(
                    "ACK",
                    &Self::cid(c),
                    "a1",
                    Some("b0"),
                    self.cseq[c as usize],
                    &[&self.cookies[c as usize]],
                    None,
                    69,
                );
                self.tr.on_request(&r, now);
            }
            Ev::Bye(c, callee, cookie) => {
                let route = if cookie {
                    vec![self.cookies[c as usize].as_str()]
                } else {
                    vec![]
                };
                let (f, t_) = if callee { ("b0", "a1") } else { ("a1", "b0") };
                self.cseq[c as usize] += 1;
                let r = request(
                    "BYE",
                    &Self::cid(c),
                    f,
                    Some(t_),
                    self.cseq[c as usize],
                    &route,
                    None,
                    69,
                );
                self.tr.on_request(&r, now);
            }
            Ev::Cancel(c) => {
                let r = request(
                    "CANCEL",
                    &Self::cid(c),
                    "a1",
                    None,
                    self.cseq[c as usize],
                    &[],
                    None,
                    70,
                );
                self.tr.on_request(&r, now);
            }
            Ev::Reinvite(c, callee) => {
                let (f, t_) = if callee { ("b0", "a1") } else { ("a1", "b0") };
                self.cseq[c as usize] += 1;
                let r = request(
                    "INVITE",
                    &Self::cid(c),
                    f,
                    Some(t_),
                    self.cseq[c as usize],
                    &[],
                    Some("sip:x@192.0.2.8"),
                    70,
                );
                self.tr.on_request(&r, now);
            }
            Ev::InDialogResponse(c, status) => {
                let r = response(
                    status,
                    &Self::cid(c),
                    "a1",
                    Some("b0"),
                    self.cseq[c as usize],
                    "INVITE",
                    &[],
                    Some("sip:y@192.0.2.9"),
                );
                self.tr.on_response(&r, now);
            }
            Ev::Keepalive(c, callee, status) => {
                if let Some(h) = self.handles[c as usize] {
                    let side = if callee { Side::Callee } else { Side::Caller };
                    self.tr.keepalive_result(h, side, status, now);
                }
            }
            Ev::SetLifetime(c, secs) => {
                if let Some(h) = self.handles[c as usize] {
                    self.tr
                        .set_lifetime(h, Duration::from_secs(u64::from(secs)), now);
                }
            }
            Ev::Terminate(c) => {
                if let Some(h) = self.handles[c as usize] {
                    self.tr.terminate(h, now);
                }
            }
            Ev::Advance(_) => {}
        }
    }
}

fn run(events: &[Ev], mode: MatchMode) -> Result<(), TestCaseError> {
    let mut w = World {
        tr: Tracker::new(
            TrackerConfig {
                max_dialogs: MAX,
                shards: 2,
                setup_timeout: Duration::from_secs(30),
                cancel_grace: Duration::from_secs(5),
                keepalive_interval: Some(Duration::from_secs(10)),
                match_mode: mode,
                record_changes: true,
                ..TrackerConfig::default()
            },
            SEEDS,
            t(0.0),
        ),
        now: t(0.0),
        cseq: [0; 6],
        handles: [None; 6],
        cookies: Default::default(),
    };
    for e in events {
        if let Ev::Advance(ms) = *e {
            let until = w.now + Duration::from_millis(u64::from(ms));
            w.advance(until)?;
        } else {
            w.step(e);
        }
        w.check()?;
    }
    // Every lifetime here is at most 200 s; setup 30 s; keepalive grace 10 s.
    let end = w.now + Duration::from_secs(400);
    w.advance(end)?;
    let st = w.tr.stats();
    prop_assert!(w.tr.is_empty(), "left: {:?}", w.tr.snapshot());
    prop_assert_eq!((st.dialogs, st.timers, st.profile_entries), (0, 0, 0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_calls_never_panic_and_always_end(events in proptest::collection::vec(ev(), 0..120)) {
        run(&events, MatchMode::DidFallback)?;
    }

    #[test]
    fn the_same_with_cookie_only_and_sip_only_matching(
        events in proptest::collection::vec(ev(), 0..60),
        did_only in any::<bool>(),
    ) {
        run(&events, if did_only { MatchMode::DidOnly } else { MatchMode::SipOnly })?;
    }
}

/// A header value from a small alphabet of what SIP values contain, so that the generated
/// messages often parse and reach the tracker's deeper paths.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<sip:a@h>".to_string()),
        Just("<sip:p.example.com;lr;did=0000000000000001>, <sip:q;lr>".to_string()),
        proptest::string::string_regex("<sip:[a-z0-9.;=@:%-]{0,30}>").unwrap(),
        proptest::string::string_regex("[<>;=@:a-z0-9. \"%?,-]{0,40}").unwrap(),
    ]
}

proptest! {
    /// Whatever a peer sends, the tracker neither panics nor keeps more than its bounds.
    #[test]
    fn arbitrary_messages_never_panic(
        msgs in proptest::collection::vec(
            (any::<bool>(), prop_oneof![Just("INVITE"), Just("ACK"), Just("BYE"), Just("CANCEL"), Just("UPDATE")],
             100u16..700, value(), value(), value(), value(), value(), 0u32..5, any::<bool>()),
            1..40,
        )
    ) {
        let tr = Tracker::new(
            TrackerConfig { max_dialogs: 3, record_changes: true, ..TrackerConfig::default() },
            SEEDS,
            t(0.0),
        );
        for (i, (is_request, method, status, from, to, route, rr, contact, cseq, tagged)) in msgs.iter().enumerate() {
            let tag = if *tagged { ";tag=x1" } else { "" };
            let start = if *is_request {
                format!("{method} sip:b@h SIP/2.0\r\n")
            } else {
                format!("SIP/2.0 {status} R\r\n")
            };
            let raw = format!(
                "{start}Via: SIP/2.0/UDP h;branch=z9hG4bK{i}\r\nMax-Forwards: 70\r\n\
                 From: {from};tag=a1\r\nTo: {to}{tag}\r\nCall-ID: c{cseq}\r\nCSeq: {cseq} {method}\r\n\
                 Route: {route}\r\nRecord-Route: {rr}\r\nContact: {contact}\r\n\r\n"
            );
            let Ok(m) = sip_parser::Message::parse(raw.into_bytes().into()) else { continue };
            let now = t(f64::from(u32::try_from(i).unwrap_or(0)));
            if *is_request {
                tr.on_request(&m, now);
                let _ = tr.create(&m, &CreateOptions::default(), now);
            } else {
                tr.on_response(&m, now);
            }
            prop_assert!(tr.len() <= 3);

            for r in tr.snapshot() {
                let _ = r.byes();
            }
        }
        let mut out = Vec::new();
        tr.poll(t(1e6), &mut out);
        prop_assert!(tr.is_empty());
    }
}
