//! Running SIPp (Debian package `sip-tester`) for one call against a server of the test,
//! shared by the SIPp tests of sip-auth and sip-location (included with `#[path]`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Fails the test (it never skips) when `sipp` is not installed.
pub(crate) fn require_sipp() {
    assert!(
        Command::new("sipp").arg("-v").output().is_ok(),
        "sipp not found: install the Debian package sip-tester (listed in scripts/apt-packages.txt)"
    );
}

/// Runs SIPp with the scenario file `scenario` from `client` (an IP and a free port)
/// against `server`, one call, over UDP, SIPp's own timeout 20 s and killed after 30 s; says
/// why it failed, with SIPp's error log.
pub(crate) fn sipp(scenario: &Path, server: SocketAddr, client: SocketAddr) -> Result<(), String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = std::env::temp_dir().join(format!(
        "sipp-{}-{}-{nanos}",
        std::process::id(),
        client.port()
    ));
    std::fs::create_dir_all(&tmp).unwrap();
    let errors = tmp.join("errors.log");
    let mut child = Command::new("sipp")
        .current_dir(&tmp)
        .arg(server.to_string())
        .args(["-sf", scenario.to_str().unwrap()])
        .args([
            "-i",
            &client.ip().to_string(),
            "-p",
            &client.port().to_string(),
        ])
        .args(["-t", "u1", "-m", "1", "-nostdin"])
        .args(["-timeout", "20s", "-timeout_error"])
        .args(["-trace_err", "-error_file", errors.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn sipp: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&errors).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&tmp);
    let name = scenario.display();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!("sipp {name} exited with {s}; errors:\n{log}")),
        None => Err(format!("sipp {name} did not finish within 30 s")),
    }
}
