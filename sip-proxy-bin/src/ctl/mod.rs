//! The control socket: administration of the running proxy (Kamailio's `jsonrpcs` +
//! `kamcmd`), and `sip-proxy ctl`, its client.
//!
//! * [`server`]: a Unix stream socket `ctl.sock` in the data directory, mode 0600, served by
//!   a thread of `sip-proxy run`;
//! * [`rpc`]: JSON-RPC 2.0, one request per line, one response line each, so that scripts
//!   need only `socat`/`nc -U`;
//! * [`methods`]: what each method does (a call of `proxy::admin`);
//! * [`client`]: `sip-proxy ctl`, tables for people and `--json` for scripts.
//!
//! `docs/operations.md` documents the protocol and every method.

pub mod client;
pub mod methods;
pub mod rpc;
pub mod server;

use std::path::{Path, PathBuf};

/// The data directory when `--data-dir` is not given (`run` and `ctl` alike).
pub const DEFAULT_DATA_DIR: &str = "./sip-proxy-data";

/// The control socket's file name in the data directory.
pub const SOCKET_NAME: &str = "ctl.sock";

/// The control socket of the proxy whose data directory is `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}
