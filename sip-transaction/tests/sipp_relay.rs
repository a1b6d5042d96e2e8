//! A real stack on loopback: SIPp (Debian `sip-tester`) calls through the `relay` example,
//! with the harness's call scenarios (`shared/bench/sipp-load/scenarios/uac_call.xml` and
//! `uas_call.xml`, which follow the Record-Route set):
//!
//! ```text
//! sipp UAC (uac_call.xml) -> relay example -> sipp UAS (uas_call.xml)
//! ```
//!
//! INVITE / 100 / 180 / 200 / ACK / BYE / 200: every call of 500 succeeds without loss, and
//! at least 97 % of 300 with SIPp's `-lost 10` on both sides (10 % of the messages each SIPp
//! sends or receives dropped). Everything binds to 127.0.0.1 on free ports; every process is
//! bounded (SIPp's `-m`, `-timeout`, `-recv_timeout`, and a wall-clock limit here) and killed
//! when the test ends. SIPp missing is a failure, not a skip.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One SIPp run at a time: the loss figures should not depend on the other test's load.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn sipp_500_calls_through_the_relay() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Run::new("clean");
    let r = run.calls(500, None);
    eprintln!(
        "sipp through the relay: {} of 500 calls succeeded, {} failed",
        r.ok, r.failed
    );
    assert_eq!((r.ok, r.failed), (500, 0), "see {}", run.dir.display());
    assert!(
        r.exit_ok,
        "sipp UAC exited with an error, see {}",
        run.dir.display()
    );
    // The relay Record-Routed: SIPp's ACK and BYE carry it as their Route, and the relay
    // routed them on by loose routing.
    let route = format!("\nRoute: <sip:127.0.0.1:{};lr>", run.relay_port);
    let sent = std::fs::read_to_string(run.dir.join("uac_messages.log")).unwrap();
    let routed = sent.matches(&route).count();
    assert!(
        routed >= 1000,
        "{routed} requests carried {route:?}, want ACK + BYE per call"
    );
    run.clean_up();
}

#[test]
fn sipp_300_calls_with_10_percent_loss() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Run::new("lossy");
    let r = run.calls(300, Some(10));
    eprintln!(
        "sipp through the relay, -lost 10 on both sides: {} of 300 calls succeeded, {} failed",
        r.ok, r.failed
    );
    assert_eq!(r.ok + r.failed, 300, "see {}", run.dir.display());
    // 97 %: Kamailio 5.6 (harness stateful.cfg) completes 298 of 300 this way, SIPp to SIPp
    // directly 295.
    assert!(
        r.ok >= 291,
        "only {} of 300 calls completed, see {}",
        r.ok,
        run.dir.display()
    );
    run.clean_up();
}

/// SIPp's verdict on one UAC run.
struct Outcome {
    ok: u64,
    failed: u64,
    exit_ok: bool,
}

/// A relay and a UAS on free loopback ports, their logs in a scratch directory.
struct Run {
    dir: PathBuf,
    relay_port: u16,
    uas_port: u16,
}

impl Run {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sipp-relay-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // [field0] of uac_call.xml: the user part of the Request-URI.
        std::fs::write(dir.join("users.csv"), "SEQUENTIAL\n100000;\n100001;\n").unwrap();
        Run {
            dir,
            relay_port: free_port(),
            uas_port: free_port(),
        }
    }

    /// `calls` calls from a SIPp UAC through a fresh relay to a SIPp UAS, `lost` percent of
    /// the messages lost at both SIPps.
    fn calls(&self, calls: u32, lost: Option<u32>) -> Outcome {
        let scenarios = scenarios();
        let lost: Vec<String> = lost.map_or(Vec::new(), |p| vec!["-lost".into(), p.to_string()]);
        let relay_addr = format!("127.0.0.1:{}", self.relay_port);
        let uas_addr = format!("127.0.0.1:{}", self.uas_port);

        let mut relay = Command::new(relay_binary());
        relay
            .args(["--listen", &relay_addr, "--forward", &uas_addr])
            .stdout(Stdio::piped())
            .stderr(log_file(&self.dir, "relay.log"));
        let mut relay = Guard(relay.spawn().expect("start the relay example"));
        // It prints one line once its socket is bound.
        let mut line = String::new();
        BufReader::new(relay.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("relay listening"), "relay said {line:?}");

        let mut uas = Command::new("sipp");
        uas.current_dir(&self.dir)
            .arg("-sf")
            .arg(scenarios.join("uas_call.xml"))
            .args(sipp_common(&uas_addr))
            // An ACK overtaken by the BYE is ignored, not answered by aborting the call.
            .args(["-default_behaviors", "none", "-timeout", "120s"])
            .args(&lost)
            .stdout(log_file(&self.dir, "uas.out"))
            .stderr(log_file(&self.dir, "uas.err"));
        let _uas = Guard(uas.spawn().expect(SIPP_MISSING));
        wait_bound(self.uas_port);

        let stats = self.dir.join("uac_stat.csv");
        let mut uac = Command::new("sipp");
        uac.current_dir(&self.dir)
            .arg(&relay_addr)
            .arg("-sf")
            .arg(scenarios.join("uac_call.xml"))
            .arg("-inf")
            .arg(self.dir.join("users.csv"))
            .args(sipp_common(&format!("127.0.0.1:{}", free_port())))
            .args(["-r", "100", "-m", &calls.to_string(), "-l", "1000"])
            .args(["-timeout", "60s", "-recv_timeout", "10000"])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stats)
            .args(["-trace_err", "-error_file"])
            .arg(self.dir.join("uac_errors.log"))
            .args(&lost)
            .stdout(log_file(&self.dir, "uac.out"))
            .stderr(log_file(&self.dir, "uac.err"));
        if lost.is_empty() {
            uac.args(["-trace_msg", "-message_file"])
                .arg(self.dir.join("uac_messages.log"));
        }
        let mut uac = Guard(uac.spawn().expect(SIPP_MISSING));
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(status) = uac.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "sipp UAC still running after 90 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            relay.0.try_wait().unwrap().is_none(),
            "the relay died, see {}",
            self.dir.display()
        );
        let (ok, failed) = final_counts(&stats);
        Outcome {
            ok,
            failed,
            exit_ok: status.success(),
        }
    }

    /// Removes the scratch directory (kept when an assertion failed before this).
    fn clean_up(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SIPP_MISSING: &str =
    "cannot run `sipp`: install SIPp (Debian package sip-tester) to run this test";

/// Options of both SIPps: SIP, media and control sockets on 127.0.0.1 only (without `-ci`
/// SIPp binds its control socket to 0.0.0.0), free ports, no keyboard.
fn sipp_common(sip: &str) -> Vec<String> {
    let port = sip.rsplit(':').next().unwrap();
    [
        "-i",
        "127.0.0.1",
        "-p",
        port,
        "-mi",
        "127.0.0.1",
        "-ci",
        "127.0.0.1",
        "-cp",
        &free_port().to_string(),
        "-nostdin",
    ]
    .map(String::from)
    .to_vec()
}

/// Kills and reaps a child process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Waits (at most 10 s) until something has bound 127.0.0.1:`port`.
fn wait_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "nothing bound udp port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `SuccessfulCall(C)` and `FailedCall(C)` of the last row of a SIPp `-trace_stat` file.
fn final_counts(stats: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(stats)
        .unwrap_or_else(|e| panic!("no sipp statistics at {}: {e}", stats.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next().expect("empty statistics").split(';').collect();
    let last: Vec<&str> = lines
        .next_back()
        .expect("no statistics row")
        .split(';')
        .collect();
    let col = |name: &str| {
        let i = head.iter().position(|h| *h == name).expect(name);
        last[i].trim().parse::<u64>().expect(name)
    };
    (col("SuccessfulCall(C)"), col("FailedCall(C)"))
}

/// The harness scenarios: `shared/bench/sipp-load/scenarios` beside the project root (or
/// beside any directory above the crate, so that git worktrees find it too).
fn scenarios() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|d| d.join("shared/bench/sipp-load/scenarios"))
        .find(|d| d.join("uac_call.xml").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no shared/bench/sipp-load/scenarios above {}",
                crate_dir.display()
            )
        })
}

/// Builds the relay example (same profile as this test) and returns its path.
fn relay_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let profile = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        let built = Command::new(env!("CARGO"))
            .args(["build", "-p", "sip-transaction", "--example", "relay"])
            .args(["--profile", profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo");
        assert!(
            built.status.success(),
            "cargo build --example relay failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        // This test runs as target/<profile>/deps/sipp_relay-<hash>.
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/relay");
        assert!(bin.is_file(), "no relay binary at {}", bin.display());
        bin
    })
    .clone()
}
