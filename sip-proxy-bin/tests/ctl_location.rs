//! `sip-proxy ctl location` against a running proxy: registrations made by hand-made
//! REGISTERs are listed, one contact or all are removed, and calls stop reaching them.

mod support;

use std::time::Duration;

use support::dir::TempDir;
use support::proxy::Proxy;
use support::ua::TextUa;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn list_and_remove_bindings() {
    let dir = TempDir::new("ctl-location");
    let p = Proxy::small(&dir, &[]);
    assert_eq!(p.ok(&["location", "list"]), "no registrations\n");
    let (bob1, bob2, carol) = (
        TextUa::new("127.0.0.1"),
        TextUa::new("127.0.0.1"),
        TextUa::new("127.0.0.1"),
    );
    assert_eq!(bob1.register(p.addr(), "bob", 1, "").status(), Some(200));
    assert_eq!(
        bob2.register(p.addr(), "bob", 1, "User-Agent: phone-2\r\n")
            .status(),
        Some(200)
    );
    assert_eq!(carol.register(p.addr(), "carol", 1, "").status(), Some(200));

    let table = p.ok(&["location", "list"]);
    assert!(table.starts_with("AOR "), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    for ua in [&bob1, &bob2, &carol] {
        assert!(table.contains(&format!("@{}", ua.addr)), "{table}");
    }
    assert!(table.contains("phone-2"), "{table}");

    // One AOR, by its URI or without the scheme; JSON for scripts.
    let one = p.json(&["location", "list", "bob@localhost"]);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["aor"], "sip:bob@localhost");
    let bindings = one[0]["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), 2);
    let b2 = bindings
        .iter()
        .find(|b| b["user_agent"] == "phone-2")
        .unwrap();
    assert_eq!(b2["received"], format!("udp:{}", bob2.addr));
    let expires = b2["expires"].as_u64().unwrap();
    assert!((290..=300).contains(&expires), "{expires}");
    let contact2 = b2["contact"].as_str().unwrap().to_owned();

    // A call to bob reaches him while registered.
    let caller = TextUa::new("127.0.0.1");
    let from = format!("sip:alice@{}", caller.addr);
    caller.send(
        p.addr(),
        &caller.request(
            "MESSAGE",
            "sip:bob@localhost",
            &from,
            "sip:bob@localhost",
            "m1",
            1,
            "",
        ),
    );
    // Forked to both contacts: each answers what it gets.
    let mut delivered = 0;
    for ua in [&bob1, &bob2] {
        if let Some(m) = ua.wait_for(WAIT, |m| m.method() == Some("MESSAGE")) {
            ua.send(p.addr(), &m.answer("200 OK", Some("b"), ""));
            delivered += 1;
        }
    }
    assert_eq!(
        delivered, 2,
        "MESSAGE not forked to both registered contacts"
    );
    assert_eq!(
        caller.final_response(WAIT).and_then(|m| m.status()),
        Some(200)
    );

    // Remove one contact: the other stays.
    let out = p.ok(&["location", "remove", "sip:bob@localhost", &contact2]);
    assert_eq!(out, "removed 1 binding(s) of sip:bob@localhost\n");
    let left = p.json(&["location", "list", "sip:bob@localhost"]);
    assert_eq!(left[0]["bindings"].as_array().unwrap().len(), 1);
    assert_ne!(left[0]["bindings"][0]["contact"], contact2.as_str());
    let e = p.fails(&["location", "remove", "sip:bob@localhost", &contact2], 1);
    assert!(e.contains("has no contact"), "{e}");

    // Remove all of bob's: calls to him are no longer routed (404: no such user here).
    assert_eq!(
        p.ok(&["location", "remove", "sip:bob@localhost"]),
        "removed 1 binding(s) of sip:bob@localhost\n"
    );
    assert_eq!(
        p.ok(&["location", "list", "sip:bob@localhost"]),
        "sip:bob@localhost has no bindings\n"
    );
    caller.send(
        p.addr(),
        &caller.request(
            "MESSAGE",
            "sip:bob@localhost",
            &from,
            "sip:bob@localhost",
            "m2",
            1,
            "",
        ),
    );
    assert_eq!(
        caller.final_response(WAIT).and_then(|m| m.status()),
        Some(404)
    );
    let e = p.fails(&["location", "remove", "sip:bob@localhost"], 1);
    assert!(e.contains("has no bindings"), "{e}");
    let e = p.fails(&["location", "remove", "no way"], 1);
    assert!(e.contains("not an address-of-record"), "{e}");

    // carol untouched; the gauges agree.
    let all = p.json(&["location", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["aor"], "sip:carol@localhost");
    assert_eq!(p.stat("bindings"), 1);
    assert_eq!(p.stat("registrations"), 3);
}
