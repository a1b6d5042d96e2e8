//! `sip-proxy hep` end to end without external peers: encode → file → decode, TCP framing
//! through `listen tcp:`, HEPv1/v2 files, and the error path (bad packet: exit 1, the others
//! still printed).

mod support;

use std::fs;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::dir::TempDir;
use support::proc::BIN;

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK-cli\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:a@example.com>\r\n\
Call-ID: cli-1@example.com\r\n\
CSeq: 1 REGISTER\r\n\
Content-Length: 0\r\n\r\n";

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn encode_to_file_then_decode_v3_ipv6_all_options() {
    let d = TempDir::new("hep-cli-v3");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    let out = d.join("out.hep");
    let st = Command::new(BIN)
        .args([
            "hep",
            "encode",
            "--src",
            "[2001:db8::1]:5060",
            "--dst",
            "[2001:db8::2]:5061",
        ])
        .args([
            "--proto",
            "tcp",
            "--capture-id",
            "4242",
            "--auth-key",
            "k",
            "--node-name",
            "n",
        ])
        .args([
            "--correlation-id",
            "c",
            "--ts",
            "1700000000.000001",
            "--out",
        ])
        .arg(&out)
        .arg(&sip)
        .arg(&sip)
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new(BIN)
        .args(["hep", "decode", "--strict"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o.stdout);
    assert_eq!(lines.len(), 2);
    for j in &lines {
        assert_eq!(j["version"], 3);
        assert_eq!(j["family"], "ipv6");
        assert_eq!(j["proto"], "tcp");
        assert_eq!(j["src"], "[2001:db8::1]:5060");
        assert_eq!(j["dst"], "[2001:db8::2]:5061");
        assert_eq!(j["ts_sec"], 1_700_000_000);
        assert_eq!(j["ts_usec"], 1);
        assert_eq!(j["capture_id"], 4242);
        assert_eq!(j["auth_key"], "k");
        assert_eq!(j["node_name"], "n");
        assert_eq!(j["correlation_id"], "c");
        assert_eq!(j["payload"].as_str().unwrap().as_bytes(), REGISTER);
        assert_eq!(j["method"], "REGISTER");
        assert_eq!(j["call_id"], "cli-1@example.com");
    }
}

#[test]
fn v1_and_v2_files() {
    let d = TempDir::new("hep-cli-v12");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    for v in ["1", "2"] {
        let out = d.join(format!("v{v}.hep"));
        let st = Command::new(BIN)
            .args(["hep", "encode", "--version", v, "--src", "10.0.0.1:5060"])
            .args([
                "--dst",
                "10.0.0.2:5060",
                "--capture-id",
                "9",
                "--ts",
                "1700000000.5",
            ])
            .arg("--out")
            .arg(&out)
            .arg(&sip)
            .status()
            .unwrap();
        assert!(st.success());
        let o = Command::new(BIN)
            .args(["hep", "decode", "--strict"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let j = &json_lines(&o.stdout)[0];
        assert_eq!(j["version"], v.parse::<u64>().unwrap());
        assert_eq!(j["src"], "10.0.0.1:5060");
        assert_eq!(j["method"], "REGISTER");
        if v == "2" {
            assert_eq!(j["ts_usec"], 500_000);
            assert_eq!(j["capture_id"], 9);
        } else {
            assert_eq!(j["ts_sec"], Value::Null);
        }
    }
    // v1/v2 have no length field: several messages into one file are refused
    let st = Command::new(BIN)
        .args([
            "hep",
            "encode",
            "--version",
            "2",
            "--src",
            "10.0.0.1:1",
            "--dst",
            "10.0.0.2:2",
        ])
        .arg("--out")
        .arg(d.join("x"))
        .arg(&sip)
        .arg(&sip)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success());
}

#[test]
fn malformed_packet_exits_1_and_the_others_are_printed() {
    let d = TempDir::new("hep-cli-bad");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    let out = d.join("three.hep");
    let st = Command::new(BIN)
        .args([
            "hep",
            "encode",
            "--src",
            "10.0.0.1:5060",
            "--dst",
            "10.0.0.2:5060",
            "--out",
        ])
        .arg(&out)
        .args([&sip, &sip, &sip])
        .status()
        .unwrap();
    assert!(st.success());
    // corrupt the first chunk length of the second packet (length < 6)
    let mut bytes = fs::read(&out).unwrap();
    let first = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    bytes[first + 10] = 0;
    bytes[first + 11] = 3;
    fs::write(&out, &bytes).unwrap();
    let o = Command::new(BIN)
        .args(["hep", "decode"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o.stdout).len(), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("packet 2"), "{err}");
    assert!(err.contains(&format!("offset {}", first + 6)), "{err}");
}

#[test]
fn listen_tcp_splits_the_stream() {
    let d = TempDir::new("hep-cli-tcp");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut listen = Command::new(BIN)
        .args([
            "hep",
            "listen",
            &format!("tcp:127.0.0.1:{port}"),
            "--count",
            "3",
            "--timeout",
            "15",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // wait for the listener
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "listener did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = Command::new(BIN)
        .args([
            "hep",
            "encode",
            "--src",
            "10.0.0.1:5060",
            "--dst",
            "10.0.0.2:5060",
        ])
        .args(["--send", &format!("tcp:127.0.0.1:{port}")])
        .args([&sip, &sip, &sip])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while listen.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = listen.kill();
            panic!("hep listen did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = listen.wait_with_output().unwrap();
    assert!(o.status.success());
    let lines = json_lines(&o.stdout);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|j| j["method"] == "REGISTER"));
}

#[test]
fn gzip_payload_round_trip() {
    let d = TempDir::new("hep-cli-gzip");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    let out = d.join("gz.hep");
    let st = Command::new(BIN)
        .args([
            "hep",
            "encode",
            "--gzip",
            "--src",
            "10.0.0.1:5060",
            "--dst",
            "10.0.0.2:5060",
        ])
        .arg("--out")
        .arg(&out)
        .arg(&sip)
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = fs::read(&out).unwrap();
    // chunk 0x0010 carries a gzip member
    let i = bytes.windows(2).position(|w| w == [0x1f, 0x8b]).unwrap();
    assert_eq!(bytes[i - 6..i - 2], [0x00, 0x00, 0x00, 0x10]);
    let o = Command::new(BIN)
        .args(["hep", "decode", "--strict"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = &json_lines(&o.stdout)[0];
    assert_eq!(j["compressed"], true);
    assert_eq!(j["payload"].as_str().unwrap().as_bytes(), REGISTER);
    assert_eq!(j["method"], "REGISTER");
}

/// `--proto` takes every name of the workspace's `Transport`; TLS, WS and WSS go out as IP
/// protocol 22 (shown as "tls"), as Kamailio sends them.
#[test]
fn every_transport_name_is_a_proto_value() {
    let d = TempDir::new("hep-cli-proto");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    for (proto, shown) in [
        ("udp", "udp"),
        ("tcp", "tcp"),
        ("tls", "tls"),
        ("sctp", "sctp"),
        ("ws", "tls"),
        ("wss", "tls"),
    ] {
        let out = d.join(format!("{proto}.hep"));
        let st = Command::new(BIN)
            .args([
                "hep",
                "encode",
                "--src",
                "10.0.0.1:5060",
                "--dst",
                "10.0.0.2:5060",
            ])
            .args(["--proto", proto, "--ts", "1700000000.25", "--out"])
            .arg(&out)
            .arg(&sip)
            .status()
            .unwrap();
        assert!(st.success(), "{proto}");
        let o = Command::new(BIN)
            .args(["hep", "decode", "--strict"])
            .arg(&out)
            .output()
            .unwrap();
        let j = &json_lines(&o.stdout)[0];
        assert_eq!(j["proto"], shown, "{proto}");
        assert_eq!(j["ts_usec"], 250_000);
    }
}

/// What the codec refuses reaches the user as its message: gzip in HEPv2, a TLS collector,
/// a malformed timestamp, an unknown transport.
#[test]
fn refusals_say_why() {
    let d = TempDir::new("hep-cli-refuse");
    let sip = d.join("reg.sip");
    fs::write(&sip, REGISTER).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let sip = sip.to_str().unwrap();
    let out = d.join("x.hep");
    let out = out.to_str().unwrap();
    let base = [
        "hep",
        "encode",
        "--src",
        "10.0.0.1:1",
        "--dst",
        "10.0.0.2:2",
    ];
    let e = run(&[&base[..], &["--gzip", "--version", "2", "--out", out, sip]].concat());
    assert!(e.contains("compressed payload needs HEPv3"), "{e}");
    let e = run(&[&base[..], &["--ts", "1.1234567", "--out", out, sip]].concat());
    assert!(e.contains("SECONDS[.MICROSECONDS]"), "{e}");
    let e = run(&[&base[..], &["--proto", "quic", "--out", out, sip]].concat());
    assert!(e.contains("quic"), "{e}");
    let e = run(&[&base[..], &["--send", "tls:127.0.0.1:9", sip]].concat());
    assert!(e.contains("UDP or TCP, not TLS"), "{e}");
    let e = run(&["hep", "listen", "sctp:127.0.0.1:0", "--timeout", "0"]);
    assert!(e.contains("UDP or TCP, not SCTP"), "{e}");
    let e = run(&["hep", "listen", "127.0.0.1:9060", "--timeout", "0"]);
    assert!(e.contains("expected udp:HOST:PORT or tcp:HOST:PORT"), "{e}");
}
