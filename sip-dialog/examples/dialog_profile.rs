//! A fixed tracker workload for `valgrind --tool=callgrind` (instruction counts are
//! repeatable on a busy machine where wall-clock timings are not): 20 000 whole tracked calls
//! (INVITE, 180, 200, ACK, BYE) through one tracker; with the argument `match`, 20 000
//! in-dialog requests matched among 100 000 confirmed dialogs instead.
//!
//! `cargo build --release -p sip-dialog --example dialog_profile &&
//!  valgrind --tool=callgrind target/release/examples/dialog_profile [match]`

use std::hint::black_box;
use std::time::Duration;

use sip_dialog::{CreateOptions, Tracker, TrackerConfig};
use sip_parser::Message;

fn parse(s: &str) -> Message {
    Message::parse(s.as_bytes().to_vec().into()).expect("message")
}

fn main() {
    let now = Duration::from_secs(1_700_000_000);
    let tr = Tracker::new(TrackerConfig::default(), [1, 2, 3, 4], now);
    let msgs: Vec<[Message; 5]> = (0..256)
        .map(|i| {
            let d = |ft: &str, tt: &str, cseq: &str| {
                format!(
                    "From: <sip:alice@atlanta.example.com>;tag={ft}\r\nTo: <sip:bob@biloxi.example.com>{tt}\r\n\
                     Call-ID: {i}-a84b4c76e66710@atlanta.example.com\r\nCSeq: {cseq}\r\n"
                )
            };
            let rr = "Record-Route: <sip:p3.example.com;lr>, <sip:us.example.com;lr>, <sip:p1.example.com;lr>\r\n";
            [
                parse(&format!("INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\nMax-Forwards: 69\r\nRecord-Route: <sip:p1.example.com;lr>\r\n{}Contact: <sip:alice@192.0.2.1>\r\n\r\n", d("a1", "", "1 INVITE"))),
                parse(&format!("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\n{rr}{}Contact: <sip:bob@192.0.2.4>\r\n\r\n", d("a1", ";tag=b1", "1 INVITE"))),
                parse(&format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\n{rr}{}Contact: <sip:bob@192.0.2.4>\r\n\r\n", d("a1", ";tag=b1", "1 INVITE"))),
                parse(&format!("ACK sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKa{i}\r\nMax-Forwards: 69\r\nRoute: <sip:us.example.com;lr>\r\n{}\r\n", d("a1", ";tag=b1", "1 ACK"))),
                parse(&format!("BYE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKb{i}\r\nMax-Forwards: 69\r\nRoute: <sip:us.example.com;lr>\r\n{}\r\n", d("a1", ";tag=b1", "2 BYE"))),
            ]
        })
        .collect();
    if std::env::args().nth(1).as_deref() == Some("match") {
        match_only(&tr, now);
        return;
    }
    for n in 0..20_000 {
        let [invite, ringing, ok, ack, bye] = &msgs[n % msgs.len()];
        black_box(tr.on_request(invite, now));
        black_box(
            tr.create(invite, &CreateOptions::default(), now)
                .expect("room"),
        );
        black_box(tr.on_response(ringing, now));
        black_box(tr.on_response(ok, now));
        black_box(tr.on_request(ack, now));
        black_box(tr.on_request(bye, now));
    }
    assert!(tr.is_empty());
}

/// 100 000 confirmed dialogs, then 20 000 INFOs in them (by cookie).
fn match_only(tr: &Tracker, now: Duration) {
    let mut infos = Vec::new();
    for i in 0..100_000 {
        let d = |tt: &str, cseq: &str| {
            format!(
                "From: <sip:alice@atlanta.example.com>;tag=a1\r\nTo: <sip:bob@biloxi.example.com>{tt}\r\n\
                 Call-ID: {i}-a84b4c76e66710@atlanta.example.com\r\nCSeq: {cseq}\r\n"
            )
        };
        let invite = parse(&format!(
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\nMax-Forwards: 69\r\n{}Contact: <sip:alice@192.0.2.1>\r\n\r\n",
            d("", "1 INVITE")
        ));
        let ok = parse(&format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK{i}\r\n{}Contact: <sip:bob@192.0.2.4>\r\n\r\n",
            d(";tag=b1", "1 INVITE")
        ));
        let h = tr
            .create(&invite, &CreateOptions::default(), now)
            .expect("room")
            .handle();
        tr.on_response(&ok, now);
        if i % 5 == 0 {
            infos.push(parse(&format!("INFO sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKi{i}\r\nMax-Forwards: 69\r\nRoute: <sip:us.example.com;lr;{}>\r\n{}\r\n", tr.cookie(h), d(";tag=b1", "2 INFO"))));
        }
    }
    for info in &infos {
        black_box(tr.on_request(info, now));
    }
}
