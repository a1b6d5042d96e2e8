//! `sip-proxy ctl ban` and `ctl allow` against a running proxy: a banned source's datagrams
//! go unanswered (and are counted), a trusted one is never banned, bans are lifted by hand
//! and end by themselves.

mod support;

use std::time::Duration;

use support::dir::TempDir;
use support::proxy::Proxy;
use support::ua::TextUa;

const SHORT: Duration = Duration::from_millis(700);
const LONG: Duration = Duration::from_secs(5);

#[test]
fn ban_add_list_remove_and_allow_list_edits() {
    let dir = TempDir::new("ctl-bans");
    let p = Proxy::small(&dir, &[]);
    let x = TextUa::new("127.0.0.2");
    let mut n = 0;
    let mut ping = |wait| {
        n += 1;
        x.options(p.addr(), "sip:localhost", &format!("ping-{n}"), wait)
    };
    assert_eq!(ping(LONG).and_then(|m| m.status()), Some(200));
    assert_eq!(p.ok(&["ban", "list"]), "no banned sources\n");

    // A manual ban: listed with the time left, and the source gets no answer.
    assert_eq!(
        p.ok(&["ban", "add", "127.0.0.2", "--seconds", "60"]),
        "banned 127.0.0.2 for 60 s\n"
    );
    let bans = p.json(&["ban", "list"]);
    assert_eq!(bans[0]["ip"], "127.0.0.2");
    let left = bans[0]["remaining"].as_u64().unwrap();
    assert!((55..=60).contains(&left), "{left}");
    assert!(p.ok(&["ban", "list"]).contains("127.0.0.2"));
    let drops = p.stat("banned_drops");
    assert!(ping(SHORT).is_none(), "a banned source was answered");
    assert_eq!(p.stat("banned_drops"), drops + 1);
    assert_eq!(p.stat("bans_active"), 1);

    // Trusted networks win over bans; a trusted source cannot be banned.
    assert_eq!(p.ok(&["allow", "list"]), "no trusted networks\n");
    assert_eq!(
        p.ok(&["allow", "add", "127.0.0.2"]),
        "127.0.0.2/32 trusted\n"
    );
    assert_eq!(
        p.ok(&["allow", "add", "127.0.0.2/32"]),
        "127.0.0.2/32 was already trusted\n"
    );
    assert_eq!(
        p.json(&["allow", "list"]),
        serde_json::json!(["127.0.0.2/32"])
    );
    assert_eq!(ping(LONG).and_then(|m| m.status()), Some(200));
    let e = p.fails(&["ban", "add", "127.0.0.2"], 1);
    assert!(e.contains("trusted"), "{e}");
    assert!(
        p.ok(&["allow", "remove", "127.0.0.2/32"])
            .contains("no longer trusted")
    );
    let e = p.fails(&["allow", "remove", "127.0.0.2/32"], 1);
    assert!(e.contains("not in the allow list"), "{e}");
    assert!(
        ping(SHORT).is_none(),
        "the ban came back with the network gone"
    );

    // Lifted by hand.
    assert_eq!(
        p.ok(&["ban", "remove", "127.0.0.2"]),
        "ban on 127.0.0.2 lifted\n"
    );
    assert_eq!(ping(LONG).and_then(|m| m.status()), Some(200));
    let e = p.fails(&["ban", "remove", "127.0.0.2"], 1);
    assert!(e.contains("not banned"), "{e}");

    // A ban ends by itself.
    p.ok(&["ban", "add", "127.0.0.2", "--seconds", "1"]);
    assert!(ping(SHORT).is_none());
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(ping(LONG).and_then(|m| m.status()), Some(200));
    assert_eq!(p.ok(&["ban", "list"]), "no banned sources\n");

    // Arguments checked by the proxy, errors said plainly.
    let e = p.fails(&["ban", "add", "not-an-ip"], 1);
    assert!(e.contains("not an IP address"), "{e}");
    let e = p.fails(&["ban", "add", "127.0.0.3", "--seconds", "0"], 1);
    assert!(e.contains("at least 1"), "{e}");
    let e = p.fails(&["ban", "add", "127.0.0.3", "--seconds", "315360001"], 1);
    assert!(e.contains("at most 315360000"), "{e}");
    assert_eq!(p.ok(&["ban", "list"]), "no banned sources\n");
    let e = p.fails(&["allow", "add", "10.0.0.0/99"], 1);
    assert!(e.contains("not a network"), "{e}");
    // Other sources were never affected.
    let y = TextUa::new("127.0.0.1");
    assert_eq!(
        y.options(p.addr(), "sip:localhost", "other", LONG)
            .and_then(|m| m.status()),
        Some(200)
    );
}

#[test]
fn configured_trusted_networks_are_listed() {
    let dir = TempDir::new("ctl-trusted");
    let p = Proxy::small(&dir, &["--trusted", "192.0.2.0/24", "--trusted", "::1"]);
    assert_eq!(p.ok(&["allow", "list"]), "NETWORK\n192.0.2.0/24\n::1/128\n");
}
