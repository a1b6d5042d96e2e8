//! Interop with a real SIP client: SIPp (Debian package `sip-tester`) registers two
//! contacts with the example registrar (`examples/registrar.rs`) on loopback, is refused
//! below Min-Expires (423), queries, and unregisters with `Contact: *`; its scenario
//! (`tests/sipp/register.xml`) checks every Contact and `expires` of each 200.
//!
//! The test fails, never skips, when `sipp` is missing: install it with
//! `apt-get install sip-tester` (scripts/test does it from scripts/apt-packages.txt).

#[path = "../examples/registrar.rs"]
mod example;
#[path = "../../sip-auth/tests/support/sipp.rs"]
mod support_sipp;

use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use sip_location::{LocationStore, MemoryStore, Policy};
use support_sipp::{require_sipp, sipp};

#[test]
fn sipp_registers_queries_and_unregisters() {
    require_sipp();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let store = MemoryStore::default();
    let policy = Policy::default();
    let stop = AtomicBool::new(false);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register.xml");

    let (ran, handled) = thread::scope(|s| {
        let server = s.spawn(|| {
            example::serve(
                &sock,
                &store,
                &policy,
                &|| stop.load(Ordering::SeqCst),
                false,
            )
        });
        let ran = sipp(&scenario, addr, client);
        stop.store(true, Ordering::SeqCst);
        let handled = server.join().unwrap();
        (ran, handled)
    });

    if let Err(e) = ran {
        panic!("{e}");
    }
    assert_eq!(handled, 4, "four REGISTERs answered");
    // After `Contact: *` nothing is left.
    assert_eq!(store.counts().unwrap().bindings, 0);
}
