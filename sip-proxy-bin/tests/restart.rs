//! Restarts of the real `sip-proxy run` over its SQLite database (`--data-dir`), on
//! 127.0.0.1, each wait bounded:
//!
//! * write-through (`--db-mode 1`): SIPp registers 10 000 users at a high rate, the proxy is
//!   killed with SIGKILL right after the last 200: the database holds all 10 000 bindings,
//!   the restarted proxy restores them, and calls to some of them are routed to the contact;
//! * write-back (`--db-mode 2`), SIGTERM: every registration is written at shutdown (0 lost);
//! * write-back, SIGKILL: only registrations answered within the last flush interval (plus
//!   the time a flush takes) may be lost — each lost one's age at the kill is measured;
//! * a confirmed call survives a restart: the BYE after it is routed and the dialog ends
//!   (its row leaves the database);
//! * a call whose lifetime ran out while the proxy was down gets its BYEs at restart;
//! * store-only mode (`db_mode` 3): registrations read from the database, dialogs written at
//!   a clean shutdown;
//! * a locked, corrupt or in-use database stops the start with its path and cause; a locked
//!   one at run time is a logged, counted failure (5xx in write-through, kept for the next
//!   flush in write-back);
//! * `--trace-db` writes a `sip_trace` row per message.
//!
//! SIPp (Debian `sip-tester`, in scripts/apt-packages.txt) is required: the test fails, never
//! skips, without it. The scenarios run one at a time (they share two CPUs). Measured
//! figures are printed (`--nocapture`); nothing asserts a speed.

mod support;

use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_parser::{Message, ResponseBuilder};
use support::dir::TempDir;
use support::net::{LO1, free_udp_port};
use support::proc::BIN;
use support::proxy::Proxy;
use support::ua::{Phone, request_is, status_is};

/// One scenario at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the proxy on `port` over `dir/data` with `config` (TOML) and `args`; waits for
/// it to run.
fn start_proxy(dir: &Path, port: u16, config: &str, args: &[&str]) -> Proxy {
    let cfg = dir.join("proxy.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut all = vec!["--config", cfg.to_str().unwrap()];
    all.extend([
        "--workers",
        "2",
        "--shutdown-grace",
        "0",
        "--probe-interval",
        "0",
    ]);
    all.extend_from_slice(args);
    Proxy::run(dir, &[SocketAddrV4::new(LO1, port)], &all)
}

/// SIGTERM, then waits (20 s at most) for a clean exit: the whole log.
fn terminate(mut p: Proxy) -> String {
    let st = p.stop(Duration::from_secs(20));
    let log = p.log_text();
    assert!(
        st.is_some_and(|s| s.success()),
        "exit {st:?} after SIGTERM:\n{log}"
    );
    log
}

/// The value of `key=N` in the proxy's "restored from the database" log line (0 without
/// one).
fn restored(log: &str, key: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("restored from the database"))
        .find_map(|l| {
            let i = l.find(&format!("{key}="))? + key.len() + 1;
            let digits: String = l[i..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

/// A read-only look at the proxy's database (WAL recovered by SQLite after a SIGKILL).
fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        dir.join("data/sip-proxy.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

fn rows(dir: &Path, table: &str) -> i64 {
    db(dir)
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// SIPp registers `n` users (`u1`…`uN` of localhost, contact on `callee`) through `proxy`
/// at `rate` per second; every 200 must list the binding. Returns the time SIPp took.
fn sipp_register(dir: &Path, proxy: SocketAddrV4, callee: u16, n: u32, rate: u32) -> Duration {
    assert!(
        Command::new("sipp").arg("-v").output().is_ok(),
        "sipp not found: install the Debian package sip-tester (listed in scripts/apt-packages.txt)"
    );
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register_many.xml");
    let errors = dir.join("sipp-errors.log");
    let start = Instant::now();
    let mut child = Command::new("sipp")
        .current_dir(dir)
        .arg(proxy.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-key", "callee", &callee.to_string()])
        .args(["-m", &n.to_string(), "-r", &rate.to_string(), "-l", "2000"])
        .args(["-nostdin", "-timeout", "90s", "-timeout_error"])
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp");
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(100) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sipp did not finish within 100 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    let errs = std::fs::read_to_string(&errors).unwrap_or_default();
    assert!(
        status.success(),
        "sipp exited with {status}: not every REGISTER got its 200; errors:\n{}",
        errs.chars().take(3000).collect::<String>()
    );
    took
}

/// Registers `user` of localhost with a contact on `phone`.
fn register(phone: &Phone, proxy: SocketAddrV4, user: &str) {
    let reg = format!(
        "REGISTER sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK-reg-{user};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@localhost>;tag=r1\r\n\
         To: <sip:{user}@localhost>\r\n\
         Call-ID: reg-{user}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@127.0.0.1:{p}>\r\n\
         Expires: 3600\r\n\
         Content-Length: 0\r\n\r\n",
        p = phone.port
    );
    phone.send(proxy, reg.as_bytes());
    phone.expect("200 for the REGISTER", status_is(200, "REGISTER"));
}

/// An INVITE from `alice` to `user` of localhost arrives at `callee` with the contact
/// registered for it; `callee` declines it (486), alice ACKs.
fn call_is_routed(proxy: SocketAddrV4, alice: &Phone, callee: &Phone, user: &str) {
    let call_id = format!("routed-{user}");
    let invite = format!(
        "INVITE sip:{user}@localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@localhost>;tag=a-{user}\r\n\
         To: <sip:{user}@localhost>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{a}>\r\n\
         Content-Length: 0\r\n\r\n",
        a = alice.port
    );
    alice.send(proxy, invite.as_bytes());
    let want = format!("sip:{user}@127.0.0.1:{}", callee.port);
    let (inv, via_proxy) = callee.expect(&format!("INVITE for {user} at its contact"), |m| {
        m.method() == Some("INVITE") && m.call_id() == Some(call_id.as_str())
    });
    let ruri = inv
        .request_uri()
        .map(|u| String::from_utf8_lossy(u).into_owned());
    assert_eq!(
        ruri.as_deref(),
        Some(want.as_str()),
        "retargeted to the binding"
    );
    let busy = ResponseBuilder::new(&inv, 486, "Busy Here")
        .to_tag("busy")
        .build();
    callee.send(via_proxy, &busy);
    let (resp, _) = alice.expect("486 at alice", status_is(486, "INVITE"));
    let ack = format!(
        "ACK sip:{user}@localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@localhost>;tag=a-{user}\r\n\
         To: <sip:{user}@localhost>;tag={tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        a = alice.port,
        tag = resp.to().unwrap().tag().unwrap()
    );
    alice.send(proxy, ack.as_bytes());
}

#[test]
fn write_through_keeps_10_000_registrations_across_kill_9() {
    let _one = serial();
    let dir = TempDir::new("restart-wt");
    let port = free_udp_port();
    let callee = Phone::new();
    let p = start_proxy(&dir, port, "", &["--db-mode", "1"]);
    let took = sipp_register(&dir, p.addr(), callee.port, 10_000, 5_000);
    // Every 200 was sent after its row was committed: nothing may be missing.
    p.kill();
    eprintln!(
        "write-through: 10 000 REGISTERs (SIPp, debug build) in {:.2} s = {:.0}/s",
        took.as_secs_f64(),
        10_000.0 / took.as_secs_f64()
    );
    assert_eq!(rows(&dir, "location"), 10_000);
    assert_eq!(rows(&dir, "location_aor"), 10_000);
    let bytes: i64 = db(&dir)
        .query_row(
            "SELECT (page_count - freelist_count) * page_size \
             FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
            [],
            |r| r.get(0),
        )
        .unwrap();
    eprintln!(
        "on disk: {bytes} bytes of database pages for 10 000 bindings (one per AOR, indexes \
         and the empty schema included) = {} bytes per binding",
        bytes / 10_000
    );
    let p = start_proxy(&dir, port, "", &["--db-mode", "1"]);
    assert_eq!(restored(&p.log_text(), "aors"), 10_000, "{}", p.log_text());
    let alice = Phone::new();
    for user in ["u1", "u2500", "u7777", "u10000"] {
        call_is_routed(p.addr(), &alice, &callee, user);
    }
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn write_back_loses_nothing_on_sigterm() {
    let _one = serial();
    let dir = TempDir::new("restart-wb-term");
    let port = free_udp_port();
    let callee = Phone::new();
    // A long interval: the registrations reach the disk only at shutdown.
    let cfg = "[storage]\ndb_mode = 2\nflush_ms = 600000\n";
    let p = start_proxy(&dir, port, cfg, &[]);
    sipp_register(&dir, p.addr(), callee.port, 5_000, 5_000);
    assert_eq!(rows(&dir, "location"), 0, "nothing flushed yet");
    let log = terminate(p);
    assert!(log.contains("registrations written back"), "{log}");
    assert_eq!(rows(&dir, "location"), 5_000);
    let p = start_proxy(&dir, port, cfg, &[]);
    assert_eq!(restored(&p.log_text(), "aors"), 5_000, "{}", p.log_text());
    let alice = Phone::new();
    for user in ["u1", "u4999"] {
        call_is_routed(p.addr(), &alice, &callee, user);
    }
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn write_back_loses_at_most_the_last_flush_interval_on_kill_9() {
    const N: usize = 3_000;
    const FLUSH_MS: u64 = 500;
    let _one = serial();
    let dir = TempDir::new("restart-wb-kill");
    let port = free_udp_port();
    let cfg = format!("[storage]\ndb_mode = 2\nflush_ms = {FLUSH_MS}\n");
    let p = start_proxy(&dir, port, &cfg, &[]);
    // REGISTERs one after the other, about one per millisecond; the time each 200 came.
    let ua = Phone::new();
    ua.sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answered = Vec::with_capacity(N);
    let mut buf = vec![0u8; 65_535];
    let start = Instant::now();
    for i in 0..N {
        let reg = format!(
            "REGISTER sip:{proxy} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK-wb{i};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:w{i}@localhost>;tag=r{i}\r\n\
             To: <sip:w{i}@localhost>\r\n\
             Call-ID: wb-{i}\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:w{i}@127.0.0.1:{p}>\r\n\
             Expires: 3600\r\n\
             Content-Length: 0\r\n\r\n",
            proxy = p.addr(),
            p = ua.port
        );
        ua.send(p.addr(), reg.as_bytes());
        loop {
            let (n, _) = ua.sock.recv_from(&mut buf).expect("a 200 within 500 ms");
            let m = Message::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
            if m.status() == Some(200) && m.call_id() == Some(format!("wb-{i}").as_str()) {
                break;
            }
        }
        answered.push(Instant::now());
        let due = start + Duration::from_millis(i as u64 + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let killed = Instant::now();
    p.kill();
    let on_disk: std::collections::HashSet<String> = {
        let c = db(&dir);
        let mut st = c.prepare("SELECT aor FROM location_aor").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let lost: Vec<usize> = (0..N)
        .filter(|i| !on_disk.contains(&format!("sip:w{i}@localhost")))
        .collect();
    let oldest_lost = lost
        .iter()
        .map(|&i| killed.duration_since(answered[i]))
        .max()
        .unwrap_or_default();
    let rate =
        f64::from(u32::try_from(N).unwrap()) / answered[N - 1].duration_since(start).as_secs_f64();
    eprintln!(
        "write-back, flush every {FLUSH_MS} ms, kill -9 right after the last 200 at {rate:.0} REGISTER/s: \
         {} of {N} lost, the oldest answered {} ms before the kill",
        lost.len(),
        oldest_lost.as_millis()
    );
    // What was answered more than one interval (plus the flush's own time and scheduling
    // on a shared machine: 500 ms) before the kill is on disk.
    assert!(
        oldest_lost <= Duration::from_millis(FLUSH_MS + 500),
        "lost a registration answered {oldest_lost:?} before the kill"
    );
    assert_eq!(on_disk.len() + lost.len(), N, "nothing else in the table");
    let p = start_proxy(&dir, port, &cfg, &[]);
    assert_eq!(
        restored(&p.log_text(), "aors") as usize,
        N - lost.len(),
        "{}",
        p.log_text()
    );
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A confirmed call from alice to bob (registered) through `proxy`; returns alice's
/// in-dialog request maker (method, CSeq, branch → the request text).
fn confirmed_call(
    proxy: SocketAddrV4,
    alice: &Phone,
    bob: &Phone,
    call_id: &str,
) -> impl Fn(&str, u32, &str) -> String {
    let invite = format!(
        "INVITE sip:bob@localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@localhost>;tag=a1\r\n\
         To: <sip:bob@localhost>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{a}>\r\n\
         Content-Length: 0\r\n\r\n",
        a = alice.port
    );
    alice.send(proxy, invite.as_bytes());
    let (inv, via_proxy) = bob.expect("INVITE at bob", request_is("INVITE"));
    let ok = ResponseBuilder::new(&inv, 200, "OK")
        .to_tag("b1")
        .copy_record_route()
        .header("Contact", format!("<sip:bob@127.0.0.1:{}>", bob.port))
        .build();
    bob.send(via_proxy, &ok);
    let (ok, _) = alice.expect("200 at alice", status_is(200, "INVITE"));
    let mut routes: Vec<String> = ok
        .record_routes()
        .map(|r| format!("<{}>", String::from_utf8_lossy(r.unwrap().raw_uri)))
        .collect();
    routes.reverse();
    assert!(!routes.is_empty(), "the proxy record-routes the INVITE");
    let (a, b) = (alice.port, bob.port);
    let call_id = call_id.to_owned();
    let in_dialog = move |method: &str, seq: u32, branch: &str| {
        let mut m = format!(
            "{method} sip:bob@127.0.0.1:{b} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\n"
        );
        for r in &routes {
            let _ = write!(m, "Route: {r}\r\n");
        }
        let _ = write!(
            m,
            "From: <sip:alice@localhost>;tag=a1\r\n\
             To: <sip:bob@localhost>;tag=b1\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} {method}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        m
    };
    alice.send(proxy, in_dialog("ACK", 1, "ack1").as_bytes());
    bob.expect("ACK at bob", request_is("ACK"));
    in_dialog
}

/// Waits (5 s at most) until the `dialog` table has `n` rows.
fn dialog_rows_become(dir: &Path, n: i64) {
    let end = Instant::now() + Duration::from_secs(5);
    while rows(dir, "dialog") != n {
        assert!(
            Instant::now() < end,
            "the dialog table has {} rows, not {n}, after 5 s",
            rows(dir, "dialog")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_confirmed_call_survives_kill_9_and_its_bye_ends_it() {
    let _one = serial();
    let dir = TempDir::new("restart-call");
    let port = free_udp_port();
    // Write-back, the default mode: the dialog reaches the disk with the next flush.
    let cfg = "[storage]\nflush_ms = 200\n";
    let p = start_proxy(&dir, port, cfg, &[]);
    let (alice, bob) = (Phone::new(), Phone::new());
    register(&bob, p.addr(), "bob");
    let in_dialog = confirmed_call(p.addr(), &alice, &bob, "survivor");
    dialog_rows_become(&dir, 1);
    p.kill();
    let p = start_proxy(&dir, port, cfg, &[]);
    assert_eq!(restored(&p.log_text(), "dialogs"), 1, "{}", p.log_text());
    alice.send(p.addr(), in_dialog("BYE", 2, "bye1").as_bytes());
    let (bye, via_proxy) = bob.expect("BYE at bob after the restart", request_is("BYE"));
    assert_eq!(bye.call_id(), Some("survivor"));
    bob.send(via_proxy, ResponseBuilder::new(&bye, 200, "OK").build());
    alice.expect("200 for the BYE at alice", status_is(200, "BYE"));
    // The dialog ended: its row goes with the next flush.
    dialog_rows_become(&dir, 0);
    let log = terminate(p);
    assert!(!log.contains("ERROR"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_call_past_its_lifetime_at_restart_gets_its_byes() {
    let _one = serial();
    let dir = TempDir::new("restart-expired");
    let port = free_udp_port();
    let cfg = "[dialog]\nmax_duration = 2\n";
    let p = start_proxy(&dir, port, cfg, &[]);
    let (alice, bob) = (Phone::new(), Phone::new());
    register(&bob, p.addr(), "bob");
    let started = Instant::now();
    let _ = confirmed_call(p.addr(), &alice, &bob, "overtime");
    // Down before the lifetime ends (SIGTERM: the dialog is written at shutdown), up after.
    let log = terminate(p);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the call was set up and the proxy stopped within its 2 s lifetime"
    );
    assert_eq!(rows(&dir, "dialog"), 1, "{log}");
    std::thread::sleep(
        Duration::from_secs(2).saturating_sub(started.elapsed()) + Duration::from_millis(300),
    );
    let p = start_proxy(&dir, port, cfg, &[]);
    assert_eq!(restored(&p.log_text(), "dialogs"), 1, "{}", p.log_text());
    for (who, phone) in [("alice", &alice), ("bob", &bob)] {
        let (bye, via_proxy) = phone.expect(&format!("BYE at {who}"), request_is("BYE"));
        assert_eq!(bye.call_id(), Some("overtime"));
        phone.send(via_proxy, ResponseBuilder::new(&bye, 200, "OK").build());
    }
    dialog_rows_become(&dir, 0);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `sip-proxy run` over `dir/data` expecting it to refuse to start (20 s at most);
/// returns its stderr.
fn refused_start(dir: &Path, port: u16) -> String {
    let mut child = Command::new(BIN)
        .args(["run", "--listen", &format!("udp:127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the proxy still runs 20 s after a start it should refuse");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!st.success(), "a refused start exits non-zero: {err}");
    err
}

#[test]
fn an_unusable_database_stops_the_start_with_its_path_and_cause() {
    let _one = serial();
    let dir = TempDir::new("restart-refused");
    let port = free_udp_port();
    let db_path = dir.join("data/sip-proxy.db");
    let shown = db_path.display().to_string();

    // Another sip-proxy holds the data directory.
    let first = start_proxy(&dir, port, "", &[]);
    let err = refused_start(&dir, free_udp_port());
    assert!(
        // (the control socket or the database lock, whichever is checked first, says so)
        (err.contains("is in use by another sip-proxy")
            || err.contains("another sip-proxy is running with this data directory"))
            && err.contains("data"),
        "{err}"
    );
    terminate(first);

    // Another program holds a write lock on the database.
    let other = rusqlite::Connection::open(&db_path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = refused_start(&dir, port);
    assert!(err.contains(&shown) && err.contains("locked"), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);

    // Not a database (or damaged).
    for f in ["sip-proxy.db-wal", "sip-proxy.db-shm"] {
        let _ = std::fs::remove_file(dir.join("data").join(f));
    }
    std::fs::write(&db_path, b"garbage, not SQLite. ".repeat(400)).unwrap();
    let err = refused_start(&dir, port);
    assert!(err.contains(&shown) && err.contains("corrupt"), "{err}");

    // The data directory cannot be made (a file is in its way).
    std::fs::remove_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data"), b"a file").unwrap();
    let err = refused_start(&dir, port);
    assert!(
        err.contains("data directory") && err.contains("data"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The value of `sip_proxy_store_write_failures_total` at the metrics endpoint the proxy
/// logged.
fn store_failures(p: &Proxy) -> u64 {
    metric(p, "sip_proxy_store_write_failures_total")
}

/// The value of the sample `name` at the metrics endpoint the proxy logged.
fn metric(p: &Proxy, name: &str) -> u64 {
    use std::io::{Read, Write};
    let log = p.log_text();
    let i = log.find("http://").expect("the metrics address in the log") + 7;
    let addr = &log[i..i + log[i..].find("/metrics").unwrap()];
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name}:\n{page}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_locked_database_at_run_time_is_a_counted_failure_never_a_crash_nor_a_silent_loss() {
    let _one = serial();
    let dir = TempDir::new("restart-runtime");
    let port = free_udp_port();
    let metrics = ["--metrics", "127.0.0.1:0"];
    let db_path = dir.join("data/sip-proxy.db");

    // Write-through: the REGISTER that cannot be written is refused (5xx), counted, logged.
    let p = start_proxy(
        &dir,
        port,
        "",
        &[&["--db-mode", "1"][..], &metrics].concat(),
    );
    let ua = Phone::new();
    register(&ua, p.addr(), "before");
    let other = rusqlite::Connection::open(&db_path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let reg = format!(
        "REGISTER sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK-locked;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:locked@localhost>;tag=r1\r\n\
         To: <sip:locked@localhost>\r\n\
         Call-ID: reg-locked\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:locked@127.0.0.1:{p}>\r\n\
         Content-Length: 0\r\n\r\n",
        proxy = p.addr(),
        p = ua.port
    );
    ua.send(p.addr(), reg.as_bytes());
    let (resp, _) = ua.expect_within("an answer to the REGISTER", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200) && m.call_id() == Some("reg-locked")
    });
    assert!(
        matches!(resp.status(), Some(500 | 503)),
        "{:?}",
        resp.status()
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store_failures(&p), 1);
    assert!(
        p.log_text().contains("storage: registration not stored"),
        "{}",
        p.log_text()
    );
    register(&ua, p.addr(), "after");
    assert_eq!(
        rows(&dir, "location"),
        2,
        "before and after, not the refused one"
    );
    terminate(p);

    // Write-back: a flush that fails keeps the registrations for the next one.
    let cfg = "[storage]\ndb_mode = 2\nflush_ms = 100\n";
    let p = start_proxy(&dir, port, cfg, &metrics);
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for user in ["k1", "k2", "k3"] {
        register(&ua, p.addr(), user);
    }
    // The flush waits for the lock (2 s), fails, says so.
    let end = Instant::now() + Duration::from_secs(10);
    while !p
        .log_text()
        .contains("not written, kept for the next flush")
    {
        assert!(
            Instant::now() < end,
            "no failed flush logged:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(store_failures(&p) >= 1);
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let end = Instant::now() + Duration::from_secs(10);
    while rows(&dir, "location") != 5 {
        assert!(
            Instant::now() < end,
            "the kept registrations were not written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn trace_db_writes_a_sip_trace_row_per_message() {
    let _one = serial();
    let dir = TempDir::new("restart-trace");
    let port = free_udp_port();
    let p = start_proxy(&dir, port, "", &["--trace-db", "--metrics", "127.0.0.1:0"]);
    let ua = Phone::new();
    register(&ua, p.addr(), "traced");
    let end = Instant::now() + Duration::from_secs(10);
    while metric(&p, "sip_proxy_sip_trace_written_total") < 2 {
        assert!(
            Instant::now() < end,
            "the REGISTER and its 200 not traced in 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(&p, "sip_proxy_sip_trace_dropped_total"), 0);
    let log = terminate(p);
    assert!(log.contains("sip_trace rows written=2"), "{log}");
    let c = rusqlite::Connection::open(dir.join("data/sip-trace.db")).unwrap();
    type Row = (
        String,
        String,
        Option<i64>,
        String,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = c
        .prepare(
            "SELECT callid, method, status, fromip, toip, direction, fromtag, transport \
             FROM sip_trace ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let (ua_at, proxy_at) = (
        format!("udp:127.0.0.1:{}", ua.port),
        format!("udp:127.0.0.1:{port}"),
    );
    let row = |status, from: &str, to: &str, dir: &str| -> Row {
        (
            "reg-traced".into(),
            "REGISTER".into(),
            status,
            from.into(),
            to.into(),
            dir.into(),
            "r1".into(),
            "udp".into(),
        )
    };
    assert_eq!(
        rows,
        [
            row(None, &ua_at, &proxy_at, "in"),
            row(Some(200), &proxy_at, &ua_at, "out")
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn store_only_mode_reads_the_database_and_writes_dialogs_at_shutdown() {
    let _one = serial();
    let dir = TempDir::new("restart-db-only");
    let port = free_udp_port();
    let callee = Phone::new();
    // db_mode 3: registrations live in the database only; dialogs are written at shutdown.
    let cfg = "[storage]\ndb_mode = 3\n";
    let p = start_proxy(&dir, port, cfg, &[]);
    sipp_register(&dir, p.addr(), callee.port, 2_000, 2_000);
    assert_eq!(
        rows(&dir, "location"),
        2_000,
        "each one committed before its 200"
    );
    let (alice, bob) = (Phone::new(), Phone::new());
    register(&bob, p.addr(), "bob");
    let in_dialog = confirmed_call(p.addr(), &alice, &bob, "db-only-call");
    assert_eq!(rows(&dir, "dialog"), 0, "dialogs wait for the shutdown");
    p.kill();
    // Killed: the registrations are all there, the dialog is not (mode 3 writes it at a
    // clean shutdown only).
    assert_eq!(rows(&dir, "location"), 2_001);
    let p = start_proxy(&dir, port, cfg, &[]);
    let log = p.log_text();
    assert_eq!(
        restored(&log, "aors"),
        0,
        "nothing loaded into memory: {log}"
    );
    call_is_routed(p.addr(), &alice, &callee, "u1999");
    // A call, then a clean stop: now the dialog is written, and restored at the next start.
    let in_dialog_2 = confirmed_call(p.addr(), &alice, &bob, "db-only-call-2");
    drop(in_dialog);
    let log = terminate(p);
    assert!(log.contains("dialogs written"), "{log}");
    assert_eq!(rows(&dir, "dialog"), 1);
    let p = start_proxy(&dir, port, cfg, &[]);
    assert_eq!(restored(&p.log_text(), "dialogs"), 1, "{}", p.log_text());
    alice.send(p.addr(), in_dialog_2("BYE", 2, "bye-db-only").as_bytes());
    let (bye, via_proxy) = bob.expect("BYE at bob after the restart", request_is("BYE"));
    assert_eq!(bye.call_id(), Some("db-only-call-2"));
    bob.send(via_proxy, ResponseBuilder::new(&bye, 200, "OK").build());
    alice.expect("200 for the BYE at alice", status_is(200, "BYE"));
    // The table is rewritten with the live dialogs at the next shutdown: none.
    terminate(p);
    assert_eq!(rows(&dir, "dialog"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
