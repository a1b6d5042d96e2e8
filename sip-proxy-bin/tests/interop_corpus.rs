//! The real `sip-proxy run` survives the RFC 4475 / RFC 5118 torture corpus
//! (`../shared/corpus` beside the project; `INDEX.tsv` gives each message's verdict)
//! and mutated datagrams made from it: no crash, every answer a well-formed SIP response
//! that fits the message (never a 2xx to an invalid one, 400 for invalid requests that get
//! one), unparseable ones dropped and counted, and still serving afterwards.
//!
//! The corpus carries foreign addresses in Via, Route, Contact and Request-URI. So the
//! proxy and the sender run in a network namespace of their own that has only loopback
//! (`unshare -n`, then `ip link set lo up`: nothing can leave the machine), and the proxy
//! runs with `--relay-to 127.0.0.0/8` and relaying allowed: it tries to send where the
//! messages say, sends nowhere outside 127/8 (the `sip_trace` file shows every send) and
//! counts each refusal (`relay_denied`).
//!
//! The outer test re-runs this test binary inside the namespace (and a PID namespace, so
//! that nothing outlives it) to run the inner one. A
//! missing `unshare` or `ip`, or a namespace that cannot be made, fails the test; the inner
//! test refuses to run anywhere but in a loopback-only namespace.

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use sip_parser::Message;
use support::dir::TempDir;
use support::net::LO1;
use support::proc::Proc;
use support::proxy::Proxy;

const INNER: &str = "inner_corpus_and_mutations_in_the_namespace";
/// Set for the inner run (it then knows it was started by the outer test).
const NETNS_ENV: &str = "SIP_PROXY_INTEROP_NETNS";

/// `../shared/corpus` beside the project, like the parser's corpus test.
fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

#[test]
fn proxy_survives_the_torture_corpus_and_mutations_in_a_loopback_only_namespace() {
    support::proc::require("unshare");
    support::proc::require("ip");
    let exe = std::env::current_exe().unwrap();
    let dir = TempDir::new("netns");
    let (out, err) = (dir.path("inner.out"), dir.path("inner.err"));
    let mut cmd = Command::new("unshare");
    // -n: the network namespace; -p -f --kill-child: a PID namespace too, whose init is
    // the inner test, so that everything it started (the proxy) dies with it, even when
    // it is killed at the deadline.
    cmd.args([
        "-n",
        "-p",
        "-f",
        "--kill-child",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" \"$@\"",
    ])
    .arg(&exe)
    .args([
        INNER,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(NETNS_ENV, "1")
    .stdout(std::fs::File::create(&out).unwrap())
    .stderr(std::fs::File::create(&err).unwrap());
    let mut p = Proc::spawn("unshare -n (corpus)", &mut cmd);
    let status = p.wait(Duration::from_secs(90));
    let (out, err) = (
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the inner test failed in the namespace ({status:?}); if `unshare -n` itself failed, \
         the tests need CAP_SYS_ADMIN (root):\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.contains(&format!("test {INNER} ... ok")) && out.contains("1 passed"),
        "the inner test did not run:\n{out}\n{err}"
    );
}

/// xorshift64*: the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap()
    }
}

/// One mutant of `m`: bytes flipped, cut, repeated, spliced, line ends changed or a
/// header line duplicated or dropped.
fn mutate(m: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = m.to_vec();
    if v.is_empty() {
        return v;
    }
    match rng.below(8) {
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        1 => v.truncate(rng.below(v.len())),
        2 => {
            let (a, b) = (rng.below(v.len()), rng.below(v.len()));
            let (a, b) = (a.min(b), a.max(b));
            let slice = v[a..b].to_vec();
            let at = rng.below(v.len());
            v.splice(at..at, slice);
        }
        3 => {
            let at = rng.below(v.len());
            let junk: Vec<u8> = (0..=rng.below(40)).map(|_| rng.next() as u8).collect();
            v.splice(at..at, junk);
        }
        4 => v.retain(|b| *b != b'\r'),
        5 => {
            // a header line repeated (or dropped)
            let lines: Vec<&[u8]> = m.split(|b| *b == b'\n').collect();
            let i = rng.below(lines.len());
            let mut out = Vec::new();
            for (n, l) in lines.iter().enumerate() {
                if n == i && rng.below(2) == 0 {
                    continue;
                }
                out.extend_from_slice(l);
                out.push(b'\n');
                if n == i {
                    out.extend_from_slice(l);
                    out.push(b'\n');
                }
            }
            out.pop();
            v = out;
        }
        6 => {
            // a digit run replaced by a huge number (Content-Length, CSeq, Max-Forwards …)
            if let Some(i) = v.iter().position(u8::is_ascii_digit) {
                let start = i + rng.below(v.len() - i);
                if let Some(j) = v[start..].iter().position(u8::is_ascii_digit) {
                    let at = start + j;
                    v.splice(at..=at, b"99999999999999999999".iter().copied());
                }
            }
        }
        _ => {
            let i = rng.below(v.len());
            v[i] = [0u8, b':', b';', b',', b'<', b'>', b'"', b' ', b'%', 0xff][rng.below(10)];
        }
    }
    v
}

/// Every datagram that arrives on `sock` within `window` of the last one.
fn collect(sock: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    sock.set_read_timeout(Some(window)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// What the sender sent so far, to tell which message an answer is for (answers come late
/// too: a server transaction retransmits its final response to an INVITE nobody ACKs).
#[derive(Default)]
struct Sent {
    datagrams: Vec<Vec<u8>>,
    /// Call-ID → (name, verdict, whether a request) of the corpus messages.
    corpus: BTreeMap<String, (String, String, bool)>,
}

impl Sent {
    /// Checks one datagram the sender got: a well-formed SIP message, a response with a
    /// status in 100..=699 answering something sent (its Call-ID is in a sent datagram),
    /// never a 2xx to an invalid corpus request. Returns the corpus message it answers and
    /// its status.
    fn check(&self, got: &[u8]) -> Option<(String, u16)> {
        let m = Message::parse(Bytes::from(got.to_vec())).unwrap_or_else(|e| {
            panic!(
                "the proxy sent an unparseable datagram ({e}):\n{}",
                String::from_utf8_lossy(got)
            )
        });
        // A request forwarded to 127.0.0.1:5060 (a Request-URI naming the sender) is fine.
        let status = m.status()?;
        assert!((100..700).contains(&status), "status {status}");
        // (None when the request had none: a 400 copies what there is, RFC 3261 §8.2.6.2.)
        let cid = m.call_id().unwrap_or_default();
        assert!(
            cid.is_empty()
                || self
                    .datagrams
                    .iter()
                    .any(|d| d.windows(cid.len()).any(|w| w == cid.as_bytes())),
            "an answer to nothing sent:\n{}",
            String::from_utf8_lossy(got)
        );
        let (name, verdict, request) = self.corpus.get(cid)?;
        if verdict == "invalid" && *request {
            assert!(
                !(200..300).contains(&status),
                "{name}: {status} to an invalid request"
            );
        }
        Some((name.clone(), status))
    }
}

#[test]
#[ignore = "runs only inside a loopback-only network namespace, started by \
            proxy_survives_the_torture_corpus_and_mutations_in_a_loopback_only_namespace"]
fn inner_corpus_and_mutations_in_the_namespace() {
    // Refuse to send the corpus's foreign addresses anywhere but an isolated namespace.
    // (/proc/net/dev lists the interfaces of this process's namespace; /sys/class/net
    // may show the host's.)
    let mut ifaces: Vec<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split(':').next()?.trim().to_owned()))
        .collect();
    ifaces.sort();
    assert!(
        std::env::var_os(NETNS_ENV).is_some() && ifaces == ["lo"],
        "not in a loopback-only network namespace (interfaces {ifaces:?}): run \
         proxy_survives_the_torture_corpus_and_mutations_in_a_loopback_only_namespace"
    );

    let corpus = corpus_dir();
    let index = std::fs::read_to_string(corpus.join("INDEX.tsv"))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.join("INDEX.tsv").display()));
    let messages: Vec<(String, String, Vec<u8>)> = index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let (file, verdict) = (*cols.first()?, *cols.get(3)?);
            let data = std::fs::read(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            Some((file.to_owned(), verdict.to_owned(), data))
        })
        .collect();
    assert!(messages.len() >= 60, "{} corpus messages", messages.len());

    let dir = TempDir::new("corpus");
    let config = dir.path("proxy.toml");
    std::fs::write(&config, "[limits]\nallow_relay = true\n").unwrap();
    let trace = dir.path("sip_trace.jsonl");
    // The proxy on 127.0.0.1:5070; the sender on 127.0.0.1:5060, where answers to a Via
    // without a port come back (received = our address, RFC 3261 §18.2.2).
    let listen = SocketAddrV4::new(LO1, 5070);
    let mut proxy = Proxy::start(
        &dir,
        &[listen],
        &[
            "--config",
            config.to_str().unwrap(),
            "--relay-to",
            "127.0.0.0/8",
            "--domain",
            "example.com",
            "--trace-file",
            trace.to_str().unwrap(),
        ],
    );
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5060)).unwrap();

    // 1. The corpus, one message at a time.
    let mut sent = Sent::default();
    for (name, verdict, data) in &messages {
        if let Ok(m) = Message::parse(Bytes::from(data.clone())) {
            if let Some(cid) = m.call_id() {
                sent.corpus.insert(
                    cid.to_owned(),
                    (name.clone(), verdict.clone(), m.is_request()),
                );
            }
        }
    }
    let mut answered: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (name, _, data) in &messages {
        sock.send_to(data, listen).unwrap();
        sent.datagrams.push(data.clone());
        for got in collect(&sock, Duration::from_millis(60)) {
            if let Some((n, s)) = sent.check(&got) {
                answered.entry(n).or_default().push(s);
            }
        }
        assert!(proxy.running(), "the proxy died on {name}");
    }
    eprintln!("corpus answers: {answered:?}");
    // Every invalid request that got a final answer got a 4xx (400 mostly; 505 for the
    // version, 416/420 for scheme/extension).
    for (name, verdict, _) in &messages {
        if verdict == "invalid" {
            for s in answered
                .get(name)
                .into_iter()
                .flatten()
                .filter(|s| **s >= 200)
            {
                assert!((400..600).contains(s), "{name}: {s}");
            }
        }
    }
    // The answers the RFCs name, where the answer comes back to us (RFC 4475 section).
    for (file, status) in [
        ("rfc4475/zeromf.sip", 483),     // 3.3.11: Max-Forwards 0 at a proxy
        ("rfc4475/badvers.sip", 505),    // 3.1.2.16: SIP/7.0
        ("rfc4475/unkscm.sip", 416),     // 3.3.2: unknown Request-URI scheme
        ("rfc4475/bext01.sip", 420),     // 3.3.5: Proxy-Require of an unknown extension
        ("rfc4475/multi01.sip", 400),    // 3.3.8: several Call-ID, To, From, CSeq
        ("rfc4475/clerr.sip", 400),      // 3.1.2.2: Content-Length beyond the datagram
        ("rfc4475/ncl.sip", 400),        // 3.1.2.3: negative Content-Length
        ("rfc4475/scalar02.sip", 400),   // 3.1.2.4: overlarge scalars
        ("rfc4475/mismatch01.sip", 400), // 3.1.2.17: CSeq method differs
        ("rfc4475/regbadct.sip", 400),   // 3.1.2.13: escaped header in addr-spec Contact
        ("rfc4475/cparam01.sip", 200),   // 3.3.12: REGISTER, contact-param without <>
        ("rfc4475/escnull.sip", 200),    // 3.1.1.4: REGISTER with %00 in user parts
    ] {
        assert!(
            answered.get(file).is_some_and(|s| s.contains(&status)),
            "{file}: expected {status}, got {:?}",
            answered.get(file)
        );
    }
    let parse_errors = proxy.counter("parse_errors");
    let invalid = proxy.counter("invalid");
    assert!(parse_errors + invalid >= 10, "{parse_errors} + {invalid}");

    // 2. Mutants: 20 of each message.
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut mutants = 0;
    for (name, _, data) in &messages {
        for _ in 0..20 {
            let m = mutate(data, &mut rng);
            sock.send_to(&m, listen).unwrap();
            sent.datagrams.push(m);
            mutants += 1;
        }
        // Every answer must be well formed.
        for got in collect(&sock, Duration::from_millis(20)) {
            sent.check(&got);
        }
        assert!(proxy.running(), "the proxy died on a mutant of {name}");
    }
    for got in collect(&sock, Duration::from_millis(300)) {
        sent.check(&got);
    }
    assert!(proxy.counter("received") >= (messages.len() + mutants) as u64);
    assert!(
        proxy.counter("parse_errors") > parse_errors,
        "mutants dropped and counted"
    );

    // 3. Still serving: OPTIONS to the proxy itself.
    let ping = format!(
        "OPTIONS sip:{listen} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-after\r\n\
         From: <sip:probe@example.com>;tag=1\r\nTo: <sip:{listen}>\r\nCall-ID: after-corpus\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(ping.as_bytes(), listen).unwrap();
    let answers = collect(&sock, Duration::from_millis(500));
    assert!(
        answers
            .iter()
            .any(|a| a.starts_with(b"SIP/2.0 200 ") && a.windows(12).any(|w| w == b"after-corpus")),
        "no 200 to the OPTIONS after the corpus"
    );

    // 4. --relay-to: it tried to send outside 127/8 and refused (counted), and every
    // message it did send went to 127/8.
    let denied = proxy.counter("relay_denied");
    assert!(denied > 0, "nothing refused by --relay-to");
    let rows = std::fs::read_to_string(&trace).unwrap();
    let mut out_rows = 0;
    for row in rows.lines() {
        let v: serde_json::Value = serde_json::from_str(row).unwrap();
        if v["direction"] == "out" {
            out_rows += 1;
            let to = v["toip"].as_str().unwrap();
            assert!(to.starts_with("127."), "sent outside 127/8: {row}");
        }
    }
    assert!(out_rows > 0);
    eprintln!("relay_denied {denied}, sent {out_rows}, mutants {mutants}");
    assert!(proxy.running());
    let status = proxy.stop(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "graceful stop: {status:?}"
    );
}
