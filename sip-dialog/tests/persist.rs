//! Kamailio's `db_mode` on a recording store: each mode writes exactly when it should
//! (0 never, 1 at each change, 2 every `update_period`, 3 only at shutdown); a restart
//! restores dialogs that still match in-dialog requests and still expire with their BYEs;
//! with several nodes on one store, each lifetime ends on exactly one node.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sip_dialog::{
    Change, Claim, CreateOptions, DbMode, DialogFlags, DialogRecord, DialogState, DialogStore,
    DialogUid, EndReason, Expiry, MemoryStore, Outcome, Persister, StoreError, TimerEvent, Tracker,
    TrackerConfig,
};

/// What the store was asked to do, and when (the test's virtual clock).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Put {
        at: Duration,
        id: DialogUid,
        state: DialogState,
        rev: u64,
    },
    Remove {
        at: Duration,
        id: DialogUid,
    },
    Apply {
        at: Duration,
        changes: Vec<(char, DialogUid)>,
    },
    Clear {
        at: Duration,
    },
    Claim {
        at: Duration,
        id: DialogUid,
    },
}

/// A store that records every write (and forwards it to a [`MemoryStore`]), and can be made
/// to fail.
#[derive(Default)]
struct Recording {
    ops: Mutex<Vec<Op>>,
    now: Mutex<Duration>,
    inner: MemoryStore,
    failing: Mutex<bool>,
}

impl Recording {
    fn at(&self) -> Duration {
        *self.now.lock().unwrap()
    }
    fn set_now(&self, now: Duration) {
        *self.now.lock().unwrap() = now;
    }
    fn ops(&self) -> Vec<Op> {
        std::mem::take(&mut self.ops.lock().unwrap())
    }
    fn log(&self, op: Op) -> Result<(), StoreError> {
        if *self.failing.lock().unwrap() {
            return Err(StoreError::Unavailable {
                op: "write",
                detail: "disk full".into(),
            });
        }
        self.ops.lock().unwrap().push(op);
        Ok(())
    }
}

impl DialogStore for Recording {
    fn put(&self, r: &DialogRecord) -> Result<(), StoreError> {
        self.log(Op::Put {
            at: self.at(),
            id: r.id,
            state: r.state,
            rev: r.rev,
        })?;
        self.inner.put(r)
    }
    fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError> {
        self.log(Op::Remove { at: self.at(), id })?;
        self.inner.remove(id, rev)
    }
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let kinds = changes
            .iter()
            .map(|c| {
                let k = match c {
                    Change::Insert(_) => 'I',
                    Change::Update(_) => 'U',
                    Change::Remove { .. } => 'R',
                };
                (k, c.id())
            })
            .collect();
        self.log(Op::Apply {
            at: self.at(),
            changes: kinds,
        })?;
        self.inner.apply(changes)
    }
    fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError> {
        self.inner.load_all()
    }
    fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
        self.inner.get(id)
    }
    fn find(&self, c: &str, a: &str, b: &str) -> Result<Option<DialogRecord>, StoreError> {
        self.inner.find(c, a, b)
    }
    fn claim_expired(&self, id: DialogUid, now: Duration) -> Result<Claim, StoreError> {
        self.log(Op::Claim { at: self.at(), id })?;
        self.inner.claim_expired(id, now)
    }
    fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError> {
        self.inner.expired(now, limit)
    }
    fn clear(&self) -> Result<(), StoreError> {
        self.log(Op::Clear { at: self.at() })?;
        self.inner.clear()
    }
}

/// A tracker and a persister over one recording store, the proxy's glue between them, and
/// a virtual clock.
struct Node {
    tr: Tracker,
    p: Persister<Arc<Recording>>,
    store: Arc<Recording>,
}

impl Node {
    fn new(mode: DbMode, store: Arc<Recording>, node: u8) -> Self {
        Node {
            tr: Tracker::new(
                TrackerConfig {
                    node,
                    record_changes: mode != DbMode::NoDb,
                    default_flags: DialogFlags::SEND_BYE,
                    ..TrackerConfig::default()
                },
                SEEDS,
                t(0.0),
            ),
            p: Persister::new(store.clone(), mode, Duration::from_secs(10)),
            store,
        }
    }

    fn clock(&self, at: f64) -> Duration {
        self.store.set_now(t(at));
        t(at)
    }

    fn record(&self, o: &Outcome, now: Duration) {
        if let Some(c) = o.tracked().and_then(|t| t.change.clone()) {
            self.p.record(&c, now).unwrap();
        }
    }

    fn req(&self, m: &sip_parser::Message, at: f64) -> Outcome {
        let now = self.clock(at);
        let o = self.tr.on_request(m, now);
        self.record(&o, now);
        o
    }

    fn resp(&self, m: &sip_parser::Message, at: f64) -> Outcome {
        let now = self.clock(at);
        let o = self.tr.on_response(m, now);
        self.record(&o, now);
        o
    }

    /// INVITE at `at`, 200 at +1, ACK at +2. Returns our Record-Route entry.
    fn call(&self, cid: &str, at: f64, lifetime: u64) -> String {
        let now = self.clock(at);
        let inv = invite(cid, "a1", 1, &[P1], 70);
        let o = CreateOptions {
            lifetime: Some(Duration::from_secs(lifetime)),
            caller_socket: b"udp:10.0.0.1:5060",
            callee_socket: b"udp:192.0.2.1:5060",
            ..CreateOptions::default()
        };
        let h = self.tr.create(&inv, &o, now).unwrap().handle();
        let rr = ours(&self.tr.cookie(h));
        let ok = response(
            200,
            cid,
            "a1",
            Some("b1"),
            1,
            "INVITE",
            &[P3, &rr, P1],
            Some(BOB_CONTACT),
        );
        self.resp(&ok, at + 1.0);
        self.req(
            &request("ACK", cid, "a1", Some("b1"), 1, &[&rr, P3], None, 70),
            at + 2.0,
        );
        rr
    }

    fn failed_call(&self, cid: &str, at: f64) {
        let now = self.clock(at);
        self.tr
            .create(
                &invite(cid, "a1", 1, &[], 70),
                &CreateOptions::default(),
                now,
            )
            .unwrap();
        self.resp(
            &response(
                180,
                cid,
                "a1",
                Some("b1"),
                1,
                "INVITE",
                &[],
                Some(BOB_CONTACT),
            ),
            at + 0.5,
        );
        self.resp(
            &response(486, cid, "a1", Some("b1"), 1, "INVITE", &[], None),
            at + 1.0,
        );
    }

    fn poll(&self, at: f64) -> Vec<TimerEvent> {
        let now = self.clock(at);
        let mut out = Vec::new();
        self.tr.poll(now, &mut out);
        out
    }
}

fn uid_of(node: &Node, cid: &str) -> DialogUid {
    node.tr.find(cid, "a1", "b1").unwrap().uid
}

#[test]
fn db_mode_0_writes_nothing() {
    let store = Arc::new(Recording::default());
    let n = Node::new(DbMode::NoDb, store.clone(), 1);
    let rr = n.call("c0", 0.0, 3600);
    n.failed_call("f0", 1.0);
    n.req(
        &request("BYE", "c0", "a1", Some("b1"), 2, &[&rr], None, 70),
        5.0,
    );
    assert_eq!(n.p.flush_due(t(100.0)).unwrap(), 0);
    assert_eq!(n.p.shutdown(&n.tr.snapshot()).unwrap(), 0);
    assert_eq!(store.ops(), []);
    assert!(n.p.restore().unwrap().is_empty());
}

#[test]
fn db_mode_1_writes_each_change_of_a_confirmed_dialog_at_once() {
    let store = Arc::new(Recording::default());
    let n = Node::new(DbMode::Realtime, store.clone(), 1);
    n.failed_call("f1", 0.0); // never confirmed: never written
    assert_eq!(store.ops(), []);
    let rr = n.call("c1", 10.0, 3600);
    let id = uid_of(&n, "c1");
    let ops = store.ops();
    assert!(
        matches!(&ops[..], [
            Op::Put { at: a1, state: DialogState::ConfirmedNotAcked, id: i1, .. },
            Op::Put { at: a2, state: DialogState::Confirmed, id: i2, .. },
        ] if *a1 == t(11.0) && *a2 == t(12.0) && *i1 == id && *i2 == id),
        "{ops:?}"
    );
    n.req(
        &request("INFO", "c1", "b1", Some("a1"), 7, &[&rr], None, 70),
        20.0,
    );
    assert!(matches!(&store.ops()[..], [Op::Put { at, .. }] if *at == t(20.0)));
    n.req(
        &request("BYE", "c1", "a1", Some("b1"), 2, &[&rr], None, 70),
        30.0,
    );
    assert_eq!(store.ops(), [Op::Remove { at: t(30.0), id }]);
    assert!(store.inner.is_empty());
    assert_eq!(n.p.flush_due(t(100.0)).unwrap(), 0);
    assert_eq!(store.ops(), []);
}

#[test]
fn db_mode_1_retries_a_failed_write_at_the_next_flush() {
    let store = Arc::new(Recording::default());
    let n = Node::new(DbMode::Realtime, store.clone(), 1);
    *store.failing.lock().unwrap() = true;
    let now = n.clock(0.0);
    let inv = invite("r1", "a1", 1, &[], 70);
    n.tr.create(&inv, &CreateOptions::default(), now).unwrap();
    let ok = response(
        200,
        "r1",
        "a1",
        Some("b1"),
        1,
        "INVITE",
        &[],
        Some(BOB_CONTACT),
    );
    let o = n.tr.on_response(&ok, t(1.0));
    let change = o.tracked().unwrap().change.clone().unwrap();
    let e = n.p.record(&change, t(1.0)).unwrap_err();
    assert_eq!(e.unwritten, [change.id()]);
    assert!(e.to_string().contains("disk full"), "{e}");
    assert_eq!(n.p.pending(), 1);
    *store.failing.lock().unwrap() = false;
    assert_eq!(n.p.flush_due(t(10.9)).unwrap(), 0);
    n.clock(11.0);
    assert_eq!(n.p.flush_due(t(11.0)).unwrap(), 1);
    assert_eq!(store.inner.len(), 1);
}

#[test]
fn db_mode_2_flushes_every_update_period_and_skips_short_calls() {
    let store = Arc::new(Recording::default());
    let n = Node::new(DbMode::Delayed, store.clone(), 1);
    let rr = n.call("c2", 0.0, 3600); // 200 at 1 s (queued, arms the flush for 11 s), ACK at 2 s
    n.req(
        &request("INFO", "c2", "a1", Some("b1"), 5, &[&rr], None, 70),
        5.0,
    );
    assert_eq!(n.p.next_flush(), Some(t(11.0)));
    n.clock(10.9);
    assert_eq!(n.p.flush_due(t(10.9)).unwrap(), 0);
    assert_eq!(store.ops(), []);
    n.clock(11.0);
    assert_eq!(n.p.flush_due(t(11.0)).unwrap(), 1);
    let id = uid_of(&n, "c2");
    // One write for three changes: the insert, with the newest record.
    assert_eq!(
        store.ops(),
        [Op::Apply {
            at: t(11.0),
            changes: vec![('I', id)]
        }]
    );
    assert_eq!(store.inner.get(id).unwrap().unwrap().caller_cseq, 5);
    assert_eq!(n.p.next_flush(), None);

    // A call set up and ended between two flushes is never written.
    let rr2 = n.call("short", 12.0, 3600);
    n.req(
        &request("BYE", "short", "a1", Some("b1"), 2, &[&rr2], None, 70),
        15.0,
    );
    // And the first call ends: its removal is flushed with the next period.
    n.req(
        &request("BYE", "c2", "b1", Some("a1"), 9, &[&rr], None, 70),
        16.0,
    );
    n.clock(23.0);
    assert_eq!(n.p.flush_due(t(23.0)).unwrap(), 1);
    assert_eq!(
        store.ops(),
        [Op::Apply {
            at: t(23.0),
            changes: vec![('R', id)]
        }]
    );
    assert!(store.inner.is_empty());
}

#[test]
fn db_mode_3_writes_only_at_shutdown() {
    let store = Arc::new(Recording::default());
    let n = Node::new(DbMode::Shutdown, store.clone(), 1);
    let rr = n.call("c3", 0.0, 3600);
    n.call("c4", 1.0, 3600);
    n.tr.create(
        &invite("unanswered", "a1", 1, &[], 70),
        &CreateOptions::default(),
        t(2.0),
    )
    .unwrap();
    n.req(
        &request("BYE", "c3", "a1", Some("b1"), 2, &[&rr], None, 70),
        5.0,
    );
    assert_eq!(n.p.flush_due(t(1000.0)).unwrap(), 0);
    assert_eq!(store.ops(), []);
    n.clock(50.0);
    assert_eq!(n.p.shutdown(&n.tr.snapshot()).unwrap(), 1);
    let id = uid_of(&n, "c4");
    assert_eq!(
        store.ops(),
        [
            Op::Clear { at: t(50.0) },
            Op::Apply {
                at: t(50.0),
                changes: vec![('I', id)]
            }
        ]
    );
    assert_eq!(n.p.restore().unwrap().len(), 1);
}

#[test]
fn restored_dialogs_match_in_dialog_requests_and_expire_with_their_byes() {
    for mode in [DbMode::Realtime, DbMode::Delayed, DbMode::Shutdown] {
        let store = Arc::new(Recording::default());
        let before = Node::new(mode, store.clone(), 1);
        let rr_a = before.call("ra", 0.0, 3600);
        before.call("rb", 1.0, 60);
        before.req(
            &request("INFO", "rb", "b1", Some("a1"), 40, &[&rr_a], None, 70),
            5.0,
        );
        before.p.shutdown(&before.tr.snapshot()).unwrap();
        // kill -9 in modes 1 and 2 would lose at most the queue; SHUTDOWN needs the shutdown.
        drop(before);

        let after = Node::new(mode, store.clone(), 1);
        for rec in after.p.restore().unwrap() {
            after.tr.insert_record(rec, t(6.0)).unwrap();
        }
        assert_eq!(after.tr.len(), 2, "{mode:?}");
        // New ids never collide with the restored ones.
        let h = after
            .tr
            .create(
                &invite("new", "a1", 1, &[], 70),
                &CreateOptions::default(),
                t(6.0),
            )
            .unwrap()
            .handle();
        assert!(after.tr.snapshot().iter().filter(|r| r.id == h.uid).count() == 1);

        // The callee hangs up on "ra" with our cookie in the Route: matched, ended.
        let o = after.req(
            &request("BYE", "ra", "b1", Some("a1"), 41, &[&rr_a, P1], None, 70),
            7.0,
        );
        let ended = o.tracked().unwrap().ended.clone().unwrap();
        assert_eq!(
            ended.reason,
            EndReason::Bye {
                by: sip_dialog::Side::Callee
            }
        );

        // "rb" (lifetime 60 s, restarted by the INFO at 5 s) expires at 65 s: BYE both ways.
        assert!(
            after
                .poll(64.9)
                .iter()
                .all(|e| !matches!(e, TimerEvent::Expired(x) if x.reason == EndReason::Expired))
        );
        let ev = after.poll(65.0);
        let [TimerEvent::Expired(x)] = &ev[..] else {
            panic!("{mode:?}: {ev:?}")
        };
        assert_eq!(x.reason, EndReason::Expired);
        assert_eq!(
            after.p.expire(&x.record, t(65.0)).unwrap(),
            Expiry::SendBye,
            "{mode:?}"
        );
        let [to_caller, to_callee] = x.record.byes();
        assert_eq!(to_caller.request.target.request_uri, ALICE_CONTACT);
        assert_eq!(to_callee.request.target.request_uri, BOB_CONTACT);
        assert_eq!(to_caller.request.cseq, 41);
        assert_eq!(&*to_callee.socket, b"udp:192.0.2.1:5060");
        after.p.flush().unwrap();
        if mode != DbMode::Shutdown {
            assert!(store.inner.is_empty(), "{mode:?}");
        }
    }
}

#[test]
fn two_nodes_on_one_store_end_each_dialog_once() {
    let store = Arc::new(Recording::default());
    let a = Node::new(DbMode::Realtime, store.clone(), 1);
    let b = Node::new(DbMode::Realtime, store.clone(), 2);
    let rr = a.call("mn", 0.0, 60); // confirmed at 1 s: timeout 61 s (ACK at 2 s: 62 s)

    // Node B gets an in-dialog request for a dialog it does not know: it looks in the store,
    // adopts it, and handles the request (restarting the lifetime to 40 + 60 s).
    let info = request("INFO", "mn", "b1", Some("a1"), 3, &[&rr, P1], None, 70);
    assert_eq!(b.tr.on_request(&info, t(40.0)), Outcome::NotFound);
    let rec = store.find("mn", "b1", "a1").unwrap().unwrap();
    b.tr.insert_record(rec, t(40.0)).unwrap();
    let o = b.req(&info, 40.0);
    assert!(o.tracked().is_some());
    store.ops();

    // Node A's timer fires at 62 s: the store says B restarted it; A tracks the new record.
    let ev = a.poll(62.0);
    let [TimerEvent::Expired(x)] = &ev[..] else {
        panic!("{ev:?}")
    };
    let Expiry::Refreshed(newer) = a.p.expire(&x.record, t(62.0)).unwrap() else {
        panic!("refreshed expected")
    };
    assert_eq!(newer.timeout, t(100.0));
    a.tr.insert_record(newer, t(62.0)).unwrap();

    // Both fire at 100 s: exactly one sends the BYEs.
    let mut byes = 0;
    for node in [&b, &a] {
        for e in node.poll(100.0) {
            if let TimerEvent::Expired(x) = e {
                if node.p.expire(&x.record, t(100.0)).unwrap() == Expiry::SendBye {
                    byes += 1;
                }
            }
        }
    }
    assert_eq!(byes, 1);
    assert!(store.inner.is_empty() && a.tr.is_empty() && b.tr.is_empty());
}

#[test]
fn a_dead_nodes_dialogs_are_reaped_once() {
    let store = Arc::new(Recording::default());
    let a = Node::new(DbMode::Realtime, store.clone(), 1);
    a.call("d1", 0.0, 60);
    a.call("d2", 0.0, 3600);
    drop(a); // node A dies (kill -9): its timers are gone with it
    let b = Node::new(DbMode::Realtime, store.clone(), 2);
    let c = Node::new(DbMode::Realtime, store.clone(), 3);
    assert!(b.p.reap(t(61.9), 100).unwrap().is_empty());
    let reaped = b.p.reap(t(62.0), 100).unwrap();
    assert_eq!(reaped.len(), 1);
    assert_eq!(&*reaped[0].call_id, "d1");
    assert!(c.p.reap(t(62.0), 100).unwrap().is_empty());
    assert_eq!(store.inner.len(), 1);
    // Other modes have nothing to reap (one node: its own timers).
    let d = Node::new(DbMode::Delayed, store.clone(), 4);
    assert!(d.p.reap(t(99_999.0), 100).unwrap().is_empty());
}

#[test]
fn a_changed_dialog_is_written_with_its_newest_revision() {
    // Writes from several threads may reach the store out of order: it keeps the newest.
    let store = Arc::new(Recording::default());
    let n = Node::new(DbMode::Realtime, store.clone(), 1);
    n.call("o1", 0.0, 3600);
    let h = n.tr.find("o1", "a1", "b1").unwrap();
    let c1 = n.tr.set_var(h, "k", Some("1")).unwrap();
    let c2 = n.tr.set_var(h, "k", Some("2")).unwrap();
    n.p.record(&c2, t(5.0)).unwrap();
    n.p.record(&c1, t(5.0)).unwrap();
    assert_eq!(store.inner.get(h.uid).unwrap().unwrap().var("k"), Some("2"));
}
