//! One `DigestServer`, `AuthCache` and `FailureTracker` shared by reference between four
//! threads, with every verdict checked: a nonce issued on one thread verifies on another,
//! every fresh response is accepted exactly once, every replayed `nc` is refused as `Replay`
//! whichever thread sees it, the same `nc` presented by four threads at once is accepted
//! exactly once, a second node sharing the secret verifies the first node's nonces and the
//! first node the second's, and failures counted from four threads ban after exactly the
//! threshold. Then the replay table alone under concurrent random `nc` sequences.
//!
//! The threads meet at a rendezvous between phases; verdicts are checked after the threads
//! are joined (a failed check in a worker would leave the others waiting), and the rendezvous
//! gives up after 60 s, so the test is bounded.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Condvar, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sip_auth::ReplayCheck;
use sip_auth::{
    AuthCache, BanConfig, ClientRequest, DigestClient, DigestServer, FailReason, FailureTracker,
    FailureVerdict, MemoryStore, NonceSecrets, Outcome, ReplayTable, Request, ServerConfig,
};

const THREADS: usize = 4;
const ROUNDS: usize = 150;
const NOW: u64 = 1_700_000_000;
const REALM: &str = "atlanta.com";
const CR: ClientRequest<'static> = ClientRequest {
    method: "REGISTER",
    uri: "sip:atlanta.com",
    body: b"",
};

/// The types a proxy shares between its worker threads.
#[test]
fn shared_types_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<DigestServer>();
    shared::<AuthCache>();
    shared::<FailureTracker>();
    shared::<sip_auth::RateLimiter>();
    shared::<ReplayTable>();
}

/// A barrier that gives up after 60 s (a worker that panicked never arrives).
struct Rendezvous {
    state: Mutex<(usize, usize)>,
    cv: Condvar,
}

impl Rendezvous {
    fn new() -> Self {
        Rendezvous {
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
        }
    }

    fn wait(&self) {
        let mut s = self.state.lock().unwrap();
        let generation = s.1;
        s.0 += 1;
        if s.0 == THREADS {
            *s = (0, generation + 1);
            self.cv.notify_all();
            return;
        }
        let (_s, t) = self
            .cv
            .wait_timeout_while(s, Duration::from_secs(60), |s| s.1 == generation)
            .unwrap();
        assert!(!t.timed_out(), "a worker thread stopped (see its panic)");
    }
}

fn user(t: usize) -> String {
    format!("user{t}")
}

fn req(t: usize) -> Request<'static> {
    Request {
        method: b"REGISTER",
        request_uri: b"sip:atlanta.com",
        source: Some(IpAddr::from([192, 0, 2, t as u8 + 1])),
        ..Request::default()
    }
}

fn server(node_id: u16) -> DigestServer {
    let mut cfg = ServerConfig::new(REALM);
    cfg.node_id = node_id;
    DigestServer::new(
        cfg,
        NonceSecrets::new(1, b"one secret shared by both nodes"),
    )
}

/// Responses on one nonce issued by one thread.
#[derive(Default, Clone)]
struct Posted {
    /// On node A's nonce: nc = 1, 2, 3, 4.
    a: Vec<String>,
    /// On node B's nonce: nc = 1.
    b1: String,
}

/// What a thread saw.
#[derive(Default)]
struct Seen {
    /// (round, what was verified, verdict).
    log: Vec<(usize, &'static str, Verdict)>,
    /// (round, verdict) of each failure recorded.
    failures: Vec<(usize, FailureVerdict)>,
    /// Rounds in which this round's attacker was not banned in phase 3.
    not_banned: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok { from_cache: bool },
    Stale,
    Failed(FailReason),
}

fn verdict(o: &Outcome<'_>) -> Verdict {
    match o {
        Outcome::Ok(a) => Verdict::Ok {
            from_cache: a.from_cache,
        },
        Outcome::Stale => Verdict::Stale,
        Outcome::Failed(r) => Verdict::Failed(*r),
    }
}

/// What the four threads share: two nodes (A and B, one secret), the user store, one auth
/// cache and one failure tracker, and the board where each thread posts its responses.
struct Shared {
    node_a: DigestServer,
    node_b: DigestServer,
    store: MemoryStore,
    cache: AuthCache,
    bans: FailureTracker,
    board: Vec<Mutex<Posted>>,
    meet: Rendezvous,
}

fn worker(t: usize, sh: &Shared) -> Seen {
    let Shared {
        node_a,
        node_b,
        store,
        cache,
        bans,
        board,
        meet,
    } = sh;
    let mut seen = Seen::default();
    let mut log = Vec::new();
    let rq = req(t);
    let mono = Duration::from_secs(100);
    let check = |server: &DigestServer, value: &str| {
        verdict(&server.verify_cached(value.as_bytes(), &rq, store, cache, NOW, mono))
    };
    for round in 0..ROUNDS {
        // 1. Issue a nonce on node A and one on node B, answer both (A's with nc 1 to 4).
        let mut client = DigestClient::new(&user(t), "pw");
        let ch = node_a.challenge(&rq, NOW, false);
        let ch: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
        let mut a = vec![client.respond(&ch, &CR, "cn").expect("respond")];
        for _ in 0..3 {
            a.push(client.authorize(&CR, "cn").expect("authorize"));
        }
        let ch = node_b.challenge(&rq, NOW, false);
        let ch: Vec<&[u8]> = ch.iter().map(String::as_bytes).collect();
        let b1 = DigestClient::new(&user(t), "pw")
            .respond(&ch, &CR, "cn")
            .expect("respond");
        *board[t].lock().unwrap() = Posted { a, b1 };
        meet.wait();

        // 2. Verify what the next thread posted: its nc=1 on node A (issued on another
        //    thread), its node B nonce on node A, and its nc=4 on node B (A's nonce).
        let next = board[(t + 1) % THREADS].lock().unwrap().clone();
        log.push((
            round,
            "a1 on A, issued by another thread",
            check(node_a, &next.a[0]),
        ));
        log.push((round, "B's nonce on A", check(node_a, &next.b1)));
        log.push((round, "A's nonce on B", check(node_b, &next.a[3])));
        // A wrong password, counted towards the ban of this round's address.
        let wrong = DigestClient::new(&user(t), "guess")
            .respond(
                &node_a
                    .challenge(&rq, NOW, false)
                    .iter()
                    .map(String::as_bytes)
                    .collect::<Vec<_>>(),
                &CR,
                "cn",
            )
            .expect("respond");
        let o = node_a.verify(wrong.as_bytes(), &rq, store, NOW);
        log.push((round, "wrong password", verdict(&o)));
        if let Outcome::Failed(r) = o {
            if r.counts_as_attempt() {
                let attacker = IpAddr::from([198, 51, (round >> 8) as u8, round as u8]);
                seen.failures
                    .push((round, bans.record_failure(attacker, None, mono)));
            }
        }
        meet.wait();

        // 3. All four threads at once: the same nc=2 of one nonce, and a replay of the nc=1
        //    another thread accepted in phase 2.
        let target = board[round % THREADS].lock().unwrap().a[1].clone();
        let own = board[t].lock().unwrap().clone();
        log.push((round, "same nc on four threads", check(node_a, &target)));
        log.push((round, "replayed nc=1", check(node_a, &own.a[0])));
        let attacker = IpAddr::from([198, 51, (round >> 8) as u8, round as u8]);
        if !bans.is_banned(attacker, mono) {
            seen.not_banned.push(round);
        }
        meet.wait();

        // 4. Concurrently: this thread nc=3 of its own nonce, the thread after it nc=2 of
        //    the same nonce. Either order is valid; nc=3 is the highest, so always accepted.
        let prev = board[(t + THREADS - 1) % THREADS].lock().unwrap().clone();
        log.push((round, "nc=3", check(node_a, &own.a[2])));
        log.push((round, "nc=2 racing nc=3", check(node_a, &prev.a[1])));
        meet.wait();
    }
    seen.log = log;
    seen
}

#[test]
fn four_threads_share_one_server() {
    let mut store = MemoryStore::new();
    for t in 0..THREADS {
        store.add_password(&user(t), REALM, "pw");
    }
    let shared = Shared {
        node_a: server(0),
        node_b: server(1),
        store,
        cache: AuthCache::new(1024, Duration::from_secs(1800)),
        bans: FailureTracker::new(BanConfig {
            threshold: 3,
            ..BanConfig::default()
        }),
        board: (0..THREADS).map(|_| Mutex::default()).collect(),
        meet: Rendezvous::new(),
    };
    let results: Vec<Seen> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let sh = &shared;
                s.spawn(move || worker(t, sh))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let cache = &shared.cache;

    let ok = |v: &Verdict| matches!(v, Verdict::Ok { .. });
    let replay = Verdict::Failed(FailReason::Replay);
    let mut by_label: HashMap<(usize, &str), Vec<Verdict>> = HashMap::new();
    for seen in &results {
        assert!(seen.not_banned.is_empty(), "{:?}", seen.not_banned);
        for (round, label, v) in &seen.log {
            by_label.entry((*round, label)).or_default().push(*v);
        }
    }
    let mut verifications = 0;
    for round in 0..ROUNDS {
        let all = |label: &'static str| &by_label[&(round, label)];
        // Phase 2: every response is fresh and accepted.
        for label in [
            "a1 on A, issued by another thread",
            "B's nonce on A",
            "A's nonce on B",
        ] {
            assert!(
                all(label).iter().all(ok),
                "round {round} {label}: {:?}",
                all(label)
            );
        }
        assert!(
            all("wrong password")
                .iter()
                .all(|v| *v == Verdict::Failed(FailReason::BadResponse)),
            "round {round}"
        );
        // Phase 3: one of four identical nc accepted; replays refused on every thread.
        let same = all("same nc on four threads");
        assert_eq!(
            same.iter().filter(|v| ok(v)).count(),
            1,
            "round {round}: {same:?}"
        );
        assert_eq!(same.iter().filter(|v| **v == replay).count(), THREADS - 1);
        assert!(
            all("replayed nc=1").iter().all(|v| *v == replay),
            "round {round}"
        );
        // Phase 4: nc=3 always accepted; nc=2 accepted only if it came first, and always
        // refused on the nonce whose nc=2 was taken in phase 3.
        assert!(
            all("nc=3").iter().all(ok),
            "round {round}: {:?}",
            all("nc=3")
        );
        let racing = all("nc=2 racing nc=3");
        assert!(racing.iter().all(|v| ok(v) || *v == replay), "{racing:?}");
        assert!(racing.iter().filter(|v| ok(v)).count() < THREADS);
        verifications += 7 * THREADS;
        // Failures from four threads on this round's address: counted 1, 2, 3, then
        // banned, each exactly once.
        let mut failures: Vec<FailureVerdict> = results
            .iter()
            .flat_map(|s| &s.failures)
            .filter(|(r, _)| *r == round)
            .map(|(_, v)| *v)
            .collect();
        failures.sort_by_key(|v| match v {
            FailureVerdict::Counted(n) => *n,
            _ => u32::MAX,
        });
        assert!(
            matches!(
                failures[..],
                [
                    FailureVerdict::Counted(1),
                    FailureVerdict::Counted(2),
                    FailureVerdict::Counted(3),
                    FailureVerdict::Banned { .. }
                ]
            ),
            "round {round}: {failures:?}"
        );
    }
    // Every verification asked the shared cache once. Keys are (user, source, algorithm)
    // and each thread has its own source, so no two threads look one key up: the first
    // acceptance of each key missed the cache and filled it, every later one hit it. A
    // refusal before that first acceptance missed too, without filling.
    let count = |want: Verdict| by_label.values().flatten().filter(|v| **v == want).count();
    let filled = count(Verdict::Ok { from_cache: false });
    assert_eq!(cache.hits() + cache.misses(), verifications as u64);
    assert_eq!(filled, cache.len());
    assert!(cache.len() <= THREADS * THREADS);
    assert!((filled..=filled + count(replay)).contains(&(cache.misses() as usize)));
    assert!(count(Verdict::Ok { from_cache: true }) > verifications / 2);
}

/// A response accepted on one thread is a replay on every other, whichever thread saw it
/// first: the replay table alone, four threads presenting random `nc` on a few nonces.
fn replay_run(table: &ReplayTable, one_time: bool, plans: &[Vec<(usize, u32)>]) {
    let nids: Vec<u32> = (0..8).map(|_| table.issue()).collect();
    let start = Barrier::new(plans.len());
    let stop = AtomicBool::new(false);
    let logs: Vec<Vec<(u32, u32, ReplayCheck)>> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| {
                let (nids, start, stop) = (&nids, &start, &stop);
                s.spawn(move || {
                    start.wait();
                    let mut log = Vec::with_capacity(plan.len());
                    for &(n, nc) in plan {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        log.push((nids[n], nc, table.check(nids[n], Some(nc))));
                    }
                    log
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut accepted: HashSet<(u32, u32)> = HashSet::new();
    let mut max_accepted: HashMap<u32, u32> = HashMap::new();
    let mut max_presented: HashMap<u32, u32> = HashMap::new();
    for log in &logs {
        let mut last: HashMap<u32, u32> = HashMap::new();
        for &(nid, nc, v) in log {
            let m = max_presented.entry(nid).or_default();
            *m = (*m).max(nc);
            match v {
                ReplayCheck::Fresh => {
                    assert!(accepted.insert((nid, nc)), "({nid}, {nc}) accepted twice");
                    // In each thread's own order, a nonce's accepted nc increase.
                    let prev = last.insert(nid, nc).unwrap_or(0);
                    assert!(nc > prev, "nonce {nid}: {nc} accepted after {prev}");
                    let m = max_accepted.entry(nid).or_default();
                    *m = (*m).max(nc);
                }
                ReplayCheck::Replay => assert!(!one_time),
                ReplayCheck::Reused => assert!(one_time),
                ReplayCheck::Evicted => panic!("nonce {nid} evicted"),
            }
        }
    }
    for (nid, max) in max_presented {
        if one_time {
            let n = accepted.iter().filter(|(i, _)| *i == nid).count();
            assert_eq!(n, 1, "one-time nonce {nid} accepted {n} times");
        } else {
            // The highest nc presented is always accepted (exactly once, by the check above).
            assert_eq!(max_accepted.get(&nid), Some(&max), "nonce {nid}");
        }
    }
    if !one_time {
        // A refusal saw an nc at least as high, which some thread had got accepted.
        for log in &logs {
            for &(nid, nc, v) in log {
                if v == ReplayCheck::Replay {
                    assert!(
                        nc <= max_accepted[&nid],
                        "({nid}, {nc}) refused for nothing"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn concurrent_random_nc_never_replay(
        one_time in any::<bool>(),
        plans in prop::collection::vec(
            prop::collection::vec((0usize..8, 1u32..48), 1..400),
            THREADS,
        ),
    ) {
        replay_run(&ReplayTable::new(64, one_time), one_time, &plans);
    }
}

/// A longer run with heavy collisions (few nonces, small nc range) so that the threads
/// really race on one slot.
#[test]
fn replay_table_stress() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let plans: Vec<Vec<(usize, u32)>> = (0..THREADS)
        .map(|_| {
            (0..20_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ((x % 3) as usize, (x >> 8) as u32 % 2_000 + 1)
                })
                .collect()
        })
        .collect();
    replay_run(&ReplayTable::new(8, false), false, &plans);
    replay_run(&ReplayTable::new(8, true), true, &plans);
}
