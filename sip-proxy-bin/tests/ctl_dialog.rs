//! `sip-proxy ctl dialog` against a running proxy: a call set up between two hand-made user
//! agents (INVITE, 200, ACK through the proxy's Record-Route) is listed, and `dialog end`
//! sends each party a BYE in the dialog (RFC 3261 §12.2.1.1: the other party's tags,
//! Call-ID, a CSeq above the one the other party used).

mod support;

use std::time::Duration;

use support::dir::TempDir;
use support::proxy::Proxy;
use support::ua::TextUa;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn dialog_end_sends_bye_both_ways() {
    let dir = TempDir::new("ctl-dialog");
    let p = Proxy::small(&dir, &[]);
    let (alice, bob) = (TextUa::new("127.0.0.1"), TextUa::new("127.0.0.1"));
    assert_eq!(bob.register(p.addr(), "bob", 1, "").status(), Some(200));
    assert_eq!(p.ok(&["dialog", "list"]), "no dialogs\n");

    // INVITE alice → proxy → bob.
    let from = "sip:alice@localhost";
    let invite = alice.request(
        "INVITE",
        "sip:bob@localhost",
        from,
        "sip:bob@localhost",
        "call-1",
        7,
        &format!("Contact: <sip:alice@{}>\r\n", alice.addr),
    );
    alice.send(p.addr(), &invite);
    let inv = bob
        .wait_for(WAIT, |m| m.method() == Some("INVITE"))
        .expect("INVITE not delivered");
    assert!(!inv.header("Record-Route").is_empty(), "{}", inv.0);
    let early = p.json(&["dialog", "list"]);
    assert_eq!(early[0]["state"], "unconfirmed");
    let id = early[0]["id"].as_str().unwrap().to_owned();
    let e = p.fails(&["dialog", "end", &id], 1);
    assert!(e.contains("not answered"), "{e}");

    // 200 bob → proxy → alice; ACK alice → proxy (Route) → bob.
    let ok = inv.answer(
        "200 OK",
        Some("bobtag"),
        &format!("Contact: <sip:bob@{}>\r\n", bob.addr),
    );
    bob.send(p.addr(), &ok);
    let ok = alice.final_response(WAIT).expect("200 not relayed");
    assert_eq!(ok.status(), Some(200));
    let route = ok.header("Record-Route").to_owned();
    let ack = format!(
        "ACK sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-ack1;rport\r\nMax-Forwards: 70\r\nRoute: {route}\r\nFrom: <{from}>;tag=t-call-1\r\nTo: {}\r\nCall-ID: call-1\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
        bob.addr,
        alice.addr,
        ok.header("To"),
    );
    alice.send(p.addr(), &ack);
    bob.wait_for(WAIT, |m| m.method() == Some("ACK"))
        .expect("ACK not routed");

    let list = p.json(&["dialog", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let d = &list[0];
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["state"], "confirmed");
    assert_eq!(d["call_id"], "call-1");
    assert_eq!(d["from_tag"], "t-call-1");
    assert_eq!(d["to_tag"], "bobtag");
    let table = p.ok(&["dialog", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&id) && table.contains("confirmed"),
        "{table}"
    );
    assert_eq!(p.stat("dialogs_live"), 1);
    // The call KPIs since the start (sip-dialog's figures, as the metrics export them).
    let stats = p.json(&["stats"]);
    assert_eq!(stats["kpi.attempts"], 1);
    assert_eq!(stats["kpi.answered"], 1);
    assert_eq!(stats["kpi.asr_percent"], 100.0);
    assert_eq!(stats["requests.INVITE"], 1);
    assert_eq!(stats["requests.ACK"], 1);
    assert!(stats.get("hep_sent").is_none(), "no HEP capture: {stats}");

    // End it: a BYE to each party, as the other party would send it.
    assert_eq!(
        p.ok(&["dialog", "end", &id]),
        format!("dialog {id} ended: BYE sent to both parties\n")
    );
    let to_alice = alice
        .wait_for(WAIT, |m| m.method() == Some("BYE"))
        .expect("no BYE to the caller");
    let to_bob = bob
        .wait_for(WAIT, |m| m.method() == Some("BYE"))
        .expect("no BYE to the callee");
    for bye in [&to_alice, &to_bob] {
        assert_eq!(bye.header("Call-ID"), "call-1");
        assert!(bye.header("Reason").contains("operator"), "{}", bye.0);
    }
    // To the caller: from bob (his tag), to alice (hers), at alice's Contact.
    assert!(
        to_alice
            .start()
            .starts_with(&format!("BYE sip:alice@{}", alice.addr)),
        "{}",
        to_alice.0
    );
    assert_eq!(to_alice.tag("From"), "bobtag");
    assert_eq!(to_alice.tag("To"), "t-call-1");
    assert_eq!(to_alice.header("CSeq"), "1 BYE");
    // To the callee: from alice, to bob, CSeq above alice's INVITE.
    assert!(
        to_bob
            .start()
            .starts_with(&format!("BYE sip:bob@{}", bob.addr)),
        "{}",
        to_bob.0
    );
    assert_eq!(to_bob.tag("From"), "t-call-1");
    assert_eq!(to_bob.tag("To"), "bobtag");
    assert_eq!(to_bob.header("CSeq"), "8 BYE");
    alice.send(p.addr(), &to_alice.answer("200 OK", None, ""));
    bob.send(p.addr(), &to_bob.answer("200 OK", None, ""));

    assert_eq!(p.ok(&["dialog", "list"]), "no dialogs\n");
    let e = p.fails(&["dialog", "end", &id], 1);
    assert!(e.contains("no dialog"), "{e}");
    let e = p.fails(&["dialog", "end", "xyz"], 1);
    assert!(e.contains("not a dialog id"), "{e}");
}
