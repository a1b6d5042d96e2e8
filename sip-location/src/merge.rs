//! [`merge`]: the one rule by which every store turns an AOR's stored bindings and a
//! batch of [`Op`]s into its new binding set and the [`Event`]s to report.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use smallvec::SmallVec;

use crate::binding::Binding;
use crate::change::{Event, EventKind, Op};

/// An AOR's binding set after a batch of ops, and what changed on the way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Merged {
    /// The bindings the AOR keeps, in the order the ops left them (not lookup order: sort
    /// with [`order`](crate::order) where that matters).
    pub live: SmallVec<[Binding; 4]>,
    /// What happened, in the order it happened: first the stored bindings found expired,
    /// then one or more events per op.
    pub events: Vec<Event>,
}

/// Applies `ops` to the bindings `old` an AOR had (as stored, expired ones included), at
/// time `now`. Every store computes its new binding set with this, before checking its
/// limits and writing (so that a refused write changes nothing), and reports the events it
/// returns.
///
/// The rule, step by step:
/// 1. each binding of `old` expired at `now` is dropped, with an
///    [`Expired`](EventKind::Expired) event (it had expired unseen);
/// 2. then each op in order:
///    * [`Op::Put`] replaces the live binding it is the same as
///      ([`Binding::same_binding`]: the same flow, else the same contact), with a
///      [`Refreshed`](EventKind::Refreshed) event, or adds it at the end, with a
///      [`Saved`](EventKind::Saved) event;
///    * [`Op::Remove`] removes the first live binding it is the same as, if any, with a
///      [`Removed`](EventKind::Removed) event for the binding removed;
///    * [`Op::RemoveContact`] removes every live binding with that contact
///      ([`Binding::same_contact`]), a [`Removed`](EventKind::Removed) event each;
///    * [`Op::Clear`] removes every live binding, a [`Removed`](EventKind::Removed) event
///      each.
///
/// Every event carries `aor` (an `Arc` clone: the text is shared, not copied). No limit is
/// applied here: the store checks the size of [`Merged::live`] against its own.
///
/// ```
/// use core::time::Duration;
/// use std::sync::Arc;
/// use sip_location::{Binding, BindingFields, EventKind, Op, merge};
///
/// let b = |contact: &str, expires_at| Binding::new(&BindingFields::new(contact, expires_at)).unwrap();
/// let aor: Arc<str> = Arc::from("sip:alice@example.com");
/// let old = [b("sip:alice@10.0.0.1", 100), b("sip:alice@10.0.0.2", 500)];
/// let ops = [Op::Put(b("sip:alice@10.0.0.2", 900)), Op::Put(b("sip:alice@10.0.0.3", 900))];
/// let m = merge(&aor, old, &ops, Duration::from_secs(200));
/// let kinds: Vec<EventKind> = m.events.iter().map(|e| e.kind).collect();
/// assert_eq!(kinds, [EventKind::Expired, EventKind::Refreshed, EventKind::Saved]);
/// let contacts: Vec<&str> = m.live.iter().map(Binding::contact).collect();
/// assert_eq!(contacts, ["sip:alice@10.0.0.2", "sip:alice@10.0.0.3"]);
/// assert_eq!(m.live[0].expires_at(), 900);
/// ```
pub fn merge(
    aor: &Arc<str>,
    old: impl IntoIterator<Item = Binding>,
    ops: &[Op],
    now: Duration,
) -> Merged {
    let mut events = Vec::new();
    let event = |kind, binding: &Binding| Event {
        kind,
        aor: aor.clone(),
        binding: binding.clone(),
    };
    let mut live: SmallVec<[Binding; 4]> = SmallVec::new();
    for b in old {
        if b.is_expired(now) {
            events.push(event(EventKind::Expired, &b));
        } else {
            live.push(b);
        }
    }
    for op in ops {
        match op {
            Op::Put(b) => {
                if let Some(i) = live.iter().position(|x| x.same_binding(b)) {
                    live[i] = b.clone();
                    events.push(event(EventKind::Refreshed, b));
                } else {
                    live.push(b.clone());
                    events.push(event(EventKind::Saved, b));
                }
            }
            Op::Remove(b) => {
                if let Some(i) = live.iter().position(|x| x.same_binding(b)) {
                    let b = live.remove(i);
                    events.push(event(EventKind::Removed, &b));
                }
            }
            Op::RemoveContact(c) => live.retain(|x| {
                let gone = x.same_contact(c);
                if gone {
                    events.push(event(EventKind::Removed, x));
                }
                !gone
            }),
            Op::Clear => {
                for b in live.drain(..) {
                    events.push(event(EventKind::Removed, &b));
                }
            }
        }
    }
    Merged { live, events }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{BindingFields, Flags};
    use alloc::format;
    use alloc::string::String;
    use proptest::prelude::*;

    const NOW: u64 = 1_000;

    fn b(contact: &str, expires_at: u64) -> Binding {
        Binding::new(&BindingFields::new(contact, expires_at)).unwrap()
    }

    /// An RFC 5626 flow (registered with Outbound).
    fn flow(contact: &str, instance: &str, reg_id: u32, expires_at: u64) -> Binding {
        Binding::new(&BindingFields {
            instance: Some(instance),
            reg_id: Some(reg_id),
            flags: Flags::OUTBOUND,
            ..BindingFields::new(contact, expires_at)
        })
        .unwrap()
    }

    fn run(old: &[Binding], ops: &[Op]) -> Merged {
        merge(
            &Arc::from("sip:a@x"),
            old.iter().cloned(),
            ops,
            Duration::from_secs(NOW),
        )
    }

    fn kinds(m: &Merged) -> Vec<(EventKind, String)> {
        m.events
            .iter()
            .map(|e| (e.kind, String::from(e.binding.contact())))
            .collect()
    }

    fn contacts(m: &Merged) -> Vec<&str> {
        m.live.iter().map(Binding::contact).collect()
    }

    #[test]
    fn expired_bindings_go_first_with_an_event() {
        // RFC 3261 §10.3 step 7: expired bindings are not part of the set any more.
        let m = run(&[b("sip:1@h", NOW), b("sip:2@h", NOW + 1)], &[]);
        assert_eq!(contacts(&m), ["sip:2@h"]);
        assert_eq!(kinds(&m), [(EventKind::Expired, "sip:1@h".into())]);
    }

    #[test]
    fn put_refreshes_the_same_contact_and_saves_a_new_one() {
        // RFC 3261 §10.3 step 7: "If the binding does exist, the registrar checks the
        // Call-ID value" … "the binding is updated"; else "the binding is added".
        let m = run(
            &[b("sip:1@h", NOW + 10)],
            &[
                Op::Put(b("sip:1@H", NOW + 20)),
                Op::Put(b("sip:2@h", NOW + 5)),
            ],
        );
        assert_eq!(contacts(&m), ["sip:1@H", "sip:2@h"]);
        assert_eq!(m.live[0].expires_at(), NOW + 20);
        assert_eq!(
            kinds(&m),
            [
                (EventKind::Refreshed, "sip:1@H".into()),
                (EventKind::Saved, "sip:2@h".into())
            ]
        );
    }

    #[test]
    fn put_of_a_flow_replaces_the_flow_whatever_its_contact() {
        // RFC 5626 §6: a binding is identified by its instance and reg-id.
        let m = run(
            &[flow("sip:1@h", "<urn:uuid:a>", 1, NOW + 10)],
            &[Op::Put(flow("sip:9@h", "<urn:uuid:a>", 1, NOW + 20))],
        );
        assert_eq!(contacts(&m), ["sip:9@h"]);
        assert_eq!(kinds(&m), [(EventKind::Refreshed, "sip:9@h".into())]);
    }

    #[test]
    fn remove_reports_the_stored_binding_and_ignores_an_unknown_one() {
        let m = run(
            &[b("sip:1@h", NOW + 10), b("sip:2@h", NOW + 10)],
            &[Op::Remove(b("sip:2@h", 0)), Op::Remove(b("sip:3@h", 0))],
        );
        assert_eq!(contacts(&m), ["sip:1@h"]);
        assert_eq!(kinds(&m), [(EventKind::Removed, "sip:2@h".into())]);
        assert_eq!(m.events[0].binding.expires_at(), NOW + 10);
    }

    #[test]
    fn remove_contact_removes_every_flow_of_the_contact() {
        let m = run(
            &[
                flow("sip:1@h", "<urn:uuid:a>", 1, NOW + 10),
                flow("sip:1@h", "<urn:uuid:a>", 2, NOW + 10),
                b("sip:2@h", NOW + 10),
            ],
            &[Op::RemoveContact("sip:1@h".into())],
        );
        assert_eq!(contacts(&m), ["sip:2@h"]);
        assert_eq!(m.events.len(), 2);
        assert!(m.events.iter().all(|e| e.kind == EventKind::Removed));
    }

    #[test]
    fn clear_then_put_leaves_only_the_new_binding() {
        // RFC 3261 §10.3 step 6: `Contact: *` removes every binding.
        let m = run(
            &[b("sip:1@h", NOW + 10), b("sip:2@h", NOW - 1)],
            &[Op::Clear, Op::Put(b("sip:3@h", NOW + 10))],
        );
        assert_eq!(contacts(&m), ["sip:3@h"]);
        assert_eq!(
            kinds(&m),
            [
                (EventKind::Expired, "sip:2@h".into()),
                (EventKind::Removed, "sip:1@h".into()),
                (EventKind::Saved, "sip:3@h".into())
            ]
        );
        assert!(m.events.iter().all(|e| &*e.aor == "sip:a@x"));
    }

    /// The rule as the stores wrote it each for themselves before it was shared (the
    /// memory store's copy, on a plain `Vec`), kept as the reference.
    fn reference(aor: &Arc<str>, old: &[Binding], ops: &[Op], now: Duration) -> Merged {
        let mut events = Vec::new();
        let event = |kind, binding: &Binding| Event {
            kind,
            aor: aor.clone(),
            binding: binding.clone(),
        };
        let mut live: Vec<Binding> = Vec::new();
        for b in old {
            if b.is_expired(now) {
                events.push(event(EventKind::Expired, b));
            } else {
                live.push(b.clone());
            }
        }
        for op in ops {
            match op {
                Op::Put(b) => {
                    if let Some(i) = live.iter().position(|x| x.same_binding(b)) {
                        live[i] = b.clone();
                        events.push(event(EventKind::Refreshed, b));
                    } else {
                        live.push(b.clone());
                        events.push(event(EventKind::Saved, b));
                    }
                }
                Op::Remove(b) => {
                    if let Some(i) = live.iter().position(|x| x.same_binding(b)) {
                        let b = live.remove(i);
                        events.push(event(EventKind::Removed, &b));
                    }
                }
                Op::RemoveContact(c) => {
                    live.retain(|x| {
                        let gone = x.same_contact(c);
                        if gone {
                            events.push(event(EventKind::Removed, x));
                        }
                        !gone
                    });
                }
                Op::Clear => {
                    for b in live.drain(..) {
                        events.push(event(EventKind::Removed, &b));
                    }
                }
            }
        }
        Merged {
            live: live.into_iter().collect(),
            events,
        }
    }

    /// A binding out of few contacts (two spelled alike but for the host's case) and
    /// flows, so that ops often hit stored bindings.
    fn binding() -> impl Strategy<Value = Binding> {
        (
            0u8..4,
            any::<bool>(),
            proptest::option::of((0u8..2, 1u32..3)),
            NOW - 3..NOW + 3,
        )
            .prop_map(|(c, upper, flow_of, expires_at)| {
                let host = if upper { "H" } else { "h" };
                let contact = format!("sip:{c}@{host}");
                match flow_of {
                    Some((i, r)) => flow(&contact, &format!("<urn:uuid:{i}>"), r, expires_at),
                    None => b(&contact, expires_at),
                }
            })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => binding().prop_map(Op::Put),
            2 => binding().prop_map(Op::Remove),
            1 => (0u8..4).prop_map(|c| Op::RemoveContact(format!("sip:{c}@h"))),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #[test]
        fn matches_the_rule_the_stores_had(
            old in proptest::collection::vec(binding(), 0..6),
            ops in proptest::collection::vec(op(), 0..8),
        ) {
            let aor: Arc<str> = Arc::from("sip:a@x");
            let now = Duration::from_secs(NOW);
            let m = merge(&aor, old.iter().cloned(), &ops, now);
            prop_assert_eq!(&m, &reference(&aor, &old, &ops, now));
            // One Saved or Refreshed event per Put; one Expired event per expired stored
            // binding.
            let puts = ops.iter().filter(|o| matches!(o, Op::Put(_))).count();
            let stored = m.events.iter().filter(|e| matches!(e.kind, EventKind::Saved | EventKind::Refreshed)).count();
            prop_assert_eq!(stored, puts);
            let expired = m.events.iter().filter(|e| e.kind == EventKind::Expired).count();
            prop_assert_eq!(expired, old.iter().filter(|b| b.is_expired(now)).count());
        }
    }
}
