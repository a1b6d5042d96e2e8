//! Where a response goes: RFC 3261 §18.2.2 with RFC 3581 §5 (`rport`), from the top Via of
//! the request, the transport it arrived over and the address it came from.

use core::net::{IpAddr, SocketAddr};

use crate::transport::Transport;
use crate::via::Via;

/// The destination of a response, as [`Via::response_target`] works it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseTarget<'a> {
    /// Send over the connection the request arrived on, whose peer is this address
    /// (reliable transports, §18.2.2 first bullet).
    Connection(SocketAddr),
    /// Send to this address: a datagram for UDP, or a new connection for a reliable
    /// transport whose original connection is gone. For a multicast `maddr`, use the Via's
    /// [`ttl`](Via::ttl), 1 when absent.
    Addr(SocketAddr),
    /// Resolve this host name as RFC 3263 §6 says and send there. `port` is the sent-by port;
    /// `None` when the Via gives none (RFC 3263 §6 then looks up SRV records before falling
    /// back to the transport's [default port](Transport::default_port)). Name resolution is
    /// the caller's.
    Host {
        /// The host name as written in the Via.
        host: &'a str,
        /// The explicit port, if any.
        port: Option<u16>,
    },
}

impl<'a> Via<'a> {
    /// Where to send a response to the request whose top Via this is (RFC 3261 §18.2.2,
    /// RFC 3581 §5).
    ///
    /// `transport` is the transport the request arrived over (it decides reliability and the
    /// default port). `source` is the address it came from, or `None` when that is not known
    /// — a stateless proxy forwarding a response — or, on a reliable transport, when the
    /// connection it came over has closed; the Via's `received` and `rport` parameters (as
    /// [`Editor::fill_via_received`](crate::Editor::fill_via_received) wrote them on
    /// receipt, RFC 3261 §18.2.1, RFC 3581 §4) then stand in for it.
    ///
    /// 1. Reliable transport with a source: [`ResponseTarget::Connection`].
    /// 2. `maddr` (unreliable): the maddr at the sent-by port (default per transport).
    /// 3. Unreliable with a source: the source IP (it is what `received` would hold), at the
    ///    source port when the Via has `rport` (RFC 3581 §5), else at the sent-by port or the
    ///    default.
    /// 4. Without a source: `received` at `rport`'s value (unreliable) or the sent-by port;
    ///    else the sent-by host, an IP ([`ResponseTarget::Addr`]) or a name
    ///    ([`ResponseTarget::Host`]). A `received` that is not an IP address is ignored.
    ///
    /// ```
    /// use core::net::SocketAddr;
    /// use sip_parser::{Message, ResponseTarget, Transport};
    /// let req = Message::parse_slice(
    ///     b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;rport\r\n\r\n",
    /// ).unwrap();
    /// let via = req.top_via().unwrap().unwrap();
    /// let nat: SocketAddr = "203.0.113.9:40312".parse().unwrap();
    /// // Behind a NAT, with rport: back to the address and port the request came from.
    /// assert_eq!(via.response_target(Transport::Udp, Some(nat)), ResponseTarget::Addr(nat));
    /// // Over TCP: the same connection.
    /// assert_eq!(via.response_target(Transport::Tcp, Some(nat)), ResponseTarget::Connection(nat));
    /// // Unknown source: the sent-by.
    /// assert_eq!(
    ///     via.response_target(Transport::Udp, None),
    ///     ResponseTarget::Addr("10.0.0.7:5060".parse().unwrap())
    /// );
    /// ```
    pub fn response_target(
        &self,
        transport: Transport,
        source: Option<SocketAddr>,
    ) -> ResponseTarget<'a> {
        let sent_by_port = self.port.unwrap_or(transport.default_port());
        if transport.is_reliable() {
            if let Some(src) = source {
                return ResponseTarget::Connection(src);
            }
            // §18.2.2: reopen to "received" at the sent-by port, else to the sent-by.
            return match self.received.and_then(parse_ip) {
                Some(ip) => ResponseTarget::Addr(SocketAddr::new(ip, sent_by_port)),
                None => self.sent_by_target(),
            };
        }
        if let Some(maddr) = self.maddr {
            return match parse_ip(maddr) {
                Some(ip) => ResponseTarget::Addr(SocketAddr::new(ip, sent_by_port)),
                None => ResponseTarget::Host {
                    host: maddr,
                    port: Some(sent_by_port),
                },
            };
        }
        if let Some(src) = source {
            let port = match self.rport {
                Some(_) => src.port(),
                None => sent_by_port,
            };
            return ResponseTarget::Addr(SocketAddr::new(src.ip(), port));
        }
        let rport = self.rport.flatten();
        match self.received.and_then(parse_ip) {
            Some(ip) => ResponseTarget::Addr(SocketAddr::new(ip, rport.unwrap_or(sent_by_port))),
            None => match (rport, self.sent_by_target()) {
                (Some(p), ResponseTarget::Addr(a)) => {
                    ResponseTarget::Addr(SocketAddr::new(a.ip(), p))
                }
                (Some(p), ResponseTarget::Host { host, .. }) => ResponseTarget::Host {
                    host,
                    port: Some(p),
                },
                (_, t) => t,
            },
        }
    }

    /// The sent-by as a target: an address when the host is an IP (at the explicit port, or
    /// the default for the Via's transport, else 5060), a name otherwise.
    fn sent_by_target(&self) -> ResponseTarget<'a> {
        match parse_ip(self.host) {
            Some(ip) => {
                let default = self.transport_kind().map_or(5060, Transport::default_port);
                ResponseTarget::Addr(SocketAddr::new(ip, self.port.unwrap_or(default)))
            }
            None => ResponseTarget::Host {
                host: self.host,
                port: self.port,
            },
        }
    }

    /// True when a server receiving this Via from `source` must add `received` (RFC 3261
    /// §18.2.1: the sent-by host is a name or another IP; RFC 3581 §4: always when `rport`
    /// is present).
    pub(crate) fn needs_received(&self, source: IpAddr) -> bool {
        self.rport.is_some() || parse_ip(self.host).is_none_or(|ip| !same_ip(ip, source))
    }
}

/// An IP address as written in a Via (sent-by, `received`, `maddr`): dotted quad, IPv6 with
/// or without brackets.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// Equality that sees an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
/// peer) as the IPv4 address it maps.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn via(value: &str) -> Message<alloc::vec::Vec<u8>> {
        let raw = alloc::format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {value}\r\n\r\n");
        Message::from_buf(raw.into_bytes(), &crate::Limits::DEFAULT).unwrap()
    }

    fn target(value: &str, t: Transport, src: Option<&str>) -> alloc::string::String {
        let m = via(value);
        let v = m.top_via().unwrap().unwrap();
        let src = src.map(|s| s.parse().unwrap());
        alloc::format!("{:?}", v.response_target(t, src))
    }

    /// RFC 3261 §18.2.2, bullet by bullet.
    #[test]
    fn section_18_2_2() {
        use Transport::{Tcp, Tls, Udp};
        // "If the sent-protocol is a reliable transport protocol [...] the response MUST be
        // sent using the existing connection to the source of the original request"
        assert_eq!(
            target("SIP/2.0/TCP a.example.com", Tcp, Some("192.0.2.1:33000")),
            "Connection(192.0.2.1:33000)"
        );
        // "If that connection is no longer open, the server SHOULD open a connection to the
        // IP address in the received parameter, if present, using the port in the sent-by
        // value, or the default port for that transport"
        assert_eq!(
            target("SIP/2.0/TLS a.example.com;received=192.0.2.1", Tls, None),
            "Addr(192.0.2.1:5061)"
        );
        assert_eq!(
            target(
                "SIP/2.0/TCP a.example.com:5070;received=192.0.2.1",
                Tcp,
                None
            ),
            "Addr(192.0.2.1:5070)"
        );
        assert_eq!(
            target("SIP/2.0/TCP a.example.com", Tcp, None),
            "Host { host: \"a.example.com\", port: None }"
        );
        // "Otherwise, if the Via header field value contains a maddr parameter, the response
        // MUST be forwarded to the address listed there, using the port indicated in
        // sent-by, or port 5060 if none is present."
        assert_eq!(
            target(
                "SIP/2.0/UDP a.example.com;maddr=224.0.1.75;ttl=4",
                Udp,
                Some("192.0.2.1:5060")
            ),
            "Addr(224.0.1.75:5060)"
        );
        assert_eq!(
            target(
                "SIP/2.0/UDP a.example.com:5080;maddr=relay.example.com",
                Udp,
                None
            ),
            "Host { host: \"relay.example.com\", port: Some(5080) }"
        );
        // "Otherwise (for unreliable unicast transports), if the top Via has a received
        // parameter, the response MUST be sent to the address in the received parameter,
        // using the port indicated in the sent-by value, or using port 5060"
        assert_eq!(
            target(
                "SIP/2.0/UDP bobspc.biloxi.com:5060;received=192.0.2.4",
                Udp,
                None
            ),
            "Addr(192.0.2.4:5060)"
        );
        assert_eq!(
            target("SIP/2.0/UDP bobspc.biloxi.com", Udp, Some("192.0.2.4:6000")),
            "Addr(192.0.2.4:5060)"
        );
        assert_eq!(
            target(
                "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255",
                Udp,
                None
            ),
            "Addr([2001:db8::9:255]:5060)"
        );
        assert_eq!(
            target("SIP/2.0/UDP h;received=[2001:db8::9:255]", Udp, None),
            "Addr([2001:db8::9:255]:5060)"
        );
        // "Otherwise, if it is not receiver-tagged, the response MUST be sent to the address
        // indicated by the sent-by value"
        assert_eq!(
            target("SIP/2.0/UDP 192.0.2.9:5062", Udp, None),
            "Addr(192.0.2.9:5062)"
        );
        assert_eq!(
            target("SIP/2.0/UDP pc33.example.com", Udp, None),
            "Host { host: \"pc33.example.com\", port: None }"
        );
        assert_eq!(
            target("SIP/2.0/UDP h;received=not-an-ip", Udp, None),
            "Host { host: \"h\", port: None }"
        );
    }

    /// RFC 3581 §5: "there is both a received parameter and an rport parameter, the response
    /// MUST be sent to the IP address listed in the received parameter, and the port in the
    /// rport parameter."
    #[test]
    fn rfc3581_section_5() {
        use Transport::Udp;
        // The RFC 3581 §4 example: request from 192.0.2.1:9988, Via with an empty rport.
        assert_eq!(
            target(
                "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
                Udp,
                Some("192.0.2.1:9988")
            ),
            "Addr(192.0.2.1:9988)"
        );
        // The same Via after the server filled it in.
        assert_eq!(
            target(
                "SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff",
                Udp,
                None
            ),
            "Addr(192.0.2.1:9988)"
        );
        // rport without received (a server that did not fill received): sent-by at rport.
        assert_eq!(
            target("SIP/2.0/UDP 10.1.1.1:4540;rport=9988", Udp, None),
            "Addr(10.1.1.1:9988)"
        );
        // No rport: sent-by port even when the source port differs.
        assert_eq!(
            target("SIP/2.0/UDP 10.1.1.1:4540", Udp, Some("192.0.2.1:9988")),
            "Addr(192.0.2.1:4540)"
        );
    }

    #[test]
    fn needs_received_per_18_2_1_and_3581() {
        let check = |v: &str, src: &str| {
            let m = via(v);
            let ip: IpAddr = src.parse().unwrap();
            m.top_via().unwrap().unwrap().needs_received(ip)
        };
        assert!(check("SIP/2.0/UDP bobspc.biloxi.com:5060", "192.0.2.4"));
        assert!(check("SIP/2.0/UDP 192.0.2.5", "192.0.2.4"));
        assert!(!check("SIP/2.0/UDP 192.0.2.4:5060", "192.0.2.4"));
        assert!(!check("SIP/2.0/UDP 192.0.2.4", "::ffff:192.0.2.4"));
        assert!(!check("SIP/2.0/UDP [2001:db8::1]", "2001:db8::1"));
        assert!(check("SIP/2.0/UDP 192.0.2.4;rport", "192.0.2.4"));
    }
}
