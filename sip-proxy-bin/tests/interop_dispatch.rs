//! Dispatching to an upstream set (seed 002: incoming calls shared round-robin between two
//! Asterisk servers, Kamailio's `dispatcher`) through the real `sip-proxy run`, with two
//! SIPp UAS as the upstreams on loopback: `--upstream pbx=udp:A,udp:B --dispatch 2=pbx`
//! splits calls evenly; with one UAS stopped, calls fail over to the other (on the
//! timeout, T1 shortened to 50 ms so Timer B is 3.2 s) and the OPTIONS probes
//! (`--probe-interval 1`) mark it down (`dispatcher:dst-down`), then up again
//! (`dispatcher:dst-up`) once it is back, for good (late timeouts of the probes sent while it
//! was away are stale), and calls are shared again.
//!
//! SIPp (Debian `sip-tester`) must be installed: a missing `sipp` fails this test.

mod support;

use std::net::SocketAddrV4;
use std::time::Duration;

use support::dir::TempDir;
use support::net::{LO1, free_addr};
use support::proxy::{DOMAIN, Proxy};
use support::sipp::{Sipp, SippProc, SippRun};

fn upstream(dir: &TempDir, name: &str, at: SocketAddrV4) -> SippProc {
    Sipp::new(dir, name, "upstream_uas", at)
        .timeout(Duration::from_secs(60))
        .spawn()
}

fn calls(dir: &TempDir, name: &str, proxy: SocketAddrV4, n: u32) -> SippRun {
    Sipp::new(dir, name, "caller_open", free_addr(LO1))
        .key("me", "pstn")
        .key("domain", DOMAIN)
        .service("2001")
        .arg("-r")
        .arg("20")
        .calls(n)
        .timeout(Duration::from_secs(20))
        .run(proxy)
}

fn invites(run: &SippRun) -> usize {
    run.received_requests("INVITE").len()
}

#[test]
fn upstream_set_round_robin_failover_and_probing() {
    let dir = TempDir::new("dispatch");
    let config = dir.path("proxy.toml");
    std::fs::write(&config, "[timers]\nt1_ms = 50\n").unwrap();
    let (u1, u2) = (free_addr(LO1), free_addr(LO1));
    let uas1 = upstream(&dir, "uas1", u1);
    let uas2 = upstream(&dir, "uas2", u2);
    let proxy = Proxy::start(
        &dir,
        &[free_addr(LO1)],
        &[
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            &format!("pbx=udp:{u1},udp:{u2}"),
            "--dispatch",
            "2=pbx",
            "--probe-interval",
            "1",
        ],
    );
    let p = proxy.addr();

    // 1. Ten calls, split evenly.
    let run = calls(&dir, "caller-10", p, 10);
    run.assert_ok();
    assert_eq!(
        run.received_responses(200).len(),
        20,
        "10 INVITEs + 10 BYEs"
    );
    assert_eq!(proxy.counter("dispatched"), 10);
    let uas2 = uas2.stop(Duration::from_secs(5));
    uas2.assert_ok();
    assert_eq!(invites(&uas2), 5, "round-robin: half of the calls each");
    let probes = uas2.received_requests("OPTIONS").len();
    assert!(probes >= 1, "uas2 was probed");
    for m in ["ACK", "BYE"] {
        assert_eq!(
            uas2.received_requests(m).len(),
            5,
            "{m} along the route set"
        );
    }

    // 2. uas2 is gone: the calls it would get time out (Timer B) and fail over to uas1;
    // the probes mark it down.
    let run = calls(&dir, "caller-4", p, 4);
    run.assert_ok();
    assert_eq!(run.received_responses(200).len(), 8);
    assert!(proxy.counter("failovers") >= 1, "{}", proxy.log_text());
    assert!(
        proxy.wait_log(
            &["dispatcher:dst-down", &u2.to_string()],
            Duration::from_secs(5)
        ),
        "no dispatcher:dst-down for {u2}:\n{}",
        proxy.log_text()
    );
    assert!(
        !proxy
            .log_text()
            .lines()
            .any(|l| l.contains("dispatcher:dst-down") && l.contains(&u1.to_string())),
        "uas1 stayed up"
    );

    // 3. uas2 back: a probe answered marks it up, and it stays up: the probes sent while
    // it was away time out afterwards (64·T1 after they were sent) and are stale by then.
    let uas2b = upstream(&dir, "uas2-back", u2);
    let back = std::time::Instant::now();
    assert!(
        proxy.wait_log(
            &["dispatcher:dst-up", &u2.to_string()],
            Duration::from_secs(5)
        ),
        "no dispatcher:dst-up for {u2}:\n{}",
        proxy.log_text()
    );
    // Calls are shared again.
    let run = calls(&dir, "caller-4-again", p, 4);
    run.assert_ok();
    std::thread::sleep(Duration::from_millis(3_400).saturating_sub(back.elapsed()));
    let log = proxy.log_text();
    let last_change = log
        .lines()
        .rfind(|l| l.contains("dispatcher:dst-") && l.contains(&u2.to_string()))
        .unwrap();
    assert!(
        last_change.contains("dispatcher:dst-up"),
        "{u2} marked down again after it came back:\n{log}"
    );
    let uas2b = uas2b.stop(Duration::from_secs(5));
    uas2b.assert_ok();
    assert_eq!(invites(&uas2b), 2, "half of the calls of step 3");
    let uas1 = uas1.stop(Duration::from_secs(5));
    uas1.assert_ok();
    assert_eq!(
        invites(&uas1),
        5 + 4 + 2,
        "every call of step 2 and half of step 3 at uas1"
    );
}
