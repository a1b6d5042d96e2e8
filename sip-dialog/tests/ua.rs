//! User-agent dialogs (RFC 3261 §12) on the RFC's own examples: the call of §24.2
//! (Alice → atlanta.com → biloxi.com → Bob), a call through two record-routing proxies,
//! strict routing (§12.2.1.1), requests received in the dialog (§12.2.2), forking
//! (§13.2.2.4) and crossing BYEs (RFC 5407).

use proptest::prelude::*;
use sip_dialog::{Dialog, DialogError, ForkUpdate, ForkedInvite, Received, Role, UaState};
use sip_parser::Message;

fn msg(s: &str) -> Message {
    Message::parse(s.replace('\n', "\r\n").into_bytes().into()).unwrap()
}

/// F1 of RFC 3261 §24.2 (the body left out).
fn f1_invite() -> Message {
    msg("INVITE sip:bob@biloxi.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.com>
Content-Length: 0

")
}

/// F8-F9 of §24.2: Bob's 180 and 200 as Alice receives them.
fn f9(status: &str) -> Message {
    msg(&format!(
        "SIP/2.0 {status}
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>
Content-Length: 0

"
    ))
}

/// F13 of §24.2: Bob's BYE.
fn f13_bye() -> Message {
    msg("BYE sip:alice@pc33.atlanta.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10
Max-Forwards: 70
From: Bob <sip:bob@biloxi.com>;tag=a6c85cf
To: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 231 BYE
Content-Length: 0

")
}

fn built(r: &sip_dialog::InDialogRequest, branch: &str) -> Message {
    let via = format!("SIP/2.0/UDP pc33.atlanta.com;branch={branch}");
    let mut b = r.builder();
    b.via(&via);
    let m = Message::parse(b.build()).unwrap();
    m.validate().unwrap();
    m
}

#[test]
fn rfc3261_24_2_the_callers_dialog() {
    // 180 with a To tag: an early dialog (§12.1.2).
    let mut d = Dialog::uac(&f1_invite(), &f9("180 Ringing"), false).unwrap();
    assert_eq!((d.role(), d.state()), (Role::Uac, UaState::Early));
    assert_eq!(&*d.id().call_id, "a84b4c76e66710");
    assert_eq!(&*d.id().local_tag, "1928301774");
    assert_eq!(&*d.id().remote_tag, "a6c85cf");
    assert_eq!((d.local_seq(), d.remote_seq()), (Some(314_159), None));
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.4");
    assert_eq!(d.remote_uri(), "sip:bob@biloxi.com");
    assert!(d.route_set().is_empty());
    assert!(!d.is_secure());

    // The 200 confirms it (§13.2.2.4).
    assert_eq!(
        d.receive_response(&f9("200 OK")).unwrap(),
        UaState::Confirmed
    );

    // F11: "ACK sip:bob@192.0.2.4 SIP/2.0 ... CSeq: 314159 ACK".
    let ack = built(&d.ack(314_159), "z9hG4bKnashds9");
    assert_eq!(ack.request_uri(), Some(&b"sip:bob@192.0.2.4"[..]));
    assert_eq!(ack.cseq().unwrap().seq, 314_159);
    assert_eq!(ack.cseq().unwrap().method, "ACK");
    assert_eq!(ack.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(ack.to().unwrap().tag(), Some("a6c85cf"));
    assert_eq!(ack.routes().count(), 0);
    assert_eq!(d.local_seq(), Some(314_159)); // the ACK takes no new number

    // F13: Bob's BYE, CSeq 231: the remote sequence number was empty, so anything goes
    // (§12.2.2); it ends the dialog.
    assert_eq!(
        d.receive_request(&f13_bye()).unwrap(),
        Received::Bye { crossed: false }
    );
    assert_eq!(
        (d.state(), d.remote_seq()),
        (UaState::Terminated, Some(231))
    );
    assert_eq!(
        d.receive_request(&f13_bye()).unwrap_err(),
        DialogError::Ended
    );
    assert_eq!(DialogError::Ended.status(), 481);
}

#[test]
fn rfc3261_24_2_the_callees_dialog() {
    let mut d = Dialog::uas(&f1_invite(), "a6c85cf", 180, false).unwrap();
    assert_eq!((d.role(), d.state()), (Role::Uas, UaState::Early));
    assert_eq!((d.local_seq(), d.remote_seq()), (None, Some(314_159)));
    assert_eq!(d.remote_target(), "sip:alice@pc33.atlanta.com");
    // §15: "The callee's UA MUST NOT send a BYE on an early dialog."
    assert!(matches!(
        d.request("BYE"),
        Err(DialogError::NotAllowed { .. })
    ));
    assert_eq!(d.sent_response(200), UaState::Confirmed);
    // The ACK (same CSeq as the INVITE) is accepted.
    let ack = msg("ACK sip:bob@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds9
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 ACK
Content-Length: 0

");
    assert_eq!(d.receive_request(&ack).unwrap(), Received::Ack);
    // Bob hangs up: like F13, to Alice's Contact, From/To swapped.
    let bye = built(&d.request("BYE").unwrap(), "z9hG4bKnashds10");
    assert_eq!(bye.request_uri(), Some(&b"sip:alice@pc33.atlanta.com"[..]));
    assert_eq!(bye.from().unwrap().tag(), Some("a6c85cf"));
    assert_eq!(bye.to().unwrap().tag(), Some("1928301774"));
    assert_eq!(bye.call_id(), Some("a84b4c76e66710"));
    // An empty local sequence number starts at 1 (§8.1.1.5 allows any below 2^31).
    assert_eq!(bye.cseq().unwrap().seq, 1);
    assert_eq!(d.state(), UaState::Terminating);
}

const RR_INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP ss2.biloxi.example.com;branch=z9hG4bK721e4.1
Via: SIP/2.0/UDP ss1.atlanta.example.com;branch=z9hG4bK2d4790.1
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
Max-Forwards: 68
Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:alice@client.atlanta.example.com;transport=udp>
Content-Length: 0

";

#[test]
fn the_uas_takes_record_route_in_order_the_uac_reversed() {
    // §12.1.1: the UAS keeps the request's Record-Route in order, so its requests go to
    // the proxy nearest to it first.
    let mut bob = Dialog::uas(&msg(RR_INVITE), "314159", 200, false).unwrap();
    assert_eq!(bob.route_set().len(), 2);
    let bye = bob.request("BYE").unwrap();
    assert_eq!(
        bye.target.request_uri,
        "sip:alice@client.atlanta.example.com;transport=udp"
    );
    assert_eq!(
        bye.target.routes,
        [
            "<sip:ss2.biloxi.example.com;lr>",
            "<sip:ss1.atlanta.example.com;lr>"
        ]
    );
    assert_eq!(bye.next_hop(), "sip:ss2.biloxi.example.com;lr");
    built(&bye, "z9hG4bK-b");
}

#[test]
fn strict_routing_puts_the_first_route_in_the_request_uri() {
    // §12.2.1.1, with a strict router first in the route set.
    let invite = msg("INVITE sip:user@remoteua SIP/2.0
From: <sip:me@here>;tag=1
To: <sip:user@remoteua>
Call-ID: s1
CSeq: 1 INVITE

");
    let ok = msg("SIP/2.0 200 OK
Record-Route: <sip:proxy4>, <sip:proxy3;lr>, <sip:proxy2>, <sip:proxy1>
From: <sip:me@here>;tag=1
To: <sip:user@remoteua>;tag=2
Call-ID: s1
CSeq: 1 INVITE
Contact: <sip:user@remoteua>

");
    let mut d = Dialog::uac(&invite, &ok, false).unwrap();
    let info = d.request("INFO").unwrap();
    assert_eq!(info.target.request_uri, "sip:proxy1");
    assert_eq!(
        info.target.routes,
        [
            "<sip:proxy2>",
            "<sip:proxy3;lr>",
            "<sip:proxy4>",
            "<sip:user@remoteua>"
        ]
    );
    assert_eq!(info.cseq, 2);
    built(&info, "z9hG4bK-s");
}

fn in_dialog(method: &str, cseq: u32, contact: Option<&str>) -> Message {
    let contact = contact.map_or(String::new(), |c| format!("Contact: <{c}>\n"));
    msg(&format!(
        "{method} sip:alice@pc33.atlanta.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bK-{cseq}
From: Bob <sip:bob@biloxi.com>;tag=a6c85cf
To: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: {cseq} {method}
{contact}Content-Length: 0

"
    ))
}

#[test]
fn requests_received_are_checked_against_the_remote_sequence_number() {
    let mut d = Dialog::uac(&f1_invite(), &f9("200 OK"), false).unwrap();
    assert_eq!(
        d.receive_request(&in_dialog("INFO", 10, None)).unwrap(),
        Received::Request
    );
    // Equal is not lower: accepted (§12.2.2 rejects only lower ones).
    assert!(d.receive_request(&in_dialog("INFO", 10, None)).is_ok());
    // "If the remote sequence number was not empty, but the sequence number of the request
    // is lower than the remote sequence number, the request is out of order and MUST be
    // rejected with a 500 (Server Internal Error) response."
    let e = d.receive_request(&in_dialog("INFO", 9, None)).unwrap_err();
    assert_eq!(e, DialogError::CSeqOutOfOrder { got: 9, remote: 10 });
    assert_eq!(e.status(), 500);
    // Contact in a non-refresh request changes nothing; a re-INVITE's does (§12.2).
    d.receive_request(&in_dialog("INFO", 11, Some("sip:bob@192.0.2.99")))
        .unwrap();
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.4");
    d.receive_request(&in_dialog("INVITE", 12, Some("sip:bob@192.0.2.5")))
        .unwrap();
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.5");
    assert_eq!(d.remote_seq(), Some(12));
    // Another dialog's request.
    let other = msg("INFO sip:a@b SIP/2.0
From: <sip:x@y>;tag=zz
To: <sip:a@b>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 99 INFO

");
    assert_eq!(
        d.receive_request(&other).unwrap_err(),
        DialogError::NotThisDialog
    );
}

fn our_response(status: u16, method: &str, cseq: u32, contact: Option<&str>) -> Message {
    let contact = contact.map_or(String::new(), |c| format!("Contact: <{c}>\n"));
    msg(&format!(
        "SIP/2.0 {status} X
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: {cseq} {method}
{contact}Content-Length: 0

"
    ))
}

#[test]
fn responses_to_requests_sent_refresh_the_target_or_end_the_dialog() {
    let mut d = Dialog::uac(&f1_invite(), &f9("200 OK"), false).unwrap();
    let reinvite = d.request("INVITE").unwrap();
    assert_eq!(reinvite.cseq, 314_160);
    // §12.2.1.2: a 2xx to a target refresh request replaces the remote target.
    let ok = our_response(200, "INVITE", 314_160, Some("sip:bob@192.0.2.8"));
    assert_eq!(d.receive_response(&ok).unwrap(), UaState::Confirmed);
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.8");
    // A 2xx to INFO with a Contact does not.
    d.request("INFO").unwrap();
    d.receive_response(&our_response(200, "INFO", 314_161, Some("sip:bob@x")))
        .unwrap();
    assert_eq!(d.remote_target(), "sip:bob@192.0.2.8");
    // A 4xx other than 481/408 leaves the dialog alone.
    d.receive_response(&our_response(488, "INVITE", 314_162, None))
        .unwrap();
    assert_eq!(d.state(), UaState::Confirmed);
    // §12.2.1.2: "If the response for a request within a dialog is a 481 (Call/Transaction
    // Does Not Exist) or a 408 (Request Timeout), the UAC SHOULD terminate the dialog."
    d.request("UPDATE").unwrap();
    assert_eq!(
        d.receive_response(&our_response(481, "UPDATE", 314_163, None))
            .unwrap(),
        UaState::Terminated
    );
    assert_eq!(d.request("BYE").unwrap_err(), DialogError::Ended);
}

#[test]
fn rfc5407_crossing_byes_each_get_200() {
    // Alice and Bob hang up at the same time; each BYE reaches the other side after it
    // sent its own.
    let mut alice = Dialog::uac(&f1_invite(), &f9("200 OK"), false).unwrap();
    let mut bob = Dialog::uas(&f1_invite(), "a6c85cf", 200, false).unwrap();
    let alice_bye = built(&alice.request("BYE").unwrap(), "z9hG4bK-ab");
    let bob_bye = built(&bob.request("BYE").unwrap(), "z9hG4bK-bb");
    assert_eq!(
        (alice.state(), bob.state()),
        (UaState::Terminating, UaState::Terminating)
    );
    // Each answers the other's BYE with 200 (not 481).
    assert_eq!(
        alice.receive_request(&bob_bye).unwrap(),
        Received::Bye { crossed: true }
    );
    assert_eq!(
        bob.receive_request(&alice_bye).unwrap(),
        Received::Bye { crossed: true }
    );
    assert_eq!(
        (alice.state(), bob.state()),
        (UaState::Terminated, UaState::Terminated)
    );
    // The 200s (or 481s) to their own BYEs arrive afterwards: nothing left to change.
    assert_eq!(
        alice
            .receive_response(&our_response(
                200,
                "BYE",
                alice_bye.cseq().unwrap().seq,
                None
            ))
            .unwrap(),
        UaState::Terminated
    );
}

#[test]
fn after_sending_bye_other_requests_get_481_but_a_late_ack_is_absorbed() {
    let mut d = Dialog::uas(&f1_invite(), "a6c85cf", 200, false).unwrap();
    d.request("BYE").unwrap();
    let reinvite = msg("INVITE sip:bob@192.0.2.4 SIP/2.0
From: Alice <sip:alice@atlanta.com>;tag=1928301774
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
Call-ID: a84b4c76e66710
CSeq: 314160 INVITE

");
    assert_eq!(
        d.receive_request(&reinvite).unwrap_err(),
        DialogError::Ended
    );
    let ack = msg("ACK sip:bob@192.0.2.4 SIP/2.0
From: Alice <sip:alice@atlanta.com>;tag=1928301774
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
Call-ID: a84b4c76e66710
CSeq: 314159 ACK

");
    assert_eq!(d.receive_request(&ack).unwrap(), Received::Ack);
    assert_eq!(
        d.receive_response(&our_response(200, "BYE", 1, None))
            .unwrap_err(),
        DialogError::NotThisDialog
    );
}

#[test]
fn secure_only_over_tls_with_a_sips_request_uri() {
    let sips_invite = msg("INVITE sips:bob@biloxi.com SIP/2.0
From: <sips:alice@atlanta.com>;tag=1
To: <sips:bob@biloxi.com>
Call-ID: t1
CSeq: 1 INVITE
Contact: <sips:alice@192.0.2.1>

");
    let ok = msg("SIP/2.0 200 OK
From: <sips:alice@atlanta.com>;tag=1
To: <sips:bob@biloxi.com>;tag=2
Call-ID: t1
CSeq: 1 INVITE
Contact: <sips:bob@192.0.2.4>

");
    assert!(Dialog::uac(&sips_invite, &ok, true).unwrap().is_secure());
    assert!(!Dialog::uac(&sips_invite, &ok, false).unwrap().is_secure());
    assert!(
        !Dialog::uac(&f1_invite(), &f9("200 OK"), true)
            .unwrap()
            .is_secure()
    );
    assert!(
        Dialog::uas(&sips_invite, "2", 200, true)
            .unwrap()
            .is_secure()
    );
}

#[test]
fn what_creates_no_dialog() {
    let inv = f1_invite();
    assert_eq!(
        Dialog::uac(&inv, &f9("100 Trying"), false).unwrap_err(),
        DialogError::NotDialogCreating { status: 100 }
    );
    assert_eq!(
        Dialog::uac(&inv, &f9("486 Busy Here"), false).unwrap_err(),
        DialogError::NotDialogCreating { status: 486 }
    );
    let no_tag = msg("SIP/2.0 180 Ringing
To: Bob <sip:bob@biloxi.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>

");
    assert_eq!(
        Dialog::uac(&inv, &no_tag, false).unwrap_err(),
        DialogError::NoTag { header: "To" }
    );
    let no_contact = msg("SIP/2.0 200 OK
To: Bob <sip:bob@biloxi.com>;tag=x
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE

");
    let e = Dialog::uac(&inv, &no_contact, false).unwrap_err();
    assert!(matches!(e, DialogError::Field(f) if f.header == "Contact"));
    let mut d = Dialog::uac(&inv, &f9("200 OK"), false).unwrap();
    for m in ["ACK", "CANCEL"] {
        assert!(matches!(d.request(m), Err(DialogError::NotAllowed { .. })));
    }
}

fn fork_response(status: u16, tag: &str) -> Message {
    msg(&format!(
        "SIP/2.0 {status} X
From: Alice <sip:alice@atlanta.com>;tag=1928301774
To: Bob <sip:bob@biloxi.com>;tag={tag}
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:bob@{tag}.biloxi.com>

"
    ))
}

#[test]
fn a_forked_invite_creates_one_dialog_per_branch() {
    let mut calls = ForkedInvite::new(&f1_invite(), false, 3).unwrap();
    let early = |tag: &str, new| ForkUpdate::Early {
        remote_tag: tag.into(),
        new,
    };
    assert_eq!(
        calls.on_response(&fork_response(180, "a")).unwrap(),
        early("a", true)
    );
    assert_eq!(
        calls.on_response(&fork_response(183, "b")).unwrap(),
        early("b", true)
    );
    assert_eq!(
        calls.on_response(&fork_response(180, "a")).unwrap(),
        early("a", false)
    );
    // §13.2.2.4: a 2xx of a branch without an early dialog creates a confirmed one; each 2xx
    // confirms its own.
    assert_eq!(
        calls.on_response(&fork_response(200, "c")).unwrap(),
        ForkUpdate::Confirmed {
            remote_tag: "c".into(),
            new: true
        }
    );
    assert_eq!(
        calls.on_response(&fork_response(200, "b")).unwrap(),
        ForkUpdate::Confirmed {
            remote_tag: "b".into(),
            new: false
        }
    );
    assert_eq!(calls.dialogs().len(), 3);
    // Beyond the bound, an early dialog makes room for a confirmed one (which must be ACKed).
    assert_eq!(
        calls.on_response(&fork_response(200, "d")).unwrap(),
        ForkUpdate::Confirmed {
            remote_tag: "d".into(),
            new: true
        }
    );
    assert!(calls.dialog("a").is_none());
    assert_eq!(calls.dialogs().len(), 3);
    // Each confirmed dialog ACKs with the INVITE's CSeq and can be hung up on its own.
    let d = calls.dialog_mut("d").unwrap();
    assert_eq!(d.ack(314_159).target.request_uri, "sip:bob@d.biloxi.com");
    assert_eq!(d.request("BYE").unwrap().to_tag, "d");
    assert!(calls.take("c").is_some());
    assert_eq!(calls.transaction_ended(), 0);
}

#[test]
fn a_final_failure_ends_every_early_dialog() {
    let mut calls = ForkedInvite::new(&f1_invite(), false, 8).unwrap();
    calls.on_response(&fork_response(180, "a")).unwrap();
    calls.on_response(&fork_response(180, "b")).unwrap();
    assert_eq!(
        calls.on_response(&fork_response(486, "a")).unwrap(),
        ForkUpdate::Failed {
            status: 486,
            ended: 2
        }
    );
    assert!(calls.dialogs().is_empty());
    // Responses to other requests and 100s concern no dialog.
    assert_eq!(
        calls
            .on_response(&our_response(200, "BYE", 1, None))
            .unwrap(),
        ForkUpdate::None
    );
}

#[derive(Debug, Clone)]
enum Step {
    Send(u8),
    Receive(u8, u32, bool),
    Response(u8, u16, bool),
}

fn method(i: u8) -> &'static str {
    [
        "INVITE", "UPDATE", "INFO", "BYE", "OPTIONS", "ACK", "NOTIFY",
    ][usize::from(i) % 7]
}

proptest! {
    /// Random sends, receptions and responses: never a panic; the local sequence number
    /// grows by one per request sent; the remote one never goes back; once terminated,
    /// always terminated.
    #[test]
    fn random_dialog_traffic_keeps_the_invariants(steps in proptest::collection::vec(
        prop_oneof![
            any::<u8>().prop_map(Step::Send),
            (any::<u8>(), 0u32..400, any::<bool>()).prop_map(|(m, c, ct)| Step::Receive(m, c, ct)),
            (any::<u8>(), prop_oneof![Just(200u16), Just(481), Just(408), Just(486), Just(180)], any::<bool>())
                .prop_map(|(m, s, ct)| Step::Response(m, s, ct)),
        ],
        0..40,
    ), uac in any::<bool>()) {
        let mut d = if uac {
            Dialog::uac(&f1_invite(), &f9("200 OK"), false).unwrap()
        } else {
            Dialog::uas(&f1_invite(), "a6c85cf", 200, false).unwrap()
        };
        let mut sent = 0u32;
        for step in steps {
            let (before_state, before_local, before_remote) = (d.state(), d.local_seq(), d.remote_seq());
            match step {
                Step::Send(m) => {
                    if let Ok(r) = d.request(method(m)) {
                        sent += 1;
                        prop_assert_eq!(Some(r.cseq), d.local_seq());
                        prop_assert_eq!(r.cseq, before_local.map_or(1, |s| s + 1));
                        built(&r, "z9hG4bK-p");
                    }
                }
                Step::Receive(m, cseq, contact) => {
                    // Requests from the peer carry its tag in From.
                    let (from, to) = if uac { ("a6c85cf", "1928301774") } else { ("1928301774", "a6c85cf") };
                    let c = if contact { "Contact: <sip:new@192.0.2.77>\n" } else { "" };
                    let m = msg(&format!("{} sip:x@y SIP/2.0\nFrom: <sip:p@q>;tag={from}\nTo: <sip:r@s>;tag={to}\nCall-ID: a84b4c76e66710\nCSeq: {cseq} {}\n{c}\n", method(m), method(m)));
                    let _ = d.receive_request(&m);
                }
                Step::Response(m, status, contact) => {
                    let (from, to) = if uac { ("1928301774", "a6c85cf") } else { ("a6c85cf", "1928301774") };
                    let c = if contact { "Contact: <sip:new@192.0.2.78>\n" } else { "" };
                    let seq = d.local_seq().unwrap_or(1);
                    let m = msg(&format!("SIP/2.0 {status} X\nFrom: <sip:p@q>;tag={from}\nTo: <sip:r@s>;tag={to}\nCall-ID: a84b4c76e66710\nCSeq: {seq} {}\n{c}\n", method(m)));
                    let _ = d.receive_response(&m);
                }
            }
            if let (Some(b), Some(a)) = (before_remote, d.remote_seq()) {
                prop_assert!(a >= b);
            }
            if before_state == UaState::Terminated {
                prop_assert_eq!(d.state(), UaState::Terminated);
            }
        }
        prop_assert!(sent < 41);
    }
}
