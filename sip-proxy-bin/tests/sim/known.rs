//! Known bugs of the proxy, recognised in a run's trace, so that the random test can tell
//! "this seed hit bug A" from "this seed broke an invariant nobody understands yet".
//!
//! Each detector finds, from the datagram trace alone, the calls where the bug's trigger
//! happened; the problems about those calls are then reported as known (and counted), not
//! as failures. `SIM_STRICT=1` turns this off (`many_seeds` runs strict).
//! Each bug also has a deterministic failing test in `sim_proxy.rs` (ignored until fixed);
//! remove its entry here when it is fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use sip_parser::Message;

use super::check::Report;
use super::world::{Fate, Line, World};

/// 64·T1 with the default T1: Timer B (INVITE without any answer) and the §9.1 limit after
/// a CANCEL, after which the proxy's client transaction is gone.
const TIMEOUT: Duration = Duration::from_secs(32);

/// A known bug.
#[derive(Debug, Clone, Copy)]
pub struct Bug {
    /// Short id.
    pub id: &'static str,
    /// What goes wrong.
    pub what: &'static str,
}

/// A: a branch's final response arriving after the proxy's client transaction for that
/// branch ended (Timer B, or 64·T1 after its CANCEL) is relayed upstream statelessly as a
/// stray response, although the server transaction already answered (or answers later)
/// with another final: the caller gets two different finals for one INVITE.
pub const LATE_FINAL: Bug = Bug {
    id: "A",
    what: "late final from an ended branch relayed upstream (stray) besides the transaction's own final",
};

/// B: a CANCEL waiting for the branch's first provisional is not sent when that
/// provisional is a 100 Trying (only on 101–199): the branch rings on until Timer C.
pub const CANCEL_AFTER_100: Bug = Bug {
    id: "B",
    what: "held CANCEL not sent on 100 Trying; the branch goes on until Timer C",
};

/// E: a non-INVITE whose branches all timed out is answered 408 (RFC 4320 §4.2 forbids
/// it).
pub const NON_INVITE_408: Bug = Bug {
    id: "E",
    what: "408 sent to a non-INVITE request (RFC 4320)",
};

struct Seen {
    t: Duration,
    from: SocketAddr,
    to: SocketAddr,
    msg: Message,
}

/// Every delivered datagram that parses, with its (first) arrival time.
fn delivered(w: &World) -> Vec<Seen> {
    w.trace
        .iter()
        .filter_map(|l| match l {
            Line::Datagram {
                from,
                to,
                payload,
                fate: Fate::Arrives(at),
                ..
            } => Message::parse(payload.clone()).ok().map(|msg| Seen {
                t: at[0],
                from: *from,
                to: *to,
                msg,
            }),
            _ => None,
        })
        .collect()
}

/// Every datagram sent (delivered or not) that parses, with its send time.
fn sent(w: &World) -> Vec<Seen> {
    w.trace
        .iter()
        .filter_map(|l| match l {
            Line::Datagram {
                t,
                from,
                to,
                payload,
                ..
            } => Message::parse(payload.clone()).ok().map(|msg| Seen {
                t: *t,
                from: *from,
                to: *to,
                msg,
            }),
            Line::Note { .. } => None,
        })
        .collect()
}

fn branch(m: &Message) -> String {
    m.top_via()
        .ok()
        .flatten()
        .and_then(|v| v.branch.map(str::to_owned))
        .unwrap_or_default()
}

fn cseq_method(m: &Message) -> String {
    m.cseq().map(|c| c.method.to_owned()).unwrap_or_default()
}

/// Calls where bug A's trigger happened: a final INVITE response reached the proxy on a
/// branch whose client transaction had ended.
pub fn late_finals(w: &World) -> BTreeSet<String> {
    let proxy = |a: SocketAddr| w.listeners.contains(&a);
    let out = sent(w);
    let first = |method: &str, b: &str| {
        out.iter()
            .find(|s| proxy(s.from) && s.msg.method() == Some(method) && branch(&s.msg) == b)
            .map(|s| s.t)
    };
    let inn = delivered(w);
    let mut calls = BTreeSet::new();
    for r in inn
        .iter()
        .filter(|s| proxy(s.to) && s.msg.status().is_some_and(|st| st >= 200))
    {
        if cseq_method(&r.msg) != "INVITE" {
            continue;
        }
        let b = branch(&r.msg);
        let Some(invited) = first("INVITE", &b) else {
            continue;
        };
        let provisional_in_time = inn.iter().any(|p| {
            proxy(p.to)
                && p.from == r.from
                && p.msg.status().is_some_and(|st| st < 200)
                && branch(&p.msg) == b
                && p.t < invited + TIMEOUT
        });
        let timer_b = !provisional_in_time && r.t >= invited + TIMEOUT;
        let after_cancel = first("CANCEL", &b).is_some_and(|c| r.t >= c + TIMEOUT);
        if timer_b || after_cancel {
            calls.insert(r.msg.call_id().unwrap_or_default().to_owned());
        }
    }
    calls
}

/// Calls where bug B's trigger happened: the caller's CANCEL reached the proxy before the
/// branch's first provisional, which was a 100, and the proxy's CANCEL to the branch left
/// more than a second after that 100 (or never).
pub fn held_cancels(w: &World) -> BTreeSet<String> {
    let proxy = |a: SocketAddr| w.listeners.contains(&a);
    let inn = delivered(w);
    let out = sent(w);
    let mut calls = BTreeSet::new();
    // The proxy's INVITE branches, per Call-ID.
    let mut branches: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in out
        .iter()
        .filter(|s| proxy(s.from) && s.msg.method() == Some("INVITE"))
    {
        let e = branches
            .entry(s.msg.call_id().unwrap_or_default().to_owned())
            .or_default();
        let b = branch(&s.msg);
        if !e.contains(&b) {
            e.push(b);
        }
    }
    for (cid, bs) in &branches {
        let Some(asked) = inn
            .iter()
            .find(|s| {
                proxy(s.to) && s.msg.method() == Some("CANCEL") && s.msg.call_id() == Some(cid)
            })
            .map(|s| s.t)
        else {
            continue;
        };
        for b in bs {
            let Some(first_prov) = inn.iter().find(|s| {
                proxy(s.to) && s.msg.status().is_some_and(|st| st < 200) && branch(&s.msg) == *b
            }) else {
                continue;
            };
            if first_prov.msg.status() != Some(100) || first_prov.t < asked {
                continue;
            }
            let cancelled = out
                .iter()
                .find(|s| proxy(s.from) && s.msg.method() == Some("CANCEL") && branch(&s.msg) == *b)
                .map(|s| s.t);
            if cancelled.is_none_or(|c| c > first_prov.t + Duration::from_secs(1)) {
                calls.insert(cid.clone());
            }
        }
    }
    calls
}

/// Calls where bug E happened: the proxy sent a 408 to a non-INVITE.
pub fn non_invite_408s(w: &World) -> BTreeSet<String> {
    sent(w)
        .iter()
        .filter(|s| {
            w.listeners.contains(&s.from)
                && s.msg.status() == Some(408)
                && cseq_method(&s.msg) != "INVITE"
        })
        .map(|s| s.msg.call_id().unwrap_or_default().to_owned())
        .collect()
}

/// A bug and the function finding the calls where its trigger happened.
type Detector = (Bug, fn(&World) -> BTreeSet<String>);

/// Whether known bugs are tolerated (`SIM_STRICT=1`: no).
pub fn tolerated() -> bool {
    !std::env::var("SIM_STRICT").is_ok_and(|v| v != "0")
}

/// Moves the problems about calls where a known bug's trigger happened from `problems` to
/// `known`.
pub fn classify(w: &World, r: &mut Report) {
    if r.problems.is_empty() {
        return;
    }
    let detectors: [Detector; 3] = [
        (LATE_FINAL, late_finals),
        (CANCEL_AFTER_100, held_cancels),
        (NON_INVITE_408, non_invite_408s),
    ];
    let hits: Vec<(Bug, BTreeSet<String>)> = detectors.iter().map(|(b, f)| (*b, f(w))).collect();
    let mut keep = Vec::new();
    for p in std::mem::take(&mut r.problems) {
        let bug = p.call.as_ref().and_then(|c| {
            hits.iter()
                .find(|(_, calls)| calls.contains(c))
                .map(|(b, _)| b.id)
        });
        match bug {
            Some(id) => r.known.push((id, p)),
            None => keep.push(p),
        }
    }
    r.problems = keep;
}
