//! Configuration: timers, limits, and the local listeners (what our Via and Record-Route say,
//! and which Route entries are ours).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::Bytes;
use sip_parser::{Transport, Uri};

use crate::timer::Timers;

/// A local socket the layer sends from and receives on.
///
/// ```
/// use sip_transaction::Listener;
/// use sip_parser::Transport;
/// let l = Listener::new(Transport::Tcp, "10.0.0.1:5060".parse().unwrap())
///     .advertise("sip.example.com", Some(5060));
/// assert_eq!(l.sent_by(), "sip.example.com:5060");
/// assert_eq!(l.record_route(), "<sip:sip.example.com:5060;transport=tcp;lr>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Transport.
    pub transport: Transport,
    /// The bound address.
    pub local: SocketAddr,
    /// Host (and port) to put in Via and Record-Route instead of the bound address (a public
    /// address or name in front of NAT).
    pub advertised: Option<(String, Option<u16>)>,
}

impl Listener {
    /// A listener on `local`, advertising its own address.
    pub fn new(transport: Transport, local: SocketAddr) -> Self {
        Listener {
            transport,
            local,
            advertised: None,
        }
    }

    /// Advertise `host` (and `port`) instead of the bound address.
    #[must_use]
    pub fn advertise(mut self, host: &str, port: Option<u16>) -> Self {
        self.advertised = Some((String::from(host), port));
        self
    }

    /// The host and port others reach us at.
    fn host_port(&self) -> (String, u16) {
        if let Some((h, p)) = &self.advertised {
            return (h.clone(), p.unwrap_or(self.local.port()));
        }
        let ip = self.local.ip();
        let host = if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            format!("{ip}")
        };
        (host, self.local.port())
    }

    /// The Via sent-by (`host:port`).
    pub fn sent_by(&self) -> String {
        let (h, p) = self.host_port();
        format!("{h}:{p}")
    }

    /// Our Record-Route value for this listener (`<sip:host:port;transport=…;lr>`).
    pub fn record_route(&self) -> String {
        let (h, p) = self.host_port();
        match self.transport {
            Transport::Udp => format!("<sip:{h}:{p};lr>"),
            t => format!("<sip:{h}:{p};transport={};lr>", t.param_value()),
        }
    }
}

/// Layer configuration.
///
/// ```
/// use sip_transaction::{Config, Listener};
/// use sip_parser::Transport;
/// let cfg = Config {
///     listeners: vec![Listener::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap())],
///     max_transactions: 100_000,
///     ..Config::default()
/// };
/// assert_eq!(cfg.shards, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// T1, T2, T4, Timer C and the layer's own bounds.
    pub timers: Timers,
    /// Most live transactions (server and client); a request beyond it is refused
    /// ([`ReceiveError::TableFull`](crate::ReceiveError): answer 503). Split evenly over the
    /// shards.
    pub max_transactions: usize,
    /// Shards of the table (each its own lock, matching index and timer wheel): more shards,
    /// less contention between worker threads.
    pub shards: usize,
    /// Most branches one proxied request may fork to.
    pub max_branches: usize,
    /// Local sockets (the first of a transport is the default for it).
    pub listeners: Vec<Listener>,
    /// Other names and addresses that are ours (a Route or Request-URI naming one of these
    /// or a listener is ours): `(host, port)`, `None` matching any port.
    pub aliases: Vec<(String, Option<u16>)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timers: Timers::default(),
            max_transactions: 1 << 20,
            shards: 64,
            max_branches: 16,
            listeners: Vec::new(),
            aliases: Vec::new(),
        }
    }
}

/// A listener with its wire strings made once.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub(crate) listener: Listener,
    /// `SIP/2.0/UDP host:port;branch=`
    pub(crate) via_prefix: Bytes,
    pub(crate) record_route: Bytes,
    host: String,
    port: u16,
}

/// The configuration, compiled for the hot path.
#[derive(Debug, Clone)]
pub(crate) struct Locals {
    pub(crate) locals: Vec<Local>,
    aliases: Vec<(String, Option<u16>)>,
}

impl Locals {
    pub(crate) fn new(cfg: &Config) -> Self {
        let locals = cfg
            .listeners
            .iter()
            .map(|l| {
                let (host, port) = l.host_port();
                Local {
                    via_prefix: Bytes::from(format!(
                        "SIP/2.0/{} {host}:{port};branch=",
                        l.transport.as_str()
                    )),
                    record_route: Bytes::from(l.record_route()),
                    listener: l.clone(),
                    host,
                    port,
                }
            })
            .collect();
        Locals {
            locals,
            aliases: cfg.aliases.clone(),
        }
    }

    /// The listener bound to `addr` (with `transport`), else the first of that transport.
    pub(crate) fn find(&self, transport: Transport, addr: SocketAddr) -> Option<&Local> {
        self.locals
            .iter()
            .find(|l| l.listener.local == addr && l.listener.transport == transport)
            .or_else(|| {
                self.locals
                    .iter()
                    .find(|l| l.listener.local == addr)
                    .or_else(|| {
                        self.locals
                            .iter()
                            .find(|l| l.listener.transport == transport)
                    })
            })
    }

    /// The first listener of `transport`.
    pub(crate) fn first_of(&self, transport: Transport) -> Option<&Local> {
        self.locals
            .iter()
            .find(|l| l.listener.transport == transport)
    }

    /// Whether `host:port` names us (a listener's address or advertised name, or an alias).
    pub(crate) fn is_us(&self, host: &str, port: Option<u16>, transport: Transport) -> bool {
        let port = port.unwrap_or(transport.default_port());
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        self.locals.iter().any(|l| {
            (l.port == port && host.eq_ignore_ascii_case(&l.host))
                || (l.listener.local.port() == port
                    && bare.parse::<core::net::IpAddr>() == Ok(l.listener.local.ip()))
        }) || self
            .aliases
            .iter()
            .any(|(h, p)| host.eq_ignore_ascii_case(h) && p.is_none_or(|p| p == port))
    }

    /// Whether a URI (Route entry, Request-URI) names us.
    pub(crate) fn is_our_uri(&self, uri: &Uri<'_>) -> bool {
        if !uri.is_sip() {
            return false;
        }
        let transport = uri
            .params
            .get("transport")
            .flatten()
            .and_then(Transport::parse)
            .unwrap_or(if uri.scheme == sip_parser::Scheme::Sips {
                Transport::Tls
            } else {
                Transport::Udp
            });
        self.is_us(uri.host, uri.port, transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours() {
        let cfg = Config {
            listeners: alloc::vec![
                Listener::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap()),
                Listener::new(Transport::Tcp, "[::1]:5070".parse().unwrap())
                    .advertise("proxy.example.com", None),
            ],
            aliases: alloc::vec![(String::from("example.com"), None)],
            ..Config::default()
        };
        let l = Locals::new(&cfg);
        assert!(l.is_us("127.0.0.1", None, Transport::Udp));
        assert!(l.is_us("127.0.0.1", Some(5060), Transport::Udp));
        assert!(!l.is_us("127.0.0.1", Some(5061), Transport::Udp));
        assert!(l.is_us("[::1]", Some(5070), Transport::Tcp));
        assert!(l.is_us("PROXY.example.com", Some(5070), Transport::Tcp));
        assert!(l.is_us("example.com", Some(9), Transport::Udp));
        assert!(!l.is_us("other.example.com", None, Transport::Udp));
        let u = Uri::parse(b"sip:proxy.example.com:5070;transport=tcp;lr").unwrap();
        assert!(l.is_our_uri(&u));
        assert_eq!(
            &l.locals[1].via_prefix[..],
            b"SIP/2.0/TCP proxy.example.com:5070;branch="
        );
        assert_eq!(&l.locals[0].record_route[..], b"<sip:127.0.0.1:5060;lr>");
    }
}
