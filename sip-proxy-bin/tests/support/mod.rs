//! What the integration tests of `sip-proxy` share. Each test file declares `mod support;`
//! and uses the parts it needs:
//!
//! * [`proc`]: the binary under test, peer programs that must be installed, child processes
//!   killed with their process group;
//! * [`dir`]: scratch directories;
//! * [`net`]: free ports, waiting until something is bound;
//! * [`proxy`]: a real `sip-proxy run` (and `sip-proxy ctl` against it);
//! * [`sipp`]: SIPp runs (Debian's `sip-tester`);
//! * [`ua`]: user agents played by hand on UDP sockets;
//! * [`users`]: `sip-proxy users` and checking a credentials file.
//!
//! Rules every helper keeps:
//! * everything binds and sends to 127.0.0.1 / 127.0.0.2 only;
//! * ports are picked free by the kernel, so tests run in parallel;
//! * every process is in its own process group, has a deadline, and is killed (the whole
//!   group, by its id) when its owner is dropped — a failing test leaves nothing behind;
//! * a missing peer program fails the test with what to install; nothing is skipped.
#![allow(dead_code, reason = "each test file uses a different part")]

pub(crate) mod dir;
pub(crate) mod net;
pub(crate) mod proc;
pub(crate) mod proxy;
pub(crate) mod sipp;
pub(crate) mod ua;
pub(crate) mod users;
