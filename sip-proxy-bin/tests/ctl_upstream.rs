//! `sip-proxy ctl upstream` and `ctl stats` against a running proxy with an upstream set of
//! two destinations (UDP sockets of the test): a disabled destination gets no request until
//! enabled again; the counters follow.

mod support;

use std::time::Duration;

use support::dir::TempDir;
use support::proxy::Proxy;
use support::ua::TextUa;

const WAIT: Duration = Duration::from_secs(5);

/// Sends `n` OPTIONS to `sip:9NNN@localhost` (the `9` prefix goes to set `pstn`); each
/// upstream answers what it gets. How many each one got.
fn spread(p: &Proxy, caller: &TextUa, ups: [&TextUa; 2], n: usize, tag: &str) -> [usize; 2] {
    let mut got = [0; 2];
    for i in 0..n {
        let uri = format!("sip:9{i:03}@localhost");
        let from = format!("sip:alice@{}", caller.addr);
        caller.send(
            p.addr(),
            &caller.request("OPTIONS", &uri, &from, &uri, &format!("{tag}-{i}"), 1, ""),
        );
        let mut answered = false;
        for _ in 0..2 {
            for (k, u) in ups.iter().enumerate() {
                if answered {
                    break;
                }
                if let Some(m) = u.wait_for(Duration::from_millis(300), |m| {
                    m.method() == Some("OPTIONS")
                }) {
                    u.send(p.addr(), &m.answer("200 OK", Some("u"), ""));
                    got[k] += 1;
                    answered = true;
                }
            }
        }
        assert!(answered, "request {i} reached no upstream");
        assert_eq!(
            caller.final_response(WAIT).and_then(|m| m.status()),
            Some(200)
        );
    }
    got
}

#[test]
fn disable_enable_destinations_and_stats() {
    let dir = TempDir::new("ctl-upstream");
    let (u1, u2) = (TextUa::new("127.0.0.1"), TextUa::new("127.0.0.1"));
    let set = format!("pstn=udp:{},udp:{}", u1.addr, u2.addr);
    // A HEP collector: the sender's counters are in the stats too.
    let hep = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let collector = format!("udp:{}", hep.local_addr().unwrap());
    let p = Proxy::small(
        &dir,
        &[
            "--upstream",
            &set,
            "--dispatch",
            "9=pstn",
            "--probe-interval",
            "0",
            "--hep",
            &collector,
        ],
    );
    let list = p.json(&["upstream", "list"]);
    assert_eq!(list[0]["name"], "pstn");
    assert_eq!(list[0]["algorithm"], "round-robin");
    let dests = list[0]["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 2);
    assert!(
        dests
            .iter()
            .all(|d| d["state"] == "up" && d["failures"] == 0)
    );

    let caller = TextUa::new("127.0.0.1");
    assert_eq!(spread(&p, &caller, [&u1, &u2], 4, "a"), [2, 2]);

    let u1s = u1.addr.to_string();
    assert_eq!(
        p.ok(&["upstream", "disable", "pstn", &u1s]),
        format!("{u1s} of pstn disabled\n")
    );
    assert_eq!(
        p.ok(&["upstream", "disable", "pstn", &u1s]),
        format!("{u1s} of pstn was already disabled\n")
    );
    let table = p.ok(&["upstream", "list"]);
    let row = table.lines().find(|l| l.contains(&u1s)).unwrap();
    assert!(row.contains("disabled"), "{table}");
    assert_eq!(spread(&p, &caller, [&u1, &u2], 4, "b"), [0, 4]);

    // Enabled again (udp: prefix accepted): back in the rotation.
    assert_eq!(
        p.ok(&["upstream", "enable", "pstn", &format!("udp:{u1s}")]),
        format!("{u1s} of pstn enabled\n")
    );
    assert_eq!(spread(&p, &caller, [&u1, &u2], 4, "c"), [2, 2]);

    let e = p.fails(&["upstream", "disable", "pstn", "127.0.0.1:9"], 1);
    assert!(e.contains("has no destination 127.0.0.1:9"), "{e}");
    let e = p.fails(&["upstream", "disable", "nope", &u1s], 1);
    assert!(e.contains("no upstream set named `nope`"), "{e}");
    let e = p.fails(&["upstream", "enable", "pstn", "here"], 1);
    assert!(e.contains("not a destination address"), "{e}");

    // Counters: as table and JSON, the same names.
    let stats = p.json(&["stats"]);
    assert_eq!(stats["dispatched"], 12);
    assert!(stats["requests"].as_u64().unwrap() >= 12);
    assert!(stats["responses"].as_u64().unwrap() >= 12);
    // The metrics' labelled families, flat: by method and by class, summing to the totals.
    let sum = |prefix: &str| -> u64 {
        stats
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    };
    assert_eq!(stats["requests.OPTIONS"], stats["requests"]);
    assert_eq!(stats["requests.INVITE"], 0);
    assert_eq!(sum("requests."), stats["requests"].as_u64().unwrap());
    assert_eq!(stats["responses.2xx"], 12);
    assert_eq!(sum("responses."), stats["responses"].as_u64().unwrap());
    // Relayed to the caller: the upstreams' 12 answers.
    assert!(stats["responses_sent.2xx"].as_u64().unwrap() >= 12);
    // Completed transactions wait out Timer J / K (RFC 3261 §17.2.2, §17.1.2.2): still live.
    assert!(stats["transactions_live"].as_u64().unwrap() >= 1);
    // Every message in and out mirrored: the collector got what hep_sent counts.
    hep.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = vec![0u8; 65_535];
    let mut captured = 0u64;
    while hep.recv(&mut buf).is_ok() {
        captured += 1;
    }
    let stats = p.json(&["stats"]);
    assert!(captured >= 48, "{captured}");
    assert_eq!(stats["hep_sent"], captured);
    assert_eq!(stats["hep_dropped"], 0);
    let table = p.ok(&["stats"]);
    assert!(table.starts_with("COUNTER"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["dispatched", "12"]),
        "{table}"
    );
    assert_eq!(
        stats.as_object().unwrap().len(),
        table.lines().count() - 1,
        "{table}"
    );
}
