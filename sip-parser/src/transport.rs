//! [`Transport`]: the SIP transports, one type for the whole workspace (Via sent-protocol,
//! the `transport` URI parameter, sockets, HEP capture).

use core::fmt;
use core::str::FromStr;

/// A SIP transport (RFC 3261 §18, RFC 4168 SCTP, RFC 7118 WebSocket).
///
/// ```
/// use sip_parser::Transport;
/// assert_eq!(Transport::parse(b"udp"), Some(Transport::Udp));
/// assert_eq!("WSS".parse::<Transport>(), Ok(Transport::Wss));
/// assert_eq!(Transport::Tls.as_str(), "TLS");
/// assert!(Transport::Tcp.is_reliable() && !Transport::Udp.is_reliable());
/// assert_eq!(Transport::Tls.default_port(), 5061);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
}

/// A transport name that is not one of [`Transport`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown SIP transport (expected UDP, TCP, TLS, SCTP, WS or WSS)")]
pub struct UnknownTransport;

impl Transport {
    /// Every transport, in declaration order.
    pub const ALL: [Transport; 6] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Sctp,
        Transport::Ws,
        Transport::Wss,
    ];

    /// Classifies a transport name as written in a Via (`UDP`) or a `transport` URI
    /// parameter (`tcp`), case-insensitively; `TLS-SCTP` counts as SCTP.
    pub fn parse(name: &[u8]) -> Option<Self> {
        Some(match name.len() {
            2 if name.eq_ignore_ascii_case(b"ws") => Self::Ws,
            3 if name.eq_ignore_ascii_case(b"udp") => Self::Udp,
            3 if name.eq_ignore_ascii_case(b"tcp") => Self::Tcp,
            3 if name.eq_ignore_ascii_case(b"tls") => Self::Tls,
            3 if name.eq_ignore_ascii_case(b"wss") => Self::Wss,
            4 if name.eq_ignore_ascii_case(b"sctp") => Self::Sctp,
            8 if name.eq_ignore_ascii_case(b"tls-sctp") => Self::Sctp,
            _ => return None,
        })
    }

    /// The Via spelling: `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Sctp => "SCTP",
            Self::Ws => "WS",
            Self::Wss => "WSS",
        }
    }

    /// The `transport` URI parameter spelling (lower case).
    pub const fn param_value(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Sctp => "sctp",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Reliable transports (everything but UDP): no retransmission timers, zero wait timers
    /// (RFC 3261 §17), and Content-Length mandatory (§18.3).
    pub const fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// Stream transports, framed by Content-Length (TCP, TLS); WebSocket frames and SCTP
    /// messages carry one SIP message each, like datagrams.
    pub const fn is_stream(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls)
    }

    /// Secure transports (TLS, WSS): what a `sips:` URI requires.
    pub const fn is_secure(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }

    /// The port used when a Via sent-by or URI gives none: 5060, 5061 for TLS (RFC 3261
    /// §18.2.2, §19.1.2), 80 / 443 for WS / WSS (RFC 7118 §5).
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp | Self::Sctp => 5060,
            Self::Tls => 5061,
            Self::Ws => 80,
            Self::Wss => 443,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = UnknownTransport;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes()).ok_or(UnknownTransport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Transport::ALL {
            assert_eq!(Transport::parse(t.as_str().as_bytes()), Some(t));
            assert_eq!(Transport::parse(t.param_value().as_bytes()), Some(t));
            assert_eq!(t.as_str().parse(), Ok(t));
        }
        assert_eq!(Transport::parse(b"TLS-SCTP"), Some(Transport::Sctp));
        assert_eq!(Transport::parse(b"udpx"), None);
        assert_eq!(Transport::parse(b""), None);
        assert_eq!("quic".parse::<Transport>(), Err(UnknownTransport));
    }

    #[test]
    fn properties() {
        assert!(!Transport::Udp.is_reliable());
        assert!(Transport::ALL[1..].iter().all(|t| t.is_reliable()));
        assert!(Transport::Tls.is_secure() && Transport::Wss.is_secure());
        assert!(!Transport::Ws.is_secure());
        assert!(Transport::Tcp.is_stream() && !Transport::Ws.is_stream());
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Wss.default_port(), 443);
    }
}
