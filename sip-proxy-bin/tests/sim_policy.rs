//! Routing policy in the deterministic simulator (the defects of the documentation review of
//! `docs/pipeline.md` / `docs/kamailio.md`): pre-loaded Route headers are no free ride, only
//! trusted or authenticated callers reach the upstream sets, in-dialog requests leave from
//! the listener the double Record-Route names, and a full dialog table answers `503`.
//!
//! `SIM_TRACE=1 cargo test -p sip-proxy --test sim_policy -- --nocapture` prints nothing
//! more; a failing scenario prints its datagram trace tail (`check::Report::assert_ok`).

mod sim;

use sip_proxy::config::Algorithm;

use sim::check::settle_and_check;
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

fn call_via(uri: &str, route: &str, expect: Expect) -> Action {
    Action::Call(CallPlan::to(uri).header("Route", route).expect(expect))
}

/// The status lines the proxy sent to `to` that start with `prefix` (`SIP/2.0 403`).
fn answers(w: &World, to: std::net::SocketAddr, prefix: &str) -> Vec<String> {
    w.datagrams(Some(proxy_addr()), Some(to), prefix)
        .iter()
        .map(|b| worlds_first_line(b))
        .collect()
}

fn worlds_first_line(b: &[u8]) -> String {
    sim::world::first_line(b)
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
