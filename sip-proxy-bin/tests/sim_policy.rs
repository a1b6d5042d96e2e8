//! Routing policy in the deterministic simulator (the defects of the documentation review of
//! `docs/pipeline.md` / `docs/kamailio.md`): pre-loaded Route headers are no free ride, only
//! trusted or authenticated callers reach the upstream sets, in-dialog requests leave from
//! the listener the double Record-Route names, and a full dialog table answers `503`.
//!
//! Each scenario is one fixed seed without faults; a failing one prints the tail of its
//! datagram trace (`check::Report::assert_ok`).

mod sim;

use bytes::Bytes;
use sip_parser::{Message, Transport};
use sip_proxy::config::{Algorithm, ListenAddr, ListenerConfig};

use sim::check::settle_and_check;
use sim::ua::ByeResult;
use sim::worlds::{self, DOMAIN, base_config, ip, ms, proxy_addr, s, upstream};
use sim::{Action, Answer, CallPlan, Callee, Expect, Faults, ReqPlan, Ua, World};

fn accept() -> Answer {
    Answer::Accept {
        ring: Some(ms(50)),
        after: ms(300),
        hangup: None,
    }
}

fn pbx(name: &str, n: u8, seed: u64) -> Ua {
    Ua::new(name, ip(n), proxy_addr(), DOMAIN, seed).answering(Callee::Fixed(accept()))
}

fn caller(name: &str, n: u8, seed: u64) -> Ua {
    Ua::new(name, ip(n), proxy_addr(), DOMAIN, seed)
}

fn call(uri: &str, expect: Expect) -> Action {
    Action::Call(CallPlan::to(uri).expect(expect))
}

fn call_via(uri: &str, route: &str, expect: Expect) -> Action {
    Action::Call(CallPlan::to(uri).header("Route", route).expect(expect))
}

fn register() -> Action {
    Action::Register {
        expires: 300,
        password: None,
        expect: Expect::Status(200),
    }
}

fn parse(b: &Bytes) -> Message {
    Message::parse(b.clone()).expect("parses")
}

fn rr_of(m: &Message) -> Vec<String> {
    m.record_routes()
        .filter_map(Result::ok)
        .map(|r| String::from_utf8_lossy(r.raw_uri).into_owned())
        .collect()
}

/// The status lines the proxy sent to `to` that start with `prefix` (`SIP/2.0 403`).
fn answers(w: &World, to: std::net::SocketAddr, prefix: &str) -> Vec<String> {
    w.datagrams(Some(proxy_addr()), Some(to), prefix)
        .iter()
        .map(|b| sim::world::first_line(b))
        .collect()
}

/// Issue 12 step 10 and Kamailio's default script (`remove_hf("Route")` for initial
/// requests): an initial request (no To tag) with a pre-loaded Route naming a foreign host is
/// no way around relaying rules. With `allow_relay` off (the default) it is refused with
/// `403`; so is one whose Route names us and whose Request-URI is foreign once ours is
/// popped; nothing reaches the host named.
#[test]
fn preloaded_foreign_route_is_refused_without_allow_relay() {
    let mut w = World::new(60, Faults::clean(), worlds_one_set());
    w.add(pbx("pbx0", 10, 1));
    w.add(pbx("victim", 11, 2));
    w.add(
        caller("alice", 20, 3)
            // Foreign Route first.
            .at(
                s(1),
                call_via(
                    &format!("sip:2000@{DOMAIN}"),
                    "<sip:127.0.0.11:5060;lr>",
                    Expect::Status(403),
                ),
            )
            // Ours, then a foreign one.
            .at(
                s(1),
                call_via(
                    &format!("sip:2001@{DOMAIN}"),
                    "<sip:127.0.0.1:5060;lr>, <sip:127.0.0.11:5060;lr>",
                    Expect::Status(403),
                ),
            )
            // Ours only, and a foreign Request-URI: relaying rules (403).
            .at(
                s(1),
                call_via(
                    "sip:bob@127.0.0.11",
                    "<sip:127.0.0.1:5060;lr>",
                    Expect::Status(403),
                ),
            )
            // Not only INVITE.
            .at(
                s(1),
                Action::Request(
                    ReqPlan::new("MESSAGE", &format!("sip:2003@{DOMAIN}"))
                        .header("Route", "<sip:127.0.0.11:5060;lr>")
                        .expect(Expect::Status(403)),
                ),
            )
            // Ours only, our domain: routed as usual (the upstream set).
            .at(
                s(2),
                call_via(
                    &format!("sip:2002@{DOMAIN}"),
                    "<sip:127.0.0.1:5060;lr>",
                    Expect::Status(200),
                ),
            ),
    );
    w.run_until(s(10));
    settle_and_check(&mut w, s(60)).assert_ok(&w);
    assert!(
        w.named("victim").incoming.is_empty(),
        "nothing relayed to the pre-loaded hop"
    );
    assert_eq!(w.named("pbx0").incoming.len(), 1, "the clean call went on");
    let refused = answers(&w, ip(20), "SIP/2.0 403");
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(
        refused
            .iter()
            .filter(|l| l.contains("pre-loaded Route"))
            .count()
            == 3,
        "the reason phrase says why: {refused:?}"
    );
}

/// With `allow_relay` and authentication on, a pre-loaded foreign Route is followed only
/// after the caller authenticated (407 like any call from our domain); a caller without
/// credentials never gets through.
#[test]
fn preloaded_foreign_route_is_authenticated_with_allow_relay() {
    let mut cfg = worlds::registrar_config("preloaded", 3);
    cfg.limits.allow_relay = true;
    let mut w = World::new(61, Faults::clean(), cfg);
    w.add(pbx("far", 11, 1));
    w.add(
        Ua::new("u0", ip(30), proxy_addr(), DOMAIN, 2)
            .password("pw-0")
            .at(
                s(1),
                call_via(
                    "sip:bob@far.example",
                    "<sip:127.0.0.11:5060;lr>",
                    Expect::Status(200),
                ),
            ),
    );
    w.add(caller("eve", 21, 3).at(
        s(1),
        call_via(
            "sip:bob@far.example",
            "<sip:127.0.0.11:5060;lr>",
            Expect::Status(407),
        ),
    ));
    w.run_until(s(10));
    settle_and_check(&mut w, s(60)).assert_ok(&w);
    assert_eq!(w.named("u0").calls[0].challenges, [407]);
    let far = &w.named("far").incoming;
    assert_eq!(far.len(), 1, "only the authenticated call");
    assert_eq!(far[0].call_id, w.named("u0").calls[0].call_id);
    assert_eq!(
        far[0].invite.routes().count(),
        1,
        "the pre-loaded Route is kept (loose routing)"
    );
}

fn worlds_one_set() -> sip_proxy::config::Config {
    let mut cfg = base_config();
    cfg.upstream = vec![upstream("pbx", &[ip(10)], Algorithm::RoundRobin, vec![], 0)];
    cfg.dispatch = vec!["2=pbx".parse().expect("rule")];
    cfg
}

/// Issue 12 steps 7 and 9 (toll fraud): with authentication on, the upstream sets take a
/// request only from a trusted source (`auth.trusted`, the upstreams, providers) or from an
/// authenticated user of ours. A From in a foreign domain from anywhere else gets `403`
/// with a reason phrase saying why — for a dispatch rule and for the `default` set alike —
/// while a call from a foreign domain to a registered user of ours is delivered without
/// authentication (Kamailio's default script does the same).
#[test]
fn only_trusted_or_authenticated_callers_reach_upstream_sets() {
    let mut cfg = worlds::registrar_config("policy", 3);
    cfg.upstream = vec![
        upstream("pbx", &[ip(10)], Algorithm::RoundRobin, vec![], 0),
        upstream("default", &[ip(11)], Algorithm::RoundRobin, vec![], 0),
    ];
    cfg.dispatch = vec!["2=pbx".parse().expect("rule")];
    cfg.auth.trusted = vec!["127.0.0.60/32".into()];
    let mut w = World::new(62, Faults::clean(), cfg);
    w.add(pbx("pbx0", 10, 1));
    w.add(pbx("pbx1", 11, 2));
    w.add(
        Ua::new("u1", ip(31), proxy_addr(), DOMAIN, 3)
            .password("pw-1")
            .answering(Callee::Fixed(accept()))
            .at(s(1), register()),
    );
    // Our user, authenticated: the set takes it.
    w.add(
        Ua::new("u0", ip(30), proxy_addr(), DOMAIN, 4)
            .password("pw-0")
            .at(
                s(2),
                call(&format!("sip:2000@{DOMAIN}"), Expect::Status(200)),
            ),
    );
    // A foreign From from an untrusted source: no upstream set, but local users.
    w.add(
        Ua::new("mallory", ip(50), proxy_addr(), "evil.example", 5)
            .at(
                s(2),
                call(&format!("sip:2001@{DOMAIN}"), Expect::Status(403)),
            )
            .at(
                s(2),
                call(&format!("sip:someone@{DOMAIN}"), Expect::Status(403)),
            )
            .at(s(3), call(&format!("sip:u1@{DOMAIN}"), Expect::Status(200))),
    );
    // A foreign From from a trusted source (a gateway): the set takes it, no challenge.
    w.add(
        Ua::new("gw", ip(60), proxy_addr(), "carrier.example", 6).at(
            s(2),
            call(&format!("sip:2002@{DOMAIN}"), Expect::Status(200)),
        ),
    );
    // Our domain without credentials: challenged, as before.
    w.add(caller("eve", 51, 7).at(
        s(2),
        call(&format!("sip:2003@{DOMAIN}"), Expect::Status(407)),
    ));
    w.run_until(s(15));
    settle_and_check(&mut w, s(60)).assert_ok(&w);

    let to_sets: Vec<String> = w
        .named("pbx0")
        .incoming
        .iter()
        .chain(&w.named("pbx1").incoming)
        .map(|i| i.call_id.clone())
        .collect();
    let cid = |ua: &str, n: usize| w.named(ua).calls[n].call_id.clone();
    assert_eq!(to_sets.len(), 2, "{to_sets:?}");
    assert!(to_sets.contains(&cid("u0", 0)) && to_sets.contains(&cid("gw", 0)));
    assert!(
        w.named("gw").calls[0].challenges.is_empty(),
        "trusted: no challenge"
    );
    assert!(
        w.named("mallory").calls[2].challenges.is_empty(),
        "to a local user: no challenge"
    );
    assert_eq!(w.named("u1").incoming.len(), 1);
    let refused = answers(&w, ip(50), "SIP/2.0 403");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|l| l.contains("not trusted")),
        "the reason phrase says why: {refused:?}"
    );
}

/// Issue 12, record-route across networks: a call enters on 127.0.0.1 and leaves on
/// 127.0.0.2 (the callee registered through that listener), so it carries two Record-Route
/// entries. In-dialog requests pop both and leave from the listener the second one names:
/// the caller's ACK and BYE reach the callee from 127.0.0.2, the callee's BYE reaches the
/// caller from 127.0.0.1 — and the same the other way round for a call entering on
/// 127.0.0.2.
#[test]
fn in_dialog_requests_leave_from_the_listener_the_double_record_route_names() {
    let mut cfg = base_config();
    cfg.listen.push(ListenerConfig {
        address: ListenAddr {
            transport: Transport::Udp,
            addr: ip(2),
        },
        advertise: None,
    });
    let mut w = World::new(63, Faults::clean(), cfg);
    let hangs_up = Answer::Accept {
        ring: Some(ms(50)),
        after: ms(300),
        hangup: Some(s(2)),
    };
    // bob and dave register through the listener the other caller does not use.
    w.add(
        Ua::new("bob", ip(30), ip(2), DOMAIN, 1)
            .answering(Callee::Fixed(hangs_up))
            .at(s(1), register()),
    );
    w.add(
        Ua::new("dave", ip(31), ip(1), DOMAIN, 2)
            .answering(Callee::Fixed(accept()))
            .at(s(1), register()),
    );
    w.add(
        Ua::new("alice", ip(20), ip(1), DOMAIN, 3).at(
            s(2),
            Action::Call(
                CallPlan::to(&format!("sip:bob@{DOMAIN}"))
                    .hangup_after(None)
                    .expect(Expect::Status(200)),
            ),
        ),
    );
    w.add(
        Ua::new("carol", ip(21), ip(2), DOMAIN, 4).at(
            s(2),
            Action::Call(
                CallPlan::to(&format!("sip:dave@{DOMAIN}"))
                    .hangup_after(Some(s(2)))
                    .expect(Expect::Status(200)),
            ),
        ),
    );
    w.run_until(s(15));
    settle_and_check(&mut w, s(60)).assert_ok(&w);

    let bob = &w.named("bob").incoming[0];
    assert_eq!(
        rr_of(&bob.invite),
        ["sip:127.0.0.2:5060;lr", "sip:127.0.0.1:5060;lr"],
        "double Record-Route"
    );
    assert!(bob.acked);
    assert_eq!(bob.bye_sent, Some(ByeResult::Answered(200)));
    let dave = &w.named("dave").incoming[0];
    assert_eq!(
        rr_of(&dave.invite),
        ["sip:127.0.0.1:5060;lr", "sip:127.0.0.2:5060;lr"]
    );
    assert!(dave.acked && dave.bye_received);
    let from = |l: u8, to: u8, m: &str| w.datagrams(Some(ip(l)), Some(ip(to)), m).len();
    // alice → bob: in on .1, out on .2.
    assert_eq!(
        (from(2, 30, "ACK "), from(1, 30, "ACK ")),
        (1, 0),
        "ACK to bob"
    );
    // bob → alice: in on .2, out on .1.
    assert_eq!(
        (from(1, 20, "BYE "), from(2, 20, "BYE ")),
        (1, 0),
        "BYE to alice"
    );
    // carol → dave: in on .2, out on .1.
    assert_eq!(
        (from(1, 31, "ACK "), from(2, 31, "ACK ")),
        (1, 0),
        "ACK to dave"
    );
    assert_eq!(
        (from(1, 31, "BYE "), from(2, 31, "BYE ")),
        (1, 0),
        "BYE to dave"
    );
    // Every in-dialog request popped both of our entries.
    for b in w.datagrams(Some(ip(2)), Some(ip(30)), "ACK ") {
        assert_eq!(parse(&b).routes().count(), 0);
    }
}

/// Issue 12, bad input and faults: "past a limit the proxy answers 503 … and logs once per
/// interval". With `dialog.max_dialogs = 1` and one call up, further INVITEs get `503` with
/// Retry-After and never reach the upstream; they are counted (`dialogs_refused`) and logged
/// once for the burst.
#[test]
fn full_dialog_table_answers_503() {
    let mut cfg = worlds_one_set();
    cfg.dialog.max_dialogs = 1;
    let mut w = World::new(64, Faults::clean(), cfg);
    w.add(pbx("pbx0", 10, 1));
    let mut a = caller("alice", 20, 2).at(
        s(1),
        Action::Call(
            CallPlan::to(&format!("sip:2000@{DOMAIN}"))
                .hangup_after(Some(s(5)))
                .expect(Expect::Status(200)),
        ),
    );
    for i in 1..4u64 {
        a = a.at(
            s(2) + ms(100 * i),
            call(&format!("sip:200{i}@{DOMAIN}"), Expect::Status(503)),
        );
    }
    w.add(a);
    w.run_until(s(15));
    settle_and_check(&mut w, s(60)).assert_ok(&w);
    assert_eq!(w.named("pbx0").incoming.len(), 1, "only the first call");
    let refused = w.datagrams(Some(proxy_addr()), Some(ip(20)), "SIP/2.0 503");
    assert_eq!(refused.len(), 3);
    for r in &refused {
        assert_eq!(parse(r).header("Retry-After"), Some(&b"5"[..]));
    }
    assert_eq!(w.proxy.stats.dialogs_refused.get(), 3);
    let logged = w
        .log
        .iter()
        .filter(|(_, l)| l.contains("dialog table full"))
        .count();
    assert_eq!(logged, 1, "logged once per interval");
}
