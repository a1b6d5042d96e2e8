//! Interop with a real SIP client: SIPp (Debian package `sip-tester`) registers two
//! contacts with the example registrar (`examples/registrar.rs`) on loopback, is refused
//! below Min-Expires (423), queries, and unregisters with `Contact: *`; its scenario
//! (`tests/sipp/register.xml`) checks every Contact and `expires` of each 200.
//!
//! The test fails, never skips, when `sipp` is missing: install it with
//! `apt-get install sip-tester` (scripts/test does it from scripts/apt-packages.txt).

#[path = "../examples/registrar.rs"]
mod example;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sip_location::{LocationStore, MemoryStore, Policy};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn sipp_registers_queries_and_unregisters() {
    assert!(
        Command::new("sipp").arg("-v").output().is_ok(),
        "sipp not found: install the Debian package sip-tester (listed in scripts/apt-packages.txt)"
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let sipp_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = MemoryStore::default();
    let policy = Policy::default();
    let stop = AtomicBool::new(false);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register.xml");
    let tmp = std::env::temp_dir().join(format!("sip-location-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();

    let (status, handled, errors) = thread::scope(|s| {
        let server = s.spawn(|| {
            example::serve(
                &sock,
                &store,
                &policy,
                &|| stop.load(Ordering::SeqCst),
                false,
            )
        });
        let mut child = Command::new("sipp")
            .current_dir(&tmp)
            .arg(addr.to_string())
            .args(["-sf", scenario.to_str().unwrap()])
            .args(["-i", "127.0.0.1", "-p", &sipp_port.to_string()])
            .args(["-t", "u1", "-m", "1", "-nostdin"])
            .args(["-timeout", "20s", "-timeout_error"])
            .args([
                "-trace_err",
                "-error_file",
                tmp.join("errors.log").to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sipp");
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(50));
        };
        stop.store(true, Ordering::SeqCst);
        let handled = server.join().unwrap();
        let errors = std::fs::read_to_string(tmp.join("errors.log")).unwrap_or_default();
        (status, handled, errors)
    });
    let _ = std::fs::remove_dir_all(&tmp);

    let status = status.expect("sipp did not finish within 30 s");
    assert!(
        status.success(),
        "sipp exited with {status:?}; errors:\n{errors}"
    );
    assert_eq!(handled, 4, "four REGISTERs answered");
    // After `Contact: *` nothing is left.
    assert_eq!(store.counts().unwrap().bindings, 0);
}
