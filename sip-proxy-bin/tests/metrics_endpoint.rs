//! The Prometheus endpoint end to end: `sip-proxy run --metrics 127.0.0.1:0` with a one-second
//! KPI interval and a HEP collector (a socket of this test), then traffic on 127.0.0.1 — a
//! REGISTER, an OPTIONS, a garbage datagram, a call (INVITE, 180, 200, ACK, BYE) to the
//! registered contact and an INVITE to nobody (404) — scraped all along. The counters, the
//! gauges and the call KPIs must show exactly that traffic; `promtool check metrics`
//! (Debian `prometheus`, in scripts/apt-packages.txt; the test fails without it) must pass on
//! the output; `docs/grafana-dashboard.json` must use only names the endpoint exported.
//!
//! Every wait has a deadline; the proxy is killed when the scenario ends.
#![allow(
    clippy::float_cmp,
    reason = "the values compared are counts and exact ratios, written exactly in the text format"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sip_parser::{Message, ResponseBuilder};

use support::dir::TempDir;
use support::net::{LO1, free_udp_port};
use support::proc::BIN;
use support::proxy::Proxy;
use support::ua::{Phone, request_is, status_is};

/// One scrape: the raw page and its samples (series as written → value).
#[derive(Debug, Clone)]
struct Scrape {
    text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample line: series value");
                let v = value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("value of `{l}`"));
                (series.to_owned(), v)
            })
            .collect();
        Scrape { text, samples }
    }

    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("`{series}` not exported:\n{}", self.text))
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.samples
            .keys()
            .map(|s| s.split('{').next().unwrap_or(s))
    }
}

/// What the scenario saw.
struct Seen {
    /// The scrape after all the traffic (and the HEP sender had time to flush).
    last: Scrape,
    /// Every scrape taken while the traffic ran and after it, every 150 ms.
    all: Vec<Scrape>,
    /// HEP packets the collector socket received.
    hep_received: u32,
    /// Status lines of `GET /`, `POST /metrics`, `HEAD /metrics` and an oversized head,
    /// with the HEAD's body length.
    http: Vec<(String, usize)>,
}

/// Starts the proxy; returns it and the metrics address it logged.
fn start_proxy(sip_port: u16, hep: SocketAddr, dir: &std::path::Path) -> (Proxy, SocketAddr) {
    let cfg = dir.join("proxy.toml");
    // An upstream set nobody answers (no rule sends calls there): its probes go out, it is
    // exported as up until they time out (32 s, after the test).
    std::fs::write(
        &cfg,
        format!(
            "[metrics]\nkpi_interval = 1\n\n[hep]\ncollector = \"udp:{hep}\"\n\n\
             [[upstream]]\nname = \"pstn\"\ntargets = [\"udp:127.0.0.1:{}\"]\n",
            free_udp_port()
        ),
    )
    .unwrap();
    let p = Proxy::run(
        dir,
        &[SocketAddrV4::new(LO1, sip_port)],
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--shutdown-grace",
            "0",
        ],
    );
    let addr = p.metrics_addr();
    (p, addr)
}

/// An HTTP/1.1 request on a fresh connection; the whole answer.
fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn scrape(addr: SocketAddr) -> Scrape {
    let r = http(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = r.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    Scrape::parse(body.to_owned())
}

/// The route set of a UAC from a 2xx: its Record-Route in reverse (RFC 3261 §12.1.2).
fn route_set(ok: &Message) -> Vec<String> {
    let mut r: Vec<String> = ok
        .record_routes()
        .map(|r| format!("<{}>", String::from_utf8_lossy(r.unwrap().raw_uri)))
        .collect();
    r.reverse();
    r
}

fn to_tag(m: &Message) -> String {
    m.to().unwrap().tag().unwrap().to_owned()
}

/// A call from `alice` to the registered `bob`: INVITE, 180 after 40 ms, 200, ACK along the
/// route set, 150 ms of talk, BYE, 200.
fn call(proxy: SocketAddr, alice: &Phone, bob: &Phone) {
    let invite = format!(
        "INVITE sip:bob@localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-call1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@localhost>;tag=a1\r\n\
         To: <sip:bob@localhost>\r\n\
         Call-ID: metrics-call-1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{a}>\r\n\
         Content-Length: 0\r\n\r\n",
        a = alice.port
    );
    alice.send(proxy, invite.as_bytes());
    let (inv, via_proxy) = bob.expect("INVITE at bob", request_is("INVITE"));
    std::thread::sleep(Duration::from_millis(40));
    let contact = format!("<sip:bob@127.0.0.1:{}>", bob.port);
    for status in [180, 200] {
        let r = ResponseBuilder::new(&inv, status, sip_parser::reason_phrase(status))
            .to_tag("b1")
            .copy_record_route()
            .header("Contact", contact.clone())
            .build();
        bob.send(via_proxy, &r);
    }
    alice.expect("180 at alice", status_is(180, "INVITE"));
    let (ok, _) = alice.expect("200 at alice", status_is(200, "INVITE"));
    let routes = route_set(&ok);
    assert!(!routes.is_empty(), "the proxy record-routes the INVITE");
    let in_dialog = |method: &str, seq: u32, branch: &str| {
        let mut m = format!(
            "{method} sip:bob@127.0.0.1:{b} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\n",
            b = bob.port,
            a = alice.port
        );
        for r in &routes {
            let _ = write!(m, "Route: {r}\r\n");
        }
        let _ = write!(
            m,
            "From: <sip:alice@localhost>;tag=a1\r\n\
             To: <sip:bob@localhost>;tag={}\r\n\
             Call-ID: metrics-call-1\r\n\
             CSeq: {seq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            to_tag(&ok)
        );
        m
    };
    alice.send(proxy, in_dialog("ACK", 1, "ack1").as_bytes());
    bob.expect("ACK at bob", request_is("ACK"));
    std::thread::sleep(Duration::from_millis(150));
    alice.send(proxy, in_dialog("BYE", 2, "bye1").as_bytes());
    let (bye, via_proxy) = bob.expect("BYE at bob", request_is("BYE"));
    bob.send(via_proxy, ResponseBuilder::new(&bye, 200, "OK").build());
    alice.expect("200 for the BYE", status_is(200, "BYE"));
}

/// An INVITE to a user nobody registered: the proxy answers 404 itself; the ACK ends it.
fn call_nobody(proxy: SocketAddr, alice: &Phone) {
    let head = |method: &str| {
        format!(
            "{method} sip:nobody@localhost SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-call2;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@localhost>;tag=a2\r\n",
            a = alice.port
        )
    };
    let invite = format!(
        "{}To: <sip:nobody@localhost>\r\nCall-ID: metrics-call-2\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{}>\r\nContent-Length: 0\r\n\r\n",
        head("INVITE"),
        alice.port
    );
    alice.send(proxy, invite.as_bytes());
    let (nf, _) = alice.expect("404 at alice", status_is(404, "INVITE"));
    // RFC 3261 §17.1.1.3: the ACK of a non-2xx has the INVITE's branch and the To tag.
    let ack = format!(
        "{}To: <sip:nobody@localhost>;tag={}\r\nCall-ID: metrics-call-2\r\nCSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        head("ACK"),
        to_tag(&nf)
    );
    alice.send(proxy, ack.as_bytes());
}

fn scenario() -> &'static Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(run_scenario)
}

fn run_scenario() -> Seen {
    let dir = TempDir::new("metrics-endpoint");
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip_port = free_udp_port();
    let proxy: SocketAddr = format!("127.0.0.1:{sip_port}").parse().unwrap();
    let (proc, metrics) = start_proxy(sip_port, collector.local_addr().unwrap(), &dir);

    // Scrape every 150 ms all along: each one-second KPI interval is seen while it is the
    // last closed one.
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(Mutex::new(Vec::new()));
    let scraper = {
        let (stop, pages) = (stop.clone(), pages.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let s = scrape(metrics);
                pages.lock().unwrap().push(s);
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };

    let (alice, bob) = (Phone::new(), Phone::new());
    let register = format!(
        "REGISTER sip:127.0.0.1:{sip_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{b};branch=z9hG4bK-reg1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@localhost>;tag=r1\r\n\
         To: <sip:bob@localhost>\r\n\
         Call-ID: metrics-reg-1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:bob@127.0.0.1:{b}>\r\n\
         Expires: 300\r\n\
         Content-Length: 0\r\n\r\n",
        b = bob.port
    );
    bob.send(proxy, register.as_bytes());
    bob.expect("200 for the REGISTER", status_is(200, "REGISTER"));
    let options = format!(
        "OPTIONS sip:127.0.0.1:{sip_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-opt1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@localhost>;tag=o1\r\n\
         To: <sip:127.0.0.1:{sip_port}>\r\n\
         Call-ID: metrics-opt-1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        a = alice.port
    );
    alice.send(proxy, options.as_bytes());
    alice.expect("200 for the OPTIONS", status_is(200, "OPTIONS"));
    alice.send(proxy, b"\x16\x03\x01 this is not SIP at all\r\n\r\n");
    call(proxy, &alice, &bob);
    call_nobody(proxy, &alice);

    // Two interval boundaries after the traffic, and time for the HEP sender to flush.
    std::thread::sleep(Duration::from_millis(2300));
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    let last = scrape(metrics);

    let http = [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"HEAD /metrics HTTP/1.1\r\n\r\n",
        &[b'x'; 9000][..],
    ]
    .iter()
    .map(|req| {
        let r = http(metrics, req);
        let (head, body) = r.split_once("\r\n\r\n").unwrap_or((&r, ""));
        (head.lines().next().unwrap_or("").to_owned(), body.len())
    })
    .collect();

    collector
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut hep_received = 0;
    let mut buf = vec![0u8; 65_535];
    while collector.recv_from(&mut buf).is_ok() {
        hep_received += 1;
    }
    drop(proc);
    let all = std::mem::take(&mut *pages.lock().unwrap());
    Seen {
        last,
        all,
        hep_received,
        http,
    }
}

#[test]
fn counters_and_gauges_show_the_traffic() {
    let s = &scenario().last;
    let exact = [
        ("sip_proxy_requests_total{method=\"REGISTER\"}", 1.0),
        ("sip_proxy_requests_total{method=\"OPTIONS\"}", 1.0),
        ("sip_proxy_requests_total{method=\"INVITE\"}", 2.0),
        ("sip_proxy_requests_total{method=\"ACK\"}", 2.0),
        ("sip_proxy_requests_total{method=\"BYE\"}", 1.0),
        ("sip_proxy_requests_total{method=\"other\"}", 0.0),
        ("sip_proxy_parse_errors_total", 1.0),
        ("sip_proxy_responses_total{class=\"1xx\"}", 1.0),
        ("sip_proxy_responses_total{class=\"2xx\"}", 2.0),
        ("sip_proxy_responses_total{class=\"4xx\"}", 0.0),
        // 200 for the REGISTER, the OPTIONS, the INVITE and the BYE.
        ("sip_proxy_responses_sent_total{class=\"2xx\"}", 4.0),
        ("sip_proxy_responses_sent_total{class=\"4xx\"}", 1.0),
        ("sip_proxy_registrations_total", 1.0),
        ("sip_proxy_registered_contacts", 1.0),
        ("sip_proxy_registered_aors", 1.0),
        ("sip_proxy_dialogs_created_total", 1.0),
        ("sip_proxy_not_routed_total", 1.0),
        ("sip_proxy_banned_sources", 0.0),
        ("sip_proxy_banned_drops_total", 0.0),
        ("sip_proxy_flood_drops_total", 0.0),
        ("sip_proxy_table_full_total", 0.0),
        ("sip_proxy_relay_denied_total", 0.0),
        ("sip_proxy_auth_failed_total", 0.0),
        ("sip_proxy_store_write_failures_total", 0.0),
        ("sip_proxy_hep_dropped_total", 0.0),
        ("sip_proxy_build_info{version=\"0.1.0\",mode=\"full\"}", 1.0),
    ];
    for (series, want) in exact {
        assert_eq!(s.get(series), want, "{series}");
    }
    // The forwarded 180, and the 100 Trying of each INVITE if the layer sends one.
    assert!(s.get("sip_proxy_responses_sent_total{class=\"1xx\"}") >= 1.0);
    // Datagrams: 7 requests, 3 responses, the garbage.
    assert_eq!(s.get("sip_proxy_received_total"), 11.0);
    let up = s
        .samples
        .iter()
        .filter(|(k, _)| {
            k.starts_with("sip_proxy_upstream_up{set=\"pstn\",destination=\"127.0.0.1:")
        })
        .map(|(_, v)| *v)
        .collect::<Vec<_>>();
    assert_eq!(up, [1.0], "one destination, not yet probed down");
    // The call ended with its BYE; nothing is in flight but transactions lingering in
    // their completed state (Timer J/K) at most.
    assert_eq!(s.get("sip_proxy_dialogs"), 0.0);
    assert!(s.get("sip_proxy_transactions") <= 12.0);
}

#[test]
fn hep_counters_match_what_the_collector_received() {
    let seen = scenario();
    let sent = seen.last.get("sip_proxy_hep_sent_total");
    // Each message in or out is mirrored: at least the 10 that parsed.
    assert!(sent >= 10.0, "hep sent {sent}");
    assert_eq!(sent, f64::from(seen.hep_received));
    assert_eq!(seen.last.get("sip_proxy_hep_errors_total"), 0.0);
}

#[test]
fn call_kpis_total_and_per_interval() {
    let seen = scenario();
    let s = &seen.last;
    // Two attempts: one answered (with a 180 first), one 404 from the proxy itself.
    assert_eq!(s.get("sip_proxy_kpi_attempts_total"), 2.0);
    assert_eq!(s.get("sip_proxy_kpi_answered_total"), 1.0);
    assert_eq!(s.get("sip_proxy_kpi_ringing_total"), 1.0);
    assert_eq!(s.get("sip_proxy_kpi_sessions_ended_total"), 1.0);
    assert_eq!(s.get("sip_proxy_kpi_challenges_total"), 0.0);
    assert_eq!(s.get("sip_proxy_kpi_session_defects_total"), 0.0);
    // ASR = 2xx / (INVITEs − 401/407 − 3xx) = 1/2; NER counts 486/487/603 too: none here.
    assert_eq!(s.get("sip_proxy_kpi_asr_percent{period=\"total\"}"), 50.0);
    assert_eq!(s.get("sip_proxy_kpi_ner_percent{period=\"total\"}"), 50.0);
    // PDD: bob rang 40 ms after the INVITE reached him; the call lasted 150 ms or more.
    let pdd = s.get("sip_proxy_kpi_pdd_seconds{period=\"total\"}");
    assert!((0.03..2.0).contains(&pdd), "pdd {pdd}");
    let acd = s.get("sip_proxy_kpi_session_duration_seconds{period=\"total\"}");
    assert!((0.14..3.0).contains(&acd), "acd {acd}");

    // Per interval: over the closed intervals seen, the attempts come back, and the ratios
    // carry period="interval"; every interval is about one second long.
    let with_attempts: Vec<&Scrape> = seen
        .all
        .iter()
        .chain([s])
        .filter(|p| {
            p.samples
                .get("sip_proxy_kpi_interval_attempts")
                .is_some_and(|v| *v >= 1.0)
        })
        .collect();
    assert!(
        !with_attempts.is_empty(),
        "no closed interval with the attempts"
    );
    assert!(
        with_attempts.iter().any(|p| p
            .samples
            .contains_key("sip_proxy_kpi_asr_percent{period=\"interval\"}")),
        "no interval ASR"
    );
    for p in seen.all.iter().chain([s]) {
        if let Some(len) = p.samples.get("sip_proxy_kpi_interval_seconds") {
            assert!(*len <= 1.5, "interval of {len} s");
        }
    }
    // Two boundaries after the traffic: the last closed interval is empty, and a ratio
    // without a denominator is absent rather than 0.
    assert_eq!(s.get("sip_proxy_kpi_interval_attempts"), 0.0);
    assert!(
        !s.samples
            .contains_key("sip_proxy_kpi_asr_percent{period=\"interval\"}")
    );
}

#[test]
fn promtool_accepts_the_output() {
    let seen = scenario();
    let promtool = "promtool";
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(promtool).is_file()));
    assert!(
        found,
        "`promtool` is not installed: this test needs it (Debian package `prometheus`, in \
         scripts/apt-packages.txt; ./scripts/test installs it)"
    );
    // The final page, and the largest one seen (with the interval figures).
    let largest = seen
        .all
        .iter()
        .max_by_key(|p| p.samples.len())
        .expect("scrapes");
    for page in [&seen.last, largest] {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            page.text
        );
    }
}

#[test]
fn other_requests_are_refused() {
    let http = &scenario().http;
    assert_eq!(http[0].0, "HTTP/1.1 404 Not Found");
    assert_eq!(http[1].0, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(http[2], ("HTTP/1.1 200 OK".to_owned(), 0), "HEAD: no body");
    assert_eq!(http[3].0, "HTTP/1.1 431 Request Header Fields Too Large");
}

/// Every `sip_proxy_*` name in an expression of the dashboard.
fn dashboard_names(v: &serde_json::Value, out: &mut BTreeSet<String>, exprs: &mut usize) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(e)) = m.get("expr") {
                *exprs += 1;
                let mut rest = e.as_str();
                let mut found = false;
                while let Some(i) = rest.find("sip_proxy_") {
                    let name: String = rest[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &rest[i + name.len()..];
                    out.insert(name);
                    found = true;
                }
                assert!(found, "expression without a sip_proxy metric: {e}");
            }
            for x in m.values() {
                dashboard_names(x, out, exprs);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                dashboard_names(x, out, exprs);
            }
        }
        _ => {}
    }
}

#[test]
fn grafana_dashboard_uses_only_exported_names() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 38);
    assert!(d["title"].is_string() && d["uid"].is_string());
    assert!(d["id"].is_null(), "an importable dashboard has no id");
    // A Prometheus datasource variable, and every panel and query going through it.
    let vars = d["templating"]["list"].as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource" && v["query"] == "prometheus")
        .expect("a datasource variable of type prometheus");
    let ds_ref = format!("${{{}}}", ds["name"].as_str().unwrap());
    let panels = d["panels"].as_array().unwrap();
    let mut titles = Vec::new();
    for p in panels {
        titles.push(p["title"].as_str().unwrap().to_owned());
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], ds_ref.as_str(), "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], ds_ref.as_str(), "{}", p["title"]);
        }
    }
    for kpi in ["ASR", "NER", "PDD", "ACD", "SD", "ISA", "AHR"] {
        assert!(
            titles.iter().any(|t| t.contains(kpi)),
            "no panel for {kpi}: {titles:?}"
        );
    }
    let mut used = BTreeSet::new();
    let mut exprs = 0;
    dashboard_names(&d, &mut used, &mut exprs);
    assert!(exprs >= 15, "{exprs} queries");
    let seen = scenario();
    let exported: BTreeSet<&str> = seen
        .all
        .iter()
        .chain([&seen.last])
        .flat_map(Scrape::names)
        .collect();
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses names the endpoint does not export: {missing:?}"
    );
}

#[test]
fn a_remote_address_needs_allow_remote() {
    let out = Command::new(BIN)
        .args([
            "run",
            "--listen",
            "udp:127.0.0.1:0",
            "--metrics",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics.listen 0.0.0.0:0 is not a loopback address")
            && err.contains("allow_remote"),
        "{err}"
    );
}
