//! The `sip_proxy` library: the parts of the `sip-proxy` binary that tests drive directly.
//!
//! * [`config`]: the TOML file and flags, with their defaults and checks;
//! * [`proxy`]: the request pipeline, sans-IO (bytes and time in, datagrams out);
//! * [`net`]: sockets and threads around it;
//! * [`ctl`]: the control socket and `sip-proxy ctl`;
//! * [`metrics`]: the Prometheus endpoint;
//! * [`redis`]: state shared by several nodes in Redis;
//! * [`storage`]: persistence on embedded SQLite (registrations, dialogs, `sip_trace`).

pub mod config;
pub mod ctl;
pub mod metrics;
pub mod net;
pub mod proxy;
pub mod redis;
pub mod run;
pub mod storage;
pub mod trace;
