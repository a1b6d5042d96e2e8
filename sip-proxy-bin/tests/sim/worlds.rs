//! Worlds: the common configuration, and random worlds built from a seed.
//!
//! * [`dispatcher_world`]: today's pipeline (`full` mode without the registrar, or one in
//!   five `stateful`): callers
//!   placing calls that a `--dispatch 2=pbx` rule sends to an upstream set of two or three
//!   simulated PBXs (random answers: accept, busy, 480, 500/503 → failover, ringing until
//!   Timer C, silence), PBXs going down and coming back, health probes, CANCELs, and the
//!   requests the proxy answers itself (OPTIONS, 403, 404, 483, 400, garbage);
//! * [`registrar_world`]: phones that REGISTER with digest (some with a wrong password),
//!   call each other by AOR, fork to two registrations of one AOR, CANCEL, let bindings
//!   expire — for when the registrar is in the pipeline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use sip_parser::Transport;
use sip_proxy::config::{
    Algorithm, AuthConfig, Config, LimitsConfig, ListenAddr, ListenerConfig, Mode, RegistrarConfig,
    TimersConfig, UpstreamConfig,
};

use super::Rng;
use super::check::{self, Report};
use super::ua::{Action, Answer, CallPlan, Callee, Expect, ReqPlan, Ua};
use super::world::{Change, Faults, World};

/// The domain the proxy serves.
pub const DOMAIN: &str = "sim.test";

/// Timer C of the simulated proxy (shorter than the 181 s default, to keep runs short in
/// virtual time; still far above every answer delay).
pub const TIMER_C: Duration = Duration::from_secs(60);

/// `127.0.0.n:5060`.
pub fn ip(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, n], 5060))
}

/// The proxy's address.
pub fn proxy_addr() -> SocketAddr {
    ip(1)
}

/// Seconds.
pub fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The configuration every world starts from: `full` mode, one UDP listener on
/// 127.0.0.1:5060, domain `sim.test`, bounded tables, Timer C [`TIMER_C`].
pub fn base_config() -> Config {
    Config {
        listen: vec![ListenerConfig {
            address: ListenAddr {
                transport: Transport::Udp,
                addr: proxy_addr(),
            },
            advertise: None,
        }],
        domains: vec![DOMAIN.into()],
        mode: Mode::Full,
        limits: LimitsConfig {
            max_transactions: 10_000,
            ..LimitsConfig::default()
        },
        timers: TimersConfig {
            timer_c_ms: TIMER_C.as_millis() as u64,
            ..TimersConfig::default()
        },
        ..Config::default()
    }
}

/// An upstream set.
pub fn upstream(
    name: &str,
    targets: &[SocketAddr],
    algorithm: Algorithm,
    weights: Vec<u32>,
    probe: u64,
) -> UpstreamConfig {
    UpstreamConfig {
        name: name.into(),
        targets: targets
            .iter()
            .map(|a| ListenAddr {
                transport: Transport::Udp,
                addr: *a,
            })
            .collect(),
        algorithm,
        weights,
        probe_interval: probe,
    }
}

/// How a simulated PBX answers a call: mostly accepts, sometimes busy, unavailable,
/// failing (5xx: the proxy fails over), ringing for ever or silent (Timer C).
pub fn pbx_answer(r: &mut Rng) -> Answer {
    let ring = if r.chance(0.7) {
        Some(r.ms(20, 1500))
    } else {
        None
    };
    match r.below(100) {
        0..=54 => Answer::Accept {
            ring,
            after: r.ms(50, 4000),
            hangup: r.chance(0.3).then(|| r.ms(500, 10_000)),
        },
        55..=66 => Answer::Reject {
            ring,
            status: 486,
            after: r.ms(20, 2000),
        },
        67..=71 => Answer::Reject {
            ring,
            status: 480,
            after: r.ms(20, 2000),
        },
        72..=79 => Answer::Reject {
            ring: None,
            status: 503,
            after: r.ms(5, 500),
        },
        80..=84 => Answer::Reject {
            ring: None,
            status: 500,
            after: r.ms(5, 500),
        },
        85..=93 => Answer::RingLong { give_up: s(150) },
        _ => Answer::Silent { give_up: s(150) },
    }
}

const GARBAGE: [&[u8]; 4] = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"HELLO\r\n\r\n",
    b"INVITE sip:2000@sim.test SIP/2.0\r\nVia SIP/2.0/UDP 127.0.0.20\r\n\r\n",
    b"SIP/2.0 200\r\n\r\n",
];

/// A request that parses but fails validation (the CSeq method is not the request's):
/// the proxy must answer 400.
pub fn invalid_request(from: SocketAddr, n: u64) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-bad-{n}\r\nMax-Forwards: 70\r\n\
         From: <sip:x@{DOMAIN}>;tag=b{n}\r\nTo: <sip:{DOMAIN}>\r\nCall-ID: bad-{n}@sim\r\nCSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// A caller's random action in the dispatcher world (`stateful`: the `stateful` mode, where
/// every initial request goes to the upstream set, so nothing is refused with 403/404).
fn caller_action(r: &mut Rng, me: SocketAddr, stateful: bool) -> Action {
    let refused = |status| {
        if stateful {
            Expect::Any
        } else {
            Expect::Status(status)
        }
    };
    match r.below(100) {
        0..=63 => {
            let mut plan = CallPlan::to(&format!("sip:2{:03}@{DOMAIN}", r.below(1000)))
                .hangup_after(Some(r.ms(300, 15_000)));
            if r.chance(0.25) {
                plan = plan.cancel_after(r.ms(30, 6000));
            }
            Action::Call(plan)
        }
        64..=69 => Action::Request(
            ReqPlan::new("OPTIONS", &format!("sip:{DOMAIN}")).expect(Expect::Status(200)),
        ),
        70..=72 => Action::Request(
            ReqPlan::new("OPTIONS", "sip:127.0.0.1:5060").expect(Expect::Status(200)),
        ),
        73..=77 => Action::Call(CallPlan::to("sip:bob@elsewhere.example").expect(refused(403))),
        78..=82 => Action::Call(
            CallPlan::to(&format!("sip:9{:02}@{DOMAIN}", r.below(100))).expect(refused(404)),
        ),
        83..=86 => Action::Call(
            CallPlan::to(&format!("sip:2{:03}@{DOMAIN}", r.below(1000)))
                .max_forwards(0)
                .expect(Expect::Status(483)),
        ),
        87..=88 => Action::Request(
            ReqPlan::new("OPTIONS", &format!("sip:{DOMAIN}"))
                .max_forwards(0)
                .expect(Expect::Status(483)),
        ),
        89..=91 => Action::Call(
            CallPlan::to(&format!("sip:2{:03}@{DOMAIN}", r.below(1000)))
                .header("Proxy-Require", "com.example.teleport")
                .expect(Expect::Status(420)),
        ),
        92..=95 => Action::Raw {
            payload: Bytes::from_static(r.pick(&GARBAGE)),
        },
        _ => Action::Raw {
            payload: invalid_request(me, r.next_u64() % 1_000_000),
        },
    }
}

/// A random world for today's pipeline (see the module notes).
pub fn dispatcher_world(seed: u64) -> World {
    let mut r = Rng::new(seed ^ 0xD15B_A7C4);
    let faults = if r.chance(0.25) {
        Faults::clean()
    } else {
        Faults {
            loss: r.float(0.0, 0.08),
            dup: r.float(0.0, 0.05),
            delay: r.ms(1, 20),
            jitter: r.ms(0, 60),
        }
    };
    let n_up = r.range(2, 3) as u8;
    let ups: Vec<SocketAddr> = (0..n_up).map(|i| ip(10 + i)).collect();
    let algorithm = r.pick(&[
        Algorithm::RoundRobin,
        Algorithm::Weighted,
        Algorithm::HashCallId,
        Algorithm::HashFrom,
    ]);
    let weights = if algorithm == Algorithm::Weighted {
        ups.iter().map(|_| r.range(1, 3) as u32).collect()
    } else {
        Vec::new()
    };
    // Probes at most every 10 s: a probe transaction lives T4 = 5 s after its answer, so
    // the table can be seen empty between two rounds.
    let probe = r.pick(&[0, 10, 30]);
    let stateful = r.chance(0.2);
    let mut cfg = base_config();
    if stateful {
        cfg.mode = Mode::Stateful;
        cfg.upstream = vec![upstream("default", &ups, algorithm, weights, probe)];
    } else {
        cfg.upstream = vec![upstream("pbx", &ups, algorithm, weights, probe)];
        cfg.dispatch = vec!["2=pbx".parse().expect("rule")];
    }
    let mut w = World::new(seed, faults, cfg);
    for (i, a) in ups.iter().enumerate() {
        w.add(
            Ua::new(&format!("pbx{i}"), *a, proxy_addr(), DOMAIN, r.fork())
                .answering(Callee::Random(pbx_answer)),
        );
    }
    if r.chance(0.4) {
        // A PBX goes away: cut off (state kept), or crashed (state lost), then back.
        let a = r.pick(&ups);
        let t = s(1) + r.ms(0, 50_000);
        w.at(
            t,
            if r.chance(0.5) {
                Change::Down(a)
            } else {
                Change::Crash(a)
            },
        );
        w.at(t + r.ms(3000, 90_000), Change::Up(a));
    }
    if r.chance(0.05) {
        let t = s(1) + r.ms(0, 50_000);
        for a in &ups {
            w.at(t, Change::Down(*a));
            w.at(t + r.ms(1000, 20_000), Change::Up(*a));
        }
    }
    for i in 0..r.range(2, 4) as u8 {
        let me = ip(20 + i);
        let mut ua = Ua::new(&format!("c{i}"), me, proxy_addr(), DOMAIN, r.fork());
        for _ in 0..r.range(1, 5) {
            let t = s(1) + r.ms(0, 60_000);
            let a = caller_action(&mut r, me, stateful);
            ua.schedule(t, a);
        }
        w.add(ua);
    }
    w
}

/// Runs a world's scripts to their end, settles it and checks every invariant, plus the
/// exact outcomes that a world without faults and outages allows.
pub fn drive(w: &mut World) -> Report {
    w.run_until(s(62));
    let mut report = check::settle_and_check(w, s(900));
    if w.faults.is_clean() && w.outages() == 0 {
        clean_outcomes(w, &mut report);
    }
    raw_answers(w, &mut report);
    report
}

/// A world with no loss, no duplication and no outage: each call to the PBX set reached
/// a PBX, failed over only on 5xx, and its outcome is the last PBX's answer (or 487 after
/// a CANCEL; 408/487 after Timer C).
pub fn clean_outcomes(w: &World, r: &mut Report) {
    for u in &w.uas {
        for c in u.calls.iter().filter(|c| {
            c.plan.to.starts_with("sip:2")
                && c.plan.max_forwards.is_none()
                && c.plan.headers.is_empty()
        }) {
            let mut tries: Vec<_> = w
                .uas
                .iter()
                .flat_map(|x| &x.incoming)
                .filter(|i| i.call_id == c.call_id)
                .collect();
            tries.sort_by_key(|i| i.arrived);
            let Some(last) = tries.last() else {
                r.ensure_call(&c.call_id, false, || {
                    format!("{}: call {} reached no PBX", u.name, c.call_id)
                });
                continue;
            };
            for t in &tries[..tries.len() - 1] {
                r.ensure_call(
                    &c.call_id,
                    t.final_status.is_some_and(|s| s == 500 || s == 503),
                    || {
                        format!(
                            "{}: call {} failed over after {:?} (only 5xx and timeouts fail over)",
                            u.name, c.call_id, t.sent
                        )
                    },
                );
            }
            let mut allowed: Vec<u16> = match last.answer {
                Answer::Accept { .. } => vec![200],
                // §16.7 step 6: a 503 is not forwarded upstream, a 500 goes instead.
                Answer::Reject { status: 503, .. } => vec![500, 503],
                Answer::Reject { status, .. } => vec![status],
                Answer::RingLong { .. } | Answer::Silent { .. } => vec![408, 487],
            };
            if c.cancel_sent {
                allowed.push(487);
            }
            let got = c.outcome();
            r.ensure_call(&c.call_id, got.is_some_and(|s| allowed.contains(&s)), || {
                format!(
                    "{}: call {} got {got:?}, the last PBX answered {:?} (allowed {allowed:?}), cancel {}",
                    u.name, c.call_id, last.answer, c.cancel_sent
                )
            });
        }
    }
}

/// Every response to a raw request that parses but is invalid carries the status its
/// validation error names (400, or 505 for the version).
pub fn raw_answers(w: &World, r: &mut Report) {
    for u in &w.uas {
        for raw in &u.raw {
            let Ok(m) = sip_parser::Message::parse(raw.clone()) else {
                continue;
            };
            let Err(e) = m.validate() else { continue };
            let cid = m.call_id().unwrap_or_default();
            for resp in u.strays.iter().filter(|x| x.call_id() == Some(cid)) {
                r.ensure(resp.status() == Some(e.status()), || {
                    format!(
                        "{}: invalid request {cid} ({e}) answered {:?}, not {}",
                        u.name,
                        resp.status(),
                        e.status()
                    )
                });
            }
        }
    }
}

/// Writes an htdigest users file for `users` (name, password) in realm [`DOMAIN`].
pub fn users_file(tag: &str, users: &[(String, String)]) -> PathBuf {
    let mut f = sip_auth::HtdigestFile::default();
    for (u, p) in users {
        f.set_password(u, DOMAIN, p, &[]).expect("user");
    }
    let path = std::env::temp_dir().join(format!(
        "sim-proxy-users-{tag}-{}.htdigest",
        std::process::id()
    ));
    std::fs::write(&path, f.to_text()).expect("users file");
    path
}

/// The configuration of the registrar worlds: authentication on (users `u0`…`u{n-1}`,
/// password `pw-N`), short registrations.
pub fn registrar_config(tag: &str, users: usize) -> Config {
    let list: Vec<(String, String)> = (0..users)
        .map(|i| (format!("u{i}"), format!("pw-{i}")))
        .collect();
    let mut cfg = base_config();
    cfg.auth = AuthConfig {
        users_file: Some(users_file(tag, &list)),
        ..AuthConfig::default()
    };
    cfg.registrar = RegistrarConfig {
        min_expires: 30,
        max_expires: 600,
        default_expires: 120,
        ..RegistrarConfig::default()
    };
    cfg
}

/// A random world for the registrar (see the module notes).
pub fn registrar_world(seed: u64) -> World {
    let mut r = Rng::new(seed ^ 0x4E61_57A2);
    let faults = if r.chance(0.3) {
        Faults::clean()
    } else {
        Faults {
            loss: r.float(0.0, 0.06),
            dup: r.float(0.0, 0.04),
            delay: r.ms(1, 15),
            jitter: r.ms(0, 40),
        }
    };
    let users = 5;
    let mut w = World::new(
        seed,
        faults,
        registrar_config(&format!("rand-{seed}"), users),
    );
    // Phones: one per user, and a second phone for u0 (forking); some register with a
    // wrong password (their registration fails, so their user is not reachable).
    let mut phones: Vec<(usize, SocketAddr, bool)> =
        (0..users).map(|i| (i, ip(30 + i as u8), false)).collect();
    phones.push((0, ip(40), false));
    for p in &mut phones {
        p.2 = r.chance(0.15);
    }
    let reachable = |u: usize| phones.iter().any(|p| p.0 == u && !p.2);
    let clean = faults.is_clean();
    for &(user, addr, wrong) in &phones {
        let mut ua = Ua::new(&format!("u{user}"), addr, proxy_addr(), DOMAIN, r.fork())
            .password(&format!("pw-{user}"))
            .answering(Callee::Random(phone_answer));
        let t0 = s(1) + r.ms(0, 3000);
        ua.schedule(
            t0,
            Action::Register {
                expires: 300,
                password: wrong.then(|| "wrong".to_owned()),
                expect: if wrong {
                    Expect::OneOf(vec![401, 403])
                } else {
                    Expect::Status(200)
                },
            },
        );
        for _ in 0..r.range(0, 3) {
            let callee = r.below(users as u64 + 1) as usize;
            let (uri, expect) = if callee == users {
                (format!("sip:nobody@{DOMAIN}"), Expect::Status(404))
            } else if !reachable(callee) {
                (format!("sip:u{callee}@{DOMAIN}"), Expect::Status(480))
            } else {
                (
                    format!("sip:u{callee}@{DOMAIN}"),
                    Expect::OneOf(vec![200, 480, 486, 408, 487]),
                )
            };
            let mut plan = CallPlan::to(&uri).hangup_after(Some(r.ms(300, 10_000)));
            if clean {
                plan = plan.expect(expect);
            }
            if r.chance(0.2) {
                plan = plan.cancel_after(r.ms(30, 4000));
                if clean && callee < users && reachable(callee) {
                    plan = plan.expect(Expect::OneOf(vec![200, 480, 486, 408, 487]));
                }
            }
            ua.schedule(s(5) + r.ms(0, 50_000), Action::Call(plan));
        }
        if r.chance(0.5) {
            ua.schedule(
                s(58) + r.ms(0, 3000),
                Action::Register {
                    expires: 0,
                    password: None,
                    expect: if wrong {
                        Expect::Any
                    } else {
                        Expect::Status(200)
                    },
                },
            );
        }
        w.add(ua);
    }
    w
}

/// How a registered phone answers.
pub fn phone_answer(r: &mut Rng) -> Answer {
    let ring = Some(r.ms(20, 800));
    match r.below(100) {
        0..=64 => Answer::Accept {
            ring,
            after: r.ms(100, 3000),
            hangup: r.chance(0.3).then(|| r.ms(500, 8000)),
        },
        65..=79 => Answer::Reject {
            ring,
            status: 486,
            after: r.ms(50, 1500),
        },
        80..=89 => Answer::Reject {
            ring,
            status: 480,
            after: r.ms(50, 1500),
        },
        _ => Answer::RingLong { give_up: s(150) },
    }
}

/// A request written by hand (to send with [`Action::Raw`]): Via to `from`, Call-ID
/// `raw-N@sim`, Max-Forwards only when given, extra header fields as given.
pub fn raw_request(
    method: &str,
    uri: &str,
    from: SocketAddr,
    n: u64,
    max_forwards: Option<u8>,
    headers: &[(&str, &str)],
) -> Bytes {
    use std::fmt::Write as _;
    let mut m =
        format!("{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-raw-{n}\r\n");
    if let Some(mf) = max_forwards {
        let _ = write!(m, "Max-Forwards: {mf}\r\n");
    }
    let _ = write!(
        m,
        "From: <sip:raw@{DOMAIN}>;tag=r{n}\r\nTo: <{uri}>\r\nCall-ID: raw-{n}@sim\r\nCSeq: 1 {method}\r\n"
    );
    for (name, value) in headers {
        let _ = write!(m, "{name}: {value}\r\n");
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    Bytes::from(m)
}
