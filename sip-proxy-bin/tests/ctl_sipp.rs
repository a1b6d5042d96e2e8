//! `sip-proxy ctl` against a running proxy with SIPp on the SIP side (loopback, one call per
//! SIPp run, bounded): `dialog end` sends a BYE to both SIPp parties of a confirmed call;
//! `location remove` makes calls to the user get 404; a source banned by `ban add` gets no
//! answer at all until `ban remove`.

mod support;

use std::time::{Duration, Instant};

use support::dir::TempDir;
use support::net::free_udp_port;
use support::proxy::Proxy;
use support::sipp::one_call;

/// `sip:bob@localhost` registered by SIPp from `port` (its Contact).
fn register(p: &Proxy, dir: &std::path::Path, port: u16) {
    one_call(dir, "register", "ctl_register", "bob", port, Some(p.addr()))
        .succeeds("REGISTER answered 200");
}

/// The id of the only dialog once it is confirmed.
fn confirmed_dialog(p: &Proxy) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let list = p.json(&["dialog", "list"]);
        if let Some(d) = list.as_array().and_then(|a| a.first()) {
            if d["state"] == "confirmed" {
                assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
                return d["id"].as_str().unwrap().to_owned();
            }
        }
        assert!(
            Instant::now() < end,
            "no confirmed dialog: {list}\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dialog_end_sends_bye_to_both_sipp_parties() {
    let dir = TempDir::new("ctl-sipp-dialog");
    let p = Proxy::small(&dir, &[]);
    let uas_port = free_udp_port();
    register(&p, &dir, uas_port);
    let uas = one_call(&dir, "uas", "ctl_uas", "bob", uas_port, None);
    let uac = one_call(
        &dir,
        "uac",
        "ctl_uac",
        "bob",
        free_udp_port(),
        Some(p.addr()),
    );

    let id = confirmed_dialog(&p);
    assert_eq!(p.stat("dialogs_live"), 1);
    assert_eq!(
        p.ok(&["dialog", "end", &id]),
        format!("dialog {id} ended: BYE sent to both parties\n")
    );
    // Each scenario ends only after a BYE of its call with the operator's Reason, answered.
    uac.succeeds("the caller got its BYE");
    uas.succeeds("the callee got its BYE");
    let end = Instant::now() + Duration::from_secs(5);
    while p.stat("dialogs_live") != 0 {
        assert!(Instant::now() < end, "the dialog stayed: {}", p.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.ok(&["dialog", "list"]), "no dialogs\n");
    let stats = p.json(&["stats"]);
    // The INVITE, the ACK; the two BYEs were the proxy's own, their 200s received.
    assert_eq!(stats["requests.INVITE"], 1);
    assert_eq!(stats["requests.ACK"], 1);
    assert_eq!(stats["requests.BYE"], 0);
    assert_eq!(stats["kpi.answered"], 1);
}

#[test]
fn removed_location_makes_calls_get_404() {
    let dir = TempDir::new("ctl-sipp-location");
    let p = Proxy::small(&dir, &[]);
    let uas_port = free_udp_port();
    register(&p, &dir, uas_port);
    let listed = p.json(&["location", "list", "sip:bob@localhost"]);
    let contact = listed[0]["bindings"][0]["contact"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(contact, format!("sip:bob@127.0.0.1:{uas_port}"));

    // Registered: the call reaches the SIPp callee (ended by the operator: no BYE scenario
    // needed on the caller's side).
    let uas = one_call(&dir, "uas", "ctl_uas", "bob", uas_port, None);
    let uac = one_call(
        &dir,
        "uac",
        "ctl_uac",
        "bob",
        free_udp_port(),
        Some(p.addr()),
    );
    let id = confirmed_dialog(&p);
    p.ok(&["dialog", "end", &id]);
    uac.succeeds("call to a registered user");
    uas.succeeds("call to a registered user");

    assert_eq!(
        p.ok(&["location", "remove", "sip:bob@localhost", &contact]),
        "removed 1 binding(s) of sip:bob@localhost\n"
    );
    assert_eq!(p.stat("bindings"), 0);
    let not_routed = p.stat("not_routed");
    one_call(
        &dir,
        "uac404",
        "ctl_uac_404",
        "bob",
        free_udp_port(),
        Some(p.addr()),
    )
    .succeeds("404 after the binding was removed");
    assert_eq!(p.stat("not_routed"), not_routed + 1);
}

#[test]
fn banned_sipp_source_gets_no_answer() {
    let dir = TempDir::new("ctl-sipp-ban");
    let p = Proxy::small(&dir, &[]);
    let options = |name: &str, file: &str| {
        one_call(&dir, name, file, "probe", free_udp_port(), Some(p.addr()))
    };
    options("before", "ctl_options").succeeds("answered before the ban");

    p.ok(&["ban", "add", "127.0.0.1", "--seconds", "60"]);
    let drops = p.stat("banned_drops");
    let answered = p.stat("responses_sent.2xx");
    options("banned", "ctl_options_unanswered").succeeds("no answer while banned");
    // The OPTIONS and its retransmissions (every 500 ms for 2 s) were all dropped.
    let dropped = p.stat("banned_drops") - drops;
    assert!((3..=6).contains(&dropped), "{dropped}");
    assert_eq!(p.stat("responses_sent.2xx"), answered);

    p.ok(&["ban", "remove", "127.0.0.1"]);
    options("after", "ctl_options").succeeds("answered after the ban was lifted");
}
