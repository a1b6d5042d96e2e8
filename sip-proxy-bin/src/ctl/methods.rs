//! The methods of the control socket, each a call of the proxy's administration API
//! (`proxy::admin`). [`METHODS`] lists them with their parameters (also answered by
//! `system.listMethods`); `docs/operations.md` describes each.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hep_codec::HepSender;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sip_auth::IpNet;
use sip_dialog::DialogUid;
use sip_location::Cursor;

use super::rpc::{FAILED, METHOD_NOT_FOUND, NOT_FOUND, Params, RpcError};
use super::server::Handler;
use crate::net::Clock;
use crate::proxy::Proxy;
use crate::proxy::admin::AdminError;

/// Re-reads the configuration and applies it (`reload`, SIGHUP): the report, or why the
/// configuration was refused (and left as it was).
pub type ReloadFn = dyn Fn() -> Result<Value, String> + Send + Sync;

/// Every method with its parameters in positional order (`?`: optional).
pub const METHODS: &[(&str, &[&str])] = &[
    ("ban.list", &[]),
    ("ban.add", &["ip", "seconds?"]),
    ("ban.remove", &["ip"]),
    ("allow.list", &[]),
    ("allow.add", &["network"]),
    ("allow.remove", &["network"]),
    ("location.list", &["aor?", "cursor?", "limit?"]),
    ("location.remove", &["aor", "contact?"]),
    ("dialog.list", &["after?", "limit?"]),
    ("dialog.end", &["id"]),
    ("upstream.list", &[]),
    ("upstream.enable", &["set", "addr"]),
    ("upstream.disable", &["set", "addr"]),
    ("stats", &[]),
    ("reload", &[]),
    ("core.version", &[]),
    ("system.listMethods", &[]),
];

/// Largest page of `location.list` (AORs) and `dialog.list` (dialogs).
pub const MAX_PAGE: u64 = 1000;
/// Longest ban `ban.add` sets, seconds (ten years).
pub const MAX_BAN_SECONDS: u64 = 10 * 365 * 86_400;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u64 = 100;

/// What the methods work on.
pub struct Context {
    /// The running proxy.
    pub proxy: Arc<Proxy>,
    /// Its clocks.
    pub clock: Clock,
    /// The reload.
    pub reload: Arc<ReloadFn>,
    /// The HEP sender, when capture is on (its counters are in `stats`).
    pub hep: Option<Arc<HepSender>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// The control socket's handler over `ctx`.
pub fn handler(ctx: Context) -> Handler {
    Arc::new(move |method, params| call(&ctx, method, params))
}

#[allow(clippy::needless_pass_by_value, reason = "used as map_err(failed)")]
fn failed(e: AdminError) -> RpcError {
    let code = match e {
        AdminError::NotFound(_) => NOT_FOUND,
        _ => FAILED,
    };
    RpcError::new(code, e.to_string())
}

fn value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(FAILED, e.to_string()))
}

fn names(method: &str) -> Vec<&'static str> {
    METHODS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, p)| p.iter().map(|n| n.trim_end_matches('?')).collect())
        .unwrap_or_default()
}

fn ip(p: Params<'_>) -> Result<IpAddr, RpcError> {
    p.parsed(0, "ip", "an IP address")
}

fn network(p: Params<'_>) -> Result<IpNet, RpcError> {
    let s = p.str(0, "network")?;
    IpNet::parse(s).ok_or_else(|| {
        RpcError::params(format!(
            "`{s}` is not a network (CIDR such as 10.0.0.0/8, or an address)"
        ))
    })
}

fn destination(p: Params<'_>) -> Result<(String, SocketAddr), RpcError> {
    let set = p.str(0, "set")?.to_owned();
    let s = p.str(1, "addr")?;
    let bare = s
        .strip_prefix("udp:")
        .or_else(|| s.strip_prefix("UDP:"))
        .unwrap_or(s);
    let addr = bare.parse().map_err(|_| {
        RpcError::params(format!(
            "`{s}` is not a destination address (IP:PORT or udp:IP:PORT)"
        ))
    })?;
    Ok((set, addr))
}

fn page(p: Params<'_>, i: usize) -> Result<usize, RpcError> {
    let n = p.opt_u64(i, "limit")?.unwrap_or(DEFAULT_PAGE);
    if n == 0 || n > MAX_PAGE {
        return Err(RpcError::params(format!(
            "`limit` must lie between 1 and {MAX_PAGE}"
        )));
    }
    Ok(n as usize)
}

/// What `stats` answers: what the metrics endpoint exports, flat — the counters and gauges
/// of [`Proxy::counters`], requests by method (`requests.INVITE` … `requests.other`),
/// responses received and sent by class (`responses.2xx`, `responses_sent.4xx`), the HEP
/// sender's (`hep_sent`, `hep_dropped`, `hep_errors`, with capture on) and the call KPIs
/// since the start (`kpi.attempts`, `kpi.asr_percent` …, with dialogs tracked; a ratio
/// without a denominator is absent, not 0).
fn stats(ctx: &Context, now: crate::proxy::Now) -> Map<String, Value> {
    let proxy = &ctx.proxy;
    let mut m = Map::new();
    for (k, v) in proxy.counters(now) {
        m.insert(k.into(), v.into());
    }
    let st = &proxy.stats;
    for (family, values) in [
        ("requests", st.methods.iter().collect::<Vec<_>>()),
        ("responses", st.classes.iter().collect()),
        ("responses_sent", st.sent_classes.iter().collect()),
    ] {
        for (label, v) in values {
            m.insert(format!("{family}.{label}"), v.into());
        }
    }
    if let Some(h) = &ctx.hep {
        let s = h.stats();
        m.insert("hep_sent".into(), s.sent().into());
        m.insert("hep_dropped".into(), s.dropped().into());
        m.insert("hep_errors".into(), s.errors().into());
    }
    if let Some(k) = proxy.kpi() {
        k.total().export(&mut |f: &sip_dialog::Metric<'_>| {
            let v = match f.kind {
                sip_dialog::MetricKind::Counter => whole(f.value).into(),
                sip_dialog::MetricKind::Gauge => json!((f.value * 100.0).round() / 100.0),
            };
            m.insert(format!("kpi.{}", f.name), v);
        });
    }
    m
}

/// A KPI count as an integer (they are whole numbers below 2⁵³).
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the counts exported as f64 are whole and non-negative"
)]
fn whole(v: f64) -> u64 {
    v as u64
}

/// Serves `method`.
pub fn call(ctx: &Context, method: &str, p: Params<'_>) -> Result<Value, RpcError> {
    if !METHODS.iter().any(|(m, _)| *m == method) {
        return Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("no method `{method}` (system.listMethods lists them)"),
        ));
    }
    p.expect(&names(method))?;
    let proxy = &ctx.proxy;
    let now = ctx.clock.now();
    match method {
        "ban.list" => value(proxy.bans(now)),
        "ban.add" => {
            let ip = ip(p)?;
            let secs = match p.opt_u64(1, "seconds")? {
                Some(s) if (1..=MAX_BAN_SECONDS).contains(&s) => s,
                Some(_) => {
                    return Err(RpcError::params(format!(
                        "`seconds` must be at least 1 and at most {MAX_BAN_SECONDS} (10 years)"
                    )));
                }
                None => proxy.current_config().auth.ban_seconds.max(1),
            };
            proxy
                .ban(ip, Duration::from_secs(secs), now)
                .map_err(failed)?;
            Ok(json!({ "ip": ip, "seconds": secs }))
        }
        "ban.remove" => {
            let ip = ip(p)?;
            if !proxy.unban(ip) {
                return Err(RpcError::new(NOT_FOUND, format!("{ip} is not banned")));
            }
            Ok(json!({ "ip": ip }))
        }
        "allow.list" => Ok(Value::Array(
            proxy
                .trusted()
                .iter()
                .map(|n| Value::String(n.to_string()))
                .collect(),
        )),
        "allow.add" => {
            let net = network(p)?;
            let added = proxy.trust(net);
            Ok(json!({ "network": net.to_string(), "added": added }))
        }
        "allow.remove" => {
            let net = network(p)?;
            if !proxy.distrust(net) {
                return Err(RpcError::new(
                    NOT_FOUND,
                    format!("{net} is not in the allow list"),
                ));
            }
            Ok(json!({ "network": net.to_string() }))
        }
        "location.list" => {
            let aor = p.opt_str(0, "aor")?;
            let cursor = Cursor(p.opt_u64(1, "cursor")?.unwrap_or(0));
            let limit = page(p, 2)?;
            let (aors, next) = proxy.locations(aor, cursor, limit, now).map_err(failed)?;
            Ok(json!({ "aors": value(aors)?, "next": next.map(|c| c.0) }))
        }
        "location.remove" => {
            let aor = p.str(0, "aor")?;
            let contact = p.opt_str(1, "contact")?;
            let removed = proxy.remove_location(aor, contact, now).map_err(failed)?;
            Ok(json!({ "removed": removed }))
        }
        "dialog.list" => {
            let after = match p.opt_str(0, "after")? {
                Some(h) => Some(
                    DialogUid::from_hex(h.as_bytes())
                        .ok_or_else(|| RpcError::params(format!("`{h}` is not a dialog id")))?,
                ),
                None => None,
            };
            let (dialogs, next) = proxy.dialog_list(after, page(p, 1)?, now);
            Ok(json!({
                "dialogs": value(dialogs)?,
                "next": next.map(|u| u.to_hex().to_string()),
            }))
        }
        "dialog.end" => {
            let h = p.str(0, "id")?;
            let id = DialogUid::from_hex(h.as_bytes()).ok_or_else(|| {
                RpcError::params(format!(
                    "`{h}` is not a dialog id (16 hex digits, from dialog.list)"
                ))
            })?;
            let byes = proxy.end_dialog(id, now).map_err(failed)?;
            Ok(json!({ "id": id.to_hex().to_string(), "byes": byes }))
        }
        "upstream.list" => value(proxy.upstreams()),
        "upstream.enable" | "upstream.disable" => {
            let (set, addr) = destination(p)?;
            let enabled = method == "upstream.enable";
            let changed = proxy.set_upstream(&set, addr, enabled).map_err(failed)?;
            Ok(json!({ "set": set, "addr": addr, "enabled": enabled, "changed": changed }))
        }
        "stats" => Ok(Value::Object(stats(ctx, now))),
        "reload" => (ctx.reload)().map_err(|e| RpcError::new(FAILED, e)),
        "core.version" => Ok(json!({
            "name": "sip-proxy",
            "version": env!("CARGO_PKG_VERSION"),
        })),
        "system.listMethods" => Ok(Value::Array(
            METHODS
                .iter()
                .map(|(m, params)| json!({ "method": m, "params": params }))
                .collect(),
        )),
        _ => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("no method `{method}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::admin::RELOADABLE;

    const DOC: &str = include_str!("../../../docs/operations.md");

    fn section(title: &str) -> &'static str {
        let start = DOC.find(title).expect(title);
        let rest = &DOC[start + title.len()..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    #[test]
    fn every_method_and_reloadable_key_is_documented() {
        let ctl = section("\n## Control");
        for (m, params) in METHODS {
            let row = ctl
                .lines()
                .find(|l| l.starts_with('|') && l.contains(&format!("`{m}`")))
                .unwrap_or_else(|| panic!("method {m} not in docs/operations.md"));
            for p in *params {
                assert!(row.contains(&format!("`{p}`")), "{m}: {p} not in {row}");
            }
        }
        let reload = section("\n## Reload");
        for k in RELOADABLE {
            assert!(
                reload.contains(&format!("`{k}`")),
                "{k} not in docs/operations.md ## Reload"
            );
        }
    }
}
