//! Proxy-side dialog tracking driven with virtual (wall-clock) time: the state machine of
//! Kamailio's `dialog` module, matching by cookie and by Call-ID + tags, forking, CANCEL,
//! lifetimes and their BYEs, keepalives, profiles and limits.

mod common;

use std::time::Duration;

use common::*;
use sip_dialog::{
    Change, CreateOptions, Created, DialogFlags, DialogState, Direction, EndReason, MatchMode,
    Outcome, Profile, Side, TimerEvent, TrackError, Tracked, Tracker, TrackerConfig,
};
use sip_parser::Message;

fn tracker(config: TrackerConfig) -> Tracker {
    Tracker::new(config, SEEDS, t(0.0))
}

fn tracked(o: Outcome) -> Tracked {
    match o {
        Outcome::Tracked(t) => t,
        Outcome::NotFound => panic!("not tracked"),
    }
}

/// Polls every deadline up to `until` (as a timer thread would) and returns the events.
fn run_until(tr: &Tracker, until: Duration) -> Vec<TimerEvent> {
    let mut out = Vec::new();
    while let Some(d) = tr.next_deadline() {
        if d > until {
            break;
        }
        let before = out.len();
        tr.poll(d, &mut out);
        if out.len() == before && tr.next_deadline() == Some(d) {
            break;
        }
    }
    tr.poll(until, &mut out);
    out
}

struct Call {
    cid: String,
    handle: sip_dialog::DialogHandle,
    rr_ours: String,
}

const SOCK_A: &[u8] = b"udp:10.0.0.1:5060";
const SOCK_B: &[u8] = b"udp:192.0.2.1:5060";

/// INVITE → 180 → 200 → ACK through us, with p1 and p3 record-routing on each side.
fn answered(tr: &Tracker, cid: &str, opts: &CreateOptions<'_>, at: f64) -> Call {
    let inv = invite(cid, "a1", 10, &[P1], 69);
    assert_eq!(tr.on_request(&inv, t(at)), Outcome::NotFound);
    let handle = tr.create(&inv, opts, t(at)).unwrap().handle();
    let rr_ours = ours(&tr.cookie(handle));
    let rr = [P3, rr_ours.as_str(), P1];
    let ringing = response(
        180,
        cid,
        "a1",
        Some("b1"),
        10,
        "INVITE",
        &rr,
        Some(BOB_CONTACT),
    );
    assert_eq!(
        tracked(tr.on_response(&ringing, t(at + 1.0))).state,
        DialogState::Early
    );
    let ok = response(
        200,
        cid,
        "a1",
        Some("b1"),
        10,
        "INVITE",
        &rr,
        Some(BOB_CONTACT),
    );
    let o = tracked(tr.on_response(&ok, t(at + 2.0)));
    assert_eq!(o.state, DialogState::ConfirmedNotAcked);
    let ack = request("ACK", cid, "a1", Some("b1"), 10, &[&rr_ours, P3], None, 69);
    assert_eq!(
        tracked(tr.on_request(&ack, t(at + 2.1))).state,
        DialogState::Confirmed
    );
    Call {
        cid: cid.into(),
        handle,
        rr_ours,
    }
}

fn opts() -> CreateOptions<'static> {
    CreateOptions {
        caller_socket: SOCK_A,
        callee_socket: SOCK_B,
        ..CreateOptions::default()
    }
}

#[test]
fn a_call_goes_through_every_state_and_leaves_nothing_behind() {
    let tr = tracker(TrackerConfig {
        record_changes: true,
        ..TrackerConfig::default()
    });
    let inv = invite("c1", "a1", 10, &[P1], 69);
    assert_eq!(tr.on_request(&inv, t(0.0)), Outcome::NotFound);
    let Created::New(h) = tr.create(&inv, &opts(), t(0.0)).unwrap() else {
        panic!("new dialog expected")
    };
    let rec = tr.get(h).unwrap();
    assert_eq!(rec.state, DialogState::Unconfirmed);
    assert_eq!(&*rec.caller_contact, ALICE_CONTACT);
    assert_eq!(rec.caller_route_set.len(), 1);
    assert_eq!(&*rec.request_uri, "sip:bob@biloxi.example.com");
    let rr_ours = ours(&tr.cookie(h));
    let rr = [P3, rr_ours.as_str(), P1];

    // 100 Trying is no dialog event; 180 makes the dialog early, nothing written yet.
    let trying = response(100, "c1", "a1", None, 10, "INVITE", &[], None);
    assert_eq!(tr.on_response(&trying, t(0.1)), Outcome::NotFound);
    let ringing = response(
        180,
        "c1",
        "a1",
        Some("b1"),
        10,
        "INVITE",
        &rr,
        Some(BOB_CONTACT),
    );
    let o = tracked(tr.on_response(&ringing, t(1.5)));
    assert_eq!((o.state, o.change), (DialogState::Early, None));

    // 200: confirmed, the callee's side filled in, the first write.
    let ok = response(
        200,
        "c1",
        "a1",
        Some("b1"),
        10,
        "INVITE",
        &rr,
        Some(BOB_CONTACT),
    );
    let o = tracked(tr.on_response(&ok, t(3.0)));
    assert_eq!(o.state, DialogState::ConfirmedNotAcked);
    let Some(Change::Insert(rec)) = o.change else {
        panic!("insert expected")
    };
    assert_eq!(&*rec.to_tag, "b1");
    assert_eq!(&*rec.callee_contact, BOB_CONTACT);
    assert_eq!(rec.callee_route_set, [P3.into()]);
    assert_eq!(rec.caller_route_set, [P1.into()]);
    assert_eq!(rec.start_time, t(3.0));
    assert_eq!(rec.timeout, t(3.0) + Duration::from_secs(43_200));

    // ACK (with our cookie in its Route): Confirmed+ACKed.
    let ack = request("ACK", "c1", "a1", Some("b1"), 10, &[&rr_ours, P3], None, 69);
    let o = tracked(tr.on_request(&ack, t(3.1)));
    assert_eq!(
        (o.state, o.direction),
        (DialogState::Confirmed, Direction::Downstream)
    );
    assert!(matches!(o.change, Some(Change::Update(_))));

    // A re-INVITE from Bob (upstream) with a new Contact: his CSeq and Contact tracked.
    let reinv = request(
        "INVITE",
        "c1",
        "b1",
        Some("a1"),
        500,
        &[&rr_ours, P1],
        Some("sip:bob@192.0.2.5"),
        69,
    );
    let o = tracked(tr.on_request(&reinv, t(30.0)));
    assert_eq!(o.direction, Direction::Upstream);
    let rec = tr.get(h).unwrap();
    assert_eq!(
        (rec.callee_cseq, &*rec.callee_contact),
        (500, "sip:bob@192.0.2.5")
    );
    assert_eq!(rec.caller_cseq, 10);

    // Alice's BYE ends it.
    let bye = request("BYE", "c1", "a1", Some("b1"), 11, &[&rr_ours, P3], None, 69);
    let o = tracked(tr.on_request(&bye, t(63.0)));
    assert_eq!(o.state, DialogState::Terminated);
    let ended = o.ended.unwrap();
    assert_eq!(ended.reason, EndReason::Bye { by: Side::Caller });
    assert_eq!(ended.record.caller_cseq, 11);
    assert!(matches!(o.change, Some(Change::Remove { .. })));

    assert!(tr.is_empty());
    let st = tr.stats();
    assert_eq!((st.dialogs, st.timers, st.profile_entries), (0, 0, 0));
    let k = tr.kpi().total();
    assert_eq!((k.attempts, k.answered, k.sessions), (1, 1, 1));
    assert_eq!(k.session_time, Duration::from_secs(60));
    assert_eq!(k.pdd(), Some(Duration::from_millis(1500)));
    // Every request counted its hops: INVITE, ACK, re-INVITE, BYE at Max-Forwards 69.
    assert_eq!((k.hop_requests, k.ahr()), (4, Some(1.0)));
}

#[test]
fn in_dialog_requests_match_by_cookie_or_by_call_id_and_tags_per_match_mode() {
    for mode in [
        MatchMode::DidOnly,
        MatchMode::DidFallback,
        MatchMode::SipOnly,
    ] {
        let tr = tracker(TrackerConfig {
            match_mode: mode,
            ..TrackerConfig::default()
        });
        let c = answered(&tr, "m1", &opts(), 0.0);
        // Without the cookie (e.g. our Route already popped, or a client stripping it).
        let plain = request("INFO", "m1", "a1", Some("b1"), 11, &[P3], None, 70);
        let found = tr.on_request(&plain, t(5.0)) != Outcome::NotFound;
        assert_eq!(found, mode != MatchMode::DidOnly, "{mode:?}");
        // With it.
        let cookie = request("INFO", "m1", "a1", Some("b1"), 12, &[&c.rr_ours], None, 70);
        assert!(
            tr.on_request(&cookie, t(6.0)) != Outcome::NotFound,
            "{mode:?}"
        );
        // A cookie is only a hint: wrong tags never match, whatever it says.
        let forged = request("BYE", "m1", "a1", Some("zz"), 13, &[&c.rr_ours], None, 70);
        assert_eq!(
            tr.on_request(&forged, t(7.0)),
            Outcome::NotFound,
            "{mode:?}"
        );
        let other_call = request(
            "BYE",
            "other",
            "a1",
            Some("b1"),
            13,
            &[&c.rr_ours],
            None,
            70,
        );
        assert_eq!(
            tr.on_request(&other_call, t(7.0)),
            Outcome::NotFound,
            "{mode:?}"
        );
        assert_eq!(tr.len(), 1);
    }
}

#[test]
fn a_stale_cookie_falls_back_to_sip_matching() {
    let tr = tracker(TrackerConfig::default());
    let c = answered(&tr, "s1", &opts(), 0.0);
    let stale = "<sip:us.example.com;lr;did=ffffffffffffffff>";
    let bye = request("BYE", "s1", "b1", Some("a1"), 1, &[stale, P1], None, 70);
    let o = tracked(tr.on_request(&bye, t(9.0)));
    assert_eq!(o.handle, c.handle);
    assert_eq!(o.ended.unwrap().reason, EndReason::Bye { by: Side::Callee });
}

#[test]
fn forked_branches_the_first_2xx_wins_and_the_others_are_not_tracked() {
    let tr = tracker(TrackerConfig::default());
    let inv = invite("f1", "a1", 1, &[], 70);
    let h = tr.create(&inv, &opts(), t(0.0)).unwrap().handle();
    for (tag, at) in [("desk", 1.0), ("mobile", 1.2)] {
        let r = response(
            180,
            "f1",
            "a1",
            Some(tag),
            1,
            "INVITE",
            &[],
            Some(BOB_CONTACT),
        );
        assert_eq!(tracked(tr.on_response(&r, t(at))).state, DialogState::Early);
    }
    // Only the first 18x counts for the post-dial delay.
    assert_eq!(tr.kpi().total().ringing, 1);
    // Early-dialog requests (PRACK, UPDATE) match whatever branch they belong to.
    let update = request("UPDATE", "f1", "desk", Some("a1"), 5, &[], None, 70);
    assert_eq!(
        tracked(tr.on_request(&update, t(1.5))).direction,
        Direction::Upstream
    );

    let ok = response(
        200,
        "f1",
        "a1",
        Some("mobile"),
        1,
        "INVITE",
        &[],
        Some("sip:mobile@192.0.2.7"),
    );
    assert_eq!(
        tracked(tr.on_response(&ok, t(2.0))).state,
        DialogState::ConfirmedNotAcked
    );
    assert_eq!(&*tr.get(h).unwrap().to_tag, "mobile");
    // The desk phone answers too late: a second dialog the caller will BYE; not tracked.
    let late = response(
        200,
        "f1",
        "a1",
        Some("desk"),
        1,
        "INVITE",
        &[],
        Some(BOB_CONTACT),
    );
    assert_eq!(tr.on_response(&late, t(2.1)), Outcome::NotFound);
    let bye_desk = request("BYE", "f1", "a1", Some("desk"), 2, &[], None, 70);
    assert_eq!(tr.on_request(&bye_desk, t(2.2)), Outcome::NotFound);
    // The retransmitted 2xx of the winner changes nothing.
    assert_eq!(
        tracked(tr.on_response(&ok, t(2.3))).state,
        DialogState::ConfirmedNotAcked
    );
    let bye = request("BYE", "f1", "mobile", Some("a1"), 9, &[], None, 70);
    assert!(tracked(tr.on_request(&bye, t(9.0))).ended.is_some());
    assert!(tr.is_empty());
}

#[test]
fn cancel_then_487_ends_the_dialog_as_cancelled() {
    let tr = tracker(TrackerConfig::default());
    let inv = invite("x1", "a1", 4, &[], 70);
    tr.create(&inv, &opts(), t(0.0)).unwrap();
    let ringing = response(
        180,
        "x1",
        "a1",
        Some("b1"),
        4,
        "INVITE",
        &[],
        Some(BOB_CONTACT),
    );
    tr.on_response(&ringing, t(1.0));
    let cancel = request("CANCEL", "x1", "a1", None, 4, &[], None, 70);
    let o = tracked(tr.on_request(&cancel, t(5.0)));
    assert_eq!(o.state, DialogState::Early);
    let terminated = response(487, "x1", "a1", Some("b1"), 4, "INVITE", &[], None);
    let o = tracked(tr.on_response(&terminated, t(5.1)));
    assert_eq!(o.ended.unwrap().reason, EndReason::Cancelled);
    assert_eq!(o.change, None); // never confirmed, never written
    assert!(tr.is_empty());
    assert_eq!(tr.kpi().total().status(487), Some(1));
}

#[test]
fn a_cancel_whose_final_response_never_comes_ends_after_the_grace_period() {
    let tr = tracker(TrackerConfig::default());
    tr.create(&invite("x2", "a1", 4, &[], 70), &opts(), t(0.0))
        .unwrap();
    tr.on_request(
        &request("CANCEL", "x2", "a1", None, 4, &[], None, 70),
        t(10.0),
    );
    assert!(run_until(&tr, t(41.999)).is_empty());
    let ev = run_until(&tr, t(42.0));
    let [TimerEvent::Expired(e)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(e.reason, EndReason::Cancelled);
    assert!(tr.is_empty());
}

#[test]
fn a_cancel_crossing_the_2xx_loses() {
    let tr = tracker(TrackerConfig::default());
    let c = answered(&tr, "x3", &opts(), 0.0);
    let cancel = request("CANCEL", "x3", "a1", None, 10, &[], None, 70);
    let o = tracked(tr.on_request(&cancel, t(2.2)));
    assert_eq!(o.state, DialogState::Confirmed);
    let rec = tr.get(c.handle).unwrap();
    assert!(!rec.flags.has(DialogFlags::CANCELLED));
    // The lifetime was last restarted by the ACK; the CANCEL did not shorten it.
    assert_eq!(rec.timeout, t(2.1) + Duration::from_secs(43_200));
}

#[test]
fn failure_responses_end_unconfirmed_dialogs_without_writes() {
    let tr = tracker(TrackerConfig {
        record_changes: true,
        ..TrackerConfig::default()
    });
    tr.create(&invite("b1", "a1", 1, &[], 70), &opts(), t(0.0))
        .unwrap();
    let busy = response(486, "b1", "a1", Some("bob"), 1, "INVITE", &[], None);
    let o = tracked(tr.on_response(&busy, t(1.0)));
    assert_eq!(o.ended.unwrap().reason, EndReason::Failed { status: 486 });
    assert_eq!(o.change, None);
    assert!(tr.is_empty());
}

#[test]
fn the_lifetime_ends_with_a_bye_to_each_party() {
    let tr = tracker(TrackerConfig {
        default_flags: DialogFlags::SEND_BYE,
        ..TrackerConfig::default()
    });
    let o = CreateOptions {
        lifetime: Some(Duration::from_secs(60)),
        ..opts()
    };
    let c = answered(&tr, "e1", &o, 0.0);
    // The callee sent a request in between (its CSeq 77).
    let info = request(
        "INFO",
        "e1",
        "b1",
        Some("a1"),
        77,
        &[&c.rr_ours, P1],
        None,
        70,
    );
    tr.on_request(&info, t(10.0));
    // Restarted by the INFO (Kamailio's default): 10 + 60.
    assert!(run_until(&tr, t(69.999)).is_empty());
    let ev = run_until(&tr, t(70.0));
    let [TimerEvent::Expired(e)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(e.reason, EndReason::Expired);
    assert!(e.record.flags.has(DialogFlags::SEND_BYE));
    let [to_caller, to_callee] = e.record.byes();

    assert_eq!((to_caller.to, &*to_caller.socket), (Side::Caller, SOCK_A));
    let r = &to_caller.request;
    assert_eq!(r.target.request_uri, ALICE_CONTACT);
    assert_eq!(r.target.routes, [P1]);
    assert_eq!((r.from_tag.as_str(), r.to_tag.as_str()), ("b1", "a1"));
    assert_eq!(r.cseq, 78);

    assert_eq!((to_callee.to, &*to_callee.socket), (Side::Callee, SOCK_B));
    let r = &to_callee.request;
    assert_eq!(r.target.request_uri, BOB_CONTACT);
    assert_eq!(r.target.routes, [P3]);
    assert_eq!((r.from_tag.as_str(), r.to_tag.as_str()), ("a1", "b1"));
    assert_eq!(r.cseq, 11);
    assert_eq!(r.call_id, "e1");

    for bye in [&to_caller, &to_callee] {
        let mut b = bye.request.builder();
        b.via("SIP/2.0/UDP us.example.com;branch=z9hG4bK-bye")
            .header("Reason", "SIP;cause=200;text=\"dialog timeout\"");
        let m = Message::parse(b.build()).unwrap();
        m.validate().unwrap();
        assert_eq!(m.method(), Some("BYE"));
    }
    assert!(tr.is_empty());
    assert_eq!(tr.kpi().total().session_time, Duration::from_secs(68));
}

#[test]
fn no_reset_makes_the_lifetime_a_maximum_call_duration() {
    let tr = tracker(TrackerConfig::default());
    let o = CreateOptions {
        lifetime: Some(Duration::from_secs(60)),
        flags: DialogFlags::NO_RESET,
        ..opts()
    };
    let c = answered(&tr, "e2", &o, 0.0);
    let info = request("INFO", "e2", "a1", Some("b1"), 11, &[&c.rr_ours], None, 70);
    tr.on_request(&info, t(50.0));
    assert!(run_until(&tr, t(61.999)).is_empty());
    assert_eq!(run_until(&tr, t(62.0)).len(), 1);
}

#[test]
fn set_lifetime_moves_the_deadline_both_ways() {
    let tr = tracker(TrackerConfig::default());
    let c = answered(&tr, "e3", &opts(), 0.0);
    tr.set_lifetime(c.handle, Duration::from_secs(5), t(10.0));
    assert!(run_until(&tr, t(14.9)).is_empty());
    assert_eq!(run_until(&tr, t(15.0)).len(), 1);

    let c = answered(&tr, "e4", &opts(), 20.0);
    tr.set_lifetime(c.handle, Duration::from_secs(5), t(30.0));
    tr.set_lifetime(c.handle, Duration::from_secs(100), t(31.0));
    assert!(run_until(&tr, t(130.9)).is_empty());
    assert_eq!(run_until(&tr, t(131.0)).len(), 1);
    assert_eq!(tr.stats().timers, 0);
}

#[test]
fn dialogs_never_confirmed_end_after_the_setup_timeout() {
    let tr = tracker(TrackerConfig::default());
    tr.create(&invite("u1", "a1", 1, &[], 70), &opts(), t(0.0))
        .unwrap();
    assert!(run_until(&tr, t(299.9)).is_empty());
    let ev = run_until(&tr, t(300.0));
    assert!(matches!(&ev[..], [TimerEvent::Expired(e)] if e.reason == EndReason::SetupTimeout));
}

#[test]
fn the_table_is_bounded_and_says_503() {
    let tr = tracker(TrackerConfig {
        max_dialogs: 2,
        ..TrackerConfig::default()
    });
    tr.create(&invite("l1", "a", 1, &[], 70), &opts(), t(0.0))
        .unwrap();
    tr.create(&invite("l2", "a", 1, &[], 70), &opts(), t(0.0))
        .unwrap();
    let e = tr
        .create(&invite("l3", "a", 1, &[], 70), &opts(), t(0.0))
        .unwrap_err();
    assert_eq!(e, TrackError::Full { max: 2 });
    assert_eq!(e.status(), 503);
    tr.on_response(
        &response(480, "l1", "a", Some("b"), 1, "INVITE", &[], None),
        t(1.0),
    );
    assert!(
        tr.create(&invite("l3", "a", 1, &[], 70), &opts(), t(1.0))
            .is_ok()
    );
}

#[test]
fn profiles_count_live_dialogs_and_enforce_call_limits() {
    let tr = tracker(TrackerConfig::default());
    let alice = [Profile {
        name: "caller",
        value: Some("sip:alice@atlanta.example.com"),
        limit: Some(1),
    }];
    let o = CreateOptions {
        profiles: &alice,
        ..opts()
    };
    let c = answered(&tr, "p1", &o, 0.0);
    assert_eq!(
        tr.profile_size("caller", Some("sip:alice@atlanta.example.com")),
        1
    );
    assert_eq!(tr.profile_size("caller", None), 1);
    let e = tr
        .create(&invite("p2", "a2", 1, &[], 70), &o, t(1.0))
        .unwrap_err();
    assert!(
        matches!(&e, TrackError::ProfileLimit { limit: 1, .. }),
        "{e:?}"
    );
    assert_eq!(tr.len(), 1); // the refused one took no place
    let bye = request("BYE", "p1", "a1", Some("b1"), 11, &[&c.rr_ours], None, 70);
    tr.on_request(&bye, t(5.0));
    assert_eq!(tr.profile_size("caller", None), 0);
    assert!(
        tr.create(&invite("p2", "a2", 1, &[], 70), &o, t(6.0))
            .is_ok()
    );
}

#[test]
fn a_spiral_is_the_same_dialog() {
    let tr = tracker(TrackerConfig::default());
    let inv = invite("sp", "a1", 1, &[], 70);
    let first = tr.create(&inv, &opts(), t(0.0)).unwrap();
    // The INVITE comes back through us (one more Record-Route entry: ours).
    let again = invite("sp", "a1", 1, &["<sip:us.example.com;lr>"], 68);
    let second = tr.create(&again, &opts(), t(0.1)).unwrap();
    assert_eq!(second, Created::Spiral(first.handle()));
    assert_eq!((tr.len(), tr.kpi().total().attempts), (1, 1));
}

#[test]
fn keepalives_probe_both_parties_and_end_a_dead_call() {
    let tr = tracker(TrackerConfig {
        keepalive_interval: Some(Duration::from_secs(30)),
        ..TrackerConfig::default()
    });
    let o = CreateOptions {
        flags: DialogFlags::KEEPALIVE_CALLER | DialogFlags::KEEPALIVE_CALLEE,
        ..opts()
    };
    let c = answered(&tr, "k1", &o, 0.0);
    assert!(run_until(&tr, t(31.9)).is_empty());
    let ev = run_until(&tr, t(32.0));
    let probes: Vec<_> = ev
        .iter()
        .map(|e| match e {
            TimerEvent::Keepalive { handle, probe } => {
                assert_eq!(*handle, c.handle);
                probe.clone()
            }
            TimerEvent::Expired(_) => panic!("expired"),
        })
        .collect();
    assert_eq!(probes.len(), 2);
    assert_eq!(probes[0].to, Side::Caller);
    assert_eq!(probes[0].request.method, "OPTIONS");
    assert_eq!(probes[0].request.cseq, 1); // the callee never sent a request
    assert_eq!(probes[1].request.cseq, 10); // the caller's last
    // The caller answers; the callee is gone (481).
    tr.keepalive_result(c.handle, Side::Caller, 200, t(32.1));
    tr.keepalive_result(c.handle, Side::Callee, 481, t(32.2));
    let ev = run_until(&tr, t(42.2));
    assert!(
        ev.iter()
            .any(|e| matches!(e, TimerEvent::Expired(x) if x.reason == EndReason::Expired))
    );
    assert!(tr.is_empty());
}

#[test]
fn a_481_to_a_request_in_the_dialog_ends_it() {
    let tr = tracker(TrackerConfig::default());
    let c = answered(&tr, "g1", &opts(), 0.0);
    let reinv = request(
        "INVITE",
        "g1",
        "a1",
        Some("b1"),
        11,
        &[&c.rr_ours],
        None,
        70,
    );
    tr.on_request(&reinv, t(5.0));
    let gone = response(481, "g1", "a1", Some("b1"), 11, "INVITE", &[], None);
    let o = tracked(tr.on_response(&gone, t(5.1)));
    assert_eq!(
        o.ended.unwrap().reason,
        EndReason::Gone {
            status: 481,
            side: Side::Callee
        }
    );
}

#[test]
fn a_2xx_to_a_re_invite_refreshes_the_responders_contact() {
    let tr = tracker(TrackerConfig::default());
    let c = answered(&tr, "r1", &opts(), 0.0);
    let reinv = request(
        "INVITE",
        "r1",
        "a1",
        Some("b1"),
        11,
        &[&c.rr_ours],
        None,
        70,
    );
    tr.on_request(&reinv, t(5.0));
    let ok = response(
        200,
        "r1",
        "a1",
        Some("b1"),
        11,
        "INVITE",
        &[],
        Some("sip:bob@198.51.100.4"),
    );
    tr.on_response(&ok, t(5.1));
    assert_eq!(
        &*tr.get(c.handle).unwrap().callee_contact,
        "sip:bob@198.51.100.4"
    );
    assert_eq!(&*tr.get(c.handle).unwrap().caller_contact, ALICE_CONTACT);
}

#[test]
fn route_sets_without_cookies_double_record_route_and_strict_routers() {
    // No cookie in our entries (DID_NONE), two of them (double Record-Route), a strict
    // router on the caller's side.
    let tr = tracker(TrackerConfig {
        match_mode: MatchMode::SipOnly,
        ..TrackerConfig::default()
    });
    let strict = "<sip:strict.atlanta.example.com>";
    let inv = invite("d1", "a1", 3, &[strict, P1], 70);
    let o = CreateOptions {
        own_record_routes: 2,
        ..opts()
    };
    let h = tr.create(&inv, &o, t(0.0)).unwrap().handle();
    let rr = [
        "<sip:p4.biloxi.example.com;lr>",
        P3,
        "<sip:us-public.example.com;lr>",
        "<sip:us-private.example.com;lr>",
        strict,
        P1,
    ];
    let ok = response(
        200,
        "d1",
        "a1",
        Some("b1"),
        3,
        "INVITE",
        &rr,
        Some(BOB_CONTACT),
    );
    tr.on_response(&ok, t(1.0));
    let rec = tr.get(h).unwrap();
    assert_eq!(
        rec.callee_route_set,
        [P3.into(), "<sip:p4.biloxi.example.com;lr>".into()]
    );
    let [to_caller, to_callee] = rec.byes();
    // RFC 3261 §12.2.1.1: the strict router goes in the Request-URI, the Contact last in Route.
    assert_eq!(
        to_caller.request.target.request_uri,
        "sip:strict.atlanta.example.com"
    );
    assert_eq!(
        to_caller.request.target.routes,
        [P1.to_string(), format!("<{ALICE_CONTACT}>")]
    );
    assert_eq!(to_callee.request.next_hop(), "sip:p3.biloxi.example.com;lr");
}

#[test]
fn terminate_and_lookups() {
    let tr = tracker(TrackerConfig {
        record_changes: true,
        ..TrackerConfig::default()
    });
    let c = answered(&tr, "t1", &opts(), 0.0);
    assert_eq!(tr.handle(c.handle.uid), Some(c.handle));
    assert_eq!(tr.find(&c.cid, "b1", "a1"), Some(c.handle));
    assert_eq!(
        tr.set_var(c.handle, "account", Some("42"))
            .map(|c| c.rev() > 0),
        Some(true)
    );
    assert_eq!(tr.get(c.handle).unwrap().var("account"), Some("42"));
    assert_eq!(tr.snapshot().len(), 1);
    let (ended, change) = tr.terminate(c.handle, t(10.0)).unwrap();
    assert_eq!(ended.reason, EndReason::Terminated);
    assert!(matches!(change, Some(Change::Remove { .. })));
    assert_eq!(tr.terminate(c.handle, t(10.0)), None);
    assert!(tr.is_empty());
}

#[test]
fn requests_the_tracker_cannot_use_are_refused_with_a_status() {
    let tr = tracker(TrackerConfig::default());
    let reinv = request("INVITE", "z", "a", Some("b"), 1, &[], None, 70);
    assert_eq!(
        tr.create(&reinv, &opts(), t(0.0)).unwrap_err(),
        TrackError::NotInitialInvite
    );
    let no_tag = parse(
        "INVITE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: z\r\nCSeq: 1 INVITE\r\n\r\n".into(),
    );
    let e = tr.create(&no_tag, &opts(), t(0.0)).unwrap_err();
    assert_eq!((e.clone(), e.status()), (TrackError::NoFromTag, 400));
    let no_cseq = parse(
        "INVITE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: z\r\n\r\n"
            .into(),
    );
    assert_eq!(
        tr.create(&no_cseq, &opts(), t(0.0)).unwrap_err().status(),
        400
    );
    assert!(tr.is_empty());
}

#[cfg(feature = "std")]
#[test]
fn worker_threads_share_one_tracker() {
    use std::sync::Arc;
    let tr = Arc::new(tracker(TrackerConfig {
        shards: 8,
        ..TrackerConfig::default()
    }));
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let tr = tr.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let cid = format!("w{w}-{i}");
                    let c = answered(&tr, &cid, &opts(), f64::from(i));
                    let bye = request("BYE", &cid, "b1", Some("a1"), 1, &[&c.rr_ours], None, 70);
                    assert!(
                        tracked(tr.on_request(&bye, t(f64::from(i) + 3.0)))
                            .ended
                            .is_some()
                    );
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert!(tr.is_empty());
    let st = tr.stats();
    assert_eq!((st.dialogs, st.timers), (0, 0));
    assert_eq!(tr.kpi().total().attempts, 2000);
}

#[test]
fn one_call_id_holds_a_bounded_number_of_dialogs() {
    // A peer re-using one Call-ID with ever new From tags cannot make lookups slow.
    let tr = tracker(TrackerConfig {
        max_dialogs_per_call_id: 3,
        ..TrackerConfig::default()
    });
    for tag in ["t1", "t2", "t3"] {
        tr.create(&invite("same", tag, 1, &[], 70), &opts(), t(0.0))
            .unwrap();
    }
    let e = tr
        .create(&invite("same", "t4", 1, &[], 70), &opts(), t(0.0))
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (TrackError::CallIdLimit { max: 3 }, 503)
    );
    assert_eq!((tr.len(), tr.kpi().total().attempts), (3, 3));
    assert!(
        tr.create(&invite("other", "t4", 1, &[], 70), &opts(), t(0.0))
            .is_ok()
    );
}

#[test]
fn corrupt_restored_records_do_not_overflow() {
    let tr = tracker(TrackerConfig::default());
    let mut rec = sip_dialog::doc_record();
    rec.rev = u64::MAX;
    rec.lifetime = Duration::MAX;
    rec.timeout = Duration::MAX;
    let h = tr.insert_record(rec, t(0.0)).unwrap();
    let info = request(
        "INFO",
        "a84b4c76e66710@pc33.atlanta.example.com",
        "1928301774",
        Some("a6c85cf"),
        1,
        &[],
        None,
        70,
    );
    assert!(tracked(tr.on_request(&info, t(1.0))).ended.is_none());
    let rec = tr.get(h).unwrap();
    assert_eq!((rec.rev, rec.timeout), (u64::MAX, Duration::MAX));
    assert!(run_until(&tr, t(1e9)).is_empty());
    assert_eq!(tr.len(), 1);
}

#[test]
fn a_cancel_reported_by_the_transaction_layer_counts_like_the_cancel_itself() {
    let tr = tracker(TrackerConfig::default());
    let h = tr
        .create(&invite("x4", "a1", 4, &[], 70), &opts(), t(0.0))
        .unwrap()
        .handle();
    let o = tr.cancel(h, t(3.0)).unwrap();
    assert_eq!(o.state, DialogState::Unconfirmed);
    assert!(tr.get(h).unwrap().flags.has(DialogFlags::CANCELLED));
    let terminated = response(487, "x4", "a1", Some("b1"), 4, "INVITE", &[], None);
    assert_eq!(
        tracked(tr.on_response(&terminated, t(3.1)))
            .ended
            .unwrap()
            .reason,
        EndReason::Cancelled
    );
    assert_eq!(tr.cancel(h, t(4.0)), None);
}
