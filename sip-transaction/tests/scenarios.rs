//! Virtual-time scenarios through a proxy: UAC → proxy → UAS(s) over a simulated network,
//! with loss, duplication and reordering where a test asks for them. Each test names the
//! RFC behaviour it checks.

#![allow(
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss
)]

mod sim;

use std::time::Duration;

use sim::{Answer, Drop, Faults, Node, World, addr};
use sip_transaction::{Forking, Timers};

const UAC: u16 = 5061;
const PROXY: u16 = 5060;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// UAC → proxy → one UAS per answer (ports 5070…), all forked in parallel.
fn world(seed: u64, faults: Faults, answers: &[Answer]) -> World {
    let t = Timers::default();
    let mut w = World::new(seed, faults);
    let uas: Vec<_> = (0..answers.len()).map(|i| addr(5070 + i as u16)).collect();
    w.add(Node::uac(UAC, addr(PROXY), "sip:bob@example.com", t));
    w.add(Node::proxy(
        PROXY,
        uas.iter().map(|a| (*a, 1000)).collect(),
        t,
    ));
    for (i, a) in answers.iter().enumerate() {
        w.add(Node::uas(5070 + i as u16, *a, t));
    }
    w
}

fn ring_then(status: u16, after: f64) -> Answer {
    Answer::After {
        ring: Some(secs(0.1)),
        status,
        after: secs(after),
    }
}

/// Runs long enough for every timer (Timer C, 64·T1 waits) to expire.
fn settle(w: &mut World) {
    let until = w.now + Duration::from_secs(600);
    w.run_until(until);
}

fn calls(w: &mut World) -> Vec<sim::CallLog> {
    w.node(addr(UAC)).uac_tu().calls.values().cloned().collect()
}

#[test]
fn basic_call_completes_and_every_table_empties() {
    let mut w = world(1, Faults::default(), &[ring_then(200, 0.5)]);
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert_eq!(c.provisional, [100, 180], "{}", w.dump_trace());
    assert_eq!(c.outcome(), Some(200));
    assert_eq!(c.bye, Some(200), "{}", w.dump_trace());
    let uas = w.node(addr(5070)).uas_tu();
    assert_eq!((uas.invites, uas.acks, uas.byes), (1, 1, 1));
    assert!(w.all_empty());
}

#[test]
fn lost_2xx_is_retransmitted_by_the_uas_and_forwarded_again_rfc6026() {
    // The first 200 from the UAS to the proxy is lost, and the first 200 the proxy sends to
    // the UAC too: the UAS core retransmits its 2xx (§13.3.1.4); the proxy's INVITE client
    // transaction passes every 2xx up (Accepted, RFC 6026 §8.4) and the proxy forwards each.
    let mut w = world(2, Faults::default(), &[ring_then(200, 0.5)]);
    w.drops
        .push(Drop::new(addr(5070), addr(PROXY), "SIP/2.0 200", 1));
    w.drops
        .push(Drop::new(addr(PROXY), addr(UAC), "SIP/2.0 200", 1));
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert_eq!(c.outcome(), Some(200), "{}", w.dump_trace());
    assert!(c.consistent());
    assert_eq!(c.bye, Some(200));
    assert!(w.node(addr(5070)).uas_tu().acks >= 1);
    assert!(w.all_empty());
}

#[test]
fn cancel_racing_a_200_ends_one_way_or_the_other() {
    // The UAC cancels around the moment the UAS answers: either the 200 wins (the call is
    // ACKed and hung up) or the CANCEL does (487), never both, never neither (§9.1, §16.10).
    for (i, offset_ms) in [-40i64, -5, 0, 3, 10, 40].into_iter().enumerate() {
        let faults = Faults {
            delay: Duration::from_millis(10),
            ..Faults::default()
        };
        let mut w = world(10 + i as u64, faults, &[ring_then(200, 1.0)]);
        let cancel_at = Duration::from_millis((1000 + offset_ms) as u64);
        w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), Some(cancel_at))];
        settle(&mut w);
        let c = &calls(&mut w)[0];
        match c.outcome() {
            Some(200) => assert_eq!(c.bye, Some(200), "offset {offset_ms}: {}", w.dump_trace()),
            Some(487) => assert!(c.cancel_sent),
            other => panic!("offset {offset_ms}: {other:?}\n{}", w.dump_trace()),
        }
        assert!(c.consistent(), "{c:?}");
        assert!(w.all_empty(), "offset {offset_ms}");
    }
}

#[test]
fn forked_486_200_603_in_every_order() {
    // §16.7: a 6xx ends the context (pending branches CANCELled); a 2xx is forwarded at once
    // and CANCELs the rest; a 486 alone waits for the others.
    let statuses = [486u16, 200, 603];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for (k, order) in orders.iter().enumerate() {
        // order[i] = rank of status i in time.
        let answers: Vec<Answer> = statuses
            .iter()
            .zip(order)
            .map(|(&s, &r)| ring_then(s, 0.5 + r as f64))
            .collect();
        let mut w = world(20 + k as u64, Faults::default(), &answers);
        w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
        settle(&mut w);
        let c = &calls(&mut w)[0];
        let first_decisive = if order[1] < order[2] { 200 } else { 603 };
        assert_eq!(
            c.outcome(),
            Some(first_decisive),
            "order {order:?}: {}",
            w.dump_trace()
        );
        assert!(c.consistent(), "{c:?}");
        if first_decisive == 200 {
            assert_eq!(c.bye, Some(200));
        }
        // The branch that lost the race was CANCELled (its UAS saw the CANCEL) unless it
        // had answered already.
        let loser = if first_decisive == 200 { 5072 } else { 5071 };
        let loser_rank = if first_decisive == 200 {
            order[2]
        } else {
            order[1]
        };
        let winner_rank = if first_decisive == 200 {
            order[1]
        } else {
            order[2]
        };
        if loser_rank > winner_rank {
            assert_eq!(w.node(addr(loser)).uas_tu().cancels, 1, "order {order:?}");
        }
        assert!(w.all_empty(), "order {order:?}");
    }
}

#[test]
fn challenges_of_401_and_407_are_aggregated() {
    // §16.7 step 7: every WWW-Authenticate and Proxy-Authenticate goes into the one
    // response forwarded.
    let mut w = world(
        30,
        Faults::default(),
        &[ring_then(401, 0.5), ring_then(407, 0.7)],
    );
    w.node(addr(5070)).uas_tu().final_headers = vec![(
        "WWW-Authenticate",
        "Digest realm=\"a.example.com\", nonce=\"1\"",
    )];
    w.node(addr(5071)).uas_tu().final_headers = vec![(
        "Proxy-Authenticate",
        "Digest realm=\"b.example.com\", nonce=\"2\"",
    )];
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert!(matches!(c.outcome(), Some(401 | 407)), "{c:?}");
    let line = w
        .trace
        .iter()
        .filter(|t| t.2 == addr(UAC) && t.3.starts_with("SIP/2.0 40"))
        .count();
    assert!(line >= 1);
    // The forwarded response itself: both challenges in it.
    let resp = w
        .last_payload_to(addr(UAC), "SIP/2.0 40")
        .expect("a 401/407");
    let m = sip_parser::Message::parse(resp).unwrap();
    assert_eq!(m.www_authenticate().count(), 1);
    assert_eq!(m.proxy_authenticate().count(), 1);
    assert!(w.all_empty());
}

#[test]
fn timer_c_cancels_a_branch_that_only_rang() {
    // §16.8: Timer C (> 3 min) fires on a branch that sent 180 and nothing else: the proxy
    // CANCELs it, the UAS answers 487, which goes upstream.
    let mut w = world(40, Faults::default(), &[Answer::RingForever]);
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    w.run_until(secs(150.0));
    assert_eq!(calls(&mut w)[0].outcome(), None);
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert_eq!(c.outcome(), Some(487), "{}", w.dump_trace());
    assert_eq!(w.node(addr(5070)).uas_tu().cancels, 1);
    assert!(w.all_empty());
}

#[test]
fn silent_downstream_gives_408_after_timer_b() {
    // A branch that never answers at all: Timer B (64·T1) → 408 upstream (§16.8 "as if 408").
    let mut w = world(41, Faults::default(), &[Answer::Silent]);
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    // The UAS's layer sends 100 itself, so the branch is in Proceeding: Timer C, CANCEL,
    // then (no 487 from a silent TU: the layer's own 487 answers the CANCEL) 487.
    assert!(
        matches!(c.outcome(), Some(487 | 408)),
        "{c:?}\n{}",
        w.dump_trace()
    );
    assert!(w.all_empty());
}

#[test]
fn non_invite_to_a_dead_host_times_out_with_408() {
    // Timer F on the proxy's branch → a 408 goes upstream (§16.7 step 2, §16.8); the UAC's
    // own Timer F would give the same answer.
    let t = Timers::default();
    let mut w = World::new(50, Faults::default());
    w.add(Node::uac(UAC, addr(PROXY), "sip:bob@example.com", t));
    w.add(Node::proxy(PROXY, vec![(addr(5999), 1000)], t));
    {
        let u = w.node(addr(UAC)).uac_tu();
        u.method = "MESSAGE";
        u.plan = vec![(secs(1.0), None)];
    }
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert!(c.outcome() == Some(408) || c.timed_out, "{c:?}");
    // The proxy retransmitted E: T1, 2T1, 4T1, T2, … (11 sends in 32 s).
    let sent = w.trace.iter().filter(|t| t.2 == addr(5999)).count();
    assert_eq!(sent, 11, "{}", w.dump_trace());
    assert!(w.all_empty());
}

#[test]
fn invite_to_a_dead_host_retransmits_with_timer_a_then_times_out() {
    // Timer A doubles from T1 without a cap; Timer B ends it at 64·T1: 7 sends.
    let t = Timers::default();
    let mut w = World::new(51, Faults::default());
    w.add(Node::uac(UAC, addr(5999), "sip:bob@example.com", t));
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert!(c.timed_out);
    let times: Vec<f64> = w
        .trace
        .iter()
        .filter(|t| t.2 == addr(5999))
        .map(|t| t.0.as_secs_f64() - 1.0)
        .collect();
    assert_eq!(times, [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert!(w.all_empty());
}

#[test]
fn sequential_forking_tries_the_next_q_group() {
    // §16.6: q 1.0 first; its 486 makes the proxy try q 0.5, which answers 200.
    let mut w = world(
        60,
        Faults::default(),
        &[ring_then(486, 0.3), ring_then(200, 0.3)],
    );
    {
        let p = w.node(addr(PROXY)).proxy_tu();
        p.targets = vec![(addr(5070), 1000), (addr(5071), 500)];
        p.forking = Forking::Sequential;
    }
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert_eq!(c.outcome(), Some(200));
    let first_5071 = w.trace.iter().find(|t| t.2 == addr(5071)).unwrap().0;
    let final_5070 = w
        .trace
        .iter()
        .find(|t| t.1 == addr(5070) && t.3.starts_with("SIP/2.0 486"))
        .unwrap()
        .0;
    assert!(
        first_5071 >= final_5070,
        "second group started before the first ended"
    );
    assert!(w.all_empty());
}

#[test]
fn failure_hook_fails_over_to_another_target() {
    // The TU's failure route: every branch failed (503), the TU forwards to a backup.
    let mut w = world(
        61,
        Faults::default(),
        &[ring_then(503, 0.2), ring_then(200, 0.2)],
    );
    {
        let p = w.node(addr(PROXY)).proxy_tu();
        p.targets = vec![(addr(5070), 1000)];
        p.on_failure = true;
        p.failovers = vec![addr(5071)];
    }
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    assert_eq!(calls(&mut w)[0].outcome(), Some(200), "{}", w.dump_trace());
    assert!(w.all_empty());
}

#[test]
fn lossy_network_calls_still_complete() {
    // 10 % loss, 5 % duplication, up to 80 ms of reordering: every call reaches a
    // consistent end; most complete; every table drains.
    let mut total = 0;
    let mut ok = 0;
    for seed in 0..12 {
        let faults = Faults {
            loss: 0.10,
            dup: 0.05,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(80),
        };
        let mut w = world(100 + seed, faults, &[ring_then(200, 0.5)]);
        w.node(addr(UAC)).uac_tu().plan = (0..10)
            .map(|i| (secs(1.0 + f64::from(i) * 0.3), None))
            .collect();
        settle(&mut w);
        for c in calls(&mut w) {
            total += 1;
            assert!(c.consistent(), "seed {seed}: {c:?}");
            if c.outcome() == Some(200) && c.bye == Some(200) {
                ok += 1;
            }
        }
        assert!(w.all_empty(), "seed {seed}");
    }
    assert!(ok * 100 >= total * 90, "{ok}/{total} completed");
}

#[test]
fn a_loop_gets_482_and_a_spiral_passes() {
    // §16.3 step 4: the request comes back to the proxy unchanged (it forwards to itself):
    // the second pass finds our Via with the same loop hash and answers 482.
    let mut w = world(70, Faults::default(), &[ring_then(200, 0.2)]);
    w.node(addr(PROXY)).proxy_tu().targets = vec![(addr(PROXY), 1000)];
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    assert_eq!(calls(&mut w)[0].outcome(), Some(482), "{}", w.dump_trace());
    assert!(
        w.node(addr(PROXY))
            .proxy_tu()
            .forwarded_errors
            .contains(&sip_transaction::ForwardError::Loop)
    );
    assert!(w.all_empty());

    // A spiral: the first pass retargets the Request-URI and sends to itself; the second
    // pass sees a different request (new Request-URI), so no loop: it reaches the UAS.
    let mut w = world(71, Faults::default(), &[ring_then(200, 0.2)]);
    w.node(addr(PROXY)).proxy_tu().rewrite = Some(("sip:bob@127.0.0.1:5070".into(), addr(5070)));
    w.node(addr(UAC)).uac_tu().plan = vec![(secs(1.0), None)];
    settle(&mut w);
    let c = &calls(&mut w)[0];
    assert_eq!(c.outcome(), Some(200), "{}", w.dump_trace());
    assert_eq!(c.bye, Some(200));
    assert!(w.node(addr(PROXY)).proxy_tu().forwarded_errors.is_empty());
    assert!(w.all_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn answer() -> impl Strategy<Value = Answer> {
        prop_oneof![
            (
                prop::sample::select(vec![200u16, 486, 603, 404, 500, 503, 302]),
                0u64..3000,
                prop::option::of(0u64..500)
            )
                .prop_map(|(status, after, ring)| Answer::After {
                    ring: ring.map(Duration::from_millis),
                    status,
                    after: Duration::from_millis(after),
                }),
            Just(Answer::RingForever),
            Just(Answer::Silent),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever the network and the callees do, nothing panics, every call reaches a
        /// consistent end (one final status class), and every table — transactions and
        /// timers — returns to empty.
        #[test]
        fn random_calls_end_and_tables_empty(
            seed in any::<u64>(),
            loss in 0.0f64..0.3,
            dup in 0.0f64..0.2,
            jitter in 0u64..200,
            answers in prop::collection::vec(answer(), 1..4),
            calls_plan in prop::collection::vec((0u64..2000, prop::option::of(0u64..3000)), 1..5),
            sequential in any::<bool>(),
        ) {
            let faults = Faults { loss, dup, delay: Duration::from_millis(2), jitter: Duration::from_millis(jitter) };
            let mut w = world(seed, faults, &answers);
            if sequential {
                let p = w.node(addr(PROXY)).proxy_tu();
                p.forking = Forking::Sequential;
                for (i, t) in p.targets.iter_mut().enumerate() {
                    t.1 = 1000 - 100 * i as u16;
                }
            }
            w.node(addr(UAC)).uac_tu().plan = calls_plan
                .iter()
                .map(|(start, cancel)| (secs(1.0) + Duration::from_millis(*start), cancel.map(Duration::from_millis)))
                .collect::<Vec<_>>();
            let mut plan = w.node(addr(UAC)).uac_tu().plan.clone();
            plan.sort();
            w.node(addr(UAC)).uac_tu().plan = plan;
            settle(&mut w);
            for c in calls(&mut w) {
                prop_assert!(c.consistent(), "{:?}", c);
            }
            prop_assert!(w.all_empty(), "tables not empty: {:?}",
                w.nodes.iter().map(|n| (n.addr.port(), n.layer.len(), n.layer.timer_entries())).collect::<Vec<_>>());
        }
    }
}
