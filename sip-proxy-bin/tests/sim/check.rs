//! The invariants every run must keep, whatever the seed, the faults and the behaviour of
//! the user agents:
//!
//! 1. the world settles: after enough virtual time no datagram is in flight, no UA has a
//!    transaction or timer left and the proxy's transaction table is empty (no transaction
//!    outlives its timers; the table returns to empty);
//! 2. no request is answered twice differently: for each (Call-ID, CSeq, branch) a UA sent,
//!    every final response it received has the same status;
//! 3. every call ends in a defined state, at both ends: answered then ended by a BYE that
//!    completed (or failed: timed out), rejected with a final status, cancelled, or timed
//!    out — never waiting for ever;
//! 4. no invented answer: a caller's 2xx carries the To tag of a callee that sent that 2xx;
//!    a non-2xx final is one a callee sent for that Call-ID, or the proxy's own 408/487;
//! 5. both ends agree: a BYE answered 200 was received by the other end;
//! 6. expected statuses: a request with an [`Expect`](super::Expect) got nothing (lost) or
//!    the expected status;
//! 7. the proxy's books balance: every unparseable datagram counted, every invalid request
//!    counted, every message received and sent mirrored to the capture sink, nothing sent
//!    from a socket the proxy does not have;
//! 8. no 408 to a non-INVITE request (RFC 4320 §4.2).

use std::fmt::Write as _;
use std::time::Duration;

use super::World;
use super::ua::{ByeResult, Call, Incoming};

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The call it concerns (Call-ID), if one.
    pub call: Option<String>,
    /// What is wrong.
    pub text: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a run broke (empty: nothing).
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// One per broken invariant.
    pub problems: Vec<Problem>,
    /// Problems explained by a known bug of the proxy (see `known`): `(bug, problem)`.
    pub known: Vec<(&'static str, Problem)>,
}

impl Report {
    /// Adds a problem.
    pub fn fail(&mut self, p: impl Into<String>) {
        self.problems.push(Problem {
            call: None,
            text: p.into(),
        });
    }
    /// Checks `ok`, adding `p` when false.
    pub fn ensure(&mut self, ok: bool, p: impl FnOnce() -> String) {
        if !ok {
            self.fail(p());
        }
    }
    /// Checks `ok`, adding `p` about call `call` when false.
    pub fn ensure_call(&mut self, call: &str, ok: bool, p: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(Problem {
                call: Some(call.to_owned()),
                text: p(),
            });
        }
    }
    /// True when nothing broke.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
    /// Panics listing every problem (for the targeted scenarios).
    #[track_caller]
    pub fn assert_ok(&self, w: &World) {
        if !self.ok() {
            let mut s = String::new();
            for p in &self.problems {
                let _ = writeln!(s, "  - {p}");
            }
            panic!("invariants broken (seed {}):\n{s}\n{}", w.seed, w.tail(200));
        }
    }
}

/// How an established call ended, seen from one end.
fn ended(bye_sent: Option<ByeResult>, bye_received: bool) -> bool {
    bye_received || matches!(bye_sent, Some(ByeResult::Answered(_) | ByeResult::Failed))
}

fn describe_call(c: &Call) -> String {
    format!(
        "call {} to {} (started {:.3}s): provisional {:?}, finals {:?}, timed out {}, cancel {}, answered {}, bye sent {:?}, bye received {}",
        c.call_id,
        c.plan.to,
        c.started.as_secs_f64(),
        c.provisional,
        c.finals,
        c.timed_out,
        c.cancel_sent,
        c.answered(),
        c.bye_sent,
        c.bye_received
    )
}

fn describe_incoming(c: &Incoming) -> String {
    format!(
        "incoming {} (arrived {:.3}s, {:?}): sent {:?}, cancelled {}, acked {}, ack timeout {}, bye sent {:?}, bye received {}",
        c.call_id,
        c.arrived.as_secs_f64(),
        c.answer,
        c.sent,
        c.cancelled,
        c.acked,
        c.ack_timeout,
        c.bye_sent,
        c.bye_received
    )
}

/// The proxy's tables, by name, with their sizes, as its public API shows them. Only the
/// transaction table is visible today; the routing memory (failover lists, probes in
/// flight), and with the registrar the bindings, dialogs, nonces and ban list, need an
/// accessor each (or one `Proxy::tables()`) to be checked here.
pub fn proxy_tables(w: &World) -> Vec<(&'static str, usize)> {
    vec![("transactions", w.proxy.transactions())]
}

/// Settles the world (at most `limit` more virtual time) and checks every invariant.
pub fn settle_and_check(w: &mut World, limit: Duration) -> Report {
    let quiet = w.settle(w.now + limit);
    let mut r = Report::default();
    if !quiet {
        let mut what = format!(
            "not settled {:.0}s after the end: proxy tables {:?}",
            limit.as_secs_f64(),
            proxy_tables(w)
        );
        for u in w.uas.iter().filter(|u| !u.idle(w.now)) {
            let _ = write!(what, "; {}", u.busy());
        }
        r.fail(what);
    }
    for (name, n) in proxy_tables(w) {
        r.ensure(n == 0, || {
            format!("the proxy's {name} table holds {n} entries after settling")
        });
    }
    check(w, &mut r);
    r
}

/// Every invariant but settling (call after [`World::settle`]).
pub fn check(w: &World, r: &mut Report) {
    for v in &w.violations {
        r.fail(format!("proxy misbehaved: {v}"));
    }
    answered_once(w, r);
    calls_defined(w, r);
    no_invented_answers(w, r);
    ends_agree(w, r);
    expectations(w, r);
    books_balance(w, r);
    no_408_to_non_invite(w, r);
}

/// RFC 4320 §4.2: a transaction-stateful element never answers a non-INVITE with 408.
fn no_408_to_non_invite(w: &World, r: &mut Report) {
    for l in &w.trace {
        if let super::world::Line::Datagram {
            t, from, payload, ..
        } = l
        {
            if !w.listeners.contains(from) || !payload.starts_with(b"SIP/2.0 408") {
                continue;
            }
            let Ok(m) = sip_parser::Message::parse(payload.clone()) else {
                continue;
            };
            let method = m.cseq().map(|c| c.method.to_owned()).unwrap_or_default();
            let call = m.call_id().unwrap_or_default().to_owned();
            r.ensure_call(&call, method == "INVITE", || {
                format!("{:.3}s: the proxy answered a {method} with 408 (RFC 4320 §4.2), Call-ID {call}", t.as_secs_f64())
            });
        }
    }
}

/// The finals one UA received for one request are consistent: every non-2xx final has the
/// same status, every 2xx the same status, and no non-2xx comes after a 2xx. A 2xx after a
/// non-2xx is the one exception, for INVITE only: a branch's late 2xx is forwarded even
/// after the proxy answered (RFC 3261 §16.7 step 5; the CANCEL / 2xx race of §9.1), and the
/// caller ACKs and ends it.
pub fn consistent(method: &str, statuses: &[u16]) -> bool {
    let ok2 = |s: &u16| (200..300).contains(s);
    let first_2xx = statuses.iter().position(ok2);
    let non2xx: Vec<u16> = statuses.iter().copied().filter(|s| !ok2(s)).collect();
    let twoxx: Vec<u16> = statuses.iter().copied().filter(ok2).collect();
    non2xx.windows(2).all(|p| p[0] == p[1])
        && twoxx.windows(2).all(|p| p[0] == p[1])
        && match first_2xx {
            Some(i) => statuses[i..].iter().all(ok2) && (i == 0 || method == "INVITE"),
            None => true,
        }
}

fn answered_once(w: &World, r: &mut Report) {
    for u in &w.uas {
        for (k, statuses) in &u.finals {
            r.ensure_call(&k.0, consistent(&k.2, statuses), || {
                format!(
                    "{} got different finals {statuses:?} for Call-ID {} CSeq {} {} branch {}",
                    u.name, k.0, k.1, k.2, k.3
                )
            });
        }
        for e in &u.refused {
            r.fail(format!("{}'s transaction layer refused: {e}", u.name));
        }
        r.ensure(u.garbage == 0, || {
            format!("{} received {} unparseable datagrams", u.name, u.garbage)
        });
    }
}

fn calls_defined(w: &World, r: &mut Report) {
    for u in &w.uas {
        for c in u.calls.iter().filter(|c| !c.crashed) {
            let defined = if c.answered() {
                ended(c.bye_sent, c.bye_received)
                    && c.extra.iter().all(|e| e.1 != ByeResult::Pending)
            } else {
                c.outcome().is_some() || c.timed_out
            };
            r.ensure_call(&c.call_id, defined, || {
                format!("{}: undefined end: {}", u.name, describe_call(c))
            });
            // The caller's own Timer C (181 s, reset by each provisional) CANCELs an INVITE
            // the proxy keeps waiting: the proxy's Timer C (60 s here) must end it first,
            // with a final sent to the caller (the network may lose it).
            let of_call = |b: &bytes::Bytes| {
                sip_parser::Message::parse(b.clone()).is_ok_and(|m| {
                    m.call_id() == Some(c.call_id.as_str())
                        && m.cseq().is_ok_and(|q| q.method == "INVITE")
                })
            };
            let self_cancelled = !c.cancel_sent
                && w.datagrams(Some(u.addr), None, "CANCEL ")
                    .iter()
                    .any(of_call);
            let final_sent = w
                .datagrams(None, Some(u.addr), "SIP/2.0 ")
                .iter()
                .any(|b| of_call(b) && !b.starts_with(b"SIP/2.0 1"));
            r.ensure_call(&c.call_id, !self_cancelled || final_sent, || {
                format!(
                    "{}: the proxy sent no final within the caller's own Timer C: {}",
                    u.name,
                    describe_call(c)
                )
            });
            r.ensure_call(&c.call_id, c.acks >= 1 || !c.answered(), || {
                format!("{}: 2xx never ACKed: {}", u.name, describe_call(c))
            });
        }
        for c in u.incoming.iter().filter(|c| !c.crashed) {
            let defined = match c.final_status {
                None => false,
                Some(s) if (200..300).contains(&s) => {
                    ended(c.bye_sent, c.bye_received) || other_end_ended(w, c)
                }
                Some(_) => true,
            };
            r.ensure_call(&c.call_id, defined, || {
                format!("{}: undefined end: {}", u.name, describe_incoming(c))
            });
        }
        for q in u.requests.iter().filter(|q| !q.crashed) {
            r.ensure(!q.finals.is_empty() || q.timed_out, || {
                format!(
                    "{}: {} {} neither answered nor timed out",
                    u.name, q.plan.method, q.call_id
                )
            });
        }
        for g in u.registrations.iter().filter(|g| !g.crashed) {
            r.ensure(!g.finals.is_empty() || g.timed_out, || {
                format!(
                    "{}: REGISTER cseq {} neither answered nor timed out",
                    u.name, g.cseq
                )
            });
        }
    }
}

/// The callee of an answered call whose BYE got lost on the way: the caller's BYE failed,
/// so the callee never heard of it. Defined as long as the caller's side ended.
fn other_end_ended(w: &World, inc: &Incoming) -> bool {
    w.uas
        .iter()
        .flat_map(|u| &u.calls)
        .filter(|c| c.call_id == inc.call_id)
        .any(|c| matches!(c.bye_sent, Some(ByeResult::Failed | ByeResult::Answered(_))))
}

/// Statuses the proxy itself may put on a call: Timer C / no answer (408), and the 487 of
/// a cancelled transaction (and 500 for a 503, see below).
const PROXY_STATUSES: [u16; 2] = [408, 487];

fn no_invented_answers(w: &World, r: &mut Report) {
    let callees: Vec<&Incoming> = w.uas.iter().flat_map(|u| &u.incoming).collect();
    for u in &w.uas {
        for c in &u.calls {
            let theirs: Vec<&&Incoming> =
                callees.iter().filter(|i| i.call_id == c.call_id).collect();
            if let Some(d) = &c.dialog {
                r.ensure_call(
                    &c.call_id,
                    theirs.iter().any(|i| {
                        i.tag == d.remote_tag
                            && i.final_status.is_some_and(|s| (200..300).contains(&s))
                    }),
                    || {
                        format!(
                            "{}: a 2xx nobody sent (To tag {}): {}",
                            u.name,
                            d.remote_tag,
                            describe_call(c)
                        )
                    },
                );
            }
            if theirs.is_empty() {
                continue; // answered by the proxy itself: checked by expectations
            }
            if let Some(s) = c.outcome().filter(|s| *s >= 300) {
                // §16.7 step 6: a 503 is not forwarded; the proxy sends 500 instead.
                let sent = |x: u16| theirs.iter().any(|i| i.sent.contains(&x));
                r.ensure_call(
                    &c.call_id,
                    PROXY_STATUSES.contains(&s) || sent(s) || (s == 500 && sent(503)),
                    || {
                        format!(
                            "{}: final {s} that no callee sent: {}",
                            u.name,
                            describe_call(c)
                        )
                    },
                );
            }
        }
    }
}

fn ends_agree(w: &World, r: &mut Report) {
    for u in &w.uas {
        for c in &u.calls {
            if matches!(c.bye_sent, Some(ByeResult::Answered(200))) {
                let d = c.dialog.as_ref().expect("a BYE has a dialog");
                let other = w
                    .uas
                    .iter()
                    .flat_map(|x| &x.incoming)
                    .find(|i| i.call_id == c.call_id && i.tag == d.remote_tag);
                r.ensure_call(&c.call_id, other.is_some_and(|i| i.bye_received), || {
                    format!(
                        "{}: BYE answered 200 but the callee never got it: {}",
                        u.name,
                        describe_call(c)
                    )
                });
            }
        }
        for i in &u.incoming {
            if matches!(i.bye_sent, Some(ByeResult::Answered(200))) {
                let other = w.uas.iter().flat_map(|x| &x.calls).find(|c| {
                    c.call_id == i.call_id
                        && c.dialog.as_ref().is_some_and(|d| d.remote_tag == i.tag)
                });
                r.ensure_call(&i.call_id, other.is_some_and(|c| c.bye_received), || {
                    format!(
                        "{}: BYE answered 200 but the caller never got it: {}",
                        u.name,
                        describe_incoming(i)
                    )
                });
            }
        }
    }
}

fn expectations(w: &World, r: &mut Report) {
    for u in &w.uas {
        for c in &u.calls {
            if let Some(s) = c.outcome() {
                r.ensure_call(&c.call_id, c.plan.expect.allows(s), || {
                    format!(
                        "{}: expected {:?}, got {s}: {}",
                        u.name,
                        c.plan.expect,
                        describe_call(c)
                    )
                });
            }
        }
        for q in &u.requests {
            if let Some(&s) = q.finals.first() {
                r.ensure(q.plan.expect.allows(s), || {
                    format!(
                        "{}: {} to {} expected {:?}, got {s}",
                        u.name, q.plan.method, q.plan.uri, q.plan.expect
                    )
                });
            }
        }
        for g in &u.registrations {
            if let Some(&s) = g.finals.first() {
                r.ensure(g.expect.allows(s), || {
                    format!("{}: REGISTER expected {:?}, got {s}", u.name, g.expect)
                });
            }
        }
    }
}

fn books_balance(w: &World, r: &mut Report) {
    let s = &w.proxy.stats;
    r.ensure(s.parse_errors.get() == w.input.unparseable as u64, || {
        format!(
            "stats.parse_errors is {}, but {} unparseable datagrams reached the proxy",
            s.parse_errors.get(),
            w.input.unparseable
        )
    });
    r.ensure(s.invalid.get() == w.input.invalid as u64, || {
        format!(
            "stats.invalid is {}, but {} invalid messages reached the proxy",
            s.invalid.get(),
            w.input.invalid
        )
    });
    r.ensure(s.received.get() == w.input.datagrams as u64, || {
        format!(
            "stats.received is {}, but {} datagrams reached the proxy",
            s.received.get(),
            w.input.datagrams
        )
    });
    let ours = |a| w.listeners.contains(&a);
    let captured_in = w.capture.count(|_, dst| ours(dst));
    let captured_out = w.capture.count(|src, _| ours(src));
    r.ensure(captured_in == w.input.messages, || {
        format!(
            "{captured_in} received messages mirrored, {} received",
            w.input.messages
        )
    });
    r.ensure(captured_out == w.input.sent_messages, || {
        format!(
            "{captured_out} sent messages mirrored, {} sent",
            w.input.sent_messages
        )
    });
}
