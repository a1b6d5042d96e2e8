//! `sip-proxy ctl`: the control socket's client. Finds the socket (`--data-dir DIR`, the
//! same default as `run`, or `--socket PATH`), sends one JSON-RPC request per command and
//! prints the result as a table, or as JSON with `--json`.
//!
//! Exit status: 0 done; 1 the proxy refused (the error it gave is printed); 2 usage;
//! 3 no proxy to ask (no socket, nobody listening, permission denied, or something that
//! does not speak its protocol).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::rpc::RpcError;

/// Longest response line read, bytes.
const MAX_RESPONSE: u64 = 256 << 20;

/// Flags and subcommand of `sip-proxy ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Data directory of the running proxy (`run --data-dir`): its socket is DIR/ctl.sock.
    #[arg(long, value_name = "DIR", default_value = super::DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// The control socket itself, instead of DIR/ctl.sock.
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
    /// Print the result as JSON (for scripts) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "S", default_value_t = 10, global = true)]
    pub timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Banned sources (their datagrams are dropped unanswered).
    #[command(subcommand)]
    Ban(BanCommand),
    /// Trusted networks: never challenged for calls, never banned nor flood-limited.
    #[command(subcommand)]
    Allow(AllowCommand),
    /// Registrations.
    #[command(subcommand)]
    Location(LocationCommand),
    /// Tracked dialogs (calls).
    #[command(subcommand)]
    Dialog(DialogCommand),
    /// Upstream sets: destinations' state and probe results.
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Counters and gauges: the figures of the metrics endpoint (by method, by class, HEP,
    /// call KPIs since the start).
    Stats,
    /// Re-read the configuration file and the credentials file and apply the reloadable
    /// keys (the configuration is checked first and left as it was when invalid).
    Reload,
    /// Call any method of the control socket: `call METHOD [PARAMS]`, PARAMS a JSON array
    /// or object.
    Call {
        /// The method (`system.listMethods` lists them).
        method: String,
        /// Its parameters, JSON.
        params: Option<String>,
    },
}

/// `ctl ban`.
#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// The banned sources and the seconds left.
    List,
    /// Ban a source IP.
    Add {
        /// The address.
        ip: String,
        /// For how long (default: the configured auth.ban_seconds).
        #[arg(long, value_name = "S")]
        seconds: Option<u64>,
    },
    /// Lift a ban.
    Remove {
        /// The address.
        ip: String,
    },
}

/// `ctl allow`.
#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// The trusted networks.
    List,
    /// Trust a network (until the next reload or restart: put it in auth.trusted to keep it).
    Add {
        /// CIDR (10.0.0.0/8) or an address.
        network: String,
    },
    /// Stop trusting a network (as listed).
    Remove {
        /// CIDR (10.0.0.0/8) or an address.
        network: String,
    },
}

/// `ctl location`.
#[derive(Debug, Subcommand)]
pub enum LocationCommand {
    /// Every registered contact, or those of one address-of-record.
    List {
        /// sip:user@domain.
        aor: Option<String>,
    },
    /// Remove one contact of an address-of-record, or all of them.
    Remove {
        /// sip:user@domain.
        aor: String,
        /// The contact URI as listed (all of them when absent).
        contact: Option<String>,
    },
}

/// `ctl dialog`.
#[derive(Debug, Subcommand)]
pub enum DialogCommand {
    /// The tracked dialogs.
    List,
    /// End a confirmed dialog: BYE to both parties.
    End {
        /// Its id, as listed.
        id: String,
    },
}

/// `ctl upstream`.
#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Sets and destinations: state (up, down, disabled), probe result, failures in a row.
    List,
    /// Put a destination back in service.
    Enable {
        /// The set.
        name: String,
        /// The destination, IP:PORT or udp:IP:PORT.
        addr: String,
    },
    /// Take a destination out of service (still probed).
    Disable {
        /// The set.
        name: String,
        /// The destination, IP:PORT or udp:IP:PORT.
        addr: String,
    },
}

/// Why the proxy could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// No proxy behind the path (or none we may talk to).
    #[error("{0}")]
    Unreachable(String),
    /// Something answered that is not the proxy's control socket.
    #[error("{0}")]
    NotOurs(String),
}

/// A connection to the control socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    timeout: Duration,
}

impl Client {
    /// Connects to the control socket at `path`; answers are awaited for `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, CtlError> {
        let p = path.display();
        let meta = std::fs::metadata(path).map_err(|e| {
            CtlError::Unreachable(match e.kind() {
                io::ErrorKind::NotFound => format!(
                    "no control socket at {p}: sip-proxy is not running with this data directory (give run's --data-dir DIR, or --socket PATH)"
                ),
                io::ErrorKind::PermissionDenied => format!(
                    "{p}: permission denied (run as the user sip-proxy runs as)"
                ),
                _ => format!("{p}: {e}"),
            })
        })?;
        if !meta.file_type().is_socket() {
            return Err(CtlError::NotOurs(format!(
                "{p} is not a socket: not a sip-proxy control socket"
            )));
        }
        let stream = UnixStream::connect(path).map_err(|e| {
            CtlError::Unreachable(match e.kind() {
                io::ErrorKind::ConnectionRefused => format!(
                    "nothing listens on {p}: sip-proxy is not running (the socket is left from a process that ended)"
                ),
                io::ErrorKind::PermissionDenied => format!(
                    "{p}: permission denied: the control socket is 0600, run as the user sip-proxy runs as"
                ),
                _ => format!("{p}: {e}"),
            })
        })?;
        let io = |e: io::Error| CtlError::Unreachable(format!("{p}: {e}"));
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        Ok(Client {
            path: path.to_owned(),
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
            timeout,
        })
    }

    /// Calls `method` with `params`: its result, or the error the proxy answered.
    pub fn call(
        &mut self,
        method: &str,
        params: &Value,
    ) -> Result<Result<Value, RpcError>, CtlError> {
        let p = self.path.display().to_string();
        let id = self.next_id;
        self.next_id += 1;
        let mut line =
            json!({ "jsonrpc": "2.0", "method": method, "params": params, "id": id }).to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| CtlError::Unreachable(format!("{p}: {e}")))?;
        let mut answer = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_RESPONSE)
            .read_until(b'\n', &mut answer);
        match read {
            Ok(0) => {
                return Err(CtlError::NotOurs(format!(
                    "{p} closed the connection without answering: not a sip-proxy control socket?"
                )));
            }
            Ok(_) => {}
            Err(e) if crate::net::timed_out(&e) => {
                return Err(CtlError::Unreachable(format!(
                    "no answer from {p} within {} s",
                    self.timeout.as_secs()
                )));
            }
            Err(e) => return Err(CtlError::Unreachable(format!("{p}: {e}"))),
        }
        let not_ours = |why: &str| {
            let text = String::from_utf8_lossy(&answer);
            let shown: String = text.trim().chars().take(80).collect();
            CtlError::NotOurs(format!(
                "{p} does not answer like a sip-proxy control socket ({why}): {shown:?}"
            ))
        };
        let v: Value = serde_json::from_slice(&answer).map_err(|_| not_ours("not JSON"))?;
        if v.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(not_ours("not JSON-RPC 2.0"));
        }
        if v.get("id").and_then(Value::as_u64) != Some(id) {
            // An error about the request itself (too many connections …) has a null id.
            if let Some(e) = v.get("error").filter(|_| v["id"].is_null()) {
                return Ok(Err(rpc_error(e)));
            }
            return Err(not_ours("another request's answer"));
        }
        match (v.get("result"), v.get("error")) {
            (Some(r), None) => Ok(Ok(r.clone())),
            (None, Some(e)) => Ok(Err(rpc_error(e))),
            _ => Err(not_ours("neither result nor error")),
        }
    }
}

fn rpc_error(e: &Value) -> RpcError {
    RpcError::new(
        e.get("code").and_then(Value::as_i64).unwrap_or(0),
        e.get("message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)"),
    )
}

/// Text columns, aligned; the last one unpadded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    };
    line(&mut out, &mut headers.iter().copied());
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Runs `sip-proxy ctl`.
pub fn run(args: &CtlArgs) -> ExitCode {
    let path = args
        .socket
        .clone()
        .unwrap_or_else(|| super::socket_path(&args.data_dir));
    match execute(args, &path) {
        Ok(Ok(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("sip-proxy ctl: {}", e.message);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("sip-proxy ctl: {e}");
            ExitCode::from(3)
        }
    }
}

type Outcome = Result<Result<String, RpcError>, CtlError>;

macro_rules! call {
    ($c:expr, $m:expr, $p:expr) => {
        match $c.call($m, &$p)? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

fn execute(args: &CtlArgs, path: &Path) -> Outcome {
    let mut c = Client::connect(path, Duration::from_secs(args.timeout.max(1)))?;
    let json_out = |v: &Value| {
        let mut t = serde_json::to_string_pretty(v).unwrap_or_default();
        t.push('\n');
        t
    };
    let text = match &args.command {
        CtlCommand::Call { method, params } => {
            let p = match params {
                Some(t) => match serde_json::from_str::<Value>(t) {
                    Ok(v @ (Value::Array(_) | Value::Object(_))) => v,
                    _ => {
                        return Ok(Err(RpcError::new(
                            super::rpc::INVALID_PARAMS,
                            format!("PARAMS must be a JSON array or object, not `{t}`"),
                        )));
                    }
                },
                None => json!([]),
            };
            json_out(&call!(c, method, p))
        }
        CtlCommand::Ban(b) => match b {
            BanCommand::List => {
                let v = call!(c, "ban.list", json!([]));
                if args.json {
                    json_out(&v)
                } else if arr(&v).is_empty() {
                    "no banned sources\n".into()
                } else {
                    let rows: Vec<Vec<String>> = arr(&v)
                        .iter()
                        .map(|b| vec![s(&b["ip"]), format!("{}s", s(&b["remaining"]))])
                        .collect();
                    table(&["IP", "REMAINING"], &rows)
                }
            }
            BanCommand::Add { ip, seconds } => {
                let v = call!(c, "ban.add", json!({ "ip": ip, "seconds": seconds }));
                if args.json {
                    json_out(&v)
                } else {
                    format!("banned {} for {} s\n", s(&v["ip"]), s(&v["seconds"]))
                }
            }
            BanCommand::Remove { ip } => {
                let v = call!(c, "ban.remove", json!({ "ip": ip }));
                if args.json {
                    json_out(&v)
                } else {
                    format!("ban on {} lifted\n", s(&v["ip"]))
                }
            }
        },
        CtlCommand::Allow(a) => match a {
            AllowCommand::List => {
                let v = call!(c, "allow.list", json!([]));
                if args.json {
                    json_out(&v)
                } else if arr(&v).is_empty() {
                    "no trusted networks\n".into()
                } else {
                    let rows: Vec<Vec<String>> = arr(&v).iter().map(|n| vec![s(n)]).collect();
                    table(&["NETWORK"], &rows)
                }
            }
            AllowCommand::Add { network } => {
                let v = call!(c, "allow.add", json!({ "network": network }));
                if args.json {
                    json_out(&v)
                } else if v["added"] == true {
                    format!("{} trusted\n", s(&v["network"]))
                } else {
                    format!("{} was already trusted\n", s(&v["network"]))
                }
            }
            AllowCommand::Remove { network } => {
                let v = call!(c, "allow.remove", json!({ "network": network }));
                if args.json {
                    json_out(&v)
                } else {
                    format!("{} no longer trusted\n", s(&v["network"]))
                }
            }
        },
        CtlCommand::Location(l) => match l {
            LocationCommand::List { aor } => {
                let mut all = Vec::new();
                let mut cursor: Option<u64> = None;
                loop {
                    let v = call!(
                        c,
                        "location.list",
                        json!({ "aor": aor, "cursor": cursor, "limit": super::methods::MAX_PAGE })
                    );
                    all.extend(arr(&v["aors"]).iter().cloned());
                    match v["next"].as_u64() {
                        Some(n) if Some(n) != cursor => cursor = Some(n),
                        _ => break,
                    }
                }
                if args.json {
                    json_out(&Value::Array(all))
                } else if all.is_empty() {
                    match aor {
                        Some(a) => format!("{a} has no bindings\n"),
                        None => "no registrations\n".into(),
                    }
                } else {
                    let mut rows = Vec::new();
                    for a in &all {
                        for b in arr(&a["bindings"]) {
                            rows.push(vec![
                                s(&a["aor"]),
                                s(&b["contact"]),
                                format!("{}s", s(&b["expires"])),
                                b["q"].as_u64().map_or("-".into(), |q| {
                                    format!("{}.{:03}", q / 1000, q % 1000)
                                }),
                                s(&b["received"]),
                                s(&b["user_agent"]),
                            ]);
                        }
                    }
                    table(
                        &["AOR", "CONTACT", "EXPIRES", "Q", "RECEIVED", "USER-AGENT"],
                        &rows,
                    )
                }
            }
            LocationCommand::Remove { aor, contact } => {
                let v = call!(
                    c,
                    "location.remove",
                    json!({ "aor": aor, "contact": contact })
                );
                if args.json {
                    json_out(&v)
                } else {
                    format!("removed {} binding(s) of {aor}\n", s(&v["removed"]))
                }
            }
        },
        CtlCommand::Dialog(d) => match d {
            DialogCommand::List => {
                let mut all = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let v = call!(
                        c,
                        "dialog.list",
                        json!({ "after": after, "limit": super::methods::MAX_PAGE })
                    );
                    all.extend(arr(&v["dialogs"]).iter().cloned());
                    match v["next"].as_str() {
                        Some(n) if Some(n) != after.as_deref() => after = Some(n.to_owned()),
                        _ => break,
                    }
                }
                if args.json {
                    json_out(&Value::Array(all))
                } else if all.is_empty() {
                    "no dialogs\n".into()
                } else {
                    let rows: Vec<Vec<String>> = all
                        .iter()
                        .map(|d| {
                            vec![
                                s(&d["id"]),
                                s(&d["state"]),
                                s(&d["from_uri"]),
                                s(&d["to_uri"]),
                                format!("{}s", s(&d["duration"])),
                                format!("{}s", s(&d["remaining"])),
                                s(&d["call_id"]),
                            ]
                        })
                        .collect();
                    table(
                        &[
                            "ID",
                            "STATE",
                            "FROM",
                            "TO",
                            "DURATION",
                            "REMAINING",
                            "CALL-ID",
                        ],
                        &rows,
                    )
                }
            }
            DialogCommand::End { id } => {
                let v = call!(c, "dialog.end", json!({ "id": id }));
                if args.json {
                    json_out(&v)
                } else {
                    let n = v["byes"].as_u64().unwrap_or(0);
                    if n == 2 {
                        format!("dialog {} ended: BYE sent to both parties\n", s(&v["id"]))
                    } else {
                        format!(
                            "dialog {} ended: BYE sent to {n} of 2 parties (the others' addresses do not resolve)\n",
                            s(&v["id"])
                        )
                    }
                }
            }
        },
        CtlCommand::Upstream(u) => match u {
            UpstreamCommand::List => {
                let v = call!(c, "upstream.list", json!([]));
                if args.json {
                    json_out(&v)
                } else if arr(&v).is_empty() {
                    "no upstream sets\n".into()
                } else {
                    let mut rows = Vec::new();
                    for set in arr(&v) {
                        for d in arr(&set["destinations"]) {
                            rows.push(vec![
                                s(&set["name"]),
                                s(&set["algorithm"]),
                                s(&d["addr"]),
                                s(&d["state"]),
                                s(&d["probe"]),
                                s(&d["failures"]),
                                s(&d["weight"]),
                            ]);
                        }
                    }
                    table(
                        &[
                            "SET",
                            "ALGORITHM",
                            "DESTINATION",
                            "STATE",
                            "PROBE",
                            "FAILURES",
                            "WEIGHT",
                        ],
                        &rows,
                    )
                }
            }
            UpstreamCommand::Enable { name, addr } | UpstreamCommand::Disable { name, addr } => {
                let enable = matches!(u, UpstreamCommand::Enable { .. });
                let method = if enable {
                    "upstream.enable"
                } else {
                    "upstream.disable"
                };
                let v = call!(c, method, json!({ "set": name, "addr": addr }));
                let what = if enable { "enabled" } else { "disabled" };
                if args.json {
                    json_out(&v)
                } else if v["changed"] == true {
                    format!("{} of {name} {what}\n", s(&v["addr"]))
                } else {
                    format!("{} of {name} was already {what}\n", s(&v["addr"]))
                }
            }
        },
        CtlCommand::Stats => {
            let v = call!(c, "stats", json!([]));
            if args.json {
                json_out(&v)
            } else {
                let rows: Vec<Vec<String>> = v
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| vec![k.clone(), s(v)]).collect())
                    .unwrap_or_default();
                table(&["COUNTER", "VALUE"], &rows)
            }
        }
        CtlCommand::Reload => {
            let v = call!(c, "reload", json!([]));
            if args.json {
                json_out(&v)
            } else {
                reload_text(&v)
            }
        }
    };
    Ok(Ok(text))
}

fn reload_text(v: &Value) -> String {
    let list = |k: &str| arr(&v[k]).iter().map(s).collect::<Vec<_>>().join(", ");
    let users = v["users"]
        .as_u64()
        .map(|u| format!(" {u} users,"))
        .unwrap_or_default();
    let changed = list("changed");
    let restart = list("restart_needed");
    let mut t = format!(
        "reloaded:{users} {} upstream sets ({} destinations, {} kept their state), {} trusted networks\nchanged: {}\n",
        s(&v["upstream_sets"]),
        s(&v["upstream_destinations"]),
        s(&v["upstream_kept"]),
        s(&v["trusted"]),
        if changed.is_empty() {
            "nothing"
        } else {
            &changed
        },
    );
    if !restart.is_empty() {
        t = t + "not applied, restart needed: " + &restart + "\n";
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["IP", "REMAINING"],
            &[
                vec!["192.0.2.1".into(), "5s".into()],
                vec!["::1".into(), "300s".into()],
            ],
        );
        assert_eq!(t, "IP         REMAINING\n192.0.2.1  5s\n::1        300s\n");
    }

    #[test]
    fn reload_report_text() {
        let v = json!({
            "users": 2, "upstream_sets": 1, "upstream_destinations": 2, "upstream_kept": 1,
            "trusted": 0, "changed": ["upstream"], "restart_needed": ["listen"]
        });
        assert_eq!(
            reload_text(&v),
            "reloaded: 2 users, 1 upstream sets (2 destinations, 1 kept their state), 0 trusted networks\nchanged: upstream\nnot applied, restart needed: listen\n"
        );
    }
}
