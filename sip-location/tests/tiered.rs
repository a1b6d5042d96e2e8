//! The four persistence modes (Kamailio `usrloc` `db_mode`) write the backing store exactly
//! when they should: a `RecordingStore` stands for the SQLite or Redis backend, records every
//! call made to it, and can be made to fail.

use core::time::Duration;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sip_location::registrar;
use sip_location::{
    Applied, Binding, BindingFields, Changes, Counts, Cursor, Event, LocationStore, MemoryStore,
    Mode, Op, Policy, Snapshot, Source, StoreError, Tiered,
};
use sip_parser::{Message, Transport};

const T0: u64 = 1_700_000_000;

fn at(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A backend test double: a memory store that logs each call and fails writes on demand.
#[derive(Default)]
struct RecordingStore {
    inner: MemoryStore,
    calls: Mutex<Vec<String>>,
    fail_writes: AtomicBool,
}

impl RecordingStore {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
    fn writes(&self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter(|c| c.starts_with("apply"))
            .collect()
    }
}

impl LocationStore for RecordingStore {
    fn lookup(&self, aor: &str, now: Duration) -> Result<Snapshot, StoreError> {
        self.log(format!("lookup {aor}"));
        self.inner.lookup(aor, now)
    }
    fn apply(&self, changes: &Changes, now: Duration) -> Result<Applied, StoreError> {
        self.log(format!("apply {} ops={}", changes.aor, changes.ops.len()));
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk full".into()));
        }
        self.inner.apply(changes, now)
    }
    fn apply_all(&self, batch: &[Changes], now: Duration) -> Result<Vec<Applied>, StoreError> {
        self.log(format!("batch {}", batch.len()));
        batch.iter().map(|c| self.apply(c, now)).collect()
    }
    fn expire(&self, now: Duration, max: usize) -> Result<Vec<Event>, StoreError> {
        self.log("expire".into());
        self.inner.expire(now, max)
    }
    fn counts(&self) -> Result<Counts, StoreError> {
        self.inner.counts()
    }
    fn scan(
        &self,
        cursor: Cursor,
        max_aors: usize,
        now: Duration,
        visit: &mut dyn FnMut(&str, &[Binding]),
    ) -> Result<Option<Cursor>, StoreError> {
        self.log("scan".into());
        self.inner.scan(cursor, max_aors, now, visit)
    }
}

fn put(aor: &str, contact: &str, expires_at: u64) -> Changes {
    Changes::new(aor).with(Op::Put(
        Binding::new(&BindingFields::new(contact, expires_at)).unwrap(),
    ))
}

fn contacts<S: LocationStore>(s: &S, aor: &str, now: u64) -> Vec<String> {
    s.lookup(aor, at(now))
        .unwrap()
        .bindings()
        .iter()
        .map(|b| b.contact().into())
        .collect()
}

fn tiered(mode: Mode) -> Tiered<MemoryStore, RecordingStore> {
    Tiered::new(MemoryStore::default(), RecordingStore::default(), mode)
}

#[test]
fn db_mode_0_memory_only_never_touches_the_backing() {
    let t = tiered(Mode::MemoryOnly);
    t.apply(&put("sip:a@x", "sip:1@h", T0 + 60), at(T0))
        .unwrap();
    t.expire(at(T0 + 61), 10).unwrap();
    assert_eq!(t.flush(at(T0 + 61)).unwrap(), 0);
    assert_eq!(t.load(at(T0)).unwrap(), 0);
    assert!(t.backing().take().is_empty());
}

#[test]
fn db_mode_1_write_through_is_on_the_backing_before_apply_returns() {
    let t = tiered(Mode::WriteThrough);
    t.apply(&put("sip:a@x", "sip:1@h", T0 + 60), at(T0))
        .unwrap();
    assert_eq!(t.backing().writes(), ["apply sip:a@x ops=1"]);
    assert_eq!(contacts(t.backing(), "sip:a@x", T0), ["sip:1@h"]);
    assert_eq!(contacts(&t, "sip:a@x", T0), ["sip:1@h"]);
    // Reads come from the cache.
    t.backing().take();
    t.lookup("sip:a@x", at(T0)).unwrap();
    assert!(t.backing().take().is_empty());
    // A failed backing write fails the call and leaves the cache as it was.
    t.backing().fail_writes.store(true, Ordering::SeqCst);
    let e = t
        .apply(&put("sip:a@x", "sip:2@h", T0 + 60), at(T0))
        .unwrap_err();
    assert_eq!(e.status(), 503);
    assert_eq!(contacts(&t, "sip:a@x", T0), ["sip:1@h"]);
    assert_eq!(contacts(t.backing(), "sip:a@x", T0), ["sip:1@h"]);
    assert_eq!(
        t.flush(at(T0)).unwrap(),
        0,
        "nothing pending in write-through"
    );
}

#[test]
fn db_mode_1_registrar_answers_503_when_the_write_fails() {
    // RFC 3261 §10.3 step 7: "If any one of them fails (for example, because the back-end
    // database commit failed), the request MUST fail".
    let t = tiered(Mode::WriteThrough);
    t.backing().fail_writes.store(true, Ordering::SeqCst);
    let policy = Policy {
        retry_after: Some(5),
        ..Policy::default()
    };
    let msg = Message::parse(
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
          To: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: x\r\n\
          CSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.10>\r\n\r\n"
            .to_vec()
            .into(),
    )
    .unwrap();
    let src = Source::new("192.0.2.10:5060".parse().unwrap(), Transport::Udp);
    let r = registrar::register(&t, &msg, &src, at(T0), &policy);
    let reply = r.reply.unwrap();
    assert_eq!(reply.status, 503);
    assert!(matches!(r.error, Some(StoreError::Unavailable(_))));
    let resp = Message::parse(reply.response).unwrap();
    assert_eq!(resp.header("Retry-After"), Some(&b"5"[..]));
    assert!(
        t.lookup("sip:alice@example.com", at(T0))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn db_mode_2_write_back_writes_at_flush_once_per_aor() {
    let t = tiered(Mode::WriteBack);
    for (i, c) in ["sip:1@h", "sip:2@h", "sip:3@h"].iter().enumerate() {
        t.apply(&put("sip:a@x", c, T0 + 60 + i as u64), at(T0))
            .unwrap();
    }
    t.apply(&put("sip:b@x", "sip:1@h", T0 + 60), at(T0))
        .unwrap();
    assert!(
        t.backing().writes().is_empty(),
        "nothing written before the flush"
    );
    assert_eq!(t.dirty(), 2);
    assert_eq!(t.flush(at(T0 + 1)).unwrap(), 2);
    let mut w = t.backing().writes();
    w.sort();
    // One replacing write per AOR: Clear + its current bindings.
    assert_eq!(w, ["apply sip:a@x ops=4", "apply sip:b@x ops=2"]);
    assert_eq!(contacts(t.backing(), "sip:a@x", T0).len(), 3);
    assert_eq!(t.flush(at(T0 + 1)).unwrap(), 0);
    // A failed flush keeps the AOR dirty; the next one writes it.
    t.apply(&put("sip:b@x", "sip:2@h", T0 + 60), at(T0 + 2))
        .unwrap();
    t.backing().fail_writes.store(true, Ordering::SeqCst);
    assert!(t.flush(at(T0 + 3)).is_err());
    assert_eq!(t.dirty(), 1);
    t.backing().fail_writes.store(false, Ordering::SeqCst);
    assert_eq!(t.flush(at(T0 + 4)).unwrap(), 1);
    assert_eq!(contacts(t.backing(), "sip:b@x", T0 + 4).len(), 2);
    // Expiry in the cache marks the AOR dirty; the flush removes it from the backing.
    assert_eq!(t.expire(at(T0 + 100), 100).unwrap().len(), 5);
    assert_eq!(t.dirty(), 2);
    t.flush(at(T0 + 100)).unwrap();
    assert_eq!(t.backing().counts().unwrap().bindings, 0);
}

#[test]
fn db_mode_2_flush_hands_the_backing_batches() {
    // One `apply_all` per FLUSH_BATCH AORs: one transaction each in an SQL backend.
    let t = tiered(Mode::WriteBack);
    let n = sip_location::FLUSH_BATCH + 88;
    for i in 0..n {
        t.apply(&put(&format!("sip:u{i}@x"), "sip:1@h", T0 + 60), at(T0))
            .unwrap();
    }
    assert_eq!(t.flush(at(T0 + 1)).unwrap(), n);
    let batches: Vec<String> = t
        .backing()
        .take()
        .into_iter()
        .filter(|c| c.starts_with("batch"))
        .collect();
    assert_eq!(
        batches,
        [
            format!("batch {}", sip_location::FLUSH_BATCH),
            "batch 88".into()
        ]
    );
    assert_eq!(t.backing().counts().unwrap().aors, n);
    // A failing batch keeps every AOR not written dirty.
    for i in 0..n {
        t.apply(&put(&format!("sip:u{i}@x"), "sip:2@h", T0 + 60), at(T0 + 2))
            .unwrap();
    }
    t.backing().fail_writes.store(true, Ordering::SeqCst);
    assert!(t.flush(at(T0 + 3)).is_err());
    assert_eq!(t.dirty(), n);
}

#[test]
fn db_mode_2_restart_restores_from_the_backing() {
    let t = tiered(Mode::WriteBack);
    t.apply(&put("sip:a@x", "sip:1@h", T0 + 60), at(T0))
        .unwrap();
    t.apply(&put("sip:b@x", "sip:2@h", T0 + 60), at(T0))
        .unwrap();
    t.flush(at(T0)).unwrap(); // what a SIGTERM does
    // "Restart": a new cache over the same backing.
    let backing = RecordingStore::default();
    t.backing()
        .inner
        .scan(Cursor::START, 100, at(T0), &mut |aor, bs| {
            let mut ch = Changes::new(aor);
            ch.ops.extend(bs.iter().cloned().map(Op::Put));
            backing.inner.apply(&ch, at(T0)).unwrap();
        })
        .unwrap();
    let restarted = Tiered::new(MemoryStore::default(), backing, Mode::WriteBack);
    assert_eq!(restarted.load(at(T0 + 1)).unwrap(), 2);
    assert_eq!(contacts(&restarted, "sip:a@x", T0 + 1), ["sip:1@h"]);
    assert_eq!(contacts(&restarted, "sip:b@x", T0 + 1), ["sip:2@h"]);
    assert_eq!(
        restarted.dirty(),
        0,
        "loading is not a change to write back"
    );
}

#[test]
fn db_mode_3_store_only_never_uses_the_cache() {
    let t = tiered(Mode::StoreOnly);
    t.apply(&put("sip:a@x", "sip:1@h", T0 + 60), at(T0))
        .unwrap();
    assert_eq!(contacts(&t, "sip:a@x", T0), ["sip:1@h"]);
    assert_eq!(
        t.backing().take(),
        ["apply sip:a@x ops=1", "lookup sip:a@x"]
    );
    assert_eq!(t.cache().counts().unwrap().bindings, 0);
    assert_eq!(t.expire(at(T0 + 61), 10).unwrap().len(), 1);
}

#[test]
fn write_through_conflicts_are_detected_before_any_write() {
    let t = tiered(Mode::WriteThrough);
    let snap = t.lookup("sip:a@x", at(T0)).unwrap();
    let mut ch = put("sip:a@x", "sip:1@h", T0 + 60);
    ch.expected = Some(snap.version);
    t.apply(&ch, at(T0)).unwrap();
    t.backing().take();
    assert!(matches!(
        t.apply(&ch, at(T0)),
        Err(StoreError::Conflict { .. })
    ));
    assert!(t.backing().writes().is_empty());
}
