//! The control socket itself: raw JSON-RPC 2.0 as a script would speak it (one request per
//! line, batches, notifications, a last line without newline), its permissions, what
//! `sip-proxy ctl` says when there is no proxy or the socket is not ours, and how
//! `sip-proxy run` treats a socket already there.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use support::dir::TempDir;
use support::net::free_udp_port;
use support::proc::BIN;
use support::proxy::Proxy;

fn ctl_at(socket: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("ctl")
        .args(["--socket", socket.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

/// `ctl --socket PATH stats` must fail with exit status 3 and say `what`.
fn unreachable(socket: &Path, what: &str, extra: &[&str]) {
    let mut args = vec!["stats"];
    args.extend_from_slice(extra);
    let out = ctl_at(socket, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(what), "{err}");
}

fn rpc(conn: &mut BufReader<UnixStream>, line: &str) -> Value {
    conn.get_mut().write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn raw_json_rpc_over_the_socket() {
    let dir = TempDir::new("ctl-raw");
    let p = Proxy::small(&dir, &[]);
    let sock = p.data.join("ctl.sock");
    let mode = |f: &Path| fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(&p.data), 0o700);

    let stream = UnixStream::connect(&sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut conn = BufReader::new(stream);
    let r = rpc(
        &mut conn,
        "{\"jsonrpc\":\"2.0\",\"method\":\"stats\",\"id\":7}\n",
    );
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["id"], 7);
    assert!(r["result"]["received"].is_u64(), "{r}");

    // A batch on the same connection: the notification (no id) is done, not answered.
    let r = rpc(
        &mut conn,
        concat!(
            r#"[{"jsonrpc":"2.0","method":"ban.add","params":["127.0.0.9",30],"id":"a"},"#,
            r#"{"jsonrpc":"2.0","method":"ban.list","id":"b"},"#,
            r#"{"jsonrpc":"2.0","method":"ban.remove","params":{"ip":"127.0.0.9"}}]"#,
            "\n"
        ),
    );
    assert_eq!(r.as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r[0]["result"], json!({"ip": "127.0.0.9", "seconds": 30}));
    assert_eq!(r[1]["result"][0]["ip"], "127.0.0.9");
    assert_eq!(p.ok(&["ban", "list"]), "no banned sources\n");

    let r = rpc(&mut conn, "{oops\n");
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32700), Value::Null)
    );
    let r = rpc(
        &mut conn,
        "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":1}\n",
    );
    assert_eq!(r["error"]["code"], -32601);
    let r = rpc(
        &mut conn,
        "{\"jsonrpc\":\"2.0\",\"method\":\"ban.add\",\"params\":{\"address\":\"1.2.3.4\"},\"id\":2}\n",
    );
    assert_eq!(r["error"]["code"], -32602);
    assert!(
        r["error"]["message"].as_str().unwrap().contains("address"),
        "{r}"
    );
    let r = rpc(
        &mut conn,
        "{\"jsonrpc\":\"2.0\",\"method\":\"system.listMethods\",\"id\":3}\n",
    );
    let methods: Vec<&str> = r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    for m in [
        "ban.list",
        "location.remove",
        "dialog.end",
        "upstream.disable",
        "reload",
    ] {
        assert!(methods.contains(&m), "{methods:?}");
    }

    // One request per connection, without a newline: answered at the end of the input
    // (`printf '{...}' | nc -U ctl.sock`).
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(br#"{"jsonrpc":"2.0","method":"core.version","id":"v"}"#)
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["result"]["name"], "sip-proxy");
    assert!(text.ends_with('\n'));

    // `ctl call` for any method.
    let out = p.ok(&["call", "ban.add", r#"["127.0.0.9", 5]"#]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["seconds"], 5);
    let e = p.fails(&["call", "ban.add", "127.0.0.9"], 1);
    assert!(e.contains("PARAMS must be a JSON array or object"), "{e}");

    // Limits: a request line over 64 KiB is refused and the connection closed; beyond 8
    // connections at once, a new one is told so and closed.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&vec![b' '; 64 * 1024 + 2]).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("65536"),
        "{r}"
    );
    // Its thread counts itself out just after closing.
    std::thread::sleep(Duration::from_millis(200));
    let open: Vec<BufReader<UnixStream>> = (0..7)
        .map(|_| {
            let s = UnixStream::connect(&sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut c = BufReader::new(s);
            // Answered: served by its own thread.
            let r = rpc(
                &mut c,
                "{\"jsonrpc\":\"2.0\",\"method\":\"core.version\",\"id\":1}\n",
            );
            assert_eq!(r["result"]["name"], "sip-proxy");
            c
        })
        .collect();
    let mut ninth = UnixStream::connect(&sock).unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut text = String::new();
    ninth.read_to_string(&mut text).unwrap();
    assert!(text.contains("more than 8 control connections"), "{text}");
    drop(open);
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.ok(&["stats"]).contains("received"));

    // Stopped: the socket goes with the proxy.
    drop(conn);
    drop(p);
    assert!(!sock.exists());
}

#[test]
fn clear_errors_without_a_proxy() {
    let dir = TempDir::new("ctl-errors");
    // Nothing there.
    let out = Command::new(BIN)
        .args([
            "ctl",
            "--data-dir",
            dir.join("none").to_str().unwrap(),
            "stats",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no control socket at") && err.contains("not running"),
        "{err}"
    );

    // A file that is not a socket.
    let file = dir.join("plain");
    fs::write(&file, "x").unwrap();
    unreachable(&file, "is not a socket", &[]);

    // A socket left by a process that ended.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    unreachable(&stale, "nothing listens", &[]);

    // Sockets that are not ours: each answers one connection its own way.
    let fake = |name: &str, answer: Option<&'static [u8]>| {
        let path = dir.join(name);
        let l = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut line = String::new();
            BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            match answer {
                Some(a) => s.write_all(a).unwrap(),
                None => std::thread::sleep(Duration::from_millis(1500)),
            }
        });
        (path, t)
    };
    let (path, t) = fake("hello.sock", Some(b"HELLO\n"));
    unreachable(
        &path,
        "does not answer like a sip-proxy control socket (not JSON)",
        &[],
    );
    t.join().unwrap();
    let (path, t) = fake("other.sock", Some(b"{\"ok\":true}\n"));
    unreachable(&path, "not JSON-RPC 2.0", &[]);
    t.join().unwrap();
    let (path, t) = fake("closes.sock", Some(b""));
    unreachable(&path, "closed the connection without answering", &[]);
    t.join().unwrap();
    let (path, t) = fake("silent.sock", None);
    unreachable(&path, "no answer from", &["--timeout", "1"]);
    t.join().unwrap();

    // Permission denied (root is never denied: checked only for other users).
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        let path = dir.join("private.sock");
        let _l = UnixListener::bind(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        unreachable(&path, "permission denied", &[]);
    }
}

#[test]
fn run_replaces_a_stale_socket_and_refuses_a_live_one() {
    let dir = TempDir::new("ctl-startup");
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    let sock = data.join("ctl.sock");

    // Not a socket: left alone, the proxy does not start.
    fs::write(&sock, "mine").unwrap();
    let second = |port: u16| {
        Command::new(BIN)
            .args(["run", "--listen", &format!("udp:127.0.0.1:{port}")])
            .args(["--data-dir", data.to_str().unwrap(), "--workers", "1"])
            .output()
            .unwrap()
    };
    let out = second(free_udp_port());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("exists and is not a socket"), "{err}");
    assert_eq!(fs::read_to_string(&sock).unwrap(), "mine");
    fs::remove_file(&sock).unwrap();

    // A stale socket is replaced.
    drop(UnixListener::bind(&sock).unwrap());
    let p = Proxy::small(&dir, &[]);
    assert!(p.ok(&["stats"]).contains("received"));

    // A second proxy on the same data directory is refused; the first goes on.
    let out = second(free_udp_port());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("another sip-proxy is running"), "{err}");
    assert!(p.ok(&["stats"]).contains("received"));
}
